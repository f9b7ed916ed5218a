"""Multi-label training (the 12-lead tracks, PTB-XL, a labels file with several labels): sigmoid outputs.

The loss is the model file's (bce, weighted_bce, confusion_bce, challenge:
ecgcore.training.losses). Label smoothing pulls the 0/1 targets towards 1/2, and
mixup mixes the targets with the inputs, which the BCE losses and the
differentiable challenge metric both take as soft targets. At every
validation the per-class thresholds are tuned on the validation fold to
maximise the track's score, and the model is kept by that tuned score;
the test fold, when logged, is scored with the validation fold's thresholds,
never its own, so the test score stays honest.
"""

from __future__ import annotations

import numpy as np
import torch

from ecgcore.inference import predict_proba
from ecgcore.training import optim
from ecgcore.training.loop import EpochLoop, FoldRun
from ecgcore.training.losses import multilabel_loss, positive_weights


def loss_name(task) -> str:
    loss = task.model.loss_function_parameters.loss
    return "bce" if loss == "auto" else loss


def multilabel_info(task, fold) -> dict:
    """What the loss is built from, for the fold's scores.json."""
    cfg = task.model.loss_function_parameters
    info = {"loss": loss_name(task)}
    if info["loss"] == "weighted_bce":
        info["positive_weights"] = positive_weights(fold.train.labels, cfg.class_penalty).tolist()
    return info


class MultiLabelLoop(EpochLoop):
    """Sigmoid outputs, a multi-label loss, validation by the track's score at tuned thresholds."""

    def __init__(self, run: FoldRun, model, track, info: dict):
        super().__init__(run, model)
        task, fold, device = run.task, run.fold, run.device
        self.track = track
        self.compensation = self.tp.dataset_compensation
        self.loss_cfg = task.model.loss_function_parameters
        self.loss = loss_name(task)
        weights = info.get("positive_weights")
        self.pos_weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
        # The reward matrix of the losses that need one (confusion_bce, challenge: the CinC 12-lead tracks only).
        self.reward = None if track.reward is None else torch.tensor(track.reward, dtype=torch.float32,
                                                                      device=device)
        self.targets = torch.as_tensor(np.asarray(fold.train.labels, dtype=np.float32))

    def batch_loss(self, x, lengths, batch) -> torch.Tensor:
        # from pageable memory a non_blocking copy is staged at once: the host does not wait for the device
        y = self.targets[torch.as_tensor(batch)].to(self.device, non_blocking=True)
        if self.loss_cfg.label_smoothing > 0:
            y = y * (1 - self.loss_cfg.label_smoothing) + 0.5 * self.loss_cfg.label_smoothing
        if self.tp.mixup > 0 and x.shape[0] > 1:
            x, lengths, perm, lam = optim.mixup(x, lengths, self.tp.mixup, self.draw_rng)
            y = lam * y + (1 - lam) * y[perm]
        loss = multilabel_loss(self.loss, self.train_model(x, lengths), y, pos_weight=self.pos_weight,
                               weights=self.reward, sinus_index=self.track.sinus)
        if self.loss_cfg.l2_penalty > 0:
            loss = loss + self.loss_cfg.l2_penalty * optim.l2_penalty(self.model)
        return loss

    def evaluate(self) -> tuple[float, dict]:
        reports, thresholds = {}, None
        for part in ("valid", "test") if self.task.log_test_score else ("valid",):
            subset = getattr(self.fold, part)
            probs = predict_proba(self.model, self.fold.pipeline, subset.eval_items, subset.owners,
                                  len(subset), self.device, multilabel=True, batch_size=self.eval_batch)
            if thresholds is None:  # the validation fold's, applied to the test fold too
                thresholds = self.track.tune(subset.labels, probs)
            reports[part] = self.track.report(subset.labels, probs, thresholds)
        row = {}
        for part, report in reports.items():
            row.update({f"{part}_score": report["score"], f"{part}_auroc": report["auroc"],
                        f"{part}_auprc": report["auprc"], f"{part}_f1": report["f1"]})
        score = reports["valid"]["score"]  # None: undefined on this validation part (no class with both values)
        return float("nan") if score is None else score, row
