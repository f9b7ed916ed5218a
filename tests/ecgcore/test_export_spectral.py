"""ONNX export of the spectrogram networks (CNN, CRNN): onnxruntime = predict on real CinC 2017 records.

The graph takes the log spectrogram (ecgcore/export/graph.py says why it is computed outside), so its
length axis is in frames.
"""

from ecgcore.export.graph import refusal
from ecgcore.export.onnx import TOLERANCE
from tests.ecgcore.onnx_cases import export_and_compare, tiny_config

SMALL = {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2, "kernel_size": [3, 3],
         "dilation_rates": [1]}


def test_cnn_ensemble_of_two_matches_predict_at_every_length(sample2017, tmp_path):
    cfg = tiny_config("CNN_cpu", SMALL)
    result = export_and_compare(cfg, sample2017, 2017, tmp_path, n_nets=2)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE
    assert len(result.lengths) >= 4  # the length axis is dynamic: one graph for every record
    assert result.expected.std(axis=0).max() > 1e-3  # the records get different answers: a real comparison


def test_crnn_with_three_lstm_layers_matches_predict(sample2017, tmp_path):
    # Three layers: a third stacked layer got a fixed reshape before whole_lstm narrowed each output.
    cfg = tiny_config("CRNN_small", {**SMALL, "n_lstmneurons": 8, "n_lstmlayers": 3})
    result = export_and_compare(cfg, sample2017, 2017, tmp_path)
    assert result.difference < TOLERANCE and result.noise_difference < TOLERANCE
    assert len(result.lengths) >= 4 and result.expected.std(axis=0).max() > 1e-3


def test_a_spectrogram_model_with_windows_is_refused():
    # Its windows are cut before the spectrogram, which is computed outside the graph.
    assert "windows" in refusal(tiny_config("CNN_cpu", SMALL, {"window": 3000}))
    assert refusal(tiny_config("CNN_cpu", SMALL)) is None
