"""End-to-end: real submits through Ray on tiny jobs, and the shipped models on real records."""
