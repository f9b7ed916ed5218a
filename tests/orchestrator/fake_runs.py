"""Hand-made finished CinC 2017 jobs (scores.json + predictions.csv per fold) for summarize, compare, report.

Also a search of many such variants (write_search), and unfinished fold folders for `status` (write_unfinished).

A job's predictions are the true labels with a given fraction of records answered wrongly,
fold by fold, so that its scores.json agrees with its predictions.csv as a real run's do.
"""

from __future__ import annotations

import csv
import os
import socket
import time

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
                                   "test": test, "epochs_run": 12, "best_epoch": 9,
                                   "provenance": {"git_commit": "abc123", "host": "vm"}})
    return test["score"]


def write_search(log, arch: str, job: str, n_variants: int, n_folds: int = 5,
                 split: str = "split_5_6_14") -> list[str]:
    """A searched job's n_variants variants <job>__learning_rate-<v> of n_folds finished folds each.

    Variant i answers about 10% + 30% i / n_variants of its records wrongly (the first is best, up to
    noise); returns the variant names.
    """
    names = []
    for i in range(n_variants):
        name = f"{job}__learning_rate-{10 ** (-4 + 3 * i / max(1, n_variants)):.6g}"
        rate = 0.1 + 0.3 * i / n_variants
        write_job(log, arch, name, [rate] * n_folds, seed=i, split=split)
        names.append(name)
    return names


HOTLOG = "epoch,best_epoch,train_loss,valid_accuracy,valid_score,learning_rate,elapsed_s\n" \
         "1,1,1.0,0.5,0.40,0.001,3\n2,1,0.9,0.5,0.30,0.001,6\n"


def write_unfinished(fold, state: str, pid: int | None = None) -> None:
    """A fold folder that is pending, running (this process), stopped (pid: a process that has ended) or failed."""
    fold.mkdir(parents=True, exist_ok=True)
    if state == "failed":
        (fold / "error.txt").write_text("Traceback ...\nRuntimeError: CUDA out of memory\n")
    elif state in ("running", "stopped"):
        write_json(fold / "attempt.json", {"host": socket.gethostname(), "started": time.time(), "attempt": 1,
                                           "pid": os.getpid() if state == "running" else pid})
        (fold / "hotlog.csv").write_text(HOTLOG)
