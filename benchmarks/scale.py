"""Benchmark: a submit of N fold-trials (a grid search of a tiny model on a small dataset) on this machine.

    python benchmarks/scale.py --trials 1000 [--work DIR] [--baseline-sample 50] [--timeout S] [--skip-submit]

Setup in WORK (default benchmarks/results/scale-<N>/, which must not hold a
log/ yet): 80 synthetic CinC 2017 records (`data synth --seed 0`),
models/tiny.json (the tests' tiny CNN, 1 epoch) whose learning_rate is a grid
of N/5 distinct values, and jobs/scale.json running folds 0-4 of split_5_6_14
for each: N trials. `python -m orchestrator submit ... --quiet` runs in a
subprocess (cwd WORK) and is measured for its wall time, exit code and the
driver's peak RSS (VmRSS of that one process every 0.2 s, not Ray's). Then:
the sizes of log/.tune (Tune's experiment) and log/CNN (the fold folders);
the median scores.json elapsed_s of the first and the last 10% of folds by
finish time (does a fold slow down as the experiment grows?); the wall time
(median of 3) and printed lines of `status` and `summarize CNN`.

The plain-loop baseline trains a sample of the same tasks in this process
with ecgcore's train_task (1 torch thread, records prepared once, nothing
written). The overhead per trial is

    (wall_s x C - N x plain_median_s) / N,   C = cores = trials running at once

wall_s x C is the core-seconds the submit held; N x plain_median_s of them
were training, the rest (Ray start-up and shutdown, scheduling, fold logs,
checkpoints, Tune's bookkeeping) is overhead, here spread per trial. After a
--timeout or a failure N is the folds that finished.
--timeout S stops the submit after S seconds (SIGINT, then SIGKILL of its
process group) and reports the folds that finished (scores.json files).
--skip-submit measures an existing WORK/log (status, summarize, sizes) and
merges the numbers into benchmarks/results/scale-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
CLI = [sys.executable, "-m", "orchestrator"]
TINY = {"model_name": "CNN",
        "model_parameters": {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2, "kernel_size": [3, 3],
                             "dilation_rates": [1], "strides_block_end": [2, 2], "max_pooling": False},
        "training_parameters": {"batch_size": 16, "validation_step": 1, "max_epochs": 1, "early_stop_wait": 5},
        "data_augmentation": {"reload_step": 1}}


def machine() -> dict:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    import ray
    import torch

    return {"machine": model, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "commit": commit.stdout.strip(), "torch": torch.__version__, "ray": ray.__version__}


def learning_rates(n: int) -> list[float]:
    rates = [float(f"{x:.6g}") for x in np.geomspace(1e-4, 1e-2, n)]
    if len(set(rates)) != n:
        raise SystemExit(f"{n} learning rates rounded to 6 digits are not distinct")
    return rates


def setup(work: Path, trials: int) -> None:
    """The dataset, models/tiny.json with a learning-rate grid of trials/5 values, jobs/scale.json (5 folds each)."""
    subprocess.run([*CLI, "data", "synth", "--out", str(work / "data"), "--records", "80", "--seed", "0"],
                   cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    model = json.loads(json.dumps(TINY))
    model["training_parameters"]["learning_rate"] = {"grid": learning_rates(trials // 5)}
    for name, body in (("models/tiny.json", model), ("jobs/scale.json", {"scale": {
            "model": "tiny", "split": "split_5_6_14", "cvids": [0, 1, 2, 3, 4], "log_en": False}})):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(json.dumps(body, indent=1))


def rss(pid: int) -> int:
    """The process's resident set in bytes (VmRSS, what psutil's memory_info().rss reads); 0 once it is gone."""
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) * 1024


def submit(work: Path, timeout: float | None) -> dict:
    cmd = [*CLI, "submit", "jobs/scale.json", "--data", "data", "--log-dir", "log", "--quiet"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=work, env=ENV, stdout=subprocess.DEVNULL, start_new_session=True)
    peak, timed_out = 0, False
    while proc.poll() is None:
        peak = max(peak, rss(proc.pid))
        if timeout and not timed_out and time.monotonic() - started > timeout:
            timed_out = True
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    return {"exit": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "driver_peak_rss_mb": round(peak / 2**20, 1), "timed_out": timed_out}


def dir_size(path: Path) -> dict:
    sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return {"mb": round(sum(sizes) / 2**20, 2), "files": len(sizes)}


def fold_times(log: Path) -> dict:
    """Folds finished, and the median elapsed_s of the first and the last 10% of them by finish time."""
    folds = sorted((p.stat().st_mtime, json.loads(p.read_text())["elapsed_s"])
                   for p in log.glob("CNN/*/fold*/scores.json"))
    k = max(1, len(folds) // 10)
    median = (lambda part: round(statistics.median(e for _, e in part), 2)) if folds else (lambda part: None)
    return {"folds_done": len(folds), "fold_s_first_10pct": median(folds[:k]), "fold_s_last_10pct": median(folds[-k:])}


def reader(work: Path, args: list[str], repeats: int = 3) -> dict:
    """A reading command's median wall time over `repeats` runs, its exit code and the lines it printed."""
    walls = []
    for _ in range(repeats):
        started = time.monotonic()
        out = subprocess.run([*CLI, *args, "--log-dir", "log"], cwd=work, env=ENV, capture_output=True, text=True)
        walls.append(time.monotonic() - started)
    return {"wall_s": round(statistics.median(walls), 2), "exit": out.returncode, "lines": len(out.stdout.splitlines())}


