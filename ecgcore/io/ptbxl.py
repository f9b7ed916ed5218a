"""Reader for PTB-XL (Wagner et al. 2020, Sci Data 7:154) in its own PhysioNet layout.

A PTB-XL folder holds `ptbxl_database.csv` (one row per record: patient,
`scp_codes` as a Python dict literal, `strat_fold`, and the paths of the
100 Hz and 500 Hz WFDB records), `scp_statements.csv` (the 71 SCP-ECG
statements and which of them are diagnostic, form or rhythm statements, with
the diagnostic sub- and superclass) and `records100/`, `records500/`.

`read_labels` turns the table into multi-hot targets for one of the six tasks
of the PTB-XL benchmark (Strodthoff et al. 2021, IEEE JBHI), following
github.com/helme/ecg_ptbxl_benchmarking `code/utils/utils.py`:
`compute_label_aggregations` (which statements make up each task) and
`select_data` (rare classes dropped, then records left without a label
dropped, classes ordered as sklearn's MultiLabelBinarizer orders them).
Every key of `scp_codes` counts, whatever its likelihood (`'SR': 0.0` is a
sinus rhythm label), as in the benchmark. `read_records` reads the signals of
the records `read_labels` kept, in mV, with wfdb.
"""

from __future__ import annotations

import ast
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.errors import DataError

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
RATES = (100, 500)
DATABASE = "ptbxl_database.csv"
STATEMENTS = "scp_statements.csv"
_DATABASE_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
_STATEMENT_COLUMNS = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")
# The diagnostic tasks: the scp_statements.csv column naming a diagnostic statement's label (None: the code itself).
_DIAGNOSTIC_LABEL = {"diagnostic": None, "subdiagnostic": "diagnostic_subclass", "superdiagnostic": "diagnostic_class"}


@dataclass(frozen=True)
class PtbxlLabels:
    """The records kept for one task, in `ptbxl_database.csv` order, and their multi-hot targets."""

    names: tuple[str, ...]  # ecg_id zero-padded to 5 digits, as in the file names ("06003")
    classes: tuple[str, ...]  # sorted, as MultiLabelBinarizer orders them
    targets: np.ndarray  # (records, classes) bool
    patients: tuple[str, ...]  # patient_id as an integer string ("7050")
    folds: tuple[int, ...]  # strat_fold, 1..10 (9 validation, 10 test in the benchmark)
    files: tuple[str, ...]  # filename_lr or filename_hr (by sampling rate), relative to the root
    dropped: tuple[str, ...]  # records left without a label for this task


def _read_csv(path: Path, needed: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist: a PTB-XL folder holds ptbxl_database.csv, scp_statements.csv and "
                        "records100/ or records500/ (`data fetch ptbxl` downloads it)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in needed if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: column(s) {', '.join(missing)} missing from the header")
        return list(reader)


def _flag(value: str, code: str, column: str) -> bool:
    """scp_statements.csv marks membership with 1.0 and leaves the cell empty otherwise."""
    try:
        return value.strip() != "" and float(value) == 1.0
    except ValueError:
        raise DataError(f"{STATEMENTS}: statement {code}: {column} {value!r} is neither empty nor a number") from None


def _statement_map(rows: list[dict[str, str]], task: str) -> dict[str, str]:
    """Statement code -> the label it gives for this task, as compute_label_aggregations builds them."""
    out = {}
    for row in rows:
        code = next(iter(row.values()))  # the first, unnamed column holds the statement code
        if task in _DIAGNOSTIC_LABEL:
            column = _DIAGNOSTIC_LABEL[task]
            # A diagnostic statement without a sub- or superclass (an empty cell) gives no label.
            if _flag(row["diagnostic"], code, "diagnostic") and (column is None or row[column].strip()):
                out[code] = code if column is None else row[column]
        elif _flag(row[task], code, task):
            out[code] = code
    return out


def _scp_codes(row: dict[str, str], database: Path) -> dict:
    cell = row["scp_codes"]
    try:
        codes = ast.literal_eval(cell)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        codes = None
    if not isinstance(codes, dict):
        raise DataError(f"{database}: ecg_id {row['ecg_id']}: scp_codes {cell!r} is not a Python dict literal")
    return codes


def _task_labels(rows: list[dict[str, str]], statements: list[dict[str, str]], task: str,
                 database: Path) -> list[set[str]]:
    if task == "all":
        return [set(_scp_codes(row, database)) for row in rows]
    mapping = _statement_map(statements, task)
    return [{mapping[code] for code in _scp_codes(row, database) if code in mapping} for row in rows]


def _keep_frequent(labels: list[set[str]], task: str, min_samples: int) -> list[set[str]]:
    """select_data: every task but `diagnostic` keeps only the classes seen in more than min_samples records."""
    if task == "diagnostic":
        return labels
    counts: dict[str, int] = {}
    for record in labels:
        for label in record:
            counts[label] = counts.get(label, 0) + 1
    frequent = {label for label, count in counts.items() if count > min_samples}
    return [record & frequent for record in labels]


