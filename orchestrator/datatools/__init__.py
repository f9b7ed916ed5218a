"""Dataset utilities: fetch, check, splits and synthetic sets."""