def baseline(work: Path, sample: int) -> dict:
    """Median seconds of train_task over `sample` of the submit's tasks, in this process, 1 torch thread."""
    sys.path.insert(0, str(ROOT))
    import torch

    from ecgcore.training.loop import TrainingObserver
    from ecgcore.training.train import train_task
    from orchestrator.commands.submit import SubmitOptions, plan
    from orchestrator.plan.datasets import prepare_data
    from orchestrator.plan.expand import Overrides

    torch.set_num_threads(1)
    opts = SubmitOptions(job_file=str(work / "jobs/scale.json"), log_dir=str(work / "baseline-log"),
                         overrides=Overrides(data=str(work / "data")))
    _, tasks = plan(opts, work)
    picked = [tasks[int(i)] for i in np.linspace(0, len(tasks) - 1, min(sample, len(tasks)))]
    shared = prepare_data(picked, work / "baseline-cache", print)
    seconds = []
    for task in picked[:1] + picked:  # the first training, untimed, warms up (lazy imports, allocator)
        started = time.monotonic()
        train_task(task, TrainingObserver(), prepared=shared.records[shared.key_of[task.task_id]])
        seconds.append(time.monotonic() - started)
    seconds = seconds[1:]
    return {"sample": len(picked), "plain_median_s": round(statistics.median(seconds), 3),
            "plain_min_s": round(min(seconds), 3), "plain_max_s": round(max(seconds), 3)}


def measure_log(work: Path) -> dict:
    log = work / "log"
    return {"tune_dir": dir_size(log / ".tune"), "fold_dirs": dir_size(log / "CNN"), **fold_times(log),
            "status": reader(work, ["status"]), "summarize": reader(work, ["summarize", "CNN"])}


def overhead(r: dict) -> float | None:
    """Core-seconds per finished trial beyond its training: (wall x cores - done x plain) / done (done = N unless
    the submit timed out or failed)."""
    done, plain = r["folds_done"], r["baseline"]["plain_median_s"]
    return round((r["submit"]["wall_s"] * r["cores"] - done * plain) / done, 3) if done else None


def table(r: dict) -> str:
    rows = [("trials", r["trials"]), ("machine", f"{r['machine']}, {r['cores']} cores"), ("commit", r["commit"])]
    if "submit" in r:
        s = r["submit"]
        rows += [("submit wall (s)", s["wall_s"]), ("submit exit", s["exit"] if not s["timed_out"] else "timed out"),
                 ("driver peak RSS (MB)", s["driver_peak_rss_mb"])]
    rows += [("folds done", r["folds_done"]),
             ("log/.tune MB, files", f"{r['tune_dir']['mb']}, {r['tune_dir']['files']}"),
             ("log/CNN MB, files", f"{r['fold_dirs']['mb']}, {r['fold_dirs']['files']}"),
             ("fold s, first / last 10%", f"{r['fold_s_first_10pct']} / {r['fold_s_last_10pct']}")]
    for name in ("status", "summarize"):
        rows.append((f"{name} wall (s), lines", f"{r[name]['wall_s']}, {r[name]['lines']} (exit {r[name]['exit']})"))
    if "baseline" in r:
        rows += [("plain loop median s/training", f"{r['baseline']['plain_median_s']} (of {r['baseline']['sample']})"),
                 ("overhead core-s/trial", f"{r['overhead_s_per_trial']} = (wall x {r['cores']} - N x plain) / N, "
                                           f"N = {r['folds_done']} folds done")]
    return "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=1000, help="fold-trials, a multiple of 5 (default 1000)")
    p.add_argument("--work", help="work folder (default benchmarks/results/scale-<N>/)")
    p.add_argument("--baseline-sample", type=int, default=50, help="trainings of the plain loop (default 50)")
    p.add_argument("--skip-submit", action="store_true", help="measure an existing WORK/log only")
    p.add_argument("--timeout", type=float, help="stop the submit after this many seconds")
    args = p.parse_args()
    if args.trials < 5 or args.trials % 5:
        p.error("--trials must be a positive multiple of 5")
    work = Path(args.work or RESULTS / f"scale-{args.trials}").resolve()
    out = RESULTS / f"scale-{args.trials}.json"
    result = {"command": " ".join(sys.argv), "trials": args.trials, **machine()}
    if args.skip_submit:
        result = {**(json.loads(out.read_text()) if out.exists() else {}), **result}
    else:
        if (work / "log").exists():
            p.error(f"{work / 'log'} exists: remove it, or measure it with --skip-submit")
        work.mkdir(parents=True, exist_ok=True)
        setup(work, args.trials)
        result["submit"] = submit(work, args.timeout)
        result["baseline"] = baseline(work, args.baseline_sample)
    result.update(measure_log(work))
    if not args.skip_submit:
        result["overhead_s_per_trial"] = overhead(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
