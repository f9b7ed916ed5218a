"""The `summarize` command: cross-validation scores of every job of an architecture.

Reads log/<architecture>/*/fold*/scores.json (a fold without scores.json
has not finished and is not a result). Per job: one row per fold (official
test score, F1 N/A/O/~, accuracy), then the mean and the sample standard
deviation (ddof=1), and a naive row: the same folds scored for a classifier
that always answers the majority class of the training fold, so a score
means something. Where `ensemble` has scored the job's fold models together
on the split's hold-out part, an "ens(HO)" row shows that score (other
records than the test rows: compare it with the single folds' hold-out
mean printed beside it). Then one "mean ± std" line per job. A job whose
finished folds are fewer than the folds its job.json asked for is marked
incomplete. Pre-training jobs have no class scores; they are listed with
their validation loss. Also writes log/<architecture>/summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.cinc2017 import CLASSES
from ecgcore.errors import ProjectError
from ecgcore.metrics import accuracy, f1_per_class, official_score
from orchestrator.ensemble import ENSEMBLE
from orchestrator.foldlog import SCORES, write_json_atomic

COLUMNS = ["fold", "score", *[f"F1_{c}" for c in CLASSES], "accuracy"]
FORMATS = ("table", "csv", "json", "markdown")


@dataclass(frozen=True)
class JobSummary:
    name: str
    rows: list[dict]
    expected: list[int]
    naive: list[dict]
    ensemble: dict | None = None
    pretrain_losses: tuple[tuple[int, float], ...] = ()  # (fold, best validation loss)

    @property
    def missing(self) -> list[int]:
        done = {r["fold"] for r in self.rows} | {fold for fold, _ in self.pretrain_losses}
        return [k for k in self.expected if k not in done]

    def stat(self, column: str, naive: bool = False) -> tuple[float, float]:
        values = np.array([r[column] for r in (self.naive if naive else self.rows)], dtype=float)
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        return float(values.mean()), std


def collect(log_dir: Path, architecture: str) -> list[JobSummary]:
    arch_dir = log_dir / architecture
    if not arch_dir.is_dir():
        known = sorted(p.name for p in log_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if log_dir.is_dir() else []
        raise ProjectError(f"no results for {architecture!r} under {log_dir}"
                           + (f"; architectures with results: {', '.join(known)}" if known else ""))
    jobs = []
    for job_dir in sorted(p for p in arch_dir.iterdir() if p.is_dir()):
        rows, naive, expected, losses = [], [], set(), []
        for fold_dir in sorted(job_dir.glob("fold*")):
            job_file = fold_dir / "job.json"
            if job_file.exists():
                expected.update(json.loads(job_file.read_text()).get("cvids", []))
            if (fold_dir / SCORES).exists():
                scores = json.loads((fold_dir / SCORES).read_text())
                if scores.get("kind", "classify") == "pretrain":
                    losses.append((scores["fold"], scores["valid"]["loss"]))
                    continue
                rows.append(_row(scores["fold"], scores["test"]))
                naive.append(naive_row(scores))
        if rows or expected:
            by_fold = operator.itemgetter("fold")
            ens_file = job_dir / ENSEMBLE
            ens = json.loads(ens_file.read_text()) if ens_file.exists() else None
            jobs.append(JobSummary(job_dir.name, sorted(rows, key=by_fold), sorted(expected),
                                   sorted(naive, key=by_fold), ens, tuple(losses)))
    return jobs


def ensemble_row(ens: dict) -> dict:
    return _row("ens(HO)", ens["ensemble"])


def _row(fold, report: dict) -> dict:
    """A table row from a score_report (a fold's test scores, or the hold-out ensemble's)."""
    return {"fold": fold, "score": report["score"],
            **{f"F1_{c}": report["f1"][c] for c in CLASSES}, "accuracy": report["accuracy"]}


def naive_row(scores: dict) -> dict:
    """The fold's test set scored for 'always the training fold's majority class'."""
    majority = int(np.array(scores["train"]["confusion"]).sum(axis=1).argmax())
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    matrix[:, majority] = np.array(scores["test"]["confusion"]).sum(axis=1)
    f1 = f1_per_class(matrix)
    return {"fold": scores["fold"], "score": official_score(matrix),
            **{f"F1_{c}": float(v) for c, v in zip(CLASSES, f1, strict=True)},
            "accuracy": accuracy(matrix), "majority": CLASSES[majority]}


def to_json(architecture: str, jobs: list[JobSummary]) -> dict:
    out = {"architecture": architecture, "jobs": {}}
    for job in jobs:
        entry = {"folds": job.rows, "complete": not job.missing, "missing_folds": job.missing}
        if job.rows:
            entry["mean"] = {c: job.stat(c)[0] for c in COLUMNS[1:]}
            entry["std"] = {c: _nan_none(job.stat(c)[1]) for c in COLUMNS[1:]}
            entry["naive"] = {"majority_class": sorted({r["majority"] for r in job.naive}),
                              "mean": {c: job.stat(c, naive=True)[0] for c in COLUMNS[1:]}}
        if job.ensemble:
            entry["ensemble_holdout"] = {**ensemble_row(job.ensemble), "n_records": job.ensemble["n_records"],
                                         "single_fold_mean": job.ensemble["single_fold_mean"]}
        if job.pretrain_losses:
            entry["pretrain_valid_loss"] = dict(sorted(job.pretrain_losses))
        out["jobs"][job.name] = entry
    return out


def render(architecture: str, jobs: list[JobSummary], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(architecture, jobs), indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["job", *COLUMNS])
        for job in jobs:
            for r in job.rows:
                writer.writerow([job.name, *[_num(r[c]) for c in COLUMNS]])
        return buf.getvalue().rstrip("\n")
    return _render_table(architecture, jobs, markdown=fmt == "markdown")


def _render_table(architecture: str, jobs: list[JobSummary], markdown: bool) -> str:
    lines = []
    for job in jobs:
        status = "" if not job.missing else f"  [incomplete: missing fold(s) {job.missing}]"
        lines.append(f"{'### ' if markdown else ''}{architecture} / {job.name}{status}")
        body = [[str(r["fold"]), *[f"{r[c]:.3f}" for c in COLUMNS[1:]]] for r in job.rows]
        if job.rows:
            body.append(["mean", *[f"{job.stat(c)[0]:.3f}" for c in COLUMNS[1:]]])
            body.append(["std", *[_fmt_std(job.stat(c)[1]) for c in COLUMNS[1:]]])
            body.append(["naive", *[f"{job.stat(c, naive=True)[0]:.3f}" for c in COLUMNS[1:]]])
        if job.ensemble:
            row = ensemble_row(job.ensemble)
            body.append([row["fold"], *[f"{row[c]:.3f}" for c in COLUMNS[1:]]])
        if body:
            lines.extend(_grid(COLUMNS, body, markdown))
        if job.ensemble:
            lines.append(f"ens(HO): the {len(job.ensemble['folds'])} fold models averaged, scored on the "
                         f"{job.ensemble['n_records']} hold-out records (single folds there: "
                         f"{job.ensemble['single_fold_mean']:.3f} mean)")
        if job.pretrain_losses:
            lines.append(f"pre-training: validation loss per fold "
                         f"{', '.join(f'fold {k} {v:.4f}' for k, v in sorted(job.pretrain_losses))}")
        lines.append("")
    lines.append(f"{architecture}: official CinC 2017 test score over folds (mean ± sample std)")
    for job in jobs:
        if job.rows:
            mean, std = job.stat("score")
            tag = "" if not job.missing else " (incomplete)"
            naive = job.stat("score", naive=True)[0]
            lines.append(f"  {job.name:<30} {mean:.3f} ± {_fmt_std(std)}  ({len(job.rows)} folds; "
                         f"naive {naive:.3f}){tag}")
        elif job.pretrain_losses:
            lines.append(f"  {job.name:<30} pre-training ({len(job.pretrain_losses)} folds)")
        else:
            lines.append(f"  {job.name:<30} no finished fold")
    return "\n".join(lines)


def _grid(header: list[str], body: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *["| " + " | ".join(row) + " |" for row in body]]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return [fmt.format(*header), *[fmt.format(*row) for row in body]]


def summarize(log_dir: str | Path, architecture: str, fmt: str = "table") -> str:
    """Render the summary and write log/<architecture>/summary.json."""
    log_dir = Path(log_dir)
    jobs = collect(log_dir, architecture)
    write_json_atomic(log_dir / architecture / "summary.json", to_json(architecture, jobs))
    return render(architecture, jobs, fmt)


def _fmt_std(std: float) -> str:
    return "n/a" if np.isnan(std) else f"{std:.3f}"


def _nan_none(value: float):
    return None if np.isnan(value) else value


def _num(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
