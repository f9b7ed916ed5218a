"""The fast training path computes what the straightforward one does.

CNN, CRNN and GlobalSkipNet fuse BatchNorm, ReLU, masking and dropout into
one op, run their convolutions channels-last, skip masks on batches without
padding and (GlobalSkipNet) pool with max_pool2d. Here each is checked
against a plain re-statement of the original computation (masks everywhere,
BatchNorm statistics as masked sums, amax over padded folds), on shipped-size
models, for a batch with padding and one without: outputs, every gradient and
the running statistics agree. Float64 keeps the comparison free of ReLU gates
flipping on float32 rounding; one float32 case checks the outputs there.
Dropout draws its mask differently from nn.Dropout (keep_mask), so the
comparisons run with drop_rate 0 and the mask is checked on its own.
"""

import json

import pytest
import torch
import torch.nn.functional as F

from ecgcore.config.modelfile import parse_model
from ecgcore.models import InputSpec, get_architecture
from ecgcore.models.common import keep_mask, masked_norm_act
from tests.conftest import ROOT


def _reference_bn(bn, x, mask, relu=True):
    """The original masked BatchNorm: statistics over mask, output zero where mask is 0."""
    dims = [d for d in range(x.dim()) if d != 1]
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = mask.expand(x.shape[0], 1, *x.shape[2:]).sum()
    mean = (x * mask).sum(dim=dims) / count
    centred = (x - mean.view(shape)) * mask
    var = (centred * centred).sum(dim=dims) / count
    with torch.no_grad():
        bn.running_mean.lerp_(mean, bn.momentum)
        bn.running_var.lerp_(var * count / (count - 1), bn.momentum)
    y = centred * (bn.weight * torch.rsqrt(var + bn.eps)).view(shape) + bn.bias.view(shape) * mask
    return torch.relu(y) if relu else y


def _mask(lengths, steps, dtype):
    return (torch.arange(steps)[None, :] < lengths[:, None]).to(dtype)[:, None, :]


def _reference_spectral(net, x, lengths):
    """CNN/CRNN forward as first written (non-pooling layers, drop_rate 0), input_norm as a plain masked BN."""
    if net.convs.input_norm is not None:
        per_freq = x.flatten(2).transpose(1, 2)
        normed = _reference_bn(net.convs.input_norm, per_freq, _mask(lengths, x.shape[1], x.dtype), relu=False)
        x = normed.transpose(1, 2).reshape(x.shape)
    x = x.permute(0, 2, 1, 3) * _mask(lengths, x.shape[1], x.dtype)[..., None]
    for layer in net.convs.layers:
        x = layer.conv(x)
        lengths = torch.div(lengths + layer.time_stride - 1, layer.time_stride, rounding_mode="floor")
        x = _reference_bn(layer.bn, x, _mask(lengths, x.shape[2], x.dtype)[..., None])
    seq = x.permute(0, 2, 1, 3).flatten(2)
    if hasattr(net, "lstm"):
        packed = torch.nn.utils.rnn.pack_padded_sequence(seq, lengths, batch_first=True, enforce_sorted=False)
        seq = torch.nn.utils.rnn.pad_packed_sequence(net.lstm(packed)[0], batch_first=True,
                                                     total_length=seq.shape[1])[0]
    valid = _mask(lengths, seq.shape[1], seq.dtype)[:, 0, :, None]
    return net.dense((seq * valid).sum(dim=1) / lengths[:, None].to(seq.dtype))


