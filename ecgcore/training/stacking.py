"""Fitting a HybridStack on one fold: the deep part, the features booster, then the stacker.

1. The deep part trains exactly as its own model file would alone (same
   seeds, the epoch loop, early stop on the validation fold); its validations
   are the fold's hotlog rows. With `init_from` in the hybrid's model file it
   is not trained here: fold k of that job (trained by that model file on the
   same split and fold; submit checks both) is loaded as it is, so a deep run
   done once serves several stackers.
2. The booster trains as its FeatureGBM file says (early stop on the
   validation fold), on the features alone ("logistic") or on the features
   and the deep part's log-probabilities of the training records ("trees").
3. "logistic": a multinomial logistic regression (scikit-learn) over both
   parts' log-probabilities of the validation records, which neither part
   trained on.

The test fold is touched by nothing above, so its score is the fold's
honest score, as for every other model. The fold info keeps each part's
own scores ("parts"), so a run shows what stacking added.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from ecgcore.data import pipeline as data
from ecgcore.errors import ProjectError
from ecgcore.inference import predict_proba
from ecgcore.models import create_model
from ecgcore.models.hybrid import log_probs
from ecgcore.training.boosting import train_booster
from ecgcore.training.classify import SingleLabelLoop, class_weights
from ecgcore.training.loop import FoldRun, TrainingObserver, TrainResult
from ecgcore.training.stackers import logistic_weights
from ecgcore.training.trainers import trainer

PARTS = ("train", "valid", "test")


class _RowsOnly(TrainingObserver):
    """Passes a part's validation rows on (the hotlog), not its best model or checkpoints: the fold's
    best model is the whole stack, saved at the end, and a retried hybrid starts over."""

    def __init__(self, observer: TrainingObserver):
        self.observer = observer

    def on_validation(self, row: dict) -> None:
        self.observer.on_validation(row)


def part_task(task, model, started: float):
    """The task of one part: its own model config, epochs capped as the hybrid's, the time left."""
    cap = min(task.max_epochs, model.training_parameters.max_epochs)
    left = None if task.time_limit_s is None else max(1.0, task.time_limit_s - (time.monotonic() - started))
    return replace(task, model=model, max_epochs=cap, time_limit_s=left, init_checkpoint=None)


def train_deep(run: FoldRun, hybrid, parts: dict, track) -> tuple[dict, object, dict]:
    """The deep part trained (or loaded) on the fold: its probabilities per fold part, its loop, its info."""
    task, device = run.task, run.device
    p = task.model.model_parameters
    deep_task = part_task(task, p.deep, run.started)
    seed = np.random.SeedSequence([p.deep.training_parameters.seed, task.fold])
    torch.manual_seed(int(seed.generate_state(1)[0]))  # as train_task seeds a model trained alone
    fold = data.load_fold(deep_task, parts.get("deep"))
    hybrid.deep = create_model(p.deep, fold.pipeline.inputs, len(track.class_names)).to(device)
    weights = class_weights(fold.train.labels, p.deep.loss_function_parameters.class_penalty, len(track.class_names))
    deep_run = replace(run, task=deep_task, fold=fold, rng=np.random.default_rng(seed),
                       observer=_RowsOnly(run.observer))
    loop = SingleLabelLoop(deep_run, hybrid.deep, track, weights)
    if task.init_checkpoint:
        _load_deep(hybrid.deep, task.init_checkpoint)
    else:
        loop.run()
        hybrid.deep.load_state_dict(loop.best_state)
    probs = {part: predict_proba(hybrid.deep, fold.pipeline, getattr(fold, part).eval_items,
                                 getattr(fold, part).owners, len(getattr(fold, part)), device) for part in PARTS}
    info = {"best_epoch": loop.best_epoch, "epochs_run": loop.epoch, "from": task.init_checkpoint}
    return probs, (fold, loop), info


def _load_deep(deep, path: str) -> None:
    try:
        deep.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError) as exc:
        raise ProjectError(f"the deep part cannot be loaded from {path}: is it a fold of a job of the deep "
                           f"part's model file? ({str(exc).splitlines()[0]})") from None


