"""Loading job, model and settings files into the typed config (no Ray; settings without torch)."""
