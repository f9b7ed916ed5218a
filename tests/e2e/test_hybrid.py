"""HybridStack: its model-file rules, its fit on real records (both stackers), its forward against the fold's
own scores, the deep part trained here equal to the same model trained alone, and one real submit + predict."""

import json

import numpy as np
import pytest
import torch

from ecgcore.config.modelfile import task_from_dict
from ecgcore.config.schema import ConfigError, to_plain
from ecgcore.data import pipeline as data
from ecgcore.inference import predict_proba
from ecgcore.models import get_architecture
from ecgcore.training.train import train_task
from orchestrator.cli import main
from orchestrator.config.jobs import load_model, parse_model
from tests.conftest import ROOT, linked_records, write_json
from tests.ecgcore.test_train import Recorder, make_task

CNN = json.loads((ROOT / "models" / "CNN_cpu.json").read_text())
CNN["training_parameters"].update(max_epochs=3, validation_step=1, batch_size=32)
GBM = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())
GBM["training_parameters"].update(max_epochs=60, validation_step=10, early_stop_wait=20)
HYBRID = json.loads((ROOT / "models" / "HybridStack.json").read_text())


def hybrid(stacker="logistic", **extra) -> dict:
    return {**HYBRID, "model_parameters": {"deep": CNN, "features": GBM, "stacker": stacker}, **extra}


class _Keep(Recorder):
    """Also keeps the saved model's state dict, as the fold log's best_model.pt holds it."""

    def on_best(self, model, epoch):
        super().on_best(model, epoch)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def subset2017(sample2017, tmp_path_factory):
    return linked_records(sample2017, tmp_path_factory.mktemp("hybrid2017"), 240)


def test_a_hybrid_file_names_its_parts_by_file_and_saves_them_inline(tmp_path):
    for name in ("CNN_cpu", "FeatureGBM", "HybridStack"):
        write_json(tmp_path / f"{name}.json", json.loads((ROOT / "models" / f"{name}.json").read_text()))
    model = load_model(tmp_path, "HybridStack", "jobs.json", "$.j.model")
    parts = model.model_parameters
    assert (parts.deep.model_name, parts.features.model_name) == ("CNN", "FeatureGBM")
    assert parse_model(json.loads(json.dumps(to_plain(model))), "<task>") == model  # model.json round trip


@pytest.mark.parametrize("change, path, message", [
    ({"deep": "NoSuchFile"}, "$.model_parameters.deep", "does not exist"),
    ({"deep": "FeatureGBM"}, "$.model_parameters.deep", "cannot be the deep part"),
    ({"features": "CNN_cpu"}, "$.model_parameters.features", "cannot be the features part"),
    ({"stacker": "vote"}, "$.model_parameters.stacker", "not one of"),
])
def test_a_hybrid_refuses_parts_that_do_not_fit(tmp_path, change, path, message):
    for name in ("CNN_cpu", "FeatureGBM"):
        write_json(tmp_path / f"{name}.json", json.loads((ROOT / "models" / f"{name}.json").read_text()))
    write_json(tmp_path / "H.json", {**HYBRID, "model_parameters": {**HYBRID["model_parameters"], **change}})
    with pytest.raises(ConfigError) as err:
        load_model(tmp_path, "H", "jobs.json", "$.j.model")
    assert path in str(err.value) and message in str(err.value)


def test_a_hybrid_has_no_preprocessing_of_its_own_and_takes_cinc2017_only(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"\$\.preprocessing: .*each part"):
        parse_model(hybrid(preprocessing={"spectrogram": False, "standardize": True}), "h.json")
    write_json(tmp_path / "models" / "h.json", hybrid())
    jobs = write_json(tmp_path / "jobs" / "j.json", {"j": {"model": "h", "split": "split_3_3_1", "cvids": [0],
                                                         "challenge": 2021}})
    assert main(["submit", str(jobs), "--dry-run"]) == 2
    assert "$.j.challenge" in capsys.readouterr().err


def _forward_probs(task, state) -> np.ndarray:
    """The saved stack rebuilt as predict rebuilds it, run on the fold's raw test records."""
    fold = data.load_fold(task)
    net = get_architecture("HybridStack").build(task.model.model_parameters, fold.pipeline.inputs, 4, 0.0)
    net.load_state_dict(state)
    return predict_proba(net, fold.pipeline, fold.test.eval_items, fold.test.owners, len(fold.test), "cpu")


