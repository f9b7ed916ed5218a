"""Engineered per-record features of a single-lead ECG for a gradient-boosting classifier.

The features follow the CinC 2017 winners (Teijeiro, Datta, Zabihi, ENCASE): RR-interval
irregularity (AF evidence), P-wave presence and coherence from an average beat, QRS and
beat-template morphology, spectral band powers and signal-quality indices.

Who does what, and why:
- neurokit2 cleans the lead (`ecg_clean`, 0.5 Hz high-pass + powerline filter) and finds the
  R peaks (`ecg_findpeaks`, method "neurokit", a gradient-threshold detector); a second
  detector (Pan-Tompkins) is run only to measure how well the two agree (bSQI, a noise index).
  `ecg_findpeaks` is called rather than `ecg_peaks`, which wraps the same detector in
  DataFrames. `ecg_delineate`, `hrv` and `ecg_quality` are not used: they cost 10-70 ms
  a record, more than everything here together.
- numpy/scipy compute everything else: RR statistics (ecgcore.features.rr) and entropies are a few vector
  operations on at most a few hundred intervals, and the template features work on a
  (beats, window) matrix cut around the R peaks.

A record where no beat analysis is possible (too short, flat, fewer than four beats, or
"beats" that do not look alike, as in pure noise) gets NaN for the rhythm and morphology
features and extraction_failed = 1; the signal-quality features are still computed when
the record has samples enough. Nothing here raises for a bad record.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal as sps

from ecgcore.features import rr as rr_features  # "rr" names the RR intervals below

FEATURES_VERSION = 1

_QUALITY = (
    "duration_s", "amp_range", "kurtosis", "skewness", "flat_fraction", "saturated_fraction",
    "band_0_1", "band_1_5", "band_5_15", "band_15_40", "band_40_up", "psqi", "spectral_entropy",
    "rms_cv", "rms_max_ratio",
)
_RHYTHM = (
    "beats_per_min", "bsqi", "rr_mean", "rr_median", "rr_std", "rr_cv", "rr_min_ratio", "rr_max_ratio", "rr_max",
    "rmssd", "rmssd_norm", "pnn20", "pnn50", "drr_median_norm", "sampen", "apen", "cosen",
    "sd1", "sd2", "sd1_sd2", "turning_ratio", "lorenz_bins", "drr_entropy", "rr_acf1",
    "rr_acf2", "premature_fraction", "hr_range", "irreg_window_min", "irreg_window_frac",
)
_MORPHOLOGY = (
    "beat_corr_mean", "beat_corr_min", "qrs_amp", "qrs_width",
    "qrs_energy_ratio", "rs_ratio", "r_amp_cv", "p_amp_ratio", "p_energy_ratio", "p_corr_mean",
    "p_coherence", "p_present_fraction", "pr_interval", "t_amp_ratio", "t_coherence", "st_level",
    "residual_ratio", "residual_af_band", "template_kurtosis", "qrs_corr_min", "qrs_abnormal_fraction",
    "pvc_fraction", "pac_fraction",
)
# Template samples at fixed offsets from R (ms), over the QRS amplitude: the shape of the average beat.
_TEMPLATE_MS = (-200, -150, -100, -50, -25, 25, 50, 300)
_SHAPE = tuple(f"tpl_{'m' if ms < 0 else 'p'}{abs(ms)}" for ms in _TEMPLATE_MS)
FEATURE_NAMES: tuple[str, ...] = ("extraction_failed", *_QUALITY, *_RHYTHM, *rr_features.GOOD_BEAT_NAMES,
                                  *_MORPHOLOGY, *_SHAPE)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

_MIN_SECONDS = 3.0
_MIN_BEATS = 4
_NOISE_CORR, _NOISE_BSQI = 0.6, 0.2  # below both: the "beats" are noise (white noise: ~0.4, ~0.1)
_PRE, _POST = 0.25, 0.45  # template window around R, s: P wave before, T wave after


def record_features(signal: np.ndarray, fs: float) -> np.ndarray:
    """(len(FEATURE_NAMES),) float32 features of lead 0 of a (leads, samples) or 1-D signal in mV.

    Features that cannot be computed are NaN; extraction_failed is 1.0 when the beat analysis failed.
    """
    return _extract(signal, fs)[0]


def failure_reason(signal: np.ndarray, fs: float) -> str | None:
    """Why record_features marks this record extraction_failed, or None when it does not."""
    return _extract(signal, fs)[1]


def detect_rpeaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of lead 0 that the RR features use (neurokit2's detector, then aligned)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _aligned_peaks(_clean(_lead(signal), fs), fs)[1]


def _extract(signal: np.ndarray, fs: float) -> tuple[np.ndarray, str | None]:
    out = np.full(len(FEATURE_NAMES), np.nan, dtype=np.float64)
    x = _lead(signal)
    reason = _signal_problem(x, fs)
    if x.size >= 8:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            clean = _clean(x, fs)
            _put(out, _quality_features(x, clean, fs))
            if reason is None:
                reason = _beat_features(out, clean, fs)
    out[0] = 0.0 if reason is None else 1.0
    return out.astype(np.float32), reason


def _lead(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    x = x[0] if x.ndim == 2 else x.reshape(-1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _signal_problem(x: np.ndarray, fs: float) -> str | None:
    if x.size < _MIN_SECONDS * fs:
        return f"too short: {x.size / fs:.2f} s < {_MIN_SECONDS:g} s"
    if np.ptp(x) < 1e-3:
        return "flat: peak-to-peak amplitude under 1 uV"
    return None


def _clean(x: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    if x.size < 3 * fs:  # the high-pass needs a few seconds; a short record is only centred
        return x - x.mean()
    return np.asarray(nk.ecg_clean(x, sampling_rate=fs, method="neurokit"), dtype=np.float64)


def _rpeaks(clean: np.ndarray, fs: float, method: str = "neurokit") -> np.ndarray:
    import neurokit2 as nk

    if clean.size < _MIN_SECONDS * fs or np.ptp(clean) < 1e-3:
        return np.zeros(0, dtype=np.int64)
    try:  # callers silence neurokit2's warnings
        peaks = nk.ecg_findpeaks(clean, sampling_rate=fs, method=method)["ECG_R_Peaks"]
    except (ValueError, IndexError):  # detectors index empty arrays on odd signals
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.asarray(peaks, dtype=np.int64))


def _put(out: np.ndarray, values: dict[str, float]) -> None:
    for name, value in values.items():
        out[_INDEX[name]] = value


def _beat_features(out: np.ndarray, clean: np.ndarray, fs: float) -> str | None:
    """Fill rhythm and morphology features; the failure reason, or None."""
    smooth, peaks = _aligned_peaks(clean, fs)
    if peaks.size < _MIN_BEATS:
        return f"{peaks.size} R peaks found, need {_MIN_BEATS}"
    beats = _beat_matrix(smooth, peaks, fs)
    template = np.median(beats, axis=0)
    corr = _row_corr(beats, template)
    bsqi = _agreement(peaks, _rpeaks(clean, fs, "pantompkins1985"), fs)
    # Noise gives "beats" that neither look alike nor are found by a second detector; real
    # records, even poor ones, rarely fail both (17 of 8,528 N/A/O records on CinC 2017).
    if np.median(corr) < _NOISE_CORR and bsqi < _NOISE_BSQI:
        return f"no credible beats (template correlation {np.median(corr):.2f}, detector agreement {bsqi:.2f})"
    rr = np.diff(peaks) / fs
    _put(out, rr_features.rhythm_features(rr, clean.size / fs))
    good = corr >= 0.8
    _put(out, rr_features.good_beat_rhythm(rr, good))
    out[_INDEX["bsqi"]] = bsqi
    # The shape features come from the beats that look like the first template: noise and ectopy left out.
    template = np.median(beats[good], axis=0) if good.sum() >= _MIN_BEATS else template
    _put(out, _morphology_features(beats, template, corr, fs))
    _put(out, _ectopic_beats(beats, template, rr, fs))
    return None


def _aligned_peaks(clean: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """The 40 Hz low-passed lead and its R peaks (neurokit2's, moved to the dominant deflection)."""
    # Morphology wants the 40 Hz low-pass neurokit's cleaning leaves out (muscle noise blurs the template).
    # An order-3 low-pass is stable in (b, a) form, whose design is 10x cheaper than sos.
    smooth = sps.filtfilt(*sps.butter(3, min(40.0, 0.45 * fs), fs=fs), clean) if clean.size > 12 else clean
    peaks = _rpeaks(clean, fs)
    return smooth, (_align(smooth, peaks, fs) if peaks.size else peaks)


def _align(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Move each peak to the record's dominant QRS deflection within 50 ms.

    neurokit2 marks the most prominent positive maximum, which on an inverted or biphasic QRS
    hops between waves from beat to beat; one fiducial point keeps RR and template sharp.
    """
    r, half = int(_PRE * fs), int(0.06 * fs)
    beats = _beat_matrix(x, peaks, fs)
    qrs = np.median(beats, axis=0)[r - half: r + half]
    sign = 1.0 if qrs.max() - np.median(qrs) >= np.median(qrs) - qrs.min() else -1.0
    w = int(0.05 * fs)
    idx = np.clip(peaks[:, None] + np.arange(-w, w + 1)[None, :], 0, x.size - 1)
    return np.unique(idx[np.arange(peaks.size), np.argmax(sign * x[idx], axis=1)])


# ---------------------------------------------------------------- signal quality and spectrum

def _quality_features(x: np.ndarray, clean: np.ndarray, fs: float) -> dict[str, float]:
    centred = x - x.mean()
    freqs, psd = sps.welch(centred, fs=fs, nperseg=min(x.size, int(4 * fs)), detrend=False)
    total = psd.sum()
    band = {name: psd[(freqs >= lo) & (freqs < hi)].sum() / total if total > 0 else np.nan
            for name, lo, hi in (("band_0_1", 0, 1), ("band_1_5", 1, 5), ("band_5_15", 5, 15),
                                 ("band_15_40", 15, 40), ("band_40_up", 40, fs))}
    p = psd / total if total > 0 else np.full_like(psd, np.nan)
    return {
        "duration_s": x.size / fs,
        "amp_range": float(np.percentile(clean, 99) - np.percentile(clean, 1)),
        **_moments(clean),
        "flat_fraction": _flat_fraction(x, fs),
        "saturated_fraction": float(np.mean((x >= x.max() - 1e-6) | (x <= x.min() + 1e-6))),
        **band,
        # pSQI of Li & Clifford: QRS power (5-15 Hz) over the ECG band (5-40 Hz)
        "psqi": band["band_5_15"] / (band["band_5_15"] + band["band_15_40"]),
        "spectral_entropy": float(-np.nansum(p * np.log(np.where(p > 0, p, 1))) / np.log(p.size)),
        **_rms_spread(clean, fs),
    }


def _flat_fraction(x: np.ndarray, fs: float) -> float:
    """Fraction of samples in runs of unchanged value lasting at least 0.1 s (lead off, dropouts)."""
    still = np.concatenate(([False], np.abs(np.diff(x)) < 1e-6, [False]))
    edges = np.flatnonzero(np.diff(still.astype(np.int8)))
    lengths = edges[1::2] - edges[::2]
    return float(lengths[lengths >= 0.1 * fs].sum() / x.size)


def _rms_spread(clean: np.ndarray, fs: float) -> dict[str, float]:
    """Spread of the 1-second RMS: bursts of noise or motion make it uneven."""
    n = int(fs)
    if clean.size < 2 * n:
        return {"rms_cv": np.nan, "rms_max_ratio": np.nan}
    rms = np.sqrt(np.mean(clean[: clean.size // n * n].reshape(-1, n) ** 2, axis=1))
    med = np.median(rms)
    return {"rms_cv": float(rms.std() / rms.mean()), "rms_max_ratio": float(rms.max() / med) if med > 0 else np.nan}


def _agreement(a: np.ndarray, b: np.ndarray, fs: float) -> float:
    """bSQI: beats two detectors agree on (within 50 ms) over the beats either found.

    Pan-Tompkins marks its beats a fixed delay after R (its integration window): that delay,
    the median offset, is taken out first.
    """
    if a.size == 0 or b.size == 0:
        return 0.0
    if b.size == 1:
        b = np.array([b[0], b[0]])
    idx = np.clip(np.searchsorted(b, a), 1, b.size - 1)
    near = np.where(np.abs(b[idx] - a) < np.abs(b[idx - 1] - a), b[idx], b[idx - 1]) - a
    matched = int(np.sum(np.abs(near - np.median(near)) <= 0.05 * fs))
    return matched / (a.size + b.size - matched)


# ---------------------------------------------------------------- beat template and morphology

def _beat_matrix(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """(beats, window): one row per peak, the record's ends repeated where a window runs past them."""
    pre, post = int(_PRE * fs), int(_POST * fs)
    return x[np.clip(peaks[:, None] + np.arange(-pre, post)[None, :], 0, x.size - 1)]


def _row_corr(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    a = rows - rows.mean(axis=1, keepdims=True)
    b = ref - ref.mean()
    denom = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b))
    return np.divide(a @ b, denom, out=np.full(rows.shape[0], np.nan), where=denom > 0)


def _morphology_features(beats: np.ndarray, template: np.ndarray, corr: np.ndarray, fs: float) -> dict:
    r = int(_PRE * fs)
    qrs = slice(r - int(0.06 * fs), r + int(0.06 * fs))
    p_win = slice(r - int(0.25 * fs), r - int(0.07 * fs))
    t_win = slice(r + int(0.15 * fs), r + int(0.45 * fs))
    baseline = np.median(template[p_win.stop - int(0.03 * fs): p_win.stop])  # PR segment
    qrs_amp = np.ptp(template[qrs])
    residual = beats - template
    p_corr = _row_corr(beats[:, p_win], template[p_win])
    p_wave = _detrend(template[p_win])
    shape = {name: (template[r + int(ms * fs / 1000)] - baseline) / qrs_amp
             for name, ms in zip(_SHAPE, _TEMPLATE_MS, strict=True)}
    return {
        **shape,
        "beat_corr_mean": np.nanmean(corr), "beat_corr_min": np.nanmin(corr),
        "qrs_amp": qrs_amp, "qrs_width": _qrs_width(template, r, fs),
        "qrs_energy_ratio": _energy(template[r - int(0.04 * fs): r + int(0.04 * fs)] - baseline)
        / _energy(template[r - int(0.1 * fs): r + int(0.1 * fs)] - baseline),
        "rs_ratio": (template[qrs].max() - baseline) / (abs(template[qrs].min() - baseline) + 1e-3),
        "r_amp_cv": np.std(beats[:, r]) / (abs(np.mean(beats[:, r])) + 1e-3),
        "p_amp_ratio": np.ptp(p_wave) / qrs_amp,
        "pr_interval": (r - p_win.start - np.argmax(np.abs(p_wave))) / fs,
        "p_energy_ratio": _energy(p_wave) / _energy(template[qrs] - baseline),
        "p_corr_mean": np.nanmean(p_corr),
        "p_present_fraction": np.mean(p_corr > 0.5),
        # Averaging keeps what every beat shares: a real P wave survives, fibrillatory waves cancel.
        "p_coherence": _energy(p_wave) / np.mean(_energy(_detrend(beats[:, p_win]))),
        "t_amp_ratio": (template[t_win][np.argmax(np.abs(template[t_win] - baseline))] - baseline) / qrs_amp,
        "t_coherence": _energy(template[t_win] - template[t_win].mean())
        / np.mean(_energy(beats[:, t_win] - beats[:, t_win].mean(axis=1, keepdims=True))),
        "st_level": (np.mean(template[r + int(0.08 * fs): r + int(0.12 * fs)]) - baseline) / qrs_amp,
        "residual_ratio": np.mean(_energy(residual)) / np.mean(_energy(beats)),
        "residual_af_band": _band_fraction(residual[:, : p_win.stop], fs, 4, 9),
        "template_kurtosis": _moments(template)["kurtosis"],
    }


def _moments(x: np.ndarray) -> dict[str, float]:
    """Excess kurtosis and skewness (scipy.stats' versions cost ~2 ms a call in argument checks)."""
    c = x - x.mean()
    c2 = c * c
    var = np.mean(c2)
    if var <= 0:
        return {"kurtosis": np.nan, "skewness": np.nan}
    return {"kurtosis": float(np.mean(c2 * c2) / var**2 - 3), "skewness": float(np.mean(c2 * c) / var**1.5)}


def _detrend(x: np.ndarray) -> np.ndarray:
    """Least-squares line removed along the last axis (scipy's detrend is slow on small arrays)."""
    t = np.arange(x.shape[-1]) - (x.shape[-1] - 1) / 2
    c = x - x.mean(axis=-1, keepdims=True)
    return c - np.outer(c @ t / (t @ t), t).reshape(c.shape)


def _ectopic_beats(beats: np.ndarray, template: np.ndarray, rr: np.ndarray, fs: float) -> dict[str, float]:
    """QRS-only likeness of each beat, and premature beats split by it: ventricular (a different
    QRS) vs supraventricular (the usual QRS, early). The QRS window leaves out P/T noise."""
    r, half = int(_PRE * fs), int(0.1 * fs)
    qrs_corr = _row_corr(beats[:, r - half: r + half], template[r - half: r + half])
    # beat i+1 ends interval i: premature when that interval is short against its neighbourhood
    early = np.concatenate(([False], rr / rr_features.running_median(rr, 5) < 0.85))
    abnormal = qrs_corr < 0.8
    return {"qrs_corr_min": float(np.nanmin(qrs_corr)), "qrs_abnormal_fraction": float(np.mean(abnormal)),
            "pvc_fraction": float(np.mean(early & abnormal)), "pac_fraction": float(np.mean(early & (qrs_corr >= 0.9)))}


def _energy(x: np.ndarray) -> np.ndarray:
    return np.sum(np.square(x), axis=-1)


def _qrs_width(template: np.ndarray, r: int, fs: float) -> float:
    """Span around R where the slope exceeds 15 % of its maximum there (a robust QRS width proxy)."""
    half = int(0.12 * fs)
    slope = np.abs(np.diff(template[r - half: r + half]))
    steep = np.flatnonzero(slope > 0.15 * slope.max())
    return float((steep[-1] - steep[0] + 1) / fs) if steep.size else np.nan


def _band_fraction(rows: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """Share of lo-hi Hz in the 1-40 Hz power of the rows (residual f waves sit at 4-9 Hz)."""
    spec = np.mean(np.abs(np.fft.rfft(rows * np.hanning(rows.shape[1]), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(rows.shape[1], 1 / fs)
    total = spec[(freqs >= 1) & (freqs <= 40)].sum()
    return float(spec[(freqs >= lo) & (freqs <= hi)].sum() / total) if total > 0 else np.nan
