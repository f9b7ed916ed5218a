"""Classification by epochs (the trainer "epochs"): class weights, the single-label loop, the final scoring.

The single-label loop follows the reference training of Zihlmann et al.:
class-weighted cross-entropy with weights (1-c) + c*100/class_percent,
oversampling of rare classes by dataset_compensation (EpochLoop), the best
model by the track's validation score. A multi-label track trains with
ecgcore.training.multilabel's loop instead. `final_scores` scores the best
model on train/valid/test, multi-label thresholds tuned on the validation
fold; the boosted trainer (ecgcore.training.boosting) ends with it too, and
the stacked one (ecgcore.training.stacking) trains its deep part with
`SingleLabelLoop`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ecgcore.inference import predict_proba
from ecgcore.training import multilabel, optim
from ecgcore.training.loop import EpochLoop, FoldRun, TrainResult
from ecgcore.training.trainers import trainer


def class_weights(train_labels: np.ndarray, class_penalty: float, n_classes: int) -> np.ndarray:
    """(1-c) + c*100/percent per class; a class absent from training gets weight 1."""
    counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
    percent = 100.0 * counts / counts.sum()
    occurrence = np.divide(100.0, percent, out=np.ones_like(percent), where=percent > 0)
    return (1 - class_penalty) + class_penalty * occurrence


class SingleLabelLoop(EpochLoop):
    """Single-label classification: class-weighted cross-entropy, validation by the track's score."""

    def __init__(self, run: FoldRun, model, track, weights):
        super().__init__(run, model)
        self.track = track
        self.compensation = self.tp.dataset_compensation
        self.loss_cfg = run.task.model.loss_function_parameters
        self.weights = torch.tensor(weights, dtype=torch.float32, device=run.device)

    def batch_loss(self, x, lengths, batch) -> torch.Tensor:
        # A host tensor copied without waiting: as_tensor(..., device=cuda) would block on every batch.
        y = torch.as_tensor(self.fold.train.labels[batch]).to(self.device, non_blocking=True)
        if self.tp.mixup > 0 and x.shape[0] > 1:
            x, lengths, perm, lam = optim.mixup(x, lengths, self.tp.mixup, self.draw_rng)
            logits = self.train_model(x, lengths)
            per_record = (lam * optim.weighted_loss(logits, y, self.weights, self.loss_cfg)
                          + (1 - lam) * optim.weighted_loss(logits, y[perm], self.weights, self.loss_cfg))
        else:
            per_record = optim.weighted_loss(self.train_model(x, lengths), y, self.weights, self.loss_cfg)
        loss = per_record.mean()
        if self.loss_cfg.l2_penalty > 0:
            loss = loss + self.loss_cfg.l2_penalty * optim.l2_penalty(self.model)
        return loss

    def evaluate(self) -> tuple[float, dict]:
        valid = self._score(self.fold.valid)
        row = {"valid_accuracy": valid["accuracy"], "valid_score": valid["score"], "valid_f1": valid["f1"]}
        if self.task.log_test_score:
            test = self._score(self.fold.test)
            row.update(test_accuracy=test["accuracy"], test_score=test["score"], test_f1=test["f1"])
        return valid["score"], row

    def _score(self, subset) -> dict:
        probs = predict_proba(self.model, self.fold.pipeline, subset.eval_items, subset.owners, len(subset),
                              self.device)
        return self.track.report(subset.labels, probs)


@trainer("epochs", replicas=True)
def fit_epochs(run: FoldRun, model, track, info: dict, resume: dict | None, parts: dict) -> TrainResult:
    """Every network: the epoch loop of the track's output kind, continued from resume, then the final scores."""
    task, fold = run.task, run.fold
    if track.multilabel:
        info.update(multilabel.multilabel_info(task, fold))
        loop = multilabel.MultiLabelLoop(run, model, track, info)
    else:
        info["class_weights"] = class_weights(fold.train.labels, task.model.loss_function_parameters.class_penalty,
                                              len(track.class_names)).tolist()
        loop = SingleLabelLoop(run, model, track, info["class_weights"])
    if resume is not None:
        loop.restore(resume)
        info["resumed_after_epoch"] = resume["epoch"]
    loop.run()
    if run.replicas.active:
        return _replicated_result(run, model, track, loop, info)
    model.load_state_dict(loop.best_state)
    return final_scores(run, model, track, loop, info)


def _replicated_result(run: FoldRun, model, track, loop, info: dict) -> TrainResult:
    """Rank 0's scores of the best model, with every rank's digest of its weights; the other ranks stop here."""
    replicas = run.replicas
    info["replicas"] = {"world_size": replicas.world, "final_weights_sha256": replicas.weight_digests(model),
                        "best_weights_sha256": replicas.weight_digests_of(loop.best_state)}
    info["replicas"]["identical"] = all(len(set(info["replicas"][k])) == 1
                                        for k in ("final_weights_sha256", "best_weights_sha256"))
    if not replicas.leader:
        return TrainResult.after(loop, scores={}, info=info)
    model.load_state_dict(loop.best_state)
    return final_scores(run, model, track, loop, info)


def final_scores(run: FoldRun, model, track, loop, info: dict) -> TrainResult:
    """The best model scored on each part; multi-label thresholds come from the validation fold.

    loop: what the result reports of how training went (best_epoch, epoch, stop_reason): an epoch loop's or
    a booster's rounds.
    """
    fold, device = run.fold, run.device
    probs = {part: predict_proba(model, fold.pipeline, getattr(fold, part).eval_items, getattr(fold, part).owners,
                                 len(getattr(fold, part)), device, multilabel=track.multilabel)
             for part in ("train", "valid", "test")}
    thresholds = track.tune(fold.valid.labels, probs["valid"])
    scores = {part: track.report(getattr(fold, part).labels, p, thresholds) for part, p in probs.items()}
    predictions = {"names": list(fold.test.names), "targets": fold.test.labels, "probs": probs["test"]}
    info["elapsed_s"] = time.monotonic() - run.started
    return TrainResult.after(loop, scores=scores, predictions=predictions,
                             thresholds=None if thresholds is None else thresholds.tolist(), info=info)
