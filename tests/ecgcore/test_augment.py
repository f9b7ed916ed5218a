"""Augmentations and the input pipeline: what each one does, seeds, windows, resampling."""

import math

import numpy as np
import pytest

from ecgcore.config.model import DataAugmentation
from ecgcore.config.modelfile import parse_model
from ecgcore.data import augment, preprocess
from ecgcore.data.pipeline import Pipeline
from tests.conftest import tiny_model, tiny_signal_model

OFF = DataAugmentation(resampling=False, zero_filter=False)


def _ecg(leads=2, n=3000, fs=300.0):
    t = np.arange(n) / fs
    return np.stack([np.sin(2 * np.pi * 1.2 * t * (k + 1)) for k in range(leads)]).astype(np.float32)


def test_each_augmentation_does_what_it_says():
    rng = np.random.default_rng(0)
    x = _ecg()
    assert augment.random_resample(x, rng).shape[1] in range(2000, 4000)
    gains = augment.scale(x, rng, 0.2)[:, 1:] / x[:, 1:]  # x[:, 0] is 0
    assert np.allclose(gains, gains[:, :1], atol=1e-4) and not np.allclose(gains[:, 0], 1)
    dropped = augment.sample_drop(x + 5, rng, 0.1)
    assert 0.05 < np.mean(dropped[0] == 0) < 0.15 and np.array_equal(dropped[0] == 0, dropped[1] == 0)
    cut = augment.cutout(x + 5, rng, 0.1)
    zero = np.flatnonzero(cut[0] == 0)
    assert zero.size == 300 and np.all(np.diff(zero) == 1)
    shifted = augment.time_shift(x, rng, 0.5)
    lag = int(np.argmax([np.dot(np.roll(x[0], k), shifted[0]) for k in range(-1500, 1501)])) - 1500
    assert np.allclose(np.roll(x, lag, axis=1), shifted)
    assert 2000 < augment.piecewise_resample(x, rng).shape[1] < 4000
    wander = augment.baseline_sine(np.zeros_like(x), rng, 0.5, 300.0)
    assert 0.2 < np.abs(wander).max() <= 0.5 and np.abs(np.diff(wander)).max() < 0.01
    noise = augment.add_white_noise(x, rng, 4.0) - x
    assert np.mean(noise ** 2) == pytest.approx(np.mean(x ** 2) / 4.0, rel=0.15)


