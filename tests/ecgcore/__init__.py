"""Tests of ecgcore: readers, data, models, training, metrics (no Ray)."""
