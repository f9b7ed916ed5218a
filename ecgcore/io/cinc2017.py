"""Reader for the PhysioNet/CinC 2017 AF challenge dataset.

A dataset folder holds `REFERENCE.csv` ("record,label" lines, labels N/A/O/~)
and one `.hea` + `.mat` pair per record, found anywhere below the folder: the
unzipped `training2017/` folder, or the reference repository's `mat_files/` +
`hea_files/` layout. Headers are parsed with wfdb; samples come from the
MATLAB v4 variable `val` and are converted to mV with the header's gain and
baseline. Every problem found is reported with the file and what is wrong.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from ecgcore.errors import DataError

CLASSES = ("N", "A", "O", "~")
FS = 300
REFERENCE_FILE = "REFERENCE.csv"
_MAX_LISTED = 20
_RECORD_NUMBER = re.compile(r"^[A-Za-z]*(\d+)$")


@dataclass(frozen=True)
class Dataset:
    """Records of one dataset folder, in REFERENCE.csv order."""

    root: str
    names: tuple[str, ...]
    labels: np.ndarray  # int64 class indices into CLASSES
    signals: tuple[np.ndarray, ...]  # float32, mV, one 1-D array per record
    fs: int

    def __len__(self) -> int:
        return len(self.names)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts, strict=False)}


def record_number(name: str) -> int:
    """The reference repository's record id: A00005 -> 5."""
    match = _RECORD_NUMBER.match(name)
    if not match:
        raise DataError(f"record name {name!r} does not end in a record number (like A00005)")
    return int(match.group(1))


def read_reference(root: Path) -> dict[str, str]:
    """Labels from REFERENCE.csv; problems name the line."""
    path = root / REFERENCE_FILE
    if not path.is_file():
        raise DataError(f"{root}: no {REFERENCE_FILE} (expected 'record,label' lines)")
    labels: dict[str, str] = {}
    problems = []
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a text file of 'record,label' lines ({exc})") from None
    for lineno, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            problems.append(f"{path}:{lineno}: expected 'record,label', got {','.join(row)!r}")
            continue
        name, label = row[0].strip(), row[1].strip()
        if not _RECORD_NUMBER.match(name):
            problems.append(f"{path}:{lineno}: record name {name!r} does not end in a record number (like A00005)")
        elif label not in CLASSES:
            problems.append(f"{path}:{lineno}: record {name}: label {label!r} is not one of N, A, O, ~")
        elif name in labels:
            problems.append(f"{path}:{lineno}: record {name} is listed twice")
        else:
            labels[name] = label
    _raise_if(problems, f"{path}: bad label file")
    if not labels:
        raise DataError(f"{path}: no labelled records")
    return labels


def find_record_files(root: Path) -> dict[str, tuple[Path | None, Path | None]]:
    """Map record name -> (header, samples) for every .hea/.mat below root."""
    found: dict[str, list[Path | None]] = {}
    for suffix, slot in ((".hea", 0), (".mat", 1)):
        for path in sorted(root.rglob(f"*{suffix}")):
            entry = found.setdefault(path.stem, [None, None])
            if entry[slot] is not None:
                raise DataError(f"record {path.stem}: two {suffix} files: {entry[slot]} and {path}")
            entry[slot] = path
    return {name: (hea, mat) for name, (hea, mat) in found.items()}


def _wfdb():
    """wfdb, imported when a record is read: it brings pandas (0.6 s), which CLASSES' users never need."""
    with warnings.catch_warnings():
        # wfdb's annotation tables call a pandas API that pandas 3.x deprecates;
        # the warning fires at import and says nothing about our data.
        warnings.simplefilter("ignore")
        import wfdb
    return wfdb


def read_record(hea: Path, mat: Path) -> tuple[np.ndarray, int]:
    """One single-lead record in mV and its sampling rate; DataError if unusable."""
    try:
        header = _wfdb().rdheader(str(hea.with_suffix("")))
    except Exception as exc:  # wfdb raises bare ValueErrors and friends
        raise DataError(f"{hea}: unreadable header: {exc}") from None
    if header.n_sig != 1:
        raise DataError(f"{hea}: {header.n_sig} signals in header, a CinC 2017 record has 1")
    try:
        val = scipy.io.loadmat(str(mat))["val"]
    except KeyError:
        raise DataError(f"{mat}: no variable 'val'") from None
    except Exception as exc:
        raise DataError(f"{mat}: unreadable MATLAB file ({type(exc).__name__}: {exc})") from None
    val = np.asarray(val)
    if val.ndim != 2 or val.shape[0] != 1:
        raise DataError(f"{mat}: 'val' has shape {val.shape}, expected (1, samples)")
    if val.shape[1] != header.sig_len:
        raise DataError(
            f"{mat}: {val.shape[1]} samples but header {hea.name} says {header.sig_len} (truncated?)"
        )
    if val.shape[1] == 0:
        raise DataError(f"{mat}: zero-length record")
    gain = float(header.adc_gain[0]) or 200.0  # WFDB: gain 0 means the default 200
    signal = (val[0].astype(np.float64) - float(header.baseline[0])) / gain
    if not np.all(np.isfinite(signal)):
        raise DataError(f"{mat}: samples are not finite")
    return signal.astype(np.float32), int(round(header.fs))


def load_dataset(root: str | Path) -> Dataset:
    """Read every labelled record below root; all problems are reported at once."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    labels = read_reference(root)
    files = find_record_files(root)
    problems = [f"{root / REFERENCE_FILE}: record {n} has no .hea/.mat files" for n in labels if n not in files]
    problems += [f"{files[n][0] or files[n][1]}: record {n} has no label in {REFERENCE_FILE}"
                 for n in files if n not in labels]
    names, signals, rates = [], [], {}  # rate -> the first record at that rate
    for name in labels:
        if name not in files:
            continue
        hea, mat = files[name]
        if hea is None or mat is None:
            problems.append(f"record {name}: missing {'.hea' if hea is None else '.mat'} file "
                            f"(have {hea or mat})")
            continue
        try:
            signal, fs = read_record(hea, mat)
        except DataError as exc:
            problems.append(str(exc))
            continue
        names.append(name)
        signals.append(signal)
        rates.setdefault(fs, name)
    _raise_if(problems, f"dataset {root}")
    if len(rates) != 1:
        raise DataError(f"dataset {root}: records have different sampling rates: "
                        + ", ".join(f"{fs} Hz (first record {rates[fs]})" for fs in sorted(rates)))
    return Dataset(
        root=str(root.resolve()),
        names=tuple(names),
        labels=np.array([CLASSES.index(labels[n]) for n in names], dtype=np.int64),
        signals=tuple(signals),
        fs=next(iter(rates)),
    )


def _raise_if(problems: list[str], context: str) -> None:
    if not problems:
        return
    shown = "\n  ".join(problems[:_MAX_LISTED])
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise DataError(f"{context}: {len(problems)} problem(s):\n  {shown}{more}")
