"""From a Task to model inputs: dataset, fold subsets, spectrograms, batches.

The dataset is read once per process and kept (trial actors are reused, so a
second fold on the same worker does not re-read it). Valid and test
spectrograms are computed once; training spectrograms are recomputed from
freshly augmented signals whenever the training loop asks.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from ecgcore import preprocess
from ecgcore.cinc2017 import Dataset, load_dataset, record_number
from ecgcore.config import ModelConfig
from ecgcore.errors import DataError
from ecgcore.splits import resolve_split
from ecgcore.task import Task


@dataclass
class Subset:
    names: tuple[str, ...]
    labels: np.ndarray
    signals: tuple[np.ndarray, ...]
    features: list[np.ndarray]  # unaugmented spectrograms
    fs: int

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class FoldData:
    train: Subset
    valid: Subset
    test: Subset
    n_freqs: int


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


def features_of(signals, model: ModelConfig, fs: int) -> list[np.ndarray]:
    pre = model.preprocessing
    if not pre.spectrogram:
        return [s[:, None].astype(np.float32) for s in signals]
    return [preprocess.log_spectrogram(s, fs, pre.nperseg, pre.noverlap) for s in signals]


def load_fold(task: Task) -> FoldData:
    dataset = dataset_for(task.data_dir)
    numbers = np.array([record_number(n) for n in dataset.names])
    split = resolve_split(task.data_dir, task.split, numbers, dataset.labels)
    if task.fold >= len(split.folds):
        raise DataError(f"split {task.split} has {len(split.folds)} folds, no fold {task.fold}")
    index_of = {int(n): i for i, n in enumerate(numbers)}
    fold = split.folds[task.fold]
    parts = {}
    for part in ("train", "valid", "test"):
        idx = [index_of[n] for n in getattr(fold, part)]
        signals = tuple(dataset.signals[i] for i in idx)
        parts[part] = Subset(tuple(dataset.names[i] for i in idx), dataset.labels[idx], signals,
                             features_of(signals, task.model, dataset.fs), dataset.fs)
        if not idx:
            raise DataError(f"split {task.split} fold {task.fold}: the {part} set is empty")
    n_freqs = parts["test"].features[0].shape[1]
    return FoldData(parts["train"], parts["valid"], parts["test"], n_freqs)


def augmented_features(subset: Subset, model: ModelConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Training inputs with this epoch's augmentation draws."""
    aug = model.data_augmentation
    if not (aug.resampling or aug.zero_filter or aug.awgn):
        return subset.features
    out = []
    for x in subset.signals:
        if aug.zero_filter:
            x = preprocess.zero_filter(x, rng)
        if aug.resampling:
            x = preprocess.random_resample(x, rng)
        if aug.awgn:
            x = preprocess.add_white_noise(x, rng, aug.awgn_snr)
        out.append(x)
    return features_of(out, model, subset.fs)


def to_tensors(items: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    batch, lengths = preprocess.pad_batch(items)
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths).to(device)
