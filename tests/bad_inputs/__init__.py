"""The bad-input corpus: every case folder gives one error message and exit code 2."""
