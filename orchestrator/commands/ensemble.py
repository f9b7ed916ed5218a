"""The `ensemble` command: score a job's fold models together on the split's hold-out part.

A split named ..._holdout keeps records that no fold trained, validated or
tested on. The ensemble averages the class probabilities of every finished
fold's best model on those records, as `predict` on a job folder does (and,
for a multi-label track, the folds' per-class thresholds too), and is
scored with the track's metric. Each fold model alone is scored
on the same records too, with its own thresholds, so the gain of ensembling
is visible. The result goes to <job folder>/ensemble.json, which
`summarize` shows as its own row, labelled as hold-out (not comparable fold
by fold with the test rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgcore.data.pipeline import dataset_for, split_of
from ecgcore.errors import ProjectError
from ecgcore.records import Records
from ecgcore.trained import TrainedFold, ensemble_mean
from orchestrator.logdir.reader import ENSEMBLE, SCORES, FoldDir, JobDir, write_json_atomic


def finished_folds(job_dir: Path) -> list[tuple[FoldDir, dict]]:
    """Each finished fold with its scores."""
    folds = [(f, f.scores()) for f in JobDir(job_dir).finished_folds()]
    if not folds:
        raise ProjectError(f"{job_dir}: no finished fold (no fold*/{SCORES})")
    return folds


def holdout_records(track, data_dir: str, split_name: str) -> Records:
    """The hold-out part of the split."""
    records = dataset_for(track, data_dir, warn=True)
    ids, split = split_of(records, track, split_name)
    if not split.holdout:
        raise ProjectError(f"split {split_name} has no hold-out part; use a split named ..._holdout "
                           "(e.g. split_5_6_14_holdout) to score fold ensembles")
    held = set(split.holdout)
    return records.take([i for i, n in enumerate(ids) if n in held])


def ensemble(job_dir: str | Path, say=print) -> int:
    job_dir = Path(job_dir)
    folds = finished_folds(job_dir)
    sources = {(f.track(), s["data_dir"], s["split"]) for f, s in folds}
    if len(sources) != 1:
        raise ProjectError(f"{job_dir}: folds were trained on different tracks, data or splits: "
                           f"{sorted((t.name, d, s) for t, d, s in sources)}")
    track, data_dir, split_name = sources.pop()
    records = holdout_records(track, data_dir, split_name)
    trained = {s["fold"]: TrainedFold.load(d.path) for d, s in folds}
    prepared_by = {}
    probs = {k: fold.probabilities(records, prepared_by) for k, fold in trained.items()}
    mean, thresholds = ensemble_mean(list(trained.values()), list(probs.values()))
    report = track.report(records.targets, mean, thresholds)
    singles = {k: track.report(records.targets, probs[k], fold.thresholds)["score"] for k, fold in trained.items()}
    result = {"job": job_dir.name, "split": split_name, "data_dir": data_dir, "track": track.name,
              "challenge": track.label,
              "n_records": len(records), "folds": sorted(trained), "ensemble": report,
              "single_fold_scores": singles, "single_fold_mean": float(np.mean(list(singles.values())))}
    if thresholds is not None:
        result["thresholds"] = dict(zip(track.class_names, thresholds.tolist(), strict=True))
    write_json_atomic(job_dir / ENSEMBLE, result)
    say(f"{job_dir.name}: ensemble of {len(trained)} fold model(s) on {len(records)} hold-out records of "
        f"{split_name}: score {report['score']:.3f} (single folds {result['single_fold_mean']:.3f} mean) "
        f"-> {job_dir / ENSEMBLE}")
    return 0
