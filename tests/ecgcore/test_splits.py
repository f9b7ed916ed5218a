"""Splits: disjoint, stratified, reproducible, reference layout, reference algorithm."""

import json
import re
import stat

import numpy as np
import pytest

from ecgcore.data.splits import generate_split, load_split, resolve_split, write_split
from ecgcore.errors import DataError
from ecgcore.io.cinc2017 import CLASSES, read_reference, record_number
from orchestrator.cli import main
from tests.conftest import linked_records


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


def _snapshot(folder):
    """Every entry under folder (the folder itself included): relative name -> (kind, size, mtime in ns).

    lstat, so the links into the shared data are described, not the records they point at; a folder's
    mtime changes when an entry is added or removed, even one that is gone again.
    """
    def entry(path):
        st = path.lstat()
        return (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return {".": entry(folder), **{str(p.relative_to(folder)): entry(p) for p in folder.rglob("*")}}


@pytest.fixture
def read_only_dataset(sample2017, tmp_path):
    """The shared sample's records linked into a folder with no write bits, the project's mark of a read-only
    dataset (ecgcore.data.splits.writable). Root may still write into it: the tests compare its listing before
    and after instead of counting on a permission error, and the shared folder is never at stake."""
    (tmp_path / "cinc2017").mkdir()
    folder = linked_records(sample2017, tmp_path / "cinc2017", n=10**6)
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)  # so that the tmp_path clean-up can remove it without root


def test_read_only_dataset_is_never_written(read_only_dataset, capsys):
    before = _snapshot(read_only_dataset)
    assert main(["split", str(read_only_dataset), "--seed", "99"]) == 2
    assert "read-only" in capsys.readouterr().err
    assert _snapshot(read_only_dataset) == before
    numbers, labels = _labels(read_only_dataset)
    split = resolve_split(read_only_dataset, "split_5_6_99", numbers, labels, persist=True)
    assert len(split.folds) == 5  # the split is made, in memory only
    assert _snapshot(read_only_dataset) == before


def test_writable_dataset_gets_its_split(read_only_dataset):
    # The counterpart: the same folder with its write bit back is written, so the test above proves the
    # read-only rule held, not that resolve_split never writes.
    read_only_dataset.chmod(0o755)
    numbers, labels = _labels(read_only_dataset)
    resolve_split(read_only_dataset, "split_5_6_99", numbers, labels, persist=True)
    assert (read_only_dataset / "splits" / "split_5_6_99" / "test4.json").exists()


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


# Repeated cross-validation: split_<folds>_<tv>_<seed>_r<R> is R splits, repeat i = split_<folds>_<tv>_<seed+i>.

def _many():
    rng = np.random.default_rng(0)
    return np.arange(1, 301), rng.choice(4, size=300, p=[0.6, 0.1, 0.25, 0.05])


def test_repeats_are_the_unrepeated_splits_of_successive_seeds():
    numbers, labels = _many()
    split = generate_split(numbers, labels, "split_5_6_14_r3")
    assert split.name == "split_5_6_14_r3" and len(split.folds) == 15 and not split.holdout
    for i in range(3):
        assert split.folds[5 * i:5 * i + 5] == generate_split(numbers, labels, f"split_5_6_{14 + i}").folds
        tests = [set(f.test) for f in split.folds[5 * i:5 * i + 5]]
        assert set().union(*tests) == set(numbers.tolist()) and sum(map(len, tests)) == len(numbers)
    assert split.folds[:5] != split.folds[5:10]  # the repeats differ
    base = generate_split(numbers, labels, "split_5_6_14").properties
    assert split.properties["name"] == "split_5_6_14_r3"
    assert split.properties["inputs"] == {**base["inputs"], "repeats": 3, "seeds": [14, 15, 16]}
    assert {k: v for k, v in split.properties.items() if k not in ("name", "inputs")} == \
        {k: v for k, v in base.items() if k not in ("name", "inputs")}


