"""Multi-label training losses for the CinC 2020/2021 12-lead challenge (sigmoid outputs, C classes).

`multilabel_loss(name, ...)` returns the scalar batch loss for one of MULTILABEL_LOSSES:

- "bce": mean binary cross-entropy with logits.
- "weighted_bce": the same with a per-class positive weight, from `positive_weights` on the training labels.
- "confusion_bce": the DSAIL_SNU CinC 2020 entry's confusion-weighted BCE, as in their `get_loss`
  (seonwoo-min/PhysioNet-Challange-2020, src/train.py; weights from src/data.py `get_loss_weights_and_flags`,
  and config/run.json trains with class_weight false, confusion_weight true). With y the targets and W the
  reward matrix (rows = label, cols = output), a negative term of class j in a record weighs
  sum_l y_l (1 - W[l, j]) / sum_l y_l: the mean over the record's labels of how much the metric punishes
  answering j, so a confusion the metric forgives costs little. Records with no label weigh 0.5 on every
  class (their choice); positive terms weigh 1; the mean runs over every (record, class) term.
- "challenge": 1 - the challenge metric computed with sigmoid probabilities in place of binary outputs, after
  the BUTTeam CinC 2020 entry's `challange_metric_loss` (tomasvicar/BUTTeam, utils/losses.py): per record the
  soft |labels union outputs| = sum(y + p - y p), floored at 1 as the official max(1, .), A = (Y / union)^T P
  and score = sum(W * A). The same soft score is the custom loss of ISIBrno-AIMT's 2021 winner (Nejedly et
  al., "Classification of ECG using ensemble of residual CNNs with attention mechanism"; their `challengeloss`
  in team_code.py, seen in the copy ThomasK1991/Benchmark_ISIBrno, ISIBrnoAIMT/cinc2021/team_code.py, which
  divides by union + 1e-6 and adds it to BCE). Both sources return the raw -sum(W * A); here the score is
  normalised as the metric is (ecgcore.metrics.challenge), 0 for always answering sinus rhythm and 1 for answering
  the targets, so the loss neither grows with the batch size nor depends on how many labels a batch holds.

Every loss runs in float32 with autocast off, so it is safe inside torch.autocast (bfloat16 on CPU).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MULTILABEL_LOSSES = ("bce", "weighted_bce", "confusion_bce", "challenge")

# DSAIL_SNU's weight for every negative term of a record without any scored label.
UNLABELLED_NEGATIVE_WEIGHT = 0.5


def positive_weights(targets: np.ndarray, class_penalty: float) -> np.ndarray:
    """Per-class positive weight for weighted_bce from the training labels (records, classes) bool:
    (1-c) + c * n_negative/n_positive per class, c = class_penalty; a class with no positive gets 1."""
    labels = np.asarray(targets, dtype=bool)
    if labels.ndim != 2:
        raise ValueError(f"targets must be (records, classes); got shape {labels.shape}")
    n_pos = labels.sum(axis=0).astype(np.float64)
    n_neg = labels.shape[0] - n_pos
    ratio = np.divide(n_neg, n_pos, out=np.ones_like(n_pos), where=n_pos > 0)
    weights = (1.0 - class_penalty) + class_penalty * ratio
    # No positive in the training set: no evidence to rebalance with, so leave the class as plain BCE.
    return np.where(n_pos > 0, weights, 1.0)


def multilabel_loss(name: str, logits: torch.Tensor, targets: torch.Tensor, *, pos_weight: torch.Tensor | None,
                    weights: torch.Tensor, sinus_index: int) -> torch.Tensor:
    """Scalar batch loss. logits (B, C); targets (B, C) float in [0, 1] (soft targets allowed: mixup
    mixes them); pos_weight (C,) used by weighted_bce (and may be None for the others); weights is the
    challenge's (C, C) reward matrix (classes x classes, rows = label, cols = output, equivalent codes
    already merged); sinus_index = the column of sinus rhythm 426783006."""
    if name not in MULTILABEL_LOSSES:
        raise ValueError(f"unknown multi-label loss {name!r}; known: {', '.join(MULTILABEL_LOSSES)}")
    if logits.ndim != 2 or logits.shape != targets.shape:
        raise ValueError(f"logits and targets must both be (batch, classes); got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    # Logs, per-record sums and the metric's ratios lose too much in bfloat16/float16: compute in float32.
    with torch.autocast(device_type=logits.device.type, enabled=False):
        x = logits.float()
        y = targets.to(device=x.device, dtype=torch.float32)
        if name == "bce":
            return F.binary_cross_entropy_with_logits(x, y)
        if name == "weighted_bce":
            if pos_weight is None:
                raise ValueError("weighted_bce needs pos_weight (see positive_weights)")
            return F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.as_tensor(pos_weight).to(x))
        w = torch.as_tensor(weights).to(x)
        if name == "confusion_bce":
            return _confusion_bce(x, y, w)
        return 1.0 - soft_challenge_score(torch.sigmoid(x), y, w, sinus_index)


def _confusion_bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """DSAIL_SNU's loss: negative terms weighted by the mean over the record's labels of 1 - W[label, class]."""
    n_labels = targets.sum(dim=1, keepdim=True)
    punished = targets @ (1.0 - weights)  # (B, C): sum over labels l of y_l * (1 - W[l, j])
    # Divide only where the record has a label (soft labels from mixup count fractionally); the clamp keeps
    # the untaken branch of where() free of 0/0, whose NaN would otherwise leak into the gradient.
    negative_weight = torch.where(n_labels > 0, punished / n_labels.clamp_min(1e-12),
                                  torch.full_like(punished, UNLABELLED_NEGATIVE_WEIGHT))
    terms = targets * F.logsigmoid(logits) + negative_weight * (1.0 - targets) * F.logsigmoid(-logits)
    return -terms.mean()


def soft_modified_confusion(labels: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """The metric's A[l, p] with outputs in [0, 1]: each record adds y_l * p_p / max(1, sum(y + p - y p))."""
    union = (labels + outputs - labels * outputs).sum(dim=1, keepdim=True).clamp_min(1.0)
    return (labels / union).T @ outputs


def soft_challenge_score(probs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                         sinus_index: int) -> torch.Tensor:
    """The normalised challenge metric with probabilities (B, C) for outputs; with 0/1 probabilities it is
    ecgcore.metrics.challenge.challenge_score. The perfect classifier outputs the targets themselves (soft ones too)."""
    dtype = torch.promote_types(probs.dtype, torch.float32)
    with torch.autocast(device_type=probs.device.type, enabled=False):
        p = probs.to(dtype)
        y = targets.to(device=p.device, dtype=dtype)
        w = torch.as_tensor(weights).to(p)
        always_sinus = torch.zeros_like(y)
        always_sinus[:, sinus_index] = 1.0
        observed = (w * soft_modified_confusion(y, p)).sum()
        correct = (w * soft_modified_confusion(y, y)).sum()
        inactive = (w * soft_modified_confusion(y, always_sinus)).sum()
        span = correct - inactive
        # When no record tells the perfect classifier from the always-sinus one (every record sinus-only or
        # unlabelled), the official metric scores 0: so does this, with a zero gradient rather than 0/0.
        usable = span > 1e-6
        safe_span = torch.where(usable, span, torch.ones_like(span))
        return torch.where(usable, (observed - inactive) / safe_span, torch.zeros_like(observed))
