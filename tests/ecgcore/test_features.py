"""Engineered ECG features on real CinC 2017 records: beats, RR statistics, failures, shape, determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("neurokit2", reason="ecgcore.features.extract needs neurokit2 (pip install neurokit2)")

from ecgcore.features.extract import (  # noqa: E402
    FEATURE_NAMES,
    FEATURES_VERSION,
    detect_rpeaks,
    failure_reason,
    record_features,
)
from ecgcore.io.cinc2017 import CLASSES, load_dataset  # noqa: E402

FS = 300
NORMAL = ("A00033", "A00109", "A00140", "A00273")  # clean normal sinus rhythm records of the sample set


@pytest.fixture(scope="module")
def records(sample2017) -> dict[str, tuple[str, np.ndarray]]:
    ds = load_dataset(sample2017)
    return {name: (CLASSES[label], signal) for name, label, signal in zip(ds.names, ds.labels, ds.signals, strict=True)}


def feature(values: np.ndarray, name: str) -> float:
    return float(values[FEATURE_NAMES.index(name)])


def independent_peaks(signal: np.ndarray) -> np.ndarray:
    """R peaks by another detector (Pan-Tompkins), to check ours against."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(signal, sampling_rate=FS, method="pantompkins1985")
        _, info = nk.ecg_peaks(clean, sampling_rate=FS, method="pantompkins1985")
    return np.asarray(info["ECG_R_Peaks"])


def test_api():
    assert FEATURE_NAMES[0] == "extraction_failed"
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert 40 <= len(FEATURE_NAMES) <= 90
    assert isinstance(FEATURES_VERSION, int)


@pytest.mark.parametrize("name", NORMAL)
def test_beats_found_on_normal_records(records, name):
    label, signal = records[name]
    assert label == "N"
    peaks = detect_rpeaks(signal, FS)
    duration = signal.size / FS
    # sinus rhythm at rest: 40-120 bpm, and a second detector counts the same beats (+-2)
    assert 40 / 60 * duration <= peaks.size <= 120 / 60 * duration
    assert abs(peaks.size - independent_peaks(signal).size) <= 2
    values = record_features(signal, FS)
    assert feature(values, "extraction_failed") == 0.0 and failure_reason(signal, FS) is None
    assert feature(values, "beats_per_min") == pytest.approx(peaks.size / duration * 60, rel=1e-5)


def test_rr_statistics_match_hand_computation(records):
    _, signal = records["A00033"]
    rr = np.diff(detect_rpeaks(signal, FS)) / FS
    drr = np.diff(rr)
    values = record_features(signal, FS)
    expected = {
        "rr_mean": rr.mean(), "rr_median": np.median(rr), "rr_std": rr.std(),
        "rmssd": np.sqrt(np.mean(drr**2)), "pnn50": np.mean(np.abs(drr) > 0.05),
        "pnn20": np.mean(np.abs(drr) > 0.02), "sd1": np.std(drr) / np.sqrt(2),
    }
    for name, value in expected.items():
        assert feature(values, name) == pytest.approx(value, rel=1e-4, abs=1e-6), name
    # and the peaks behind them agree with another detector's mean RR to 2 %
    assert rr.mean() == pytest.approx(np.diff(independent_peaks(signal)).mean() / FS, rel=0.02)


def test_af_records_are_more_irregular_than_normal(records):
    def median(label: str, name: str) -> float:
        signals = [s for lab, s in records.values() if lab == label][:8]
        return float(np.median([feature(record_features(s, FS), name) for s in signals]))

    assert median("A", "drr_median_norm") > 3 * median("N", "drr_median_norm")
    assert median("A", "irreg_window_frac") > 0.8 > 0.2 > median("N", "irreg_window_frac")


@pytest.mark.parametrize("case", ["flat", "one_second", "noise", "constant", "empty"])
def test_bad_records_fail_without_raising(records, case):
    rng = np.random.default_rng(0)
    _, normal = records["A00033"]
    signal = {
        "flat": np.zeros(9000, np.float32),
        "one_second": normal[:FS],
        "noise": rng.normal(0, 0.3, 9000).astype(np.float32),
        "constant": np.full(9000, 0.7, np.float32),
        "empty": np.zeros(0, np.float32),
    }[case]
    values = record_features(signal, FS)
    assert values.shape == (len(FEATURE_NAMES),) and values.dtype == np.float32
    assert feature(values, "extraction_failed") == 1.0
    assert failure_reason(signal, FS)
    assert np.isnan(feature(values, "rr_mean")) and np.isnan(feature(values, "qrs_width"))


def test_shape_dtype_leads_and_determinism(records):
    _, signal = records["A00109"]
    one = record_features(signal, FS)
    assert one.shape == (len(FEATURE_NAMES),) and one.dtype == np.float32
    assert np.isfinite(one).sum() >= len(FEATURE_NAMES) - 3
    np.testing.assert_array_equal(record_features(signal[None, :], FS), one)  # (leads, samples): lead 0
    np.testing.assert_array_equal(record_features(signal.copy(), FS), one)
