"""Masking helpers shared by the models that take variable-length signals.

Batches are zero-padded to the longest record; these helpers keep padding
out of what the network computes: a mask of valid steps, the valid length
after a strided layer, masked poolings over time, BatchNorm whose
statistics come from valid steps only, and a dropout whose mask is cheap.

The masked BatchNorm, with its ReLU and dropout, is one autograd Function
with a hand-written backward: as a chain of autograd ops it made ~25 passes
over each activation per training step, masks and bernoulli_ draws included
(about half of a CNN_small step); fused it makes ~12. A batch without padding
(most of them: records of 30 s are the rule) passes mask=None and skips
every mask multiplication.

`exporting()` says that torch.export is tracing a network for ecgcore.export:
then each network takes one whole record and keeps to operations whose sizes
follow from its length (`whole_lstm` for the LSTMs).
"""

from __future__ import annotations

import torch
from torch import nn


def time_mask(lengths: torch.Tensor, steps: int, dtype=torch.float32) -> torch.Tensor:
    """(batch, 1, steps) mask, 1 on valid steps."""
    valid = torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]
    return valid.to(dtype)[:, None, :]


def exporting() -> bool:
    """Whether torch.export is tracing the network for ecgcore.export.

    Then the input is one whole record, unpadded (every step valid), and the lengths are tensors whose
    values the trace must not branch on nor turn into Python numbers: the graph is for every length.
    """
    return torch.compiler.is_exporting()


def whole_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """lstm(x)'s output for a batch without padding, in eval mode, one layer at a time (for exporting).

    torch 2.13's shape propagation of an LSTM over a symbolic number of steps unrolls the example's steps:
    several layers at once stack mismatched sizes and fail, and a layer's output gets a size that is the
    example's in part, which a later layer (the third) turns into a fixed reshape in the ONNX graph. So
    the layers run one at a time and each output is narrowed to the input's steps (a no-op at run time),
    which gives it its true size. Without dropout between layers (eval mode) this is the same LSTM.
    """
    directions = ("", "_reverse") if lstm.bidirectional else ("",)
    steps = x.shape[1 if lstm.batch_first else 0]
    for layer in range(lstm.num_layers):
        weights = [getattr(lstm, f"{name}_l{layer}{d}") for d in directions
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h0 = x.new_zeros(len(directions), x.shape[0], lstm.hidden_size)
        x, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, lstm.bidirectional, lstm.batch_first)
        x = x.narrow(1 if lstm.batch_first else 0, 0, steps)
    return x


def padding_mask(lengths: torch.Tensor, steps: int, dtype=torch.float32) -> torch.Tensor | None:
    """time_mask, or None when no record of the batch is padded (then there is nothing to mask).

    While exporting the mask is always made (an all-ones mask changes nothing): a graph that branched on
    the example's lengths would hold for that length only.
    """
    if not exporting() and bool((lengths >= steps).all()):
        return None
    return time_mask(lengths, steps, dtype)


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


def keep_mask(shape, p: float, device) -> tuple[torch.Tensor, float]:
    """A dropout keep mask (bool) and its scale 1/P(keep).

    bernoulli_ costs ~10 ns per element on one core (a sixth to a quarter of a
    CNN_small step); this takes four 16-bit draws from each 64-bit word of
    torch's generator (seeded as usual), ~1.5 ns per element. P(drop) is p
    rounded to 1/65536 and the scale is exact for that rounding.
    """
    n = 1
    for size in shape:
        n *= size
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2**63, None)
    drop = round(p * 65536)
    keep = words.view(torch.int16)[:n].view(shape) >= drop - 32768
    return keep, 65536.0 / (65536 - drop)


