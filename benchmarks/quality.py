"""Benchmark: 5-fold CV of every shipped model file under a time cap, with naive and ensemble rows.

    python benchmarks/quality.py --data ../shared/ecg-samples/cinc2017 --time-limit 30 \
        --out benchmarks/results/quality [--models CNN_small,ResNet1d_ribeiro]

Writes OUT/jobs.json (one job per model file, all on split_5_6_14_holdout,
folds 0-4), runs it with `python -m orchestrator submit --time-limit T
--cpus-per-task C` (Ray, one fold at a time when C is the machine's cores),
then `ensemble` on every job: the five fold models averaged on the hold-out
part that no fold saw. Model files with init_from are left out by default:
they fine-tune from a pre-training run that must exist first. Prints and writes OUT/table.md and OUT/result.json:
per model file the official score mean ± std over the test folds, mean
F1 N/A/O/~, the naive row, the hold-out ensemble, parameters, epochs run and
the median seconds per fold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.commands.ensemble import ensemble  # noqa: E402
from orchestrator.commands.summarize import collect  # noqa: E402
from orchestrator.config.search import find_spaces  # noqa: E402

SPLIT = "split_5_6_14_holdout"


def default_models() -> list[str]:
    """Every shipped CinC 2017 model file except fine-tuning ones: those need their pre-training run first.

    The *_12lead files have multi-label losses for the 2020/2021 track (benchmarks/quality12.py).
    """
    files = sorted((ROOT / "models").glob("*.json"))
    return [f.stem for f in files if "init_from" not in json.loads(f.read_text()) and "_12lead" not in f.stem
            and not find_spaces(json.loads(f.read_text()), f)]  # search files belong to searches


def write_jobs(models: list[str], out: Path) -> Path:
    jobs = {m: {"model": m, "split": SPLIT, "cvids": [0, 1, 2, 3, 4], "log_test_score": False,
                "description": f"quality benchmark of models/{m}.json"} for m in models}
    out.mkdir(parents=True, exist_ok=True)
    (out / "jobs.json").write_text(json.dumps(jobs, indent=2))
    return out / "jobs.json"


def run_submit(job_file: Path, args, log_dir: Path) -> float:
    cmd = [sys.executable, "-m", "orchestrator", "submit", str(job_file), "--data", args.data,
           "--models-dir", str(ROOT / "models"), "--log-dir", str(log_dir),
           "--cpus-per-task", str(args.cpus_per_task)]
    if args.time_limit:  # none: each fold trains to its own early stop or max_epochs
        cmd += ["--time-limit", str(args.time_limit)]
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=False, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    return time.monotonic() - started


def fold_facts(job_dir: Path) -> dict:
    scores = [json.loads(p.read_text()) for p in sorted(job_dir.glob("fold*/scores.json"))]
    return {"n_parameters": scores[0]["n_parameters"] if scores else None,
            "epochs_run": [s["epochs_run"] for s in scores],
            "stop_reasons": sorted({s["stop_reason"] for s in scores}),
            "median_fold_s": float(np.median([s["elapsed_s"] for s in scores])) if scores else None}


def table_rows(log_dir: Path, models: list[str]) -> list[dict]:
    rows = []
    for arch_dir in sorted(p for p in log_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for job in collect(log_dir, arch_dir.name):
            if job.name not in models or not job.rows:
                continue
            mean, std = job.stat("score")
            row = {"model": job.name, "architecture": arch_dir.name, "folds": len(job.rows),
                   "score_mean": mean, "score_std": std,
                   "f1": {c: job.stat(f"F1_{c}")[0] for c in "NAO~"},
                   "naive": job.stat("score", naive=True)[0], **fold_facts(arch_dir / job.name)}
            if job.ensemble:
                row["ensemble_holdout"] = job.ensemble["ensemble"]["score"]
                row["single_fold_holdout_mean"] = job.ensemble["single_fold_mean"]
                row["holdout_records"] = job.ensemble["n_records"]
            rows.append(row)
    return sorted(rows, key=lambda r: -r["score_mean"])


def markdown(rows: list[dict]) -> str:
    head = ("| model file | arch | params | score (mean ± std) | F1_N | F1_A | F1_O | F1_~ | naive | "
            "ens(HO) | single(HO) | epochs | s / fold |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        f1 = " | ".join(f"{r['f1'][c]:.3f}" for c in "NAO~")
        ens = f"{r['ensemble_holdout']:.3f}" if "ensemble_holdout" in r else "n/a"
        single = f"{r['single_fold_holdout_mean']:.3f}" if "single_fold_holdout_mean" in r else "n/a"
        epochs = f"{min(r['epochs_run'])}-{max(r['epochs_run'])}" if r["epochs_run"] else "n/a"
        lines.append(f"| {r['model']} | {r['architecture']} | {r['n_parameters']:,} | "
                     f"{r['score_mean']:.3f} ± {r['score_std']:.3f} | {f1} | {r['naive']:.3f} | {ens} | "
                     f"{single} | {epochs} | {r['median_fold_s']:.0f} |")
    return "\n".join(lines)


def write_result(out: Path, args, wall: float, rows: list[dict], table: str) -> None:
    """OUT/result.json (command, date, machine, rows) and OUT/table.md; the table is printed too."""
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}",
              "wall_s": round(wall, 1), "time_limit_s": args.time_limit, "rows": rows}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    (out / "table.md").write_text(table + "\n")
    print(table)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--time-limit", type=float, required=True, help="training seconds per fold")
    p.add_argument("--cpus-per-task", type=float, default=float(os.cpu_count() or 1))
    p.add_argument("--models", help="comma-separated model files (default: every models/*.json)")
    p.add_argument("--out", required=True)
    p.add_argument("--skip-run", action="store_true", help="only score and tabulate an earlier run in OUT")
    args = p.parse_args()
    out = Path(args.out).resolve()
    models = args.models.split(",") if args.models else default_models()
    job_file = write_jobs(models, out)
    wall = 0.0 if args.skip_run else run_submit(job_file, args, out / "log")
    for arch_dir in sorted(p for p in (out / "log").iterdir() if p.is_dir() and not p.name.startswith(".")):
        for job_dir in sorted(d for d in arch_dir.iterdir() if d.is_dir() and d.name in models):
            ensemble(job_dir)
    rows = table_rows(out / "log", models)
    write_result(out, args, wall, rows, markdown(rows))
    print(f"wall {wall:.0f} s for {len(models)} model files x 5 folds")


if __name__ == "__main__":
    main()
