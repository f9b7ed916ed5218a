"""Job, model and settings files in YAML: the same values as JSON, each JSON path with its line.

The file is composed into YAML nodes with PyYAML's safe loader (plain data:
no tags that build objects, no code) and turned into dicts, lists and
scalars while recording the line of every key and list item by its JSON path
(`$.job.cvids[1]`). A schema error in the file then names the line
(orchestrator.schema.ConfigError looks it up).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

YAML_SUFFIXES = (".yaml", ".yml")


class _Loader(yaml.SafeLoader):
    """The safe loader, reading 1e-3 as a number as YAML 1.2 and JSON do (PyYAML's YAML 1.1 reads a string)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))


class YamlError(Exception):
    """Invalid YAML, a non-scalar key or a duplicate key: message, line."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def is_yaml(file: str | Path) -> bool:
    return Path(file).suffix.lower() in YAML_SUFFIXES


def parse_yaml(text: str) -> tuple[Any, dict[str, int]]:
    """The document's value and {JSON path: 1-based line}; an empty document is None."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(f"invalid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else 0) from None
    lines: dict[str, int] = {}
    if node is None:
        return None, lines
    return _value(node, "$", lines, _Loader("")), lines


def _value(node: yaml.Node, path: str, lines: dict[str, int], loader: _Loader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError("a key must be a plain value", key_node.start_mark.line + 1)
            key = str(loader.construct_object(key_node))
            if key in out:
                raise YamlError(f"key {key!r} appears twice in one object", key_node.start_mark.line + 1)
            sub = f"{path}.{key}"
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _value(value_node, sub, lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, f"{path}[{i}]", lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node)
