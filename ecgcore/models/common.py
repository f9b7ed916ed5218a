"""Masking helpers shared by the models that take variable-length signals.

Batches are zero-padded to the longest record; these helpers keep padding
out of what the network computes: a mask of valid steps, the valid length
after a strided layer, masked poolings over time, and BatchNorm whose
statistics come from valid steps only.
"""

from __future__ import annotations

import torch
from torch import nn


def time_mask(lengths: torch.Tensor, steps: int, dtype=torch.float32) -> torch.Tensor:
    """(batch, 1, steps) mask, 1 on valid steps."""
    valid = torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]
    return valid.to(dtype)[:, None, :]


def strided_lengths(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Valid steps after a layer of this stride with 'same' padding: ceil(n / stride)."""
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor").clamp(min=1)


def masked_max(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, channels, steps) -> (batch, channels), the max over valid steps."""
    valid = time_mask(lengths, x.shape[2], torch.bool)
    return x.masked_fill(~valid, torch.finfo(x.dtype).min).amax(dim=2)


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, channels, steps) -> (batch, channels), the mean over valid steps."""
    mask = time_mask(lengths, x.shape[2], x.dtype)
    return (x * mask).sum(dim=2) / lengths[:, None].clamp(min=1).to(x.dtype)


def _masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm of x (batch, channels, time, ...) with statistics over the positions where mask is 1.

    mask broadcasts against x with a channel dimension of 1. Statistics are
    taken in float32 so that mixed precision neither overflows nor loses
    digits on long records. The output is zero where mask is 0.
    """
    if not bn.training:
        return nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                        False, 0.0, bn.eps) * mask
    x32, m32 = x.float(), mask.float()
    dims = [d for d in range(x.dim()) if d != 1]
    count = m32.expand(x.shape[0], 1, *x.shape[2:]).sum()
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean = (x32 * m32).sum(dim=dims) / count
    centred = (x32 - mean.view(shape)) * m32
    var = (centred * centred).sum(dim=dims) / count
    with torch.no_grad():
        bn.running_mean.lerp_(mean, bn.momentum)
        bn.running_var.lerp_(var * count / (count - 1).clamp(min=1), bn.momentum)
        bn.num_batches_tracked += 1
    scale = bn.weight * torch.rsqrt(var + bn.eps)
    return (centred * scale.view(shape) + bn.bias.view(shape) * m32).to(x.dtype)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over (batch, channels, steps) that ignores padded steps; its output is zero there."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _masked_batch_norm(self, x, mask)


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over (batch, channels, time, freq) that ignores padded time frames; zero there."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _masked_batch_norm(self, x, mask)