class Dropout(nn.Dropout):
    """nn.Dropout with the cheap mask of keep_mask (same distribution, another draw)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep, scale = keep_mask(x.shape, self.p, x.device)
        return x * (keep.to(x.dtype) * scale)


def _valid_count(x: torch.Tensor, mask: torch.Tensor | None):
    """Positions per channel that the statistics count: valid steps times the other axes (freqs)."""
    per_step = x[0, 0].numel() // (1 if mask is None else mask[0].numel())
    return x.numel() // x.shape[1] if mask is None else mask.sum() * per_step


class _MaskedNormAct(torch.autograd.Function):
    """y = act((x - mean) * weight / std + bias) * mask * keep * scale, statistics over mask.

    act is ReLU or the identity; mask (or None: every position valid) broadcasts
    against x with a channel dimension of 1; keep is a dropout mask or None.
    The dropout scale is folded into the affine map (ReLU(s*z) = s*ReLU(z)).
    Returns y, the batch mean and the biased batch variance (for the running
    statistics). Statistics are in float32 at least (bfloat16 under autocast loses digits).
    """

    @staticmethod
    def forward(ctx, x, mask, weight, bias, keep, scale: float, relu: bool, eps: float):
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = _valid_count(x, mask)
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        centred = x32 if mask is None else x32 * mask
        mean = centred.sum(dim=dims) / count
        centred = centred - mean.view(shape) if mask is None else centred.sub_(mean.view(shape) * mask)
        var = torch.linalg.vector_norm(centred, dim=dims).square_() / count
        invstd = torch.rsqrt(var + eps)
        a = (weight.to(x32.dtype) * invstd * scale).view(shape)
        b = (bias.to(x32.dtype) * scale).view(shape)
        # out= keeps x's memory layout (channels-last); addcmul would pick its broadcast first operand's.
        y = torch.addcmul(b if mask is None else b * mask, centred, a, out=torch.empty_like(centred))
        if relu:
            y.relu_()
        if keep is not None:
            y.mul_(keep)
        # After a ReLU the gradient flows where y > 0 (valid, kept, positive); else where valid and kept.
        gate = None if relu else keep if mask is None else mask if keep is None else keep * mask
        ctx.save_for_backward(centred, y if relu else None, gate, mask, a, invstd)
        ctx.count, ctx.scale, ctx.relu, ctx.in_dtype, ctx.param_dtype = count, scale, relu, x.dtype, weight.dtype
        ctx.mark_non_differentiable(mean, var)
        return y.to(x.dtype), mean, var

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        centred, y, gate, mask, a, invstd = ctx.saved_tensors
        dims = [d for d in range(centred.dim()) if d != 1]
        g = grad_y.to(centred.dtype)
        if ctx.relu:
            g = torch.ops.aten.threshold_backward(g, y, 0.0)
        elif gate is not None:
            g = g * gate
        sum_g = g.sum(dim=dims)
        sum_gc = (g * centred).sum(dim=dims)
        # d/dx of BatchNorm over the valid positions; centred and g are zero on the others.
        k = a * (invstd * invstd * sum_gc / ctx.count).view(a.shape)
        shift = a * (sum_g / ctx.count).view(a.shape)
        grad_x = torch.addcmul(-shift if mask is None else -shift * mask, g, a, out=torch.empty_like(centred))
        grad_x.sub_(centred * k)
        grad_weight = (sum_gc * invstd * ctx.scale).to(ctx.param_dtype)
        grad_bias = (sum_g * ctx.scale).to(ctx.param_dtype)
        return grad_x.to(ctx.in_dtype), None, grad_weight, grad_bias, None, None, None, None


def masked_norm_act(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, mask: torch.Tensor | None,
                    relu: bool = False, drop: float = 0.0) -> torch.Tensor:
    """BatchNorm of x (batch, channels, time, ...) over the positions where mask is 1, then ReLU and dropout.

    mask None: no padding in the batch. The output is zero where mask is 0.
    Training updates the running statistics (unbiased variance, as nn.BatchNorm).
    """
    if not bn.training:
        y = nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        y = torch.relu(y) if relu else y
        return y if mask is None else y * mask
    keep, scale = keep_mask(x.shape, drop, x.device) if drop > 0 else (None, 1.0)
    y, mean, var = _MaskedNormAct.apply(x, mask, bn.weight, bn.bias, keep, scale, relu, bn.eps)
    count = torch.as_tensor(_valid_count(x, mask), dtype=var.dtype, device=var.device)
    with torch.no_grad():
        bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), bn.momentum)
        bn.running_var.lerp_((var * count / (count - 1).clamp(min=1)).to(bn.running_var.dtype), bn.momentum)
        bn.num_batches_tracked += 1
    return y


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over (batch, channels, steps) that ignores padded steps; its output is zero there."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, relu: bool = False) -> torch.Tensor:
        return masked_norm_act(self, x, mask, relu)


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over (batch, channels, time, freq) that ignores padded time frames; zero there.

    relu and drop fuse the ReLU and the dropout that follow it (see _MaskedNormAct).
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, relu: bool = False,
                drop: float = 0.0) -> torch.Tensor:
        return masked_norm_act(self, x, mask, relu, drop)
