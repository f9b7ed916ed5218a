"""Job, model and settings files in YAML: the same values as JSON, each JSON path with its line.

The file is composed into YAML nodes with PyYAML's safe loader (plain data:
no tags that build objects, no code) and turned into dicts, lists and
scalars while recording the line of every key and list item by its JSON path
(`$.job.cvids[1]`). A schema error in the file then names the line
(ecgcore.config.schema.ConfigError looks it up).
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
    try:
        return _value(node, "$", lines, _Loader(""), ()), lines
    except yaml.MarkedYAMLError as exc:  # a tag that would build an object, a bad merge key, ...
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(f"not plain data: {exc.problem or exc.context}", mark.line + 1 if mark else 0) from None


def _value(node: yaml.Node, path: str, lines: dict[str, int], loader: _Loader, above: tuple) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if any(node is n for n in above):  # an alias of an enclosing node would never end
        raise YamlError("an alias refers to a node that contains it", node.start_mark.line + 1)
    above = (*above, node)
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, path, lines, loader, above)
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, f"{path}[{i}]", lines, loader, above) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def _mapping(node: yaml.MappingNode, path: str, lines: dict[str, int], loader: _Loader, above: tuple) -> dict:
    own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # `<<: *defaults` merge keys, as yaml.safe_load reads them: merged pairs first
    merged = len(node.value) - own
    out, from_merge = {}, set()
    for i, (key_node, value_node) in enumerate(node.value):
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError("a key must be a plain value", key_node.start_mark.line + 1)
        key = str(loader.construct_object(key_node))
        if key in out and key not in from_merge:  # a key of the mapping's own, twice; merged ones may be overridden
            raise YamlError(f"key {key!r} appears twice in one object", key_node.start_mark.line + 1)
        if i < merged:
            from_merge.add(key)
        else:
            from_merge.discard(key)
        sub = f"{path}.{key}"
        lines[sub] = key_node.start_mark.line + 1
        out[key] = _value(value_node, sub, lines, loader, above)
    return out
