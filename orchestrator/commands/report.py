"""The `report` command: one self-contained HTML file of jobs' results, for a reader without the tool.

For the named architectures (every job of each), job folders or ARCH/JOB names it writes
one HTML file: each job's cross-validation table with the pooled scores, their bootstrap
intervals and the naive row (summarize's table); the comparisons of the jobs that share
dataset, split and folds (compare's tables, a forest plot of the paired differences and
the verdicts); each job's learning curves and test confusion matrix (the plots of
`summarize --plot`); and the provenance of every job (commits, package versions, host,
data folder and signature). Images are embedded as data URIs and there is no script
(orchestrator.report.html), so the file reads offline, on a phone and in print. With a
screenshot path the page is also rendered by headless Chromium (orchestrator.report.browser).
"""

from __future__ import annotations

import datetime
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ecgcore.errors import ProjectError
from ecgcore.metrics.bootstrap import DEFAULT_RESAMPLES
from orchestrator.commands.compare import CompareOptions, PairComparison, compare_jobs, job_scores
from orchestrator.commands.compare_render import HEADER, metric_row
from orchestrator.commands.summarize import Bootstrap, JobSummary, job_summary
from orchestrator.commands.summary_table import job_table
from orchestrator.logdir.pooled import Design, classify_folds, design
from orchestrator.logdir.reader import JobDir, job_dirs
from orchestrator.report import html


@dataclass(frozen=True)
class ReportOptions:
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    screenshot: str | None = None


@dataclass(frozen=True)
class Entry:
    """One job in the report: its folder and its summary."""

    job: JobDir
    summary: JobSummary

    @property
    def label(self) -> str:
        return f"{self.job.architecture}/{self.job.name}"


def resolve_targets(log_dir: Path, targets: list[str]) -> list[JobDir]:
    """Job folders from architecture names, job folders and ARCH/JOB names, in the order given, once each."""
    found: dict[Path, JobDir] = {}
    for target in targets:
        candidates = [Path(target), log_dir / target]
        job = next((c for c in candidates if c.is_dir() and any(c.glob("fold*"))), None)
        if job is not None:
            found.setdefault(job.resolve(), JobDir(job.resolve()))
        elif (log_dir / target).is_dir():
            for j in job_dirs(log_dir, target):
                found.setdefault(j.path.resolve(), JobDir(j.path.resolve()))
        else:
            raise ProjectError(f"{target}: not an architecture under {log_dir}, a job folder or ARCH/JOB")
    return list(found.values())


def report(log_dir: str | Path, targets: list[str], out: str | Path, opts: ReportOptions = ReportOptions()) -> str:
    """Write the HTML report (and its screenshot); the lines to print."""
    log_dir, out = Path(log_dir), Path(out)
    bootstrap = Bootstrap(opts.resamples, opts.seed)
    entries = [Entry(j, s) for j in resolve_targets(log_dir, targets)
               if (s := job_summary(j, bootstrap)) is not None and s.rows]
    if not entries:
        raise ProjectError(f"no finished classification fold in {', '.join(targets)} under {log_dir}")
    comparisons, unpaired = _comparisons(entries, opts)
    # The comparisons first: they answer the question a reader opens the report with.
    sections = [_comparison_section(comparisons, unpaired), _cv_section(entries),
                _plots_section(entries), _provenance_section(entries)]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html.page("Cross-validation report", sections,
                             subtitle=f"{len(entries)} job(s) under {log_dir}, written {when}"))
    lines = [f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB: {len(entries)} job(s), "
             f"{sum(len(p) for _, p in comparisons)} comparison(s))"]
    if opts.screenshot:
        from orchestrator.report.browser import screenshot

        screenshot(out, Path(opts.screenshot))
        lines.append(f"wrote {opts.screenshot}")
    return "\n".join(lines)


def _cv_section(entries: list[Entry]) -> str:
    parts = [html.paragraph("Per fold: the test scores of the fold's best model. mean and std (ddof=1) are over "
                            "the folds; pooled: the score of all folds' test predictions together, with a "
                            "percentile bootstrap interval over the records (stratified by class); naive: the same "
                            "test folds scored for always answering the training fold's majority class.")]
    for e in entries:
        caption = f"{e.label}: score = {e.summary.track.score_label}" + (
            f" (incomplete: missing folds {e.summary.missing})" if e.summary.missing else "")
        parts.append(html.table(e.summary.columns, job_table(e.summary), caption=caption))
        if e.summary.bootstrap_note:
            parts.append(html.paragraph(e.summary.bootstrap_note))
    return html.section("Cross-validation scores", *parts, anchor="scores")


