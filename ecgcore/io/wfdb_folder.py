"""Reader for any folder of WFDB records plus a labels CSV.

A data folder holds `.hea` headers anywhere below it (nested folders allowed),
each with its `.dat` or `.mat` signal file, at any sampling rate and with any
lead set. A record's name is its path relative to the folder without the
extension (`A00001`, `sub/dir/rec1`). The labels CSV has a `record` column
(full relative name, or the base name when that is unambiguous), a label
column (several rows per record or `;`-separated labels in one cell) and
optional `patient` and `fold` columns. This module reads the CSV, finds the
records, pairs the two and reads signals in mV; lead selection, splitting
and training are the pipeline's job. Every problem is a DataError naming the
file or record and what is wrong.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.errors import DataError
from ecgcore.io import cinc2020
from ecgcore.io.cinc2017 import _wfdb

SKIPPED_DIRS = ("splits", ".cache")  # the project's own outputs, which may sit inside a data folder
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
_SHOWN = 5


@dataclass(frozen=True)
class LabelTable:
    """The labels CSV, one entry per record, sorted by record name."""

    names: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]  # first-seen order, no duplicates
    patients: tuple[str, ...] | tuple[()]  # () when the CSV has no patient column
    folds: tuple[int, ...] | tuple[()]  # () when the CSV has no fold column
    multilabel: bool
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Matched:
    """Labelled records found on disk, sorted by record name (the relative path without extension)."""

    names: tuple[str, ...]
    paths: tuple[Path, ...]  # each record's .hea file
    labels: tuple[tuple[str, ...], ...]
    patients: tuple[str, ...] | tuple[()]
    folds: tuple[int, ...] | tuple[()]
    unlabelled: tuple[str, ...]  # records on disk without a label row: skipped, for the caller to report


def read_labels(csv_path: str | os.PathLike, record_column: str = "record", label_column: str = "label") -> LabelTable:
    """The labels CSV as a LabelTable; DataError naming the file (and line) for anything unusable."""
    path = Path(csv_path)
    columns, rows = _csv_rows(path, record_column, label_column)
    labels: dict[str, list[str]] = {}
    extra: dict[str, dict[str, object]] = defaultdict(dict)  # record -> {"patient": ..., "fold": ...}
    for lineno, row in rows:
        name = (row[record_column] or "").strip()
        if not name:
            raise DataError(f"{path}:{lineno}: empty {record_column!r} cell")
        cell = [part.strip() for part in (row[label_column] or "").split(";")]
        if not all(cell):
            raise DataError(f"{path}:{lineno}: record {name}: empty label in {row[label_column]!r}")
        seen = labels.setdefault(name, [])
        seen.extend(label for label in dict.fromkeys(cell) if label not in seen)
        for column in ("patient", "fold"):
            if column in columns:
                _set_once(extra[name], column, _column_value(row[column], column, path, lineno, name), path, lineno)
    if not labels:
        raise DataError(f"{path}: no records (only a header row)")
    names = tuple(sorted(labels))
    return LabelTable(
        names=names,
        labels=tuple(tuple(labels[n]) for n in names),
        patients=tuple(extra[n]["patient"] for n in names) if "patient" in columns else (),
        folds=tuple(extra[n]["fold"] for n in names) if "fold" in columns else (),
        multilabel=any(len(v) > 1 for v in labels.values()),
        classes=tuple(sorted({label for v in labels.values() for label in v})),
    )


def _csv_rows(path: Path, record_column: str, label_column: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """The columns and (line number, row) of every non-blank row, after checking the file and its columns."""
    if not path.is_file():
        raise DataError(f"labels CSV {path} does not exist")
    try:
        reader = csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines())
        # Stripped column names: "record, label" is a common way to write the header row.
        reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
        # Rows of empty cells (",,") are skipped like blank lines; None holds a row's cells beyond the header's.
        rows = [(reader.line_num, row) for row in reader
                if None in row or any(v and v.strip() for k, v in row.items() if k is not None)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    columns = reader.fieldnames
    for wanted, what in ((record_column, "record"), (label_column, "label")):
        if wanted not in columns:
            raise DataError(f"{path}: no {what} column {wanted!r}; the file's columns are {columns}")
    for lineno, row in rows:
        if None in row:  # "A0001,N,O": labels of one cell must be ';'-separated, not split into cells
            raise DataError(f"{path}:{lineno}: more cells than the {len(columns)} columns {columns} "
                            f"(separate several labels in one cell with ';')")
    return columns, rows


def _column_value(raw: str | None, column: str, path: Path, lineno: int, name: str) -> str | int:
    value = (raw or "").strip()
    if not value:
        raise DataError(f"{path}:{lineno}: record {name}: empty {column}")
    if column == "patient":
        return value
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}:{lineno}: record {name}: fold {value!r} is not an integer") from None


def _set_once(values: dict[str, object], column: str, value: object, path: Path, lineno: int) -> None:
    """A record's patient or fold: the same on every row of that record."""
    old = values.setdefault(column, value)
    if old != value:
        raise DataError(f"{path}:{lineno}: {column} {value!r} differs from {old!r} on an earlier row "
                        f"of the same record")


