"""Reader for the PhysioNet/CinC 2020/2021 12-lead challenge records.

A record is `<name>.hea` (WFDB header) + `<name>.mat` (MATLAB v4, `val`
int16, leads x samples), anywhere below the dataset folder. Labels are the
SNOMED CT codes of the header's `#Dx:` line; age and sex come from `#Age:`
and `#Sex:`. Rate, length, gains, baselines and lead names come from the
header. Headers are parsed as text, as the challenge's own helper code does,
because real files break strict WFDB parsers: `# Dx:` with a space, empty
entries in the Dx list, PTB-XL's lower-case `1000/mv`, Georgia headers whose
first line names `E00271.mat` instead of the record. Those are read and
counted as quirks (reported once per dataset); anything that cannot be read
or disagrees with the samples raises a DataError naming the file.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from ecgcore.errors import DataError

# Record-name prefix -> source database of the 2020/2021 training sets.
SOURCES = {"A": "CPSC", "Q": "CPSC-Extra", "I": "StPetersburg", "S": "PTB", "HR": "PTB-XL", "E": "Georgia",
           "JS": "Chapman-Shaoxing/Ningbo"}
_GAIN = re.compile(r"^([-+\d.eE]+)(?:\(([-+\d]+)\))?(?:/(\S+))?$")
_PREFIX = re.compile(r"^([A-Za-z]+)\d+$")


@dataclass(frozen=True)
class Header:
    record: str
    fs: float
    n_samples: int
    leads: tuple[str, ...]
    gains: tuple[float, ...]
    baselines: tuple[int, ...]
    initial: tuple[int, ...]  # the first sample of each lead, as the header states it
    dx: tuple[str, ...]
    age: float | None
    sex: str | None
    quirks: tuple[str, ...] = ()


def source_of(record: str) -> str:
    match = _PREFIX.match(record)
    return SOURCES.get(match.group(1).upper(), "unknown") if match else "unknown"


def parse_header(text: str, path: Path) -> Header:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: empty header")
    quirks = []
    first = lines[0].split()
    if len(first) < 4:
        raise DataError(f"{path}: first line needs record name, leads, rate and length: {lines[0]!r}")
    record = first[0]
    if record.endswith(".mat"):
        quirks.append("first header line names the .mat file, not the record")
        record = record[:-4]
    try:
        n_leads, fs, n_samples = int(first[1]), float(first[2].split("/")[0]), int(first[3])
    except ValueError:
        raise DataError(f"{path}: unreadable leads, rate or length in {lines[0]!r}") from None
    signal_lines = [ln for ln in lines[1:] if not ln.startswith("#")]
    if len(signal_lines) != n_leads:
        raise DataError(f"{path}: the first line announces {n_leads} leads, {len(signal_lines)} signal lines follow")
    gains, baselines, initial, leads = [], [], [], []
    for ln in signal_lines:
        gain, baseline, first_value, lead = _signal_line(ln, path, quirks)
        gains.append(gain)
        baselines.append(baseline)
        initial.append(first_value)
        leads.append(lead)
    comments = _comments(lines, quirks, path)
    return Header(record, fs, n_samples, tuple(leads), tuple(gains), tuple(baselines), tuple(initial),
                  comments.get("dx", ()), _age(comments.get("age")), comments.get("sex"), tuple(quirks))


def _signal_line(line: str, path: Path, quirks: list) -> tuple[float, int, int, str]:
    parts = line.split()
    if len(parts) < 9:
        raise DataError(f"{path}: signal line needs 9 fields: {line!r}")
    match = _GAIN.match(parts[2])
    if not match:
        raise DataError(f"{path}: unreadable gain {parts[2]!r}")
    if match.group(3) and match.group(3) != "mV":
        if match.group(3).lower() != "mv":
            raise DataError(f"{path}: units {match.group(3)!r}, expected mV")
        quirks.append(f"units written {match.group(3)!r}")
    try:
        adc_zero, first_value = int(parts[4]), int(parts[5])
        # WFDB: the baseline defaults to the ADC zero when the gain field gives none.
        baseline = int(match.group(2)) if match.group(2) is not None else adc_zero
        gain = float(match.group(1)) or 200.0  # WFDB's default gain for 0
    except ValueError:
        raise DataError(f"{path}: unreadable gain, ADC zero or initial value in {line!r}") from None
    return gain, baseline, first_value, " ".join(parts[8:])


def _comments(lines: list[str], quirks: list, path: Path) -> dict:
    out = {}
    for ln in lines:
        if not ln.startswith("#") or ":" not in ln:
            continue
        key, value = ln[1:].split(":", 1)
        if key != key.strip():
            quirks.append(f"comment key written {ln.split(':')[0]!r}")
        key, value = key.strip().lower(), value.strip()
        if key == "dx":
            if not value:  # no diagnosis at all: not the same thing as an empty entry in a list
                out["dx"] = ()
                continue
            codes = [c.strip() for c in value.split(",")]
            if any(not c for c in codes):
                quirks.append("empty entry in the Dx list")
            bad = [c for c in codes if c and not c.isdigit()]
            if bad:
                raise DataError(f"{path}: #Dx entry {bad[0]!r} is not a SNOMED CT code (a number; codes are "
                                f"separated by commas): {ln!r}")
            out["dx"] = tuple(c for c in codes if c)
        elif key in ("age", "sex"):
            out[key] = value
    return out


def _age(value: str | None) -> float | None:
    try:
        age = float(value) if value is not None else None
    except ValueError:
        return None  # "NaN", "Unknown": no age
    return None if age is None or np.isnan(age) else age


def read_record(hea: Path, mat: Path) -> tuple[Header, np.ndarray]:
    """The header and the signal in mV, float32 (leads, samples)."""
    header = parse_header(Path(hea).read_text(errors="replace"), hea)
    try:
        val = scipy.io.loadmat(mat)["val"]
    except KeyError:
        raise DataError(f"{mat}: cannot read the 'val' variable (the file has no variable 'val')") from None
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise DataError(f"{mat}: cannot read the 'val' variable ({type(exc).__name__}: {exc})") from None
    if val.shape != (len(header.leads), header.n_samples):
        raise DataError(f"{mat}: samples are {val.shape}, the header says "
                        f"{len(header.leads)} leads x {header.n_samples} samples")
    if header.n_samples == 0:
        raise DataError(f"{mat}: zero-length record (header {Path(hea).name} says 0 samples)")
    gains = np.array(header.gains)[:, None]
    baselines = np.array(header.baselines)[:, None]
    signal = (val.astype(np.float64) - baselines) / gains
    if not np.all(np.isfinite(signal)):
        raise DataError(f"{mat}: samples are not finite (NaN or infinite values)")
    return header, signal.astype(np.float32)


@dataclass
class Dataset12:
    """Records of one 12-lead dataset folder, sorted by name."""

    root: str
    headers: list[Header]
    signals: list[np.ndarray]
    quirks: Counter = field(default_factory=Counter)

    @property
    def names(self) -> list[str]:
        return [h.record for h in self.headers]

    @property
    def sources(self) -> list[str]:
        return [source_of(h.record) for h in self.headers]


def load_dataset(root: str | Path, warn: bool = True) -> Dataset12:
    """Every record below root; with warn, one warning per kind of quirk found (not per record)."""
    root = Path(root)
    heas = sorted(root.rglob("*.hea"), key=lambda p: p.stem)
    if not heas:
        raise DataError(f"{root}: no .hea files (expected CinC 2020/2021 records)")
    seen: dict[str, Path] = {}
    for hea in heas:
        if hea.stem in seen:
            raise DataError(f"{hea}: record {hea.stem} is also at {seen[hea.stem]} (a source unpacked twice?)")
        seen[hea.stem] = hea
    headers, signals, quirks = [], [], Counter()
    for hea in heas:
        mat = hea.with_suffix(".mat")
        if not mat.exists():
            raise DataError(f"{hea}: no {mat.name} beside it")
        header, signal = read_record(hea, mat)
        headers.append(header)
        signals.append(signal)
        quirks.update(set(header.quirks))
    for quirk, count in sorted(quirks.items()) if warn else ():
        warnings.warn(f"{root}: {count} record(s): {quirk} (read anyway)", stacklevel=2)
    return Dataset12(str(root), headers, signals, quirks)
