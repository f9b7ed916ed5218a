"""Fitting a Stack (ecgcore.models.stack) on one fold: each part's fold-k model, its outputs, then the stacker.

1. Each part is fold k of a finished job (the task's `part_folds`), loaded
   with TrainedFold: its fold log must be of this kind, split, fold, dataset
   and track, its model config the one the stack was submitted with, and it
   must not have been fitted on the validation records itself. Its class
   probabilities on the fold's train, valid and test records come from its
   own pipeline over the dataset prepared for it (the driver's `parts`, by
   part name), as its own final scoring computed them; every part's records
   must be the stack's, in the same order.
2. The out-of-fold rule: the stacker of fold k is fitted on fold k's
   VALIDATION records only. No part's fold-k model trained on them (they
   only chose its best epoch or early-stopping round), so the stacker learns
   from out-of-sample outputs. "trees" chooses its rounds by an inner
   cross-validation on those same records (ecgcore.training.stackers).
3. The test fold is touched by nothing but the final scoring. The train
   score is reported too, but every part trained on those records (its
   outputs there are in-sample), and the valid score is the stacker's on its
   own training records: the fold's notes say so.

The fold info keeps each part's own scores ("parts") and what the stacker
chose ("stacker"), so a run shows what stacking added. Nothing trains by
epochs: the hotlog has no rows, and a retried fold starts over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ecgcore.data import pipeline as data
from ecgcore.errors import ProjectError
from ecgcore.inference import predict_proba
from ecgcore.models.stack import FEATURES, FEATURES_MODEL, fold_refusal, part_refusal
from ecgcore.trained import SCORES, TrainedFold
from ecgcore.training.loop import FoldRun, TrainResult
from ecgcore.training.stackers import inner_cv_trees, logistic_weights
from ecgcore.training.trainers import trainer

PARTS = ("train", "valid", "test")
IN_SAMPLE = ("train and valid scores are in-sample: every part trained on the train records, and the stacker was "
             "fitted on the valid records; only the test score is out of sample")


@dataclass(frozen=True)
class StackerData:
    """One fold part as the stacker sees it: its records, their labels, the stacker's inputs of each."""

    names: tuple[str, ...]
    labels: np.ndarray
    x: np.ndarray  # (records, parts x classes [+ features]): Stack.stacker_inputs


@dataclass(frozen=True)
class Fitted:
    """How the stacker's fit went, as TrainResult.after reads a loop: the trees' rounds (1 for the logistic)."""

    best_epoch: int
    epoch: int
    stop_reason: str


@trainer("stack", replicas=False)
def fit_stack(run: FoldRun, stack, track, info: dict, resume: dict | None, parts: dict) -> TrainResult:
    """Load every part's fold, fit the stacker on the validation records, score the stack on train/valid/test."""
    task, fold = run.task, run.fold
    p = task.model.model_parameters
    if len(task.part_folds) != len(p.parts):
        raise ProjectError(f"{task.task_id}: {len(task.part_folds)} part folds for the {len(p.parts)} parts")
    probs = {name: part_probabilities(run, stack, i, track, parts.get(name)) for i, name in enumerate(p.parts)}
    features = stack_features(run, parts.get(FEATURES)) if p.features else dict.fromkeys(PARTS)
    inputs = {part: StackerData(getattr(fold, part).names, getattr(fold, part).labels,
                                stack.stacker_inputs([probs[name][part] for name in p.parts], features[part]))
              for part in PARTS}
    fitted, info["stacker"] = fit_stacker(stack, inputs["valid"], run)
    stacked = {part: stack.combine(inputs[part].x) for part in PARTS}
    scores = {part: track.report(inputs[part].labels, stacked[part], None) for part in PARTS}
    info["parts"] = {name: {part: track.report(inputs[part].labels, probs[name][part])["score"] for part in PARTS}
                     for name in p.parts}
    info["notes"] = [*info.get("notes", []), IN_SAMPLE]
    run.observer.on_best(stack, fitted.best_epoch)
    info["elapsed_s"] = time.monotonic() - run.started
    predictions = {"names": list(inputs["test"].names), "targets": inputs["test"].labels, "probs": stacked["test"]}
    return TrainResult.after(fitted, scores=scores, predictions=predictions, info=info)


