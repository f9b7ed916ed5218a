"""A trained fold as a typed artefact: a fold folder loaded into something that classifies records.

A fold folder holds its resolved model file (`model.json`), its best weights
(`best_model.pt`: a network's, or a booster's inside its module) and, once
finished, its scores (`scores.json`: the track with its options and classes,
the rate the fold was trained at, the per-class thresholds of a multi-label
track; before that, `job.json` names the track).
`TrainedFold.load` reads the three into one object that knows its network,
preprocessing, sampling rate, leads, thresholds and track, and
`probabilities(records)` classifies records as the fold would have: the
commands that use a trained model (`predict`, `ensemble`, `export`) and the
MLflow tracker go through it, and so can any script, without the orchestrator.
The file names are declared here, once; the orchestrator's log reader uses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.config.model import ModelConfig
from ecgcore.errors import ProjectError
from ecgcore.records import Records

JOB = "job.json"
MODEL = "model.json"
SCORES = "scores.json"
BEST_MODEL = "best_model.pt"


@dataclass(frozen=True)
class TrainedFold:
    path: Path
    model: ModelConfig
    track: object  # ecgcore.tracks: classes, output kind, metric, how answers are written
    source_fs: float | None  # the rate the fold's records had (its model resamples from there)
    thresholds: np.ndarray | None  # per class (multi-label); None: the largest probability decides

    @classmethod
    def load(cls, folder: str | Path) -> TrainedFold:
        """The fold at folder; ProjectError naming what is missing or unreadable."""
        from ecgcore.config.modelfile import parse_model
        from ecgcore.tracks import logged_track

        folder = Path(folder)
        for name in (MODEL, BEST_MODEL):
            if not (folder / name).is_file():
                raise ProjectError(f"{folder}: no {name}, not a trained fold")
        # A fold still training has no scores.json yet: its job.json names the track, and it has no thresholds.
        scores = {**(_json(folder / JOB) if (folder / JOB).is_file() else {}),
                  **(_json(folder / SCORES) if (folder / SCORES).is_file() else {})}
        model = parse_model(_json(folder / MODEL), folder / MODEL)
        track = logged_track(scores.get)
        stored = scores.get("thresholds")
        thresholds = np.array([stored[c] for c in track.class_names], dtype=np.float64) if stored else None
        if track.multilabel and thresholds is None:
            thresholds = np.full(len(track.class_names), 0.5)
        return cls(folder, model, track, scores.get("source_fs"), thresholds)

    @property
    def fs(self) -> float | None:
        """The rate the network takes (the model file's, else the rate it was trained at)."""
        return self.model.preprocessing.fs or self.source_fs

    @property
    def leads(self) -> tuple[str, ...] | None:
        """The leads the model picks by name; None: every lead of the record, as in training."""
        return self.model.preprocessing.leads

    def pipeline(self, records: Records):
        from ecgcore.data.pipeline import pipeline_for

        return pipeline_for(self.model, records, self.source_fs)

    def network(self, inputs):
        """The best model on the CPU, in eval mode."""
        import torch

        from ecgcore.models import create_model

        net = create_model(self.model, inputs, len(self.track.class_names))
        net.load_state_dict(torch.load(self.path / BEST_MODEL, map_location="cpu", weights_only=True))
        return net.eval()

    def probabilities(self, records: Records, prepared_by: dict | None = None) -> np.ndarray:
        """(records, classes) probabilities, the records preprocessed as this fold's were.

        prepared_by keeps the prepared records per preprocessing across calls, so the folds of a job (which
        share it) preprocess the records once: for a features model that is the feature extraction.
        """
        import torch

        from ecgcore.data.pipeline import prepare_records
        from ecgcore.inference import predict_proba

        pipeline = self.pipeline(records)
        key = (repr(self.model.preprocessing), pipeline.inputs.kind, pipeline.source_fs)
        prepared = (prepared_by or {}).get(key)
        if prepared is None:
            prepared = prepare_records(pipeline, records)
            if prepared_by is not None:
                prepared_by[key] = prepared
        items = pipeline.eval_items(prepared)
        return predict_proba(self.network(pipeline.inputs), pipeline, items, items.owners, len(records),
                             torch.device("cpu"), multilabel=self.track.multilabel)


def ensemble(folds: list[TrainedFold], records: Records) -> tuple[np.ndarray, np.ndarray | None]:
    """The folds' mean probabilities and, for a multi-label track, their mean thresholds."""
    prepared_by: dict = {}
    return ensemble_mean(folds, [f.probabilities(records, prepared_by) for f in folds])


def ensemble_mean(folds: list[TrainedFold], probs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """The mean of the folds' probabilities and, for a multi-label track, of their thresholds."""
    if folds[0].thresholds is None:
        return np.mean(probs, axis=0), None
    return np.mean(probs, axis=0), np.mean([f.thresholds for f in folds], axis=0)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProjectError(f"{path}: unreadable ({exc})") from None
