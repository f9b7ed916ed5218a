"""Hand-made finished CinC 2017 jobs (scores.json + predictions.csv per fold) for summarize, compare, report.

A job's predictions are the true labels with a given fraction of records answered wrongly,
fold by fold, so that its scores.json agrees with its predictions.csv as a real run's do.
"""

from __future__ import annotations

import csv

import numpy as np

from ecgcore.io.cinc2017 import CLASSES
from ecgcore.metrics.cinc2017 import score_report
from tests.conftest import write_json

# 5 folds of 40 records: 22 N, 6 A, 9 O, 3 noise each (the CinC 2017 proportions, roughly).
FOLD_LABELS = np.repeat(np.arange(4), [22, 6, 9, 3])


def write_job(log, arch: str, job: str, error_rates, seed: int, split: str = "split_5_6_14",
              data_dir: str = "/data/cinc2017", folds=None) -> list[float]:
    """Write one job; error_rates per fold; returns the fold test scores."""
    rng = np.random.default_rng(seed)
    folds = list(range(len(error_rates))) if folds is None else folds
    scores = []
    for k, rate in zip(folds, error_rates, strict=True):
        labels = FOLD_LABELS
        wrong = rng.random(labels.size) < rate
        predictions = np.where(wrong, (labels + rng.integers(1, 4, labels.size)) % 4, labels)
        # Fold k of every repeat of a repeated split tests the same records (a record is tested once per repeat).
        names = [f"A{(k % 5) * 1000 + i:05d}" for i in range(labels.size)]
        scores.append(_write_fold(log / arch / job / f"fold{k}", job, k, folds, split, data_dir,
                                  names, labels, predictions))
    return scores


def _write_fold(d, job, k, cvids, split, data_dir, names, labels, predictions) -> float:
    probs = np.full((labels.size, 4), 0.05)
    probs[np.arange(labels.size), predictions] = 0.85
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "predictions.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["record", "label", "prediction", "p_N", "p_A", "p_O", "p_noise"])
        for name, label, pred, p in zip(names, labels, predictions, probs, strict=True):
            out.writerow([name, CLASSES[label], CLASSES[pred], *[f"{q:.6f}" for q in p]])
    test = score_report(labels, predictions)
    train = {**score_report(np.repeat(np.arange(4), [90, 25, 35, 10]), np.repeat(np.arange(4), [90, 25, 35, 10])),
             "n": 160}
    valid = {**train, "n": 32}
    write_json(d / "job.json", {"cvids": list(cvids), "cvid": k, "name": job, "split": split})
    write_json(d / "scores.json", {"fold": k, "job": job, "kind": "classify", "split": split, "data_dir": data_dir,
                                   "challenge": 2017, "classes": list(CLASSES), "train": train, "valid": valid,
                                   "test": test, "provenance": {"git_commit": "abc123", "host": "vm"}})
    return test["score"]
