"""Class-stratified k-fold cross-validation splits in the reference layout.

A split named `split_<folds>_<tv>_<seed>` holds, for each fold k, the files
`train<k>.json`, `valid<k>.json` and `test<k>.json` (JSON lists of 1-based
record numbers, A00005 -> 5) plus `properties.json`, in
`<dataset>/splits/<name>/`. Each test fold is 1/folds of every class; the
rest is split so that (train+valid)/valid = tv, as in the reference
repository (its split_5_6_14 trains on 10/15 and validates on 2/15 of the
records). For the 12-lead datasets, whose record numbers collide across
source databases, the files list record names and the split is made by
ecgcore.data.multisplit (iterative stratification, or one fold per source for a
split named `sources_<tv>_<seed>`). A name ending in `_holdout` (split_5_6_14_holdout) first sets
1/(folds+1) of every class aside in `holdout.json`: no fold trains,
validates or tests on it, so the fold models' ensemble can be scored there.
Generation follows the reference's algorithm step by step (a seeded shuffle
per class, then equal chunks), so on the full training2017
set it reproduces the reference's published split_5_6_14.

Repeated cross-validation: `split_<folds>_<tv>_<seed>_r<R>` (R >= 2) is R
independent k-fold splits, repeat i being exactly split_<folds>_<tv>_<seed+i>
(repeat 0 of split_5_6_14_r3 is the reference's split_5_6_14). It is one
Split of R x folds folds, global fold g = i * folds + k being fold k of
repeat i, so everything that numbers folds 0..n-1 (cvids, fold<g> folders,
test<g>.json) needs no change; `repeat_of` maps g back to (i, k). A hold-out
split has no repeated form (each repeat would hold a different part out), nor
has leave-source-out (its test folds are the sources in every repeat).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np

from ecgcore.errors import DataError

# The whole name grammar. A hold-out with repeats (either order) and sources_..._r<R> are
# matched only so that they are refused with the reason rather than as unknown names.
SPLIT_NAME = re.compile(r"^split_(?P<folds>\d+)_(?P<tv>\d+)_(?P<seed>\d+)"
                        r"(?:(?P<holdout>_holdout)|_r(?P<repeats>\d+)|(?P<both>_holdout_r\d+|_r\d+_holdout))?$")
SOURCES_NAME = re.compile(r"^sources_(?P<tv>\d+)_(?P<seed>\d+)(?P<repeats>_r\d+)?$")
# The dataset's own folds (PTB-XL's strat_fold, a labels file's fold column): cross-validation over all of
# them, or the recommended single split (the last fold tests, the one before validates: PTB-XL's 1-8/9/10).
OWN_FOLDS, OWN_RECOMMENDED = "dataset_folds", "dataset_recommended"
# What a track may declare it supports, by the kind of split name (split_policy).
SPLIT_POLICIES = {"generated": "generated stratified k-fold (split_<folds>_<tv>_<seed>...)",
                  "sources": "leave-source-out (sources_<tv>_<seed>)",
                  "dataset": f"the dataset's own folds ({OWN_FOLDS}, {OWN_RECOMMENDED})"}
RecordId = int | str  # a record number (CinC 2017, the reference layout) or a record name (12-lead)


@dataclass(frozen=True)
class Fold:
    """Record ids of one fold."""

    train: tuple[RecordId, ...]
    valid: tuple[RecordId, ...]
    test: tuple[RecordId, ...]


@dataclass(frozen=True)
class Split:
    name: str
    folds: tuple[Fold, ...]
    properties: dict
    holdout: tuple[RecordId, ...] = ()


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split_... name; folds counts the folds of one repeat, seed is repeat 0's."""

    folds: int
    tv: int
    seed: int
    holdout: bool = False
    repeats: int = 1

    def repeat_name(self, repeat: int) -> str:
        """The unrepeated split that repeat `repeat` is."""
        return f"split_{self.folds}_{self.tv}_{self.seed + repeat}"


def split_spec(name: str) -> SplitSpec:
    """The parts of 'split_<folds>_<tv>_<seed>[_holdout|_r<R>]'."""
    match = SPLIT_NAME.match(name)
    if not match:
        raise DataError(f"split name {name!r} is not of the form split_<folds>_<tv>_<seed>[_holdout|_r<R>]")
    folds, tv, seed = int(match["folds"]), int(match["tv"]), int(match["seed"])
    if folds < 2 or tv < 2:
        raise DataError(f"split {name!r}: needs at least 2 folds and tv >= 2")
    base = f"split_{folds}_{tv}_{seed}"
    if match["both"]:
        raise DataError(f"split {name!r}: a hold-out split cannot be repeated, since each repeat would set a "
                        f"different hold-out set aside; use {base}_holdout or {base}_r<R>")
    repeats = 1 if match["repeats"] is None else int(match["repeats"])
    if match["repeats"] is not None and repeats < 2:
        raise DataError(f"split {name!r}: repeats need R >= 2; use {base} for one repetition")
    return SplitSpec(folds, tv, seed, bool(match["holdout"]), repeats)


