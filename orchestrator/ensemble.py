"""The `ensemble` command: score a job's fold models together on the split's hold-out part.

A split named ..._holdout keeps records that no fold trained, validated or
tested on. The ensemble averages the class probabilities of every finished
fold's best model on those records, as `predict` on a job folder does, and
is scored with the official CinC 2017 metric. Each fold model alone is
scored on the same records too, so the gain of ensembling is visible. The
result goes to <job folder>/ensemble.json, which `summarize` shows as its own
row, labelled as hold-out (not comparable fold by fold with the test rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgcore.data import dataset_for, split_of
from ecgcore.errors import ProjectError
from ecgcore.metrics import score_report
from orchestrator.foldlog import SCORES, write_json_atomic
from orchestrator.predict import fold_probabilities

ENSEMBLE = "ensemble.json"


def finished_folds(job_dir: Path) -> list[tuple[Path, dict]]:
    folds = [(d, json.loads((d / SCORES).read_text())) for d in sorted(job_dir.glob("fold*"))
             if (d / SCORES).exists()]
    if not folds:
        raise ProjectError(f"{job_dir}: no finished fold (no fold*/{SCORES})")
    return folds


def holdout_records(data_dir: str, split_name: str):
    """(names, labels, signals, fs) of the hold-out part of the split."""
    dataset = dataset_for(data_dir)
    numbers, split = split_of(dataset, data_dir, split_name)
    if not split.holdout:
        raise ProjectError(f"split {split_name} has no hold-out part; use a split named ..._holdout "
                           "(e.g. split_5_6_14_holdout) to score fold ensembles")
    held = set(split.holdout)
    index = [i for i, n in enumerate(numbers) if int(n) in held]
    return ([dataset.names[i] for i in index], dataset.labels[index], [dataset.signals[i] for i in index],
            dataset.fs)


def ensemble(job_dir: str | Path, say=print) -> int:
    job_dir = Path(job_dir)
    folds = finished_folds(job_dir)
    sources = {(s["data_dir"], s["split"]) for _, s in folds}
    if len(sources) != 1:
        raise ProjectError(f"{job_dir}: folds were trained on different data or splits: {sorted(sources)}")
    data_dir, split_name = sources.pop()
    names, labels, signals, fs = holdout_records(data_dir, split_name)
    per_fold = {s["fold"]: fold_probabilities(d, signals, fs) for d, s in folds}
    mean = np.mean(list(per_fold.values()), axis=0)
    report = score_report(labels, mean.argmax(axis=1))
    singles = {k: score_report(labels, p.argmax(axis=1))["score"] for k, p in per_fold.items()}
    result = {"job": job_dir.name, "split": split_name, "data_dir": data_dir, "n_records": len(names),
              "folds": sorted(per_fold), "ensemble": report, "single_fold_scores": singles,
              "single_fold_mean": float(np.mean(list(singles.values())))}
    write_json_atomic(job_dir / ENSEMBLE, result)
    say(f"{job_dir.name}: ensemble of {len(per_fold)} fold model(s) on {len(names)} hold-out records of "
        f"{split_name}: score {report['score']:.3f} (single folds {result['single_fold_mean']:.3f} mean) "
        f"-> {job_dir / ENSEMBLE}")
    return 0
