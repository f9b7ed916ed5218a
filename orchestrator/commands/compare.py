"""The `compare` command: does job B really beat job A on the same test records?

Two or more job folders (or ARCH/JOB names under the log folder) are compared only
when they share challenge, dataset, split and finished folds (orchestrator.logdir.pooled.Design):
otherwise their test records differ and a difference of scores means nothing, so the
command refuses and names what differs. For each pair (A, B) in the order given and
each metric the job's track compares (its score first: the official CinC 2017 score,
the challenge metric, PTB-XL's macro AUROC; then accuracy and per-class F1, or for
multi-label tracks AUROC or Fmax, AUPRC and the F-measure):
  - the per-fold differences B - A of the test scores;
  - the Wilcoxon signed-rank test on them (exact null for small n; with 5 folds the
    smallest two-sided p is 0.0625, so it can never reach 0.05 there);
  - the Nadeau-Bengio corrected resampled t-test (all r x k folds of a repeated split):
    the folds share training records, which the plain paired t-test ignores;
  - a paired bootstrap on the pooled test predictions (the same resampled records for
    both models): Delta with a percentile interval;
  - with more than two jobs, Holm's correction over the pairs, per metric and test.
The statistics are ecgcore.metrics.paired (scipy.stats, statsmodels) and
ecgcore.metrics.bootstrap; this module gathers the numbers and words a verdict that
claims no more than they show (orchestrator.commands.compare_render prints them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcore.data.splits import repeat_layout
from ecgcore.errors import ProjectError
from ecgcore.metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval, Pooled, paired_bootstrap
from ecgcore.metrics.paired import TestResult, corrected_t_test, holm, min_wilcoxon_p, wilcoxon_test
from orchestrator.logdir.pooled import Design, classify_folds, design, pooled_predictions
from orchestrator.logdir.reader import JobDir

ALPHA = 0.05
PRIMARY = "score"


@dataclass(frozen=True)
class CompareOptions:
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    level: float = DEFAULT_LEVEL
    per_class: bool = False  # multi-label: also every class's F1 (always for a single-label track's classes)


@dataclass(frozen=True)
class JobScores:
    """One job as compare needs it: fold scores per metric, record counts, pooled predictions."""

    label: str  # ARCH/JOB
    design: Design
    folds: dict[str, np.ndarray]  # metric -> test score per finished fold, in fold order
    n_train: float  # mean training records per fold (train + valid: both shape the kept model)
    n_test: float
    pooled: Pooled


@dataclass
class MetricComparison:
    metric: str
    folds: tuple[int, ...]  # the folds where both jobs have the metric
    mean_a: float
    mean_b: float
    deltas: np.ndarray  # per fold, B - A
    wilcoxon: TestResult
    corrected_t: TestResult
    bootstrap: Interval  # Delta of the pooled score and its interval
    holm: dict[str, float] = field(default_factory=dict)  # test -> Holm-adjusted p (more than two jobs)

    def p(self, test: str) -> float:
        """The p-value to judge by: Holm's where the comparison is one of several pairs."""
        return self.holm.get(test, getattr(self, test).p_value)


@dataclass
class PairComparison:
    a: str
    b: str
    metrics: dict[str, MetricComparison]
    verdict: str = ""


def resolve_job(log_dir: Path, name: str) -> JobDir:
    """A job folder given as a path, or as ARCH/JOB under the log folder."""
    for candidate in (Path(name), Path(log_dir) / name):
        if candidate.is_dir() and any(candidate.glob("fold*")):
            return JobDir(candidate.resolve())
    raise ProjectError(f"{name}: neither a job folder nor ARCH/JOB under {log_dir} (a folder with fold<k>/ folders)")


def job_scores(job: JobDir, per_class: bool) -> JobScores:
    folds = classify_folds(job.folds())
    if not folds:
        raise ProjectError(f"{job.path}: no finished fold with test scores")
    track = folds[-1].track()
    reports = [f.scores()["test"] for f in folds]
    metrics = list(track.compare_columns)
    if track.multilabel and per_class:
        metrics += [f"F1_{c}" for c in folds[-1].scores()["classes"]]
    table = {m: np.array([_fold_value(r, m) for r in reports], dtype=float) for m in metrics}
    n_train = np.mean([f.scores()["train"]["n"] + f.scores()["valid"]["n"] for f in folds])
    n_test = np.mean([r["n"] for r in reports])
    return JobScores(f"{job.architecture}/{job.name}", design(folds), table, float(n_train), float(n_test),
                     pooled_predictions(folds))


def _fold_value(report: dict, metric: str) -> float:
    value = report["f1"].get(metric[3:]) if metric.startswith("F1_") else report.get(metric)
    return float("nan") if value is None else float(value)


