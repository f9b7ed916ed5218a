"""Stack: its model-file rules, the out-of-fold rule of its fit (spied on), its forward against the fold's own
predictions (both stackers, with features), and the trainer's refusal of a part that is not what was submitted.

The parts are real fold folders: a FeatureGBM and a small CNN trained on 240 real records and written by the
fold log, as a submit writes them."""

import json
from dataclasses import replace

import numpy as np
import pytest

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import ConfigError, to_plain
from ecgcore.data.pipeline import dataset_for, load_fold, split_of
from ecgcore.errors import ProjectError
from ecgcore.inference import predict_proba
from ecgcore.models import create_model
from ecgcore.models.hybrid import log_probs
from ecgcore.tracks import open_track
from ecgcore.trained import TrainedFold
from ecgcore.training import stack as stack_training
from ecgcore.training.train import train_task
from orchestrator.config.jobs import parse_model as parse_model_file
from orchestrator.logdir.writer import FoldLog
from tests.conftest import ROOT, linked_records, tiny_model
from tests.ecgcore.test_train import Recorder, make_task

GBM = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())
GBM["training_parameters"].update(max_epochs=60, validation_step=10, early_stop_wait=20)
CNN = tiny_model("CNN", max_epochs=2)
STACK = json.loads((ROOT / "models" / "Stack_gbm_cnn.json").read_text())
PARTS = ("FeatureGBM/gbm", "CNN/cnn")


@pytest.fixture(scope="module")
def part_folds(sample2017, tmp_path_factory):
    """(dataset, log folder) with fold 0 of a FeatureGBM job and of a CNN job, finished as a trial finishes them."""
    root = tmp_path_factory.mktemp("stack")
    (root / "data").mkdir()
    data = linked_records(sample2017, root / "data", 240)
    for name, model in zip(PARTS, (GBM, CNN), strict=True):
        task = make_task(data, root / "log" / name / "fold0", model, fold=0)
        log = FoldLog(task, {"model": name, "split": task.split, "cvids": [0]}, {})
        log.open()
        log.finish(train_task(task, log))
    return data, root / "log"


def stack_task(part_folds, out, **params):
    """The stack's fold-0 task as submit hands it to a trial: the parts' model configs inline, their fold folders."""
    data, log = part_folds
    models = [json.loads((log / name / "fold0" / "model.json").read_text()) for name in PARTS]
    model = {**STACK, "model_parameters": {"parts": list(PARTS), "models": models, **params}}
    return replace(make_task(data, out, model, fold=0), part_folds=tuple(str(log / name / "fold0") for name in PARTS))


class _Keep(Recorder):
    def on_best(self, model, epoch):
        super().on_best(model, epoch)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_stacker_is_fitted_on_the_folds_validation_records_only(part_folds, tmp_path, monkeypatch):
    fitted = []
    real = stack_training.fit_stacker
    monkeypatch.setattr(stack_training, "fit_stacker",
                        lambda stack, train, run: (fitted.append(train), real(stack, train, run))[1])
    task = stack_task(part_folds, tmp_path)
    train_task(task)
    fold = load_fold(task)
    (train,) = fitted
    assert train.names == fold.valid.names and len(train.names) > 20
    assert not set(train.names) & (set(fold.train.names) | set(fold.test.names))
    data, log = part_folds
    track = open_track(task.track, {}, root=str(data))
    records = dataset_for(track, str(data))
    index = {name: i for i, name in enumerate(records.names)}
    for k, (name, folder) in enumerate(zip(PARTS, task.part_folds, strict=True)):
        scores = json.loads((log / name / "fold0" / "scores.json").read_text())
        ids, split = split_of(records, track, scores["split"])
        position = {record_id: i for i, record_id in enumerate(ids)}
        # the records this part's fold-0 model trained on
        own_train = {records.names[position[i]] for i in split.folds[scores["fold"]].train}
        assert own_train == set(fold.train.names) and not own_train & set(train.names)
        # each row is those very records' outputs of the part, in their order
        probs = TrainedFold.load(folder).probabilities(records.take([index[n] for n in train.names]))
        np.testing.assert_allclose(train.x[:, 4 * k:4 * k + 4], log_probs(probs), atol=1e-9)