def find_records(root: str | os.PathLike) -> dict[str, Path]:
    """Every .hea below root, keyed by its relative path without extension ('sub/dir/rec1'), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]  # pruned here, so never walked into
        for file in files:
            if file.endswith(".hea"):
                hea = Path(folder) / file
                found[hea.relative_to(root).with_suffix("").as_posix()] = hea
    if not found:
        raise DataError(f"data folder {root}: no .hea files (expected WFDB records)")
    return dict(sorted(found.items()))


def base_name_index(records: dict[str, Path]) -> dict[str, tuple[str, ...]]:
    """Base name -> the record names that end in it, for CSVs that give 'rec1' for 'sub/dir/rec1'."""
    index: dict[str, list[str]] = defaultdict(list)
    for name in records:
        index[name.rsplit("/", 1)[-1]].append(name)
    return {base: tuple(names) for base, names in index.items()}


def resolve_name(name: str, records: dict[str, Path], index: dict[str, tuple[str, ...]]) -> str | None:
    """The record a CSV name means: itself if it is a relative path on disk, else its unique base-name match."""
    if name in records:
        return name
    candidates = index.get(name, ())
    if len(candidates) > 1:
        raise DataError(f"labels CSV record {name!r} is ambiguous: it is the base name of "
                        f"{', '.join(candidates)}; give the relative path instead")
    return candidates[0] if candidates else None


def match(table: LabelTable, records: dict[str, Path]) -> Matched:
    """Pair each labelled record with its .hea; labelled records not on disk are an error, the reverse is not."""
    index = base_name_index(records)
    resolved: dict[str, int] = {}  # record name on disk -> row of the table
    missing = []
    for i, name in enumerate(table.names):
        found = resolve_name(name, records, index)
        if found is None:
            missing.append(name)
        elif found in resolved:
            raise DataError(f"labels CSV gives record {found} twice: as {table.names[resolved[found]]!r} "
                            f"and as {name!r}")
        else:
            resolved[found] = i
    if missing:
        raise DataError(f"{len(missing)} record(s) of the labels CSV have no .hea file among the "
                        f"{len(records)} found: {', '.join(missing[:_SHOWN])}"
                        + (", ..." if len(missing) > _SHOWN else ""))
    names = tuple(sorted(resolved))
    rows = [resolved[n] for n in names]
    folds = tuple(table.folds[i] for i in rows) if table.folds else ()
    _check_folds(folds)
    return Matched(
        names=names,
        paths=tuple(records[n] for n in names),
        labels=tuple(table.labels[i] for i in rows),
        patients=tuple(table.patients[i] for i in rows) if table.patients else (),
        folds=folds,
        unlabelled=tuple(n for n in records if n not in resolved),
    )


def _check_folds(folds: tuple[int, ...]) -> None:
    """Folds are 0..k-1 or 1..k: a gap means a fold the user expects to test on would silently be empty."""
    if not folds:
        return
    present = set(folds)
    if min(present) < 0:
        raise DataError(f"labels CSV: fold {min(present)} is negative (folds are 0..k-1 or 1..k)")
    first = 0 if 0 in present else 1
    empty = [f for f in range(first, max(present) + 1) if f not in present]
    if empty:
        raise DataError(f"labels CSV: fold(s) {', '.join(map(str, empty))} have no records (folds "
                        f"{sorted(present)} given; they must be {first}..{max(present)} without gaps)")


def read_record(hea_path: str | os.PathLike) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """(signal float32 (leads, samples) in mV, sampling rate, lead names) of one record."""
    hea = Path(hea_path)
    try:
        files = _signal_files(hea.read_text(errors="replace"))
    except OSError as exc:
        raise DataError(f"{hea}: unreadable header ({exc})") from None
    mats = {f for f in files if f.lower().endswith(".mat")}
    if mats:
        if len(mats) != 1 or len(set(files)) != 1:
            raise DataError(f"{hea}: signals in several files {sorted(set(files))}; a .mat record has one")
        _need_file(hea, hea.parent / files[0])
        # The challenge reader: its header parser accepts the real files' quirks (Georgia headers whose
        # first line names the .mat) that wfdb rejects, and loadmat reads 'val' wherever the file puts it.
        header, signal = cinc2020.read_record(hea, hea.parent / files[0])
        return signal, float(header.fs), header.leads
    for file in dict.fromkeys(files):
        _need_file(hea, hea.parent / file)
    return _read_wfdb(hea)


def _signal_files(text: str) -> list[str]:
    """The file name of each signal line (the first field after the record line).

    Empty for a multi-segment header ('name/2 ...'): its lines name segment records, which wfdb reads.
    """
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines or "/" in lines[0][0]:
        return []
    return [ln[0] for ln in lines[1:]]


def _need_file(hea: Path, file: Path) -> None:
    if not file.is_file():
        raise DataError(f"{hea}: signal file {file.name} is missing")


def _read_wfdb(hea: Path) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """A .dat record through wfdb, in mV whatever the header's units."""
    try:
        record = _wfdb().rdrecord(str(hea.with_suffix("")), physical=True)
    except Exception as exc:  # wfdb raises bare ValueErrors, IndexErrors and its own syntax errors
        raise DataError(f"{hea}: unreadable record ({type(exc).__name__}: {exc})") from None
    if record.p_signal is None or record.p_signal.size == 0:
        raise DataError(f"{hea}: no samples")
    scale = []
    for lead, unit in zip(record.sig_name, record.units, strict=True):
        if (unit or "mV").lower() not in _TO_MV:
            raise DataError(f"{hea}: lead {lead} is in {unit!r}; expected mV, uV or V")
        scale.append(_TO_MV[(unit or "mV").lower()])
    signal = (record.p_signal.T * np.array(scale)[:, None]).astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(signal)))
    if bad:
        raise DataError(f"{hea}: {bad} samples are missing or not finite (NaN in the signal)")
    return signal, float(record.fs), tuple(record.sig_name)


