"""Reading and writing ECG records: the challenge formats, synthetic sets, the prepared-records cache."""
