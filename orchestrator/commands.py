"""Small dataset commands: write a split by hand, write a synthetic dataset (CinC 2017 or 12-lead)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgcore.challenge import scored_classes
from ecgcore.cinc2017 import CLASSES, read_reference, record_number
from ecgcore.cinc2020 import parse_header, source_of
from ecgcore.errors import ProjectError
from ecgcore.multisplit import generate_multilabel_split
from ecgcore.splits import Split, generate_split, writable, write_split
from ecgcore.synth import write_synthetic_dataset
from ecgcore.synth12 import write_synthetic_12lead


def split_name(folds: int, tv: int, seed: int, holdout: bool, sources: bool) -> str:
    if sources:
        return f"sources_{tv}_{seed}"
    return f"split_{folds}_{tv}_{seed}" + ("_holdout" if holdout else "")


def make_split(root: Path, name: str, challenge: int) -> Split:
    """The split from the labels alone (REFERENCE.csv, or the 12-lead headers): no signal is read."""
    if challenge == 2017:
        if name.startswith("sources_"):
            raise ProjectError("leave-source-out splits are for the 12-lead data (--challenge 2020 or 2021)")
        labels = read_reference(root)
        numbers = np.array([record_number(n) for n in labels])
        return generate_split(numbers, np.array([CLASSES.index(v) for v in labels.values()]), name)
    heas = sorted(root.rglob("*.hea"), key=lambda p: p.stem)
    if not heas:
        raise ProjectError(f"{root}: no .hea files (expected CinC 2020/2021 records)")
    headers = [parse_header(h.read_text(errors="replace"), h) for h in heas]
    names = [h.record for h in headers]
    targets = scored_classes(challenge).encode([h.dx for h in headers])
    return generate_multilabel_split(names, targets, [source_of(n) for n in names], name)


def write_split_command(dataset: str, folds: int, tv: int, seed: int, out: str | None,
                        holdout: bool = False, challenge: int = 2017, sources: bool = False) -> int:
    root = Path(dataset)
    name = split_name(folds, tv, seed, holdout, sources)
    split = make_split(root, name, challenge)
    target = Path(out) if out else root / "splits" / name
    if not out and not writable(root):
        raise ProjectError(f"{root} is read-only; write the split elsewhere with --out DIR")
    if (target / "test0.json").exists():
        raise ProjectError(f"{target} already holds a split; it is left as it is")
    write_split(split, target)
    sizes = [(len(f.train), len(f.valid), len(f.test)) for f in split.folds]
    held = f", {len(split.holdout)} held out" if split.holdout else ""
    print(f"{name}: {len(split.folds)} folds (train, valid, test) = {sizes}{held} -> {target}")
    return 0


def synth_command(out: str, records: int, seed: int, challenge: int = 2017) -> int:
    if challenge == 2017:
        counts = write_synthetic_dataset(out, records, seed=seed)
    else:
        counts = write_synthetic_12lead(out, records, seed=seed)
    print(f"{records} synthetic records ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {out}")
    return 0
