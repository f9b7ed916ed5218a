"""Synthetic single-lead ECG records in the PhysioNet/CinC 2017 file format.

The generator exists for the offline demo and for tests: it writes WFDB
records (``A00001.mat`` + ``A00001.hea``) and a ``REFERENCE.csv`` that the
real data loaders read unchanged.  It is never a stand-in for real data.

Signals are built from a beat schedule (R-peak times plus per-beat flags for
P-wave presence, PR interval and ventricular ectopy) rendered as sums of
Gaussian waves, then degraded with baseline wander, noise and, for the noisy
class, motion artefacts.  Each class carries the rhythm features that make
the real classes separable: RR regularity, P waves, f-waves, artefacts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io

CLASSES = ("N", "A", "O", "~")

# Label shares of the real CinC 2017 training set.
_PROPORTIONS = {"N": 0.59, "A": 0.09, "O": 0.29, "~": 0.03}

# Per-wave (offset from R in s, amplitude in mV, Gaussian width in s) of a
# normal conducted beat; P offset is replaced by the beat's own PR interval.
_WAVES_NORMAL = {
    "P": (-0.16, 0.15, 0.022),
    "Q": (-0.028, -0.12, 0.009),
    "R": (0.0, 1.0, 0.011),
    "S": (0.028, -0.28, 0.010),
    "T": (0.28, 0.30, 0.045),
}
# Ventricular ectopic beat: no P, wide bizarre QRS, discordant T.
_WAVES_ECTOPIC = {
    "Q": (-0.04, -0.15, 0.02),
    "R": (0.0, 1.25, 0.035),
    "S": (0.06, -0.45, 0.03),
    "T": (0.34, -0.40, 0.07),
}
# Format 16 reserves -32768 as "missing sample", so the digital range stops
# one short of int16's minimum to keep p_signal == val / 1000 everywhere.
_DIG_MIN, _DIG_MAX = -32767, 32767


def _gauss_sum(n, fs, centers, amps, widths):
    """Add one Gaussian per beat into an n-sample signal via windowed bincount."""
    out = np.zeros(n)
    if len(centers) == 0:
        return out
    half = int(np.ceil(4.5 * np.max(widths) * fs))
    offs = np.arange(-half, half + 1)
    idx = np.round(np.asarray(centers) * fs).astype(np.int64)[:, None] + offs
    t = idx / fs
    vals = amps[:, None] * np.exp(
        -0.5 * ((t - np.asarray(centers)[:, None]) / widths[:, None]) ** 2
    )
    keep = (idx >= 0) & (idx < n)
    return out + np.bincount(idx[keep], weights=vals[keep], minlength=n)


def _render_beats(n, fs, beats, rng):
    """Render a beat schedule (dict of per-beat arrays) into mV."""
    r = beats["r"]
    wide = beats["wide"]
    rr = np.diff(r, prepend=r[0] - 0.8)
    sig = np.zeros(n)
    # Small per-record morphology jitter so records are not clones.
    scale = {k: rng.uniform(0.8, 1.2) for k in _WAVES_NORMAL}
    for key, (off, amp, width) in _WAVES_NORMAL.items():
        sel = ~wide & (beats["has_p"] if key == "P" else True)
        if key == "P":
            centers = r[sel] - beats["pr"][sel]
        elif key == "T":
            # QT shortens with rate (Bazett-like sqrt scaling).
            centers = r[sel] + off * np.sqrt(np.clip(rr[sel], 0.3, 2.0))
        else:
            centers = r[sel] + off
        amps = np.full(sel.sum(), amp * scale[key]) * rng.uniform(0.95, 1.05, sel.sum())
        sig += _gauss_sum(n, fs, centers, amps, np.full(sel.sum(), width))
    for off, amp, width in _WAVES_ECTOPIC.values():
        k = int(wide.sum())
        sig += _gauss_sum(n, fs, r[wide] + off, np.full(k, amp), np.full(k, width))
    return sig


def _smooth_noise(n, fs, cutoff_hz, rng):
    """Unit-std Gaussian noise band-limited below cutoff_hz (FFT brick wall)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[np.fft.rfftfreq(n, 1.0 / fs) > cutoff_hz] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def _schedule(r, has_p=True, pr=0.16, wide=None):
    """Bundle R times with per-beat flags into a beat schedule."""
    k = len(r)
    return {
        "r": r,
        "has_p": np.broadcast_to(has_p, (k,)).copy(),
        "pr": np.broadcast_to(pr, (k,)).astype(float),
        "wide": np.zeros(k, bool) if wide is None else wide,
    }


def _sinus_times(dur, hr, rng, rsa=None):
    """R times of a sinus rhythm with respiratory sinus arrhythmia."""
    mean_rr = 60.0 / hr
    k = int(dur / mean_rr) + 3
    rsa = rng.uniform(0.02, 0.05) if rsa is None else rsa
    resp_f = rng.uniform(0.2, 0.3)
    phase = 2 * np.pi * resp_f * np.arange(k) * mean_rr + rng.uniform(0, 2 * np.pi)
    rr = mean_rr * (1 + rsa * np.sin(phase) + 0.01 * rng.standard_normal(k))
    return rng.uniform(0.1, mean_rr) + np.concatenate(([0.0], np.cumsum(rr[:-1])))


