"""Training-time augmentations of (leads, samples) float32 signals.

Each function takes the signal and a numpy Generator and returns a new
array; `augment` applies those a model file enables, in a fixed order, each
with the configured probability. The first three are the reference's
(Zihlmann et al.: zero bursts, random resampling, white noise); the others
are the ones the CinC 2020/2021 entries used (scaling, sample drop, cutout,
time shift, piecewise resampling, baseline wander, band-pass).
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from ecgcore.config.model import AUGMENTATION_SWITCHES, DataAugmentation

# Heart-rate range the resampling emulates: an 80 bpm record played at
# 60..120 bpm, i.e. stretched by a factor in [2/3, 4/3).
_RESAMPLE_LOW, _RESAMPLE_HIGH = 80 / 120, 80 / 60


def _stretch(x: np.ndarray, new_n: int) -> np.ndarray:
    n = x.shape[-1]
    grid = np.linspace(0, n - 1, max(new_n, 2))
    return np.stack([np.interp(grid, np.arange(n), lead) for lead in x]).astype(np.float32)


def random_resample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch or squeeze by linear interpolation to a random length in [2/3, 4/3) x."""
    n = x.shape[-1]
    return _stretch(x, int(rng.integers(int(n * _RESAMPLE_LOW), int(n * _RESAMPLE_HIGH))))


def zero_filter(x: np.ndarray, rng: np.random.Generator, threshold: float = 2.0, depth: int = 10) -> np.ndarray:
    """Zero short random bursts (at least depth+1 samples each, all leads), as the reference did.

    A sample starts a burst where a standard normal draw exceeds threshold
    (about 2.3% of samples at 2.0); each start blanks depth+1 samples.
    """
    n = x.shape[-1]
    starts = rng.standard_normal(n + depth) > threshold
    mask = np.convolve(starts.astype(np.int32), np.ones(depth + 1, dtype=np.int32), mode="valid") > 0
    return np.where(mask[:n], np.float32(0), x)


def add_white_noise(x: np.ndarray, rng: np.random.Generator, snr: float) -> np.ndarray:
    """Additive white Gaussian noise at a linear signal-to-noise power ratio, per lead."""
    power = np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True)
    noise = rng.standard_normal(x.shape) * np.sqrt(power / snr)
    return (x + noise).astype(np.float32)


def scale(x: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """One random gain per lead, around 1 (amplitude differs between devices)."""
    return (x * (1.0 + std * rng.standard_normal((x.shape[0], 1)))).astype(np.float32)


def sample_drop(x: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    return np.where(rng.random(x.shape[-1]) < fraction, np.float32(0), x)


def cutout(x: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Zero one contiguous segment of fraction * length samples, all leads."""
    n = x.shape[-1]
    width = max(1, int(round(fraction * n)))
    start = int(rng.integers(0, max(1, n - width + 1)))
    out = x.copy()
    out[:, start:start + width] = 0
    return out


def time_shift(x: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Circular shift by up to fraction * length samples either way."""
    limit = int(fraction * x.shape[-1])
    return np.roll(x, int(rng.integers(-limit, limit + 1)), axis=-1) if limit else x


def piecewise_resample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut into 2-6 pieces and stretch each by its own factor in [0.8, 1.25] (local rate changes)."""
    n = x.shape[-1]
    pieces = int(rng.integers(2, 7))
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(pieces - 1, n - 1), replace=False))
    parts = [p for p in np.split(x, cuts, axis=-1) if p.shape[-1] > 1]
    if not parts:
        return x
    return np.concatenate([_stretch(p, int(p.shape[-1] * rng.uniform(0.8, 1.25))) for p in parts], axis=-1)


def baseline_sine(x: np.ndarray, rng: np.random.Generator, amplitude: float, fs: float) -> np.ndarray:
    """Add a 0.05-0.5 Hz sine per lead, as breathing and electrode drift do."""
    t = np.arange(x.shape[-1]) / fs
    freq = rng.uniform(0.05, 0.5, size=(x.shape[0], 1))
    phase = rng.uniform(0, 2 * np.pi, size=(x.shape[0], 1))
    amp = amplitude * rng.uniform(0.5, 1.0, size=(x.shape[0], 1))
    return (x + amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def random_bandpass(x: np.ndarray, rng: np.random.Generator, fs: float) -> np.ndarray:
    """Zero-phase order-2 Butterworth band-pass with random cut-offs (different devices' filters)."""
    low = rng.uniform(0.5, 5.0)
    high = min(rng.uniform(25.0, 60.0), 0.45 * fs)
    if x.shape[-1] <= 15 or high <= low:
        return x
    sos = sps.butter(2, [low, high], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=min(15, x.shape[-1] - 1)).astype(np.float32)


def enabled(aug: DataAugmentation) -> bool:
    return any(getattr(aug, switch) for switch in AUGMENTATION_SWITCHES)


def augment(x: np.ndarray, aug: DataAugmentation, fs: float, rng: np.random.Generator) -> np.ndarray:
    """x with the enabled augmentations, each applied with probability aug.probability."""
    steps = [
        (aug.zero_filter, lambda s: zero_filter(s, rng)),
        (aug.resampling, lambda s: random_resample(s, rng)),
        (aug.piecewise_resampling, lambda s: piecewise_resample(s, rng)),
        (aug.time_shift > 0, lambda s: time_shift(s, rng, aug.time_shift)),
        (aug.bandpass, lambda s: random_bandpass(s, rng, fs)),
        (aug.baseline_sine > 0, lambda s: baseline_sine(s, rng, aug.baseline_sine, fs)),
        (aug.scaling > 0, lambda s: scale(s, rng, aug.scaling)),
        (aug.cutout > 0, lambda s: cutout(s, rng, aug.cutout)),
        (aug.sample_drop > 0, lambda s: sample_drop(s, rng, aug.sample_drop)),
        (aug.awgn, lambda s: add_white_noise(s, rng, aug.awgn_snr)),
    ]
    for on, step in steps:
        # With probability 1 no draw is made, so the reference's random stream is unchanged.
        if on and (aug.probability >= 1.0 or rng.random() < aug.probability):
            x = step(x)
    return x