@pytest.mark.parametrize("stacker", ["logistic", "trees"])
def test_the_stack_fits_and_its_forward_gives_the_folds_own_predictions(subset2017, tmp_path, stacker):
    task = task_from_dict(to_plain(make_task(subset2017, tmp_path, hybrid(stacker), fold=0)))
    rec = _Keep()
    result = train_task(task, rec)
    assert [r["epoch"] for r in rec.rows] == [1, 2, 3]  # the deep part's validations are the hotlog
    assert rec.best == [result.best_epoch]  # one best model: the whole stack, saved once
    assert set(result.info["parts"]) == ({"deep", "features"} if stacker == "logistic" else {"deep"})
    assert result.scores["test"]["score"] > 0.45  # real records: the features carry it far above naive 0.25
    np.testing.assert_allclose(_forward_probs(task, rec.state), result.predictions["probs"], atol=1e-5)


def test_the_deep_part_trains_by_backprop_as_its_model_would_alone_and_is_reused_from_a_fold(subset2017,
                                                                                               tmp_path):
    alone_rec = _Keep()
    alone = train_task(make_task(subset2017, tmp_path / "alone", CNN, fold=0), alone_rec)
    stack_rec = _Keep()
    stack = train_task(make_task(subset2017, tmp_path / "stack", hybrid(), fold=0), stack_rec)
    # the same seeds, batches and steps: the deep part is the model trained alone
    for part in ("valid", "test"):
        assert stack.info["parts"]["deep"][part] == pytest.approx(alone.scores[part]["score"], abs=1e-9)
    deep = {k.removeprefix("deep."): v for k, v in stack_rec.state.items() if k.startswith("deep.")}
    for name, value in alone_rec.state.items():
        torch.testing.assert_close(deep[name], value)
    init = get_architecture("CNN").build(parse_model(CNN, "c.json").model_parameters,
                                         data.load_fold(make_task(subset2017, tmp_path, CNN, fold=0)).pipeline.inputs,
                                         4, 0.0).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in alone_rec.state.items() if v.is_floating_point())
    # a finished fold of that model, taken as the deep part: not trained again, same parts, same stack
    torch.save(alone_rec.state, tmp_path / "best_model.pt")
    reused_rec = Recorder()
    reused = train_task(make_task(subset2017, tmp_path / "reuse", hybrid(), fold=0,
                                  init=str(tmp_path / "best_model.pt")), reused_rec)
    assert reused_rec.rows == [] and reused.info["deep"]["from"] == str(tmp_path / "best_model.pt")
    assert reused.info["parts"] == stack.info["parts"]
    np.testing.assert_allclose(reused.predictions["probs"], stack.predictions["probs"], atol=1e-9)


def test_a_deep_part_from_another_split_is_refused(subset2017, tmp_path, capsys):
    fold0 = tmp_path / "log" / "CNN" / "deep" / "fold0"
    fold0.mkdir(parents=True)
    torch.save({}, fold0 / "best_model.pt")
    write_json(fold0 / "scores.json", {"split": "split_5_6_14"})
    for name in ("CNN_cpu", "FeatureGBM"):
        write_json(tmp_path / "models" / f"{name}.json", json.loads((ROOT / "models" / f"{name}.json").read_text()))
    write_json(tmp_path / "models" / "h.json", {**HYBRID, "init_from": "CNN/deep"})
    jobs = write_json(tmp_path / "jobs" / "j.json", {"j": {"model": "h", "split": "split_3_3_1", "cvids": [0]}})
    code = main(["submit", str(jobs), "--data", str(subset2017), "--log-dir", str(tmp_path / "log")])
    assert code != 0 and "trained on split split_5_6_14" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_submit_and_predict_of_a_stack(subset2017, tmp_path, ray_session):
    write_json(tmp_path / "models" / "h.json", hybrid())
    jobs = write_json(tmp_path / "jobs" / "j.json", {"h": {"model": "h", "split": "split_3_3_1_holdout",
                                                          "cvids": [0]}})
    log = tmp_path / "log"
    assert main(["submit", str(jobs), "--data", str(subset2017), "--log-dir", str(log), "--quiet"]) == 0
    job_dir = log / "HybridStack" / "h"
    scores = json.loads((job_dir / "fold0" / "scores.json").read_text())
    assert set(scores["parts"]) == {"deep", "features"} and scores["test"]["score"] > 0.45
    resolved = json.loads((job_dir / "fold0" / "model.json").read_text())
    assert resolved["model_parameters"]["deep"]["model_name"] == "CNN"  # the parts saved inline
    answers = tmp_path / "answers.txt"
    assert main(["predict", "--run", str(job_dir), "--input", str(subset2017), "--output", str(answers)]) == 0
    lines = answers.read_text().splitlines()
    assert len(lines) == 240 and all(line[-1] in "NAO~" for line in lines)