def parse_split_name(name: str) -> tuple[int, int, int]:
    """(folds per repeat, tv, seed of repeat 0) from 'split_<folds>_<tv>_<seed>[_holdout|_r<R>]'."""
    spec = split_spec(name)
    return spec.folds, spec.tv, spec.seed


def parse_sources_name(name: str) -> tuple[int, int]:
    """(tv, seed) from 'sources_<tv>_<seed>' (leave-source-out: one fold per source database)."""
    match = SOURCES_NAME.match(name)
    if not match:
        raise DataError(f"split name {name!r} is not of the form sources_<tv>_<seed>")
    tv, seed = int(match["tv"]), int(match["seed"])
    if match["repeats"]:
        raise DataError(f"split {name!r}: leave-source-out has no repeated form, its test folds are the "
                        f"source databases in every repeat; use sources_{tv}_{seed}")
    if tv < 2:
        raise DataError(f"split {name!r}: needs tv >= 2")
    return tv, seed


def is_sources_split(name: str) -> bool:
    return name.startswith("sources_")


def is_own_split(name: str) -> bool:
    return name in (OWN_FOLDS, OWN_RECOMMENDED)


def split_policy(name: str) -> str:
    """"generated", "sources" or "dataset": the kind of split a name asks for (a key of SPLIT_POLICIES)."""
    return "dataset" if is_own_split(name) else "sources" if is_sources_split(name) else "generated"


def split_folds(name: str) -> int | None:
    """The number of folds a split name promises (repeats x folds per repeat); None for leave-source-out
    (one per source in the data) and for cross-validation over the dataset's own folds."""
    if is_own_split(name):
        return 1 if name == OWN_RECOMMENDED else None
    if is_sources_split(name):
        parse_sources_name(name)
        return None
    spec = split_spec(name)
    return spec.folds * spec.repeats


def folds_per_repeat(name: str) -> int | None:
    """The folds of one repeat (split_folds for an unrepeated name); None for leave-source-out."""
    if is_own_split(name):
        return split_folds(name)
    if is_sources_split(name):
        parse_sources_name(name)
        return None
    return split_spec(name).folds


def split_repeats(name: str) -> int:
    """R for split_..._r<R>; 1 for an unrepeated, a leave-source-out or a dataset's own split."""
    if is_own_split(name):
        return 1
    if is_sources_split(name):
        parse_sources_name(name)
        return 1
    return split_spec(name).repeats


def repeat_layout(name: str | None) -> tuple[int, int]:
    """(repeats, folds per repeat) of a split name read back from a log: (1, 0) for anything but a repeated
    split_..._r<R> (an unrepeated or leave-source-out split, or none: hand-made and older logs may lack it)."""
    if not name or is_sources_split(name) or is_own_split(name):
        return 1, 0
    try:
        spec = split_spec(name)
    except DataError:
        return 1, 0
    return (spec.repeats, spec.folds) if spec.repeats > 1 else (1, 0)


def repeat_of(name: str, fold: int) -> tuple[int, int]:
    """(repeat, fold within that repeat) of a global fold id: g = repeat * folds + fold."""
    per_repeat = folds_per_repeat(name)
    total = split_folds(name)
    if fold < 0 or (total is not None and fold >= total):
        raise DataError(f"fold {fold} is outside {name}" + (f" (folds 0..{total - 1})" if total is not None else ""))
    return (0, fold) if per_repeat is None else divmod(fold, per_repeat)


def own_folds_split(name: str, ids: list, folds) -> Split:
    """A split over the dataset's own fold of each record (ids[i] in fold folds[i]): OWN_FOLDS gives one CV fold
    per fold value (it tests on that fold, validates on the next one, cyclically, trains on the rest),
    OWN_RECOMMENDED the single split that tests on the last fold and validates on the one before."""
    values = sorted(set(folds))
    if len(values) < 3:
        raise DataError(f"split {name}: the dataset has {len(values)} fold(s) of its own; train, validation "
                        "and test need at least 3")
    members = {v: tuple(i for i, f in zip(ids, folds, strict=True) if f == v) for v in values}
    order = range(len(values)) if name == OWN_FOLDS else [len(values) - 1]
    out = []
    for t in order:
        valid = (t - 1) % len(values) if name == OWN_RECOMMENDED else (t + 1) % len(values)
        train = tuple(i for k, v in enumerate(values) if k not in (t, valid) for i in members[v])
        out.append(Fold(train, members[values[valid]], members[values[t]]))
    properties = {"name": name, "kind": "dataset folds", "dataset folds": values,
                  "test folds": [values[t] for t in order]}
    return Split(name, tuple(out), properties)