@pytest.mark.parametrize("stacker", ["logistic", "trees"])
def test_the_stack_fits_and_its_forward_on_raw_records_gives_the_folds_predictions(part_folds, tmp_path, stacker):
    task = stack_task(part_folds, tmp_path, stacker=stacker, features=True, inner_folds=3)
    rec = _Keep()
    result = train_task(task, rec)
    assert rec.rows == [] and rec.best == [result.best_epoch]  # nothing by epochs; the stack saved once
    assert result.info["stacker"]["kind"] == stacker and stack_training.IN_SAMPLE in result.info["notes"]
    _, log = part_folds
    for name in PARTS:  # each part scores here as its own fold scored itself
        own = json.loads((log / name / "fold0" / "scores.json").read_text())
        assert result.info["parts"][name]["test"] == pytest.approx(own["test"]["score"], abs=1e-9)
    assert result.scores["test"]["score"] > 0.4
    saved = parse_model(json.loads(json.dumps(to_plain(task.model))), "model.json")  # as the fold's model.json
    assert saved == task.model
    fold = load_fold(task)
    net = create_model(saved, fold.pipeline.inputs, 4)
    net.load_state_dict(rec.state)
    probs = predict_proba(net, fold.pipeline, fold.test.eval_items, fold.test.owners, len(fold.test), "cpu")
    np.testing.assert_allclose(probs, result.predictions["probs"], atol=1e-5)


def test_the_trainer_refuses_a_part_that_is_not_what_was_submitted(part_folds, tmp_path):
    task = stack_task(part_folds, tmp_path)
    other = replace(task.model.model_parameters.models[1], init_from="CNN/x")
    changed = replace(task, model=replace(task.model, model_parameters=replace(task.model.model_parameters,
                                                                              models=(other, other))))
    with pytest.raises(ProjectError, match=r"part FeatureGBM/gbm, fold folder .*not the one this stack was submitted"):
        train_task(changed)
    elsewhere = replace(task, part_folds=(task.part_folds[0], str(tmp_path / "CNN" / "none" / "fold0")))
    with pytest.raises(ProjectError, match=r"part CNN/cnn, fold folder .*none/fold0: unfinished"):
        train_task(elsewhere)
    wrong_fold = replace(task, split="split_4_3_1")
    with pytest.raises(ProjectError, match="trained on split split_3_3_1, this stack runs split_4_3_1"):
        train_task(wrong_fold)


def _stack(**params) -> dict:
    return {**STACK, "model_parameters": {**STACK["model_parameters"], **params}}


@pytest.mark.parametrize("model, path, message", [
    (_stack(parts=["CNN/a"]), "$.model_parameters.parts", "at least two distinct jobs"),
    (_stack(parts=["CNN/a", "CNN/a"]), "$.model_parameters.parts", "at least two distinct jobs"),
    (_stack(parts=["CNN/a", "CNN"]), "$.model_parameters.parts[1]", "'<architecture>/<job>'"),
    (_stack(stacker="vote"), "$.model_parameters.stacker", "not one of"),
    ({**STACK, "preprocessing": {"spectrogram": False, "fs": 100}}, "$.preprocessing", "as its job did"),
    ({**STACK, "init_from": "CNN/a"}, "$.init_from", "nothing to fine-tune"),
    (_stack(parts=["HybridStack/h", "CNN/a"],
            models=[{**json.loads((ROOT / "models" / "HybridStack.json").read_text()),
                     "model_parameters": {"deep": CNN, "features": GBM, "stacker": "logistic"}}, CNN]),
     "$.model_parameters.models[0]", "HybridStack/h cannot be a part: its logistic stacker was fitted"),
])
def test_a_stack_model_file_is_checked(model, path, message):
    with pytest.raises(ConfigError) as err:
        parse_model(model, "s.json")
    assert f"{path}: " in str(err.value) and message in str(err.value)


def test_a_model_file_leaves_the_parts_configs_to_submit_and_the_stack_takes_single_label_tracks_only(tmp_path):
    with pytest.raises(ConfigError, match=r"\$\.model_parameters\.models: filled from the parts' fold folders"):
        parse_model_file(_stack(models=[CNN, CNN]), tmp_path / "s.json")
    model = parse_model_file(STACK, tmp_path / "s.json")
    assert model.model_parameters.models == () and model.model_parameters.part_models() == {}
    assert replace(model.model_parameters, features=True).part_models()["features"].model_name == "FeatureGBM"
    assert open_track("cinc2021", {}).check_model(model, "signal", "stack")[0] == "track"
    assert open_track("cinc2017", {}).check_model(model, "signal", "stack") is None
