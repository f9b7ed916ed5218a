"""A job's test predictions pooled over its folds, and what makes two jobs comparable.

Every finished classification fold wrote predictions.csv (orchestrator.logdir.writer):
one row per test record with its label(s), prediction(s) and probabilities. Pooled over
the folds of a job they cover the dataset once per cross-validation repeat, which is
what the bootstrap intervals of `summarize` and the paired bootstrap of `compare`
resample (ecgcore.metrics.bootstrap); `read_predictions` is the one reader of that file
(the confusion plots use it too). `Design` is the part of a job that must be equal
for two jobs to be compared on the same test records: track, dataset, split and folds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.errors import ProjectError
from ecgcore.io.signature import SIGNATURE_SCHEME
from ecgcore.metrics.bootstrap import Pooled, bootstrap_intervals
from orchestrator.logdir.reader import PREDICTIONS, FoldDir, json_value


@dataclass(frozen=True)
class Design:
    """What two jobs must share to be compared fold by fold, record by record."""

    track: str
    data_dir: str
    split: str
    folds: tuple[int, ...]
    # The dataset's files by content (provenance's data_signatures); "" for a run that recorded none, or one
    # made by an earlier scheme (names, sizes and modification times: a re-copied dataset changed it).
    signature: str = ""

    def differences(self, other: Design) -> list[str]:
        """Each way other differs, in words; [] when the two are comparable."""
        out = []
        for name in ("track", "data_dir", "split", "folds"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "data_dir" and self.signature and other.signature:
                # The same files may sit at two paths (two checkouts, a cluster mount): the signature decides.
                mine, theirs, name = self.signature[:12], other.signature[:12], "data_signature"
            if mine != theirs:
                out.append(f"{name.replace('_', ' ')} {_show(mine)} vs {_show(theirs)}")
        return out


def classify_folds(folds: list[FoldDir]) -> list[FoldDir]:
    """The finished classification folds among a job's folds (pre-training folds have no test predictions)."""
    return [f for f in folds if f.finished and (f.scores() or {}).get("kind", "classify") != "pretrain"]


def design(folds: list[FoldDir]) -> Design:
    """The design of a job from its finished classification folds (classify_folds, at least one)."""
    last = folds[-1].scores()
    data_dir = str(last.get("data_dir"))
    recorded = last.get("provenance") or {}
    signature = recorded.get("data_signatures", {}).get(data_dir, "")
    if recorded.get("data_signature_scheme") != SIGNATURE_SCHEME:
        signature = ""  # an earlier scheme's signature says nothing about content: compare by the path
    return Design(folds[-1].track_name, data_dir, str(last.get("split")), tuple(f.fold for f in folds), signature)


@dataclass(frozen=True)
class FoldPredictions:
    """One fold's predictions.csv: per row the record, its label(s), the prediction(s), the probabilities."""

    classes: tuple[str, ...]  # from the p_<class> columns (p_noise: "~")
    multilabel: bool  # "labels" and "predictions" columns of space-separated class names
    records: tuple[str, ...]
    labels: np.ndarray  # single label: (rows,) class index; multi-label: (rows, classes) bool
    outputs: np.ndarray  # the same for the prediction(s)
    probs: np.ndarray  # (rows, classes)


def read_predictions(path: Path) -> FoldPredictions:
    """predictions.csv as writer.write_predictions writes it; ProjectError naming the line that is not."""
    try:
        with open(path, newline="") as fh:
            table = list(csv.reader(fh))
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the fold's test predictions ({exc.strerror})") from None
    header = table[0] if table else []
    if len(header) < 4 or header[0] != "record" or not all(h.startswith("p_") for h in header[3:]):
        raise ProjectError(f"{path}: expected the columns record, label(s), prediction(s), p_<class>...")
    classes = tuple("~" if h[2:] == "noise" else h[2:] for h in header[3:])
    index = {c: i for i, c in enumerate(classes)}
    rows = table[1:]
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header) or not set(row[1].split()) | set(row[2].split()) <= index.keys():
            raise ProjectError(f"{path}, line {line}: not a prediction row of the classes {', '.join(classes)}")
    multilabel = header[1] == "labels"
    if multilabel:
        labels, outputs = _multi_hot([r[1] for r in rows], index), _multi_hot([r[2] for r in rows], index)
    else:
        labels = np.array([index[r[1]] for r in rows], dtype=np.int64)
        outputs = np.array([index[r[2]] for r in rows], dtype=np.int64)
    probs = np.array([[float(p) for p in r[3:]] for r in rows], dtype=np.float64).reshape(len(rows), len(classes))
    return FoldPredictions(classes, multilabel, tuple(r[0] for r in rows), labels, outputs, probs)


def pooled_predictions(folds: list[FoldDir]) -> Pooled:
    """The test predictions of a job's finished classification folds, in fold order (a repeated split: once per
    repeat)."""
    if not folds:
        raise ProjectError("no finished fold with test predictions")
    tables = [read_predictions(fold.file(PREDICTIONS)) for fold in folds]
    classes = tables[0].classes
    for fold, table in zip(folds, tables, strict=True):
        if table.classes != classes:
            raise ProjectError(f"{fold.file(PREDICTIONS)}: classes {', '.join(table.classes)}, but fold "
                               f"{folds[0].fold} has {', '.join(classes)}")
    return Pooled(folds[-1].track(), classes, tuple(r for t in tables for r in t.records),
                  np.concatenate([t.labels for t in tables]), np.concatenate([t.outputs for t in tables]),
                  np.concatenate([t.probs for t in tables]))


def _multi_hot(cells: list[str], index: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(cells), len(index)), dtype=bool)
    for i, cell in enumerate(cells):
        for name in cell.split():
            out[i, index[name]] = True
    return out


def _show(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


@dataclass(frozen=True)
class JobIntervals:
    """A job's bootstrap intervals: the pooled score of each metric and its percentile interval."""

    resamples: int
    seed: int
    level: float
    n_records: int
    n_rows: int
    intervals: dict  # metric name -> ecgcore.metrics.bootstrap.Interval

    def to_json(self) -> dict:
        return {"resamples": self.resamples, "seed": self.seed, "level": self.level, "unit": "record",
                "n_records": self.n_records, "n_rows": self.n_rows,
                "pooled": {m: json_value(iv.point) for m, iv in self.intervals.items()},
                "ci": {m: [json_value(iv.low), json_value(iv.high)] for m, iv in self.intervals.items()}}


def job_intervals(folds: list[FoldDir], resamples: int, seed: int, level: float) -> tuple[JobIntervals | None, str]:
    """A job's intervals from its classification folds, or None and the reason there are none (no predictions...)."""
    try:
        pooled = pooled_predictions(folds)
        intervals = bootstrap_intervals(pooled, n_resamples=resamples, seed=seed, level=level)
    except (ProjectError, ValueError) as exc:
        return None, f"no bootstrap interval: {exc}"
    return JobIntervals(resamples, seed, level, len(set(pooled.records)), len(pooled.records), intervals), ""