def _af_times(dur, rng):
    """Irregularly irregular R times: independent RRs with a wide spread."""
    mean_rr = 60.0 / rng.uniform(80, 150)
    cv = rng.uniform(0.15, 0.3)
    k = int(dur / (mean_rr * 0.5)) + 3
    shape = 1.0 / cv**2
    rr = np.clip(rng.gamma(shape, mean_rr / shape, k), 0.28, 2.0)
    return rng.uniform(0.05, 0.5) + np.concatenate(([0.0], np.cumsum(rr[:-1])))


def _f_waves(n, fs, rng):
    """Fibrillatory baseline: 4-9 Hz oscillation with drifting rate and size."""
    f = rng.uniform(4.5, 8.5) + 0.7 * _smooth_noise(n, fs, 0.3, rng)
    phase = 2 * np.pi * np.cumsum(np.clip(f, 4.0, 9.0)) / fs
    env = rng.uniform(0.03, 0.1) * (1 + 0.35 * _smooth_noise(n, fs, 0.5, rng))
    wave = np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi))
    return np.clip(env, 0.01, None) * wave


def _other_schedule(dur, rng):
    """Sinus rhythm with at least one abnormality (rate, AV block, ectopy)."""
    base = rng.choice(["brady", "tachy", "normal"], p=[0.3, 0.3, 0.4])
    hr = {"brady": rng.uniform(38, 54), "tachy": rng.uniform(106, 150),
          "normal": rng.uniform(62, 95)}[base]
    avb = rng.random() < 0.3
    ectopy = rng.choice(["none", "frequent", "bigeminy"], p=[0.2, 0.5, 0.3])
    if base == "normal" and not avb and ectopy == "none":
        ectopy = "frequent"
    r = _sinus_times(dur, hr, rng)
    pr = rng.uniform(0.24, 0.34) if avb else rng.uniform(0.13, 0.19)
    wide = np.zeros(len(r), bool)
    if ectopy == "bigeminy":
        wide[1 + rng.integers(0, 2)::2] = True
    elif ectopy == "frequent":
        wide = rng.random(len(r)) < rng.uniform(0.08, 0.25)
        wide[0] = False
    # Premature beat lands early; the next sinus beat keeps its slot, giving
    # the compensatory pause.
    prev = np.concatenate(([r[0] - 60.0 / hr], r[:-1]))
    coupling = rng.uniform(0.55, 0.7)
    r = np.where(wide, prev + coupling * (r - prev), r)
    return _schedule(r, has_p=~wide, pr=pr, wide=wide)


def _noise_artefacts(n, fs, rng):
    """Motion swings, electrode pops/steps and broadband noise (mV)."""
    sig = rng.uniform(0.8, 3.0) * _smooth_noise(n, fs, rng.uniform(0.5, 2.5), rng)
    for _ in range(rng.integers(2, 8)):
        # Electrode pop: a step that decays back as the electrode settles.
        start = rng.integers(0, n)
        tail = np.arange(n - start) / fs
        sig[start:] += rng.normal(0, 2.0) * np.exp(-tail / rng.uniform(0.2, 3.0))
    sig += rng.uniform(0.1, 0.4) * rng.standard_normal(n)
    sig += rng.uniform(0.1, 0.6) * _smooth_noise(n, fs, 40.0, rng)
    return sig


def _noisy_record(n, fs, rng):
    """Weak or intermittent ECG buried in artefacts, with saturation."""
    dur = n / fs
    ecg = _render_beats(n, fs, _schedule(_sinus_times(dur, rng.uniform(55, 120), rng)), rng)
    # Lead contact comes and goes: the ECG is only visible in some stretches.
    mask = _smooth_noise(n, fs, 0.2, rng) > rng.uniform(-0.5, 1.0)
    sig = rng.uniform(0.1, 0.5) * ecg * mask + _noise_artefacts(n, fs, rng)
    if rng.random() < 0.6:
        # Amplifier saturation: the biggest excursions rail at a fixed level.
        lim = rng.uniform(1.2, 2.5) * sig.std()
        sig = np.clip(sig, -lim, lim)
    for _ in range(rng.integers(0, 3)):
        # Lead-off: flat segments at whatever value the trace froze at.
        start = rng.integers(0, n)
        stop = min(n, start + int(rng.uniform(0.5, 4.0) * fs))
        sig[start:stop] = sig[start]
    return sig


def _clean_rhythm(label, n, fs, rng):
    """Noise-free rhythm of the N, A or O class."""
    dur = n / fs
    if label == "N":
        beats = _schedule(_sinus_times(dur, rng.uniform(60, 100), rng),
                          pr=rng.uniform(0.13, 0.19))
        return _render_beats(n, fs, beats, rng)
    if label == "A":
        beats = _schedule(_af_times(dur, rng), has_p=False)
        return _render_beats(n, fs, beats, rng) + _f_waves(n, fs, rng)
    return _render_beats(n, fs, _other_schedule(dur, rng), rng)


