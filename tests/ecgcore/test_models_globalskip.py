"""GlobalSkipNet: shipped model file, gradients, padding invariance, masked BatchNorm, sizes."""

from pathlib import Path

import pytest
import torch

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.models import InputSpec, get_architecture
from ecgcore.models.common import MaskedBatchNorm1d, time_mask
from ecgcore.models.globalskip import GlobalSkipParams, _window_mean
from tests.conftest import assert_backward_reaches_every_parameter, assert_padding_invariant

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "GlobalSkipNet_but.json"
SMALL = GlobalSkipParams(n_levels=3, channels_per_level=4, stem_channels=3, layers_per_level=2, kernel_size=5)


def _net(params, n_leads=1, drop=0.0):
    torch.manual_seed(0)
    return get_architecture("GlobalSkipNet").build(params, InputSpec(kind="signal", n_leads=n_leads, fs=300.0),
                                                   4, drop)


def test_shipped_file_builds_and_counts_parameters():
    cfg = parse_model(read_json(SHIPPED), SHIPPED)
    assert cfg.model_name == "GlobalSkipNet" and not cfg.preprocessing.spectrogram
    assert not cfg.data_augmentation.resampling and not cfg.data_augmentation.zero_filter
    net = _net(cfg.model_parameters, drop=cfg.training_parameters.drop_rate).eval()
    # 6 levels of 6*(l+1) channels: the encoder ends at 36 channels, 6 max-pools by 2.
    assert net.encoder_channels == 36 and net.head.in_features == 36
    assert sum(p.numel() for p in net.parameters()) == 130852
    x, lengths = torch.randn(2, 1, 300), torch.tensor([300, 129])
    feats, out_lengths = net.encode(x, lengths)
    assert feats.shape == (2, 36, 5) and out_lengths.tolist() == [5, 3]
    assert net(x, lengths).shape == (2, 4)


@pytest.mark.parametrize("n_leads", [1, 12])
def test_forward_backward_reaches_every_parameter(n_leads):
    net = _net(SMALL, n_leads, drop=0.2).train()
    x, lengths = torch.randn(3, n_leads, 150), torch.tensor([150, 97, 1])
    assert_backward_reaches_every_parameter(net, x, lengths)


def test_padding_does_not_change_the_output():
    net = _net(SMALL, 2).train()
    net(torch.randn(4, 2, 120), torch.tensor([120, 80, 33, 7]))  # running stats away from 0/1
    net.eval()
    # The garbage must be zeroed before the first conv.
    assert_padding_invariant(net, 2, 37, 90, rtol=0)


def test_one_sample_records_work():
    net = _net(SMALL).eval()
    out = net(torch.randn(2, 1, 1), torch.tensor([1, 1]))
    assert out.shape == (2, 4) and torch.isfinite(out).all()


def test_batchnorm_running_stats_use_valid_steps_only():
    net = _net(SMALL, 2).train()
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append((mod, *args)))
             for m in net.modules() if isinstance(m, MaskedBatchNorm1d)]
    x = torch.randn(3, 2, 64)
    x[1, :, 40:] = 1e3
    x[2, :, 10:] = -1e3
    net(x, torch.tensor([64, 40, 10]))
    for h in hooks:
        h.remove()
    assert len(seen) == 1 + SMALL.n_levels * SMALL.layers_per_level + 1
    for bn, inp, mask in seen:
        valid = inp.permute(1, 0, 2)[:, mask[:, 0].bool()]  # (channels, valid steps)
        m = bn.momentum
        torch.testing.assert_close(bn.running_mean, m * valid.mean(dim=1), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bn.running_var, (1 - m) + m * valid.var(dim=1), atol=1e-5, rtol=1e-4)
    # The stem's input padding is zeroed, but its conv bias and edges make padded steps non-zero:
    # statistics over all steps would differ.
    bn, inp, mask = seen[0]
    assert not torch.allclose(bn.running_mean, bn.momentum * inp.mean(dim=(0, 2)), atol=1e-4)


def test_masked_batchnorm_unit():
    bn = MaskedBatchNorm1d(1, momentum=1.0)
    x = torch.tensor([[[1.0, 3.0, 100.0, 100.0]]])
    mask = time_mask(torch.tensor([2]), 4)
    y = bn(x, mask)
    assert bn.running_mean.item() == pytest.approx(2.0)
    assert bn.running_var.item() == pytest.approx(2.0)  # unbiased variance of (1, 3)
    assert y[0, 0, :2].tolist() == pytest.approx([-1.0, 1.0], abs=1e-3)
    assert y[0, 0, 2:].tolist() == [0.0, 0.0]
    bn.eval()
    assert bn(x, mask)[0, 0, 2:].tolist() == [0.0, 0.0]


def test_stem_skip_averages_valid_steps_only():
    x = torch.tensor([[[1.0, 3.0, 5.0, 0.0]]])
    mask = time_mask(torch.tensor([3]), 4)
    assert _window_mean(x, mask, 2).tolist() == [[[2.0, 5.0]]]
    assert _window_mean(x, mask, 4).tolist() == [[[3.0]]]
