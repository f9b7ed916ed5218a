"""The challenge years this project knows: the one list a `challenge` value is checked against.

Importing it costs nothing (no readers, no torch), so the CLI and the config
schema can name the choices; ecgcore.tracks gives each year its readers,
classes, loops and metric.
"""

CHALLENGES = (2017, 2020, 2021)
# CinC 2020/2021: 12-lead records, several scored SNOMED CT codes per record.
MULTILABEL_YEARS = (2020, 2021)