def has_holdout(name: str) -> bool:
    return name.endswith("_holdout")


def split_properties(folds: int, tv: int, seed: int, holdout: bool = False, repeats: int = 1) -> dict:
    """properties.json content, in the reference's format; the sizes are those of one repeat's folds."""
    denom = folds * tv
    test_n = denom // folds
    valid_n = (denom - test_n) // tv
    train_n = denom - test_n - valid_n
    if holdout:  # the folds share folds/(folds+1) of the records, the hold-out 1/(folds+1)
        sizes = _div_by_gcd([train_n * folds, valid_n * folds, test_n * folds, denom])
    else:
        sizes = _div_by_gcd([train_n, valid_n, test_n, 0])
    total = sum(sizes)
    keys = ("train", "valid", "test", "holdout")
    inputs = {"holdout": holdout, "number of folds": folds, "(train+valid)/valid": tv, "seed": seed}
    suffix = "_holdout" if holdout else ""
    if repeats > 1:  # an unrepeated split keeps the reference's exact keys
        inputs.update({"repeats": repeats, "seeds": [seed + i for i in range(repeats)]})
        suffix = f"_r{repeats}"
    return {
        "name": f"split_{folds}_{tv}_{seed}{suffix}",
        "inputs": inputs,
        "relative size": dict(zip(keys, sizes, strict=False)),
        "relative size fraction": {k: round(s / total, 5) for k, s in zip(keys, sizes, strict=False)},
    }


def generate_split(numbers: np.ndarray, labels: np.ndarray, name: str) -> Split:
    """Deterministic stratified split of record numbers with integer class labels."""
    if split_repeats(name) > 1:
        return generate_repeats(name, lambda base: generate_split(numbers, labels, base))
    n_folds, tv, seed = parse_split_name(name)
    numbers = np.asarray(numbers, dtype=int)
    labels = np.asarray(labels)
    label_of = dict(zip(numbers.tolist(), labels.tolist(), strict=True))
    holdout = np.zeros(0, dtype=int)
    if has_holdout(name):
        numbers, holdout = _stratified(numbers, labels, [n_folds, 1], seed)
        labels = np.array([label_of[n] for n in numbers])
    if numbers.size < n_folds * tv:
        raise DataError(f"split {name}: {numbers.size} records are too few for {n_folds} folds with "
                        f"tv {tv}; a train, valid or test set of some fold would be empty")
    tests = _stratified(numbers, labels, [1] * n_folds, seed)
    folds = []
    for test in tests:
        rest = np.setdiff1d(numbers, test)
        train, valid = _stratified(rest, np.array([label_of[n] for n in rest]), [tv - 1, 1], seed)
        folds.append(Fold(tuple(train.tolist()), tuple(valid.tolist()), tuple(test.tolist())))
    for k, fold in enumerate(folds):
        for part in ("train", "valid", "test"):
            if not getattr(fold, part):
                raise DataError(f"split {name}: the {part} set of fold {k} would be empty "
                                f"({numbers.size} records for {n_folds} folds)")
    return Split(name, tuple(folds), split_properties(n_folds, tv, seed, has_holdout(name)),
                 tuple(holdout.tolist()))


def generate_repeats(name: str, make: Callable[[str], Split]) -> Split:
    """A repeated split: make(split_<folds>_<tv>_<seed+i>) for each repeat i, their folds in repeat order.

    Each repeat is made by name, so repeat i is the very split its unrepeated name gives.
    """
    spec = split_spec(name)
    repeats = []
    for i in range(spec.repeats):
        try:
            repeats.append(make(spec.repeat_name(i)))
        except DataError as exc:
            raise DataError(f"split {name}, repeat {i}: {exc}") from None
    # The generator's own keys (the 12-lead "kind") stay; name and inputs become the repeated split's.
    properties = {**repeats[0].properties,
                  **split_properties(spec.folds, spec.tv, spec.seed, repeats=spec.repeats)}
    return Split(name, tuple(fold for split in repeats for fold in split.folds), properties)


def load_split(directory: Path) -> Split:
    """A split stored in the reference layout, used as it is."""
    folds = []
    k = 0
    while (directory / f"test{k}.json").exists():
        parts = [_read_ids(directory / f"{part}{k}.json") for part in ("train", "valid", "test")]
        for part, ids in zip(("train", "valid", "test"), parts, strict=True):
            if not ids:
                raise DataError(f"{directory / f'{part}{k}.json'}: the {part} set of fold {k} is empty")
        folds.append(Fold(*parts))
        k += 1
    if not folds:
        raise DataError(f"{directory}: no test0.json, not a split folder")
    props_path = directory / "properties.json"
    try:
        properties = json.loads(props_path.read_text()) if props_path.exists() else {}
    except (OSError, ValueError) as exc:
        raise DataError(f"{props_path}: unreadable split properties ({exc})") from None
    if not isinstance(properties, dict):
        raise DataError(f"{props_path}: expected a JSON object")
    holdout = _read_ids(directory / "holdout.json") if (directory / "holdout.json").exists() else ()
    return Split(directory.name, tuple(folds), properties, holdout)


