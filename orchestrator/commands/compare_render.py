"""What `compare` prints: a table per pair of jobs, per-fold differences, a verdict, or JSON.

orchestrator.commands.compare computes; this file only words and lays out its
results, and is the `compare` command's entry (`compare(log_dir, names, ...)`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgcore.errors import ProjectError
from orchestrator.commands.compare import (
    ALPHA,
    PRIMARY,
    CompareOptions,
    JobScores,
    MetricComparison,
    PairComparison,
    compare_jobs,
    job_scores,
    resolve_job,
)
from orchestrator.commands.summary_table import grid
from orchestrator.logdir.reader import json_value

HEADER = ["metric", "mean A", "mean B", "Δ folds", "B>A", "Wilcoxon p", "corr. t p", "pooled Δ", "CI"]


def compare(log_dir: str | Path, names: list[str], opts: CompareOptions = CompareOptions(),
            fmt: str = "table") -> str:
    """The comparison of the named jobs as a table (fmt 'table') or JSON ('json')."""
    if len(names) < 2:
        raise ProjectError("compare needs at least two jobs")
    jobs = [job_scores(resolve_job(Path(log_dir), name), opts.per_class) for name in names]
    pairs = compare_jobs(jobs, opts)
    if fmt == "json":
        return json.dumps(to_json(jobs, pairs, opts), indent=2)
    return render(jobs, pairs, opts)


def render(jobs: list[JobScores], pairs: list[PairComparison], opts: CompareOptions) -> str:
    d = jobs[0].design
    lines = [f"{len(jobs)} jobs on the same {len(d.folds)} test folds of {d.split} ({d.data_dir}, "
             f"{len(set(jobs[0].pooled.records))} records); Δ = B - A; α = {ALPHA}"]
    if len(pairs) > 1:
        lines.append(f"{len(pairs)} pairs: p-values in brackets are Holm-adjusted over the pairs, per metric")
    for pair in pairs:
        lines += ["", f"A = {pair.a}, B = {pair.b}"]
        lines += grid(HEADER, [metric_row(m, len(pairs) > 1) for m in pair.metrics.values()], first_left=True)
        primary = pair.metrics.get(PRIMARY)
        if primary is not None:
            lines.append(f"per-fold Δ {PRIMARY}: " + ", ".join(
                f"fold{k} {v:+.3f}" for k, v in zip(primary.folds, primary.deltas, strict=True)))
        lines.append(pair.verdict)
    lines += ["", f"pooled Δ: the metric on the pooled test predictions of B minus A's, with a {opts.level:.0%} "
              f"percentile interval from {opts.resamples} paired bootstrap resamples of the records "
              f"(stratified by class, seed {opts.seed}). corr. t: Nadeau-Bengio corrected resampled t-test "
              f"(n_test/n_train = {jobs[0].n_test:.0f}/{jobs[0].n_train:.0f}). Wilcoxon: signed-rank test on the "
              "fold differences."]
    return "\n".join(lines)


def metric_row(m: MetricComparison, adjusted: bool) -> list[str]:
    wins = int(np.sum(m.deltas > 0))
    return [m.metric, f"{m.mean_a:.3f}", f"{m.mean_b:.3f}", f"{np.mean(m.deltas):+.3f}", f"{wins}/{len(m.deltas)}",
            _p(m, "wilcoxon", adjusted), _p(m, "corrected_t", adjusted), _signed(m.bootstrap.point),
            f"[{_signed(m.bootstrap.low)}, {_signed(m.bootstrap.high)}]"]


def _p(m: MetricComparison, test: str, adjusted: bool) -> str:
    raw = f"{getattr(m, test).p_value:.4f}"
    return f"{raw} ({m.holm[test]:.4f})" if adjusted and test in m.holm else raw


def _signed(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:+.3f}"


def to_json(jobs: list[JobScores], pairs: list[PairComparison], opts: CompareOptions) -> dict:
    d = jobs[0].design
    return {
        "design": {"track": d.track, "data_dir": d.data_dir, "split": d.split, "folds": list(d.folds),
                   "n_records": len(set(jobs[0].pooled.records))},
        "jobs": [{"job": j.label, "n_train": j.n_train, "n_test": j.n_test,
                  "fold_scores": {m: _list(v) for m, v in j.folds.items()}} for j in jobs],
        "settings": {"resamples": opts.resamples, "seed": opts.seed, "level": opts.level, "alpha": ALPHA},
        "pairs": [{"a": p.a, "b": p.b, "verdict": p.verdict,
                   "metrics": {name: _metric_json(m) for name, m in p.metrics.items()}} for p in pairs],
    }


def _metric_json(m: MetricComparison) -> dict:
    def test(result) -> dict:
        return {"statistic": json_value(result.statistic), "p": json_value(result.p_value), "method": result.method,
                "n": result.n, "note": result.note}

    return {"folds": list(m.folds), "mean_a": m.mean_a, "mean_b": m.mean_b, "fold_deltas": _list(m.deltas),
            "wilcoxon": test(m.wilcoxon), "corrected_t": test(m.corrected_t),
            "holm": {k: json_value(v) for k, v in m.holm.items()},
            "bootstrap": {"delta": json_value(m.bootstrap.point), "low": json_value(m.bootstrap.low),
                          "high": json_value(m.bootstrap.high)}}


def _list(values) -> list:
    return [json_value(float(v)) for v in values]
