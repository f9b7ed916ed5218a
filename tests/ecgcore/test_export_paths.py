"""The networks' export paths (ecgcore.models.common.exporting) compute what their usual paths compute.

While exporting, a network takes one whole record and avoids what torch.export cannot trace for every
length: LSTMs run unpacked one layer at a time, SEResNet18 cuts its chunks from the length alone, the
pools pad by a constant. Here, in eager mode, both paths run on single records of awkward lengths.
"""

import numpy as np
import pytest
import torch

from ecgcore.data.pipeline import Pipeline
from ecgcore.export.onnx import _quiet, onnx_probabilities
from ecgcore.models import create_model, globalskip
from tests.ecgcore.onnx_cases import tiny_config

CASES = {
    "CNN_max_pooling": ("CNN_cpu", {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 3,
                                    "dilation_rates": [1], "max_pooling": True}),
    "CRNN": ("CRNN_small", {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2, "kernel_size": [3, 3],
                            "dilation_rates": [1], "n_lstmneurons": 8, "n_lstmlayers": 3}),
    "CRNN_forward_only": ("CRNN_small", {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2,
                                         "dilation_rates": [1], "n_lstmneurons": 8, "n_lstmlayers": 2,
                                         "bidirectional": False}),
    # chunk 1024 every 768: 1792 samples end exactly on a stride (a chunk twice), 1000 is one padded chunk
    "SEResNet18": ("SEResNet18_dsail", {"width_factor": 1, "blocks_per_stage": 1, "chunk_length": 1024,
                                        "chunk_stride": 768}),
    "GlobalSkipNet": ("GlobalSkipNet_but", {"n_levels": 4, "channels_per_level": 4, "stem_channels": 4,
                                            "layers_per_level": 2}),
    "ECGDualNet": ("ECGDualNet_S", {"latent_features": 16, "lstm_layers": 2, "spectrogram_channels": [4, 8, 8]}),
}
LENGTHS = (100, 1000, 1001, 1792, 2561, 3000)


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_path_equals_the_usual_path(case, monkeypatch):
    model_file, params = CASES[case]
    cfg = tiny_config(model_file, params)
    pipeline = Pipeline(cfg, 300.0, 1)
    torch.manual_seed(1)
    net = create_model(cfg, pipeline.inputs, 4).eval()
    spectrogram = pipeline.inputs.kind == "spectrogram"
    inputs = [torch.randn(1, n // 32 - 1, 1, 33) if spectrogram else torch.randn(1, 1, n) for n in LENGTHS]
    with torch.no_grad():
        usual = [net(x, torch.tensor([x.shape[1 if spectrogram else 2]])) for x in inputs]
        monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
        exported = [net(x, torch.tensor([x.shape[1 if spectrogram else 2]])) for x in inputs]
    for n, a, b in zip(LENGTHS, usual, exported, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=f"{case}, {n} samples")
    assert max(float((a - usual[0]).abs().max()) for a in usual) > 1e-4  # the records differ: not a constant


class _Pools(torch.nn.Module):
    """GlobalSkipNet's window sums and ceil max-pool, side by side (their exported form: ecgcore.export)."""

    def forward(self, x):
        return torch.cat([globalskip._window_sum(x, 4), globalskip._ceil_max_pool(x.unsqueeze(2), 4).squeeze(2)])


def test_globalskip_pools_survive_the_onnx_export(tmp_path):
    # avg_pool2d's divisor_override (window sums) came out of the exporter as a mean: wrong at a short last window.
    path = tmp_path / "pools.onnx"
    with _quiet():
        torch.onnx.export(_Pools(), (torch.rand(1, 3, 201),), dynamo=True, verbose=False, input_names=["signal"],
                          output_names=["probabilities"], dynamic_shapes={"x": {2: torch.export.Dim("n", min=2)}}
                          ).save(path)
    for n in (199, 200, 201, 202, 501):
        x = torch.rand(1, 3, n)
        got = onnx_probabilities(path, [x.numpy()])
        np.testing.assert_allclose(got.reshape(2, 3, -1), _Pools()(x).numpy(), atol=1e-6, err_msg=f"{n} samples")
