"""`data check DIR`: is a dataset folder usable for training? Every problem, named by its file.

The dataset's track (given, or detected from the folder: ecgcore.tracks)
checks its folder with the readers training uses, so a record that passes here
is one training can read: it matches labels and records, looks at the layout,
headers and sampling rates, and every record's signal (ecgcore.data.quality:
non-finite, flat, clipped, flat stretches). With --split the split is settled
too and a patient with records in two of a fold's parts is reported (an
error for a split made here, a note for the dataset's own folds).

Errors make the folder unusable as it is or make a record meaningless: exit
code 1. Notes are what real data contains and training copes with: reported,
exit code 0. A path that is not a folder is a ProjectError (exit 2 at the CLI);
a folder that holds no dataset is reported like any other problem (exit 1).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ecgcore.data.quality import Finding, Report
from ecgcore.errors import DataError, ProjectError
from ecgcore.tracks import detect_track, open_track

MAX_LISTED = 20  # lines per kind of finding; the rest is counted


def check_command(dataset: str, track: str | None = None, options: dict | None = None, split: str | None = None,
                  out=print) -> int:
    """Check a dataset folder and print what is wrong; 0 when usable, 1 when not."""
    root = Path(dataset)
    if not root.is_dir():
        raise ProjectError(f"{dataset}: no such folder (expected a dataset folder to check)")
    report = check_dataset(root, track, options, split)
    for line in format_report(report):
        out(line)
    return 1 if report.errors else 0


def check_dataset(root: Path, track: str | None = None, options: dict | None = None,
                  split: str | None = None) -> Report:
    report = Report(root)
    name = track or detect_track(root)
    if name is None:
        report.what = "an unknown kind of folder"
        report.error("not a dataset", f"{root}: no REFERENCE.csv (CinC 2017), no ptbxl_database.csv (PTB-XL) and "
                                      "no .hea files (CinC 2020/2021) below it; a folder of your own records needs "
                                      "--track wfdb --option labels=LABELS.csv")
        return report
    opened = open_track(name, options, root=str(root))
    report.what = opened.check_title
    opened.check(root, report)
    if split and not report.errors:
        check_split(opened, root, split, report)
    return report


def check_split(track, root: Path, split: str, report: Report) -> None:
    """The split settled as submit settles it (nothing written); a patient in two parts of a fold reported."""
    try:
        _, settled = track.split(track.read(str(root), warn=False), split)
    except DataError as exc:
        report.error("split", str(exc))
        return
    if "leakage" in settled.properties:
        report.note("patient in two parts", settled.properties["leakage"])
    report.extra.append(f"split {split}: {len(settled.folds)} fold(s), no patient in two parts of a fold"
                        if "leakage" not in settled.properties else f"split {split}: {len(settled.folds)} fold(s)")


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
