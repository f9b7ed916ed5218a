"""The log folder: the fold writer, its reader, run state and plots."""
