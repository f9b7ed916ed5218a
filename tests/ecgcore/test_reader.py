"""CinC 2017 reader on the shared real sample and on damaged copies."""

import shutil

import numpy as np
import pytest
import scipy.io

from ecgcore.errors import DataError
from ecgcore.io.cinc2017 import CLASSES, load_dataset, read_record, record_number


def test_shared_sample_loads_with_counts_and_units(sample2017):
    ds = load_dataset(sample2017)
    assert len(ds) == 800
    assert ds.class_counts() == {"N": 474, "A": 69, "O": 230, "~": 27}  # README.txt of the sample
    assert ds.fs == 300
    lengths = np.array([s.size for s in ds.signals])
    assert lengths.min() >= 2714 and lengths.max() <= 18286
    assert int(np.sum(lengths == 9000)) == 571
    # mV via the header gain: 1000 ADC units per mV, baseline 0.
    name = ds.names[0]
    raw = scipy.io.loadmat(str(sample2017 / f"{name}.mat"))["val"][0]
    np.testing.assert_allclose(ds.signals[0], raw / 1000.0, rtol=1e-6)
    assert ds.signals[0].dtype == np.float32


def test_labels_follow_reference_csv(sample2017):
    ds = load_dataset(sample2017)
    first = (sample2017 / "REFERENCE.csv").read_text().splitlines()[0].split(",")
    assert ds.names[0] == first[0] and CLASSES[ds.labels[0]] == first[1]


def test_reference_repo_layout(sample2017, tmp_path):
    # mat_files/ + hea_files/ as in the reference repository.
    names = [line.split(",")[0] for line in (sample2017 / "REFERENCE.csv").read_text().splitlines()[:12]]
    (tmp_path / "mat_files").mkdir()
    (tmp_path / "hea_files").mkdir()
    for n in names:
        shutil.copy(sample2017 / f"{n}.mat", tmp_path / "mat_files")
        shutil.copy(sample2017 / f"{n}.hea", tmp_path / "hea_files")
    lines = (sample2017 / "REFERENCE.csv").read_text().splitlines()[:12]
    (tmp_path / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path)
    assert list(ds.names) == names


def test_record_number():
    assert record_number("A00005") == 5
    with pytest.raises(DataError):
        record_number("record-x")


@pytest.fixture
def small_copy(sample2017, tmp_path):
    lines = (sample2017 / "REFERENCE.csv").read_text().splitlines()[:6]
    for line in lines:
        n = line.split(",")[0]
        for ext in (".mat", ".hea"):
            shutil.copy(sample2017 / f"{n}{ext}", tmp_path / f"{n}{ext}")
    (tmp_path / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    return tmp_path, [line.split(",")[0] for line in lines]


def _error(root) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(root)
    return str(info.value)


def test_label_without_record(small_copy):
    root, names = small_copy
    (root / f"{names[0]}.mat").unlink()
    (root / f"{names[0]}.hea").unlink()
    msg = _error(root)
    assert names[0] in msg and "no .hea/.mat" in msg


def test_record_without_label(small_copy):
    root, names = small_copy
    shutil.copy(root / f"{names[0]}.mat", root / "A99999.mat")
    shutil.copy(root / f"{names[0]}.hea", root / "A99999.hea")
    msg = _error(root)
    assert "A99999" in msg and "no label" in msg


def test_bad_label(small_copy):
    root, names = small_copy
    (root / "REFERENCE.csv").write_text(
        "\n".join(f"{n},{'X' if i == 1 else 'N'}" for i, n in enumerate(names)) + "\n")
    msg = _error(root)
    assert f"record {names[1]}: label 'X'" in msg and "REFERENCE.csv:2" in msg


def test_truncated_mat(small_copy):
    root, names = small_copy
    path = root / f"{names[2]}.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    msg = _error(root)
    assert f"{names[2]}.mat" in msg


def test_header_and_samples_disagree(small_copy):
    root, names = small_copy
    val = scipy.io.loadmat(str(root / f"{names[3]}.mat"))["val"]
    scipy.io.savemat(str(root / f"{names[3]}.mat"), {"val": val[:, :-100]}, format="4")
    msg = _error(root)
    assert "truncated" in msg and names[3] in msg


def test_mat_without_val(small_copy):
    root, names = small_copy
    scipy.io.savemat(str(root / f"{names[4]}.mat"), {"other": np.zeros((1, 10), np.int16)}, format="4")
    with pytest.raises(DataError, match="no variable 'val'"):
        read_record(root / f"{names[4]}.hea", root / f"{names[4]}.mat")


def test_missing_folder_and_reference(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no REFERENCE.csv"):
        load_dataset(tmp_path)
