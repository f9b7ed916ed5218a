"""Building blocks of ECG-DualNet (ecgcore/models/dualnet.py), all length-aware.

Source: ChristophReich1996/ECG_Classification, ecg_classification/dataset.py
(PhysioNetDataset: the signal unfolded into windows, the torchaudio log
spectrogram) and ecg_classification/model.py (Conv2dResidualBlock,
ConditionalBatchNormalization; the LSTM and Transformer signal encoders).

Here: cutting a padded batch into signal windows, the log spectrogram computed
from the signal with torch.stft, BatchNorm over valid frames only, the residual
block with conditional BatchNorm, a masked 2x2 average pool, and the two signal
encoders that turn the windows into one latent vector per record.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ecgcore.models.common import MaskedBatchNorm2d, exporting, masked_mean, time_mask, whole_lstm


def signal_windows(x: torch.Tensor, lengths: torch.Tensor, window: int, step: int):
    """(batch, leads, samples) -> windows (batch, W, leads*window) and the valid windows per record.

    As in their dataset's unfold: windows of `window` samples every `step`;
    a record has the windows that start inside it (at least one), the last
    one zero-filled past the record's end as their padded signal was.
    """
    counts = 1 + torch.div((lengths - window).clamp(min=0) + step - 1, step, rounding_mode="floor")
    if exporting():
        # One whole record (ecgcore.export): the count is a symbol of the graph, from the record's length,
        # and the windows never end before the record does (the pad is never negative: nothing to cut).
        n_windows = 1 + (torch.sym_max(x.shape[2] - window, 0) + step - 1) // step
        x = F.pad(x, (0, window + (n_windows - 1) * step - x.shape[2]))
    else:
        needed = window + (int(counts.max()) - 1) * step
        x = F.pad(x, (0, max(0, needed - x.shape[2])))[:, :, :needed]
    windows = x.unfold(2, window, step)  # (batch, leads, W, window)
    return windows.permute(0, 2, 1, 3).flatten(2), counts


def _reflect_index(lengths: torch.Tensor, pad: int, total: int) -> torch.Tensor:
    """(batch, total) sample indices of each record reflect-padded by `pad` at both ends (repeating if short)."""
    pos = torch.arange(total, device=lengths.device)[None, :] - pad
    period = (2 * (lengths - 1)).clamp(min=1)[:, None]
    folded = torch.remainder(pos, period)
    idx = torch.where(folded < lengths[:, None], folded, period - folded)
    return torch.where(lengths[:, None] > 1, idx, torch.zeros_like(idx))


def log_spectrogram(x: torch.Tensor, lengths: torch.Tensor, n_fft: int):
    """(batch, leads, samples) -> log magnitude (batch, leads, frames, n_fft//2+1) and valid frames.

    Their torchaudio Spectrogram(n_fft, win_length=n_fft, hop=n_fft//2, power=1,
    normalized=True) then log(clamp(1e-8)). torchaudio centres frames with a
    reflect pad; that pad is taken from each record's own end here, so a
    record's spectrogram does not depend on the padding of its batch.
    Frames past a record are zero, as their zero-padded spectrogram was.
    """
    batch, leads, samples = x.shape
    hop, pad = n_fft // 2, n_fft // 2
    idx = _reflect_index(lengths, pad, samples + 2 * pad)
    padded = torch.gather(x, 2, idx[:, None, :].expand(batch, leads, -1))
    window = torch.hann_window(n_fft, device=x.device, dtype=torch.float32)
    spec = torch.stft(padded.reshape(batch * leads, -1).float(), n_fft, hop_length=hop, window=window,
                      center=False, return_complex=True)
    # torchaudio's normalized=True for power 1 divides by the window's L2 norm.
    magnitude = spec.abs() / window.pow(2).sum().sqrt()
    n_freqs, n_frames = spec.shape[1], spec.shape[2]
    logs = magnitude.clamp(min=1e-8).log().reshape(batch, leads, n_freqs, n_frames).transpose(2, 3)
    frames = 1 + torch.div(lengths, hop, rounding_mode="floor")
    return (logs * frame_mask(frames, n_frames, logs.dtype)).to(x.dtype), frames


def frame_mask(lengths: torch.Tensor, steps: int, dtype) -> torch.Tensor:
    """(batch, 1, steps, 1) mask of valid frames."""
    return time_mask(lengths, steps, dtype)[..., None]


class ConditionalBatchNorm2d(nn.Module):
    """Their ConditionalBatchNormalization: affine BatchNorm, then scale and shift predicted from the latent."""

    def __init__(self, channels: int, latent_features: int):
        super().__init__()
        self.norm = MaskedBatchNorm2d(channels)
        self.linear = nn.Linear(latent_features, 2 * channels, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        both = self.linear(latent)[:, :, None, None]
        # Halves by slicing, not chunk(): the ONNX export's decomposition of chunk fails on this tensor.
        scale, shift = both[:, :both.shape[1] // 2], both[:, both.shape[1] // 2:]
        return (scale * self.norm(x, mask) + shift) * mask


def masked_pool(x: torch.Tensor, lengths: torch.Tensor):
    """2x2 average pool of (batch, C, frames, freqs) over valid frames; returns it and the new lengths.

    Their AvgPool2d(2) floors both axes. The frequency axis still floors; the
    time axis keeps a record's odd last frame (averaged alone), so a short
    record never runs out of frames and its pool never mixes in padding.
    """
    batch, channels, frames, freqs = x.shape
    f_kernel = 2 if freqs >= 2 else 1
    new_lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    if exporting():
        return _exported_pool(x, lengths, f_kernel), new_lengths
    x = x[..., :freqs // f_kernel * f_kernel]
    if frames % 2:
        x = F.pad(x, (0, 0, 0, 1))
    halves = x.shape[2] // 2
    summed = x.reshape(batch, channels, halves, 2, -1, f_kernel).sum(dim=(3, 5))
    valid = time_mask(lengths, halves * 2, x.dtype).reshape(batch, 1, halves, 2).sum(dim=3)
    return summed / (valid[..., None] * f_kernel).clamp(min=1), new_lengths


def _exported_pool(x: torch.Tensor, lengths: torch.Tensor, f_kernel: int) -> torch.Tensor:
    """masked_pool while exporting (ecgcore.export): the same sums and counts as average pools that floor
    over one appended zero frame (ceil(frames / 2) windows). No branch on the example's parity, and sizes
    torch.export keeps simple: nested, the reshapes' size expressions took minutes to reason about.
    """
    x = F.pad(x, (0, 0, 0, 1))
    summed = F.avg_pool2d(x, (2, f_kernel)) * (2 * f_kernel)
    valid = F.avg_pool1d(time_mask(lengths, x.shape[2], x.dtype), 2) * 2
    return summed / (valid[..., None] * f_kernel).clamp(min=1)


class ResidualCBNBlock(nn.Module):
    """Their Conv2dResidualBlock: conv-CBN-act-dropout-conv-CBN, plus a 1x1 skip, act, dropout, 2x2 pool."""

    def __init__(self, c_in: int, c_out: int, latent_features: int, drop_rate: float):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm1 = ConditionalBatchNorm2d(c_out, latent_features)
        self.act1 = nn.PReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = ConditionalBatchNorm2d(c_out, latent_features)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.act2 = nn.PReLU()
        self.drop = nn.Dropout2d(drop_rate)

    def forward(self, x, lengths, latent):
        mask = frame_mask(lengths, x.shape[2], x.dtype)
        # Padded frames are zero on entry, so the 3x3 convs see the zero padding a lone record would.
        out = self.drop(self.act1(self.norm1(self.conv1(x), mask, latent)))
        out = self.norm2(self.conv2(out), mask, latent) + self.skip(x)
        return masked_pool(self.drop(self.act2(out)) * mask, lengths)


class LSTMSignalEncoder(nn.Module):
    """LSTM over the windows; the latent is the last layer's output at each record's last valid window."""

    def __init__(self, in_features: int, latent_features: int, layers: int, drop_rate: float):
        super().__init__()
        self.lstm = nn.LSTM(in_features, latent_features, num_layers=layers, batch_first=True,
                            dropout=drop_rate if layers > 1 else 0.0)

    def forward(self, windows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        if exporting():  # one whole record: every window is valid, nothing to pack (packing needs Python counts)
            return whole_lstm(self.lstm, windows)[:, -1]  # the last layer at the last window: h_n[-1]
        packed = pack_padded_sequence(windows, counts.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n[-1]


class TransformerSignalEncoder(nn.Module):
    """Their ECG-DualNet++ signal encoder: Transformer encoder over the windows, mean over valid windows.

    Windows are projected to latent_features first unless they already have
    that size (theirs: 256-sample windows into a 256-wide model). Positions are
    sinusoidal, so records of any length work.
    """

    def __init__(self, in_features: int, latent_features: int, heads: int, layers: int, ff_features: int,
                 drop_rate: float):
        super().__init__()
        self.project = nn.Linear(in_features, latent_features) if in_features != latent_features else nn.Identity()
        layer = nn.TransformerEncoderLayer(latent_features, heads, ff_features, drop_rate, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(latent_features),
                                             enable_nested_tensor=False)

    def forward(self, windows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        h = self.project(windows)
        h = h + _sinusoids(h.shape[1], h.shape[2], h.device).to(h.dtype)
        valid = torch.arange(h.shape[1], device=h.device)[None, :] < counts[:, None]
        h = self.encoder(h, src_key_padding_mask=~valid)
        return masked_mean(h.transpose(1, 2), counts)


def _sinusoids(steps: int, features: int, device) -> torch.Tensor:
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, features, 2, device=device) * (-math.log(10000.0) / features))
    table = torch.zeros(steps, features, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[:features // 2])
    return table
