"""Multi-label splits: iterative stratification keeps every label's share per fold; leave-source-out."""

import numpy as np
import pytest

from ecgcore.errors import DataError
from ecgcore.multisplit import iterative_stratification, leave_source_out


def _labels(n=600, seed=0):
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.2, 0.05, 0.02, 0.01])  # common to very rare labels, several per record
    labels = rng.random((n, rates.size)) < rates
    return labels


def test_every_fold_gets_its_share_of_every_label():
    labels = _labels()
    folds = iterative_stratification(labels, 5, seed=14)
    assert set(folds.tolist()) == set(range(5))
    per_fold = np.array([labels[folds == k].sum(axis=0) for k in range(5)])
    expected = labels.sum(axis=0) / 5
    assert np.all(np.abs(per_fold - expected) <= 1.0 + 1e-9), (per_fold, expected)
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 2


def test_better_than_a_random_split_on_rare_labels():
    labels = _labels(seed=1)
    folds = iterative_stratification(labels, 5, seed=3)
    random_folds = np.random.default_rng(3).permutation(np.arange(len(labels)) % 5)
    spread = lambda f: np.ptp([labels[f == k, 3:].sum() for k in range(5)])  # noqa: E731
    assert spread(folds) <= spread(random_folds)


def test_seeded_and_total():
    labels = _labels(seed=2)
    a = iterative_stratification(labels, 4, seed=7)
    assert np.array_equal(a, iterative_stratification(labels, 4, seed=7))
    assert (a >= 0).all()  # records without labels are dealt too
    with pytest.raises(DataError, match="too few"):
        iterative_stratification(labels[:3], 4, seed=0)


def test_leave_source_out():
    names, folds = leave_source_out(["PTB-XL", "Georgia", "PTB-XL", "CPSC"])
    assert names == ["CPSC", "Georgia", "PTB-XL"] and folds.tolist() == [2, 1, 2, 0]
    with pytest.raises(DataError, match="at least 2 sources"):
        leave_source_out(["Georgia", "Georgia"])
