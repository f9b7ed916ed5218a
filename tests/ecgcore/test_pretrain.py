"""Self-supervised pre-training as a task kind, and fine-tuning from a pre-trained run."""

import numpy as np
import pytest
import torch

from ecgcore.config.model import Pretraining
from ecgcore.config.schema import ConfigError, load_dataclass
from ecgcore.data.pipeline import Pipeline
from ecgcore.errors import ProjectError
from ecgcore.models import create_model
from ecgcore.training.pretrain import PretrainNet, hidden_mask
from ecgcore.training.train import load_pretrained, train_task
from orchestrator.config.jobs import NamedJob, check_kinds, parse_model
from orchestrator.logdir.writer import FoldLog
from tests.conftest import tiny_model, tiny_signal_model
from tests.ecgcore.test_train import Recorder, make_task


def test_masks_hide_what_the_objective_says():
    lengths = torch.tensor([1000, 400])
    fore = hidden_mask(lengths, 1000, Pretraining(objective="forecast", forecast_fraction=0.25), None)
    assert fore[0, 0, 750:].sum() == 250 and fore[0, 0, :750].sum() == 0
    assert fore[1, 0, 300:400].sum() == 100 and fore[1, 0, 400:].sum() == 0 and fore[1, 0, :300].sum() == 0
    masked = hidden_mask(lengths, 1000, Pretraining(mask_fraction=0.2, span=20), np.random.default_rng(0))
    assert 0.1 < float(masked[0].mean()) <= 0.2 + 1e-6  # spans may overlap
    assert masked[1, 0, 400:].sum() == 0  # never beyond the record


@pytest.mark.parametrize("objective", ["masked", "forecast"])
def test_pretrain_task_learns_and_saves_net_and_decoder(synth_dir, tmp_path, objective):
    model = tiny_signal_model(training_parameters={"max_epochs": 4, "learning_rate": 0.003},
                              pretraining={"objective": objective})
    task = make_task(synth_dir, tmp_path, model, kind="pretrain")
    log = FoldLog(task, {"model": "tiny", "cvids": [1]}, {})
    log.open()
    rows = []
    log.on_validation = lambda row, base=log.on_validation: (rows.append(row), base(row))
    result = train_task(task, log)
    scores = log.finish(result)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learns something
    assert scores["kind"] == "pretrain" and scores["valid"]["loss"] == min(r["valid_loss"] for r in rows)
    assert "valid_loss" in (tmp_path / "hotlog.csv").read_text().splitlines()[0]
    assert not (tmp_path / "predictions.csv").exists()
    state = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert any(k.startswith("net.") for k in state) and any(k.startswith("decoder.") for k in state)


def test_fine_tuning_starts_from_the_pretrained_encoder(synth_dir, tmp_path):
    cfg = parse_model(tiny_signal_model(), "m.json")
    pipe = Pipeline(cfg, 300.0, 1)
    torch.manual_seed(1)
    pre = PretrainNet(create_model(make_task(synth_dir, tmp_path, tiny_signal_model()).model, pipe.inputs, 4), 1)
    path = tmp_path / "pre.pt"
    torch.save(pre.state_dict(), path)
    torch.manual_seed(2)
    fresh = create_model(make_task(synth_dir, tmp_path, tiny_signal_model()).model, pipe.inputs, 4)
    n = load_pretrained(fresh, str(path))
    trunk = [k for k in fresh.state_dict() if not k.startswith("head.")]
    assert n == len(trunk)
    for k, v in fresh.state_dict().items():
        same = torch.equal(v, pre.net.state_dict()[k])
        assert same == (not k.startswith("head.")) or not v.is_floating_point(), k
    # And through train_task: the task records how many tensors it took over.
    result = train_task(make_task(synth_dir, tmp_path, tiny_signal_model(), init=str(path)), Recorder())
    assert result.info["initialised_tensors"] == len(trunk)


def test_a_checkpoint_of_another_architecture_is_refused(synth_dir, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"convs.layers.0.conv.weight": torch.zeros(3)}, path)
    cfg = parse_model(tiny_signal_model(), "m.json")
    net = create_model(make_task(synth_dir, tmp_path, tiny_signal_model()).model, Pipeline(cfg, 300.0, 1).inputs, 4)
    with pytest.raises(ProjectError, match="no weight fits"):
        load_pretrained(net, str(path))


def test_pretraining_a_spectrogram_model_or_a_stacked_one_is_refused_at_load():
    from orchestrator.config.jobs import JobConfig

    job = NamedJob("pre", load_dataclass(JobConfig, {"model": "cnn", "split": "split_3_3_1", "cvids": [0],
                                                     "kind": "pretrain"}, "jobs.json"), "jobs.json")
    with pytest.raises(ConfigError, match=r"jobs.json: \$.pre.kind: pre-training needs a signal architecture"):
        check_kinds([job], {"cnn": parse_model(tiny_model("CNN"), "cnn.json")})
    # a HybridStack takes the signal, but its trainer is "stacking": the task kind picks the trainer "pretrain"
    hybrid = {"model_name": "HybridStack", "preprocessing": {"spectrogram": False},
              "data_augmentation": {"resampling": False, "zero_filter": False},
              "model_parameters": {"deep": tiny_model("CNN"), "features": {
                  "model_name": "FeatureGBM", "model_parameters": {}, "preprocessing": {"spectrogram": False},
                  "data_augmentation": {"resampling": False, "zero_filter": False}}}}
    with pytest.raises(ConfigError, match="HybridStack is not a network trained by epochs"):
        check_kinds([job], {"cnn": parse_model(hybrid, "h.json")})


def test_init_from_must_name_architecture_and_job():
    with pytest.raises(ConfigError, match=r"\$.init_from"):
        parse_model({**tiny_signal_model(), "init_from": "../etc"}, "m.json")
    assert parse_model({**tiny_signal_model(), "init_from": "GlobalSkipNet/pre"}, "m.json").init_from
