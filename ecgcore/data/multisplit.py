"""Splits for multi-label 12-lead data: iterative stratification and leave-source-out.

Iterative stratification (Sechidis, Tsoumakas, Vlahavas, ECML PKDD 2011)
deals the records of the rarest remaining label first, each to the fold that
still wants most of that label, so every fold gets its share of every label
combination as far as the counts allow; records without a scored label are
dealt last, to the folds that want most records. Leave-source-out makes one
fold per source database: it tests on that database and never trains on it,
the protocol under which the CinC 2020 entries' scores collapsed (BUT 0.696
-> 0.202, DSAIL 0.688 -> 0.420). Both give a fold id per record;
`generate_multilabel_split` turns them into a Split of record names with the
same parts as the CinC 2017 splits (split_<folds>_<tv>_<seed>[_holdout]:
test folds of 1/folds, valid 1/tv of the rest; sources_<tv>_<seed>: test on
one source, valid 1/tv of the other sources' records). A repeated split
split_<folds>_<tv>_<seed>_r<R> is R iterative stratifications, repeat i being
split_<folds>_<tv>_<seed+i>, its folds numbered i * folds + k (see
ecgcore.data.splits); leave-source-out has no repeated form, since its test
folds would be the same sources every time.
"""

from __future__ import annotations

import numpy as np

from ecgcore.data.splits import (
    Fold,
    Split,
    generate_repeats,
    has_holdout,
    is_sources_split,
    parse_sources_name,
    parse_split_name,
    split_properties,
    split_repeats,
)
from ecgcore.errors import DataError


def generate_multilabel_split(names, labels: np.ndarray, sources, name: str) -> Split:
    """A split of record names from a (records, classes) bool label matrix and each record's source."""
    if split_repeats(name) > 1:
        return generate_repeats(name, lambda base: generate_multilabel_split(names, labels, sources, base))
    names = np.asarray(names, dtype=object)
    labels = np.asarray(labels, dtype=bool)
    if is_sources_split(name):
        tv, seed = parse_sources_name(name)
        source_names, fold_of = leave_source_out(list(sources))
        tests = [np.flatnonzero(fold_of == k) for k in range(len(source_names))]
        properties = {"name": name, "kind": "leave-source-out", "inputs": {"(train+valid)/valid": tv, "seed": seed},
                      "test sources": source_names}
        pool, holdout = np.arange(len(names)), np.zeros(0, dtype=int)
    else:
        n_folds, tv, seed = parse_split_name(name)
        pool, holdout = np.arange(len(names)), np.zeros(0, dtype=int)
        if has_holdout(name):
            part = iterative_stratification(labels, n_folds + 1, seed)
            pool, holdout = np.flatnonzero(part < n_folds), np.flatnonzero(part == n_folds)
        test_of = iterative_stratification(labels[pool], n_folds, seed)
        tests = [pool[test_of == k] for k in range(n_folds)]
        properties = {**split_properties(n_folds, tv, seed, has_holdout(name)), "kind": "iterative stratification"}
    folds = []
    for k, test in enumerate(tests):
        rest = np.setdiff1d(pool, test)
        if rest.size < tv:
            raise DataError(f"split {name}: fold {k} leaves {rest.size} records for training and validation")
        valid_part = iterative_stratification(labels[rest], tv, seed) == 0
        parts = (rest[~valid_part], rest[valid_part], test)
        folds.append(Fold(*(tuple(sorted(names[p].tolist())) for p in parts)))
        for part, ids in zip(("train", "valid", "test"), parts, strict=True):
            if ids.size == 0:
                raise DataError(f"split {name}: the {part} set of fold {k} would be empty ({len(names)} records)")
    return Split(name, tuple(folds), properties, tuple(sorted(names[holdout].tolist())))


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
