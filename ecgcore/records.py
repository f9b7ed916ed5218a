"""`Records`: a dataset in memory, whatever the track; the type readers return and data, io and training use.

It sits below the readers (ecgcore.io), the data layer (ecgcore.data) and the
tracks (ecgcore.tracks), so none of them imports upwards to reach it. Besides
the signals and their targets it carries what splitting needs to know about
each record: its patient (records of one patient must never straddle train,
validation and test) and the fold the dataset itself assigns (PTB-XL's
strat_fold, a labels file's fold column), each empty when the dataset has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Records:
    """A labelled dataset: one entry per record, sorted as the reader gives them."""

    root: str
    names: tuple[str, ...]
    targets: np.ndarray  # (records,) int class indices, or (records, classes) bool
    signals: tuple[np.ndarray, ...]  # float32 mV, (leads, samples) or 1-D for one lead
    fs: tuple[float, ...]
    leads: tuple[tuple[str, ...], ...]  # lead names per record, from the headers
    sources: tuple[str, ...]
    patients: tuple[str, ...] = ()  # the patient of each record; () when the dataset does not say
    folds: tuple[int, ...] = ()  # the dataset's own fold of each record (PTB-XL's strat_fold); () when none

    def __len__(self) -> int:
        return len(self.names)

    def take(self, index) -> Records:
        index = list(index)
        pick = lambda seq: tuple(seq[i] for i in index) if seq else ()  # noqa: E731
        return Records(self.root, pick(self.names), self.targets[index], pick(self.signals), pick(self.fs),
                       pick(self.leads), pick(self.sources), pick(self.patients), pick(self.folds))
