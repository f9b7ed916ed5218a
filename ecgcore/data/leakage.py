"""Patient leakage: a patient whose records sit in two of a fold's train, validation and test parts.

Records of one patient are not independent evidence: a model tested on a
patient it trained on scores higher than it will on a new patient. Splits this
project generates keep a patient's records together, so a leak there is a bug
and is refused; a fold column the user supplied is the user's design, so a leak
there is reported with counts and the run goes on.
"""

from __future__ import annotations

from ecgcore.data.splits import Split
from ecgcore.errors import DataError


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
