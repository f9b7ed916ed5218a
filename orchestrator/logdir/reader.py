"""Reading the log folder: log/<architecture>/<job>/fold<k>/ (orchestrator.logdir.writer writes it).

Every command that reads results goes through JobDir and FoldDir: the file
names are declared here once, and so is the track of a run that predates
tracks (it recorded a challenge year, or none: CinC 2017). Reading imports neither
torch nor Ray, so `status` and `summarize` stay light; `write_json_atomic` is
here too, for the commands that write a result beside the folds (ensemble.json,
summary.json) without the fold writer's torch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ecgcore.tracks import logged_track, logged_track_name
from ecgcore.trained import BEST_MODEL, JOB, MODEL, SCORES  # noqa: F401 -- the log's names, declared with the artefact

HOTLOG = "hotlog.csv"
PREDICTIONS = "predictions.csv"
VALIDATIONS = "validations.jsonl"
ATTEMPT = "attempt.json"
ERROR = "error.txt"
ENSEMBLE = "ensemble.json"  # in the job folder: the fold models together on the hold-out part
SUMMARY = "summary.json"  # in the architecture folder: every job's cross-validation scores
LOCK = ".lock"  # in the job folder while a submit writes it
MLFLOW_RUNS = "mlflow.json"  # in the job folder: its MLflow parent and fold run ids (submit --mlflow), for resume

# What the scheduler gave a fold, in attempt.json and scores.json: Ray's GPU ids and the process's CUDA_VISIBLE_DEVICES.
PLACEMENT_KEYS = ("gpu_ids", "cuda_visible_devices", "workers")  # "workers": a DDP fold's ranks

_FOLD = re.compile(r"^fold(\d+)$")


def read_json_or_none(path: Path) -> dict | None:
    """A JSON file's content; None when it is absent or half-written (a writer was interrupted)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def json_value(value):
    """A value as JSON holds it: an undefined number (NaN, or inf: a metric without positives, a t-statistic
    without variance) becomes null; anything else is kept."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json_atomic(path: Path, content) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class FoldDir:
    """One fold's folder. A fold is finished when its scores.json exists (written last, atomically).

    Each JSON file is read once, when first asked for (the year, the scores and the thresholds all come
    from scores.json): a FoldDir is a snapshot, so look again with a new one.
    """

    path: Path
    _read: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _json(self, name: str) -> dict | None:
        if name not in self._read:
            self._read[name] = read_json_or_none(self.path / name)
        return self._read[name]

    @property
    def fold(self) -> int | None:
        match = _FOLD.match(self.path.name)
        return int(match.group(1)) if match else None

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def finished(self) -> bool:
        return (self.path / SCORES).exists()

    @property
    def has_model(self) -> bool:
        return (self.path / BEST_MODEL).exists()

    def scores(self) -> dict | None:
        return self._json(SCORES)

    def job(self) -> dict:
        """The resolved job (with its fold id) the fold ran; {} before it started."""
        return self._json(JOB) or {}

    def model(self) -> dict | None:
        return self._json(MODEL)

    def attempt(self) -> dict | None:
        return self._json(ATTEMPT)

    def recorded(self, key: str):
        """A value the fold's own files record: scores.json's, else job.json's; None where neither has it."""
        for content in (self.scores(), self.job()):
            if content and key in content:
                return content[key]
        return None

    @property
    def track_name(self) -> str:
        """The track the fold ran on (ecgcore.tracks.logged_track_name)."""
        return logged_track_name(self.recorded)

    def track(self):
        """The fold's track as the fold recorded it: its options and, once it finished, its classes."""
        return logged_track(self.recorded)

    def validations(self) -> list[dict]:
        """Every validation row as written (validations.jsonl, typed values), in order; [] before the first."""
        path = self.path / VALIDATIONS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def hotlog(self) -> list[dict]:
        """The validation rows as written (strings); [] before the first validation."""
        try:
            with open(self.path / HOTLOG, newline="") as fh:
                return list(csv.DictReader(fh))
        except OSError:
            return []

    def error_lines(self) -> list[str] | None:
        """The non-empty lines of the failed attempt's trace; None when the fold has not failed."""
        path = self.path / ERROR
        if not path.exists():
            return None
        return [line for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class JobDir:
    """One job's folder: its fold folders, its ensemble result, its lock."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def architecture(self) -> str:
        return self.path.parent.name

    def folds(self) -> list[FoldDir]:
        """Every fold folder, by fold id."""
        if not self.path.is_dir():
            return []
        folds = [FoldDir(d) for d in self.path.iterdir() if d.is_dir() and _FOLD.match(d.name)]
        return sorted(folds, key=lambda f: f.fold)

    def finished_folds(self) -> list[FoldDir]:
        return [f for f in self.folds() if f.finished]

    def expected_folds(self) -> list[int]:
        """The fold ids the job asks for (its folds' job.json cvids), started or not."""
        return sorted({int(k) for f in self.folds() for k in f.job().get("cvids", [])})

    def ensemble(self) -> dict | None:
        return read_json_or_none(self.path / ENSEMBLE)

    def lock_holder(self) -> dict | None:
        return read_json_or_none(self.path / LOCK)


def job_dirs(log_dir: Path, architecture: str) -> list[JobDir]:
    """The job folders of one architecture, by name."""
    arch_dir = log_dir / architecture
    return [JobDir(p) for p in sorted(arch_dir.iterdir()) if p.is_dir()] if arch_dir.is_dir() else []


def architectures(log_dir: Path) -> list[str]:
    """The architectures with a folder under log_dir (not Tune's .tune nor the data .cache)."""
    if not log_dir.is_dir():
        return []
    return sorted(p.name for p in log_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def all_folds(log_dir: Path) -> list[FoldDir]:
    """Every fold folder under log_dir, by architecture, job and fold."""
    return [fold for arch in architectures(log_dir) for job in job_dirs(log_dir, arch) for fold in job.folds()]
