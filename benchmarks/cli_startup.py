"""Benchmark: how long `python -m orchestrator <command> --help` (and the light commands) take to answer.

    python benchmarks/cli_startup.py [--runs 20] [--out benchmarks/results/cli_startup.json]

Each command line runs --runs times as a fresh process (one warm-up run first,
so the file cache is warm, as for a user typing commands); prints the median
and min wall time per command line, and writes them as JSON. hyperfine would
do the same; it cannot be installed on the development machine (crates.io is
not reachable and PyPI has no hyperfine), so this is the measurement.
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
COMMANDS = ("submit", "resume", "status", "settings", "summarize", "predict", "ensemble", "score", "split", "data")


def command_lines(log_dir: Path) -> list[list[str]]:
    """Every command's --help, then the light commands on a log folder holding one started fold."""
    fold = log_dir / "CNN" / "job" / "fold0"
    fold.mkdir(parents=True)
    (fold / "job.json").write_text(json.dumps({"cvids": [0], "challenge": 2017}))
    lines = [["--help"]] + [[c, "--help"] for c in COMMANDS] + [["data", "check", "--help"]]
    light = [["settings"], ["status", "--log-dir", str(log_dir)], ["summarize", "CNN", "--log-dir", str(log_dir)]]
    return lines + light


def wall_times(argv: list[str], runs: int) -> list[float]:
    cmd = [sys.executable, "-m", "orchestrator", *argv]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0]} x{len(names)}" if names else platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli_startup.json"))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for argv in command_lines(Path(tmp)):
            times = wall_times(argv, args.runs)
            key = " ".join(a if not a.startswith(tmp) else "LOG" for a in argv)
            results[key] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}
            print(f"{key:<22} median {results[key]['median_s']:.3f} s  min {results[key]['min_s']:.3f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": args.runs, "cpu": cpu_name(),
                                          "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
