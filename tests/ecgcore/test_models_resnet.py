"""ResNet1d (Ribeiro) and SEResNet18 (DSAIL_SNU): shipped files, gradients, window rule, chunking, padding."""

from pathlib import Path

import pytest
import torch

import ecgcore.models.resnet1d as resnet1d  # registers the two architectures
from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.errors import ProjectError
from ecgcore.models import InputSpec, get_architecture, known_architectures
from ecgcore.models.resnet1d import ResNet1dParams, SEResNet18Params, chunk_starts

ROOT = Path(__file__).resolve().parents[2]

TINY_RESNET = ResNet1dParams(filters=(4, 8, 8), seq_lengths=(64, 16, 4), kernel_size=5)
TINY_SE = SEResNet18Params(width_factor=1, kernel_size=5, stride=4, se=True, chunk_length=256, chunk_stride=192)


def _load(name: str):
    path = ROOT / "models" / f"{name}.json"
    return parse_model(read_json(path), path)


def _build(arch: str, params, n_leads=1, length=None, n_classes=4, drop=0.0):
    torch.manual_seed(0)
    return get_architecture(arch).build(params, InputSpec("signal", n_leads, 300.0, length), n_classes, drop)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_as_signal_models():
    assert {"ResNet1d", "SEResNet18"} <= set(known_architectures())
    assert get_architecture("ResNet1d").params is ResNet1dParams
    assert get_architecture("SEResNet18").params is SEResNet18Params
    assert get_architecture("ResNet1d").input == get_architecture("SEResNet18").input == "signal"


def test_shipped_model_files_and_parameter_counts():
    counts = {}
    for name in ("ResNet1d_ribeiro", "SEResNet18_dsail", "SEResNet_cpu"):
        cfg = _load(name)
        assert cfg.preprocessing.spectrogram is False
        spec = InputSpec("signal", 1, cfg.preprocessing.fs or 300.0, cfg.preprocessing.window)
        model = get_architecture(cfg.model_name).build(cfg.model_parameters, spec, 4,
                                                       cfg.training_parameters.drop_rate)
        counts[name] = _n_params(model)
    print("parameters (1 lead, 4 classes):", counts)
    assert counts == {"ResNet1d_ribeiro": 6_928_100, "SEResNet18_dsail": 3_448_996, "SEResNet_cpu": 241_876}
    assert _load("ResNet1d_ribeiro").preprocessing.window == 4096
    assert _load("SEResNet18_dsail").model_parameters.se is True


def test_published_twelve_lead_counts():
    # antonior92 CinC 2020 (12 leads, the 27 scored classes); DSAIL_SNU (12 leads, 24 merged classes, no SE).
    big = _build("ResNet1d", ResNet1dParams(), n_leads=12, length=4096, n_classes=27)
    assert _n_params(big) == 7_057_851
    assert _n_params(_build("SEResNet18", SEResNet18Params(se=False), n_leads=12, n_classes=24)) == 3_370_968


def _check_gradients(model, loss):
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("n_leads", [1, 12])
def test_resnet1d_forward_backward(n_leads):
    model = _build("ResNet1d", TINY_RESNET, n_leads=n_leads, length=64, drop=0.5).train()
    x = torch.randn(3, n_leads, 64)
    lengths = torch.full((3,), 64)
    logits = model(x, lengths)
    assert logits.shape == (3, 4)
    _check_gradients(model, logits.logsumexp(1).mean())
    features, steps = model.encode(x, lengths)
    assert features.shape == (3, model.encoder_channels, 4)
    assert steps.tolist() == [4, 4, 4]
    assert isinstance(model.head, torch.nn.Linear)


@pytest.mark.parametrize("n_leads, se", [(1, True), (12, True), (1, False)])
def test_seresnet_forward_backward(n_leads, se):
    params = SEResNet18Params(**{**TINY_SE.__dict__, "se": se})
    model = _build("SEResNet18", params, n_leads=n_leads, drop=0.3).train()
    x = torch.randn(3, n_leads, 700)
    lengths = torch.tensor([700, 100, 300])
    logits = model(x, lengths)
    assert logits.shape == (3, 4)
    _check_gradients(model, logits.logsumexp(1).mean())
    assert isinstance(model.head, torch.nn.Linear)


def test_shipped_seresnet_runs_on_short_records():
    cfg = _load("SEResNet18_dsail")
    model = get_architecture(cfg.model_name).build(cfg.model_parameters, InputSpec("signal", 1, 300.0), 4, 0.3)
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 1, 1000), torch.tensor([1000, 400]))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