def _comparisons(entries: list[Entry], opts: ReportOptions):
    """Pairs of every group of jobs with the same design; the jobs left without a partner."""
    groups: list[tuple[Design, list[Entry]]] = []  # each group's design, read once
    for e in entries:
        mine = design(classify_folds(e.job.folds()))
        group = next((members for first, members in groups if not mine.differences(first)), None)
        if group is None:
            groups.append((mine, [e]))
        else:
            group.append(e)
    comparisons, unpaired = [], []
    compare_opts = CompareOptions(resamples=max(opts.resamples, 1), seed=opts.seed)
    for _, group in groups:
        if len(group) < 2:
            unpaired += [e.label for e in group]
            continue
        scores = [job_scores(e.job, per_class=False) for e in group]
        comparisons.append((scores, compare_jobs(scores, compare_opts)))
    return comparisons, unpaired


def _comparison_section(comparisons, unpaired: list[str]) -> str:
    from orchestrator.report.figures import forest_plot

    parts = []
    for scores, pairs in comparisons:
        d = scores[0].design
        parts.append(html.paragraph(
            f"{', '.join(s.label for s in scores)}: the same {len(d.folds)} folds of {d.split} on {d.data_dir}. "
            "Δ = B - A. Over the folds: the Wilcoxon signed-rank test and the Nadeau-Bengio corrected t-test"
            + (" (Holm-adjusted over the pairs in brackets)" if len(pairs) > 1 else "")
            + "; over the records: the paired bootstrap interval of the pooled Δ."))
        for pair in pairs:
            rows = [metric_row(m, len(pairs) > 1) for m in pair.metrics.values()]
            parts.append(html.table(HEADER, rows, caption=f"A = {pair.a}, B = {pair.b}"))
            parts.append(html.paragraph(f"Verdict: {pair.verdict}"))
        parts.append(html.figure(forest_plot(_forest_rows(pairs), "paired differences, pooled test predictions"),
                                 caption="Δ = B - A with its paired bootstrap interval; p: corrected t-test",
                                 alt="forest plot of the paired differences"))
    if unpaired:
        parts.append(html.paragraph("Not compared (no other job on the same dataset, split and folds): "
                                    + ", ".join(unpaired)))
    if not comparisons and not unpaired:
        parts.append(html.paragraph("One job: nothing to compare."))
    return html.section("Comparisons", *parts, anchor="comparisons")


def _forest_rows(pairs: list[PairComparison]) -> list[tuple[str, float, float, float, float]]:
    return [(f"{p.b.split('/')[-1]} - {p.a.split('/')[-1]}: {name}", m.bootstrap.point, m.bootstrap.low,
             m.bootstrap.high, m.p("corrected_t")) for p in pairs for name, m in p.metrics.items()]


def _plots_section(entries: list[Entry]) -> str:
    from orchestrator.logdir.plots import plot_job

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            written, messages = plot_job(e.job.path, Path(tmp) / e.job.architecture)
            for path in written:
                kind = "learning curves" if path.stem.endswith("_curves") else "test confusion matrix"
                parts.append(html.figure(path.read_bytes(), caption=f"{e.label}: {kind}", alt=f"{e.label} {kind}"))
            parts += [html.paragraph(m) for m in messages]
    return html.section("Learning curves and confusion matrices", *parts, anchor="plots")


def _provenance_section(entries: list[Entry]) -> str:
    header = ["job", "commit", "packages", "host", "submitted", "data", "data signature", "split"]
    rows = [_provenance_row(e) for e in entries]
    return html.section("Provenance", html.table(header, rows, numeric=False), anchor="provenance")


def _provenance_row(e: Entry) -> list[str]:
    scores = [f.scores() for f in e.job.finished_folds()]
    prov = [s.get("provenance", {}) for s in scores]
    data_dirs = sorted({str(s.get("data_dir")) for s in scores})
    signatures = {str(p.get("data_signatures", {}).get(d, ""))[:16] for p in prov for d in data_dirs}
    packages = {", ".join(f"{k} {v}" for k, v in p.get("packages", {}).items()) for p in prov}
    return [e.label, _values(p.get("git_commit") for p in prov), _values(packages),
            _values(p.get("host") for p in prov), _values(p.get("submitted_at") for p in prov),
            ", ".join(data_dirs), _values(signatures) or "not recorded", _values(s.get("split") for s in scores)]


def _values(values) -> str:
    """The distinct values, '; '-joined (one value when every fold agrees, as it should)."""
    return "; ".join(sorted({str(v) for v in values if v}))
