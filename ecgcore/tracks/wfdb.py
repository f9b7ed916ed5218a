"""A folder of your own WFDB records with a labels CSV (`track: "wfdb"`).

Any `.hea` records with `.dat` or `.mat` signals, nested folders, any rate and
lead set (ecgcore.io.wfdb_folder reads them); the CSV named by the job's
`labels` option gives each record's label(s) and, optionally, its patient
and fold. One label per record makes the task single-label (softmax; the
score is the mean F1 over `scored_classes`, as CinC 2017's is over N, A, O),
several make it multi-label (sigmoid; the score is the macro AUROC over the
scored classes, F1 at per-class thresholds tuned on the validation fold).
Splits: the reference's stratified k-fold, generated from the labels (a
patient's records kept together when the CSV names patients) and never
written beside the records, or the CSV's own fold column (`dataset_folds`,
`dataset_recommended`). Records on disk without a label row are skipped and
counted.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgcore.config.model import STANDARD_LEADS, spec
from ecgcore.config.schema import documented
from ecgcore.data.multisplit import generate_multilabel_split
from ecgcore.data.quality import Report, check_wfdb_records, note_patients_in_two_folds
from ecgcore.data.splits import Split, is_own_split, own_folds_split
from ecgcore.errors import DataError
from ecgcore.io import wfdb_folder
from ecgcore.records import Records
from ecgcore.tracks.base import MultiLabel, SingleLabel, Track, grouped


@documented("job-file.md", "track_options", "wfdb")
@dataclass(frozen=True)
class WfdbOptions:
    labels: str = spec(None, "the labels CSV: a record column, a label column (several rows per record or "
                             "';'-separated labels make the task multi-label), optional patient and fold columns",
                       required=True, path=True)
    record_column: str = spec("record", "the CSV's column of record names (relative paths without extension, "
                                        "or base names)")
    label_column: str = spec("label", "the CSV's column of labels")
    classes: tuple[str, ...] | None = spec(None, "the classes in output order (default: the CSV's, sorted)")
    scored_classes: tuple[str, ...] | None = spec(None, "the classes the score averages (default: all)")
    multilabel: bool | None = spec(None, "several labels per record (default: as the CSV has them)")


@functools.lru_cache(maxsize=8)
def _table(path: str, record_column: str, label_column: str, mtime: float) -> wfdb_folder.LabelTable:
    return wfdb_folder.read_labels(path, record_column, label_column)


class WfdbFolder(Track):
    """Registered as "wfdb"; built as the single- or multi-label kind its labels CSV (or options) say."""

    name = "wfdb"
    Options = WfdbOptions
    label = "wfdb"
    split_policies = ("generated", "dataset")

    def __new__(cls, options: dict, classes=None, root=None):
        if cls is WfdbFolder:
            multilabel = options.get("multilabel")
            if multilabel is None:
                multilabel = _read_table(options.get("labels"), options.get("record_column", "record"),
                                         options.get("label_column", "label")).multilabel
            cls = _WfdbMulti if multilabel else _WfdbSingle
        return super().__new__(cls)

    def __init__(self, options: dict, classes=None, root=None):
        super().__init__(options, classes, root)
        if self.options.multilabel is None:  # recorded with the fold, so its logs read back without the CSV
            self.options = replace(self.options, multilabel=self.multilabel)

    @property
    def title(self) -> str:
        return f"WFDB folder, labels {Path(self.options.labels).name}"

    @property
    def table(self) -> wfdb_folder.LabelTable:
        return _read_table(self.options.labels, self.options.record_column, self.options.label_column)

    def label_space(self) -> tuple[str, ...]:
        table, wanted = self.table, self.options.classes
        # predictions.csv writes a record's classes separated by spaces: a class name cannot hold one.
        spaced = [c for c in (*table.classes, *(wanted or ())) if c != c.strip() or " " in c]
        if spaced:
            raise DataError(f"{self.options.labels}: class names cannot contain spaces: {', '.join(map(repr, spaced))}")
        if wanted is None:
            return table.classes
        unknown = sorted(set(table.classes) - set(wanted))
        if unknown:
            raise DataError(f"{self.options.labels}: label(s) {', '.join(unknown)} are not among the job's classes "
                            f"({', '.join(wanted)})")
        return tuple(wanted)

    @property
    def scored(self) -> tuple[str, ...]:
        scored = self.options.scored_classes or self.class_names
        unknown = [c for c in scored if c not in self.class_names]
        if unknown:
            raise DataError(f"scored_classes {', '.join(unknown)} are not among the classes "
                            f"({', '.join(self.class_names)})")
        return tuple(scored)

    def labels_marker(self, root: str) -> str:
        return self.options.labels

    def read(self, root: str, warn: bool = True) -> Records:
        matched = self._matched(root)
        signals, rates, leads = [], [], []
        for path in matched.paths:
            signal, fs, names = wfdb_folder.read_record(path)
            signals.append(signal[0] if signal.shape[0] == 1 else signal)  # one lead: 1-D, as CinC 2017's reader
            rates.append(float(fs))
            leads.append(tuple(_standard(n) for n in names))
        n = len(matched.names)
        return Records(str(os.path.abspath(root)), matched.names, self.encode(matched.labels), tuple(signals),
                       tuple(rates), tuple(leads), (Path(root).name,) * n, tuple(matched.patients),
                       tuple(matched.folds))

    def read_unlabelled(self, root: str) -> Records:
        return read_folder(root)

    def dataset_note(self, root: str) -> list[str]:
        skipped = self._matched(root).unlabelled
        if not skipped:
            return []
        shown = ", ".join(skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        return [f"{len(skipped)} record(s) without a label in {self.options.labels} skipped: {shown}"]

    def _matched(self, root: str) -> wfdb_folder.Matched:
        try:
            return wfdb_folder.match(self.table, wfdb_folder.find_records(root))
        except DataError as exc:  # the matcher knows the table, not the file it came from
            raise DataError(f"{self.options.labels}: {exc}") from None

    @property
    def check_title(self) -> str:
        return f"a WFDB folder labelled by {self.options.labels}"

    def check(self, root: Path, report: Report) -> None:
        """The labels against the records (unlabelled ones noted), patients across folds, every signal."""
        try:
            matched = self._matched(str(root))
            self.label_space()  # labels outside the job's classes are an error here
        except DataError as exc:
            report.error("labels", str(exc))
            return
        for name in matched.unlabelled:
            report.note("record without a label", f"{root / name}: not in {self.options.labels} (skipped)")
        note_patients_in_two_folds(self.options.labels, matched.names, matched.patients, matched.folds, report)
        report.checked = len(matched.names) + len(matched.unlabelled)
        check_wfdb_records(matched.paths, report)
        counts = self.counts(self.encode(matched.labels))
        report.classes = {c: n for c, n in counts.items() if n}

    def resolve(self, records: Records, split_name: str, persist: bool) -> tuple[list, Split]:
        if is_own_split(split_name):
            if not records.folds:
                raise DataError(f"split {split_name}: {self.options.labels} has no fold column")
            return list(records.names), own_folds_split(split_name, list(records.names), records.folds)
        return self.generated(records, split_name)


class _WfdbSingle(WfdbFolder, SingleLabel):
    metric_name = score_label = property(lambda self: f"macro F1 over {', '.join(self.scored)}")
    multi_lead = True

    def encode(self, labels) -> np.ndarray:
        several = next((ls for ls in labels if len(ls) > 1), None)
        if several is not None:
            raise DataError(f"{self.options.labels}: a record has the labels {', '.join(several)}, but the job's "
                            "track_options say multilabel false")
        index = {c: i for i, c in enumerate(self.class_names)}
        return np.array([index[ls[0]] for ls in labels], dtype=np.int64)

    def generated(self, records: Records, split_name: str) -> tuple[list, Split]:
        return self.generated_split(records, split_name)


class _WfdbMulti(WfdbFolder, MultiLabel):
    metric_name = score_label = property(lambda self: f"macro AUROC over {len(self.scored)} classes")
    columns = ("fold", "score", "fmax", "auprc", "f_measure", "accuracy")
    compare_columns = ("score", "fmax", "auprc", "f_measure", "accuracy")

    def encode(self, labels) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.class_names)}
        targets = np.zeros((len(labels), len(index)), dtype=bool)
        for i, ls in enumerate(labels):
            targets[i, [index[c] for c in ls]] = True
        return targets

    def report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None) -> dict:
        return self.auc_report(targets, probs, thresholds)

    def tune(self, targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self.f1_thresholds(targets, probs)

    def pooled_metrics(self, pooled, weights: np.ndarray) -> dict[str, np.ndarray]:
        return self.auc_pooled_metrics(pooled, weights)

    def generated(self, records: Records, split_name: str) -> tuple[list, Split]:
        def make(keys, labels):
            return generate_multilabel_split(keys, labels, [""] * len(keys), split_name)

        try:
            return list(records.names), grouped(records, make, np.asarray(records.targets))
        except DataError as exc:
            raise DataError(f"dataset {records.root}: {exc}") from None


def _read_table(labels, record_column: str, label_column: str) -> wfdb_folder.LabelTable:
    if not labels:
        raise DataError("track wfdb needs the labels CSV (track_options.labels)")
    try:
        mtime = os.stat(labels).st_mtime
    except OSError:
        mtime = 0.0  # read_labels names the missing file
    return _table(str(labels), record_column, label_column, mtime)


def _standard(lead: str) -> str:
    """A lead name in the project's spelling (AVR -> aVR) when it is one of the twelve standard leads."""
    return next((s for s in STANDARD_LEADS if s.lower() == lead.strip().lower()), lead)


def read_folder(root: str) -> Records:
    """Every WFDB record below root, unlabelled (targets are zeros): what `predict` classifies."""
    found = wfdb_folder.find_records(root)
    signals, rates, leads = [], [], []
    for name in sorted(found):
        signal, fs, names = wfdb_folder.read_record(found[name])
        signals.append(signal[0] if signal.shape[0] == 1 else signal)
        rates.append(float(fs))
        leads.append(tuple(_standard(n) for n in names))
    n = len(signals)
    return Records(str(root), tuple(sorted(found)), np.zeros(n, dtype=np.int64), tuple(signals), tuple(rates),
                   tuple(leads), ("",) * n)