def patient_leakage(names: tuple[str, ...], patients: tuple[str, ...], folds: tuple[int, ...]
                    ) -> list[tuple[str, tuple[int, ...]]]:
    """Patients whose records sit in 2+ folds, with those folds, sorted by patient; [] without both columns."""
    if not patients or not folds:
        return []
    if not len(names) == len(patients) == len(folds):
        raise ValueError(f"{len(names)} names, {len(patients)} patients and {len(folds)} folds do not align")
    folds_of: dict[str, set[int]] = defaultdict(set)
    for patient, fold in zip(patients, folds, strict=True):
        folds_of[patient].add(fold)
    return [(p, tuple(sorted(f))) for p, f in sorted(folds_of.items()) if len(f) > 1]


def pick_leads(signal: np.ndarray, leads: tuple[str, ...], wanted: tuple[str, ...], record: str) -> np.ndarray:
    """The wanted leads' rows, in wanted order; names compare case-insensitively ('aVR' is 'AVR')."""
    index: dict[str, int] = {}
    for i, lead in enumerate(leads):
        index.setdefault(lead.strip().lower(), i)  # the first of two same-named leads, as wfdb lists them
    missing = [w for w in wanted if w.strip().lower() not in index]
    if missing:
        raise DataError(f"record {record}: no lead(s) {', '.join(missing)} (it has {', '.join(leads)})")
    return signal[[index[w.strip().lower()] for w in wanted]]
