"""ONNX export of the signal networks (ResNet1d, SEResNet18, GlobalSkipNet): onnxruntime = predict on real
records, 12-lead CinC 2020 (band-pass, notch, resampling, standardisation) and single-lead CinC 2017."""

from types import SimpleNamespace

import pytest

from ecgcore.config.model import Preprocessing
from ecgcore.export.graph import refusal
from ecgcore.export.onnx import TOLERANCE
from ecgcore.models import known_architectures
from tests.ecgcore.onnx_cases import export_and_compare, tiny_config


def test_resnet1d_12lead_windows_and_a_padded_short_record(sample2020, tmp_path):
    # 1024-sample windows every 768 at 400 Hz; the 1/5 cut of a 10 s record (800 samples) is one padded window.
    cfg = tiny_config("ResNet1d_ribeiro_12lead", {"filters": [8, 16, 16], "seq_lengths": [1024, 256, 64]},
                      {"window": 1024, "window_stride": 768})
    result = export_and_compare(cfg, sample2020, 2021, tmp_path)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE
    assert min(result.lengths) < 1024 < max(result.lengths)
    assert result.expected.shape[1] == 26 and result.expected.std(axis=0).max() > 1e-3


def test_seresnet18_12lead_chunks(sample2020, tmp_path):
    cfg = tiny_config("SEResNet18_dsail_12lead", {"width_factor": 1, "blocks_per_stage": 1, "chunk_length": 1024,
                                                  "chunk_stride": 768})
    result = export_and_compare(cfg, sample2020, 2021, tmp_path)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE
    assert min(result.lengths) < 1024 < max(result.lengths)
    assert result.expected.std(axis=0).max() > 1e-3


def test_globalskipnet_single_lead(sample2017, tmp_path):
    cfg = tiny_config("GlobalSkipNet_but", {"n_levels": 3, "channels_per_level": 4, "stem_channels": 4,
                                            "layers_per_level": 2})
    result = export_and_compare(cfg, sample2017, 2017, tmp_path)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE and len(result.lengths) >= 4
    assert result.expected.std(axis=0).max() > 1e-3


@pytest.mark.parametrize("name", known_architectures())
def test_only_the_feature_models_are_refused_and_say_why(name):
    reason = refusal(SimpleNamespace(model_name=name, preprocessing=Preprocessing()))  # what refusal reads
    if name in ("FeatureGBM", "HybridStack", "Stack"):
        assert "LightGBM" in reason and "torch" in reason
    else:
        assert reason is None
