"""Signal preprocessing and training-time augmentation for single-lead ECGs.

The spectrogram is the one of Zihlmann et al.: scipy's Welch-style
spectrogram (Tukey window, constant detrend, power spectral density) of the
record on its own (not of a zero-padded copy), transposed to (frames, freqs),
log of the magnitude where it is non-zero. Augmentations draw from a numpy
Generator passed in, so a seeded run repeats exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

# Heart-rate range the resampling emulates: an 80 bpm record played at
# 60..120 bpm, i.e. stretched by a factor in [2/3, 4/3).
_RESAMPLE_LOW, _RESAMPLE_HIGH = 80 / 120, 80 / 60


def log_spectrogram(x: np.ndarray, fs: int, nperseg: int, noverlap: int) -> np.ndarray:
    """(frames, nperseg // 2 + 1) float32 log power spectrogram."""
    if x.size < nperseg:
        x = np.pad(x, (0, nperseg - x.size))
    _, _, sxx = sps.spectrogram(x, fs=fs, nperseg=nperseg, noverlap=noverlap)
    sxx = np.abs(sxx.T)
    out = np.zeros_like(sxx)
    positive = sxx > 0
    out[positive] = np.log(sxx[positive])
    return out.astype(np.float32)


def random_resample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch or squeeze by linear interpolation to a random length in [2/3, 4/3) x."""
    n = x.size
    new_n = int(rng.integers(int(n * _RESAMPLE_LOW), int(n * _RESAMPLE_HIGH)))
    grid = np.linspace(0, n - 1, max(new_n, 2))
    return np.interp(grid, np.arange(n), x).astype(np.float32)


def zero_filter(x: np.ndarray, rng: np.random.Generator, threshold: float = 2.0, depth: int = 10) -> np.ndarray:
    """Zero short random bursts (at least depth+1 samples each), as the reference did.

    A sample starts a burst where a standard normal draw exceeds threshold
    (about 2.3% of samples at 2.0); each start blanks depth+1 samples.
    """
    starts = rng.standard_normal(x.size + depth) > threshold
    mask = np.convolve(starts.astype(np.int32), np.ones(depth + 1, dtype=np.int32), mode="valid") > 0
    return np.where(mask[: x.size], np.float32(0), x)


def add_white_noise(x: np.ndarray, rng: np.random.Generator, snr: float) -> np.ndarray:
    """Additive white Gaussian noise at a linear signal-to-noise power ratio."""
    power = float(np.mean(x.astype(np.float64) ** 2))
    noise = rng.standard_normal(x.size) * np.sqrt(power / snr)
    return (x + noise).astype(np.float32)


def pad_batch(items: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack (frames, freqs) arrays, zero-padded in time; return (batch, lengths)."""
    lengths = np.array([a.shape[0] for a in items], dtype=np.int64)
    out = np.zeros((len(items), int(lengths.max()), items[0].shape[1]), dtype=np.float32)
    for i, a in enumerate(items):
        out[i, : a.shape[0]] = a
    return out, lengths
