"""The text and markdown tables of `summarize` (and the job tables the HTML report reuses).

One table per job under its columns: a row per fold, mean and sample std, a mean per
repeat of a repeated split, the naive row, the pooled scores with their bootstrap
interval, the hold-out ensemble; then one "mean ± std" line per job and the ranking
of search variants. orchestrator.commands.summarize gathers the numbers.

A search's variants are ranked by mean CV score, with a note that the top of the
ranking is optimistic (the best of many noisy means on the same test folds: the
winner's curse) and the top variant's hold-out score where `ensemble` scored it,
else whether its split has a hold-out part to confirm it on. The one-screen view
(full=False) leaves out the variants' own tables and mean lines and ranks only the
best TOP_VARIANTS; full=True shows every one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ecgcore.data.splits import has_holdout

NAMES = {"auroc": "AUROC", "auprc": "AUPRC", "fmax": "Fmax"}  # the line per job names its second and third metric

TOP_VARIANTS = 20  # the variants of a search ranked in the one-screen view

if TYPE_CHECKING:
    from orchestrator.commands.summarize import JobSummary


def job_table(job: JobSummary) -> list[list[str]]:
    """The rows of a job's table under job.columns: folds, mean, std, per repeat, naive, pooled, CI, ens(HO)."""
    columns, source_of = job.columns, dict(job.sources)
    body = [[_fold_label(r["fold"], source_of), *[_fmt(r[c]) for c in columns[1:]]] for r in job.rows]
    if job.rows:
        body.append(["mean", *[_fmt(job.stat(c)[0]) for c in columns[1:]]])
        body.append(["std", *[_fmt(job.stat(c)[1]) for c in columns[1:]]])
        body += [[f"mean r{i}", *[_fmt(dict(job.repeat_means(c))[i]) for c in columns[1:]]]
                 for i, _ in job.repeat_means("score")]
        if job.naive:
            body.append(["naive", *[_fmt(job.stat(c, naive=True)[0]) for c in columns[1:]]])
        if job.bootstrap:
            body.append(["pooled", *[_fmt(_point(job.interval(c))) for c in columns[1:]]])
            body.append([f"{job.bootstrap.level:.0%} CI", *[_fmt_ci(job.interval(c)) for c in columns[1:]]])
    if job.ensemble:
        row = job.ensemble_row()
        body.append([row["fold"], *[_fmt(row[c]) for c in columns[1:]]])
    return body


def _job_lines(architecture: str, job: JobSummary, markdown: bool) -> list[str]:
    status = "" if not job.missing else f"  [incomplete: missing fold(s) {job.missing}]"
    lines = [f"{'### ' if markdown else ''}{architecture} / {job.name}{status}"]
    columns, body = job.columns, job_table(job)
    if body:
        lines.extend(grid(columns, body, markdown))
    if job.class_f1:
        per_class = job.mean_class_f1()
        lines.append("test F1 per class, mean over the folds where defined: "
                     + ", ".join(f"{c} {f1:.2f}" for c, (f1, _) in per_class.items()))
        if job.bootstrap:
            lines.append("test F1 per class, pooled folds [interval]: " + ", ".join(
                f"{c} {_fmt(_point(job.interval(f'F1_{c}')))} {_fmt_ci(job.interval(f'F1_{c}'))}" for c in per_class))
    if job.bootstrap:
        b = job.bootstrap
        lines.append(f"pooled: the {b.n_rows} test predictions of the folds together ({b.n_records} records); "
                     f"{b.level:.0%} CI: percentile bootstrap, {b.resamples} resamples of the records "
                     f"stratified by class, seed {b.seed}")
    elif job.bootstrap_note:
        lines.append(job.bootstrap_note)
    if job.ensemble:
        lines.append(f"ens(HO): the {len(job.ensemble['folds'])} fold models averaged, scored on the "
                     f"{job.ensemble['n_records']} hold-out records (single folds there: "
                     f"{job.ensemble['single_fold_mean']:.3f} mean)")
    if job.pretrain_losses:
        lines.append(f"pre-training: validation loss per fold "
                     f"{', '.join(f'fold {k} {v:.4f}' for k, v in sorted(job.pretrain_losses))}")
    return lines + [""]


def render_table(architecture: str, jobs: list[JobSummary], ranked: dict, markdown: bool, full: bool = True) -> str:
    """The table and markdown formats; ranked: summarize.rankings(jobs).

    full=False: search variants get neither a table nor a mean line of their own, only a rank among the
    best TOP_VARIANTS of their search.
    """
    shown = jobs if full else [job for job in jobs if not job.variant]
    lines = []
    for job in shown:
        lines.extend(_job_lines(architecture, job, markdown))
    if shown:
        labels = {job.track.score_label: str(job.track.label) for job in jobs if job.rows}
        metric = " / ".join(sorted(labels, key=labels.get)) or "test score"
        lines.append(f"{architecture}: {metric} over folds (mean ± sample std)")
        lines += [_mean_line(job) for job in shown]
    unfinished: dict[str, int] = {}
    for job in jobs:
        if job.variant and not job.rows:
            unfinished[job.name.split("__")[0]] = unfinished.get(job.name.split("__")[0], 0) + 1
    for search, variants in ranked.items():
        lines += search_lines(architecture, search, variants, unfinished.get(search, 0), full)
    return "\n".join(lines)


