"""Self-supervised pre-training: a task of kind "pretrain" (labels unused).

The idea of the antonior92 CinC 2020 entry: before classifying, teach the
network what ECGs look like by asking it for samples it has not seen. Two
objectives, chosen in the model file's `pretraining` section:
  masked    spans of `span` samples (about mask_fraction of the record) are
            zeroed and must be rebuilt;
  forecast  the last forecast_fraction of each record is hidden and must be
            predicted from what precedes it.
The classifier's own trunk (`encode`) does the work; a small decoder maps
its features, linearly interpolated back to the input length, to samples.
The loss is the mean squared error on the hidden valid samples. The best
model by validation loss is saved as "net.*" (the classifier) beside
"decoder.*"; a fine-tuning model file names the run in `init_from` and
starts from "net.*" without the head.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from ecgcore import optim
from ecgcore.config import Pretraining
from ecgcore.errors import ProjectError
from ecgcore.models.common import time_mask

_EVAL_BATCH = 64


class PretrainNet(nn.Module):
    def __init__(self, net: nn.Module, n_leads: int, hidden: int = 64):
        super().__init__()
        if not hasattr(net, "encode"):
            raise ProjectError(f"{type(net).__name__} has no signal encoder: pre-training needs a "
                               "signal architecture (not the spectrogram CNN/CRNN)")
        self.net = net
        self.decoder = nn.Sequential(nn.Conv1d(net.encoder_channels, hidden, 1), nn.ReLU(),
                                     nn.Conv1d(hidden, n_leads, 1))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features, _ = self.net.encode(x, lengths)
        up = nn.functional.interpolate(features, size=x.shape[-1], mode="linear", align_corners=False)
        return self.decoder(up)


def hidden_mask(lengths: torch.Tensor, steps: int, cfg: Pretraining, rng: np.random.Generator) -> torch.Tensor:
    """(batch, 1, steps) float mask of the samples to hide, within each record's valid length."""
    mask = np.zeros((len(lengths), steps), dtype=np.float32)
    for i, n in enumerate(lengths.tolist()):
        if cfg.objective == "forecast":
            mask[i, n - max(1, int(n * cfg.forecast_fraction)):n] = 1
            continue
        n_spans = max(1, int(round(n * cfg.mask_fraction / cfg.span)))
        for start in rng.integers(0, max(1, n - cfg.span + 1), size=n_spans):
            mask[i, start:start + cfg.span] = 1
    return torch.from_numpy(mask[:, None, :])


def reconstruction_loss(model: PretrainNet, x, lengths, cfg: Pretraining, rng) -> torch.Tensor:
    hide = hidden_mask(lengths.cpu(), x.shape[-1], cfg, rng).to(x.device)
    hide = hide * time_mask(lengths, x.shape[-1], x.dtype)
    recon = model(x * (1 - hide), lengths)
    err = ((recon.float() - x) ** 2) * hide
    return err.sum() / (hide.sum() * x.shape[1]).clamp(min=1)


def pretrain(task, net, fold, device, rng, observer, started, info):
    """Train net's encoder on the fold's training records; return a TrainResult of losses."""
    from ecgcore.train import TrainResult

    if fold.pipeline.inputs.kind != "signal":
        raise ProjectError(f"{task.model.model_name}: pre-training needs a signal architecture")
    loop = _PretrainLoop(task, PretrainNet(net, fold.pipeline.inputs.n_leads).to(device), fold, device, rng,
                         observer, started)
    loop.run()
    loop.model.load_state_dict(loop.best_state)
    info["elapsed_s"] = time.monotonic() - started
    train_loss = evaluate(loop.model, fold.train, fold.pipeline, loop.cfg, device)
    scores = {"valid": {"loss": loop.best_loss}, "train": {"loss": train_loss}}
    return TrainResult(scores, loop.best_epoch, loop.epoch, loop.stop_reason, [], info)


class _PretrainLoop:
    """Epochs of reconstruction training, validation by loss, best model, early stop, time limit."""

    def __init__(self, task, model, fold, device, rng, observer, started):
        self.task, self.model, self.fold, self.device = task, model, fold, device
        self.rng, self.observer, self.started = rng, observer, started
        self.tp, self.cfg = task.model.training_parameters, task.model.pretraining
        steps = max(1, -(-len(fold.train) // self.tp.batch_size))
        self.stepper = optim.Stepper(model, self.tp, steps, task.max_epochs, device)
        self.best_loss, self.best_epoch, self.best_state = float("inf"), 0, None
        self.epoch, self.stop_reason = 0, "max_epochs"
        self.deadline = None if task.time_limit_s is None else time.monotonic() + task.time_limit_s

    def run(self) -> None:
        pipeline, train_x = self.fold.pipeline, None
        for epoch in range(1, self.task.max_epochs + 1):
            if train_x is None or (pipeline.varies and
                                   (epoch - 1) % self.task.model.data_augmentation.reload_step == 0):
                train_x = pipeline.train_items(self.fold.train.signals, self.rng)
            loss, out_of_time = self.train_epoch(train_x)
            self.epoch = epoch
            if epoch % self.tp.validation_step == 0 or epoch == self.task.max_epochs or out_of_time:
                self.validate(epoch, loss)
                if epoch - self.best_epoch >= self.tp.early_stop_wait:
                    self.stop_reason = "early_stop"
                    return
            if out_of_time and epoch < self.task.max_epochs:
                self.stop_reason = "time_limit"
                return

    def train_epoch(self, train_x) -> tuple[float, bool]:
        from ecgcore.train import epoch_batches

        self.model.train()
        # Labels only spread the classes over the batches; the objective never sees them.
        lengths = np.array([f.shape[0] for f in train_x])
        losses = []
        for batch in epoch_batches(self.fold.train.labels, lengths, self.tp.batch_size, 0.0, self.rng):
            x, lengths_t = self.fold.pipeline.to_tensors([train_x[i] for i in batch], self.device)
            with self.stepper.autocast():
                loss = reconstruction_loss(self.model, x, lengths_t, self.cfg, self.rng)
            self.stepper.step(loss)
            losses.append(float(loss.detach()))
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return float(np.mean(losses)), True
        return float(np.mean(losses)), False

    def validate(self, epoch: int, train_loss: float) -> None:
        valid = evaluate(self.model, self.fold.valid, self.fold.pipeline, self.cfg, self.device)
        if valid <= self.best_loss:
            self.best_loss, self.best_epoch = valid, epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.observer.on_best(self.model, epoch)
        self.observer.on_validation({"epoch": epoch, "best_epoch": self.best_epoch, "train_loss": train_loss,
                                     "valid_loss": valid, "learning_rate": self.stepper.lr,
                                     "elapsed_s": time.monotonic() - self.started})


@torch.no_grad()
def evaluate(model: PretrainNet, subset, pipeline, cfg: Pretraining, device) -> float:
    """Mean reconstruction loss over a subset's evaluation inputs, with a fixed mask draw."""
    model.eval()
    rng = np.random.default_rng(0)  # the same hidden spans at every validation
    items = subset.eval_items
    total, weight = 0.0, 0
    for start in range(0, len(items), _EVAL_BATCH):
        x, lengths = pipeline.to_tensors(items[start:start + _EVAL_BATCH], device)
        total += float(reconstruction_loss(model, x, lengths, cfg, rng)) * x.shape[0]
        weight += x.shape[0]
    return total / max(weight, 1)
