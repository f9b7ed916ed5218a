"""Every shipped model file builds; every architecture trains one epoch on the real CinC 2017 sample.

The training runs shrink each architecture's sizes and the data (the CPU
test budget: 200 of the shared real records, linked in place, never copied)
but keep everything else of its shipped model file: preprocessing,
optimiser, schedule, augmentations.
"""

import dataclasses
import json
import math

import pytest

from ecgcore.config.schema import read_json
from ecgcore.data.pipeline import Pipeline
from ecgcore.errors import ProjectError
from ecgcore.features.extract import FEATURE_NAMES
from ecgcore.models import create_model, get_architecture
from ecgcore.models.booster import BoostedTrees
from ecgcore.training.train import train_task
from orchestrator.config.jobs import load_model
from tests.conftest import ROOT, linked_records
from tests.ecgcore.test_train import Recorder, make_task

MODEL_FILES = sorted((ROOT / "models").glob("*.json"))

# Small sizes per architecture, applied over a shipped file's model_parameters.
TINY = {
    "CNN": {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2, "dilation_rates": [1]},
    "CRNN": {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2, "dilation_rates": [1],
             "n_lstmneurons": 8, "n_lstmlayers": 1},
    "ResNet1d": {"filters": [8, 16, 16], "seq_lengths": [1024, 256, 64]},
    "SEResNet18": {"width_factor": 1, "blocks_per_stage": 1, "chunk_length": 1024, "chunk_stride": 768},
    "GlobalSkipNet": {"n_levels": 3, "channels_per_level": 4, "stem_channels": 4, "layers_per_level": 2},
    "ECGDualNet": {"latent_features": 16, "lstm_layers": 1, "transformer_heads": 2, "transformer_layers": 1,
                   "transformer_ff_features": 32, "spectrogram_channels": [4, 8, 8]},
}
TINY_PRE = {"ResNet1d": {"window": 1024, "window_stride": 1024}, "SEResNet18": {"fs": 150}}


def _one_file_per_architecture() -> list:
    """A model file of every network; FeatureGBM (boosted, not epochs) trains on real records in test_booster."""
    chosen = {}
    for path in MODEL_FILES:
        name = json.loads(path.read_text())["model_name"]
        if get_architecture(name).trainer == "epochs":
            chosen.setdefault(name, path)
    return sorted(chosen.items())


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_every_shipped_model_file_builds(path):
    cfg = load_model(path.parent, path.stem, "test", "$")  # a search space at its first value
    pipe = Pipeline(cfg, 300.0, 1)
    if get_architecture(cfg.model_name).trainer == "stack":  # its parts' configs come from their fold folders
        with pytest.raises(ProjectError, match="not resolved"):
            create_model(cfg, pipe.inputs, 4)
        return
    net = create_model(cfg, pipe.inputs, 4)
    if isinstance(net, BoostedTrees):
        assert net.n_features == len(FEATURE_NAMES) and pipe.inputs.kind == "features"
    else:
        assert sum(p.numel() for p in net.parameters()) > 10_000


def test_tiny_sizes_cover_every_registered_network():
    from ecgcore.models import known_architectures

    assert sorted(TINY) == [a for a in known_architectures() if get_architecture(a).trainer == "epochs"]
    assert {name for name, _ in _one_file_per_architecture()} == set(TINY)


@pytest.fixture(scope="module")
def real200(sample2017, tmp_path_factory):
    return linked_records(sample2017, tmp_path_factory.mktemp("real200"), 200)


@pytest.mark.slow
@pytest.mark.parametrize("arch, path", _one_file_per_architecture(), ids=lambda v: getattr(v, "stem", v))
def test_one_epoch_on_the_real_sample(arch, path, real200, tmp_path):
    model = read_json(path)
    model["model_parameters"] = {**model["model_parameters"], **TINY[arch]}
    model["preprocessing"] = {**model.get("preprocessing", {}), **TINY_PRE.get(arch, {})}
    model["training_parameters"] = {**model.get("training_parameters", {}), "max_epochs": 1}
    rec = Recorder()
    task = dataclasses.replace(make_task(real200, tmp_path, model, split="split_5_6_14", fold=0), threads=2)
    result = train_task(task, rec)
    assert result.epochs_run == 1 and len(rec.rows) == 1 and math.isfinite(rec.rows[0]["train_loss"])
    info = result.info
    assert info["n_train"] + info["n_valid"] + info["n_test"] == 200 and result.scores["test"]["n"] == info["n_test"]
    assert 0.0 <= result.scores["test"]["score"] <= 1.0