def load_part(task, i: int, track) -> TrainedFold:
    """Fold k of the i-th part, checked against the stack's task (ProjectError naming the part and its folder)."""
    name, folder = task.model.model_parameters.parts[i], task.part_folds[i]

    def refuse(why: str) -> ProjectError:
        return ProjectError(f"{task.task_id}: part {name}, fold folder {folder}: {why}")

    scores = Path(folder) / SCORES
    if not scores.is_file():
        raise refuse("unfinished (no scores.json)")
    problem = fold_refusal(task, json.loads(scores.read_text()))
    if problem is not None:
        raise refuse(problem)
    trained = TrainedFold.load(folder)
    problem = part_refusal(trained.model)
    if problem is not None:
        raise refuse(f"it cannot be a part: {problem}")
    if trained.model != task.model.model_parameters.models[i]:
        raise refuse("its model.json is not the one this stack was submitted with: submit the stack again")
    if tuple(trained.track.class_names) != tuple(track.class_names):
        raise refuse(f"its classes {', '.join(trained.track.class_names)} are not the stack's")
    return trained


def part_probabilities(run: FoldRun, stack, i: int, track, prepared) -> dict[str, np.ndarray]:
    """The i-th part's probabilities on each fold part; its network becomes the stack's i-th part."""
    task = run.task
    trained = load_part(task, i, track)
    fold = data.load_fold(replace(task, model=trained.model, init_checkpoint=None, part_folds=()), prepared)
    _same_records(task, task.model.model_parameters.parts[i], fold, run.fold)
    stack.parts[i] = trained.network(fold.pipeline.inputs).to(run.device)
    return {part: predict_proba(stack.parts[i], fold.pipeline, sub.eval_items, sub.owners, len(sub), run.device)
            for part, sub in ((part, getattr(fold, part)) for part in PARTS)}


def stack_features(run: FoldRun, prepared) -> dict[str, np.ndarray]:
    """The engineered features (records, features) of each fold part, NaN where a feature could not be computed."""
    from ecgcore.training.boosting import feature_matrix  # the feature set: only a stack that asks for features

    fold = data.load_fold(replace(run.task, model=FEATURES_MODEL, init_checkpoint=None, part_folds=()), prepared)
    _same_records(run.task, FEATURES, fold, run.fold)
    return {part: feature_matrix(getattr(fold, part)) for part in PARTS}


def _same_records(task, name: str, fold, own) -> None:
    for part in PARTS:
        if getattr(fold, part).names != getattr(own, part).names:
            raise ProjectError(f"{task.task_id}: part {name}: its {part} records are not the stack's (names or order)")


def fit_stacker(stack, train: StackerData, run: FoldRun) -> tuple[Fitted, dict]:
    """The stack's stacker fitted on train (the validation records) in place; how it went, what it chose."""
    task = run.task
    p = task.model.model_parameters
    if p.stacker == "trees":
        seed = int(np.random.SeedSequence([task.model.training_parameters.seed, task.fold]).generate_state(1)[0]
                   % (2**31 - 1))
        text, chosen = inner_cv_trees(train.x, train.labels, stack.n_classes, p, seed, task.threads)
        stack.stacker.set_booster(text)
        stopped = "early_stop" if chosen["rounds"] < p.max_rounds else "max_epochs"
        return Fitted(chosen["rounds"], chosen["rounds"], stopped), {"kind": "trees", **chosen}
    fill, center, scale = standardisation(train.x, len(p.parts) * stack.n_classes)
    weight, bias = logistic_weights((np.where(np.isnan(train.x), fill, train.x) - center) / scale, train.labels,
                                    p.stacker_c, stack.n_classes)
    with torch.no_grad():
        for buffer, value in ((stack.fill, fill), (stack.center, center), (stack.scale, scale)):
            buffer.copy_(torch.from_numpy(value))
        stack.stacker.weight.copy_(torch.from_numpy(weight))
        stack.stacker.bias.copy_(torch.from_numpy(bias))
    return Fitted(1, 1, "max_epochs"), {"kind": "logistic", "records": int(train.labels.size)}


def standardisation(x: np.ndarray, n_log: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fill, center, scale) per input: the first n_log (log-probabilities) pass unchanged; each feature's missing
    values take its median over x, then it is standardised (a feature missing or constant everywhere: 0, scale 1)."""
    fill, center, scale = np.zeros(x.shape[1]), np.zeros(x.shape[1]), np.ones(x.shape[1])
    feats = x[:, n_log:]
    seen = ~np.isnan(feats).all(axis=0)
    fill[n_log:][seen] = np.nanmedian(feats[:, seen], axis=0)
    filled = np.where(np.isnan(feats), fill[n_log:], feats)
    center[n_log:] = filled.mean(axis=0)
    spread = filled.std(axis=0)
    scale[n_log:] = np.where(spread > 0, spread, 1.0)
    return fill, center, scale