def _acquisition_noise(n, fs, rng):
    """Baseline wander, sensor noise and, sometimes, mains hum or EMG."""
    t = np.arange(n) / fs
    sig = rng.uniform(0.03, 0.15) * _smooth_noise(n, fs, rng.uniform(0.15, 0.5), rng)
    sig += rng.uniform(0.005, 0.02) * rng.standard_normal(n)
    if rng.random() < 0.25:
        mains = rng.choice([50.0, 60.0])
        sig += rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * mains * t + rng.uniform(0, 6.3))
    if rng.random() < 0.25:
        # Muscle noise comes in bursts, so modulate broadband noise slowly.
        burst = np.clip(_smooth_noise(n, fs, 0.3, rng), 0, None)
        sig += rng.uniform(0.02, 0.06) * burst * rng.standard_normal(n)
    return sig


def _duration(rng):
    """Record length in seconds: mostly 30 s, the rest spread over 9-61 s."""
    return 30.0 if rng.random() < 0.7 else float(rng.uniform(9.0, 61.0))


def synth_signal(label: str, rng: np.random.Generator, fs: int = 300,
                 duration_s: float | None = None) -> np.ndarray:
    """One record in mV (float64, 1-D)."""
    if label not in CLASSES:
        raise ValueError(f"unknown label {label!r}; expected one of {CLASSES}")
    dur = _duration(rng) if duration_s is None else float(duration_s)
    n = round(dur * fs)
    if label == "~":
        sig = _noisy_record(n, fs, rng)
    else:
        sig = _clean_rhythm(label, n, fs, rng)
    sig = sig + _acquisition_noise(n, fs, rng)
    # Handheld devices are held at varying pressure and sometimes reversed.
    gain = rng.uniform(0.5, 2.0) * (-1.0 if rng.random() < 0.12 else 1.0)
    return gain * sig


def _label_counts(n_records: int) -> dict[str, int]:
    """Real-set proportions (largest remainder) with a per-class floor."""
    raw = {c: _PROPORTIONS[c] * n_records for c in CLASSES}
    counts = {c: int(np.floor(v)) for c, v in raw.items()}
    for c in sorted(CLASSES, key=lambda c: counts[c] - raw[c])[: n_records - sum(counts.values())]:
        counts[c] += 1
    if n_records >= 8:
        floor = max(2, round(0.02 * n_records))
        for c in CLASSES:
            need = floor - counts[c]
            if need > 0:
                # Take from the largest class so the floor never breaks the total.
                donor = max(CLASSES, key=lambda k: counts[k])
                counts[donor] -= need
                counts[c] += need
    return counts


def _header(name: str, val: np.ndarray, fs: int, rng: np.random.Generator) -> str:
    """CinC 2017 style .hea text for one int16 signal."""
    checksum = int(val.astype(np.int64).sum()) % 65536
    if checksum > 32767:
        checksum -= 65536  # WFDB stores the checksum as a signed 16-bit value.
    hh, mm, ss = rng.integers(0, 24), rng.integers(0, 60), rng.integers(0, 60)
    day, month = rng.integers(1, 29), rng.integers(1, 13)
    return (
        f"{name} 1 {fs} {val.size} {hh:02d}:{mm:02d}:{ss:02d} {day}/{month:02d}/2000\n"
        f"{name}.mat 16+24 1000/mV 16 0 {int(val[0])} {checksum} 0 ECG\n"
    )


def _write_record(out: Path, name: str, mv: np.ndarray, fs: int,
                  rng: np.random.Generator) -> None:
    """Write one .mat (MATLAB v4, int16 microvolts) and its .hea."""
    val = np.clip(np.round(mv * 1000.0), _DIG_MIN, _DIG_MAX).astype(np.int16)
    scipy.io.savemat(out / f"{name}.mat", {"val": val[None, :]}, format="4")
    with open(out / f"{name}.hea", "w", newline="\n") as fh:
        fh.write(_header(name, val, fs, rng))


def write_synthetic_dataset(out_dir: str | os.PathLike, n_records: int,
                            seed: int = 0, fs: int = 300) -> dict[str, int]:
    """Write n_records records + REFERENCE.csv into out_dir; return counts per label."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = _label_counts(n_records)
    seq = np.random.SeedSequence(seed)
    label_ss, *record_ss = seq.spawn(n_records + 1)
    labels = np.array([c for c in CLASSES for _ in range(counts[c])])
    np.random.default_rng(label_ss).shuffle(labels)
    lines = []
    for i, (label, ss) in enumerate(zip(labels, record_ss, strict=False), start=1):
        # One independent stream per record: a signal depends on (seed, index).
        rng = np.random.default_rng(ss)
        name = f"A{i:05d}"
        _write_record(out, name, synth_signal(str(label), rng, fs), fs, rng)
        lines.append(f"{name},{label}\n")
    with open(out / "REFERENCE.csv", "w", newline="\n") as fh:
        fh.writelines(lines)
    return counts
