"""Splits for multi-label 12-lead data: iterative stratification and leave-source-out.

Iterative stratification (Sechidis, Tsoumakas, Vlahavas, ECML PKDD 2011)
deals the records of the rarest remaining label first, each to the fold that
still wants most of that label, so every fold gets its share of every label
combination as far as the counts allow; records without a scored label are
dealt last, to the folds that want most records. Leave-source-out makes one
fold per source database: it tests on that database and never trains on it,
the protocol under which the CinC 2020 entries' scores collapsed (BUT 0.696
-> 0.202, DSAIL 0.688 -> 0.420). Both return a fold id per record; the fold
files and the job wiring are the 12-lead track's (issue 4).
"""

from __future__ import annotations

import numpy as np

from ecgcore.errors import DataError


def iterative_stratification(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold id in 0..n_folds-1 per record of a (records, classes) bool matrix."""
    labels = np.asarray(labels, dtype=bool)
    n, _ = labels.shape
    if n < n_folds:
        raise DataError(f"{n} records are too few for {n_folds} folds")
    rng = np.random.default_rng(seed)
    fold = np.full(n, -1)
    wanted_records = np.full(n_folds, n / n_folds)
    wanted = np.outer(np.full(n_folds, 1 / n_folds), labels.sum(axis=0))  # (folds, classes)
    remaining = np.ones(n, dtype=bool)
    while (labels[remaining].sum(axis=0) > 0).any():
        counts = labels[remaining].sum(axis=0).astype(float)
        counts[counts == 0] = np.inf
        rarest = _pick(np.flatnonzero(counts == counts.min()), rng)
        for i in rng.permutation(np.flatnonzero(remaining & labels[:, rarest])):
            candidates = np.flatnonzero(wanted[:, rarest] == wanted[:, rarest].max())
            candidates = candidates[wanted_records[candidates] == wanted_records[candidates].max()]
            k = _pick(candidates, rng)
            fold[i] = k
            remaining[i] = False
            wanted[k] -= labels[i]
            wanted_records[k] -= 1
    for i in rng.permutation(np.flatnonzero(remaining)):
        k = _pick(np.flatnonzero(wanted_records == wanted_records.max()), rng)
        fold[i] = k
        wanted_records[k] -= 1
    return fold


def leave_source_out(sources: list[str]) -> tuple[list[str], np.ndarray]:
    """(the sources in sorted order, the fold id of each record = the index of its source)."""
    names = sorted(set(sources))
    if len(names) < 2:
        raise DataError(f"leave-source-out needs records from at least 2 sources, got {names}")
    index = {s: i for i, s in enumerate(names)}
    return names, np.array([index[s] for s in sources])


def _pick(options: np.ndarray, rng: np.random.Generator) -> int:
    return int(options[0] if options.size == 1 else rng.choice(options))
