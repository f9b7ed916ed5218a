"""Benchmark: the full-set table, 5-fold CV on the 8,528 CinC 2017 training records, one submit per configuration.

    python benchmarks/quality_full.py --data ../shared/ecg-data/training2017 --out benchmarks/results/full \
        --configs FeatureGBM:0,CNN_small:1200,GlobalSkipNet_but:1200

Each configuration is MODEL_FILE:SECONDS, the training time cap per fold
(0: none; a fold then trains to its own early stop or max_epochs). Every
configuration is its own `submit` on split_5_6_14_holdout, folds 0-4, with
--cpus-per-task set to the machine's cores (one fold at a time, all
threads), so the wall time of each configuration is its own, as the
2-hour budget per configuration asks. After each submit, `ensemble`
scores the five fold models averaged on the hold-out part no fold saw.
Scoring and the table are benchmarks/quality.py's: per configuration the
official score mean ± std over the test folds, mean F1 per class, the naive
row, the hold-out ensemble, and here also the wall time of its submit.
A configuration already finished in OUT is not run again (delete its
folder under OUT/log to rerun it), so a session can add rows one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import markdown, run_submit, table_rows, write_jobs, write_result  # noqa: E402

from orchestrator.commands.ensemble import ensemble  # noqa: E402


def parse_configs(text: str) -> list[tuple[str, float]]:
    configs = []
    for item in text.split(","):
        name, _, seconds = item.partition(":")
        configs.append((name, float(seconds or 0)))
    return configs


def run_config(model: str, time_limit: float, args, out: Path) -> float | None:
    """Submit one model file's 5 folds and ensemble them; the wall time, or None when it had finished before."""
    job_dir = next((out / "log").glob(f"*/{model}"), None) if (out / "log").exists() else None
    if job_dir is not None and len(list(job_dir.glob("fold*/scores.json"))) == 5:
        return None
    job_file = write_jobs([model], out / "jobs" / model)
    run_args = argparse.Namespace(data=args.data, cpus_per_task=args.cpus_per_task,
                                  time_limit=time_limit or None)
    wall = run_submit(job_file, run_args, out / "log")
    ensemble(next((out / "log").glob(f"*/{model}")))
    return wall


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--configs", required=True, help="MODEL_FILE:SECONDS,... (training cap per fold, 0 for none)")
    p.add_argument("--cpus-per-task", type=float, default=float(os.cpu_count() or 1))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out).resolve()
    walls_file = out / "walls.json"
    walls = json.loads(walls_file.read_text()) if walls_file.exists() else {}
    configs = parse_configs(args.configs)
    for model, seconds in configs:
        started = time.strftime("%H:%M:%S")
        wall = run_config(model, seconds, args, out)
        if wall is not None:
            walls[model] = {"wall_s": round(wall, 1), "time_limit_s": seconds, "started": started}
            walls_file.write_text(json.dumps(walls, indent=2))
        print(f"{model}: {walls.get(model, {}).get('wall_s', 'n/a')} s of wall time", flush=True)
    rows = table_rows(out / "log", [m for m, _ in configs])
    for row in rows:
        row.update(walls.get(row["model"], {}))
    table = markdown(rows) + "\n\n" + "\n".join(f"- {r['model']}: submit wall {r.get('wall_s', 'n/a')} s, "
                                                f"cap {r.get('time_limit_s', 'n/a')} s per fold" for r in rows)
    args.time_limit = {m: s for m, s in configs}
    write_result(out, args, sum(w["wall_s"] for w in walls.values()), rows, table)


if __name__ == "__main__":
    main()