def test_repeated_name_counts():
    from ecgcore.data.splits import folds_per_repeat, parse_split_name, repeat_of, split_folds, split_repeats

    assert parse_split_name("split_5_6_14_r3") == (5, 6, 14)
    assert (split_folds("split_5_6_14_r3"), folds_per_repeat("split_5_6_14_r3"), split_repeats("split_5_6_14_r3")) \
        == (15, 5, 3)
    assert (split_folds("split_5_6_14"), folds_per_repeat("split_5_6_14"), split_repeats("split_5_6_14")) == (5, 5, 1)
    assert split_repeats("split_5_6_14_holdout") == 1 and split_repeats("sources_6_14") == 1
    assert split_folds("sources_6_14") is None and folds_per_repeat("sources_6_14") is None
    assert [repeat_of("split_5_6_14_r3", g) for g in (0, 4, 5, 7, 14)] == [(0, 0), (0, 4), (1, 0), (1, 2), (2, 4)]
    assert repeat_of("split_5_6_14", 3) == (0, 3) and repeat_of("sources_6_14", 2) == (0, 2)
    with pytest.raises(DataError, match=r"fold 15 is outside split_5_6_14_r3 \(folds 0..14\)"):
        repeat_of("split_5_6_14_r3", 15)
    from ecgcore.data.splits import repeat_layout  # the lenient form, for split names read back from logs

    assert repeat_layout("split_5_6_14_r3") == (3, 5)
    assert [repeat_layout(n) for n in ("split_5_6_14", "sources_6_14", None, "", "custom")] == [(1, 0)] * 5


def test_repeated_split_round_trip(tmp_path):
    numbers, labels = _many()
    split = generate_split(numbers, labels, "split_5_6_14_r3")
    write_split(split, tmp_path / split.name)
    assert len(list((tmp_path / split.name).glob("test*.json"))) == 15
    assert load_split(tmp_path / split.name) == split
    stored = json.loads((tmp_path / split.name / "properties.json").read_text())
    assert stored["inputs"]["repeats"] == 3 and stored["inputs"]["seeds"] == [14, 15, 16]


@pytest.mark.parametrize("name, words", [
    ("split_5_6_14_holdout_r3", "a hold-out split cannot be repeated, since each repeat would set a different "
                                "hold-out set aside; use split_5_6_14_holdout or split_5_6_14_r<R>"),
    ("split_5_6_14_r3_holdout", "a hold-out split cannot be repeated"),
    ("split_5_6_14_r1", "repeats need R >= 2; use split_5_6_14 for one repetition"),
    ("split_5_6_14_r0", "repeats need R >= 2; use split_5_6_14 for one repetition"),
    ("sources_6_14_r3", "leave-source-out has no repeated form, its test folds are the source databases in every "
                        "repeat; use sources_6_14"),
    ("split_5_6_14_r", "is not of the form split_<folds>_<tv>_<seed>[_holdout|_r<R>]"),
])
def test_impossible_repeats_are_refused(name, words):
    from ecgcore.data.splits import split_folds

    with pytest.raises(DataError, match=re.escape(words)):
        split_folds(name)
    with pytest.raises(DataError, match=re.escape(words)):
        generate_split(*_many(), name)


def test_a_repeat_too_small_is_named():
    with pytest.raises(DataError, match=r"split split_5_6_14_r2, repeat 0: .*would be empty"):
        generate_split(np.arange(1, 4), np.array([0, 1, 2]), "split_5_6_14_r2")


def test_resolve_repeated_split_generates_then_loads(tmp_path):
    numbers, labels = np.arange(1, 81), np.array([0, 1, 2, 3] * 20)
    split = resolve_split(tmp_path, "split_4_3_1_r2", numbers, labels, persist=True)
    assert len(split.folds) == 8 and split.folds[4:] == generate_split(numbers, labels, "split_4_3_2").folds
    assert (tmp_path / "splits" / "split_4_3_1_r2" / "test7.json").exists()
    assert resolve_split(tmp_path, "split_4_3_1_r2", numbers, labels) == split
