"""From a Task to model inputs: dataset, fold subsets, the input pipeline, batches.

The task's track (ecgcore.tracks) reads the dataset and splits it. The dataset
is read once per process and kept (trial actors are reused, so a second fold
on the same worker does not re-read it). `Pipeline` turns a record into what
the architecture takes (see ecgcore.models): it resamples and standardises
once per record, augments and draws random windows for training, and cuts
evaluation windows whose probabilities are averaged per record. Inputs are
computed batch by batch (ecgcore.data.inputs), not held for a whole fold.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from ecgcore.config.model import ModelConfig
from ecgcore.config.task import Task
from ecgcore.data import augment, preprocess
from ecgcore.data.inputs import EvalInputs, TrainInputs
from ecgcore.data.splits import Split
from ecgcore.errors import DataError
from ecgcore.models import InputSpec, get_architecture
from ecgcore.records import Records


class Pipeline:
    """Record (leads, samples) at its own rate -> model inputs, per a model file."""

    def __init__(self, model: ModelConfig, source_fs: float, n_leads: int):
        self.pre, self.aug = model.preprocessing, model.data_augmentation
        kind = get_architecture(model.model_name).input
        self.source_fs = float(source_fs)
        self.fs = float(self.pre.fs or source_fs)
        self.n_leads = len(self.pre.leads) if self.pre.leads else n_leads
        if kind == "features":
            self.n_leads = 1  # single-lead features; a prepared record's rows are its features, not leads
        n_freqs = self.pre.nperseg // 2 + 1 if kind == "spectrogram" else None
        n_features = len(_feature_set().FEATURE_NAMES) if kind == "features" else None
        self.inputs = InputSpec(kind, self.n_leads, self.fs, self.pre.window, n_freqs, n_features)
        self.stride = self.pre.window_stride or max(1, (self.pre.window or 2) // 2)

    def prepare(self, signal: np.ndarray, fs: float | None = None, leads: tuple[str, ...] = ()) -> np.ndarray:
        """Lead selection, filters at the record's rate, resampling, standardisation.

        A features model's record becomes its feature vector here, as (n_features, 1): computed once
        per dataset, cached and shared like any prepared record, and a one-step input from then on.
        """
        fs = self.source_fs if fs is None else float(fs)
        if self.pre.fs is None and fs != self.source_fs:
            raise DataError(f"is at {fs:g} Hz, the model takes {self.source_fs:g} Hz (the rate it was trained "
                            "at, or the dataset's first record's): set preprocessing.fs in the model file to "
                            "resample every record to one rate")
        x = np.atleast_2d(signal).astype(np.float32)
        if self.pre.leads:
            missing = [lead for lead in self.pre.leads if lead not in leads]
            if missing:
                raise DataError(f"has no lead {', '.join(missing)} (its leads: {' '.join(leads)})")
            x = x[[leads.index(lead) for lead in self.pre.leads]]
        if x.shape[0] != self.n_leads:
            raise DataError(f"has {x.shape[0]} leads, the model takes {self.n_leads}")
        if self.pre.notch is not None:
            x = preprocess.notch(x, fs, self.pre.notch)
        if self.pre.bandpass is not None:
            x = preprocess.bandpass(x, fs, *self.pre.bandpass)
        x = preprocess.resample(x, fs, self.fs)
        x = preprocess.standardize(x) if self.pre.standardize else x
        if self.inputs.kind == "features":
            return _feature_set().record_features(x, self.fs)[:, None]
        return x

    def features(self, x: np.ndarray) -> np.ndarray:
        """Time-first model input of one (leads, samples) piece."""
        if self.inputs.kind == "spectrogram":
            return preprocess.lead_spectrograms(x, self.fs, self.pre.nperseg, self.pre.noverlap)
        return np.ascontiguousarray(x.T)

    @property
    def varies(self) -> bool:
        """Whether training inputs change between draws (augmentation or random windows)."""
        return augment.enabled(self.aug) or self.pre.window is not None

    def feature_length(self, n_samples: int) -> int:
        """Time steps of features() for a piece of n_samples, without computing it (batching by length)."""
        if self.inputs.kind != "spectrogram":
            return n_samples
        n = max(n_samples, self.pre.nperseg)  # log_spectrogram pads a shorter piece to one segment
        return (n - self.pre.noverlap) // (self.pre.nperseg - self.pre.noverlap)

    def train_items(self, signals, rng: np.random.Generator | None, seeds=None) -> TrainInputs:
        """One draw of training inputs (augmentation, random windows), computed per batch; seeds: a draw again."""
        return TrainInputs(self, signals, rng, seeds)

    def eval_items(self, signals) -> EvalInputs:
        """Inputs for scoring, computed per batch; .owners: the record each belongs to (several with windows)."""
        return EvalInputs(self, signals)

    def to_tensors(self, items: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
        min_length = self.pre.window if self.inputs.kind == "signal" and self.pre.window else 0
        batch, lengths = preprocess.pad_batch(items, min_length)
        x = torch.from_numpy(batch)
        if self.inputs.kind == "signal":
            x = x.transpose(1, 2)  # (batch, leads, samples)
        elif self.inputs.kind == "features":
            x = x[:, 0]  # (batch, features): one step per record
        return x.contiguous().to(device), torch.from_numpy(lengths).to(device)


def _feature_set():
    # neurokit2 (behind ecgcore.features.extract) takes seconds to import: only feature models pay for it.
    from ecgcore.features import extract as features

    return features


@dataclass
class Subset:
    names: tuple[str, ...]
    labels: np.ndarray
    signals: tuple[np.ndarray, ...]  # prepared: (leads, samples) at the pipeline's rate
    eval_items: EvalInputs | None = None
    sources: tuple[str, ...] = ()

    @property
    def owners(self) -> np.ndarray:
        return self.eval_items.owners

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class FoldData:
    train: Subset
    valid: Subset
    test: Subset
    pipeline: Pipeline


@functools.lru_cache(maxsize=2)
def _cached_records(track, root: str, stamp: float, warn: bool) -> Records:
    return track.read(root, warn=warn)


def dataset_for(track, root: str, warn: bool = False) -> Records:
    """The dataset at root as the track reads it, cached per process while its label file (or, where the labels
    are in the headers, the folder) is unchanged. Reader warnings are off by default: `submit` reports them once
    before the trials start."""
    marker = track.labels_marker(root)
    try:
        stamp = os.stat(marker).st_mtime
    except OSError:
        stamp = 0.0
    return _cached_records(track, os.path.abspath(root), stamp, warn)


def pipeline_for(model: ModelConfig, records: Records, source_fs: float | None = None) -> Pipeline:
    """The pipeline for these records; source_fs is the rate the model was trained at, where known."""
    return Pipeline(model, source_fs or records.fs[0], np.atleast_2d(records.signals[0]).shape[0])


def split_of(records: Records, track, split_name: str, persist: bool = False) -> tuple[list, Split]:
    """The dataset's record ids and its split (stored, or generated and, with persist, written)."""
    return track.split(records, split_name, persist=persist)


