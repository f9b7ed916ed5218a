"""The output formats of `summarize` (its writers, and the CLI's --format choices).

A module of its own, without imports, so that building the command-line parser
(`--help`, light commands) does not import summarize and, through it, torch.
"""

FORMATS = ("table", "csv", "json", "markdown")
