"""Benchmark: the 12-lead seeds under two protocols, stratified CV and leave-source-out.

    python benchmarks/quality12.py --data ../shared/ecg-samples/cinc2020 --time-limit 60 \
        --out benchmarks/results/quality12 [--models ResNet1d_ribeiro_12lead,...]

For each model file (default: every models/*_12lead.json) writes two jobs
into OUT/jobs.json, both on the CinC 2021 scored classes:
  <model>_cv5      split_5_6_14, folds 0-4 (iterative stratification)
  <model>_sources  sources_<6>_<14>, one fold per source database in the data
runs them with `python -m orchestrator submit --time-limit T`, and writes
OUT/table.md and OUT/result.json: per job the challenge metric (thresholds
tuned on each validation fold), AUROC and AUPRC over the test folds, and for
leave-source-out the score of each held-out source. The gap between the two
protocols is what the CinC 2020 entries showed on the hidden sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.quality import fold_facts, run_submit, write_result  # noqa: E402
from ecgcore.tracks import open_track  # noqa: E402
from orchestrator.commands.summarize import collect  # noqa: E402

PROTOCOLS = {"cv5": "split_5_6_14", "sources": "sources_6_14"}


def write_jobs(models: list[str], data: Path, out: Path) -> Path:
    n_sources = len(open_track("cinc2021").split_from_labels(data, PROTOCOLS["sources"]).folds)
    jobs = {}
    for m in models:
        for protocol, split in PROTOCOLS.items():
            cvids = list(range(n_sources)) if protocol == "sources" else [0, 1, 2, 3, 4]
            jobs[f"{m}_{protocol}"] = {"model": m, "challenge": 2021, "split": split, "cvids": cvids,
                                       "log_test_score": False, "description": f"12-lead benchmark, {protocol}"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "jobs.json").write_text(json.dumps(jobs, indent=2))
    return out / "jobs.json"


def table_rows(log_dir: Path) -> list[dict]:
    rows = []
    for arch_dir in sorted(p for p in log_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for job in collect(log_dir, arch_dir.name):
            if not job.rows:
                continue
            row = {"job": job.name, "architecture": arch_dir.name, "folds": len(job.rows),
                   **{f"{m}_{s}": v for m in ("score", "auroc", "auprc") for s, v in zip(("mean", "std"),
                                                                                       job.stat(m), strict=True)},
                   "per_source": {src: r["score"] for (fold, src) in job.sources for r in job.rows
                                  if r["fold"] == fold},
                   **fold_facts(arch_dir / job.name)}
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| job | params | challenge metric | AUROC | AUPRC | per held-out source | epochs | s / fold |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sources = ", ".join(f"{s} {v:.3f}" for s, v in r["per_source"].items()) or "-"
        epochs = f"{min(r['epochs_run'])}-{max(r['epochs_run'])}"
        lines.append(f"| {r['job']} | {r['n_parameters']:,} | {r['score_mean']:.3f} ± {r['score_std']:.3f} | "
                     f"{r['auroc_mean']:.3f} | {r['auprc_mean']:.3f} | {sources} | {epochs} | "
                     f"{r['median_fold_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--time-limit", type=float, required=True, help="training seconds per fold")
    p.add_argument("--cpus-per-task", type=float, default=1.0)
    p.add_argument("--models", help="comma-separated model files (default: every models/*_12lead.json)")
    p.add_argument("--out", required=True)
    p.add_argument("--skip-run", action="store_true", help="only tabulate an earlier run in OUT")
    args = p.parse_args()
    out = Path(args.out).resolve()
    models = args.models.split(",") if args.models else sorted(f.stem for f in (ROOT / "models").glob("*_12lead.json"))
    job_file = write_jobs(models, Path(args.data), out)
    wall = 0.0 if args.skip_run else run_submit(job_file, args, out / "log")
    rows = table_rows(out / "log")
    write_result(out, args, wall, rows, markdown(rows))
    print(f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
