"""`data check DIR`: is a dataset folder usable for training? Every problem, named by its file.

The records are read with the readers training uses (ecgcore.io.cinc2017 for
CinC 2017, ecgcore.io.cinc2020 for the 12-lead 2020/2021 records), so a record
that passes here is one training can read. On top of what the readers
enforce, the check matches labels and records, looks at the sampling rate,
and looks at the signals (non-finite, flat, clipped, flat stretches).

Findings are errors or notes. Errors make the folder unusable as it is or
make a record meaningless (unreadable, header and samples disagree, a
labelled record without files or a record without a label, non-finite or
zero-length or entirely flat samples, a 2017 rate other than 300 Hz): exit
code 1. Notes are what real challenge data contains and training copes with
(clipping, flat stretches, one flat lead of twelve, 12-lead records with no
#Dx or no scored class, header quirks): reported, exit code 0. A path that
is not a folder is a ProjectError (exit 2 at the CLI); a folder that holds
no dataset is reported like any other problem (exit 1).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcore.challenges import CHALLENGES, MULTILABEL_YEARS
from ecgcore.config.model import STANDARD_LEADS
from ecgcore.errors import DataError, ProjectError
from ecgcore.io import cinc2017, cinc2020
from ecgcore.metrics.challenge import scored_classes

MAX_LISTED = 20  # lines per kind of finding; the rest is counted
CLIP_FRACTION = 0.01  # of a lead's samples at its own max or min: the real 2017 set peaks at 0.24 %
CLIP_MIN_SAMPLES = 10  # so a handful of samples at the extreme of a short record is not "clipping"
FLAT_SECONDS = 1.0  # identical consecutive samples; the real 2017 set's longest stretch is 0.3 s
RATES_12 = (257.0, 500.0, 1000.0)  # St Petersburg, most sources, PTB
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


def check_command(dataset: str, challenge: int | None = None, out=print) -> int:
    """Check a dataset folder and print what is wrong; 0 when usable, 1 when not."""
    root = Path(dataset)
    if not root.is_dir():
        raise ProjectError(f"{dataset}: no such folder (expected a dataset folder to check)")
    if challenge is not None and challenge not in CHALLENGES:
        known = f"{', '.join(map(str, CHALLENGES[:-1]))} or {CHALLENGES[-1]}"
        raise ProjectError(f"challenge {challenge}: expected {known}")
    report = check_dataset(root, challenge)
    for line in format_report(report):
        out(line)
    return 1 if report.errors else 0


def check_dataset(root: Path, challenge: int | None = None) -> Report:
    year = challenge or detect_challenge(root)
    report = Report(root)
    if year is None:
        report.what = "an unknown kind of folder"
        report.error("not a dataset", f"{root}: no {cinc2017.REFERENCE_FILE} (CinC 2017) and no .hea files "
                                      "(CinC 2020/2021) below it")
    elif year not in MULTILABEL_YEARS:
        report.what = "CinC 2017 (single lead, labels in REFERENCE.csv)"
        check_2017(root, report)
    else:
        report.what = f"CinC 2020/2021 12-lead records (labels: #Dx codes, {year} scored classes)"
        check_12lead(root, year, report)
    return report


def detect_challenge(root: Path) -> int | None:
    """2017 when REFERENCE.csv is there, 2021 (the larger class set) for a tree of .hea files, else None."""
    if (root / cinc2017.REFERENCE_FILE).is_file():
        return 2017
    return 2021 if next(root.rglob("*.hea"), None) is not None else None


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


# ---------------------------------------------------------------- CinC 2017


def check_2017(root: Path, report: Report) -> None:
    labels = labels_2017(root, report)
    files = record_files(root, report)
    if labels is not None:
        match_labels(root, labels, files, report)
    counts = Counter()
    for name, (hea, mat) in sorted(files.items()):
        if hea is None or mat is None:
            report.error("missing file", f"{hea or mat}: record {name} has no {'.hea' if hea is None else '.mat'} file")
            continue
        result = read_checked(cinc2017.read_record, hea, mat, report)
        if result is None:
            continue
        signal, fs = result
        if fs != cinc2017.FS:
            report.error("sampling rate", f"{hea}: {fs} Hz, CinC 2017 records are {cinc2017.FS} Hz")
        check_signal(signal[None, :], fs if fs > 0 else cinc2017.FS, mat, ("ECG",), report)
        if labels is not None and name in labels:
            counts[labels[name]] += 1
    if labels is not None:  # without a usable label file there is nothing to count
        report.classes = {c: counts[c] for c in cinc2017.CLASSES}


def labels_2017(root: Path, report: Report) -> dict[str, str] | None:
    """REFERENCE.csv's labels, or None with its problems reported (then labels are not matched)."""
    try:
        return cinc2017.read_reference(root)
    except DataError as exc:
        # The reader lists every bad line under a first line that names the file; one finding per line.
        lines = str(exc).splitlines()
        for line in lines[1:] or lines:
            report.error("label file", line.strip())
        return None


def match_labels(root: Path, labels: dict[str, str], files: dict, report: Report) -> None:
    reference = root / cinc2017.REFERENCE_FILE
    for name in labels:
        if name not in files:
            report.error("labelled record without files", f"{reference}: record {name} has no .hea/.mat files")
    for name, (hea, mat) in sorted(files.items()):
        if name not in labels:
            report.error("record without a label", f"{hea or mat}: record {name} is not in {reference.name}")


# ---------------------------------------------------------------- CinC 2020/2021