def _mean_line(job: JobSummary) -> str:
    if job.rows:
        mean, std = job.stat("score")
        tag = "" if not job.missing else " (incomplete)"
        extra = f"naive {job.stat('score', naive=True)[0]:.3f}" if job.naive else f"{job.track.title}; " + \
            ", ".join(f"{NAMES.get(c, c)} {_fmt(job.stat(c)[0])}" for c in job.columns[2:4])
        return f"  {job.name:<30} {mean:.3f} ± {_fmt_std(std)}  ({len(job.rows)} folds; {extra}){tag}{_pooled(job)}"
    if job.pretrain_losses:
        return f"  {job.name:<30} pre-training ({len(job.pretrain_losses)} folds)"
    return f"  {job.name:<30} no finished fold"


def search_lines(architecture: str, search: str, variants: list[JobSummary], unfinished: int = 0,
                 full: bool = True) -> list[str]:
    """A search's variants ranked (best first; full=False: the top TOP_VARIANTS), the optimism of its top
    score and the top variant's hold-out score."""
    listed = variants if full else variants[:TOP_VARIANTS]
    lines = [f"search {search}: variants ranked by mean CV score ({len(variants)} variants with a finished fold; "
             f"mean ± sample std over folds)"]
    width = len(str(len(listed)))
    lines += [f"  {i:>{width}}. {job.name:<40} {job.stat('score')[0]:.3f} ± {_fmt_std(job.stat('score')[1])} "
              f"({len(job.rows)} folds{', incomplete' if job.missing else ''}){_pooled(job)}"
              for i, job in enumerate(listed, 1)]
    if len(variants) > len(listed):
        lines.append(f"  ... {len(variants) - len(listed)} more variants: --all lists them")
    if unfinished:
        lines.append(f"  {unfinished} variant(s) without a finished fold yet")
    if len(variants) > 1:
        lines += [f"  The top score is optimistic: it is the best of {len(variants)} variants' means on the same "
                  "test folds,", "  and the maximum of many noisy means is biased upwards (the winner's curse)."]
    return lines + _holdout_line(architecture, variants[0])


def _holdout_line(architecture: str, top: JobSummary) -> list[str]:
    """The top variant on the split's hold-out part (records no variant was selected on), or why there is none."""
    if top.ensemble:
        e = top.ensemble
        return [f"  hold-out: the top variant {top.name} on the {e['n_records']} hold-out records (`ensemble`):",
                f"  single folds {e['single_fold_mean']:.3f} mean, its {len(e['folds'])} fold models together "
                f"{_fmt(e['ensemble']['score'])}"]
    if has_holdout(top.split):
        return [f"  hold-out: the split {top.split} has a hold-out part, not scored yet: `ensemble "
                f"<log>/{architecture}/{top.name}`", "  confirms the top score on records no variant was selected on"]
    return [f"  the split {top.split or '(not recorded)'} has no hold-out part, so the top score is not confirmed "
            "on other records", "  (a split named ..._holdout keeps records aside for `ensemble`)"]


def _pooled(job: JobSummary) -> str:
    pooled = job.interval("score")
    return f"  pooled {_fmt(pooled.point)} {_fmt_ci(pooled)}" if pooled else ""


def _fold_label(fold, source_of: dict) -> str:
    return f"{fold} ({source_of[fold]})" if fold in source_of else str(fold)


def grid(header: list[str], body: list[list[str]], markdown: bool = False, first_left: bool = False) -> list[str]:
    """A table as text (columns right-aligned; first_left: the first column left-aligned) or as markdown."""
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *["| " + " | ".join(row) + " |" for row in body]]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if first_left and not i else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), *[fmt.format(*row) for row in body]]


def _point(interval) -> float:
    return float("nan") if interval is None else interval.point


def _fmt_ci(interval) -> str:
    """An interval as '[0.49, 0.58]'; 'n/a' where there is none or it is undefined."""
    if interval is None or np.isnan(interval.low) or np.isnan(interval.high):
        return "n/a"
    return f"[{interval.low:.2f}, {interval.high:.2f}]"


def _fmt_std(std: float) -> str:
    return "n/a" if np.isnan(std) else f"{std:.3f}"


def _fmt(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.3f}"
