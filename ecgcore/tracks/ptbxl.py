"""PTB-XL (Wagner et al. 2020) in its own layout, with the benchmark of Strodthoff et al. (IEEE JBHI 2021).

The job's track options choose the benchmark's task (all, diagnostic,
subdiagnostic, superdiagnostic, form, rhythm: the labels aggregated from
`scp_codes` through `scp_statements.csv`, ecgcore.io.ptbxl) and the rate
(records100/ or records500/). Records left without a label for the task are
dropped and counted. Splits are PTB-XL's own ten `strat_fold`s, which keep
a patient in one fold: `dataset_recommended` (folds 1-8 train, 9 validation,
10 test, the benchmark's) and `dataset_folds` (10-fold cross-validation over
them). The score is the benchmark's macro AUROC over the task's classes;
Fmax, per-class AUROC and the thresholded metrics are reported beside it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.config.model import spec
from ecgcore.config.schema import documented
from ecgcore.data.quality import Report, check_wfdb_records, note_patients_in_two_folds
from ecgcore.data.splits import Split, own_folds_split
from ecgcore.errors import DataError
from ecgcore.io import ptbxl
from ecgcore.records import Records
from ecgcore.tracks.base import MultiLabel
from ecgcore.tracks.wfdb import _standard, read_folder


@documented("job-file.md", "track_options", "ptbxl")
@dataclass(frozen=True)
class PtbXlOptions:
    task: str = spec("superdiagnostic", "the benchmark's task: its label aggregation", choices=ptbxl.TASKS)
    sampling_rate: int = spec(100, "read records100/ (100 Hz, as the benchmark) or records500/ (500 Hz)",
                              choices=ptbxl.RATES)
    min_samples: int = spec(0, "drop classes with at most this many records (the benchmark's select_data: 0)",
                            min=0)


@functools.lru_cache(maxsize=4)
def _labels(root: str, task: str, rate: int, min_samples: int, mtime: float) -> ptbxl.PtbxlLabels:
    return ptbxl.read_labels(root, task, rate, min_samples)


class PtbXl(MultiLabel):
    name = "ptbxl"
    Options = PtbXlOptions
    label = "ptbxl"
    split_policies = ("dataset",)
    columns = ("fold", "score", "fmax", "auprc", "f_measure", "accuracy")
    compare_columns = ("score", "fmax", "auprc", "f_measure", "accuracy")

    @property
    def title(self) -> str:
        return f"PTB-XL {self.options.task}"

    @property
    def metric_name(self) -> str:
        return f"PTB-XL {self.options.task} macro AUROC"

    score_label = metric_name

    def labels(self, root: str | None = None) -> ptbxl.PtbxlLabels:
        root = root or self.root
        if root is None:
            raise DataError("the PTB-XL track needs its dataset folder to know the task's classes")
        try:
            mtime = os.stat(Path(root) / ptbxl.DATABASE).st_mtime
        except OSError:
            mtime = 0.0  # read_labels names the missing file
        o = self.options
        return _labels(str(os.path.abspath(root)), o.task, o.sampling_rate, o.min_samples, mtime)

    def label_space(self) -> tuple[str, ...]:
        return self.labels().classes

    def labels_marker(self, root: str) -> str:
        return str(Path(root) / ptbxl.DATABASE)

    def read(self, root: str, warn: bool = True) -> Records:
        labels = self.labels(root)
        if self._classes is not None and tuple(self._classes) != labels.classes:
            raise DataError(f"{root}: the {self.options.task} classes are {', '.join(labels.classes)}, the model "
                            f"was trained for {', '.join(self._classes)}")
        signals, fs, leads = ptbxl.read_records(root, labels, self.options.sampling_rate)
        leads = tuple(_standard(lead) for lead in leads)
        n = len(labels.names)
        return Records(str(os.path.abspath(root)), labels.names, labels.targets, tuple(signals), (fs,) * n,
                       (leads,) * n, ("PTB-XL",) * n, labels.patients, labels.folds)

    @classmethod
    def detects(cls, root: Path) -> bool:
        return (root / ptbxl.DATABASE).is_file()

    @property
    def check_title(self) -> str:
        return f"PTB-XL ({self.options.task} task, records{self.options.sampling_rate}/)"

    def check(self, root: Path, report: Report) -> None:
        """The layout (the two CSV files, the rate's folder), every record of the task, patients across folds."""
        try:
            labels = self.labels(str(root))
            ptbxl.check_records_folder(root, labels, self.options.sampling_rate)
        except DataError as exc:
            report.error("layout", str(exc))
            return
        if labels.dropped:
            report.note("no label for the task", f"{len(labels.dropped)} record(s) without a {self.options.task} "
                                                 f"label are dropped, e.g. {', '.join(labels.dropped[:5])}")
        note_patients_in_two_folds(root / ptbxl.DATABASE, labels.names, labels.patients, labels.folds, report)
        report.checked = len(labels.names)
        check_wfdb_records([root / f"{file}.hea" for file in labels.files], report, self.options.sampling_rate)
        report.classes = {c: int(n) for c, n in zip(labels.classes, labels.targets.sum(axis=0), strict=True)}

    def read_unlabelled(self, root: str) -> Records:
        """Every record of a PTB-XL folder (named by ecg_id, as `score` names them), or of any WFDB folder."""
        if not self.detects(Path(root)):
            return read_folder(root)
        every = ptbxl.read_labels(root, "all", self.options.sampling_rate)  # every record has a statement
        signals, fs, leads = ptbxl.read_records(root, every, self.options.sampling_rate)
        n = len(every.names)
        return Records(str(os.path.abspath(root)), every.names, np.zeros(n, dtype=np.int64), tuple(signals),
                       (fs,) * n, (tuple(_standard(lead) for lead in leads),) * n, ("PTB-XL",) * n, every.patients,
                       every.folds)

    def dataset_note(self, root: str) -> list[str]:
        dropped = self.labels(root).dropped
        return [f"{len(dropped)} record(s) without a {self.options.task} label dropped"] if dropped else []

    def write_synthetic(self, out: str, records: int, seed: int) -> dict[str, int]:
        from ecgcore.io.synth_ptbxl import write_synthetic_ptbxl

        return write_synthetic_ptbxl(out, records, seed)

    def resolve(self, records: Records, split_name: str, persist: bool) -> tuple[list, Split]:
        return list(records.names), own_folds_split(split_name, list(records.names), records.folds)

    def report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None) -> dict:
        return self.auc_report(targets, probs, thresholds)

    def tune(self, targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self.f1_thresholds(targets, probs)

    def pooled_metrics(self, pooled, weights: np.ndarray) -> dict[str, np.ndarray]:
        return self.auc_pooled_metrics(pooled, weights)

    def card_limits(self, split: str) -> list[str]:
        return [*super().card_limits(split),
                "- PTB-XL records come from one hospital's Schiller devices (Germany, 1989-1996): other devices "
                "and populations were never seen."]
