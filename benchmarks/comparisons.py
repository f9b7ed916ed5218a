"""Benchmark: what the intervals, `compare` and `report` cost on real logs.

    python benchmarks/comparisons.py [--log-dir benchmarks/results/full/log] [--runs 3]
                                     [--jobs FeatureGBM/FeatureGBM CNN/CNN_cpu ...]
                                     [--out benchmarks/results/comparisons.json]

For the given jobs (default: the full-set jobs of docs/benchmarks.md, 8,528
records each): the time of `summarize ARCH` with the default 1,000 resamples
and with `--resamples 0` (the difference is the bootstrap), of `compare` over
all the jobs (every pair, Holm) and of `report` (HTML with plots, no
screenshot); each command line runs --runs times as a fresh process, median
wall time. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_SET_JOBS = ("FeatureGBM/FeatureGBM", "HybridStack/HybridStack_trees_from_CNN_cpu",
                 "HybridStack/HybridStack_from_CNN_cpu", "CNN/CNN_cpu")


def median_wall(argv: list[str], runs: int) -> float:
    cmd = [sys.executable, "-m", "orchestrator", *argv]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def command_lines(log_dir: Path, jobs: list[str], out_html: Path) -> dict[str, list[str]]:
    arch = jobs[0].split("/")[0]
    where = ["--log-dir", str(log_dir)]
    return {
        f"summarize {arch} --resamples 0": ["summarize", arch, "--resamples", "0", *where],
        f"summarize {arch} (1,000 resamples)": ["summarize", arch, *where],
        f"compare {len(jobs)} jobs": ["compare", *jobs, *where],
        f"report {len(jobs)} jobs": ["report", *jobs, "--out", str(out_html), *where],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", default=str(ROOT / "benchmarks" / "results" / "full" / "log"))
    parser.add_argument("--jobs", nargs="+", default=list(FULL_SET_JOBS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "comparisons.json"))
    args = parser.parse_args()
    log_dir = Path(args.log_dir)
    missing = [job for job in args.jobs if not (log_dir / job).is_dir()]
    if missing:
        print(f"not measured: no job folder {', '.join(missing)} under {log_dir} (run the full-set jobs of "
              "docs/benchmarks.md first, or pass --log-dir and --jobs)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        lines = command_lines(log_dir, args.jobs, Path(tmp) / "report.html")
        results = {name: median_wall(argv, args.runs) for name, argv in lines.items()}
    for name, seconds in results.items():
        print(f"{name:<45} {seconds:6.2f} s")
    out = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
           "runs": args.runs, "log_dir": str(log_dir), "jobs": args.jobs, "median_wall_s": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
