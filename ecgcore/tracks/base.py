"""The track interface: what a dataset declares so that training, logs and every command need not know it.

A track is built from the job's track options (its own frozen dataclass,
`Options`, validated at load) and, when reading logs, the classes the fold
recorded. `SingleLabel` and `MultiLabel` give the behaviour of the two output
kinds (one softmax class, or several sigmoid classes with per-class thresholds
tuned on the validation fold); a track module subclasses one of them and adds
its reader, label space, split policies and metric. Generic parts live in
the libraries below (ecgcore.metrics, ecgcore.data.splits); this file only
says which of them a kind of output uses.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.data.leakage import check_split_leakage, grouped
from ecgcore.data.splits import Split, generate_split, is_sources_split
from ecgcore.errors import DataError
from ecgcore.metrics import bootstrap, challenge
from ecgcore.metrics import ptbxl as ptbxl_metrics
from ecgcore.metrics.cinc2017 import accuracy, f1_per_class, official_score, score_report
from ecgcore.records import Records


@dataclass(frozen=True)
class NoOptions:
    """A track without options of its own."""


class Track:
    """What every track declares; subclasses set the class attributes and implement the readers."""

    name: str  # the registry key
    Options: type = NoOptions
    split_policies: tuple[str, ...] = ("generated",)  # keys of ecgcore.data.splits.SPLIT_POLICIES
    multilabel: bool
    title: str  # "CinC 2017", "PTB-XL superdiagnostic": where a table names the dataset
    metric_name: str  # the primary metric, in words (plots, logs)
    score_label: str  # the summary's header: what the score column is
    label: int | str  # the `challenge` cell of summarize's csv and json (the year where there is one)
    columns: tuple[str, ...]  # summarize's columns: "fold", "score", then the others
    compare_columns: tuple[str, ...]  # the metrics compare tests, "score" first
    hotlog_metrics: tuple[str, ...]  # per validation, in hotlog.csv as valid_<metric> (and test_<metric>)
    losses: tuple[str, ...]  # the model file's losses this track trains with ("auto" always fits)
    multi_lead: bool = True  # whether a model may select leads by name (False: single-lead records)
    # A (classes, classes) reward matrix and the sinus-rhythm class, for the losses that need them; None elsewhere.
    reward: np.ndarray | None = None
    sinus: int | None = None

    def __init__(self, options: dict, classes: tuple[str, ...] | None = None, root: str | None = None):
        from ecgcore.config.schema import load_dataclass  # the schema is light; here it checks a Task's copy

        self.options = load_dataclass(self.Options, options, f"track {self.name}", "$.track_options")
        self._classes, self.root = classes, root

    @property
    def options_json(self) -> dict:
        from ecgcore.config.schema import to_plain

        return to_plain(self.options)

    @property
    def class_codes(self) -> tuple[str, ...]:
        """The classes as the dataset codes them (SNOMED CT for the 12-lead challenges); class_names elsewhere."""
        return self.class_names

    def card_limits(self, split: str) -> list[str]:
        """The model card's known limits that come from the dataset (markdown bullets)."""
        return []

    @property
    def class_names(self) -> tuple[str, ...]:
        if self._classes is None:
            self._classes = self.label_space()
        return self._classes

    def label_space(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def scored(self) -> tuple[str, ...]:
        """The classes the score averages over."""
        return self.class_names

    # ---- data ----------------------------------------------------------------------------------------------
    def read(self, root: str, warn: bool = True) -> Records:
        raise NotImplementedError

    def read_unlabelled(self, root: str) -> Records:
        raise NotImplementedError

    def labels_marker(self, root: str) -> str:
        """The path whose modification time changes when the dataset's labels do."""
        return root

    def split_from_labels(self, root: Path, name: str) -> Split:
        """A split made from the labels alone (`data split`)."""
        return self.split(self.read(str(root)), name)[1]

    def write_synthetic(self, out: str, records: int, seed: int) -> dict[str, int]:
        raise DataError(f"track {self.name} has no synthetic dataset")

    def split(self, records: Records, split_name: str, persist: bool = False) -> tuple[list, Split]:
        """(the record ids the split lists, the split). A patient in two parts of a fold is refused in a split
        made here; in the dataset's own folds (properties "kind": "dataset folds") it is a warning, kept in the
        split's properties under "leakage" for submit and `data check` to show."""
        ids, split = self.resolve(records, split_name, persist)
        own = split.properties.get("kind") == "dataset folds"
        warnings = check_split_leakage(split, ids, records.patients, refuse=not own)
        if warnings:
            split.properties["leakage"] = warnings[0]
        return ids, split

    def resolve(self, records: Records, split_name: str, persist: bool) -> tuple[list, Split]:
        raise NotImplementedError

    @classmethod
    def detects(cls, root: Path) -> bool:
        """Whether a folder has this track's layout (`data check` without --track; see DETECTED)."""
        return False

    @property
    def check_title(self) -> str:
        return self.title

    def check(self, root: Path, report) -> None:
        """`data check`: every problem of the folder into report (ecgcore.data.quality.Report)."""
        raise NotImplementedError

    def dataset_note(self, root: str) -> list[str]:
        """What the reader left out (records without a label, ...), for the submit log and the fold's notes."""
        return []

    # ---- checks at load --------------------------------------------------------------------------------------
    def check_model(self, model, input_kind: str, trainer: str) -> tuple[str, str] | None:
        """Why this model cannot run on this track, or None: (what is at fault, "model" or "track", the reason)."""
        loss = model.loss_function_parameters.loss
        kind = "multi" if self.multilabel else "single"
        if loss != "auto" and loss not in self.losses:
            return "model", (f"has loss {loss!r}, which does not fit track {self.name} ({kind}-label): use "
                             f"{', '.join(self.losses)}")
        if model.preprocessing.leads is not None and not self.multi_lead:
            return "model", f"selects leads, but {self.title} records have one lead"
        if (input_kind == "features" or trainer == "stacking") and self.multilabel:
            return "track", (f"({model.model_name}) has single-lead CinC 2017 features and one softmax: it takes a "
                             f"single-label track, not {self.name}")
        if trainer == "stack" and self.multilabel:
            return "track", (f"({model.model_name}) stacks its parts' softmax outputs into one softmax: it takes a "
                             f"single-label track, not {self.name}")
        return None

    # ---- scores ----------------------------------------------------------------------------------------------
    def counts(self, targets: np.ndarray) -> dict[str, int]:
        raise NotImplementedError

    def describe(self, records: Records) -> str:
        """One line for the submit log: records per class (and per source when there are several)."""
        counts = ", ".join(f"{c} {n}" for c, n in self.counts(records.targets).items() if n)
        sources = Counter(records.sources)
        if not self.multilabel:
            return f"{len(records)} records ({counts})"
        by_source = ", ".join(f"{s} {n}" for s, n in sorted(sources.items()))
        labelled = int(np.asarray(records.targets).any(axis=1).sum())
        return f"{len(records)} records ({by_source}), {labelled} with a scored label ({counts})"

    def naive_row(self, scores: dict) -> dict | None:
        """The fold's test set scored for a trivial classifier, or None where the metric has its own baseline."""
        return None


class SingleLabel(Track):
    """One class per record: softmax outputs, the argmax decides, the score is the mean F1 of the scored classes."""

    multilabel = False
    hotlog_metrics = ("accuracy", "score")
    losses = ("cross_entropy",)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("fold", "score", *[f"F1_{c}" for c in self.class_names], "accuracy")

    @property
    def compare_columns(self) -> tuple[str, ...]:
        return ("score", "accuracy", *[f"F1_{c}" for c in self.class_names])

    def report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None) -> dict:
        return score_report(targets, probs.argmax(axis=1), self.class_names, self.scored)

    def tune(self, targets: np.ndarray, probs: np.ndarray) -> None:
        return None

    def counts(self, targets: np.ndarray) -> dict[str, int]:
        return dict(zip(self.class_names, np.bincount(targets, minlength=len(self.class_names)).tolist(),
                        strict=True))

    def strata(self, targets: np.ndarray) -> np.ndarray:
        return np.asarray(targets, dtype=np.int64)

    def summary_row(self, fold, report: dict) -> dict:
        return {"fold": fold, "score": report["score"],
                **{f"F1_{c}": report["f1"][c] for c in self.class_names}, "accuracy": report["accuracy"]}

    def naive_row(self, scores: dict) -> dict:
        """'Always the training fold's majority class' on the fold's test set."""
        classes = self.class_names
        majority = int(np.array(scores["train"]["confusion"]).sum(axis=1).argmax())
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        matrix[:, majority] = np.array(scores["test"]["confusion"]).sum(axis=1)
        f1 = f1_per_class(matrix)
        return {"fold": scores["fold"], "score": official_score(matrix, classes, self.scored),
                **{f"F1_{c}": float(v) for c, v in zip(classes, f1, strict=True)},
                "accuracy": accuracy(matrix), "majority": classes[majority]}

    def pooled_metrics(self, pooled, weights: np.ndarray) -> dict[str, np.ndarray]:
        return bootstrap.single_label_metrics(pooled, weights, self.scored)

    def resample_strata(self, unit_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return np.asarray(unit_labels), None

    def score_answers(self, labels_dir: Path, outputs: Path) -> dict:
        """`score`: the report of write_answers' file against the labelled dataset at labels_dir."""
        records = self.read(str(labels_dir))
        try:
            answers = dict(line.split(",")[:2] for line in outputs.read_text().split() if "," in line)
        except OSError as exc:
            raise DataError(f"{outputs}: cannot read the answers ({exc.strerror})") from None
        missing = [n for n in records.names if n not in answers]
        unknown = sorted({a for a in answers.values() if a not in self.class_names})
        if missing or unknown:
            raise DataError(f"{outputs}: " + (f"{len(missing)} record(s) without an answer, e.g. "
                                               f"{', '.join(missing[:5])}" if missing else
                                               f"classes {', '.join(unknown)} are not the track's"))
        predicted = np.eye(len(self.class_names))[[self.class_names.index(answers[n]) for n in records.names]]
        return {**self.report(records.targets, predicted), "records": len(records)}

    def write_answers(self, output: Path, names, probs: np.ndarray, thresholds) -> str:
        """`predict`'s answers: one CSV line per record, `<record>,<class>` (the CinC 2017 answers.txt)."""
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text("".join(f"{n},{self.class_names[int(i)]}\n"
                               for n, i in zip(names, probs.argmax(axis=1), strict=True)))
        os.replace(tmp, output)
        return str(output)

    def generated_split(self, records: Records, split_name: str) -> tuple[list, Split]:
        """The reference's class-stratified k-fold over the records (by patient when known), generated each time:
        it is a function of the labels, so nothing is written beside a dataset that another track may share."""
        if is_sources_split(split_name):
            raise DataError(f"split {split_name}: leave-source-out needs a multi-source dataset")
        try:
            split = grouped(records, lambda keys, labels: generate_split(np.arange(len(keys)), labels, split_name),
                            np.asarray(records.targets))
        except DataError as exc:
            raise DataError(f"dataset {records.root}: {exc}") from None
        return list(records.names), split


class MultiLabel(Track):
    """Several classes per record: sigmoid outputs, each class present at or above its tuned threshold."""

    multilabel = True
    columns = ("fold", "score", "auroc", "auprc", "f_measure", "accuracy")
    compare_columns = ("score", "auroc", "auprc", "f_measure", "accuracy")
    hotlog_metrics = ("score", "auroc", "auprc")
    losses = ("bce", "weighted_bce")

    def counts(self, targets: np.ndarray) -> dict[str, int]:
        return dict(zip(self.class_names, np.asarray(targets).sum(axis=0).astype(int).tolist(), strict=True))

    def strata(self, targets: np.ndarray) -> np.ndarray:
        """Each record's rarest class (by these targets); records without one share the last stratum."""
        targets = np.asarray(targets, dtype=bool)
        counts = targets.sum(axis=0).astype(float)
        rarity = np.where(targets, counts[None, :], np.inf)
        return np.where(targets.any(axis=1), rarity.argmin(axis=1), targets.shape[1]).astype(np.int64)

    def summary_row(self, fold, report: dict) -> dict:
        """A table row; None (undefined, e.g. AUROC without positives) becomes NaN."""
        return {"fold": fold, **{c: _nan(report.get(c)) for c in self.columns[1:]}}

    no_naive_note = "There is no naive row: a classifier without information scores a macro AUROC of 0.5."

    def card_limits(self, split: str) -> list[str]:
        return [f"- The thresholds were tuned on the validation folds to maximise the {self.metric_name}; another "
                "population may need other thresholds."]

    # ---- the AUROC-ranked multi-label tracks (PTB-XL's benchmark, a multi-label labels file) ----
    def auc_report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None, binary=None) -> dict:
        """score: macro AUROC over the scored classes (threshold-free, as the PTB-XL benchmark ranks models); Fmax;
        per-class AUROC; and the thresholded metrics (F1 per class, F-measure, accuracy) at thresholds (or of the
        decisions in binary: answers read back)."""
        thresholds = np.full(targets.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
        targets = np.asarray(targets, dtype=bool)
        binary = probs >= thresholds if binary is None else np.asarray(binary, dtype=bool)
        auc = ptbxl_metrics.class_auc(targets, probs)
        scored = [self.class_names.index(c) for c in self.scored]
        auprc = challenge.auroc_auprc(targets, probs)[1]
        f1 = [_json_float(v) for v in challenge.class_f1(targets, binary)]
        # Per-class AUROC once; the score and the macro AUROC are its means over the scored and over all classes.
        return {"score": _json_float(ptbxl_metrics.mean_defined(auc[scored])),
                "auroc": _json_float(ptbxl_metrics.mean_defined(auc)),
                "auprc": _json_float(auprc), "fmax": _json_float(ptbxl_metrics.fmax(targets, probs)),
                "f_measure": _json_float(challenge.f_measure(targets, binary)),
                "accuracy": _json_float(challenge.accuracy(targets, binary)),
                "auc": dict(zip(self.class_names, map(_json_float, auc), strict=True)),
                "f1": dict(zip(self.class_names, f1, strict=True)),
                "positives": self.counts(targets), "n": int(targets.shape[0])}

    def f1_thresholds(self, targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Per class, the threshold (of 0.01..0.99) of the best F1 on these records; 0.5 for a class without a
        positive. Each class's F1 depends on its own threshold alone, so they are tuned one at a time."""
        targets = np.asarray(targets, dtype=bool)
        grid = np.linspace(0.01, 0.99, 99)
        out = np.full(targets.shape[1], 0.5)
        for c in np.flatnonzero(targets.any(axis=0)):
            predicted = probs[:, c][None, :] >= grid[:, None]
            tp = (predicted & targets[:, c]).sum(axis=1)
            f1 = 2 * tp / (predicted.sum(axis=1) + targets[:, c].sum())
            out[c] = grid[int(np.argmax(f1))]
        return out

    def auc_pooled_metrics(self, pooled, weights: np.ndarray) -> dict[str, np.ndarray]:
        """auc_report's metrics under each resample's record weights (ecgcore.metrics.bootstrap)."""
        if tuple(pooled.classes) != tuple(self.class_names):
            raise ValueError(f"the pool's classes {', '.join(pooled.classes)} are not the track's "
                             f"{', '.join(self.class_names)}")
        scored = [self.class_names.index(c) for c in self.scored]

        def score(labels, outputs, probs, w):
            return bootstrap.macro_auroc(labels[:, scored], probs[:, scored], w)

        out = bootstrap.multilabel_metrics(pooled, weights, score)
        labels, probs = np.asarray(pooled.labels, dtype=bool), np.asarray(pooled.probs, dtype=np.float64)
        out["fmax"] = bootstrap.fmax(labels, probs, np.atleast_2d(weights), ptbxl_metrics.FMAX_THRESHOLDS)
        return out

    def resample_strata(self, unit_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Stratum: each record's rarest class in the pool (strata); every class present in every resample."""
        return self.strata(unit_labels), np.asarray(unit_labels, dtype=bool)

    def score_answers(self, labels_dir: Path, outputs: Path) -> dict:
        """`score`: the report of write_answers' CSV (its probabilities, its classes as decided) against the
        labelled dataset at labels_dir."""
        records = self.read(str(labels_dir))
        try:
            with open(outputs, newline="") as fh:
                rows = {r["record"]: r for r in csv.DictReader(fh)}
        except (OSError, KeyError) as exc:
            raise DataError(f"{outputs}: not predict's answers CSV ({exc})") from None
        missing = [n for n in records.names if n not in rows]
        if missing:
            raise DataError(f"{outputs}: {len(missing)} record(s) without an answer, e.g. {', '.join(missing[:5])}")
        try:
            probs = np.array([[float(rows[n][f"p_{c}"]) for c in self.class_names] for n in records.names])
        except (KeyError, ValueError) as exc:
            raise DataError(f"{outputs}: no probability column {exc} of the track's classes") from None
        present = [set(filter(None, rows[n]["labels"].split(";"))) for n in records.names]
        binary = np.array([[c in p for c in self.class_names] for p in present])
        return {**self.auc_report(records.targets, probs, binary=binary), "records": len(records)}

    def write_answers(self, output: Path, names, probs: np.ndarray, thresholds) -> str:
        """`predict`'s answers: one CSV, a row per record with its classes (';') and every probability."""
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        with open(tmp, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["record", "labels", *[f"p_{c}" for c in self.class_names]])
            for name, p in zip(names, probs, strict=True):
                present = ";".join(c for c, q, t in zip(self.class_names, p, thresholds, strict=True) if q >= t)
                out.writerow([name, present, *[f"{q:.6f}" for q in p]])
        os.replace(tmp, output)
        return str(output)


def _json_float(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _nan(value) -> float:
    return float("nan") if value is None else float(value)
