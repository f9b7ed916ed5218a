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

import time

import numpy as np
import torch
from torch import nn

from ecgcore.config.model import Pretraining
from ecgcore.data import batches as batching
from ecgcore.errors import ProjectError
from ecgcore.models.common import time_mask
from ecgcore.training.loop import EpochLoop, FoldRun, TrainResult
from ecgcore.training.trainers import trainer


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


def reconstruction_loss(model: PretrainNet, x, lengths, cfg: Pretraining, rng,
                        host_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """host_lengths: lengths already on the CPU; with them the mask is drawn without reading the device."""
    host = lengths.cpu() if host_lengths is None else host_lengths
    hide = hidden_mask(host, x.shape[-1], cfg, rng).to(x.device, non_blocking=True)
    hide = hide * time_mask(lengths, x.shape[-1], x.dtype)
    recon = model(x * (1 - hide), lengths)
    err = ((recon.float() - x) ** 2) * hide
    return err.sum() / (hide.sum() * x.shape[1]).clamp(min=1)


@trainer("pretrain", replicas=True)
def pretrain(run: FoldRun, net, track, info: dict, resume: dict | None, parts: dict) -> TrainResult:
    """Train net's encoder on the fold's training records (labels unused); return a TrainResult of losses."""
    fold, device = run.fold, run.device
    loop = _PretrainLoop(run, PretrainNet(net, fold.pipeline.inputs.n_leads).to(device))
    if resume is not None:
        loop.restore(resume)
        info["resumed_after_epoch"] = resume["epoch"]
    loop.run()
    loop.model.load_state_dict(loop.best_state)
    info["elapsed_s"] = time.monotonic() - run.started
    train_loss = evaluate(loop.model, fold.train, fold.pipeline, loop.cfg, device, loop.eval_batch)
    scores = {"valid": {"loss": loop.best_value}, "train": {"loss": train_loss}}
    return TrainResult.after(loop, scores=scores, info=info)


class _PretrainLoop(EpochLoop):
    """Reconstruction training; the best model has the lowest validation loss.

    The labels only spread the classes over the batches (no oversampling);
    the objective never sees them.
    """

    higher_is_better = False

    def __init__(self, run: FoldRun, model):
        super().__init__(run, model)
        self.cfg = run.task.model.pretraining

    def batch_loss(self, x, lengths, batch) -> torch.Tensor:
        return reconstruction_loss(self.train_model, x, lengths, self.cfg, self.draw_rng,
                                   host_lengths=self.batch_lengths)

    def evaluate(self) -> tuple[float, dict]:
        valid = evaluate(self.model, self.fold.valid, self.fold.pipeline, self.cfg, self.device, self.eval_batch)
        return valid, {"valid_loss": valid}


@torch.no_grad()
def evaluate(model: PretrainNet, subset, pipeline, cfg: Pretraining, device, batch_size: int | None = None) -> float:
    """Mean reconstruction loss over a subset's evaluation inputs, with a fixed mask draw.

    The sum stays on the device, in float64 (each term exactly the float(loss) * n of old), and is read once.
    """
    model.eval()
    rng = np.random.default_rng(0)  # the same hidden spans at every validation
    items = subset.eval_items
    size = batch_size or batching.eval_batch_size(device)
    chunks = [np.arange(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    total, weight = torch.zeros((), dtype=torch.float64, device=device), 0
    with batching.prefetch(batching.host_batches(pipeline, items, chunks, device.type == "cuda")) as ready:
        for _, x, lengths in ready:  # the mask draws stay on this thread, in batch order
            x_d, lengths_d = batching.to_device(x, lengths, device)
            total += reconstruction_loss(model, x_d, lengths_d, cfg, rng, host_lengths=lengths).double() * len(x)
            weight += len(x)
    return float(total) / max(weight, 1)
