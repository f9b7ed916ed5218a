"""orchestrator: job files -> tasks -> Ray Tune trials -> per-fold logs and summaries.

Knows jobs, Ray and files; the ECG and torch side lives in ecgcore.
"""
