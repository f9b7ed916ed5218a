"""Benchmark: the same jobs give identical fold scores and summary tables before and after a change.

    python benchmarks/tracks_before_after.py [--before d31931a] [--jobs demo lead12]
                                             [--out benchmarks/results/before_after]

Checks out --before (default: the commit before the tracks refactor) into OUT/before with `git worktree`,
and runs each job twice with this venv's Python, once on that checkout and once on this working tree:
  demo    jobs/demo.json (CNN_small and CRNN_small, 5 folds each) on 300 synthetic CinC 2017 records;
  lead12  a tiny GlobalSkipNet, 3 folds of split_3_3_1, on 120 synthetic 12-lead records, the job file
          written with the older `"challenge": 2021` key.
Then compares, fold by fold, scores.json's train/valid/test reports and thresholds and predictions.csv, and
the text and csv tables of `summarize`; and reads the "before" logs with the current code (summarize's text
table again). Writes OUT/result.json; exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEAD12_MODEL = {
    "model_name": "GlobalSkipNet",
    "model_parameters": {"n_levels": 4, "channels_per_level": 4, "stem_channels": 4, "layers_per_level": 2,
                         "kernel_size": 7, "pool_size": 2},
    "preprocessing": {"spectrogram": False, "fs": 125, "bandpass": [0.5, 45.0], "standardize": True},
    "training_parameters": {"learning_rate": 0.003, "batch_size": 16, "drop_rate": 0.0, "optimizer": "adamw",
                            "validation_step": 1, "early_stop_wait": 10, "max_epochs": 4,
                            "dataset_compensation": 0.0},
    "data_augmentation": {"resampling": False, "zero_filter": False},
    "loss_function_parameters": {"loss": "challenge"},
}


def run(code: Path, *argv: str, cwd: Path, out: Path | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_USAGE_STATS_ENABLED": "0"}
    with open(out, "w") if out else open(os.devnull, "w") as fh:
        subprocess.run([sys.executable, "-m", "orchestrator", *argv], cwd=cwd, env=env, check=True, stdout=fh)


def prepare(out: Path) -> dict[str, tuple[Path, list[str]]]:
    """Per job: its job file and its architectures (the data and model files written under out)."""
    data = out / "data"
    run(ROOT, "data", "synth", "--out", str(data / "synth2017"), "--records", "300", "--seed", "0", cwd=ROOT)
    run(ROOT, "data", "synth", "--challenge", "2021", "--out", str(data / "synth12"), "--records", "120",
        "--seed", "3", cwd=ROOT)
    demo = json.loads((ROOT / "jobs" / "demo.json").read_text())
    for job in demo.values():
        job["data"] = str(data / "synth2017")
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(exist_ok=True)
    (out / "jobs" / "demo.json").write_text(json.dumps(demo))
    (out / "models" / "Skip12_tiny.json").write_text(json.dumps(LEAD12_MODEL))
    for name in ("CNN_small", "CRNN_small"):
        (out / "models" / f"{name}.json").write_text((ROOT / "models" / f"{name}.json").read_text())
    (out / "jobs" / "lead12.json").write_text(json.dumps({"lead12_skip": {
        "model": "Skip12_tiny", "challenge": 2021, "split": "split_3_3_1", "data": str(data / "synth12"),
        "log_en": False, "cvids": [0, 1, 2], "cpus_per_task": 1}}))
    return {"demo": (out / "jobs" / "demo.json", ["CNN", "CRNN"]),
            "lead12": (out / "jobs" / "lead12.json", ["GlobalSkipNet"])}


def compare(before: Path, after: Path) -> list[str]:
    """Every difference between two log folders' fold results."""
    found = []
    for scores in sorted(before.glob("*/*/fold*/scores.json")):
        fold = scores.parent.relative_to(before)
        a, b = json.loads(scores.read_text()), json.loads((after / fold / "scores.json").read_text())
        for key in ("train", "valid", "test", "thresholds", "best_epoch"):
            if a.get(key) != b.get(key):
                found.append(f"{fold}: scores.json {key}")
        if (before / fold / "predictions.csv").read_bytes() != (after / fold / "predictions.csv").read_bytes():
            found.append(f"{fold}: predictions.csv")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d31931a")
    parser.add_argument("--jobs", nargs="+", choices=("demo", "lead12"), default=["demo", "lead12"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "before_after"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    code = {"before": out / "before", "after": ROOT}
    if not code["before"].exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(code["before"]), args.before], cwd=ROOT,
                       check=True)
    jobs, differences = prepare(out), []
    for name in args.jobs:
        job_file, architectures = jobs[name]
        for side, checkout in code.items():
            run(checkout, "submit", str(job_file), "--log-dir", str(out / f"log_{side}"), cwd=out)
            for arch in architectures:
                for fmt in ("table", "csv"):
                    run(checkout, "summarize", arch, "--log-dir", str(out / f"log_{side}"), "--format", fmt,
                        cwd=out, out=out / f"{side}_{arch}.{fmt}")
        for arch in architectures:
            run(ROOT, "summarize", arch, "--log-dir", str(out / "log_before"), cwd=out,
                out=out / f"before_read_now_{arch}.table")
            for fmt, other in (("table", "after"), ("csv", "after"), ("table", "before_read_now")):
                theirs = out / f"{other}_{arch}.{fmt}"
                if (out / f"before_{arch}.{fmt}").read_text() != theirs.read_text():
                    differences.append(f"{arch}: summarize {fmt} ({other})")
    differences += compare(out / "log_before", out / "log_after")
    (out / "result.json").write_text(json.dumps({"before": args.before, "jobs": args.jobs,
                                                 "differences": differences}, indent=2))
    print("identical" if not differences else "\n".join(differences))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
