"""Benchmark: cold and warm preparation of a dataset for a submit (read, preprocess, cache, load back).

    python benchmarks/data_prep.py --data ../shared/ecg-data/training2017 --model CNN_paper [--repeats 5]

Cold: an empty cache folder, so every record is read, parsed and preprocessed
and the cache file written. Warm: the same again with the cache in place,
which is what every later submit of the same dataset and preprocessing
pays. Both go through orchestrator.plan.datasets.prepare_data, as `submit`
does (the split check included). Prints the cold time and the median of the
warm repeats; writes them as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.commands.submit import SubmitOptions, plan  # noqa: E402
from orchestrator.plan.datasets import prepare_data  # noqa: E402
from orchestrator.plan.expand import Overrides  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="CNN_paper")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/data_prep.json")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp())
    job = work / "jobs" / "j.json"
    job.parent.mkdir(parents=True)
    job.write_text(json.dumps({"j": {"model": args.model, "split": "split_5_6_14", "cvids": [0]}}))
    _, tasks = plan(SubmitOptions(job_file=str(job), models_dir=str(ROOT / "models"),
                                  overrides=Overrides(data=args.data)), work)
    cache = work / "cache"
    quiet = lambda text: None  # noqa: E731
    started = time.perf_counter()
    shared = prepare_data(tasks, cache, quiet)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        prepare_data(tasks, cache, quiet)
        warm.append(time.perf_counter() - started)
    size = sum(f.stat().st_size for f in cache.glob("*.npz"))
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores", "records": len(next(iter(
                  shared.records.values()))), "cold_s": round(cold, 2), "warm_s": [round(w, 3) for w in warm],
              "warm_median_s": round(statistics.median(warm), 3), "cache_mb": round(size / 1e6, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
