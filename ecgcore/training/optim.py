"""Optimiser, learning-rate schedule, loss and mixup from a model file's training options.

Weight decay is never applied to biases or to the parameters of norm layers
(decaying a BatchNorm scale towards zero only fights the normalisation). The
schedule is a per-step factor: linear warm-up over warmup_epochs, then
constant, exponential (the reference's 0.9999 per step), step (x gamma every
step_epochs) or cosine (to zero at max_epochs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ecgcore.config.model import LossFunctionParameters, TrainingParameters

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            (no_decay if isinstance(module, _NORMS) or name.endswith("bias") or p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, tp: TrainingParameters) -> torch.optim.Optimizer:
    groups = parameter_groups(model, tp.weight_decay)
    if tp.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=tp.learning_rate)
    if tp.optimizer == "radam":
        return torch.optim.RAdam(groups, lr=tp.learning_rate, decoupled_weight_decay=True)
    return torch.optim.Adam(groups, lr=tp.learning_rate)


def schedule_name(tp: TrainingParameters) -> str:
    # The reference's boolean exponential_decay is the exponential schedule.
    return "exponential" if tp.exponential_decay else tp.schedule


def lr_factor(step: int, steps_per_epoch: int, max_epochs: int, tp: TrainingParameters) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based)."""
    warmup = tp.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    name = schedule_name(tp)
    if name == "exponential":
        return tp.decay_rate ** after
    if name == "step":
        return tp.step_gamma ** (after // (tp.step_epochs * steps_per_epoch))
    if name == "cosine":
        total = max(1, max_epochs * steps_per_epoch - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(after, total) / total))
    return 1.0


def make_scheduler(optimizer, steps_per_epoch: int, max_epochs: int, tp: TrainingParameters):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, max_epochs, tp))


def weighted_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
                  loss_cfg: LossFunctionParameters) -> torch.Tensor:
    """Per-record cross-entropy (label-smoothed if asked) times the weight of the true class."""
    per_record = nn.functional.cross_entropy(logits.float(), y, reduction="none",
                                             label_smoothing=loss_cfg.label_smoothing)
    return per_record * weights[y]


def mixup(x: torch.Tensor, lengths: torch.Tensor, alpha: float, rng: np.random.Generator):
    """Mix each record with a random partner: (x, lengths, partner index, lambda)."""
    lam = float(rng.beta(alpha, alpha))
    # non_blocking: the permutation is staged and queued, the host does not wait for the device
    perm = torch.as_tensor(rng.permutation(x.shape[0])).to(x.device, non_blocking=True)
    mixed = lam * x + (1 - lam) * x[perm]
    return mixed, torch.maximum(lengths, lengths[perm]), perm, lam


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """0.5 * sum(w^2) over weight matrices and kernels, as the reference's l2 loss term."""
    return 0.5 * sum((p ** 2).sum() for n, p in model.named_parameters() if "weight" in n and p.ndim > 1)


class Stepper:
    """One optimiser step: mixed precision, loss scaling, gradient clipping, schedule."""

    def __init__(self, model: nn.Module, tp: TrainingParameters, steps_per_epoch: int, max_epochs: int,
                 device: torch.device):
        self.model, self.tp, self.device = model, tp, device
        self.optimizer = make_optimizer(model, tp)
        self.scheduler = make_scheduler(self.optimizer, steps_per_epoch, max_epochs, tp)
        # float16 on CUDA (every GPU has it; bfloat16 needs Ampere or later) with loss scaling against
        # underflow; bfloat16 elsewhere (the CPU's autocast type) has float32's range and needs none.
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device.type, enabled=tp.amp and device.type == "cuda")

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.tp.amp)

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.tp.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.tp.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
