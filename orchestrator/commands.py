"""Small dataset commands: write a split by hand, write the synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgcore.cinc2017 import CLASSES, read_reference, record_number
from ecgcore.errors import ProjectError
from ecgcore.splits import generate_split, writable, write_split
from ecgcore.synth import write_synthetic_dataset


def write_split_command(dataset: str, folds: int, tv: int, seed: int, out: str | None,
                        holdout: bool = False) -> int:
    root = Path(dataset)
    labels = read_reference(root)
    name = f"split_{folds}_{tv}_{seed}" + ("_holdout" if holdout else "")
    numbers = np.array([record_number(n) for n in labels])
    split = generate_split(numbers, np.array([CLASSES.index(v) for v in labels.values()]), name)
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


def synth_command(out: str, records: int, seed: int) -> int:
    counts = write_synthetic_dataset(out, records, seed=seed)
    print(f"{records} synthetic records ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {out}")
    return 0