def check_comparable(jobs: list[JobScores]) -> None:
    first = jobs[0]
    for other in jobs[1:]:
        differences = first.design.differences(other.design)
        if differences:
            raise ProjectError(f"cannot compare {first.label} with {other.label}: {'; '.join(differences)}. "
                               "A comparison is only meaningful on the same test records: the same dataset, "
                               "split and folds")


def compare_jobs(jobs: list[JobScores], opts: CompareOptions) -> list[PairComparison]:
    check_comparable(jobs)
    pairs = [_pair(a, b, opts) for a, b in itertools.combinations(jobs, 2)]
    if len(pairs) > 1:
        _holm(pairs)
    repeats, _ = repeat_layout(jobs[0].design.split)
    for pair in pairs:
        pair.verdict = verdict(pair, opts.level, repeats=repeats)
    return pairs



def _pair(a: JobScores, b: JobScores, opts: CompareOptions) -> PairComparison:
    try:
        deltas = paired_bootstrap(a.pooled, b.pooled, n_resamples=opts.resamples, seed=opts.seed, level=opts.level)
    except ValueError as exc:  # e.g. a fold's predictions.csv lists other records than the other job's
        raise ProjectError(f"cannot compare {a.label} with {b.label}: {exc}") from None
    metrics = {}
    for metric in a.folds:
        fa, fb = a.folds[metric], b.folds[metric]
        keep = ~(np.isnan(fa) | np.isnan(fb))  # a class without positives in a fold has no F1 there
        if keep.sum() < 2 or metric not in deltas:
            continue
        fa, fb = fa[keep], fb[keep]
        metrics[metric] = MetricComparison(
            metric, tuple(np.asarray(a.design.folds)[keep].tolist()), float(fa.mean()), float(fb.mean()), fb - fa,
            wilcoxon_test(fa, fb), corrected_t_test(fa, fb, n_train=a.n_train, n_test=a.n_test), deltas[metric])
    return PairComparison(a.label, b.label, metrics)


def _holm(pairs: list[PairComparison]) -> None:
    """Holm over the pairs, per metric and per test: the family is 'this metric, every pair'."""
    for metric in pairs[0].metrics:
        having = [p for p in pairs if metric in p.metrics]
        for test in ("wilcoxon", "corrected_t"):
            adjusted = holm([getattr(p.metrics[metric], test).p_value for p in having])
            for pair, value in zip(having, adjusted, strict=True):
                pair.metrics[metric].holm[test] = value


def verdict(pair: PairComparison, level: float = DEFAULT_LEVEL, alpha: float = ALPHA, repeats: int = 1) -> str:
    """One plain sentence on the primary score that never claims more than the numbers show."""
    m = pair.metrics.get(PRIMARY)
    if m is None:
        return f"{pair.b} vs {pair.a}: too few folds with a score to compare"
    delta = ci = m.bootstrap
    adjusted = " (Holm-adjusted)" if m.holm else ""
    numbers = (f"pooled Δ {delta.point:+.3f}, {level:.0%} CI [{ci.low:+.3f}, {ci.high:+.3f}]; "
               f"corrected t-test p = {m.p('corrected_t'):.3f}{adjusted}; "
               f"mean fold Δ {np.mean(m.deltas):+.3f}")
    excludes = not (ci.low <= 0 <= ci.high)
    significant = m.p("corrected_t") < alpha
    better, worse = (pair.b, pair.a) if delta.point > 0 else (pair.a, pair.b)
    if excludes and significant and np.sign(np.mean(m.deltas)) == np.sign(delta.point):
        text = f"{better} scores higher than {worse} ({numbers}): the corrected t-test over the folds and the " \
               f"paired bootstrap over the records both reject 'no difference' at α = {alpha}"
    elif excludes:
        text = f"the paired bootstrap interval excludes 0 ({numbers}) but the corrected t-test over the folds " \
               f"does not reject at α = {alpha}: these test records favour {better}, but the spread between " \
               "retrained fold models leaves the difference within chance; not conclusive"
    elif significant:
        text = f"the corrected t-test rejects at α = {alpha} ({numbers}) but the paired bootstrap interval " \
               "contains 0: not conclusive"
    else:
        text = f"no evidence of a difference ({numbers})"
    n = len(m.deltas)
    if repeats > 1:
        text += f"; the Wilcoxon test (p = {m.p('wilcoxon'):.3f}) treats the {n} folds of {repeats} repeats as " \
                "independent, which they are not (every repeat tests the same records): read the corrected t-test"
    elif min_wilcoxon_p(n) >= alpha:
        text += f"; the Wilcoxon test cannot reach p < {alpha} with {n} folds (smallest two-sided p " \
                f"{min_wilcoxon_p(n):.4g})"
    return f"{pair.b} vs {pair.a}: {text}"
