"""What an exported graph computes: one record in, its class probabilities out, as `predict` gets them.

`predict` prepares a record (leads, filters, resampling, standardisation),
cuts its evaluation windows, turns each piece into the model's input (a log
spectrogram, or the signal itself), runs the network, takes the softmax (or
a sigmoid per class for multi-label models), averages the windows and, for a
job, the folds. What is in the graph depends on the input kind:

- signal networks: the graph takes the record after the resampling and does
  the rest: standardisation, windows, network(s), probabilities, both means.
  Lead selection, notch and band-pass filters and resampling stay outside
  (scipy's zero-phase filters and polyphase resampler).
- spectrogram networks (CNN, CRNN): the graph takes the log spectrogram,
  computed outside as predict computes it (scipy.signal.spectrogram), and
  holds the network(s), probabilities and the fold mean. The spectrogram
  was in the graph once (torch.fft, scipy's window and scaling): in float32
  the log of the near-zero power bins is rounding noise that differs between
  FFT implementations by up to 0.6, which moved a full-size CNN's
  probabilities by up to 1e-2 against predict's. A spectrogram network with
  evaluation windows is refused: its windows are cut before the spectrogram.

The sidecar describes what stays outside. A graph takes one record at a
time, unpadded, so every step of it is valid: its length (samples, or
frames) is the graph's one dynamic axis. The networks see padding-free
pieces and lengths that equal their time axis; they are padding-invariant (a
record gives the same output alone as in a padded batch), so this is what
predict's padded batches compute.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecgcore.config.model import ModelConfig
from ecgcore.data.pipeline import Pipeline, pipeline_for
from ecgcore.models import get_architecture

# Why an architecture has no graph to export, by what it is built from (ecgcore.models: input kind, trainer).
_NO_GRAPH = {
    "features": "it classifies hand-made features (ecgcore.features.extract: R peaks, RR intervals, heart-rate "
                "variability, computed with neurokit2 and numpy) with LightGBM trees; neither the features nor "
                "the trees are torch operations, so there is no torch graph to export, and converting the trees "
                "alone would leave the features to be computed outside, unchecked",
    "stacking": "it stacks a network with a FeatureGBM (hand-made features and LightGBM trees, combined in numpy), "
                "and that part has no torch graph (see FeatureGBM); exporting the network alone would be another "
                "model than the one that was scored",
    "stack": "it stacks the models of other jobs (networks, FeatureGBMs, HybridStacks), each on its own "
             "preprocessing, with a stacker fitted in scikit-learn or LightGBM and applied in numpy; the parts "
             "without a torch graph and the preprocessing outside the graph leave no one graph to export",
}


def refusal(model: ModelConfig) -> str | None:
    """Why this model cannot be exported as one graph; None when it can."""
    arch = get_architecture(model.model_name)
    if arch.input == "features":
        return _NO_GRAPH["features"]
    if arch.trainer in ("stacking", "stack"):
        return _NO_GRAPH[arch.trainer]
    if arch.input == "spectrogram" and model.preprocessing.window is not None:
        return ("its evaluation windows are cut from the signal before the spectrogram, which stays outside the "
                "graph (see ecgcore/export/graph.py), so the graph cannot average them")
    return None


def graph_inputs(model: ModelConfig, records, source_fs: float | None) -> list[np.ndarray]:
    """Each record as the graph takes it, (1, leads, samples) or (1, frames, leads, freqs): predict's steps
    up to the graph (Pipeline.prepare, without the standardisation a signal graph does itself)."""
    pipeline = pipeline_for(model, records, source_fs)
    if pipeline.inputs.kind == "spectrogram":
        prepare = lambda s, fs, leads: pipeline.features(pipeline.prepare(s, fs, leads))  # noqa: E731
    else:
        pre = dataclasses.replace(model.preprocessing, standardize=False)
        prepare = pipeline_for(dataclasses.replace(model, preprocessing=pre), records, source_fs).prepare
    return [prepare(s, fs, leads)[None] for s, fs, leads in
            zip(records.signals, records.fs, records.leads, strict=True)]


class RecordInputs(nn.Module):
    """A graph input -> its pieces' model inputs, their lengths (valid steps) and weights.

    A spectrogram (1, frames, leads, freqs) is one piece. A signal (1, leads,
    samples) is standardised (when the model is), then cut into the evaluation
    windows of ecgcore.data.inputs.EvalInputs (or kept whole): windows every
    `stride` samples, plus one that ends at the record's end (weight 0 where
    the strides reach the end already: a duplicate). A record shorter than the
    window is one piece of its own length, unpadded, so a network sees whole
    records only; except with pad_short (a network that takes exactly one
    window, ResNet1d), where it is zero-padded to the window as predict's
    batches pad it.
    """

    def __init__(self, pipeline: Pipeline, pad_short: bool = False):
        super().__init__()
        pre = pipeline.pre
        self.spectrogram = pipeline.inputs.kind == "spectrogram"
        self.standardize, self.window, self.stride = pre.standardize, pre.window, pipeline.stride
        self.pad_short = pad_short

    def forward(self, x: torch.Tensor):
        if self.spectrogram:
            return x, torch.full((1,), x.shape[1], dtype=torch.int64), torch.ones(1, dtype=x.dtype)
        x = _standardize(x) if self.standardize else x
        if self.window is None:
            return x, torch.full((1,), x.shape[2], dtype=torch.int64), torch.ones(1, dtype=x.dtype)
        return self._windows(x)

    def _windows(self, x: torch.Tensor):
        """(pieces, leads, size), the samples of each piece that are the record's, and the pieces' weights."""
        n, window, stride = x.shape[2], self.window, self.stride
        piece_n = torch.sym_min(n, window)
        if self.pad_short:
            x = F.pad(x, (0, torch.sym_max(n, window) - n))
        size = torch.sym_min(x.shape[2], window)  # the window, or a shorter record's length
        starts = torch.arange(0, x.shape[2] - size + 1, stride)  # 0, stride, ...: EvalInputs' regular windows
        starts = torch.cat([starts, torch.full((1,), x.shape[2] - size)])  # and the one ending at the end
        pieces = x[0][:, starts[:, None] + torch.arange(size)].transpose(0, 1)  # (pieces, leads, size)
        end_is_new = (torch.full((), x.shape[2] - size, dtype=torch.int64) % stride != 0).to(x.dtype)
        weights = torch.cat([torch.ones(starts.shape[0] - 1, dtype=x.dtype), end_is_new[None]])
        return pieces, torch.full((pieces.shape[0],), piece_n, dtype=torch.int64), weights


class ProbabilityGraph(nn.Module):
    """One graph input -> probabilities (1, classes): the mean over the folds' networks and the pieces.

    input_name and length_axis say what the exported graph takes and which of its axes is dynamic.
    """

    def __init__(self, pipeline: Pipeline, nets: list[nn.Module], multilabel: bool):
        super().__init__()
        # A network with a fixed input (ResNet1d: exactly one window) is given short records zero-padded.
        self.inputs = RecordInputs(pipeline, pad_short=bool(getattr(nets[0], "fixed_length", False)))
        self.nets, self.multilabel = nn.ModuleList(nets), multilabel
        self.input_name, self.length_axis = ("spectrogram", 1) if self.inputs.spectrogram else ("signal", 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces, lengths, weights = self.inputs(x)
        probs = torch.stack([self._probabilities(net(pieces, lengths)) for net in self.nets]).mean(dim=0)
        return (weights[:, None] * probs).sum(dim=0, keepdim=True) / weights.sum()

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


def _standardize(x: torch.Tensor) -> torch.Tensor:
    """preprocess.standardize: each lead to zero mean, unit variance; a flat lead stays zero."""
    centred = x - x.mean(dim=2, keepdim=True)
    std = centred.square().mean(dim=2, keepdim=True).sqrt()
    return centred / torch.where(std > 1e-8, std, 1.0)
