"""Load JSON objects into frozen dataclasses, with errors that name file and JSON path.

One generic loader for model files, job files and Task dicts: it walks the
dataclass fields, rejects unknown keys (suggesting the closest known one),
checks types and the bounds declared in field metadata (min, max, choices,
length), and reads "True"/"False" strings as booleans, as the reference's job
files wrote them. The first problem raises a ConfigError. A dataclass marked
`documented` has its keys described in docs/reference (generated from these
same dataclasses). The loader notes where in each file it found such an
object, so an error at a key under one ends with the link to the key's entry
there: raised while loading or later (a rule across keys, an unknown
architecture, a search space, a job's resources), wherever the error is made.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgcore.config.yamlfile import YamlError, is_yaml, parse_yaml
from ecgcore.errors import ProjectError

# Job and model names become folder names: keep them plain.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_BOOL_STRINGS = {"true": True, "false": False}


# {YAML file: {JSON path: line}}, filled as YAML files are read, so an error at a JSON path can name its line.
_YAML_LINES: dict[str, dict[str, int]] = {}


# Where the reference pages lie, from the repository root: the links errors end with.
REFERENCE_DIR = "docs/reference"
# The anchor of a page's top-level keys' section (no key has a '-').
TOP = "top-level"


class ConfigError(ProjectError):
    """A job, model or settings file that does not fit its schema (in a YAML file, with the line).

    see: the reference entry of the key at fault (docs/reference/<page>#<anchor>), appended to the message;
    unless given, found from where the file's documented objects were loaded (`reference_link`).
    """

    def __init__(self, file: str | Path, path: str, message: str, line: int | None = None, see: str | None = None):
        line = line if line is not None else line_of(file, path)
        where = f"{file}: line {line}: {path}" if line else f"{file}: {path}"
        self.file, self.path, self.detail, self.line = str(file), path, message, line
        self.see = see or reference_link(file, path)
        super().__init__(f"{where}: {message}" + (f" (see {self.see})" if self.see else ""))


@dataclass(frozen=True)
class Documented:
    """Where a schema dataclass's keys are described in docs/reference.

    path: the JSON path of the object holding them, without "$" and without a job file's job name ("" for a
    file's top-level keys). variant: for an object whose keys depend on another key (model_parameters on
    model_name, track_options on track), which one this is; note: a line about that variant.
    """

    page: str
    path: str = ""
    variant: str | None = None
    note: str = ""

    @property
    def anchor(self) -> str:
        """The section's HTML anchor: the path, the variant after it (model_parameters.CNN)."""
        return ".".join(p for p in (self.path, self.variant) if p) or TOP

    def key_anchor(self, key: str) -> str:
        """A key's anchor: its JSON path, with the variant (model_parameters.CNN.kernel_size)."""
        return key if self.anchor == TOP else f"{self.anchor}.{key}"

    def link(self, anchor: str) -> str:
        return f"{REFERENCE_DIR}/{self.page}#{anchor}"


# Every documented dataclass, as its module marked it: what the reference pages and errors' links come from.
DOCUMENTED: dict[type, Documented] = {}


def documented(page: str, path: str = "", variant: str | None = None, note: str = "") -> typing.Callable:
    """A class decorator: the dataclass's keys are described on this reference page, under this JSON path."""
    def mark(cls: type) -> type:
        DOCUMENTED[cls] = Documented(page, path, variant, note)
        return cls

    return mark


# {file: {JSON path: documented dataclass}}: where each documented object of a file was loaded, so that an error
# raised after loading (a rule across keys, a job's resources, a search space) links to its key's entry like one
# raised while loading. A file read again starts afresh.
_SECTIONS: dict[str, dict[str, type]] = {}


def locate(cls: type, file: str | Path, path: str = "$") -> None:
    """Note that the object at path in file holds cls's keys (load_dataclass does; a loader that checks a key
    before building the object calls it first). What was noted under path was another object's: forgotten."""
    if cls not in DOCUMENTED:
        return
    sections = _SECTIONS.setdefault(_key(file), {})
    for old in [p for p in sections if p.startswith(path + ".") or p.startswith(path + "[")]:
        del sections[old]
    sections[path] = cls


def reference_link(file: str | Path, path: str) -> str | None:
    """The reference entry of the key at path in file, or None where no documented key holds it.

    The innermost object noted around path names the key: a key of its own (through the sections its keys
    hold, model_parameters.CNN.kernel_size), else, for a key it does not have, its section. An error about
    such an object as a whole links to its key in the enclosing one, or to its section where none encloses
    it (a job that is not an object). Where nothing was noted around path (a file that does not parse, a job
    file's "$", a job's name), no key holds it: no link.
    """
    sections = _SECTIONS.get(_key(file), {})
    holders = [p for p in sections if path.startswith(p + ".")]
    if not holders:
        doc = DOCUMENTED[sections[path]] if path in sections else None
        return doc.link(doc.anchor) if doc else None
    root = max(holders, key=len)
    keys = [re.sub(r"(\[\d+\])+$", "", key) for key in path[len(root) + 1:].split(".")]
    doc, anchor = _anchor(sections[root], keys)
    return doc.link(anchor)