def _fold(x, factor):
    steps = -(-x.shape[2] // factor)
    return F.pad(x, (0, steps * factor - x.shape[2])).reshape(x.shape[0], x.shape[1], steps, factor)


def _reference_globalskip(net, x, lengths):
    """GlobalSkipNet forward as first written: conv1d, masks everywhere, amax over zero-padded folds."""
    def block(unit, x, mask):
        return _reference_bn(unit.bn, unit.conv(x), mask)

    stem_mask = _mask(lengths, x.shape[2], x.dtype)
    stem = x = block(net.stem, x * stem_mask, stem_mask)
    mask = stem_mask
    for lvl, level in enumerate(net.levels):
        x = first = block(level.layers[0], x, mask)
        for unit in level.layers[1:]:
            x = block(unit, x, mask)
        factor = net.pool_size ** lvl
        skip = _fold(stem, factor).sum(dim=3) / _fold(stem_mask, factor).sum(dim=3).clamp(min=1)
        x = _fold(torch.cat((skip, x, first), dim=1), net.pool_size).amax(dim=3)
        lengths = torch.div(lengths + net.pool_size - 1, net.pool_size, rounding_mode="floor")
        mask = _mask(lengths, x.shape[2], x.dtype)
    feats = block(net.final, x, mask)
    return net.head(feats.masked_fill(mask == 0, torch.finfo(x.dtype).min).amax(dim=2))


def _shipped(name):
    model = parse_model(json.loads((ROOT / "models" / f"{name}.json").read_text()), name)
    arch = get_architecture(model.model_name)
    spectral = arch.input == "spectrogram"
    inputs = InputSpec(arch.input, 1, 300.0 if spectral else 125.0, None, 33 if spectral else None)
    torch.manual_seed(0)
    return arch.build(model.model_parameters, inputs, 4, 0.0), spectral


def _batch(spectral, lengths, dtype):
    torch.manual_seed(1)
    steps = int(max(lengths))
    # Spectrogram frames like log power spectra (around -10), signals like standardised ECG.
    x = torch.randn(len(lengths), steps, 1, 33) * 3 - 10 if spectral else torch.randn(len(lengths), steps, 1)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return (x if spectral else x.transpose(1, 2)).to(dtype), torch.tensor(lengths)


def _outputs_and_grads(net, forward, x, lengths):
    out = forward(x, lengths)
    grads = torch.autograd.grad(out.logsumexp(dim=1).sum() + out[:, 0].sum(), list(net.parameters()))
    stats = [b.clone() for name, b in net.named_buffers() if "running" in name]
    return out.detach(), grads, stats


@pytest.mark.parametrize("name", ["CNN_small", "CRNN_small", "GlobalSkipNet_but"])
@pytest.mark.parametrize("padded", [True, False])
def test_fast_path_equals_straightforward_computation(name, padded):
    net, spectral = _shipped(name)
    net = net.double().train()
    steps = 120 if spectral else 1000
    lengths = [steps, steps - 37, steps - 1, steps // 3] if padded else [steps] * 4
    x, lengths = _batch(spectral, lengths, torch.float64)
    reference = _reference_spectral if spectral else _reference_globalskip
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    fast = _outputs_and_grads(net, net, x, lengths)
    net.load_state_dict(initial)
    slow = _outputs_and_grads(net, lambda x, n: reference(net, x, n), x, lengths)
    for got, want in zip(fast, slow, strict=True):
        for a, b in zip(got if isinstance(got, (list, tuple)) else [got], want if isinstance(want, (list, tuple))
                        else [want], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["CNN_small", "GlobalSkipNet_but"])
def test_float32_outputs_agree(name):
    net, spectral = _shipped(name)
    steps = 120 if spectral else 1000
    x, lengths = _batch(spectral, [steps, steps // 2], torch.float32)
    reference = _reference_spectral if spectral else _reference_globalskip
    with torch.no_grad():
        torch.testing.assert_close(net.train()(x, lengths), reference(net, x, lengths), rtol=1e-4, atol=1e-4)
        net.eval()
        alone = net(x[1:, : int(lengths[1])], lengths[1:])
        torch.testing.assert_close(net(x, lengths)[1:], alone, rtol=1e-4, atol=1e-5)


def test_keep_mask_rate_and_scale():
    torch.manual_seed(0)
    keep, scale = keep_mask((64, 8, 100, 33), 0.15, "cpu")
    assert keep.dtype == torch.bool and abs(keep.float().mean().item() - 0.85) < 2e-3
    assert scale == pytest.approx(1 / 0.85, rel=1e-4)
    torch.manual_seed(0)
    assert torch.equal(keep_mask((64, 8, 100, 33), 0.15, "cpu")[0], keep)  # seeded by torch's generator


def test_fused_dropout_is_the_mask_times_the_scale(monkeypatch):
    """BatchNorm+ReLU+dropout fused equals the unfused ops with the same mask, values and gradients."""
    bn = torch.nn.BatchNorm2d(5).double()
    x = torch.randn(3, 5, 20, 4, dtype=torch.float64, requires_grad=True)
    mask = _mask(torch.tensor([20, 11, 4]), 20, x.dtype)[..., None]
    torch.manual_seed(3)
    keep, scale = keep_mask(x.shape, 0.3, "cpu")
    torch.manual_seed(3)
    fused = masked_norm_act(bn, x, mask, relu=True, drop=0.3)
    plain = _reference_bn(bn, x, mask) * keep * scale
    torch.testing.assert_close(fused, plain)
    g = torch.randn_like(x)
    torch.testing.assert_close(torch.autograd.grad(fused, x, g)[0], torch.autograd.grad(plain, x, g)[0])
