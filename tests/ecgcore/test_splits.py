"""Splits: disjoint, stratified, reproducible, reference layout, reference algorithm."""

import json

import numpy as np
import pytest

from ecgcore.data.splits import generate_split, load_split, resolve_split, write_split
from ecgcore.errors import DataError
from ecgcore.io.cinc2017 import CLASSES, read_reference, record_number
from orchestrator.cli import main


def _labels(root):
    ref = read_reference(root)
    return (np.array([record_number(n) for n in ref]), np.array([CLASSES.index(v) for v in ref.values()]))


def test_folds_disjoint_cover_and_stratified(sample2017):
    numbers, labels = _labels(sample2017)
    split = generate_split(numbers, labels, "split_5_6_14")
    label_of = dict(zip(numbers.tolist(), labels.tolist(), strict=False))
    tests = [set(f.test) for f in split.folds]
    assert set().union(*tests) == set(numbers.tolist()) and sum(map(len, tests)) == len(numbers)
    overall = np.bincount(labels, minlength=4) / len(labels)
    for fold in split.folds:
        assert not (set(fold.train) & set(fold.valid)) and not (set(fold.train) & set(fold.test))
        assert set(fold.train) | set(fold.valid) | set(fold.test) == set(numbers.tolist())
        share = np.bincount([label_of[n] for n in fold.test], minlength=4) / len(fold.test)
        assert np.abs(share - overall).max() < 0.01
        # (train+valid)/valid = tv = 6, as in the reference: train:valid = 5:1
        assert len(fold.train) / len(fold.valid) == pytest.approx(5, rel=0.05)


def test_reproducible_and_seeded(sample2017):
    numbers, labels = _labels(sample2017)
    a = generate_split(numbers, labels, "split_5_6_14")
    assert a == generate_split(numbers, labels, "split_5_6_14")
    assert a.folds[0].test != generate_split(numbers, labels, "split_5_6_15").folds[0].test


def test_reproduces_the_reference_split_on_the_full_set(full2017):
    # The reference repository publishes split_5_6_14 for training2017; its test0.json
    # has 1707 numbers, serialises to 10014 characters, starts and ends like this.
    numbers, labels = _labels(full2017)
    test0 = list(generate_split(numbers, labels, "split_5_6_14").folds[0].test)
    assert test0[:12] == [5, 16, 20, 25, 26, 38, 41, 44, 48, 52, 54, 68]
    assert test0[-8:] == [8501, 8502, 8506, 8509, 8513, 8519, 8521, 8522]
    assert len(test0) == 1707 and len(json.dumps(test0)) == 10014


def test_stored_split_is_used_as_it_is(tmp_path):
    numbers, labels = np.arange(1, 41), np.array([0, 1, 2, 3] * 10)
    split = generate_split(numbers, labels, "split_4_3_1")
    custom = type(split)(split.name, (type(split.folds[0])((1, 2), (3,), (4,)),), {})
    write_split(custom, tmp_path / "splits" / "split_4_3_1")
    loaded = resolve_split(tmp_path, "split_4_3_1", numbers, labels)
    assert loaded.folds == custom.folds
    assert json.loads((tmp_path / "splits" / "split_4_3_1" / "test0.json").read_text()) == [4]


def test_stored_split_naming_unknown_records_is_refused(tmp_path):
    numbers, labels = np.arange(1, 41), np.array([0, 1, 2, 3] * 10)
    write_split(generate_split(np.arange(1, 81), np.array([0, 1, 2, 3] * 20), "split_4_3_1"),
                tmp_path / "splits" / "split_4_3_1")
    with pytest.raises(DataError, match="not in the dataset"):
        resolve_split(tmp_path, "split_4_3_1", numbers, labels)


def test_empty_fold_is_refused():
    with pytest.raises(DataError, match="would be empty"):
        generate_split(np.arange(1, 4), np.array([0, 1, 2]), "split_5_6_14")


def test_split_command_writes_reference_layout(synth_dir, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["split", str(synth_dir), "--folds", "5", "--tv", "6", "--seed", "14", "--out", str(out)]) == 0
    loaded = load_split(out)
    assert len(loaded.folds) == 5 and loaded.properties["inputs"]["(train+valid)/valid"] == 6
    assert sorted(p.name for p in out.iterdir())[:3] == ["properties.json", "test0.json", "test1.json"]
    assert main(["split", str(synth_dir), "--out", str(out)]) == 2  # never overwritten


def test_read_only_dataset_is_never_written(sample2017, capsys):
    # The shared copy may come with a splits/ folder of its own: nothing may be added to what is there.
    def listing():
        return sorted((sample2017 / "splits").rglob("*")) if (sample2017 / "splits").exists() else None

    before = listing()
    assert main(["split", str(sample2017), "--seed", "99"]) == 2
    assert "read-only" in capsys.readouterr().err
    assert listing() == before
    numbers, labels = _labels(sample2017)
    resolve_split(sample2017, "split_5_6_99", numbers, labels, persist=True)
    assert listing() == before and not (sample2017 / "splits" / "split_5_6_99").exists()


def test_holdout_split_sets_a_stratified_part_aside(tmp_path):
    import numpy as np

    from ecgcore.data.splits import generate_split, load_split, write_split

    numbers = np.arange(1, 601)
    labels = np.arange(600) % 4
    split = generate_split(numbers, labels, "split_5_6_14_holdout")
    held = set(split.holdout)
    assert len(held) == 100 and np.bincount(labels[np.array(sorted(held)) - 1]).tolist() == [25] * 4
    for fold in split.folds:
        assert not (set(fold.train) | set(fold.valid) | set(fold.test)) & held
    assert set().union(*(f.test for f in split.folds)) | held == set(numbers.tolist())
    assert split.properties["inputs"]["holdout"] is True
    assert split.properties["relative size"] == {"train": 10, "valid": 2, "test": 3, "holdout": 3}
    write_split(split, tmp_path / split.name)
    assert load_split(tmp_path / split.name) == split
