"""Benchmark: how the errors of finished jobs correlate on their test folds (is a part diverse enough to stack?).

    python benchmarks/part_errors.py benchmarks/results/full/log/FeatureGBM/FeatureGBM \
        benchmarks/results/full/log/CNN/CNN_cpu benchmarks/results/full/log/CRNN/CRNN_cpu

Each argument is a job folder of the same split and folds. The test-fold
predictions of every fold (predictions.csv) are pooled per job, matched by
record, and for each pair of jobs the script prints: both wrong (the share of
records both misclassify), the phi coefficient of their error indicators
(Pearson's r of two 0/1 variables: 0 = independent errors, 1 = the same
records wrong), Yule's Q (Kuncheva & Whitaker 2003's diversity measure) and the
disagreement (records on which the two predict different classes). Lower
phi/Q with high accuracy is what stacking can use.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import numpy as np


def pooled_predictions(job: Path) -> dict[str, tuple[str, str]]:
    """record -> (label, prediction) over every fold's predictions.csv."""
    out = {}
    for fold in sorted(job.glob("fold*/predictions.csv")):
        with fold.open(newline="") as fh:
            for row in csv.DictReader(fh):
                out[row["record"]] = (row["label"], row["prediction"])
    if not out:
        raise SystemExit(f"{job}: no fold has predictions.csv (not a finished job folder)")
    return out


def pair_stats(a: np.ndarray, b: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, float]:
    """Diversity of two error indicators (True = wrong) and of the predictions themselves."""
    n11, n00 = float(np.sum(a & b)), float(np.sum(~a & ~b))
    n10, n01 = float(np.sum(a & ~b)), float(np.sum(~a & b))
    denom = np.sqrt((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    return {"both_wrong": n11 / a.size, "phi": (n11 * n00 - n10 * n01) / denom if denom else float("nan"),
            "yule_q": (n11 * n00 - n10 * n01) / (n11 * n00 + n10 * n01) if n11 * n00 + n10 * n01 else float("nan"),
            "disagreement": float(np.mean(pred_a != pred_b))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("jobs", nargs="+", type=Path, help="job folders (log/<architecture>/<job>)")
    args = p.parse_args()
    preds = {f"{j.parent.name}/{j.name}": pooled_predictions(j) for j in args.jobs}
    common = sorted(set.intersection(*(set(p) for p in preds.values())))
    if not common:
        raise SystemExit("the jobs share no test record: not the same split and dataset")
    wrong = {k: np.array([v[r][0] != v[r][1] for r in common]) for k, v in preds.items()}
    label = {k: np.array([v[r][1] for r in common]) for k, v in preds.items()}
    print(f"{len(common)} test-fold records common to {len(preds)} jobs")
    print("| job | error rate |\n|---|---|")
    for k, w in wrong.items():
        print(f"| {k} | {w.mean():.3f} |")
    print("\n| A | B | both wrong | phi of errors | Yule's Q | disagreement |\n|---|---|---|---|---|---|")
    for a, b in itertools.combinations(preds, 2):
        s = pair_stats(wrong[a], wrong[b], label[a], label[b])
        print(f"| {a} | {b} | {s['both_wrong']:.3f} | {s['phi']:.2f} | {s['yule_q']:.2f} | {s['disagreement']:.3f} |")


if __name__ == "__main__":
    main()
