"""Benchmark: the machine's peak memory with 1 and with N concurrent trials over one dataset.

    python benchmarks/memory.py --data ../shared/ecg-data/training2017 --model CNN_small \
        --concurrent 1,4 --time-limit 15 --out benchmarks/results/memory.json

For each concurrency, runs `python -m orchestrator submit` on a job of N
folds (max-concurrent = that number; cpus-per-task = cores / N), and samples
every 0.2 s the machine's used memory (MemTotal - MemAvailable, so Ray's
shared-memory object store counts once, not once per process that maps it).
Reports the peak above the idle baseline, per concurrency, beside the size of
the prepared dataset (the cache file), and for each trial process its peak
private memory (RssAnon) and the shared pages it maps (RssShmem: the dataset in
the object store, which every trial maps and the machine holds once). The dataset cache is warmed first so
both runs prepare it the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def used_mb() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kb = lambda key: float(info[key].strip().split()[0])  # noqa: E731
    return (kb("MemTotal") - kb("MemAvailable")) / 1024


def trial_processes() -> dict[int, tuple[float, float]]:
    """Trial actors' (private, shared) resident MB: RssAnon, and RssShmem (the object store's pages they map)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if not Path(entry.path, "cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                continue
            status = dict(line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines())
        except (OSError, ValueError):
            continue  # the process ended meanwhile
        out[int(entry.name)] = tuple(float(status[key].split()[0]) / 1024 for key in ("RssAnon", "RssShmem"))
    return out


def ray_running() -> bool:
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and b"ray" in Path(entry.path, "cmdline").read_bytes().split(b"\0")[0]:
                return True
        except OSError:
            continue
    return False


def settle(limit_s: float = 120.0) -> None:
    """Wait until the previous run's Ray processes are gone and used memory is steady (a fair baseline)."""
    end = time.monotonic() + limit_s
    while ray_running() and time.monotonic() < end:
        time.sleep(1)
    last = used_mb()
    while time.monotonic() < end:
        time.sleep(3)
        now = used_mb()
        if abs(now - last) < 30:
            return
        last = now


def run(job_file: Path, args, log_dir: Path, concurrent: int) -> dict:
    settle()
    peak, stop = [used_mb()], threading.Event()
    baseline = peak[0]
    trials: dict[int, tuple[float, float]] = {}

    def sample():
        while not stop.is_set():
            peak.append(used_mb())
            for pid, (anon, shm) in trial_processes().items():
                old = trials.get(pid, (0.0, 0.0))
                trials[pid] = (max(old[0], anon), max(old[1], shm))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    cmd = [sys.executable, "-m", "orchestrator", "submit", str(job_file), "--data", args.data,
           "--models-dir", str(ROOT / "models"), "--log-dir", str(log_dir), "--quiet",
           "--max-concurrent", str(concurrent), "--cpus-per-task", str((os.cpu_count() or 1) / concurrent),
           "--time-limit", str(args.time_limit), "--max-epochs", "1"]
    code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}).returncode
    stop.set()
    sampler.join()
    return {"concurrent": concurrent, "exit": code, "wall_s": round(time.monotonic() - started, 1),
            "baseline_mb": round(baseline), "peak_mb": round(max(peak)),
            "peak_above_baseline_mb": round(max(peak) - baseline),
            # per trial process: its own memory, and the shared dataset pages it maps (counted once above)
            "trial_processes": len(trials),
            "trial_private_mb": sorted(round(a) for a, _ in trials.values()),
            "trial_shared_mb": sorted(round(s) for _, s in trials.values())}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="CNN_small")
    p.add_argument("--concurrent", default="1,4")
    p.add_argument("--time-limit", type=float, default=15)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out).resolve()
    work = out.with_suffix("")
    levels = [int(c) for c in args.concurrent.split(",")]
    job_file = work / "jobs.json"
    work.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps({"mem": {"model": args.model, "split": "split_5_6_14", "log_en": False,
                                            "log_test_score": False, "cvids": list(range(max(levels)))}}))
    from orchestrator.commands.submit import SubmitOptions, plan
    from orchestrator.plan.datasets import prepare_data  # warm the cache the runs share
    from orchestrator.plan.expand import Overrides

    _, tasks = plan(SubmitOptions(job_file=str(job_file), models_dir=str(ROOT / "models"),
                                  overrides=Overrides(data=args.data)), ROOT)
    dataset_mb = round(prepare_data(tasks, work / "log" / ".cache", print).nbytes / 1e6)  # not kept: baseline
    rows = [run(job_file, args, work / "log", level) for level in levels]
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores", "dataset_mb": dataset_mb,
              "runs": rows}
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