def test_bandpass_removes_baseline_and_high_frequencies():
    fs = 300.0
    t = np.arange(6000) / fs
    x = (np.sin(2 * np.pi * 10 * t) + 2 + np.sin(2 * np.pi * 120 * t)).astype(np.float32)[None]
    y = augment.random_bandpass(x, np.random.default_rng(1), fs)
    spectrum = np.abs(np.fft.rfft(y[0, 1000:-1000]))
    freqs = np.fft.rfftfreq(4000, 1 / fs)
    peak = lambda f: spectrum[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert abs(y[0, 1000:-1000].mean()) < 0.05  # the DC offset is gone
    assert peak(120) < 0.1 * peak(10)


def test_augment_is_seeded_and_probability_zero_is_identity():
    aug = DataAugmentation(scaling=0.1, cutout=0.1, time_shift=0.1, piecewise_resampling=True,
                           baseline_sine=0.1, bandpass=True, sample_drop=0.05, awgn=True)
    x = _ecg()
    a = augment.augment(x, aug, 300.0, np.random.default_rng(7))
    b = augment.augment(x, aug, 300.0, np.random.default_rng(7))
    assert np.array_equal(a, b) and not np.array_equal(a[:, :100], x[:, :100])
    never = DataAugmentation(scaling=0.1, cutout=0.1, awgn=True, probability=0.0)
    assert np.array_equal(augment.augment(x, never, 300.0, np.random.default_rng(7)), x)
    assert not augment.enabled(OFF) and augment.enabled(never)


def test_pipeline_resamples_standardises_and_windows():
    model = parse_model(tiny_signal_model(preprocessing={"fs": 400, "window": 1024, "window_stride": 512,
                                                         "standardize": True}), "m.json")
    pipe = Pipeline(model, 300.0, 2)
    assert pipe.inputs.kind == "signal" and pipe.inputs.length == 1024 and pipe.inputs.fs == 400.0
    x = pipe.prepare(_ecg(2, 3000) * 3 + 1)
    assert x.shape == (2, 4000)
    assert np.allclose(x.mean(axis=1), 0, atol=1e-5) and np.allclose(x.std(axis=1), 1, atol=1e-3)
    items = pipe.eval_items([x, x[:, :700]])
    owners = items.owners
    # 4000 samples: starts 0, 512, ..., 2560 and a last one ending at 4000; a short record gives one.
    assert [i.shape for i in items[:2]] == [(1024, 2), (1024, 2)] and owners.tolist() == [0] * 7 + [1]
    batch, lengths = pipe.to_tensors(items[-2:], "cpu")
    assert batch.shape == (2, 2, 1024) and lengths.tolist() == [1024, 700]
    drawn = pipe.train_items([x], np.random.default_rng(0))
    assert drawn[0].shape == (1024, 2)


def test_spectrogram_pipeline_per_lead():
    pipe = Pipeline(parse_model(tiny_model("CNN"), "m.json"), 300.0, 3)
    feats = pipe.features(_ecg(3, 3000))
    assert feats.shape == (92, 3, 33) and pipe.inputs.n_freqs == 33
    assert np.allclose(feats[:, 1], preprocess.log_spectrogram(_ecg(3, 3000)[1], 300.0, 64, 32))


def test_spectrogram_flag_must_match_the_architecture():
    from ecgcore.config.schema import ConfigError

    with pytest.raises(ConfigError, match=r"preprocessing.spectrogram: GlobalSkipNet takes signal input"):
        parse_model(tiny_signal_model(preprocessing={"spectrogram": True}), "m.json")


def test_bandpass_and_notch_preprocessing():
    fs = 500.0
    t = np.arange(5000) / fs
    x = np.stack([np.sin(2 * np.pi * 10 * t) + 1.5 + 0.5 * np.sin(2 * np.pi * 50 * t)]).astype(np.float32)

    def amp(y, f):
        spec = np.abs(np.fft.rfft(y[0, 1000:-1000])) / 1500
        return spec[np.argmin(np.abs(np.fft.rfftfreq(3000, 1 / fs) - f))]

    notched = preprocess.notch(x, fs, 50.0)
    assert amp(notched, 50) < 0.02 * amp(x, 50) and amp(notched, 10) == pytest.approx(amp(x, 10), rel=0.02)
    banded = preprocess.bandpass(x, fs, 0.5, 40.0)
    assert abs(banded[0, 1000:-1000].mean()) < 0.02 and amp(banded, 10) == pytest.approx(amp(x, 10), rel=0.05)
    assert amp(banded, 50) < 0.5 * amp(x, 50)
    with pytest.raises(Exception, match=r"bandpass \[0.5, 300.0\] Hz needs 0 < low < high < fs/2 = 250"):
        preprocess.bandpass(x, fs, 0.5, 300.0)
    # From a model file: the pipeline filters at the source rate before resampling.
    model = parse_model(tiny_signal_model(preprocessing={"fs": 250, "notch": 50, "bandpass": [0.5, 40]}), "m.json")
    prepared = Pipeline(model, fs, 1).prepare(x)
    assert prepared.shape == (1, 2500) and abs(prepared[0, 500:-500].mean()) < 0.05


def test_the_reference_augmentations_have_its_rates_and_ranges():
    # Zihlmann et al.'s codes/utils/transformations.py, as network.py calls them: a burst starts where a standard
    # normal draw exceeds 2 and blanks 11 samples (depth 10); the stretch is to a length in [2/3, 4/3) x.
    rng = np.random.default_rng(0)
    x = np.ones((1, 200_000), dtype=np.float32)
    zeroed = augment.zero_filter(x, rng)[0] == 0
    start_rate = 0.5 * math.erfc(2 / math.sqrt(2))  # P(N(0, 1) > 2) = 0.02275
    assert zeroed.mean() == pytest.approx(1 - (1 - start_rate) ** 11, abs=0.005)  # 22.4% of the samples
    edges = np.flatnonzero(np.diff(np.concatenate([[0], zeroed.astype(np.int8), [0]])))
    runs = edges[1::2] - edges[0::2]
    assert runs.min() == 11
    lengths = [augment.random_resample(np.ones((1, 3000), np.float32), rng).shape[1] for _ in range(2000)]
    assert min(lengths) >= 2000 and max(lengths) < 4000
    assert np.mean(lengths) == pytest.approx(3000, rel=0.02)