def _int_text(value: str, what: str, ecg_id: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise DataError(f"{DATABASE}: ecg_id {ecg_id}: {what} {value!r} is not a number") from None


def read_labels(root, task: str, sampling_rate: int = 500, min_samples: int = 0) -> PtbxlLabels:
    """The PTB-XL benchmark's labels for `task`; reads the two CSV files only, no signal."""
    if task not in TASKS:
        raise DataError(f"unknown PTB-XL task {task!r}; expected one of {', '.join(TASKS)}")
    if sampling_rate not in RATES:
        raise DataError(f"PTB-XL sampling_rate {sampling_rate!r} is not available; expected 100 or 500")
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"PTB-XL folder {folder} does not exist")
    rows = _read_csv(folder / DATABASE, _DATABASE_COLUMNS)
    statements = _read_csv(folder / STATEMENTS, _STATEMENT_COLUMNS)
    labels = _keep_frequent(_task_labels(rows, statements, task, folder / DATABASE), task, min_samples)
    names = [f"{_int_text(row['ecg_id'], 'ecg_id', row['ecg_id']):05d}" for row in rows]
    kept = [i for i, record in enumerate(labels) if record]
    classes = tuple(sorted(set().union(*(labels[i] for i in kept))))
    column = {c: j for j, c in enumerate(classes)}
    targets = np.zeros((len(kept), len(classes)), dtype=bool)
    for r, i in enumerate(kept):
        targets[r, [column[c] for c in labels[i]]] = True
    file_column = "filename_lr" if sampling_rate == 100 else "filename_hr"
    return PtbxlLabels(
        names=tuple(names[i] for i in kept),
        classes=classes,
        targets=targets,
        patients=tuple(str(_int_text(rows[i]["patient_id"], "patient_id", rows[i]["ecg_id"])) for i in kept),
        folds=tuple(_int_text(rows[i]["strat_fold"], "strat_fold", rows[i]["ecg_id"]) for i in kept),
        files=tuple(rows[i][file_column] for i in kept),
        dropped=tuple(name for name, record in zip(names, labels, strict=True) if not record),
    )


def check_records_folder(folder: Path, labels: PtbxlLabels, sampling_rate: int) -> None:
    """DataError unless the rate's folder is there and labels were read for that rate."""
    if sampling_rate not in RATES:
        raise DataError(f"PTB-XL sampling_rate {sampling_rate!r} is not available; expected 100 or 500")
    sub = folder / f"records{sampling_rate}"
    if not sub.is_dir():
        other = 500 if sampling_rate == 100 else 100
        raise DataError(f"{sub} does not exist: this PTB-XL copy has no {sampling_rate} Hz records "
                        f"(sampling_rate {sampling_rate}); use sampling_rate {other} or fetch the full dataset")
    wrong = [f for f in labels.files if not f.startswith(f"records{sampling_rate}/")]
    if wrong:
        raise DataError(f"the labels name {wrong[0]}, not a records{sampling_rate}/ file: "
                        f"read_labels and read_records were given different sampling rates")


def _read_one(folder: Path, file: str, sampling_rate: int) -> tuple[np.ndarray, tuple[str, ...]]:
    import wfdb  # imported here: reading labels alone needs no signal library

    path = folder / file
    for ext in (".hea", ".dat"):
        if not path.with_name(path.name + ext).is_file():
            raise DataError(f"PTB-XL record file {path}{ext} is missing")
    try:
        signal, fields = wfdb.rdsamp(str(path))
    except (ValueError, OSError) as exc:
        raise DataError(f"PTB-XL record {path} cannot be read: {exc}") from None
    if fields["fs"] != sampling_rate:
        raise DataError(f"PTB-XL record {path} is sampled at {fields['fs']} Hz, not {sampling_rate} Hz")
    if any(str(u).lower() != "mv" for u in fields["units"]):
        raise DataError(f"PTB-XL record {path} has units {fields['units']}, expected mV")
    return np.ascontiguousarray(signal.T, dtype=np.float32), tuple(fields["sig_name"])


def read_records(root, labels: PtbxlLabels, sampling_rate: int) -> tuple[list[np.ndarray], float, tuple[str, ...]]:
    """The signals of labels' records as float32 (leads, samples) in mV, the rate and the lead names."""
    folder = Path(root)
    check_records_folder(folder, labels, sampling_rate)
    signals, leads = [], None
    for file in labels.files:
        signal, names = _read_one(folder, file, sampling_rate)
        if leads is None:
            leads = names
        elif names != leads:
            raise DataError(f"PTB-XL record {folder / file} has leads {names}, the first record {leads}")
        signals.append(signal)
    return signals, float(sampling_rate), leads or ()
