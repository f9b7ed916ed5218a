"""Checking a dataset folder: the report of what is wrong, and the checks every track shares.

`data check` (orchestrator.datatools.check) asks the dataset's track to check
its folder (ecgcore.tracks: labels, layout, headers) into a Report; the checks
here are those of any record: whether a reader reads it (a DataError becomes a
finding, grouped by kind) and how its signal looks (non-finite, flat,
clipped, long flat stretches). Findings are errors (the record or the folder
is unusable) or notes (what real data contains and training copes with).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcore.errors import DataError

CLIP_FRACTION = 0.01  # of a lead's samples at its own max or min: the real 2017 set peaks at 0.24 %
CLIP_MIN_SAMPLES = 10  # so a handful of samples at the extreme of a short record is not "clipping"
FLAT_SECONDS = 1.0  # identical consecutive samples; the real 2017 set's longest stretch is 0.3 s
PLAUSIBLE_RATES = (50.0, 5000.0)  # Hz: outside this, the header's rate field is wrong, not unusual

# The readers raise one DataError type; its message tells what kind of problem it is (for grouping only).
_READER_KINDS = (("not finite", "non-finite samples"), ("zero-length", "zero-length record"),
                 ("has shape", "header and samples disagree"), ("samples but header", "header and samples disagree"),
                 ("the header says", "header and samples disagree"),
                 ("signals in header", "header and samples disagree"),
                 ("announces", "header and samples disagree"), ("'val'", "unreadable .mat"),
                 ("MATLAB", "unreadable .mat"))


@dataclass(frozen=True)
class Finding:
    error: bool
    kind: str
    text: str  # names the file (and the line or lead) it is about


@dataclass
class Report:
    root: Path
    what: str = ""
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0  # records found (a header or a samples file)
    durations: list[float] = field(default_factory=list)  # seconds, one per readable record
    rates: Counter = field(default_factory=Counter)
    classes: dict[str, int] = field(default_factory=dict)
    sources: Counter = field(default_factory=Counter)
    extra: list[str] = field(default_factory=list)  # further summary lines

    def error(self, kind: str, text: str) -> None:
        self.findings.append(Finding(True, kind, text))

    def note(self, kind: str, text: str) -> None:
        self.findings.append(Finding(False, kind, text))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if not f.error]


def record_files(root: Path, report: Report) -> dict[str, list[Path | None]]:
    """Record name -> [header, samples] below root; a name found twice is an error (the first is kept)."""
    found: dict[str, list[Path | None]] = {}
    for suffix, slot in ((".hea", 0), (".mat", 1)):
        for path in sorted(root.rglob(f"*{suffix}")):
            entry = found.setdefault(path.stem, [None, None])
            if entry[slot] is not None:
                report.error("duplicate record name", f"{path}: record {path.stem} is also at {entry[slot]}")
                continue
            entry[slot] = path
    report.checked = len(found)
    return found


def read_checked(reader, hea: Path, mat: Path, report: Report):
    """reader(hea, mat), or None with the problem reported; never raises for a bad file."""
    try:
        return reader(hea, mat)
    except DataError as exc:
        text = str(exc)
        kind = next((k for key, k in _READER_KINDS if key in text), None)
        report.error(kind or ("unreadable header" if text.startswith(str(hea)) else "unreadable record"), text)
    except Exception as exc:  # a reader that lets a library error through: still this record's problem
        report.error("unreadable record", f"{mat}: {type(exc).__name__}: {exc}")
    return None


def check_signal(signal: np.ndarray, fs: float, where: Path, leads: tuple[str, ...], report: Report) -> None:
    """Quality of one readable record, signal (leads, samples) in mV; also records its duration."""
    report.rates[float(fs)] += 1
    if signal.shape[1] == 0:
        report.error("zero-length record", f"{where}: no samples")
        return
    report.durations.append(signal.shape[1] / fs)
    finite = np.isfinite(signal)
    if not finite.all():
        report.error("non-finite samples", f"{where}: {int((~finite).sum())} of {signal.size} samples are NaN "
                                           "or infinite")
        return
    flat = signal.max(axis=1) == signal.min(axis=1)
    if flat.all():
        report.error("flat record", f"{where}: every sample of every lead is constant "
                                    f"({', '.join(f'{v:g}' for v in sorted(set(signal[:, 0].tolist())))} mV)")
        return
    if flat.any():
        names = " ".join(leads[i] if i < len(leads) else str(i) for i in np.flatnonzero(flat))
        report.note("flat lead", f"{where}: lead(s) {names} constant throughout")
    for i in np.flatnonzero(~flat):
        lead = f" lead {leads[i]}" if len(leads) > 1 and i < len(leads) else ""
        check_lead(signal[i], fs, f"{where}{lead}", report)


def check_lead(x: np.ndarray, fs: float, where: str, report: Report) -> None:
    """Clipping (many samples at the lead's own extreme) and long stretches of identical samples."""
    n = x.size
    top, bottom = int(np.count_nonzero(x == x.max())), int(np.count_nonzero(x == x.min()))
    at_rail, side, value = max((top, "max", x.max()), (bottom, "min", x.min()), key=lambda t: t[0])
    if at_rail >= max(CLIP_MIN_SAMPLES, CLIP_FRACTION * n):
        report.note("clipping", f"{where}: {at_rail} samples ({100 * at_rail / n:.1f}%) at its {side} "
                                f"{float(value):g} mV")
    bounds = np.concatenate(([0], np.flatnonzero(x[1:] != x[:-1]) + 1, [n]))
    runs = np.diff(bounds)
    longest = int(runs.argmax())
    if runs[longest] >= FLAT_SECONDS * fs:
        report.note("long flat segment", f"{where}: {runs[longest] / fs:.1f} s of identical samples "
                                         f"({float(x[bounds[longest]]):g} mV) from {bounds[longest] / fs:.1f} s")


def check_wfdb_records(headers, report: Report, rate: float | None = None) -> None:
    """Each WFDB record (its .hea path) read as the WFDB readers read it and its signal checked; with rate, a
    record at another sampling rate is an error."""
    from ecgcore.io.wfdb_folder import read_record

    for hea in headers:
        result = read_checked(lambda h, _: read_record(h), hea, hea, report)
        if result is None:
            continue
        signal, fs, leads = result
        if rate is not None and fs != rate:
            report.error("sampling rate", f"{hea}: {fs:g} Hz, the dataset's records are {rate:g} Hz")
        check_signal(signal, fs, hea, leads, report)


def note_patients_in_two_folds(where, names, patients, folds, report: Report) -> None:
    """A note per patient whose records sit in two of the dataset's own folds (where: the file that says so)."""
    from ecgcore.io.wfdb_folder import patient_leakage

    for patient, in_folds in patient_leakage(names, patients, folds):
        report.note("patient in two folds", f"{where}: patient {patient} in folds {', '.join(map(str, in_folds))}")

