"""Model inputs computed when a batch asks for them, never held for a whole fold.

A trial used to keep the features (e.g. log spectrograms) of every training
record and the evaluation inputs of its train, valid and test parts: more than
one extra copy of the dataset per trial, so four concurrent trials on one
machine held four. Here only the plan is kept (which piece of which record, its
length for batching by length, the seed of its augmentation draw); the
features of a batch are computed from the shared prepared signals and dropped
after the step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgcore.data import augment, preprocess


class LazyInputs(Sequence):
    """A sequence of time-first model inputs; `lengths` are their time steps, known without computing them."""

    lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.lengths.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.item(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.item(int(i))

    def batch(self, idx) -> list[np.ndarray]:
        return [self.item(int(i)) for i in idx]

    def item(self, i: int) -> np.ndarray:
        raise NotImplementedError


class EvalInputs(LazyInputs):
    """The evaluation pieces of some records: each whole record, or its overlapping windows.

    owners[i] is the record that piece i belongs to (its windows' outputs are averaged).
    """

    def __init__(self, pipeline, signals):
        self.pipeline, self.signals = pipeline, signals
        window, stride = pipeline.pre.window, pipeline.stride
        owners, starts, samples = [], [], []
        for i, x in enumerate(signals):
            n = x.shape[-1]
            for start in ([0] if window is None else preprocess.window_starts(n, window, stride)):
                owners.append(i)
                starts.append(start)
                samples.append(n if window is None else min(window, n - start))
        self.owners = np.array(owners, dtype=np.int64)
        self.starts = np.array(starts, dtype=np.int64)
        self.lengths = np.array([pipeline.feature_length(s) for s in samples], dtype=np.int64)
        self._samples = samples

    def item(self, i: int) -> np.ndarray:
        x = self.signals[self.owners[i]]
        start = int(self.starts[i])
        return self.pipeline.features(x[:, start:start + self._samples[i]])


class TrainInputs(LazyInputs):
    """One draw of training inputs: the augmentation and random window of each record, made on demand.

    The draw is fixed by one seed per record, taken from the training stream
    when the draw is made, so a record's input stays the same until the next
    reload (reload_step epochs), however often it is computed. lengths are of
    the record before augmentation (resampling changes them a little): they
    only group records of similar length into batches.
    """

    def __init__(self, pipeline, signals, rng: np.random.Generator | None, seeds: np.ndarray | None = None):
        """A new draw from rng, or (seeds) the same draw again: a resumed run continues with its inputs."""
        self.pipeline, self.signals = pipeline, signals
        self.seeds = None if seeds is None else np.asarray(seeds, dtype=np.int64)
        if seeds is None and rng is not None and pipeline.varies:
            self.seeds = rng.integers(0, 2**63 - 1, size=len(signals), dtype=np.int64)
        window = pipeline.pre.window
        self.lengths = np.array([pipeline.feature_length(x.shape[-1] if window is None else min(window, x.shape[-1]))
                                 for x in signals], dtype=np.int64)

    def item(self, i: int) -> np.ndarray:
        x = self.signals[i]
        if self.seeds is not None:
            rng = np.random.default_rng(int(self.seeds[i]))
            if augment.enabled(self.pipeline.aug):
                x = augment.augment(x, self.pipeline.aug, self.pipeline.fs, rng)
            if self.pipeline.pre.window is not None:
                x = preprocess.random_window(x, self.pipeline.pre.window, rng)
        return self.pipeline.features(x)
