"""GlobalSkipNet: BUTTeam's 1D CNN with global skip connections (PhysioNet/CinC 2020).

Source: Vicar, Hejc, Novotna, Ronzhina, Janousek, "ECG Abnormalities Recognition
Using Convolutional Network With Global Skip Connections and Custom Loss
Function", CinC 2020 (doi:10.22489/CinC.2020.189); code: github.com/tomasvicar/BUTTeam,
net.py (class Net_addition_grow) with the sizes of its config.py.

Layout: a stem conv-BN-ReLU; n_levels levels of layers_per_level conv-BN-ReLU
layers (level l has channels_per_level*(l+1) channels); after each level the
stem output, average-pooled to the level's length (the "global skip"), the
level's last output and its first layer's output are concatenated and
max-pooled by pool_size; a final conv-BN-ReLU, global max over time and a
linear head.

Padding is never treated as signal: the input is zeroed beyond each record's
length, BatchNorm statistics use valid steps only, padded steps are zero after
every layer, lengths follow the poolings (ceil), the stem average counts valid
steps only, and the global max sees valid steps only. A record therefore gets
the same output alone as in a padded batch (eval mode). The reference instead
cut each record to a multiple of 2**(levels-1) samples, let BatchNorm see the
padding, and before the max masked from len/2**(levels-1) on a time axis
already reduced by 2**levels, so padded steps could win the max; here
nothing is cut. The head returns logits (the reference applied a sigmoid).

Speed (same results within float noise): activations are (batch, channels,
1, steps) channels-last tensors and each Conv1d runs as a (1, kernel) conv2d
(oneDNN's conv1d on 6-36 channels was 1.5-3x slower), BatchNorm and ReLU are
one fused op (ecgcore.models.common), pooling is max_pool2d (amax over a
padded fold cost a copy and an equality pass in backward), and a batch
without padding skips the masks. Checkpoints are unchanged: the weights are
still the Conv1d's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ecgcore.config.model import spec
from ecgcore.models import InputSpec, register
from ecgcore.models.common import (
    MaskedBatchNorm1d,
    exporting,
    masked_max,
    padding_mask,
    strided_lengths,
    time_mask,
)


@dataclass(frozen=True)
class GlobalSkipParams:
    n_levels: int = spec(6, "levels; each ends with a max-pool by pool_size", min=1, max=16)
    channels_per_level: int = spec(6, "level l (from 0) has channels_per_level*(l+1) channels", min=1)
    stem_channels: int = spec(6, "channels of the first conv, whose output is the global skip", min=1)
    layers_per_level: int = spec(4, "conv-BN-ReLU layers per level; the first one's output is also "
                                    "concatenated at the level's end", min=2)
    kernel_size: int = spec(7, "kernel of every conv ('same' padding)", min=1)
    pool_size: int = spec(2, "max-pool factor after each level", min=1)


class ConvBNReLU(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        # 'same' padding keeps every step aligned with the input (the reference's (k-1)/2, also for even k).
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding="same")
        self.bn = MaskedBatchNorm1d(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(batch, c_in, 1, steps) channels-last -> (batch, c_out, 1, steps); mask (batch, 1, steps) or None."""
        weight = self.conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        y = F.conv2d(x, weight, self.conv.bias, padding="same")
        return self.bn(y.squeeze(2), mask, relu=True).unsqueeze(2)


class Level(nn.Module):
    """n_layers conv-BN-ReLU layers; returns the last output and the first layer's output."""

    def __init__(self, c_in: int, c_out: int, n_layers: int, kernel: int):
        super().__init__()
        self.layers = nn.ModuleList(
            ConvBNReLU(c_in if i == 0 else c_out, c_out, kernel) for i in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = first = self.layers[0](x, mask)
        for layer in self.layers[1:]:
            x = layer(x, mask)
        return x, first


class GlobalSkipNet(nn.Module):
    def __init__(self, p: GlobalSkipParams, inputs: InputSpec, n_classes: int, drop_rate: float):
        super().__init__()
        self.pool_size = p.pool_size
        self.stem = ConvBNReLU(inputs.n_leads, p.stem_channels, p.kernel_size)
        levels, c_in = [], p.stem_channels
        for lvl in range(p.n_levels):
            width = p.channels_per_level * (lvl + 1)
            levels.append(Level(c_in, width, p.layers_per_level, p.kernel_size))
            c_in = p.stem_channels + 2 * width  # stem skip + last output + first layer's output
        self.levels = nn.ModuleList(levels)
        self.encoder_channels = p.channels_per_level * p.n_levels
        self.final = ConvBNReLU(c_in, self.encoder_channels, p.kernel_size)
        # The reference had no dropout; the project's drop_rate acts on the pooled features only.
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.encoder_channels, n_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, leads, samples) -> features (batch, encoder_channels, steps) and valid steps."""
        stem_mask = padding_mask(lengths, x.shape[2], x.dtype)
        # Whatever the padding holds must not reach the first conv.
        x = (x if stem_mask is None else x * stem_mask).unsqueeze(2)
        stem = self.stem(x, stem_mask)
        stem_valid = time_mask(lengths, x.shape[3], x.dtype) if stem_mask is None else stem_mask
        x, mask = stem, stem_mask
        for lvl, level in enumerate(self.levels):
            x, first = level(x, mask)
            skip = _window_mean(stem.squeeze(2), stem_valid, self.pool_size ** lvl).unsqueeze(2)
            x = torch.cat((skip, x, first), dim=1)
            # Every channel is a ReLU output or a mean of ReLU outputs (>= 0) and padding is 0, so a
            # window cut short by the end, or holding padding, still takes the max of its valid steps.
            x = _ceil_max_pool(x, self.pool_size)
            lengths = strided_lengths(lengths, self.pool_size)
            mask = padding_mask(lengths, x.shape[3], x.dtype)
        return self.final(x, mask).squeeze(2), lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feats, lengths = self.encode(x, lengths)
        return self.head(self.drop(masked_max(feats, lengths)))


@register("GlobalSkipNet", params=GlobalSkipParams, input="signal")
def build_globalskip(p: GlobalSkipParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return GlobalSkipNet(p, inputs, n_classes, drop_rate)


def _window_sum(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(batch, channels, steps) -> (batch, channels, ceil(steps/factor)): sums of windows, the last one short."""
    if exporting():  # divisor_override is lost in the ONNX export (an AveragePool): the mean of factor steps, times it
        return F.avg_pool2d(_end_zeros(x.unsqueeze(2), factor), (1, factor)).squeeze(2) * factor
    return F.avg_pool2d(x.unsqueeze(2), (1, factor), ceil_mode=True, divisor_override=1).squeeze(2)


def _ceil_max_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Max-pool of the last axis by factor, the last window cut short by the end (ceil_mode)."""
    if exporting():  # the same here: the pooled values are >= 0
        return F.max_pool2d(_end_zeros(x, factor), (1, factor))
    return F.max_pool2d(x, (1, factor), ceil_mode=True)


def _end_zeros(x: torch.Tensor, factor: int) -> torch.Tensor:
    """x with factor - 1 zeros appended: a pool that floors over it has ceil(steps / factor) windows.

    Exporting (ecgcore.export) pools so instead of with ceil_mode, whose output size is a branch on the
    length that torch.export cannot keep for every length.
    """
    return F.pad(x, (0, factor - 1))


def _window_mean(x: torch.Tensor, mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean of x over each window of `factor` steps, counting valid steps only (x is zero on padding)."""
    if factor == 1:
        return x
    return _window_sum(x, factor) / _window_sum(mask, factor).clamp(min=1)
