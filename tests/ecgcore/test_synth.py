"""Tests for the synthetic CinC 2017 style ECG generator (ecgcore.io.synth)."""

import csv
import re
import warnings

import numpy as np
import pytest
import scipy.io
from scipy import signal

from ecgcore.io.synth import CLASSES, synth_signal, write_synthetic_dataset

with warnings.catch_warnings():
    # wfdb triggers a pandas deprecation warning on import; irrelevant here.
    warnings.simplefilter("ignore")
    import wfdb

FS = 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth40")
    counts = write_synthetic_dataset(out, 40, seed=3)
    return out, counts


def _reference(out):
    with open(out / "REFERENCE.csv", newline="") as fh:
        return [tuple(row) for row in csv.reader(fh)]


def test_reference_matches_files_one_to_one(dataset):
    out, counts = dataset
    rows = _reference(out)
    names = [name for name, _ in rows]
    assert names == [f"A{i:05d}" for i in range(1, 41)]
    assert {p.stem for p in out.glob("*.mat")} == set(names)
    assert {p.stem for p in out.glob("*.hea")} == set(names)
    assert all(label in CLASSES for _, label in rows)
    assert counts == {c: sum(lab == c for _, lab in rows) for c in CLASSES}
    assert sum(counts.values()) == 40
    assert not (out / "REFERENCE.csv").read_bytes().startswith(b"Record")


def test_every_class_present_with_floor(dataset, tmp_path):
    _, counts = dataset
    assert all(counts[c] >= 2 for c in CLASSES)
    small = write_synthetic_dataset(tmp_path, 8, seed=0)
    assert small == {c: 2 for c in CLASSES}


def test_proportions_close_to_real_set(tmp_path):
    counts = write_synthetic_dataset(tmp_path, 100, seed=0)
    assert counts == {"N": 59, "A": 9, "O": 29, "~": 3}


def test_mat_files_are_int16_row_vectors(dataset):
    out, _ = dataset
    for mat in sorted(out.glob("*.mat")):
        val = scipy.io.loadmat(mat)["val"]
        assert val.dtype == np.int16
        assert val.ndim == 2 and val.shape[0] == 1
        assert 9 * FS <= val.shape[1] <= 61 * FS
        # -32768 would read as a missing sample in WFDB format 16.
        assert val.min() > -32768


def test_wfdb_reads_records_back(dataset):
    out, _ = dataset
    for name, _ in _reference(out):
        val = scipy.io.loadmat(out / f"{name}.mat")["val"]
        rec = wfdb.rdrecord(str(out / name))
        assert rec.fs == FS
        assert rec.n_sig == 1
        assert rec.sig_len == val.shape[1]
        assert rec.fmt == ["16"] and rec.byte_offset == [24]
        assert rec.adc_gain == [1000.0] and rec.units == ["mV"]
        assert rec.sig_name == ["ECG"]
        np.testing.assert_allclose(rec.p_signal[:, 0], val[0] / 1000.0, atol=1e-9)


def test_header_layout_initial_value_and_checksum(dataset):
    out, _ = dataset
    line1 = re.compile(r"^(A\d{5}) 1 300 (\d+) \d\d:\d\d:\d\d \d{1,2}/\d\d/\d{4}$")
    line2 = re.compile(r"^(A\d{5})\.mat 16\+24 1000/mV 16 0 (-?\d+) (-?\d+) 0 ECG$")
    for hea in sorted(out.glob("*.hea")):
        raw = hea.read_bytes()
        assert b"\r" not in raw
        first, second = raw.decode().splitlines()
        m1, m2 = line1.match(first), line2.match(second)
        assert m1 and m2, (first, second)
        assert m1.group(1) == m2.group(1) == hea.stem
        val = scipy.io.loadmat(hea.with_suffix(".mat"))["val"][0].astype(np.int64)
        assert int(m1.group(2)) == val.size
        assert int(m2.group(2)) == val[0]
        checksum = int(m2.group(3))
        assert -32768 <= checksum <= 32767
        assert checksum % 65536 == int(val.sum()) % 65536
        rec = wfdb.rdrecord(str(hea.with_suffix("")), physical=False)
        assert rec.init_value == [int(val[0])]
        assert [c % 65536 for c in rec.checksum] == rec.calc_checksum()


def test_same_seed_identical_bytes_different_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_synthetic_dataset(a, 12, seed=7)
    write_synthetic_dataset(b, 12, seed=7)
    write_synthetic_dataset(c, 12, seed=8)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    assert len(files) == 2 * 12 + 1
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert any(
        (a / n).read_bytes() != (c / n).read_bytes() for n in files if n.endswith(".mat")
    )


def test_synth_signal_shape_dtype_and_duration():
    rng = np.random.default_rng(0)
    for label in CLASSES:
        x = synth_signal(label, rng, duration_s=12.5)
        assert x.dtype == np.float64 and x.shape == (int(12.5 * FS),)
        assert np.isfinite(x).all()
    lengths = [synth_signal("N", rng).size / FS for _ in range(60)]
    assert all(9.0 <= s <= 61.0 for s in lengths)
    assert 0.5 < np.mean([s == 30.0 for s in lengths]) < 0.9
    with pytest.raises(ValueError):
        synth_signal("X", rng)


def _rr_cv(x):
    """Coefficient of variation of RR intervals from a band-pass energy detector."""
    b, a = signal.butter(2, [5, 25], btype="band", fs=FS)
    energy = signal.filtfilt(b, a, x) ** 2
    peaks, _ = signal.find_peaks(
        energy, height=0.2 * np.percentile(energy, 99.5), distance=int(0.25 * FS)
    )
    rr = np.diff(peaks) / FS
    return rr.std() / rr.mean()


def _low_freq_std(x):
    """Std (mV) of the content below 1 Hz: baseline drift and motion."""
    b, a = signal.butter(2, 1.0, fs=FS)
    return signal.filtfilt(b, a, x).std()


def _per_seed(label, fn, n=8):
    return np.array(
        [fn(synth_signal(label, np.random.default_rng(s), duration_s=30)) for s in range(n)]
    )


def test_af_rr_irregularity_exceeds_sinus():
    cv_n, cv_a = _per_seed("N", _rr_cv), _per_seed("A", _rr_cv)
    assert cv_n.max() < 0.08
    assert cv_a.min() > 0.1
    assert np.median(cv_a) > 3 * np.median(cv_n)


def test_normal_heart_rate_in_sinus_range():
    b, a = signal.butter(2, [5, 25], btype="band", fs=FS)
    for s in range(5):
        x = synth_signal("N", np.random.default_rng(s), duration_s=30)
        energy = signal.filtfilt(b, a, x) ** 2
        peaks, _ = signal.find_peaks(
            energy, height=0.2 * np.percentile(energy, 99.5), distance=int(0.25 * FS)
        )
        assert 55 <= 60 * FS / np.median(np.diff(peaks)) <= 105


def test_noise_class_has_large_low_frequency_energy():
    lf_n, lf_noise = _per_seed("N", _low_freq_std), _per_seed("~", _low_freq_std)
    assert np.median(lf_noise) > 4 * np.median(lf_n)
    assert lf_noise.min() > lf_n.max()
