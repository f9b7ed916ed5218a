"""Benchmark: the `wfdb` track is the `cinc2017` track when given the same records and labels.

    python benchmarks/wfdb_equivalence.py [--data ../shared/ecg-data/training2017] [--folds 0 1 2 3 4]
                                          [--out benchmarks/results/wfdb_equivalence]

Two real submits of the same small CNN (models/CNN_small.json's network, 2 epochs, no time cap so that the
runs are deterministic) on split_5_6_14 of the CinC 2017 training set: one with `"track": "cinc2017"`, one
with `"track": "wfdb"` reading the same folder in place as a plain WFDB folder, labelled by a CSV written
here whose class names differ (normal, af, other, noisy; noisy not scored). Writes OUT/result.json and
OUT/table.md: per fold, both tracks' test score (the mean F1 of the scored classes), whether the test
records and every probability in predictions.csv are identical, and the wall time of each submit.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RENAMED = {"N": "normal", "A": "af", "O": "other", "~": "noisy"}


def write_inputs(data: Path, out: Path, folds: list[int]) -> Path:
    rows = [line.split(",") for line in (data / "REFERENCE.csv").read_text().split()]
    out.mkdir(parents=True, exist_ok=True)
    labels = out / "labels.csv"
    labels.write_text("record,label\n" + "".join(f"{name},{RENAMED[label]}\n" for name, label in rows))
    model = json.loads((ROOT / "models" / "CNN_small.json").read_text())
    model["training_parameters"].update(max_epochs=2, early_stop_wait=10)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "models" / "CNN_equiv.json").write_text(json.dumps(model, indent=2))
    common = {"model": "CNN_equiv", "split": "split_5_6_14", "data": str(data), "cvids": folds, "log_en": False}
    jobs = {"cinc2017_track": {**common, "track": "cinc2017"},
            "wfdb_track": {**common, "track": "wfdb", "track_options": {
                "labels": str(labels), "classes": list(RENAMED.values()), "scored_classes": ["normal", "af", "other"]}}}
    (out / "jobs").mkdir(exist_ok=True)
    for name, job in jobs.items():
        (out / "jobs" / f"{name}.json").write_text(json.dumps({name: job}, indent=2))
    return out


def submit(out: Path, name: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator", "submit", str(out / "jobs" / f"{name}.json"),
                    "--log-dir", str(out / "log"), "--cpus-per-task", "1"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def fold_rows(out: Path, folds: list[int]) -> list[dict]:
    rows = []
    for k in folds:
        a, b = (out / "log" / "CNN" / job / f"fold{k}" for job in ("cinc2017_track", "wfdb_track"))
        sa, sb = (json.loads((d / "scores.json").read_text()) for d in (a, b))
        pa, pb = (list(csv.reader(open(d / "predictions.csv"))) for d in (a, b))
        rows.append({"fold": k, "cinc2017_score": sa["test"]["score"], "wfdb_score": sb["test"]["score"],
                     "same_test_records": [r[0] for r in pa[1:]] == [r[0] for r in pb[1:]],
                     "same_probabilities": [r[3:] for r in pa[1:]] == [r[3:] for r in pb[1:]],
                     "same_confusion": sa["test"]["confusion"] == sb["test"]["confusion"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "ecg-data" / "training2017"))
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "wfdb_equivalence"))
    args = parser.parse_args()
    out = write_inputs(Path(args.data).resolve(), Path(args.out).resolve(), args.folds)
    seconds = {name: submit(out, name) for name in ("cinc2017_track", "wfdb_track")}
    rows = fold_rows(out, args.folds)
    result = {"data": args.data, "machine": platform.processor() or platform.machine(), "seconds": seconds,
              "folds": rows, "identical": all(r["same_probabilities"] and r["same_confusion"] for r in rows)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    lines = ["| fold | cinc2017 score | wfdb score | same test records | same probabilities | same confusion |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['fold']} | {r['cinc2017_score']:.4f} | {r['wfdb_score']:.4f} | {r['same_test_records']} | "
              f"{r['same_probabilities']} | {r['same_confusion']} |" for r in rows]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"submits: cinc2017 {seconds['cinc2017_track']:.0f} s, wfdb {seconds['wfdb_track']:.0f} s")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
