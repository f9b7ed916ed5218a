"""The two challenge tracks behind one interface: reading, splitting, scoring.

A job's `challenge` picks the track. CinC 2017 is single-label (N/A/O/~
from REFERENCE.csv, one lead, softmax outputs, the official F1 score);
CinC 2020 and 2021 are multi-label (the scored SNOMED CT classes of each
header's #Dx line, 12 leads, sigmoid outputs, the challenge metric with
per-class thresholds). Training, the fold log, `predict`, `ensemble` and
`summarize` ask the track rather than branch on the year, so both tracks go
through the same code.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.challenges import CHALLENGES
from ecgcore.data.multisplit import generate_multilabel_split
from ecgcore.data.splits import Split, generate_split, is_sources_split, resolve_split
from ecgcore.errors import DataError
from ecgcore.io import cinc2017, cinc2020, synth, synth12
from ecgcore.metrics import challenge
from ecgcore.metrics.cinc2017 import score_report


@dataclass(frozen=True)
class Records:
    """A labelled dataset, whatever the track: one entry per record, sorted as the reader gives them."""

    root: str
    names: tuple[str, ...]
    targets: np.ndarray  # (records,) int class indices, or (records, classes) bool
    signals: tuple[np.ndarray, ...]  # float32 mV, (leads, samples) or 1-D for one lead
    fs: tuple[float, ...]
    leads: tuple[tuple[str, ...], ...]  # lead names per record, from the headers
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def take(self, index) -> Records:
        index = list(index)
        pick = lambda seq: tuple(seq[i] for i in index)  # noqa: E731
        return Records(self.root, pick(self.names), self.targets[index], pick(self.signals), pick(self.fs),
                       pick(self.leads), pick(self.sources))


class SingleLabel:
    """CinC 2017: one class per record; record numbers identify records in split files."""

    challenge = 2017
    multilabel = False
    class_names = cinc2017.CLASSES
    metric_name = "official CinC 2017 F1"

    def read(self, root: str, warn: bool = True) -> Records:
        ds = cinc2017.load_dataset(root)
        n = len(ds)
        return Records(ds.root, ds.names, ds.labels, ds.signals, (float(ds.fs),) * n, (("ECG",),) * n,
                       ("CinC2017",) * n)

    def read_unlabelled(self, root: str) -> Records:
        """Records to classify: .hea + .mat files, no REFERENCE.csv needed (targets are zeros)."""
        files = {n: f for n, f in cinc2017.find_record_files(Path(root)).items() if f[0] is not None}
        if not files:
            raise DataError(f"{root}: no records (.hea files)")
        names, signals, rates = [], [], []
        for name in sorted(files):
            hea, mat = files[name]
            if mat is None:
                raise DataError(f"{hea}: record {name} has no .mat file")
            signal, fs = cinc2017.read_record(hea, mat)
            names.append(name)
            signals.append(signal)
            rates.append(float(fs))
        n = len(names)
        return Records(str(root), tuple(names), np.zeros(n, dtype=np.int64), tuple(signals), tuple(rates),
                       (("ECG",),) * n, ("",) * n)

    def labels_marker(self, root: str) -> str:
        """The path whose modification time changes when the dataset's labels do."""
        return os.path.join(root, cinc2017.REFERENCE_FILE)

    def split_from_labels(self, root: Path, name: str) -> Split:
        """A new split from REFERENCE.csv alone (no signal is read)."""
        if is_sources_split(name):
            raise DataError("leave-source-out splits are for the 12-lead data (--challenge 2020 or 2021)")
        labels = cinc2017.read_reference(root)
        numbers = np.array([cinc2017.record_number(n) for n in labels])
        return generate_split(numbers, np.array([cinc2017.CLASSES.index(v) for v in labels.values()]), name)

    def write_synthetic(self, out: str, records: int, seed: int) -> dict[str, int]:
        return synth.write_synthetic_dataset(out, records, seed=seed)

    def split(self, records: Records, split_name: str, persist: bool = False) -> tuple[list, Split]:
        if is_sources_split(split_name):
            raise DataError(f"split {split_name}: leave-source-out needs a multi-source 12-lead dataset "
                            "(challenge 2020 or 2021)")
        ids = [cinc2017.record_number(n) for n in records.names]
        return ids, resolve_split(records.root, split_name, np.array(ids), records.targets, persist=persist)

    def report(self, targets: np.ndarray, probs: np.ndarray, thresholds=None) -> dict:
        return score_report(targets, probs.argmax(axis=1))

    def tune(self, targets: np.ndarray, probs: np.ndarray) -> None:
        return None

    def counts(self, targets: np.ndarray) -> dict[str, int]:
        return dict(zip(self.class_names, np.bincount(targets, minlength=len(self.class_names)).tolist(),
                        strict=True))

    def strata(self, targets: np.ndarray) -> np.ndarray:
        return np.asarray(targets, dtype=np.int64)


class MultiLabel:
    """CinC 2020/2021: the scored classes (equivalent codes merged); record names identify records."""

    multilabel = True

    def __init__(self, year: int):
        self.challenge = year
        self.metric_name = f"CinC {year} challenge metric"
        self.classes = challenge.scored_classes(year)
        self.class_names = self.classes.abbreviations

    def read(self, root: str, warn: bool = True) -> Records:
        """With warn, the reader's quirk warnings (once per dataset: the driver warns, trials need not)."""
        ds = cinc2020.load_dataset(root, warn=warn)
        targets = self.classes.encode([h.dx for h in ds.headers])
        return Records(str(os.path.abspath(root)), tuple(ds.names), targets, tuple(ds.signals),
                       tuple(h.fs for h in ds.headers), tuple(h.leads for h in ds.headers), tuple(ds.sources))

    def read_unlabelled(self, root: str) -> Records:
        return self.read(root)

    def labels_marker(self, root: str) -> str:
        return root  # labels are in the headers: the folder changes when records do

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

    def split(self, records: Records, split_name: str, persist: bool = False) -> tuple[list, Split]:
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

    def counts(self, targets: np.ndarray) -> dict[str, int]:
        return dict(zip(self.class_names, np.asarray(targets).sum(axis=0).astype(int).tolist(), strict=True))

    def strata(self, targets: np.ndarray) -> np.ndarray:
        """Each record's rarest scored class (by these targets); records without one share the last stratum."""
        targets = np.asarray(targets, dtype=bool)
        counts = targets.sum(axis=0).astype(float)
        rarity = np.where(targets, counts[None, :], np.inf)
        return np.where(targets.any(axis=1), rarity.argmin(axis=1), targets.shape[1]).astype(np.int64)


def track_for(year: int) -> SingleLabel | MultiLabel:
    if year not in CHALLENGES:
        raise DataError(f"no track for challenge {year}; known: {', '.join(map(str, CHALLENGES))}")
    return _tracks()[year]


@functools.cache
def _tracks() -> dict:
    return {2017: SingleLabel(), 2020: MultiLabel(2020), 2021: MultiLabel(2021)}


def describe(records: Records, track) -> str:
    """One line for the submit log: records per class (and per source for 12-lead data)."""
    counts = ", ".join(f"{c} {n}" for c, n in track.counts(records.targets).items() if n)
    if not track.multilabel:
        return f"{len(records)} records ({counts})"
    sources = ", ".join(f"{s} {n}" for s, n in sorted(Counter(records.sources).items()))
    labelled = int(np.asarray(records.targets).any(axis=1).sum())
    return f"{len(records)} records ({sources}), {labelled} with a scored label ({counts})"


def _json_float(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
