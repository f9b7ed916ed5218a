"""CNN/CRNN: shapes, masking of padding, dropout, registry, paper sizes."""

import numpy as np
import pytest
import torch

from ecgcore.errors import ProjectError
from ecgcore.models import InputSpec, get_architecture, known_architectures
from ecgcore.models.common import MaskedBatchNorm2d
from ecgcore.models.spectral import CNNParams, CRNNParams
from orchestrator.config.jobs import load_model
from tests.conftest import ROOT


def _spec(n_leads=1):
    return InputSpec("spectrogram", n_leads, 300.0, None, 33)


def _net(arch, params, drop=0.0, n_leads=1):
    torch.manual_seed(0)
    return get_architecture(arch).build(params, _spec(n_leads), 4, drop)


def test_registry_exact_names():
    names = known_architectures()
    assert {"CNN", "CRNN"} <= set(names) and names == sorted(names)
    with pytest.raises(ProjectError, match="known: " + ", ".join(names)):
        get_architecture("cnn")


@pytest.mark.parametrize("arch, params", [
    ("CNN", CNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2, dilation_rates=(1,))),
    ("CRNN", CRNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2, dilation_rates=(1,),
                        n_lstmneurons=8, n_lstmlayers=1)),
])
@pytest.mark.parametrize("n_leads", [1, 12])
def test_forward_backward_on_1_and_12_leads(arch, params, n_leads):
    net = _net(arch, params, drop=0.1, n_leads=n_leads).train()
    out = net(torch.randn(3, 40, n_leads, 33), torch.tensor([40, 25, 9]))
    assert out.shape == (3, 4)
    out.logsumexp(dim=1).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("arch, params", [
    ("CNN", CNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=3, dilation_rates=(1, 2))),
    ("CRNN", CRNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2, dilation_rates=(1, 1),
                        n_lstmneurons=8, n_lstmlayers=2)),
    ("CRNN", CRNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2, dilation_rates=(1,),
                        n_lstmneurons=8, n_lstmlayers=1, bidirectional=False)),
    ("CNN", CNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2, dilation_rates=(1,),
                      max_pooling=True)),
])
def test_padding_does_not_change_the_output(arch, params):
    net = _net(arch, params).eval()
    short = torch.randn(1, 37, 1, 33)
    alone = net(short, torch.tensor([37]))
    batch = torch.zeros(2, 90, 1, 33)
    batch[0, :37] = short[0]
    batch[0, 37:] = 50.0  # garbage in the padding must not leak in
    batch[1] = torch.randn(90, 1, 33)
    together = net(batch, torch.tensor([37, 90]))
    assert alone.shape == (1, 4)
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-4)


def test_masked_batchnorm_uses_valid_frames_only():
    bn = MaskedBatchNorm2d(1, momentum=1.0)
    x = torch.zeros(1, 1, 4, 1)
    x[0, 0, :2, 0] = torch.tensor([1.0, 3.0])
    x[0, 0, 2:, 0] = 100.0
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 4, 1)
    y = bn(x, mask)
    assert bn.running_mean.item() == pytest.approx(2.0)
    assert bn.running_var.item() == pytest.approx(2.0)  # unbiased variance of (1, 3)
    assert y[0, 0, :2, 0].tolist() == pytest.approx([-1.0, 1.0], abs=1e-3)
    assert y[0, 0, 2:, 0].tolist() == [0.0, 0.0]


def test_dropout_works_in_training_only():
    net = _net("CNN", CNNParams(n_channels_first=4, growth_block_end=4, n_conv_blocks=2,
                                dilation_rates=(1,)), drop=0.5)
    x, lengths = torch.randn(2, 40, 1, 33), torch.tensor([40, 30])
    net.train()
    assert not torch.allclose(net(x, lengths), net(x, lengths))
    net.eval()
    torch.testing.assert_close(net(x, lengths), net(x, lengths))


def test_paper_models_shapes_and_sizes():
    cnn_cfg = load_model(ROOT / "models", "CNN_paper", "x", "$")
    crnn_cfg = load_model(ROOT / "models", "CRNN_paper", "x", "$")
    cnn = get_architecture("CNN").build(cnn_cfg.model_parameters, _spec(), 4, 0.15)
    crnn = get_architecture("CRNN").build(crnn_cfg.model_parameters, _spec(), 4, 0.15)
    # CNN: 6 blocks end at 32 + 6*32 = 224 channels and 1 frequency bin -> dense 224 -> 4.
    assert cnn.dense.in_features == 224
    # CRNN: 4 blocks end at 160 channels x 3 bins; LSTM 100 units per direction.
    assert crnn.lstm.input_size == 480 and crnn.lstm.hidden_size == 100 and crnn.lstm.num_layers == 3
    x, lengths = torch.randn(2, 281, 1, 33), torch.tensor([281, 120])
    for net in (cnn.eval(), crnn.eval()):
        out = net(x, lengths)
        assert out.shape == (2, 4) and torch.isfinite(out).all()
    n_cnn = sum(p.numel() for p in cnn.parameters())
    assert 9_000_000 < n_cnn < 11_000_000, n_cnn
    assert np.isfinite(n_cnn)
