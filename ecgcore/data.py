"""From a Task to model inputs: dataset, fold subsets, the input pipeline, batches.

The dataset is read once per process and kept (trial actors are reused, so a
second fold on the same worker does not re-read it). `Pipeline` turns a
record into what the architecture takes (see ecgcore.models): it resamples
and standardises once per record, augments and draws random windows for
training, and cuts evaluation windows whose probabilities are averaged per
record. Valid and test inputs are computed once per fold.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ecgcore import augment, preprocess
from ecgcore.cinc2017 import Dataset, load_dataset, record_number
from ecgcore.config import ModelConfig
from ecgcore.errors import DataError
from ecgcore.models import InputSpec, get_architecture
from ecgcore.splits import Split, resolve_split
from ecgcore.task import Task


class Pipeline:
    """Record (leads, samples) at the source rate -> model inputs, per a model file."""

    def __init__(self, model: ModelConfig, source_fs: float, n_leads: int):
        self.pre, self.aug = model.preprocessing, model.data_augmentation
        kind = get_architecture(model.model_name).input
        self.source_fs = float(source_fs)
        self.fs = float(self.pre.fs or source_fs)
        n_freqs = self.pre.nperseg // 2 + 1 if kind == "spectrogram" else None
        self.inputs = InputSpec(kind, n_leads, self.fs, self.pre.window, n_freqs)
        self.stride = self.pre.window_stride or max(1, (self.pre.window or 2) // 2)

    def prepare(self, signal: np.ndarray) -> np.ndarray:
        """Filters at the source rate, then resampling, then standardisation."""
        x = np.atleast_2d(signal).astype(np.float32)
        if self.pre.notch is not None:
            x = preprocess.notch(x, self.source_fs, self.pre.notch)
        if self.pre.bandpass is not None:
            x = preprocess.bandpass(x, self.source_fs, *self.pre.bandpass)
        x = preprocess.resample(x, self.source_fs, self.fs)
        return preprocess.standardize(x) if self.pre.standardize else x

    def features(self, x: np.ndarray) -> np.ndarray:
        """Time-first model input of one (leads, samples) piece."""
        if self.inputs.kind == "spectrogram":
            return preprocess.lead_spectrograms(x, self.fs, self.pre.nperseg, self.pre.noverlap)
        return np.ascontiguousarray(x.T)

    @property
    def varies(self) -> bool:
        """Whether training inputs change between draws (augmentation or random windows)."""
        return augment.enabled(self.aug) or self.pre.window is not None

    def train_items(self, signals, rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for x in signals:
            if augment.enabled(self.aug):
                x = augment.augment(x, self.aug, self.fs, rng)
            if self.pre.window is not None:
                x = preprocess.random_window(x, self.pre.window, rng)
            out.append(self.features(x))
        return out

    def eval_items(self, signals) -> tuple[list[np.ndarray], np.ndarray]:
        """Inputs for scoring and the record index each belongs to (several per record with windows)."""
        items, owners = [], []
        for i, x in enumerate(signals):
            if self.pre.window is None:
                items.append(self.features(x))
                owners.append(i)
                continue
            for start in preprocess.window_starts(x.shape[-1], self.pre.window, self.stride):
                items.append(self.features(x[:, start:start + self.pre.window]))
                owners.append(i)
        return items, np.array(owners, dtype=np.int64)

    def to_tensors(self, items: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
        min_length = self.pre.window if self.inputs.kind == "signal" and self.pre.window else 0
        batch, lengths = preprocess.pad_batch(items, min_length)
        x = torch.from_numpy(batch)
        if self.inputs.kind == "signal":
            x = x.transpose(1, 2)  # (batch, leads, samples)
        return x.contiguous().to(device), torch.from_numpy(lengths).to(device)


@dataclass
class Subset:
    names: tuple[str, ...]
    labels: np.ndarray
    signals: tuple[np.ndarray, ...]  # prepared: (leads, samples) at the pipeline's rate
    eval_items: list[np.ndarray] = field(default_factory=list)
    owners: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class FoldData:
    train: Subset
    valid: Subset
    test: Subset
    pipeline: Pipeline


@functools.lru_cache(maxsize=2)
def _cached_dataset(root: str, stamp: float) -> Dataset:
    return load_dataset(root)


def dataset_for(root: str) -> Dataset:
    """The dataset at root, cached per process while REFERENCE.csv is unchanged."""
    try:
        stamp = os.stat(os.path.join(root, "REFERENCE.csv")).st_mtime
    except OSError:
        stamp = 0.0
    return _cached_dataset(os.path.abspath(root), stamp)


def split_of(dataset: Dataset, data_dir: str, split_name: str, persist: bool = False) -> tuple[np.ndarray, Split]:
    """The dataset's record numbers and its split (stored, or generated and, with persist, written)."""
    numbers = np.array([record_number(n) for n in dataset.names])
    return numbers, resolve_split(data_dir, split_name, numbers, dataset.labels, persist=persist)


def make_subset(pipeline: Pipeline, names, labels, raw_signals) -> Subset:
    signals = tuple(pipeline.prepare(s) for s in raw_signals)
    items, owners = pipeline.eval_items(signals)
    return Subset(tuple(names), np.asarray(labels), signals, items, owners)


def load_fold(task: Task) -> FoldData:
    dataset = dataset_for(task.data_dir)
    numbers, split = split_of(dataset, task.data_dir, task.split)
    if task.fold >= len(split.folds):
        raise DataError(f"split {task.split} has {len(split.folds)} folds, no fold {task.fold}")
    index_of = {int(n): i for i, n in enumerate(numbers)}
    fold = split.folds[task.fold]
    pipeline = Pipeline(task.model, dataset.fs, np.atleast_2d(dataset.signals[0]).shape[0])
    parts = {}
    for part in ("train", "valid", "test"):
        idx = [index_of[n] for n in getattr(fold, part)]
        if not idx:
            raise DataError(f"split {task.split} fold {task.fold}: the {part} set is empty")
        parts[part] = make_subset(pipeline, [dataset.names[i] for i in idx], dataset.labels[idx],
                                  [dataset.signals[i] for i in idx])
    return FoldData(parts["train"], parts["valid"], parts["test"], pipeline)
