"""CNN and CRNN of Zihlmann et al. (CinC 2017) on log spectrograms.

Input: a batch of log spectrograms (batch, frames, leads, freqs), zero-padded
in time, and the number of valid frames of each; the leads are the input
channels of the first convolution (one for CinC 2017). A conv block is
len(dilation_rates) conv2d-BN-ReLU layers with kernel_size; its last layer
adds growth_block_end channels and strides by strides_block_end (or max-pools
by it). Padding is never treated as signal: after every layer the padded
frames are set back to zero, BatchNorm statistics are taken over valid frames
only, and the time average (CNN) or the LSTM (CRNN) sees valid steps only.
Dropout acts before the dense layer (and between LSTM layers); after every
conv layer only with conv_dropout: the reference's TF conv dropout was never
switched to training mode, and switched on it kept the small models from
fitting their training set (eval-mode BatchNorm statistics no longer match
what training saw, and 8-16 channels lose a sixth of their signal per layer).

Speed (same results within float noise): convolutions run channels-last
(oneDNN is ~1.7x faster so on these few channels), BatchNorm, ReLU, masking
and dropout are one fused op (ecgcore.models.common), and a batch without
padding skips the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ecgcore.config.model import spec
from ecgcore.models import InputSpec, register
from ecgcore.models.common import (
    Dropout,
    MaskedBatchNorm1d,
    MaskedBatchNorm2d,
    exporting,
    padding_mask,
    whole_lstm,
)


@dataclass(frozen=True)
class CNNParams:
    n_channels_first: int = spec(32, "channels of the first block", min=1)
    growth_block_end: int = spec(32, "channels added by the last layer of each block", min=0)
    n_conv_blocks: int = spec(6, "number of conv blocks", min=1)
    kernel_size: tuple[int, ...] = spec((5, 5), "(time, freq) kernel", length=2, min=1)
    dilation_rates: tuple[int, ...] = spec((1, 1, 1, 1), "one freq dilation per layer of a block", min=1)
    strides_block_end: tuple[int, ...] = spec((2, 2), "(time, freq) stride of a block's last layer",
                                              length=2, min=1)
    max_pooling: bool = spec(False, "max-pool by strides_block_end instead of striding")
    conv_dropout: bool = spec(False, "dropout (drop_rate) after every conv layer too, not only before the dense "
                                     "layer; the reference's was never in training mode, so it trained without")
    input_norm: bool = spec(False, "BatchNorm of each (lead, frequency) of the log spectrogram over valid frames "
                                   "before the first conv (the reference fed it raw, around -20..0)")


@dataclass(frozen=True)
class CRNNParams(CNNParams):
    n_conv_blocks: int = spec(4, "number of conv blocks", min=1)
    dilation_rates: tuple[int, ...] = spec((1, 1, 1, 1, 1, 1), "one freq dilation per layer", min=1)
    n_lstmneurons: int = spec(200, "LSTM units, total over both directions", min=2)
    n_lstmlayers: int = spec(3, "stacked LSTM layers", min=1)
    bidirectional: bool = spec(True, "bidirectional LSTM")


class ConvLayer(nn.Module):
    def __init__(self, c_in, c_out, kernel, dilation, stride, pool, drop_rate):
        super().__init__()
        padding = ((kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2)
        self.conv = nn.Conv2d(c_in, c_out, tuple(kernel), stride=tuple(stride) if not pool else 1,
                              padding=padding, dilation=(1, dilation))
        self.bn = MaskedBatchNorm2d(c_out)
        self.pool = nn.MaxPool2d(tuple(stride), ceil_mode=True) if pool else None
        self.drop = Dropout(drop_rate)
        self.time_stride = int(stride[0]) if (pool or stride[0] > 1) else 1

    def forward(self, x, lengths):
        x = self.conv(x)
        if self.pool is None and self.time_stride > 1:
            lengths = _ceil_div(lengths, self.time_stride)
        mask = _time_mask(lengths, x.shape[2], x.dtype)
        if self.pool is None:  # dropout fused into the BatchNorm
            return self.bn(x, mask, relu=True, drop=self.drop.p if self.training else 0.0), lengths
        x = self._max_pool(self.bn(x, mask, relu=True))
        lengths = _ceil_div(lengths, self.time_stride)
        mask = _time_mask(lengths, x.shape[2], x.dtype)
        return self.drop(x if mask is None else x * mask), lengths

    def _max_pool(self, x):
        if exporting():  # floor pooling over appended zeros (x >= 0 here): ceil_mode without its branch on the length
            time, freq = self.pool.kernel_size
            return F.max_pool2d(F.pad(x, (0, freq - 1, 0, time - 1)), (time, freq))
        return self.pool(x)


class ConvStack(nn.Module):
    """n_conv_blocks blocks; returns features (batch, channels, time, freq) and lengths."""

    def __init__(self, p: CNNParams, n_leads: int, n_freqs: int, drop_rate: float):
        super().__init__()
        layers, c_in, channels = [], n_leads, p.n_channels_first
        for _ in range(p.n_conv_blocks):
            depth = len(p.dilation_rates)
            for d, dilation in enumerate(p.dilation_rates):
                last = d == depth - 1
                c_out = channels + p.growth_block_end if last else channels
                stride = p.strides_block_end if last else (1, 1)
                layers.append(ConvLayer(c_in, c_out, p.kernel_size, dilation, stride,
                                        last and p.max_pooling, drop_rate if p.conv_dropout else 0.0))
                c_in = channels = c_out
        self.layers = nn.ModuleList(layers)
        self.out_channels = c_in
        self.out_freqs = n_freqs
        for _ in range(p.n_conv_blocks):
            self.out_freqs = -(-self.out_freqs // p.strides_block_end[1])
        self.input_norm = MaskedBatchNorm1d(n_leads * n_freqs) if p.input_norm else None

    def forward(self, x, lengths):
        mask = _time_mask(lengths, x.shape[1], x.dtype)
        if self.input_norm is not None:
            per_freq = x.flatten(2).transpose(1, 2)  # (batch, leads*freqs, frames)
            x = self.input_norm(per_freq, None if mask is None else mask[..., 0]).transpose(1, 2).view(x.shape)
        x = x.permute(0, 2, 1, 3).contiguous(memory_format=torch.channels_last)
        x = x if mask is None else x * mask
        for layer in self.layers:
            x, lengths = layer(x, lengths)
        return x, lengths


class SpectrogramCNN(nn.Module):
    """Conv stack, average over valid frames, dense to the classes."""

    def __init__(self, p: CNNParams, inputs: InputSpec, n_classes: int, drop_rate: float):
        super().__init__()
        self.convs = ConvStack(p, inputs.n_leads, inputs.n_freqs, drop_rate)
        self.drop = Dropout(drop_rate)
        self.dense = nn.Linear(self.convs.out_channels * self.convs.out_freqs, n_classes)
        _glorot(self)

    def forward(self, x, lengths):
        feats, lengths = self.convs(x, lengths)
        seq = feats.permute(0, 2, 1, 3).flatten(2)  # (batch, time, channels*freqs)
        return self.dense(self.drop(_masked_mean(seq, lengths)))


class SpectrogramCRNN(nn.Module):
    """Conv stack, LSTM over the valid frames, average (or last step), dense."""

    def __init__(self, p: CRNNParams, inputs: InputSpec, n_classes: int, drop_rate: float):
        super().__init__()
        self.convs = ConvStack(p, inputs.n_leads, inputs.n_freqs, drop_rate)
        self.bidirectional = p.bidirectional
        hidden = p.n_lstmneurons // 2 if p.bidirectional else p.n_lstmneurons
        self.lstm = nn.LSTM(self.convs.out_channels * self.convs.out_freqs, hidden,
                            num_layers=p.n_lstmlayers, batch_first=True,
                            bidirectional=p.bidirectional,
                            dropout=drop_rate if p.n_lstmlayers > 1 else 0.0)
        self.drop = Dropout(drop_rate)
        self.dense = nn.Linear(hidden * (2 if p.bidirectional else 1), n_classes)
        _glorot(self)

    def forward(self, x, lengths):
        feats, lengths = self.convs(x, lengths)
        seq = feats.permute(0, 2, 1, 3).flatten(2)
        if exporting():  # one whole record: every frame is valid, nothing to pack (packing needs Python lengths)
            out = whole_lstm(self.lstm, seq)
        else:
            packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=seq.shape[1])
        if self.bidirectional:
            summary = _masked_mean(out, lengths)
        else:
            summary = out[torch.arange(out.shape[0], device=out.device), lengths - 1]
        return self.dense(self.drop(summary))


@register("CNN", params=CNNParams, input="spectrogram")
def build_cnn(p: CNNParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return SpectrogramCNN(p, inputs, n_classes, drop_rate)


@register("CRNN", params=CRNNParams, input="spectrogram")
def build_crnn(p: CRNNParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return SpectrogramCRNN(p, inputs, n_classes, drop_rate)


def _ceil_div(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")


def _time_mask(lengths: torch.Tensor, steps: int, dtype) -> torch.Tensor | None:
    """(batch, 1, steps, 1) mask, 1 on valid frames; None when no frame is padding."""
    mask = padding_mask(lengths, steps, dtype)
    return None if mask is None else mask[..., None]


def _masked_mean(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    valid = torch.arange(seq.shape[1], device=seq.device)[None, :] < lengths[:, None]
    total = (seq * valid[..., None].to(seq.dtype)).sum(dim=1)
    return total / lengths[:, None].to(seq.dtype)


def _glorot(module: nn.Module) -> None:
    # The reference (TF 1.x layers) used Glorot-uniform weights and zero biases.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    # Channels-last kernels only after the draw: uniform_ fills memory in order, so drawing into
    # channels-last weights would give other weights for the same seed.
    module.to(memory_format=torch.channels_last)
