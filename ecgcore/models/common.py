"""Masking helpers shared by the models that take variable-length signals.

Batches are zero-padded to the longest record; these helpers keep padding
out of what the network computes: a mask of valid steps, the valid length
after a strided layer, and masked poolings over time.
"""

from __future__ import annotations

import torch


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