def check_12lead(root: Path, year: int, report: Report) -> None:
    classes = scored_classes(year)
    files = record_files(root, report)
    if not files:
        report.error("not a dataset", f"{root}: no .hea files (expected CinC 2020/2021 records)")
    counts, outside, quirks, with_dx = np.zeros(len(classes.codes), dtype=int), Counter(), Counter(), 0
    for name, (hea, mat) in sorted(files.items()):
        if hea is None:
            report.note(".mat without .hea", f"{mat}: no header beside it (the reader ignores it)")
            continue
        if not hea.with_suffix(".mat").is_file():
            report.error("missing file", f"{hea}: no {name}.mat beside it")
            continue
        result = read_checked(cinc2020.read_record, hea, hea.with_suffix(".mat"), report)
        if result is None:
            continue
        header, signal = result
        check_header_12(header, signal, hea, report)
        check_signal(signal, header.fs if header.fs > 0 else 500.0, hea.with_suffix(".mat"), header.leads, report)
        report.sources[cinc2020.source_of(name)] += 1
        quirks.update(set(header.quirks))
        with_dx += bool(header.dx)
        scored = classes.encode([header.dx])[0]
        counts += scored
        outside.update(c for c in header.dx if classes.index_of(c) is None)
        check_dx_12(header, scored, hea, report)
    if report.durations and not with_dx:
        report.error("no labels", f"{root}: no record has #Dx codes (a CinC 2017 folder without REFERENCE.csv?)")
    report.classes = {n: int(k) for n, k in zip(classes.abbreviations, counts, strict=True) if k}
    report.extra += summary_12(year, quirks, outside)


def check_header_12(header: cinc2020.Header, signal: np.ndarray, hea: Path, report: Report) -> None:
    """What the 12-lead reader accepts but a trainer should hear about: rate, leads, name, first values."""
    low, high = PLAUSIBLE_RATES
    if not low <= header.fs <= high:
        report.error("sampling rate", f"{hea}: {header.fs:g} Hz is not a plausible ECG sampling rate")
    elif header.fs not in RATES_12:
        report.note("unusual sampling rate", f"{hea}: {header.fs:g} Hz (the challenge's are 257, 500, 1000)")
    if header.leads != STANDARD_LEADS:
        report.note("non-standard leads", f"{hea}: leads {' '.join(header.leads)}")
    if header.record != hea.stem:
        report.note("header names another record", f"{hea}: the first line names {header.record}")
    if signal.shape[1]:
        # Raw ADC values back from mV; the header states each lead's first one, so a mismatch means the
        # header was written for other samples (WFDB's own consistency field).
        raw = np.round(signal[:, 0].astype(np.float64) * np.array(header.gains) + np.array(header.baselines))
        if np.all(np.isfinite(raw)) and tuple(int(v) for v in raw) != header.initial:
            report.note("first samples differ from the header", f"{hea}: header says {header.initial}, "
                                                                 f"the .mat starts {tuple(int(v) for v in raw)}")


def check_dx_12(header: cinc2020.Header, scored: np.ndarray, hea: Path, report: Report) -> None:
    # Notes, not errors: the real 2020/2021 data has records without a diagnosis or with unscored ones only.
    if not header.dx:
        report.note("no #Dx codes", f"{hea}: no #Dx line or an empty one")
    elif not scored.any():
        report.note("no scored class", f"{hea}: #Dx {','.join(header.dx)} has none of the scored classes")


def summary_12(year: int, quirks: Counter, outside: Counter) -> list[str]:
    lines = []
    if quirks:
        lines.append("header quirks (read anyway): " + ", ".join(f"{q} x{n}" for q, n in sorted(quirks.items())))
    if outside:
        top = ", ".join(f"{c} x{n}" for c, n in outside.most_common(8))
        more = ", ..." if len(outside) > 8 else ""
        lines.append(f"codes outside the {year} scored classes: {len(outside)} distinct, "
                     f"{sum(outside.values())} occurrence(s) ({top}{more})")
    return lines


# ---------------------------------------------------------------- signals


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


# ---------------------------------------------------------------- output


def format_report(report: Report) -> list[str]:
    lines = [f"checking {report.root} as {report.what}"]
    for error in (True, False):
        by_kind: dict[str, list[str]] = {}
        for finding in report.findings:
            if finding.error == error:
                by_kind.setdefault(finding.kind, []).append(finding.text)
        label = "error" if error else "note"
        for kind, texts in by_kind.items():
            lines += [f"{label}: {kind}: {text}" for text in texts[:MAX_LISTED]]
            if len(texts) > MAX_LISTED:
                lines.append(f"{label}: {kind}: ... and {len(texts) - MAX_LISTED} more")
    return lines + summary_lines(report)


def summary_lines(report: Report) -> list[str]:
    readable = len(report.durations)
    lines = [f"records: {report.checked} found, {readable} readable with samples"]
    if report.classes:
        lines.append("classes: " + ", ".join(f"{c} {n}" for c, n in report.classes.items()))
    if report.sources:
        lines.append("sources: " + ", ".join(f"{s} {n}" for s, n in sorted(report.sources.items())))
    if readable:
        d = np.array(report.durations)
        lines.append(f"durations: min {d.min():.1f} s, median {np.median(d):.1f} s, max {d.max():.1f} s")
    if report.rates:
        lines.append("sampling rates: " + ", ".join(f"{r:g} Hz x{n}" for r, n in sorted(report.rates.items())))
    lines += report.extra
    lines.append(f"errors: {_by_kind(report.errors)}")
    lines.append(f"notes: {_by_kind(report.notes)}")
    if report.errors:
        lines.append(f"FAILED: {len(report.errors)} problem(s)")
    else:
        lines.append(f"OK: {readable} records usable ({len(report.notes)} note(s))")
    return lines


def _by_kind(findings: list[Finding]) -> str:
    if not findings:
        return "0"
    counts = Counter(f.kind for f in findings)
    return f"{len(findings)} (" + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"
