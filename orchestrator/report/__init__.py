"""The self-contained HTML report: one file, no external assets, no JavaScript."""
