"""ONNX export of ECG-DualNet (LSTM and Transformer signal encoders): onnxruntime = predict on real CinC 2017
records. One residual block each (the export time grows with the blocks, not the check)."""

import pytest

from ecgcore.export.onnx import TOLERANCE
from tests.ecgcore.onnx_cases import export_and_compare, tiny_config

SMALL = {"latent_features": 16, "lstm_layers": 1, "transformer_heads": 2, "transformer_layers": 1,
         "transformer_ff_features": 32, "spectrogram_channels": [4]}


@pytest.mark.parametrize("model_file", ["ECGDualNet_S", "ECGDualNet_S_transformer"])
def test_dualnet_matches_predict(model_file, sample2017, tmp_path):
    result = export_and_compare(tiny_config(model_file, SMALL), sample2017, 2017, tmp_path)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE and len(result.lengths) >= 4
    assert result.expected.std(axis=0).max() > 1e-3