def prepare_records(pipeline: Pipeline, records: Records) -> list[np.ndarray]:
    """Every record through pipeline.prepare; a problem names the record."""
    signals = []
    for name, signal, fs, leads in zip(records.names, records.signals, records.fs, records.leads, strict=True):
        try:
            signals.append(pipeline.prepare(signal, fs, leads))
        except DataError as exc:
            raise DataError(f"{records.root}: record {name} {exc}") from None
    return signals


def make_subset(pipeline: Pipeline, records: Records, prepared: bool = False) -> Subset:
    """A fold part; prepared records (ecgcore.io.cache) have been through pipeline.prepare already."""
    signals = list(records.signals) if prepared else prepare_records(pipeline, records)
    return Subset(tuple(records.names), np.asarray(records.targets), tuple(signals), pipeline.eval_items(signals),
                  tuple(records.sources))


def load_fold(task: Task, prepared: Records | None = None) -> FoldData:
    """The fold's three parts; prepared: the task's dataset already preprocessed (shared by the driver)."""
    track = task.open_track()
    records = prepared if prepared is not None else dataset_for(track, task.data_dir)
    ids, split = split_of(records, track, task.split)
    if task.fold >= len(split.folds):
        raise DataError(f"split {task.split} has {len(split.folds)} folds, no fold {task.fold}")
    index_of = {n: i for i, n in enumerate(ids)}
    fold = split.folds[task.fold]
    pipeline = pipeline_for(task.model, records)
    parts = {}
    for part in ("train", "valid", "test"):
        idx = [index_of[n] for n in getattr(fold, part)]
        if not idx:
            raise DataError(f"split {task.split} fold {task.fold}: the {part} set is empty")
        parts[part] = make_subset(pipeline, records.take(idx), prepared is not None)
    return FoldData(parts["train"], parts["valid"], parts["test"], pipeline)