def _anchor(cls: type, keys: list[str]) -> tuple[Documented, str]:
    """The anchor of keys under an object of cls, descending into the documented sections its fields hold."""
    doc = DOCUMENTED[cls]
    for i, key in enumerate(keys):
        if key not in {f.name for f in dataclasses.fields(cls)}:
            return doc, doc.anchor
        inner = _documented_in(typing.get_type_hints(cls)[key])
        if inner is None or i == len(keys) - 1:
            return doc, doc.key_anchor(key)
        cls, doc = inner, DOCUMENTED[inner]
    return doc, doc.anchor


def _documented_in(tp: Any) -> type | None:
    """The documented dataclass a field holds (X, X | None, tuple[X, ...]); an Any (model_parameters) holds
    none that its type names."""
    return tp if tp in DOCUMENTED else next((a for a in typing.get_args(tp) if a in DOCUMENTED), None)


def check_name(name: str, file, path: str, what: str) -> None:
    if not _PLAIN_NAME.match(name) or ".." in name:
        raise ConfigError(file, path, f"{what} {name!r} must be a plain name "
                                      "(letters, digits, _ . -; no '/', no '..')")


def line_of(file: str | Path, path: str) -> int | None:
    """The line of path, or of its nearest enclosing key that has one, in a YAML file read here."""
    lines = _YAML_LINES.get(_key(file))
    while lines:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return None
        path = path[:cut]
    return None


def _key(file: str | Path) -> str:
    """One spelling per file (./jobs/x.yaml and jobs/x.yaml are the same file)."""
    return str(Path(file).resolve())


def read_document(file: Path) -> Any:
    """A job, model or settings file: YAML (.yaml, .yml) or JSON, to the same plain values."""
    _SECTIONS.pop(_key(file), None)  # what an earlier read of this file held is no guide to this one
    if not is_yaml(file):
        return read_json(file)
    try:
        value, lines = parse_yaml(_read_text(file))
    except YamlError as exc:
        raise ConfigError(file, "$", str(exc), line=exc.line) from None
    _YAML_LINES[_key(file)] = lines
    return value


def _read_text(file: Path) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "$", f"cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "$", f"not a UTF-8 text file (byte {exc.start})") from None


def read_json(file: Path) -> Any:
    """Parse a JSON file; duplicate keys are an error, not a silent overwrite."""
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = next((k for k in keys if keys.count(k) > 1), None)
        if dup is not None:
            raise ConfigError(file, "$", f"key {dup!r} appears twice in one object")
        return dict(pairs)

    try:
        return json.loads(_read_text(file), object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(file, "$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def load_dataclass(cls: type, data: Any, file: str | Path, path: str = "$",
                   special: dict[str, typing.Callable] | None = None) -> Any:
    """Build cls from data, noting where its keys are (errors' links). `special` maps field names to custom
    converters f(value, path)."""
    locate(cls, file, path)
    return _build(cls, data, file, path, special)


def _build(cls: type, data: Any, file, path: str, special: dict[str, typing.Callable] | None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(file, path, f"expected an object, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(file, _join(path, key), _unknown(key, fields))
    kwargs = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in data:
            if f.metadata.get("required"):
                raise ConfigError(file, sub, "missing required key")
            continue
        if special and name in special:
            kwargs[name] = special[name](data[name], sub)
        else:
            kwargs[name] = convert(hints[name], data[name], f.metadata, file, sub)
    return cls(**kwargs)


def convert(tp: Any, value: Any, meta: typing.Mapping, file, path: str) -> Any:
    """One value to type tp, checking bounds from meta."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return convert(options[0], value, meta, file, path)
    if dataclasses.is_dataclass(tp):
        return load_dataclass(tp, value, file, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(file, path, f"expected a list, got {_kind(value)}")
        if "length" in meta and len(value) != meta["length"]:
            raise ConfigError(file, path, f"expected {meta['length']} values, got {len(value)}")
        if not value and meta.get("nonempty", True):
            raise ConfigError(file, path, "expected a non-empty list")
        item = typing.get_args(tp)[0]
        return tuple(convert(item, v, meta, file, f"{path}[{i}]") for i, v in enumerate(value))
    return _check_bounds(_scalar(tp, value, file, path), meta, file, path)


def _scalar(tp: Any, value: Any, file, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_STRINGS:
            return _BOOL_STRINGS[value.lower()]
        raise ConfigError(file, path, f"expected true/false (or \"True\"/\"False\"), got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(file, path, f"expected an integer, got {_kind(value)} {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(file, path, f"expected a number, got {_kind(value)} {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(file, path, f"expected a string, got {_kind(value)} {value!r}")
    if tp is Any:
        return value
    raise TypeError(f"schema type {tp!r} at {path} is not supported")


def _check_bounds(value: Any, meta: typing.Mapping, file, path: str) -> Any:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(file, path, f"{value!r} is not one of {', '.join(map(repr, meta['choices']))}")
    if "min" in meta and isinstance(value, (int, float)) and value < meta["min"]:
        raise ConfigError(file, path, f"must be at least {meta['min']}, got {value}")
    if "max" in meta and isinstance(value, (int, float)) and value > meta["max"]:
        raise ConfigError(file, path, f"must be at most {meta['max']}, got {value}")
    return value


def to_plain(obj: Any) -> Any:
    """Dataclasses and tuples to JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _unknown(key: str, fields: dict) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; known keys: {', '.join(fields)}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "an integer", float: "a number"}.get(type(value), type(value).__name__)
