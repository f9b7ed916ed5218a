"""Multi-label splits: iterative stratification keeps every label's share per fold; leave-source-out; named splits
of record names (split_<folds>_<tv>_<seed>[_holdout|_r<R>], sources_<tv>_<seed>) on the real sample and
synthetic data."""

import numpy as np
import pytest

from ecgcore.data.multisplit import generate_multilabel_split, iterative_stratification, leave_source_out
from ecgcore.errors import DataError
from ecgcore.io.cinc2020 import source_of
from ecgcore.tracks import open_track


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


# Named splits of records: on the shared real sample (79 records, 4 sources) and on synthetic 12-lead data.

NAMES = ["split_5_6_14", "split_5_6_14_holdout", "sources_6_14"]


@pytest.fixture(scope="module")
def sample12(sample2020):
    return open_track("cinc2021").read(str(sample2020), warn=False)


@pytest.fixture(scope="module")
def synth12(synth12_dir):
    return open_track("cinc2021").read(str(synth12_dir), warn=False)


@pytest.fixture(params=["sample12", "synth12"])
def records(request):
    return request.getfixturevalue(request.param)


def _split(records, name):
    return generate_multilabel_split(records.names, records.targets, records.sources, name)


@pytest.mark.parametrize("name", NAMES)
def test_every_record_once_per_fold(records, name):
    split = _split(records, name)
    everything = sorted(records.names)
    for fold in split.folds:
        parts = [*fold.train, *fold.valid, *fold.test, *split.holdout]
        assert sorted(parts) == everything  # disjoint parts that cover every record
        rest = len(fold.train) + len(fold.valid)
        assert abs(len(fold.valid) - rest / 6) <= 2, (len(fold.train), len(fold.valid))
    tests = sorted(n for fold in split.folds for n in fold.test)
    assert tests == sorted(set(everything) - set(split.holdout))
    assert all(isinstance(n, str) for fold in split.folds for n in fold.train + fold.test)


@pytest.mark.parametrize("name, other", [("split_5_6_14", "split_5_6_15"),
                                         ("split_5_6_14_holdout", "split_5_6_15_holdout"),
                                         ("sources_6_14", "sources_6_15")])
def test_deterministic_and_seeded(records, name, other):
    split = _split(records, name)
    assert split == _split(records, name)
    assert split.folds != _split(records, other).folds


@pytest.mark.parametrize("name", ["split_5_6_14", "split_5_6_14_holdout"])
def test_each_label_keeps_its_share_of_every_test_fold(records, name):
    split = _split(records, name)
    row = {n: i for i, n in enumerate(records.names)}
    pool = [row[n] for n in records.names if n not in set(split.holdout)]
    share = records.targets[pool].sum(axis=0) / len(split.folds)
    frequent = records.targets[pool].sum(axis=0) >= 5
    assert frequent.sum() >= 2  # the check has labels to look at
    for fold in split.folds:
        counts = records.targets[[row[n] for n in fold.test]].sum(axis=0)
        assert np.all(np.abs(counts - share)[frequent] <= 1 + 1e-9), (counts[frequent], share[frequent])


def test_leave_source_out_tests_one_source_per_fold(records):
    split = _split(records, "sources_6_14")
    source_of = dict(zip(records.names, records.sources, strict=True))
    assert split.properties["test sources"] == sorted(set(records.sources))
    assert len(split.folds) == len(split.properties["test sources"]) and not split.holdout
    for fold, source in zip(split.folds, split.properties["test sources"], strict=True):
        assert sorted(fold.test) == sorted(n for n in records.names if source_of[n] == source)
        assert source not in {source_of[n] for n in fold.train + fold.valid}


def test_sample_sources_are_the_four_databases(sample12):
    split = _split(sample12, "sources_6_14")
    assert split.properties["test sources"] == ["CPSC", "Chapman-Shaoxing/Ningbo", "Georgia", "PTB-XL"]
    assert [len(f.test) for f in split.folds] == [2, 33, 30, 14]


@pytest.mark.parametrize("n, name, words", [
    (3, "split_5_6_14", "too few"),
    (5, "split_5_6_14_holdout", "too few"),
    (5, "split_5_6_14", "leaves 4 records for training and validation"),
    (8, "sources_6_14", "records for training and validation"),
])
def test_too_few_records_are_refused(n, name, words):
    names = [f"{'AE'[i % 2]}{i:04d}" for i in range(n)]
    with pytest.raises(DataError, match=words):
        generate_multilabel_split(names, _labels(n), [source_of(x) for x in names], name)


def test_one_source_cannot_be_left_out():
    names = [f"A{i:04d}" for i in range(30)]
    with pytest.raises(DataError, match="at least 2 sources"):
        generate_multilabel_split(names, _labels(30), ["CPSC"] * 30, "sources_6_14")


@pytest.mark.parametrize("name", NAMES)
def test_record_names_with_the_same_number_coexist(name):
    names = [f"{prefix}{i:04d}" for prefix in ("A", "E") for i in range(1, 31)]
    split = _split_of_names(names, name)
    fold = split.folds[0]
    ids = [*fold.train, *fold.valid, *fold.test, *split.holdout]
    assert sorted(ids) == sorted(names) and "A0001" in ids and "E0001" in ids


def _split_of_names(names, name):
    return generate_multilabel_split(names, _labels(len(names), seed=4), [source_of(n) for n in names], name)


# Repeated splits: split_<folds>_<tv>_<seed>_r<R> is R iterative stratifications, repeat i = seed + i.

def test_repeated_multilabel_split_is_its_repeats_in_a_row():
    names = [f"{'AE'[i % 2]}{i:04d}" for i in range(120)]
    split = _split_of_names(names, "split_5_6_14_r3")
    assert len(split.folds) == 15 and not split.holdout
    assert split.properties["kind"] == "iterative stratification" and split.properties["name"] == "split_5_6_14_r3"
    assert split.properties["inputs"]["repeats"] == 3 and split.properties["inputs"]["seeds"] == [14, 15, 16]
    for i in range(3):
        repeat = split.folds[5 * i:5 * i + 5]
        assert repeat == _split_of_names(names, f"split_5_6_{14 + i}").folds
        assert sorted(n for fold in repeat for n in fold.test) == sorted(names)  # each repeat partitions
        for fold in repeat:
            assert sorted([*fold.train, *fold.valid, *fold.test]) == sorted(names)
    assert split.folds[:5] != split.folds[5:10]


@pytest.mark.parametrize("name, words", [("sources_6_14_r2", "no repeated form"),
                                         ("split_5_6_14_holdout_r2", "cannot be repeated"),
                                         ("split_5_6_14_r1", "R >= 2")])
def test_impossible_repeats_are_refused(name, words):
    names = [f"{'AE'[i % 2]}{i:04d}" for i in range(60)]
    with pytest.raises(DataError, match=words):
        _split_of_names(names, name)


def test_resolve_repeated_multilabel_split(tmp_path):
    from ecgcore.data.splits import resolve_split

    names = [f"{'AE'[i % 2]}{i:04d}" for i in range(60)]
    split = resolve_split(tmp_path, "split_4_6_1_r2", names, None, persist=True,
                          generate=lambda: _split_of_names(names, "split_4_6_1_r2"))
    assert len(split.folds) == 8 and (tmp_path / "splits" / "split_4_6_1_r2" / "test7.json").exists()
    assert resolve_split(tmp_path, "split_4_6_1_r2", names, None) == split
