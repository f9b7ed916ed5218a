"""Patients and splits: splits generated per patient, and a patient found in two parts of a fold.

Records of one patient are not independent evidence: a model tested on a
patient it trained on scores higher than it will on a new patient. Splits this
project generates keep a patient's records together (`grouped`), so a leak
there is a bug and is refused; a fold column the user supplied is the user's
design, so a leak there is reported with counts and the run goes on.
"""

from __future__ import annotations

import numpy as np

from ecgcore.data.splits import Fold, Split
from ecgcore.errors import DataError
from ecgcore.records import Records


def split_leaks(split: Split, ids, patients) -> list[tuple[int, int, str]]:
    """(fold, patients in two parts, an example patient) for every fold that leaks; [] when none does or the
    dataset names no patients. ids[i] is the split's id of record i, patients[i] its patient."""
    if not patients:
        return []
    patient_of = dict(zip(ids, patients, strict=True))
    out = []
    for k, fold in enumerate(split.folds):
        seen: dict[str, str] = {}
        leaking = []
        for part in ("train", "valid", "test"):
            for record in getattr(fold, part):
                patient = patient_of.get(record)
                if patient is None:
                    continue
                if seen.setdefault(patient, part) != part and patient not in leaking:
                    leaking.append(patient)
        if leaking:
            out.append((k, len(leaking), leaking[0]))
    return out


def describe_leaks(split: Split, leaks: list[tuple[int, int, str]]) -> str:
    folds = ", ".join(f"fold {k}: {n} patient(s), e.g. {example}" for k, n, example in leaks[:5])
    return (f"split {split.name}: patients with records in two of train, validation and test ({folds}"
            f"{', ...' if len(leaks) > 5 else ''})")


def check_split_leakage(split: Split, ids, patients, refuse: bool) -> list[str]:
    """Raise DataError on a leak when refuse, else return the warning (or [])."""
    leaks = split_leaks(split, ids, patients)
    if not leaks:
        return []
    message = describe_leaks(split, leaks)
    if refuse:
        raise DataError(f"{message}: a generated split must keep every patient in one part")
    return [message]


def grouped(records: Records, make, labels: np.ndarray) -> Split:
    """make(keys, labels) run over patients when the records name them, else over records; the split's ids are
    record names either way. A patient takes its first record's single label, or the union of its records' labels,
    so every record of a patient lands in the same part of every fold. make may answer with positions in keys or
    with the keys themselves."""
    names = list(records.names)
    if not records.patients:
        return _mapped(make(names, labels), names, {n: [n] for n in names})
    patients = list(dict.fromkeys(records.patients))
    where = {p: i for i, p in enumerate(patients)}
    of_record = np.array([where[p] for p in records.patients])
    if labels.ndim == 1:
        first = {}
        for i, p in enumerate(of_record.tolist()):
            first.setdefault(p, int(labels[i]))
        patient_labels = np.array([first[i] for i in range(len(patients))])
    else:
        patient_labels = np.zeros((len(patients), labels.shape[1]), dtype=bool)
        np.logical_or.at(patient_labels, of_record, labels.astype(bool))
    members: dict[str, list[str]] = {}
    for name, p in zip(names, records.patients, strict=True):
        members.setdefault(p, []).append(name)
    return _mapped(make(patients, patient_labels), patients, members)


def _mapped(split: Split, keys: list[str], members: dict[str, list[str]]) -> Split:
    """The split with each key (or position in keys) replaced by its records' names."""
    def names(ids) -> tuple[str, ...]:
        return tuple(n for i in ids for n in members[i if isinstance(i, str) else keys[int(i)]])

    folds = tuple(Fold(names(f.train), names(f.valid), names(f.test)) for f in split.folds)
    return Split(split.name, folds, split.properties, names(split.holdout))