def train_features(run: FoldRun, hybrid, parts: dict, deep_fold, deep_log: dict, info: dict):
    """The booster fitted on the fold; returns the (records, features) matrix per fold part and its rounds."""
    p = run.task.model.model_parameters
    feat_task = part_task(run.task, p.features, run.started)
    fold = data.load_fold(feat_task, parts.get("features"))
    for part in PARTS:
        if getattr(fold, part).names != getattr(deep_fold, part).names:
            raise ProjectError(f"{part}: the parts' records differ (names or order)")
    if p.stacker == "trees":  # the booster sees the deep log-probabilities as more features
        for part in PARTS:
            sub = getattr(fold, part)
            signals = tuple(np.concatenate([x, d[:, None].astype(x.dtype)]) for x, d in
                            zip(sub.signals, deep_log[part], strict=True))
            fold = replace(fold, **{part: replace(sub, signals=signals)})
    part_info = {"class_weights": class_weights(fold.train.labels, p.features.loss_function_parameters.class_penalty,
                                                len(run.task.open_track().class_names)).tolist()}
    feat_run = replace(run, task=feat_task, fold=fold, observer=TrainingObserver())
    rounds = train_booster(feat_run, hybrid.booster, part_info)
    info["notes"] = info.get("notes", []) + part_info.get("notes", [])
    n_features = hybrid.features_pipeline.inputs.n_features  # without the deep columns "trees" appended
    feats = {part: np.stack([x[:n_features, 0] for x in getattr(fold, part).signals]).astype(np.float64)
             for part in PARTS}
    return feats, rounds


def fit_stacker(hybrid, deep_log: np.ndarray, feat_log: np.ndarray, labels: np.ndarray, c: float) -> None:
    """The logistic stacker fitted on (validation) log-probabilities into hybrid.stacker's weights."""
    weight, bias = logistic_weights(np.concatenate([deep_log, feat_log], axis=1), labels, c, hybrid.n_classes)
    with torch.no_grad():
        hybrid.stacker.weight.copy_(torch.from_numpy(weight))
        hybrid.stacker.bias.copy_(torch.from_numpy(bias))


@trainer("stacking", replicas=False, fine_tunes=False)  # init_checkpoint is the deep part's fold, read here
def train_stack(run: FoldRun, hybrid, track, info: dict, resume: dict | None, parts: dict) -> TrainResult:
    """Fit both parts and the stacker on the fold; score the stack on train/valid/test (a retry starts over)."""
    p = run.task.model.model_parameters
    deep_probs, (deep_fold, loop), info["deep"] = train_deep(run, hybrid, parts, track)
    deep_log = {part: log_probs(probs) for part, probs in deep_probs.items()}
    feats, rounds = train_features(run, hybrid, parts, deep_fold, deep_log, info)
    info["features"] = {"best_round": rounds.best_epoch, "rounds_run": rounds.epoch}
    labels = {part: getattr(deep_fold, part).labels for part in PARTS}
    info["parts"] = {"deep": {part: track.report(labels[part], deep_probs[part])["score"]
                              for part in PARTS}}
    if p.stacker == "logistic":
        feat_log = {part: hybrid.booster(torch.from_numpy(feats[part])).double().numpy() for part in PARTS}
        fit_stacker(hybrid, deep_log["valid"], feat_log["valid"], labels["valid"], p.stacker_c)
        info["parts"]["features"] = {part: track.report(labels[part], feat_log[part])["score"]
                                     for part in PARTS}
    probs = {part: hybrid.combine(deep_probs[part], feats[part]) for part in PARTS}
    scores = {part: track.report(labels[part], probs[part], None) for part in PARTS}
    run.observer.on_best(hybrid, loop.best_epoch)
    info["elapsed_s"] = time.monotonic() - run.started
    predictions = {"names": list(deep_fold.test.names), "targets": labels["test"], "probs": probs["test"]}
    return TrainResult.after(loop, scores=scores, predictions=predictions, info=info)
