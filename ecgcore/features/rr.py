"""RR-interval statistics of one record: irregularity and AF evidence for ecgcore.features.extract.

Everything here takes the RR intervals (s) of the R peaks that ecgcore.features.extract
found and returns named values: level and spread, successive differences
(RMSSD, pNN20/50), sample and approximate entropy, the coefficient of sample
entropy (Lake & Moorman), Poincare SD1/SD2, turning points, a Sarkar-style
Lorenz-plot count, the entropy of the successive-difference histogram, ectopy
against the local median, and the same AF measures over template-like beats
only. They are a few vector operations on at most a few hundred intervals,
so numpy does them directly (neurokit2's hrv functions build DataFrames and
cost more than the whole feature set).
"""

from __future__ import annotations

import numpy as np

GOOD_BEAT_NAMES = ("good_beat_fraction", "good_rmssd_norm", "good_drr_median_norm", "good_irreg_fraction",
                   "good_drr_entropy")


def rhythm_features(rr: np.ndarray, duration: float) -> dict[str, float]:
    drr = np.diff(rr)
    mean, med = rr.mean(), np.median(rr)
    sd1 = np.std(drr) / np.sqrt(2)
    sd2 = np.sqrt(max(2 * rr.var() - sd1**2, 0.0))
    return {
        "beats_per_min": (rr.size + 1) / duration * 60,
        "rr_mean": mean, "rr_median": med, "rr_std": rr.std(), "rr_cv": rr.std() / mean,
        "rr_min_ratio": rr.min() / med, "rr_max_ratio": rr.max() / med, "rr_max": rr.max(),
        "rmssd": np.sqrt(np.mean(drr**2)), "rmssd_norm": np.sqrt(np.mean(drr**2)) / mean,
        "pnn20": np.mean(np.abs(drr) > 0.02), "pnn50": np.mean(np.abs(drr) > 0.05),
        "drr_median_norm": np.median(np.abs(drr)) / med,
        "sampen": _sample_entropy(rr, 2, 0.2 * rr.std()), "apen": _approximate_entropy(rr, 2, 0.2 * rr.std()),
        "cosen": _cosen(rr),
        "sd1": sd1, "sd2": sd2, "sd1_sd2": sd1 / sd2 if sd2 > 0 else np.nan,
        "turning_ratio": _turning_ratio(rr),
        **_lorenz(drr), "drr_entropy": _drr_entropy(drr / med),
        "rr_acf1": _autocorr(rr, 1), "rr_acf2": _autocorr(rr, 2),
        **_ectopy(rr), **_windowed_irregularity(rr),
    }


def _match_rates(x: np.ndarray, k: int, r: float, n: int) -> np.ndarray:
    """For each of the first n k-long templates, the share of them within r (Chebyshev), itself included."""
    emb = np.lib.stride_tricks.sliding_window_view(x, k)[:n]
    return np.mean(np.max(np.abs(emb[:, None, :] - emb[None, :, :]), axis=2) <= r, axis=1)


def _sample_entropy(x: np.ndarray, m: int, r: float) -> float:
    """SampEn(m, r); when no (m+1)-match exists, the bound log(B) instead of infinity."""
    n = x.size - m
    if n < 3 or r <= 0:
        return np.nan
    b, a = ((np.sum(_match_rates(x, k, r, n)) * n - n) / 2 for k in (m, m + 1))
    return float(np.log(max(b, 1.0) / max(a, 1.0))) if b > 0 else np.nan


def _approximate_entropy(x: np.ndarray, m: int, r: float) -> float:
    if x.size < m + 3 or r <= 0:
        return np.nan
    phi = [np.mean(np.log(_match_rates(x, k, r, x.size - k + 1))) for k in (m, m + 1)]
    return float(phi[0] - phi[1])


def _cosen(rr: np.ndarray) -> float:
    """Coefficient of sample entropy (Lake & Moorman 2011): m = 1, r = 30 ms, in ms units."""
    r = 0.03
    return _sample_entropy(rr, 1, r) + np.log(2 * r * 1000) - np.log(rr.mean() * 1000)


def _turning_ratio(rr: np.ndarray) -> float:
    """Turning points over the 2(n-2)/3 a random series has: near 1 in AF, lower in sinus rhythm."""
    if rr.size < 3:
        return np.nan
    d = np.diff(rr)
    turns = np.sum(d[:-1] * d[1:] < 0)
    return float(turns / (2 * (rr.size - 2) / 3))


def _lorenz(drr: np.ndarray) -> dict[str, float]:
    """Sarkar-style AF evidence on the (dRR_i-1, dRR_i) plot, 40 ms bins: occupied off-origin bins per point."""
    if drr.size < 2:
        return {"lorenz_bins": np.nan}
    pts = np.clip(np.round(np.stack([drr[:-1], drr[1:]], axis=1) / 0.04), -15, 15).astype(np.int64)
    off_origin = pts[np.any(pts != 0, axis=1)]
    return {"lorenz_bins": np.unique(off_origin, axis=0).shape[0] / pts.shape[0]}


def _drr_entropy(drr_norm: np.ndarray) -> float:
    """Shannon entropy of the normalised successive-difference histogram (5 % bins, +-50 %)."""
    hist = np.bincount(np.clip(np.round(drr_norm / 0.05) + 10, 0, 20).astype(np.int64), minlength=21)
    p = hist[hist > 0] / drr_norm.size
    return float(-np.sum(p * np.log(p)))


def _autocorr(x: np.ndarray, lag: int) -> float:
    if x.size <= lag + 2 or x.std() == 0:
        return np.nan
    c = x - x.mean()
    return float(np.sum(c[:-lag] * c[lag:]) / np.sum(c * c))


def _ectopy(rr: np.ndarray) -> dict[str, float]:
    """Ectopy against the local median RR (a premature beat, then a compensatory pause) and the HR span."""
    local = running_median(rr, 5)
    dev = rr / local - 1
    premature = (dev[:-1] < -0.15) & (dev[1:] > 0.1)
    hr = 60 / local
    return {"premature_fraction": float(premature.mean()) if premature.size else np.nan,
            "hr_range": float(hr.max() - hr.min())}


def good_beat_rhythm(rr: np.ndarray, good: np.ndarray) -> dict[str, float]:
    """AF evidence over runs of three template-like beats only: noise and ectopic beats left out."""
    drr = np.diff(rr)[good[:-2] & good[1:-1] & good[2:]]
    values = dict.fromkeys(GOOD_BEAT_NAMES, np.nan)
    values["good_beat_fraction"] = float(good.mean())
    if drr.size >= 3:
        norm = drr / np.median(rr[good[:-1] & good[1:]])
        values.update(good_rmssd_norm=float(np.sqrt(np.mean(norm**2))),
                      good_drr_median_norm=float(np.median(np.abs(norm))),
                      good_irreg_fraction=float(np.mean(np.abs(norm) > 0.1)), good_drr_entropy=_drr_entropy(norm))
    return values


def _windowed_irregularity(rr: np.ndarray, k: int = 8) -> dict[str, float]:
    """Normalised RMSSD over windows of k intervals: paroxysmal AF or ectopy runs show in the extremes."""
    windows = np.lib.stride_tricks.sliding_window_view(rr, min(k, rr.size))
    irreg = np.sqrt(np.mean(np.diff(windows, axis=1) ** 2, axis=1)) / windows.mean(axis=1)
    return {"irreg_window_min": float(irreg.min()),
            "irreg_window_frac": float(np.mean(irreg > 0.1))}


def running_median(x: np.ndarray, k: int) -> np.ndarray:
    pad = k // 2
    padded = np.pad(x, pad, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1)
