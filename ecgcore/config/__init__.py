"""Typed configuration: the model schema, the Task, and the JSON/YAML schema helpers both packages use."""