@pytest.mark.parametrize("length, match", [(None, "preprocessing.window to 64.*null"),
                                           (128, "preprocessing.window is 128.*seq_lengths\\[0\\] is 64")])
def test_resnet1d_needs_the_window(length, match):
    with pytest.raises(ProjectError, match=match):
        _build("ResNet1d", TINY_RESNET, length=length)


def test_resnet1d_rejects_bad_sizes():
    with pytest.raises(ProjectError, match="filters but"):
        _build("ResNet1d", ResNet1dParams(filters=(4, 8), seq_lengths=(64, 16, 4), kernel_size=5), length=64)
    with pytest.raises(ProjectError, match="odd"):
        _build("ResNet1d", ResNet1dParams(filters=(4, 8), seq_lengths=(64, 16), kernel_size=4), length=64)
    with pytest.raises(ProjectError, match="integer factors"):
        _build("ResNet1d", ResNet1dParams(filters=(4, 8), seq_lengths=(64, 24), kernel_size=5), length=64)
    model = _build("ResNet1d", TINY_RESNET, length=64)
    with pytest.raises(ProjectError, match="exactly 64 samples"):
        model(torch.randn(1, 1, 80), torch.tensor([80]))


def test_chunk_starts_follow_their_collate():
    assert chunk_starts(100, 2048, 1536) == [0]
    assert chunk_starts(2048, 2048, 1536) == [0]
    assert chunk_starts(2049, 2048, 1536) == [0, 1]  # the last chunk ends at the record's end
    assert chunk_starts(5000, 2048, 1536) == [0, 1536, 2952]
    assert chunk_starts(3584, 2048, 1536) == [0, 1536]


def test_output_is_the_head_of_the_max_over_chunks():
    model = _build("SEResNet18", TINY_SE).eval()
    record = torch.randn(1, 1, 700)
    with torch.no_grad():
        logits = model(record, torch.tensor([700]))
        pooled = [model.trunk(record[:, :, s:s + 256])[0].amax(dim=2) for s in (0, 192, 384, 444)]
        expected = model.head(torch.stack(pooled).amax(dim=0))
        per_chunk_logits = torch.cat([model.head(p) for p in pooled])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    # Max over chunk features, then the Linear: not the max of the chunks' logits.
    assert not torch.allclose(logits[0], per_chunk_logits.amax(dim=0), atol=1e-4)


@pytest.mark.parametrize("short", [100, 300, 700])
def test_padding_does_not_change_the_output(short):
    model = _build("SEResNet18", TINY_SE).eval()
    record = torch.randn(1, 1, short)
    batch = torch.randn(2, 1, 1000)
    batch[0, :, :short] = record[0]
    batch[0, :, short:] = 50.0  # garbage in the padding must not leak in
    with torch.no_grad():
        alone = model(record, torch.tensor([short]))
        together = model(batch, torch.tensor([short, 1000]))
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)


def test_seresnet_encode_masks_padding():
    model = _build("SEResNet18", TINY_SE).eval()
    record = torch.randn(1, 1, 300)
    batch = torch.randn(2, 1, 1000)
    batch[0, :, :300] = record[0]
    batch[0, :, 300:] = 0.0
    with torch.no_grad():
        alone, n_alone = model.encode(record, torch.tensor([300]))
        together, n_together = model.encode(batch, torch.tensor([300, 1000]))
    assert n_alone.tolist() == [5] and n_together.tolist() == [5, 16]  # ceil(300 / 64), ceil(1000 / 64)
    assert together.shape == (2, model.encoder_channels, 16)
    torch.testing.assert_close(together[0, :, :5], alone[0, :, :5], atol=1e-4, rtol=1e-4)
    assert (together[0, :, 5:] == 0).all()


def test_seresnet_rejects_bad_sizes():
    with pytest.raises(ProjectError, match="chunk_stride"):
        _build("SEResNet18", SEResNet18Params(chunk_length=256, chunk_stride=300))
    with pytest.raises(ProjectError, match="kernel_size"):
        _build("SEResNet18", SEResNet18Params(kernel_size=3, stride=4))


def test_module_docstring_cites_sources():
    doc = resnet1d.__doc__
    assert "antonior92/physionet-12ecg-classification" in doc and "seonwoo-min/PhysioNet-Challange-2020" in doc
