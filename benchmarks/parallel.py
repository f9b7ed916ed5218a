"""Benchmark: N tasks run side by side (one core each) against the same N tasks one after another.

    python benchmarks/parallel.py --data ../shared/ecg-samples/cinc2017 --model CNN_small --tasks 2 \
        --max-epochs 4 --out benchmarks/results/parallel.json

Both runs are `python -m orchestrator submit` of the same job (N folds, 1 CPU
and so 1 torch thread per task); the sequential one adds --max-concurrent 1.
The dataset cache is warmed first, so both pay the same preparation. The
speed-up is the sequential wall time over the parallel one (ideal: N on N
free cores); the median in-trial time per fold shows whether tasks slowed
each other down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(job_file: Path, args, log_dir: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "orchestrator", "submit", str(job_file), "--data", args.data, "--models-dir",
           str(ROOT / "models"), "--log-dir", str(log_dir), "--quiet", "--cpus-per-task", "1",
           "--max-epochs", str(args.max_epochs), *extra]
    started = time.monotonic()
    code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
                          stdout=subprocess.DEVNULL).returncode
    wall = time.monotonic() - started
    fold_s = [json.loads(p.read_text())["elapsed_s"] for p in log_dir.glob("*/*/fold*/scores.json")]
    return {"exit": code, "wall_s": round(wall, 1), "median_fold_s": round(statistics.median(fold_s), 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="CNN_small")
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--max-epochs", type=int, default=4)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out).resolve()
    work = out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "jobs.json"
    job_file.write_text(json.dumps({"par": {"model": args.model, "split": "split_5_6_14", "log_en": False,
                                            "cvids": list(range(args.tasks))}}))
    sys.path.insert(0, str(ROOT))
    from orchestrator.commands.submit import SubmitOptions, plan
    from orchestrator.plan.datasets import prepare_data
    from orchestrator.plan.expand import Overrides

    _, tasks = plan(SubmitOptions(job_file=str(job_file), models_dir=str(ROOT / "models"),
                                  overrides=Overrides(data=args.data)), ROOT)
    for name in ("parallel", "sequential"):
        prepare_data(tasks, work / name / ".cache", lambda text: None)
    parallel = run(job_file, args, work / "parallel", [])
    sequential = run(job_file, args, work / "sequential", ["--max-concurrent", "1"])
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores", "parallel": parallel,
              "sequential": sequential, "speedup": round(sequential["wall_s"] / parallel["wall_s"], 3)}
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
