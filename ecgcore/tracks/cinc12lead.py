"""The PhysioNet/CinC 2020 and 2021 12-lead challenges: the scored SNOMED CT classes of each header's #Dx line.

Multi-label (equivalent codes merged, as the challenge scores them), record
names identify records (their numbers collide across source databases), the
challenge metric with its official weight matrix is the score, normalised
between the always-sinus-rhythm classifier and the perfect one; per-class
thresholds are tuned on the validation fold to maximise it. Splits: iterative
stratification, or one fold per source database (`sources_<tv>_<seed>`).
`predict` writes the challenge's per-record output files, `score` reads them.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ecgcore.config.model import STANDARD_LEADS
from ecgcore.data.multisplit import generate_multilabel_split
from ecgcore.data.quality import PLAUSIBLE_RATES, Report, check_signal, read_checked, record_files
from ecgcore.data.splits import Split, is_sources_split, resolve_split
from ecgcore.errors import DataError
from ecgcore.io import cinc2020, synth12
from ecgcore.metrics import bootstrap, challenge
from ecgcore.records import Records
from ecgcore.tracks.base import MultiLabel

RATES_12 = (257.0, 500.0, 1000.0)  # St Petersburg, most sources, PTB


class _CinC12Lead(MultiLabel):
    year: int
    losses = ("bce", "weighted_bce", "confusion_bce", "challenge")
    split_policies = ("generated", "sources")

    def __init__(self, options: dict, classes: tuple[str, ...] | None = None, root: str | None = None):
        super().__init__(options, classes, root)
        self.classes = challenge.scored_classes(self.year)
        self.reward, self.sinus = self.classes.weights, self.classes.sinus

    @property
    def label(self) -> int:
        return self.year

    @property
    def title(self) -> str:
        return f"CinC {self.year}"

    @property
    def metric_name(self) -> str:
        return f"CinC {self.year} challenge metric"

    score_label = property(lambda self: self.metric_name)

    def label_space(self) -> tuple[str, ...]:
        return self.classes.abbreviations

    @property
    def class_codes(self) -> tuple[str, ...]:
        return self.classes.names

    no_naive_note = "There is no naive row: the always-sinus classifier scores 0 by the challenge metric's definition."

    def card_limits(self, split: str) -> list[str]:
        return [*super().card_limits(split),
                "- Leave-source-out collapse: 12-lead models lose much of their score on a source database "
                "they never saw (CinC 2020's hidden sets: BUT 0.696 -> 0.202, DSAIL 0.688 -> 0.420; this "
                "project's leave-source-out runs in docs/benchmarks.md: unseen PTB-XL below always-sinus)"
                + ("." if is_sources_split(split) else
                   "; this job's split is not leave-source-out, so its scores do not show it.")]

    @property
    def check_title(self) -> str:
        return f"CinC 2020/2021 12-lead records (labels: #Dx codes, {self.year} scored classes)"

    def check(self, root: Path, report: Report) -> None:
        _check_12lead(root, self.year, report)

    @classmethod
    def detects(cls, root: Path) -> bool:
        """A tree of .hea files is 12-lead data (checked with 2021's larger class set)."""
        return next(root.rglob("*.hea"), None) is not None

    def read(self, root: str, warn: bool = True) -> Records:
        """With warn, the reader's quirk warnings (once per dataset: the driver warns, trials need not)."""
        ds = cinc2020.load_dataset(root, warn=warn)
        targets = self.classes.encode([h.dx for h in ds.headers])
        return Records(str(os.path.abspath(root)), tuple(ds.names), targets, tuple(ds.signals),
                       tuple(h.fs for h in ds.headers), tuple(h.leads for h in ds.headers), tuple(ds.sources))

    def read_unlabelled(self, root: str) -> Records:
        return self.read(root)

    def split_from_labels(self, root: Path, name: str) -> Split:
        """A new split from the headers' #Dx codes alone (no signal is read)."""
        heas = sorted(Path(root).rglob("*.hea"), key=lambda p: p.stem)
        if not heas:
            raise DataError(f"{root}: no .hea files (expected CinC 2020/2021 records)")
        headers = [cinc2020.parse_header(h.read_text(errors="replace"), h) for h in heas]
        names = [h.record for h in headers]
        targets = self.classes.encode([h.dx for h in headers])
        return generate_multilabel_split(names, targets, [cinc2020.source_of(n) for n in names], name)

    def write_synthetic(self, out: str, records: int, seed: int) -> dict[str, int]:
        return synth12.write_synthetic_12lead(out, records, seed=seed)

    def resolve(self, records: Records, split_name: str, persist: bool) -> tuple[list, Split]:
        ids = list(records.names)

        def generate() -> Split:
            return generate_multilabel_split(ids, records.targets, records.sources, split_name)

        return ids, resolve_split(records.root, split_name, ids, None, persist=persist, generate=generate)

    def report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None) -> dict:
        thresholds = np.full(targets.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
        binary = probs >= thresholds
        out = challenge.challenge_metrics(targets, binary, probs, self.classes)
        f1 = [_json_float(v) for v in challenge.class_f1(targets, binary)]
        return {"score": out["challenge_metric"], **{k: _json_float(v) for k, v in out.items()},
                "f1": dict(zip(self.class_names, f1, strict=True)),
                "positives": self.counts(targets), "n": int(targets.shape[0])}

    def tune(self, targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return challenge.tune_thresholds(targets, probs, self.classes)

    def pooled_metrics(self, pooled, weights: np.ndarray) -> dict[str, np.ndarray]:
        # A fold log names the classes by their abbreviations (AF, ...); either naming, in the scored order.
        if tuple(pooled.classes) not in (self.classes.names, self.classes.abbreviations):
            raise ValueError(f"the pool's classes are not the {self.year} scored classes in order: "
                             f"got {', '.join(pooled.classes)}, expected {', '.join(self.classes.abbreviations)}")
        return bootstrap.multilabel_metrics(pooled, weights, self._challenge_score)

    def _challenge_score(self, labels: np.ndarray, outputs: np.ndarray, probs, w: np.ndarray) -> np.ndarray:
        return bootstrap.challenge_score(labels, outputs, self.classes, w)

    def score_answers(self, labels_dir: Path, outputs: Path) -> dict:
        """The challenge's metrics of its per-record output files against the headers' #Dx codes; a missing or
        malformed file counts as all-negative, with a warning naming it, as in the challenge's evaluation."""
        from ecgcore.io.answers import read_output_file

        heas = sorted(Path(labels_dir).rglob("*.hea"), key=lambda p: p.stem)
        if not heas:
            raise DataError(f"{labels_dir}: no .hea files to take labels from")
        headers = [cinc2020.parse_header(h.read_text(errors="replace"), h) for h in heas]
        labels = self.classes.encode([h.dx for h in headers])
        binary, probs = np.zeros_like(labels), np.zeros(labels.shape)
        for i, record in enumerate(h.record for h in headers):
            path = Path(outputs) / f"{record}.csv"
            try:
                binary[i], probs[i] = read_output_file(path, record, self.classes)
            except (OSError, ValueError) as exc:
                reason = "missing" if not path.exists() else f"malformed ({exc})"
                print(f"warning: {path}: {reason}; counted as all-negative", file=sys.stderr)
        result = challenge.challenge_metrics(labels, binary, probs, self.classes)
        return {**result, "year": self.year, "records": len(headers)}

    def write_answers(self, output: Path, names, probs: np.ndarray, thresholds) -> str:
        """One challenge output file per record, `<output>/<record>.csv`, each written whole."""
        from ecgcore.io.answers import write_output_file

        if output.exists() and not output.is_dir():
            raise DataError(f"{output}: exists and is not a folder (12-lead predictions are one file per record)")
        output.mkdir(parents=True, exist_ok=True)
        codes = list(self.classes.names)
        for name, p in zip(names, probs, strict=True):
            tmp = output / f".{name}.csv.tmp"
            write_output_file(tmp, name, codes, p >= thresholds, p)
            os.replace(tmp, output / f"{name}.csv")
        return f"{output}/<record>.csv"


# ---- data check: what the 12-lead reader accepts but a trainer should hear about

def _check_12lead(root: Path, year: int, report: Report) -> None:
    classes = challenge.scored_classes(year)
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


class CinC2020(_CinC12Lead):
    name = "cinc2020"
    year = 2020


class CinC2021(_CinC12Lead):
    name = "cinc2021"
    year = 2021


def _json_float(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
