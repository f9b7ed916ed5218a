"""Deterministic preprocessing of (leads, samples) signals into model inputs.

The spectrogram is the one of Zihlmann et al.: scipy's Welch-style
spectrogram (Tukey window, constant detrend, power spectral density) of the
record on its own (not of a zero-padded copy), transposed to (frames, freqs),
log of the magnitude where it is non-zero. Resampling is polyphase with an
anti-aliasing filter; windows cut fixed-length pieces for the models that
need a fixed input length.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps

from ecgcore.errors import DataError


def log_spectrogram(x: np.ndarray, fs: float, nperseg: int, noverlap: int) -> np.ndarray:
    """(frames, nperseg // 2 + 1) float32 log power spectrogram of a 1-D signal."""
    if x.size < nperseg:
        x = np.pad(x, (0, nperseg - x.size))
    _, _, sxx = sps.spectrogram(x, fs=fs, nperseg=nperseg, noverlap=noverlap)
    sxx = np.abs(sxx.T)
    out = np.zeros_like(sxx)
    positive = sxx > 0
    out[positive] = np.log(sxx[positive])
    return out.astype(np.float32)


def lead_spectrograms(x: np.ndarray, fs: float, nperseg: int, noverlap: int) -> np.ndarray:
    """(frames, leads, freqs) for a (leads, samples) signal."""
    return np.stack([log_spectrogram(lead, fs, nperseg, noverlap) for lead in x], axis=1)


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """(leads, samples) from fs_in to fs_out, polyphase (300 -> 400 Hz is up 4, down 3)."""
    if fs_in == fs_out:
        return x
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def bandpass(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    """Zero-phase order-3 Butterworth band-pass of each lead (baseline wander and high-frequency noise)."""
    if not 0 < low < high < fs / 2:
        raise DataError(f"preprocessing.bandpass [{low}, {high}] Hz needs 0 < low < high < fs/2 = {fs / 2:g}")
    sos = sps.butter(3, [low, high], btype="bandpass", fs=fs, output="sos")
    return _filtfilt(sos, x)


def notch(x: np.ndarray, fs: float, freq: float, quality: float = 30.0) -> np.ndarray:
    """Zero-phase notch at freq (mains interference), bandwidth freq / quality."""
    if not 0 < freq < fs / 2:
        raise DataError(f"preprocessing.notch {freq} Hz needs 0 < notch < fs/2 = {fs / 2:g}")
    b, a = sps.iirnotch(freq, quality, fs=fs)
    return _filtfilt(sps.tf2sos(b, a), x)


def _filtfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    # A record shorter than the default padding is filtered with what padding it allows.
    padlen = min(3 * (2 * len(sos) + 1), x.shape[-1] - 1)
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0)).astype(np.float32)


def standardize(x: np.ndarray) -> np.ndarray:
    """Each lead to zero mean, unit variance (a flat lead stays zero)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    std = centred.std(axis=-1, keepdims=True)
    return (centred / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


def random_window(x: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of the record; a shorter record is returned whole (padded later)."""
    n = x.shape[-1]
    if n <= window:
        return x
    start = int(rng.integers(0, n - window + 1))
    return x[:, start:start + window]


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Starts of evaluation windows covering all n samples; the last one ends at n."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def pad_batch(items: list[np.ndarray], min_length: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack time-first arrays, zero-padded in time to the longest (or min_length); return (batch, lengths)."""
    lengths = np.array([a.shape[0] for a in items], dtype=np.int64)
    steps = max(int(lengths.max()), min_length)
    out = np.zeros((len(items), steps, *items[0].shape[1:]), dtype=np.float32)
    for i, a in enumerate(items):
        out[i, : a.shape[0]] = a
    return out, lengths
