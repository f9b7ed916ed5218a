"""Tests of the orchestrator: config, planning, log folders, commands, the Ray edge in small pieces."""