def write_split(split: Split, directory: Path) -> None:
    """Write a split in the reference layout (atomically per file)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"properties.json": split.properties}
    if split.holdout:
        files["holdout.json"] = list(split.holdout)
    for k, fold in enumerate(split.folds):
        files.update({f"train{k}.json": list(fold.train), f"valid{k}.json": list(fold.valid),
                      f"test{k}.json": list(fold.test)})
    for fname, content in files.items():
        tmp = directory / f".{fname}.tmp"
        tmp.write_text(json.dumps(content, indent=4 if fname == "properties.json" else None,
                                  sort_keys=True))
        os.replace(tmp, directory / fname)


def resolve_split(dataset_dir: str | Path, name: str, numbers, labels, persist: bool = False,
                  generate: Callable[[], Split] | None = None) -> Split:
    """The stored split if `<dataset>/splits/<name>/` exists, else the generated one.

    numbers are the dataset's record ids; generate makes the split when
    none is stored (default: the CinC 2017 stratified split of numbers and
    integer labels).

    With persist, a generated split is written there when the dataset folder
    is writable; a read-only dataset (like a shared sample) is left untouched.
    """
    directory = Path(dataset_dir) / "splits" / name
    if (directory / "test0.json").exists():
        split = load_split(directory)
        _check_covers(split, set(_plain(n) for n in numbers), directory)
        return split
    try:
        split = generate() if generate is not None else generate_split(numbers, labels, name)
    except DataError as exc:  # the generators know the records, not the folder: name it
        raise DataError(f"dataset {dataset_dir}: {exc}") from None
    if persist and writable(Path(dataset_dir)):
        write_split(split, directory)
    return split


def _check_covers(split: Split, numbers: set[int], directory: Path) -> None:
    missing = set(split.holdout) - numbers
    if missing:
        raise DataError(f"{directory}/holdout.json: {len(missing)} record(s) not in the dataset, "
                        f"e.g. {sorted(missing)[:5]}")
    for k, fold in enumerate(split.folds):
        for part in ("train", "valid", "test"):
            missing = set(getattr(fold, part)) - numbers
            if missing:
                raise DataError(
                    f"{directory}/{part}{k}.json: {len(missing)} record(s) not in the dataset, "
                    f"e.g. {sorted(missing)[:5]}"
                )


def writable(path: Path) -> bool:
    """Whether we may write into a folder; os.access is always true for root, so mode bits count too."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & stat.S_IWUSR)


def _plain(record_id) -> RecordId:
    return record_id if isinstance(record_id, str) else int(record_id)


def _read_ids(path: Path) -> tuple[RecordId, ...]:
    try:
        ids = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable split file ({exc})") from None
    if not isinstance(ids, list) or not (all(isinstance(i, int) for i in ids) or all(isinstance(i, str) for i in ids)):
        raise DataError(f"{path}: expected a JSON list of record numbers or of record names")
    return tuple(ids)


def _stratified(numbers: np.ndarray, labels: np.ndarray, rel_size: list[int], seed: int) -> list[np.ndarray]:
    """Per class: seeded shuffle, cut into sum(rel_size) chunks, deal them out."""
    per_class = [_split_set(numbers[labels == cls], rel_size, seed) for cls in np.unique(labels)]
    return [np.sort(np.concatenate([parts[j] for parts in per_class])) for j in range(len(rel_size))]


def _split_set(inset: np.ndarray, rel_size: list[int], seed: int) -> list[np.ndarray]:
    rel_size = _div_by_gcd(rel_size)
    inset = np.array(inset, dtype=int)
    # The legacy global-state generator, as np.random.seed + shuffle in the reference.
    np.random.RandomState(seed).shuffle(inset)
    chunks = np.array_split(inset, sum(rel_size))
    # Every part gets one chunk first, then the bigger parts take the rest in order.
    out: list[list[np.ndarray]] = [[chunks[j]] for j in range(len(rel_size))]
    index = len(rel_size)
    for j, size in enumerate(rel_size):
        out[j].extend(chunks[index:index + size - 1])
        index += size - 1
    return [np.sort(np.concatenate(parts)).astype(int) for parts in out]


def _div_by_gcd(values: list[int]) -> list[int]:
    gcd = reduce(math.gcd, values)
    return [v // gcd for v in values]
