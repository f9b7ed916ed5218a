"""Small dataset commands: write a split by hand, write a synthetic dataset (in a track's format)."""

from __future__ import annotations

from pathlib import Path

from ecgcore.data.splits import writable, write_split
from ecgcore.errors import ProjectError
from ecgcore.tracks import DEFAULT_TRACK, open_track


def split_name(folds: int, tv: int, seed: int, holdout: bool, sources: bool, repeats: int = 1) -> str:
    if sources:
        return f"sources_{tv}_{seed}" + (f"_r{repeats}" if repeats > 1 else "")
    return f"split_{folds}_{tv}_{seed}" + ("_holdout" if holdout else "") + (f"_r{repeats}" if repeats > 1 else "")


def write_split_command(dataset: str, folds: int, tv: int, seed: int, out: str | None,
                        holdout: bool = False, track: str = DEFAULT_TRACK, sources: bool = False, repeats: int = 1,
                        options: dict | None = None) -> int:
    root = Path(dataset)
    name = split_name(folds, tv, seed, holdout, sources, repeats)
    split = open_track(track, options, root=str(root)).split_from_labels(root, name)
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


def synth_command(out: str, records: int, seed: int, track: str = DEFAULT_TRACK) -> int:
    counts = open_track(track).write_synthetic(out, records, seed)
    print(f"{records} synthetic records ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {out}")
    return 0
