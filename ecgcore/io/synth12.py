"""A small synthetic 12-lead dataset in the CinC 2020/2021 format, for tests and offline demos.

Each record is a rhythm from ecgcore.io.synth (sinus, AF, other, noisy),
projected onto the 12 standard leads with per-lead gains (limb leads obey
Einthoven: III = II - I, aVR = -(I+II)/2, ...), written as the challenge
writes it: `<name>.mat` (MATLAB v4, `val` int16 in microvolts, leads x
samples) and `<name>.hea` with `#Age:`, `#Sex:` and `#Dx:` SNOMED CT codes.
Rhythm labels map to scored codes (sinus rhythm 426783006, atrial
fibrillation 164889003, premature atrial contraction 284470004); some
records also carry left axis deviation (39732003), an unscored code
(55827005, left ventricular hypertrophy) or none at all. Names cycle
through source prefixes (A, E, HR, JS) so leave-source-out splits work. A
few headers carry the real files' quirks (`# Dx:` with a space, lower-case
`mv` units, an empty Dx entry) so the reader's tolerance is exercised.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io

from ecgcore.config.model import STANDARD_LEADS
from ecgcore.io.synth import synth_signal

RHYTHM_CODES = {"N": "426783006", "A": "164889003", "O": "284470004", "~": ""}
PREFIXES = ("A", "E", "HR", "JS")
_LEAD_GAINS = {"I": 0.6, "II": 1.0, "V1": -0.5, "V2": 0.4, "V3": 0.8, "V4": 1.2, "V5": 1.0, "V6": 0.8}


def twelve_leads(mv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(12, samples) from one rhythm: limb leads consistent with Einthoven, chest leads scaled, lead noise."""
    noise = lambda: 0.02 * rng.standard_normal(mv.size)  # noqa: E731
    lead_i, lead_ii = _LEAD_GAINS["I"] * mv + noise(), _LEAD_GAINS["II"] * mv + noise()
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2,
            lead_ii - lead_i / 2]
    chest = [_LEAD_GAINS[f"V{k}"] * mv + noise() for k in range(1, 7)]
    return np.vstack(limb + chest)


def _header(name: str, val: np.ndarray, fs: int, dx: list[str], quirk: int, rng: np.random.Generator) -> str:
    units = "mv" if quirk == 1 else "mV"
    lines = [f"{name} 12 {fs} {val.shape[1]}"]
    for lead, row in zip(STANDARD_LEADS, val, strict=True):
        checksum = int(row.astype(np.int64).sum()) % 65536
        lines.append(f"{name}.mat 16+24 1000/{units} 16 0 {int(row[0])} {checksum} 0 {lead}")
    dx_key = "# Dx" if quirk == 2 else "#Dx"
    dx_text = ",".join(dx) + ("," if quirk == 3 and dx else "")
    lines += [f"#Age: {int(rng.integers(20, 90))}", f"#Sex: {'Male' if rng.random() < 0.5 else 'Female'}",
              f"{dx_key}: {dx_text}", "#Rx: Unknown", "#Hx: Unknown", "#Sx: Unknown"]
    return "\n".join(lines) + "\n"


def write_synthetic_12lead(out_dir: str | os.PathLike, n_records: int, seed: int = 0, fs: int = 500,
                           duration_s: float = 10.0) -> dict[str, int]:
    """Write n_records records into out_dir; return how many records carry each code."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seq = np.random.SeedSequence(seed)
    rhythms = np.array(["N", "A", "O", "~"])[np.arange(n_records) % 4]
    np.random.default_rng(seq.spawn(1)[0]).shuffle(rhythms)
    counts: dict[str, int] = {}
    for i, (rhythm, ss) in enumerate(zip(rhythms, seq.spawn(n_records), strict=True)):
        rng = np.random.default_rng(ss)
        name = f"{PREFIXES[i % len(PREFIXES)]}{i + 1:05d}"
        mv = twelve_leads(synth_signal(str(rhythm), rng, fs, duration_s), rng)
        val = np.clip(np.round(mv * 1000.0), -32768, 32767).astype(np.int16)
        dx = [RHYTHM_CODES[str(rhythm)]] if RHYTHM_CODES[str(rhythm)] else []
        if rng.random() < 0.3:
            dx.append("39732003")
        if rng.random() < 0.2:
            dx.append("55827005")
        for code in dx:
            counts[code] = counts.get(code, 0) + 1
        scipy.io.savemat(out / f"{name}.mat", {"val": val}, format="4")
        (out / f"{name}.hea").write_text(_header(name, val, fs, dx, i % 7, rng))
    return counts
