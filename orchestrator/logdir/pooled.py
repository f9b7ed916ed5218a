"""A job's test predictions pooled over its folds, and what makes two jobs comparable.

Every finished classification fold wrote predictions.csv (orchestrator.logdir.writer):
one row per test record with its label(s), prediction(s) and probabilities. Pooled over
the folds of a job they cover the dataset once per cross-validation repeat, which is
what the bootstrap intervals of `summarize` and the paired bootstrap of `compare`
resample (ecgcore.metrics.bootstrap). `Design` is the part of a job that must be equal
for two jobs to be compared on the same test records: challenge, dataset, split and folds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from ecgcore.errors import ProjectError
from ecgcore.metrics.bootstrap import Pooled, bootstrap_intervals
from ecgcore.tracks import track_for
from orchestrator.logdir.reader import PREDICTIONS, FoldDir, JobDir


@dataclass(frozen=True)
class Design:
    """What two jobs must share to be compared fold by fold, record by record."""

    challenge: int
    data_dir: str
    split: str
    folds: tuple[int, ...]
    signature: str = ""  # the dataset's files (provenance's data_signatures); "" for a run before it was recorded

    def differences(self, other: Design) -> list[str]:
        """Each way other differs, in words; [] when the two are comparable."""
        out = []
        for name in ("challenge", "data_dir", "split", "folds"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "data_dir" and self.signature and other.signature:
                # The same files may sit at two paths (two checkouts, a cluster mount): the signature decides.
                mine, theirs, name = self.signature[:12], other.signature[:12], "data_signature"
            if mine != theirs:
                out.append(f"{name.replace('_', ' ')} {_show(mine)} vs {_show(theirs)}")
        return out


def classify_folds(job: JobDir) -> list[FoldDir]:
    """The job's finished classification folds (pre-training folds have no test predictions)."""
    return [f for f in job.finished_folds() if (f.scores() or {}).get("kind", "classify") != "pretrain"]


def design(job: JobDir) -> Design:
    folds = classify_folds(job)
    if not folds:
        raise ProjectError(f"{job.path}: no finished fold with test scores")
    last = folds[-1].scores()
    data_dir = str(last.get("data_dir"))
    signature = (last.get("provenance") or {}).get("data_signatures", {}).get(data_dir, "")
    return Design(folds[-1].challenge, data_dir, str(last.get("split")), tuple(f.fold for f in folds), signature)


def pooled_predictions(job: JobDir) -> Pooled:
    """The job's test predictions of every finished fold, in fold order (a repeated split: once per repeat)."""
    folds = classify_folds(job)
    if not folds:
        raise ProjectError(f"{job.path}: no finished fold with test predictions")
    challenge = folds[-1].challenge
    classes = tuple(folds[-1].scores().get("classes") or track_for(challenge).class_names)  # older runs: none
    rows = [row for fold in folds for row in _read(fold, classes)]
    multilabel = track_for(challenge).multilabel
    index = {c: i for i, c in enumerate(classes)}
    records = tuple(r[0] for r in rows)
    if multilabel:
        labels = _multi_hot([r[1] for r in rows], index)
        outputs = _multi_hot([r[2] for r in rows], index)
    else:
        labels = np.array([index[r[1]] for r in rows], dtype=np.int64)
        outputs = np.array([index[r[2]] for r in rows], dtype=np.int64)
    probs = np.array([r[3] for r in rows], dtype=np.float64).reshape(len(rows), len(classes))
    return Pooled(challenge, classes, records, labels, outputs, probs)


def _read(fold: FoldDir, classes: tuple[str, ...]) -> list[tuple[str, str, str, list[float]]]:
    """(record, label(s), prediction(s), probabilities) per row of the fold's predictions.csv."""
    path = fold.file(PREDICTIONS)
    try:
        with open(path, newline="") as fh:
            table = list(csv.reader(fh))
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the fold's test predictions ({exc.strerror}); "
                           "a fold written before predictions.csv existed cannot be pooled") from None
    if not table or len(table[0]) != 3 + len(classes):
        raise ProjectError(f"{path}: expected the columns record, label(s), prediction(s) and "
                           f"{len(classes)} probabilities")
    known = set(classes)
    rows = []
    for line, row in enumerate(table[1:], start=2):
        named = set(row[1].split()) | set(row[2].split())
        if len(row) != len(table[0]) or not named <= known:
            raise ProjectError(f"{path}, line {line}: not a prediction row of the classes {', '.join(classes)}")
        rows.append((row[0], row[1], row[2], [float(p) for p in row[3:]]))
    return rows


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
                "pooled": {m: _none(iv.point) for m, iv in self.intervals.items()},
                "ci": {m: [_none(iv.low), _none(iv.high)] for m, iv in self.intervals.items()}}


def job_intervals(job: JobDir, resamples: int, seed: int, level: float) -> tuple[JobIntervals | None, str]:
    """The job's intervals, or None and the reason there are none (no predictions, too few records...)."""
    try:
        pooled = pooled_predictions(job)
        intervals = bootstrap_intervals(pooled, n_resamples=resamples, seed=seed, level=level)
    except (ProjectError, ValueError) as exc:
        return None, f"no bootstrap interval: {exc}"
    return JobIntervals(resamples, seed, level, len(set(pooled.records)), len(pooled.records), intervals), ""


def _none(value: float):
    return None if np.isnan(value) else float(value)
