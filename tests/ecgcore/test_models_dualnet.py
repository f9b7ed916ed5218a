"""ECG-DualNet: shipped sizes vs. the published counts, gradients, short records, padding, spectrogram."""

from pathlib import Path

import pytest
import torch

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.errors import ProjectError
from ecgcore.models import InputSpec, get_architecture
from ecgcore.models.dualnet import DualNetParams
from ecgcore.models.dualnet_blocks import log_spectrogram, signal_windows
from tests.conftest import assert_backward_reaches_every_parameter, assert_padding_invariant

MODELS = Path(__file__).resolve().parents[2] / "models"
# README of ChristophReich1996/ECG_Classification (with PAU). Ours use PReLU: 11 activations x (10 - 1) = 99 fewer.
# The Transformer variant is compared with the S count (their ECG-DualNet++ S, 1785186, is within 2% of it too).
SHIPPED = [
    ("ECGDualNet_S.json", 1840210, 1840111),
    ("ECGDualNet_M.json", 4269618, 4269519),
    ("ECGDualNet_L.json", 6176498, 6176399),
    ("ECGDualNet_S_transformer.json", 1840210, 1808495),
]
TINY = {
    "lstm": DualNetParams(window=32, window_step=24, latent_features=8, lstm_layers=2,
                          spectrogram_channels=(4, 6, 6), n_fft=16),
    "transformer": DualNetParams(signal_encoder="transformer", window=32, window_step=24, latent_features=8,
                                 transformer_heads=2, transformer_layers=2, transformer_ff_features=16,
                                 spectrogram_channels=(4, 6, 6), n_fft=16),
}


def _net(params, n_leads=1, drop=0.0):
    torch.manual_seed(0)
    return get_architecture("ECGDualNet").build(params, InputSpec(kind="signal", n_leads=n_leads, fs=300.0), 4,
                                                drop)


def _count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("file, published, exact", SHIPPED)
def test_shipped_files_match_the_published_sizes(file, published, exact):
    path = MODELS / file
    cfg = parse_model(read_json(path), path)
    assert cfg.model_name == "ECGDualNet" and not cfg.preprocessing.spectrogram
    assert not cfg.data_augmentation.resampling and not cfg.data_augmentation.zero_filter
    net = _net(cfg.model_parameters, drop=cfg.training_parameters.drop_rate)
    assert _count(net) == exact
    assert abs(exact - published) <= 0.1 * published
    assert net.head.out_features == 4 and net.encoder_channels == cfg.model_parameters.spectrogram_channels[-1]


@pytest.mark.parametrize("encoder", ["lstm", "transformer"])
@pytest.mark.parametrize("n_leads", [1, 12])
def test_forward_backward_reaches_every_parameter(encoder, n_leads):
    net = _net(TINY[encoder], n_leads, drop=0.2).train()
    x, lengths = torch.randn(3, n_leads, 200), torch.tensor([200, 90, 20])
    assert_backward_reaches_every_parameter(net, x, lengths)


@pytest.mark.parametrize("encoder", ["lstm", "transformer"])
def test_a_record_shorter_than_one_window_works(encoder):
    net = _net(TINY[encoder]).eval()
    out = net(torch.randn(2, 1, 10), torch.tensor([10, 3]))
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    feats, frames = net.encode(torch.randn(1, 1, 10), torch.tensor([10]))
    assert feats.shape == (1, 6, 1) and frames.tolist() == [1]


@pytest.mark.parametrize("encoder", ["lstm", "transformer"])
def test_padding_does_not_change_the_output(encoder):
    net = _net(TINY[encoder], 2).train()
    net(torch.randn(4, 2, 150), torch.tensor([150, 100, 40, 9]))  # running stats away from 0/1
    net.eval()
    assert_padding_invariant(net, 2, 77, 300, rtol=1e-4)


def test_spectrogram_is_torchaudios_for_a_lone_record():
    x = torch.randn(1, 1, 1000)
    mine, frames = log_spectrogram(x, torch.tensor([1000]), 64)
    window = torch.hann_window(64)
    # torchaudio Spectrogram(n_fft=64, hop 32, power=1, normalized=True): centred reflect pad, window-norm scaling.
    ref = torch.stft(x[0], 64, 32, window=window, center=True, pad_mode="reflect", return_complex=True).abs()
    ref = (ref / window.pow(2).sum().sqrt()).clamp(min=1e-8).log().transpose(1, 2)
    assert frames.tolist() == [32] and mine.shape == (1, 1, 32, 33)
    torch.testing.assert_close(mine[0], ref, atol=1e-5, rtol=1e-5)


def test_windows_follow_their_unfold():
    x = torch.arange(2 * 600, dtype=torch.float32).reshape(1, 2, 600)
    windows, counts = signal_windows(x, torch.tensor([600]), 256, 224)
    # Windows start at 0, 224, 448; the last is zero-filled past sample 600; leads side by side.
    assert counts.tolist() == [3] and windows.shape == (1, 3, 512)
    torch.testing.assert_close(windows[0, 1, :256], x[0, 0, 224:480])
    torch.testing.assert_close(windows[0, 1, 256:], x[0, 1, 224:480])
    assert (windows[0, 2, 152:256] == 0).all()


def test_bad_transformer_heads_are_a_project_error():
    with pytest.raises(ProjectError, match="must divide"):
        _net(DualNetParams(signal_encoder="transformer", latent_features=10, transformer_heads=4))
