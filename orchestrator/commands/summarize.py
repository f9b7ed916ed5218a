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
their validation loss. Jobs of the 12-lead track (challenge 2020/2021)
show the challenge metric, macro AUROC, AUPRC, F-measure and accuracy per
fold (the always-sinus classifier scores 0 by the metric's definition, so
there is no naive row), the test source of leave-source-out folds, and the
per-class F1 averaged over the folds. Also writes
log/<architecture>/summary.json, and with plot=True each job's learning
curves and test confusion matrix beside it (orchestrator.logdir.plots).
"""

from __future__ import annotations

import csv
import io
import json
import operator
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.errors import ProjectError
from ecgcore.io.cinc2017 import CLASSES
from ecgcore.metrics.cinc2017 import accuracy, f1_per_class, official_score
from ecgcore.tracks import track_for
from orchestrator.logdir.reader import LEGACY_CHALLENGE, SUMMARY, JobDir, architectures, job_dirs, write_json_atomic

COLUMNS = ["fold", "score", *[f"F1_{c}" for c in CLASSES], "accuracy"]
MULTILABEL_COLUMNS = ["fold", "score", "auroc", "auprc", "f_measure", "accuracy"]


@dataclass(frozen=True)
class JobSummary:
    name: str
    rows: list[dict]
    expected: list[int]
    naive: list[dict]
    ensemble: dict | None = None
    pretrain_losses: tuple[tuple[int, float], ...] = ()  # (fold, best validation loss)
    challenge: int = LEGACY_CHALLENGE
    class_f1: tuple[dict, ...] = ()  # multi-label: per fold, class -> test F1 (None: undefined)
    sources: tuple[tuple[int, str], ...] = ()  # leave-source-out: (fold, test source)

    @property
    def multilabel(self) -> bool:
        return track_for(self.challenge).multilabel

    @property
    def columns(self) -> list[str]:
        return MULTILABEL_COLUMNS if self.multilabel else COLUMNS

    @property
    def missing(self) -> list[int]:
        done = {r["fold"] for r in self.rows} | {fold for fold, _ in self.pretrain_losses}
        return [k for k in self.expected if k not in done]

    def stat(self, column: str, naive: bool = False) -> tuple[float, float]:
        values = np.array([r[column] for r in (self.naive if naive else self.rows)], dtype=float)
        values = values[~np.isnan(values)]  # a multi-label metric is undefined on a fold without positives
        if values.size == 0:
            return float("nan"), float("nan")
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        return float(values.mean()), std

    def mean_class_f1(self) -> dict[str, tuple[float, int]]:
        """Per class: the mean test F1 over the folds where it is defined, and in how many folds."""
        out = {}
        for cls in (self.class_f1[0] if self.class_f1 else {}):
            values = [f[cls] for f in self.class_f1 if f.get(cls) is not None]
            if values:
                out[cls] = (float(np.mean(values)), len(values))
        return out


def collect(log_dir: Path, architecture: str) -> list[JobSummary]:
    if not (log_dir / architecture).is_dir():
        known = architectures(log_dir)
        raise ProjectError(f"no results for {architecture!r} under {log_dir}"
                           + (f"; architectures with results: {', '.join(known)}" if known else ""))
    jobs = [_job(job_dir) for job_dir in job_dirs(log_dir, architecture)]
    return [job for job in jobs if job is not None]


def _job(job_dir: JobDir) -> JobSummary | None:
    rows, naive, losses, class_f1, sources = [], [], [], [], []
    folds = job_dir.folds()
    challenge = folds[-1].challenge if folds else LEGACY_CHALLENGE
    for fold in folds:
        scores = fold.scores()
        if scores is None:
            continue
        if scores.get("kind", "classify") == "pretrain":
            losses.append((scores["fold"], scores["valid"]["loss"]))
        elif track_for(fold.challenge).multilabel:
            rows.append(_multilabel_row(scores["fold"], scores["test"]))
            class_f1.append(scores["test"]["f1"])
            if scores["split"].startswith("sources_") and scores.get("test_sources"):
                sources.append((scores["fold"], "+".join(scores["test_sources"])))
        else:
            rows.append(_row(scores["fold"], scores["test"]))
            naive.append(naive_row(scores))
    expected = job_dir.expected_folds()
    if not (rows or expected):
        return None
    by_fold = operator.itemgetter("fold")
    return JobSummary(job_dir.name, sorted(rows, key=by_fold), expected, sorted(naive, key=by_fold),
                      job_dir.ensemble(), tuple(losses), challenge, tuple(class_f1), tuple(sorted(sources)))


def ensemble_row(ens: dict) -> dict:
    if track_for(ens.get("challenge", LEGACY_CHALLENGE)).multilabel:
        return _multilabel_row("ens(HO)", ens["ensemble"])
    return _row("ens(HO)", ens["ensemble"])


def _multilabel_row(fold, report: dict) -> dict:
    """A 12-lead table row; None (undefined, e.g. AUROC without positives) becomes NaN."""
    return {"fold": fold, **{c: _nan(report.get(c)) for c in MULTILABEL_COLUMNS[1:]}}


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
        entry = {"challenge": job.challenge, "folds": [{k: _nan_none(v) for k, v in r.items()} for r in job.rows],
                 "complete": not job.missing, "missing_folds": job.missing}
        if job.rows:
            entry["mean"] = {c: _nan_none(job.stat(c)[0]) for c in job.columns[1:]}
            entry["std"] = {c: _nan_none(job.stat(c)[1]) for c in job.columns[1:]}
        if job.naive:
            entry["naive"] = {"majority_class": sorted({r["majority"] for r in job.naive}),
                              "mean": {c: job.stat(c, naive=True)[0] for c in COLUMNS[1:]}}
        if job.class_f1:
            entry["class_f1_mean"] = {c: {"f1": f1, "folds": n} for c, (f1, n) in job.mean_class_f1().items()}
        if job.sources:
            entry["test_sources"] = dict(job.sources)
        if job.ensemble:
            row = {k: _nan_none(v) for k, v in ensemble_row(job.ensemble).items()}
            entry["ensemble_holdout"] = {**row, "n_records": job.ensemble["n_records"],
                                         "single_fold_mean": job.ensemble["single_fold_mean"]}
        if job.pretrain_losses:
            entry["pretrain_valid_loss"] = dict(sorted(job.pretrain_losses))
        out["jobs"][job.name] = entry
    out["rankings"] = {name: [j.name for j in ranked] for name, ranked in rankings(jobs).items()}
    return out


def render(architecture: str, jobs: list[JobSummary], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(architecture, jobs), indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        columns = list(dict.fromkeys(c for job in jobs for c in job.columns))
        writer.writerow(["job", *columns, "challenge"])
        for job in jobs:
            for r in job.rows:
                writer.writerow([job.name, *[_num(r.get(c, "")) for c in columns], job.challenge])
        return buf.getvalue().rstrip("\n")
    return _render_table(architecture, jobs, markdown=fmt == "markdown")


def _job_lines(architecture: str, job: JobSummary, markdown: bool) -> list[str]:
    status = "" if not job.missing else f"  [incomplete: missing fold(s) {job.missing}]"
    lines = [f"{'### ' if markdown else ''}{architecture} / {job.name}{status}"]
    columns, source_of = job.columns, dict(job.sources)
    body = [[_fold_label(r["fold"], source_of), *[_fmt(r[c]) for c in columns[1:]]] for r in job.rows]
    if job.rows:
        body.append(["mean", *[_fmt(job.stat(c)[0]) for c in columns[1:]]])
        body.append(["std", *[_fmt(job.stat(c)[1]) for c in columns[1:]]])
        if job.naive:
            body.append(["naive", *[_fmt(job.stat(c, naive=True)[0]) for c in columns[1:]]])
    if job.ensemble:
        row = ensemble_row(job.ensemble)
        body.append([row["fold"], *[_fmt(row[c]) for c in columns[1:]]])
    if body:
        lines.extend(_grid(columns, body, markdown))
    if job.class_f1:
        per_class = job.mean_class_f1()
        lines.append("test F1 per class, mean over the folds where defined: "
                     + ", ".join(f"{c} {f1:.2f}" for c, (f1, _) in per_class.items()))
    if job.ensemble:
        lines.append(f"ens(HO): the {len(job.ensemble['folds'])} fold models averaged, scored on the "
                     f"{job.ensemble['n_records']} hold-out records (single folds there: "
                     f"{job.ensemble['single_fold_mean']:.3f} mean)")
    if job.pretrain_losses:
        lines.append(f"pre-training: validation loss per fold "
                     f"{', '.join(f'fold {k} {v:.4f}' for k, v in sorted(job.pretrain_losses))}")
    return lines + [""]


def _render_table(architecture: str, jobs: list[JobSummary], markdown: bool) -> str:
    lines = []
    for job in jobs:
        lines.extend(_job_lines(architecture, job, markdown))
    years = sorted({job.challenge for job in jobs if job.rows})
    metric = " / ".join(f"CinC {y} challenge metric" if track_for(y).multilabel else f"official CinC {y} test score"
                        for y in years) or "test score"
    lines.append(f"{architecture}: {metric} over folds (mean ± sample std)")
    for job in jobs:
        if job.rows:
            mean, std = job.stat("score")
            tag = "" if not job.missing else " (incomplete)"
            extra = f"naive {job.stat('score', naive=True)[0]:.3f}" if job.naive else \
                f"CinC {job.challenge}; AUROC {_fmt(job.stat('auroc')[0])}, AUPRC {_fmt(job.stat('auprc')[0])}"
            lines.append(f"  {job.name:<30} {mean:.3f} ± {_fmt_std(std)}  ({len(job.rows)} folds; {extra}){tag}")
        elif job.pretrain_losses:
            lines.append(f"  {job.name:<30} pre-training ({len(job.pretrain_losses)} folds)")
        else:
            lines.append(f"  {job.name:<30} no finished fold")
    for search, ranked in rankings(jobs).items():
        lines.append(f"search {search}: variants ranked by mean CV score")
        lines += [f"  {i}. {job.name:<40} {job.stat('score')[0]:.3f} ± {_fmt_std(job.stat('score')[1])} "
                  f"({len(job.rows)} folds{', incomplete' if job.missing else ''})" for i, job in enumerate(ranked, 1)]
    return "\n".join(lines)


def rankings(jobs: list[JobSummary]) -> dict[str, list[JobSummary]]:
    """Search variants (<job>__<values>) with results, per searched job, best mean score first."""
    groups: dict[str, list[JobSummary]] = {}
    for job in jobs:
        if "__" in job.name and job.rows:
            groups.setdefault(job.name.split("__")[0], []).append(job)
    return {name: sorted(group, key=lambda j: -j.stat("score")[0]) for name, group in groups.items()}


def _fold_label(fold, source_of: dict) -> str:
    return f"{fold} ({source_of[fold]})" if fold in source_of else str(fold)


def _grid(header: list[str], body: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *["| " + " | ".join(row) + " |" for row in body]]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return [fmt.format(*header), *[fmt.format(*row) for row in body]]


def summarize(log_dir: str | Path, architecture: str, fmt: str = "table", plot: bool = False) -> str:
    """Render the summary and write log/<architecture>/summary.json (with plot, each job's PNGs beside it)."""
    log_dir = Path(log_dir)
    jobs = collect(log_dir, architecture)
    write_json_atomic(log_dir / architecture / SUMMARY, to_json(architecture, jobs))
    text = render(architecture, jobs, fmt)
    if not plot:
        return text
    from orchestrator.logdir.plots import plot_report  # matplotlib is imported only when plotting

    report = plot_report(log_dir / architecture, [job.name for job in jobs])
    if fmt in ("csv", "json"):  # keep stdout machine-readable: the plot lines go to stderr
        print(report, file=sys.stderr)
        return text
    return f"{text}\n{report}"


def _fmt_std(std: float) -> str:
    return "n/a" if np.isnan(std) else f"{std:.3f}"


def _fmt(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.3f}"


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _nan_none(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def _num(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
