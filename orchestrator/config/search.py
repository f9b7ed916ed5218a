"""Hyperparameter search: model-file values that are search spaces, expanded into job variants.

Any value of a model file may be a space instead of a value:
  {"grid": [a, b, ...]}       every value (all grids: their cartesian product)
  {"choice": [a, b, ...]}     one value drawn per sample
  {"uniform": [lo, hi]}       a float drawn uniformly
  {"loguniform": [lo, hi]}    a float drawn uniformly in log space (lo > 0)
  {"randint": [lo, hi]}       an integer in [lo, hi)
A job whose model has spaces becomes one variant per grid point and, when
the model also has drawn values, `num_samples` draws per grid point. Each
variant is an ordinary job named `<job>__<key>-<value>_...` (e.g.
`cnn__learning_rate-0.001`), so fold folders stay
log/<arch>/<variant>/fold<k> and `summarize` ranks the variants. Draws are
seeded by the job name and sample index: the same files give the same
variants with the same names, which `resume` relies on. Every candidate
value is checked against the model schema at load time, so a wrong type in
a space is an error naming the file and the JSON path, like any other.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from dataclasses import dataclass, replace

import numpy as np

from ecgcore.config.schema import ConfigError

KINDS = ("grid", "choice", "uniform", "loguniform", "randint")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Space:
    path: tuple[str, ...]  # keys from the model file's root to the value
    kind: str
    args: tuple

    @property
    def json_path(self) -> str:
        return "$." + ".".join(self.path)

    @property
    def drawn(self) -> bool:
        return self.kind != "grid"

    def candidates(self) -> tuple:
        """Values to type-check: every listed value, or both bounds of a range."""
        return self.args

    def draw(self, rng: np.random.Generator):
        lo_hi = self.args
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        if self.kind == "uniform":
            return float(rng.uniform(*lo_hi))
        if self.kind == "loguniform":
            return float(np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]))))
        return int(rng.integers(lo_hi[0], lo_hi[1]))

    def describe(self) -> str:
        return f"{self.json_path} {self.kind} {list(self.args)}"


def find_spaces(data, file, path: tuple[str, ...] = ()) -> list[Space]:
    """Every search space in a model file's JSON, checked for shape."""
    if not isinstance(data, dict):
        return []
    if len(data) == 1 and next(iter(data)) in KINDS:
        kind, args = next(iter(data.items()))
        return [_space(path, kind, args, file)]
    return [s for key, value in data.items() for s in find_spaces(value, file, (*path, key))]


def _space(path, kind: str, args, file) -> Space:
    where = "$." + ".".join((*path, kind))
    if kind in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise ConfigError(file, where, f"{kind} needs a non-empty list of values")
        return Space(path, kind, tuple(args))
    numbers = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers or not args[0] < args[1]:
        raise ConfigError(file, where, f"{kind} needs [low, high] with low < high")
    if kind == "loguniform" and args[0] <= 0:
        raise ConfigError(file, where, "loguniform needs low > 0")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ConfigError(file, where, "randint needs integer bounds")
    return Space(path, kind, tuple(args))


def substitute(data: dict, values: dict[tuple[str, ...], object]) -> dict:
    """A copy of the model JSON with each space replaced by its value."""
    out = copy.deepcopy(data)
    for path, value in values.items():
        node = out
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return out


def check_spaces(raw: dict, spaces: list[Space], file, parse) -> None:
    """Parse the model with every candidate value of every space (the others at their first value)."""
    first = {s.path: s.candidates()[0] for s in spaces}
    for space in spaces:
        for i, value in enumerate(space.candidates()):
            try:
                parse(substitute(raw, {**first, space.path: value}), file)
            except ConfigError as exc:
                raise ConfigError(file, f"{space.json_path}.{space.kind}[{i}]", exc.detail, see=exc.see) from None


def assignments(spaces: list[Space], num_samples: int, seed_key: str) -> list[tuple[int | None, dict]]:
    """(sample index or None, {path: value}) per variant: the grid's product, times num_samples draws."""
    grids = [s for s in spaces if not s.drawn]
    drawn = [s for s in spaces if s.drawn]
    points = list(itertools.product(*(s.args for s in grids))) or [()]
    out = []
    for point in points:
        fixed = {s.path: v for s, v in zip(grids, point, strict=True)}
        if not drawn:
            out.append((None, fixed))
            continue
        for k in range(num_samples):
            seed = int.from_bytes(hashlib.sha256(f"{seed_key}/{point}/{k}".encode()).digest()[:8], "little")
            rng = np.random.default_rng(seed)
            out.append((k, {**fixed, **{s.path: s.draw(rng) for s in drawn}}))
    return out


def variant_name(job: str, sample: int | None, values: dict[tuple[str, ...], object]) -> str:
    parts = [] if sample is None else [f"s{sample}"]
    parts += [f"{path[-1]}-{_fmt(value)}" for path, value in values.items()]
    return f"{job}__{'_'.join(parts)}"


def _fmt(value) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, list):
        text = "x".join(_fmt(v) for v in value)
    else:
        text = str(value)
    return _UNSAFE.sub("-", text)


def expand_variants(jobs, spaces_of: dict, raw_of: dict, parse) -> list:
    """Jobs with their model's spaces resolved: one NamedJob (with its own model) per variant."""
    out = []
    for job in jobs:
        spaces = spaces_of.get(job.config.model, [])
        if not spaces:
            out.append(job)
            continue
        for sample, values in assignments(spaces, job.config.num_samples, job.name):
            model = parse(substitute(raw_of[job.config.model], values), f"{job.config.model}.json")
            out.append(replace(job, name=variant_name(job.name, sample, values), model=model, origin=job.name,
                               variant={".".join(p): v for p, v in values.items()},
                               space=tuple(s.describe() for s in spaces)))
    return out


def describe_search(jobs) -> list[str]:
    """Dry-run lines: per searched job, its variants' values."""
    by_job: dict[str, list] = {}
    for job in jobs:
        if job.variant is not None:
            by_job.setdefault(job.name.split("__")[0], []).append(job)
    lines = []
    for name, variants in by_job.items():
        lines.append(f"search {name}: {len(variants)} variant(s) of model {variants[0].config.model!r}"
                     + (f", {variants[0].config.num_samples} draw(s) per grid point, seeded by the job name"
                        if variants[0].name.split("__")[1].startswith("s0") else ""))
        lines += [f"  space {text}" for text in variants[0].space]
        lines += [f"  {v.name}: {v.variant}" for v in variants]
    return lines
