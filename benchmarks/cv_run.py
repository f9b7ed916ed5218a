"""Benchmark: a job file through Ray Tune, and optionally the same trainings in a plain loop.

    python benchmarks/cv_run.py jobs/cv5.json --data ../shared/ecg-samples/cinc2017 \
        --max-epochs 1 --cpus-per-task 2 --out benchmarks/results/cv5 [--plain-loop]

The Ray run is `python -m orchestrator submit` in a subprocess (Ray start-up
included in its wall time). The plain loop plans the same tasks and calls
ecgcore's train_task one after the other in this process with the same
threads, writing the same fold files, so the ratio measures what Ray adds.
With --cpus-per-task equal to the machine's cores Ray also runs one fold at
a time, so both sides do the same work in the same order. Prints and writes
OUT/result.json with wall times, the ratio and the mean ± std test scores.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ecgcore.config.schema import to_plain  # noqa: E402
from ecgcore.training.train import train_task  # noqa: E402
from orchestrator.commands.submit import SubmitOptions, plan  # noqa: E402
from orchestrator.commands.summarize import collect  # noqa: E402
from orchestrator.logdir.writer import FoldLog  # noqa: E402
from orchestrator.plan.expand import Overrides  # noqa: E402
from orchestrator.plan.provenance import provenance  # noqa: E402


def ray_run(args, log_dir: Path) -> float:
    cmd = [sys.executable, "-m", "orchestrator", "submit", args.job_file, "--data", args.data,
           "--log-dir", str(log_dir), "--cpus-per-task", str(args.cpus_per_task)]
    if args.max_epochs:
        cmd += ["--max-epochs", str(args.max_epochs)]
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    return time.monotonic() - started


def plain_loop(args, log_dir: Path) -> float:
    overrides = Overrides(data=args.data, max_epochs=args.max_epochs, cpus_per_task=args.cpus_per_task)
    started = time.monotonic()
    jobs, tasks = plan(SubmitOptions(job_file=args.job_file, log_dir=str(log_dir), overrides=overrides), ROOT)
    by_name = {j.name: j for j in jobs}
    prov = provenance()
    for task in tasks:
        log = FoldLog(task, to_plain(by_name[task.job].config), prov)
        log.open()
        log.finish(train_task(task, log))
        print(f"plain loop: {task.task_id} done at {time.monotonic() - started:.0f} s", flush=True)
    return time.monotonic() - started


def scores(log_dir: Path) -> dict:
    out = {}
    for arch_dir in sorted(p for p in log_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for job in collect(log_dir, arch_dir.name):
            mean, std = job.stat("score")
            f1 = {c: round(job.stat(f"F1_{c}")[0], 3) for c in "NAO~"}
            out[job.name] = {"folds": len(job.rows), "score_mean": round(mean, 3),
                             "score_std": round(std, 3), "f1_mean": f1}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("job_file")
    p.add_argument("--data", required=True)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--cpus-per-task", type=float, default=float(os.cpu_count() or 1))
    p.add_argument("--out", required=True)
    p.add_argument("--plain-loop", action="store_true")
    args = p.parse_args()
    out = Path(args.out).resolve()
    result = {"command": " ".join(sys.argv), "machine": f"{platform.node()}, {os.cpu_count()} cores, "
              f"{platform.processor() or platform.machine()}", "date": time.strftime("%Y-%m-%d")}
    result["ray_wall_s"] = round(ray_run(args, out / "ray"), 1)
    result["ray_scores"] = scores(out / "ray")
    if args.plain_loop:
        result["loop_wall_s"] = round(plain_loop(args, out / "loop"), 1)
        result["ray_over_loop"] = round(result["ray_wall_s"] / result["loop_wall_s"], 3)
        result["loop_scores"] = scores(out / "loop")
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
