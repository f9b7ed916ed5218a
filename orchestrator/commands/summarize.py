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
their validation loss. Jobs of a multi-label track (the CinC 2020/2021 12-lead
challenges, PTB-XL) show the track's score, macro AUROC, AUPRC, F-measure and accuracy per
fold (the always-sinus classifier scores 0 by the metric's definition, so
there is no naive row), the test source of leave-source-out folds, and the
per-class F1 averaged over the folds. Every classification job also gets
the scores of its pooled test predictions (all folds together) with
bootstrap percentile intervals (orchestrator.logdir.pooled, 1,000
stratified resamples of the records by default, seeded): a "pooled" and a
"95% CI" row under the folds, the interval after the job's mean line, and
"bootstrap" in summary.json; the csv gets <column>_pooled, _ci_low and
_ci_high columns after the old ones. A repeated split
(split_<folds>_<tv>_<seed>_r<R>) also gets one mean row per repeat. Also writes
log/<architecture>/summary.json, and with plot=True each job's learning
curves and test confusion matrix beside it (orchestrator.logdir.plots).

A search (variants named <job>__<values>, orchestrator.config.search) may have
hundreds of variants, so the table and markdown formats stay one screen by
default: the jobs that are not variants are shown as above, each search as
its ranked variants (the best TOP_VARIANTS by mean CV score, mean ± std, folds),
with a note that the top of a search scored on the same test folds is
optimistic (the winner's curse) and the top variant's hold-out score where
`ensemble` has scored it (else whether the split has a hold-out part to
confirm it on); full=True (`--all`) adds every variant's table and rank. The
bootstrap intervals are what costs (about 20 ms a job): in the one-screen view
they are computed for the jobs that are not variants and for the top variant
of each search only; the other variants get "bootstrap": null and a
bootstrap_note in summary.json. full=True, csv and json compute every job's.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ecgcore.data.splits import repeat_layout
from ecgcore.errors import ProjectError
from ecgcore.metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from ecgcore.tracks import DEFAULT_TRACK, open_track
from orchestrator.commands.summary_table import render_table
from orchestrator.logdir.pooled import JobIntervals, classify_folds, job_intervals
from orchestrator.logdir.reader import (
    PLACEMENT_KEYS,
    SUMMARY,
    JobDir,
    architectures,
    job_dirs,
    json_value,
    write_json_atomic,
)


@dataclass(frozen=True)
class JobSummary:
    name: str
    rows: list[dict]
    expected: list[int]
    naive: list[dict]
    ensemble: dict | None = None
    pretrain_losses: tuple[tuple[int, float], ...] = ()  # (fold, best validation loss)
    track: object = None  # the job's ecgcore.tracks track, as its last fold recorded it
    class_f1: tuple[dict, ...] = ()  # multi-label: per fold, class -> test F1 (None: undefined)
    sources: tuple[tuple[int, str], ...] = ()  # leave-source-out: (fold, test source)
    bootstrap: JobIntervals | None = None
    bootstrap_note: str = ""  # why there are no intervals (e.g. a fold without predictions.csv)
    folds_per_repeat: int = 0  # a repeated split's folds per repeat; 0: not repeated
    split: str = ""  # the split its last fold recorded
    _stats: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # stat's results

    @property
    def variant(self) -> bool:
        """Whether the job is a variant of a search (<job>__<values>)."""
        return "__" in self.name

    @property
    def multilabel(self) -> bool:
        return self.track.multilabel

    @property
    def columns(self) -> list[str]:
        return list(self.track.columns)

    @property
    def missing(self) -> list[int]:
        done = {r["fold"] for r in self.rows} | {fold for fold, _ in self.pretrain_losses}
        return [k for k in self.expected if k not in done]

    def stat(self, column: str, naive: bool = False) -> tuple[float, float]:
        """(mean, sample std) of a column over the folds (naive: of the naive rows); NaN where undefined."""
        if (column, naive) not in self._stats:
            self._stats[column, naive] = self._stat(column, naive)
        return self._stats[column, naive]

    def _stat(self, column: str, naive: bool) -> tuple[float, float]:
        values = np.array([r[column] for r in (self.naive if naive else self.rows)], dtype=float)
        values = values[~np.isnan(values)]  # a multi-label metric is undefined on a fold without positives
        if values.size == 0:
            return float("nan"), float("nan")
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        return float(values.mean()), std

    def repeat_means(self, column: str) -> list[tuple[int, float]]:
        """(repeat, mean over its finished folds) of a repeated split; [] otherwise."""
        if not self.folds_per_repeat:
            return []
        groups: dict[int, list[float]] = {}
        for r in self.rows:
            groups.setdefault(r["fold"] // self.folds_per_repeat, []).append(r[column])
        return [(i, float(np.nanmean(v))) for i, v in sorted(groups.items())]

    def ensemble_row(self) -> dict:
        return self.track.summary_row("ens(HO)", self.ensemble["ensemble"])

    def interval(self, column: str):
        """The bootstrap Interval of a column, None where there is none."""
        return self.bootstrap.intervals.get(column) if self.bootstrap else None

    def mean_class_f1(self) -> dict[str, tuple[float, int]]:
        """Per class: the mean test F1 over the folds where it is defined, and in how many folds."""
        out = {}
        for cls in (self.class_f1[0] if self.class_f1 else {}):
            values = [f[cls] for f in self.class_f1 if f.get(cls) is not None]
            if values:
                out[cls] = (float(np.mean(values)), len(values))
        return out


@dataclass(frozen=True)
class Bootstrap:
    """How summarize resamples: resamples=0 turns the intervals off."""

    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    level: float = DEFAULT_LEVEL


def collect(log_dir: Path, architecture: str, bootstrap: Bootstrap = Bootstrap(),
            every_interval: bool = True) -> list[JobSummary]:
    """Every job of the architecture with a result; every_interval=False: the bootstrap intervals only of
    the jobs that are not search variants and of each search's top variant (the one-screen view)."""
    if not (log_dir / architecture).is_dir():
        known = architectures(log_dir)
        raise ProjectError(f"no results for {architecture!r} under {log_dir}"
                           + (f"; architectures with results: {', '.join(known)}" if known else ""))
    if every_interval or bootstrap.resamples <= 0:
        jobs = [job_summary(job_dir, bootstrap) for job_dir in job_dirs(log_dir, architecture)]
        return [job for job in jobs if job is not None]
    found = [(d, job_summary(d, bootstrap if "__" not in d.name else Bootstrap(resamples=0)))
             for d in job_dirs(log_dir, architecture)]
    top = {ranked[0].name for ranked in rankings([job for _, job in found if job is not None]).values()}
    return [_with_intervals(job, d, bootstrap) if job.name in top else
            replace(job, bootstrap_note=_NOT_COMPUTED) if job.variant and job.rows else job
            for d, job in found if job is not None]


_NOT_COMPUTED = ("bootstrap intervals not computed: a search variant below the top one "
                 "(summarize --all, --format json or csv computes every job's)")


def _with_intervals(job: JobSummary, job_dir: JobDir, bootstrap: Bootstrap) -> JobSummary:
    intervals, note = job_intervals(classify_folds(job_dir.folds()), bootstrap.resamples, bootstrap.seed,
                                    bootstrap.level)
    return replace(job, bootstrap=intervals, bootstrap_note=note)


def job_summary(job_dir: JobDir, bootstrap: Bootstrap = Bootstrap()) -> JobSummary | None:
    rows, naive, losses, class_f1, sources = [], [], [], [], []
    folds = job_dir.folds()
    track = folds[-1].track() if folds else open_track(DEFAULT_TRACK)
    for fold in folds:
        scores = fold.scores()
        if scores is None:
            continue
        if scores.get("kind", "classify") == "pretrain":
            losses.append((scores["fold"], scores["valid"]["loss"]))
            continue
        rows.append({**track.summary_row(scores["fold"], scores["test"]), **_placement(scores)})
        if track.multilabel:
            class_f1.append(scores["test"]["f1"])
            if scores["split"].startswith("sources_") and scores.get("test_sources"):
                sources.append((scores["fold"], "+".join(scores["test_sources"])))
        else:
            naive.append(track.naive_row(scores))
    expected = job_dir.expected_folds()
    if not (rows or expected):
        return None
    by_fold = operator.itemgetter("fold")
    intervals, note = job_intervals(classify_folds(folds), bootstrap.resamples, bootstrap.seed, bootstrap.level) \
        if rows and bootstrap.resamples > 0 else (None, "")
    split = folds[-1].recorded("split") if folds else None
    per_repeat = repeat_layout(split)[1] if folds else 0
    return JobSummary(job_dir.name, sorted(rows, key=by_fold), expected, sorted(naive, key=by_fold),
                      job_dir.ensemble(), tuple(losses), track, tuple(class_f1), tuple(sorted(sources)),
                      intervals, note, per_repeat, split or "")


def _placement(scores: dict) -> dict:
    """The GPUs the fold was given (json only: the table and csv keep their columns); {} before they were kept."""
    return {k: scores[k] for k in PLACEMENT_KEYS if k in scores}


def to_json(architecture: str, jobs: list[JobSummary]) -> dict:
    out = {"architecture": architecture, "jobs": {}}
    for job in jobs:
        entry = {"challenge": job.track.label, "track": job.track.name,
                 "folds": [{k: json_value(v) for k, v in r.items()} for r in job.rows],
                 "complete": not job.missing, "missing_folds": job.missing}
        if job.rows:
            entry["mean"] = {c: json_value(job.stat(c)[0]) for c in job.columns[1:]}
            entry["std"] = {c: json_value(job.stat(c)[1]) for c in job.columns[1:]}
        if job.naive:
            entry["naive"] = {"majority_class": sorted({r["majority"] for r in job.naive}),
                              "mean": {c: job.stat(c, naive=True)[0] for c in job.columns[1:]}}
        if job.class_f1:
            entry["class_f1_mean"] = {c: {"f1": f1, "folds": n} for c, (f1, n) in job.mean_class_f1().items()}
        if job.sources:
            entry["test_sources"] = dict(job.sources)
        if job.rows:
            entry["bootstrap"] = job.bootstrap.to_json() if job.bootstrap else None
            if job.bootstrap_note:
                entry["bootstrap_note"] = job.bootstrap_note
        if job.folds_per_repeat:
            entry["repeats"] = {"folds_per_repeat": job.folds_per_repeat,
                                "mean": {c: dict(job.repeat_means(c)) for c in job.columns[1:]}}
        if job.ensemble:
            row = {k: json_value(v) for k, v in job.ensemble_row().items()}
            entry["ensemble_holdout"] = {**row, "n_records": job.ensemble["n_records"],
                                         "single_fold_mean": job.ensemble["single_fold_mean"]}
        if job.pretrain_losses:
            entry["pretrain_valid_loss"] = dict(sorted(job.pretrain_losses))
        out["jobs"][job.name] = entry
    out["rankings"] = {name: [j.name for j in ranked] for name, ranked in rankings(jobs).items()}
    return out


def render(architecture: str, jobs: list[JobSummary], fmt: str, full: bool = True) -> str:
    """The summary in a format; full=False: the table and markdown show each search as its top variants."""
    if fmt == "json":
        return json.dumps(to_json(architecture, jobs), indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        columns = list(dict.fromkeys(c for job in jobs for c in job.columns))
        # The intervals are new columns after the old ones, so readers of the old columns are unaffected.
        extra = [f"{c}_{part}" for c in columns[1:] for part in ("pooled", "ci_low", "ci_high")]
        writer.writerow(["job", *columns, "challenge", *extra])
        for job in jobs:
            intervals = [_interval_cells(job.interval(c)) for c in columns[1:]]
            for r in job.rows:
                writer.writerow([job.name, *[_num(r.get(c, "")) for c in columns], job.track.label,
                                 *[cell for cells in intervals for cell in cells]])
        return buf.getvalue().rstrip("\n")
    return render_table(architecture, jobs, rankings(jobs), markdown=fmt == "markdown", full=full)


def rankings(jobs: list[JobSummary]) -> dict[str, list[JobSummary]]:
    """Search variants (<job>__<values>) with results, per searched job, best mean score first."""
    groups: dict[str, list[JobSummary]] = {}
    for job in jobs:
        if "__" in job.name and job.rows:
            groups.setdefault(job.name.split("__")[0], []).append(job)
    return {name: sorted(group, key=_rank_key) for name, group in groups.items()}


def _rank_key(job: JobSummary) -> tuple[bool, float, str]:
    """Best mean score first; a variant whose mean is undefined last; ties by name."""
    mean = job.stat("score")[0]
    return np.isnan(mean), -mean if not np.isnan(mean) else 0.0, job.name


def summarize(log_dir: str | Path, architecture: str, fmt: str = "table", plot: bool = False,
              bootstrap: Bootstrap = Bootstrap(), full: bool = False, plot_dir: str | Path | None = None) -> str:
    """Render the summary and write log/<architecture>/summary.json (with plot, each job's PNGs beside it, or
    in plot_dir).

    full=False (the default): the table and markdown formats show each search as its ranked top variants
    (summary_table.TOP_VARIANTS), and the bootstrap intervals are computed for the jobs that are not
    search variants and for each search's top variant only; full=True: every variant's table, rank and
    intervals. csv and json always hold every job with its intervals (they imply full).
    """
    log_dir = Path(log_dir)
    full = full or fmt in ("csv", "json")
    jobs = collect(log_dir, architecture, bootstrap, every_interval=full)
    write_json_atomic(log_dir / architecture / SUMMARY, to_json(architecture, jobs))
    text = render(architecture, jobs, fmt, full)
    if not plot:
        return text
    from orchestrator.logdir.plots import plot_report  # matplotlib is imported only when plotting

    out = None if plot_dir is None else Path(plot_dir)
    report = plot_report(log_dir / architecture, [job.name for job in jobs], out)
    if fmt in ("csv", "json"):  # keep stdout machine-readable: the plot lines go to stderr
        print(report, file=sys.stderr)
        return text
    return f"{text}\n{report}"


def _interval_cells(interval) -> list[str]:
    if interval is None:
        return ["", "", ""]
    return [_num(_nn(interval.point)), _num(_nn(interval.low)), _num(_nn(interval.high))]


def _nn(value: float):
    return "" if np.isnan(value) else float(value)


def _num(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
