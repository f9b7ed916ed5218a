"""FeatureGBM: the booster as a module, its weights, its model-file rules, and one real submit on real records."""

import csv
import json

import numpy as np
import pytest
import torch

from ecgcore.models.booster import BoostedTrees
from ecgcore.training.boosting import record_weights
from ecgcore.training.classify import class_weights
from ecgcore.training.loop import oversampling_copies
from ecgcore.training.train import train_task
from orchestrator.cli import main
from orchestrator.commands.summarize import summarize
from tests.conftest import ROOT, linked_records, write_json
from tests.ecgcore.test_train import make_task

MODEL = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())


def _fitted(n_classes=4, n_features=6):
    import lightgbm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, n_features))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing features are routed by the trees, not an error
    y = (np.nan_to_num(x[:, 0]) > 0).astype(int) + 2 * (np.nan_to_num(x[:, 1]) > 0.5)
    booster = lightgbm.train({"objective": "multiclass", "num_class": n_classes, "verbosity": -1,
                              "num_threads": 1, "deterministic": True}, lightgbm.Dataset(x, y), num_boost_round=20)
    return booster, x


def test_boosted_trees_round_trip_through_a_weights_only_state_dict(tmp_path):
    booster, x = _fitted()
    net = BoostedTrees(4, x.shape[1])
    net.set_booster(booster.model_to_string())
    probs = torch.softmax(net(torch.from_numpy(x).float(), None), dim=1).numpy()
    np.testing.assert_allclose(probs, booster.predict(x.astype(np.float32)), rtol=1e-5, atol=1e-7)
    torch.save(net.state_dict(), tmp_path / "best_model.pt")
    again = BoostedTrees(4, x.shape[1])
    again.load_state_dict(torch.load(tmp_path / "best_model.pt", weights_only=True))
    torch.testing.assert_close(again(torch.from_numpy(x).float(), None), net(torch.from_numpy(x).float(), None))
    with pytest.raises(RuntimeError, match="no trees"):
        BoostedTrees(4, 6)(torch.zeros(2, 6), None)


def test_record_weights_are_class_weight_times_oversampling_copies():
    labels = np.array([0] * 60 + [1] * 9 + [2] * 28 + [3] * 3)
    weights = class_weights(labels, 0.5, 4)
    w = record_weights(labels, weights, 0.2)
    expected = (weights * oversampling_copies(labels, 0.2))[labels]
    np.testing.assert_allclose(w, expected / expected.mean())
    # no class 3 in training: its weight is unused, the others keep theirs
    w3 = record_weights(labels[:97], weights, 0.0)
    np.testing.assert_allclose(w3, weights[labels[:97]] / weights[labels[:97]].mean())


@pytest.mark.parametrize("change, path", [
    ({"data_augmentation": {"resampling": True}}, "$.data_augmentation.resampling"),
    ({"preprocessing": {"spectrogram": False, "window": 3000}}, "$.preprocessing.window"),
])
def test_a_features_model_refuses_what_would_vary_its_inputs(tmp_path, capsys, change, path):
    write_json(tmp_path / "models" / "gbm.json", {**MODEL, **change})
    jobs = write_json(tmp_path / "jobs" / "j.json", {"j": {"model": "gbm", "split": "split_3_3_1", "cvids": [0]}})
    assert main(["submit", str(jobs), "--dry-run"]) == 2
    assert path in capsys.readouterr().err


def test_a_features_model_takes_cinc2017_only(tmp_path, capsys):
    write_json(tmp_path / "models" / "gbm.json", MODEL)
    jobs = write_json(tmp_path / "jobs" / "j.json", {"j": {"model": "gbm", "split": "split_3_3_1", "cvids": [0],
                                                         "challenge": 2021}})
    assert main(["submit", str(jobs), "--dry-run"]) == 2
    assert "$.j.challenge" in capsys.readouterr().err


@pytest.fixture(scope="module")
def subset2017(sample2017, tmp_path_factory):
    """240 of the shared real records, linked (not copied) into a folder of their own."""
    return linked_records(sample2017, tmp_path_factory.mktemp("subset2017"), 240)


def test_training_repeats_exactly_and_logs_blocks_of_rounds(subset2017, tmp_path):
    model = {**MODEL, "training_parameters": {**MODEL["training_parameters"], "validation_step": 10,
                                              "early_stop_wait": 30, "max_epochs": 300}}
    runs = [train_task(make_task(subset2017, tmp_path / str(i), model, fold=0), observer := _Rows())
            for i in range(2)]
    np.testing.assert_array_equal(runs[0].predictions["probs"], runs[1].predictions["probs"])
    epochs = [row["epoch"] for row in observer.rows]
    assert epochs[:3] == [10, 20, 30] and runs[1].epochs_run == epochs[-1]
    assert runs[1].stop_reason in ("early_stop", "max_epochs") and 1 <= runs[1].best_epoch <= epochs[-1]
    assert runs[1].scores["test"]["score"] > 0.5  # real records: far above the naive 0.25


class _Rows:
    def __init__(self):
        self.rows = []

    def on_validation(self, row):
        self.rows.append(row)

    def on_best(self, model, epoch):
        pass

    def on_checkpoint(self, state):
        raise AssertionError("a booster has no checkpoint to resume from")


@pytest.mark.slow
def test_a_real_submit_summarize_ensemble_and_predict(subset2017, tmp_path, ray_session, capsys):
    write_json(tmp_path / "models" / "gbm.json", MODEL)
    jobs = write_json(tmp_path / "jobs" / "j.json", {"gbm": {"model": "gbm", "split": "split_3_3_1_holdout",
                                                            "log_en": True, "cvids": [0, 1, 2]}})
    log = tmp_path / "log"
    assert main(["submit", str(jobs), "--data", str(subset2017), "--log-dir", str(log), "--quiet"]) == 0
    job_dir = log / "FeatureGBM" / "gbm"
    fold = job_dir / "fold0"
    with open(fold / "hotlog.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(int(r["epoch"]) % 25 == 0 for r in rows[:-1]) and list(fold.glob("events.out.tfevents.*"))
    scores = json.loads((fold / "scores.json").read_text())
    assert scores["architecture"] == "FeatureGBM" and isinstance(scores["notes"], list)
    assert scores["test"]["score"] > 0.4
    assert "gbm" in summarize(log, "FeatureGBM")
    assert main(["ensemble", str(job_dir)]) == 0
    ens = json.loads((job_dir / "ensemble.json").read_text())
    # predict on a folder of records no fold saw (the hold-out part) writes the 2017 answers file
    unseen = tmp_path / "unseen"
    unseen.mkdir()
    held = json.loads((subset2017 / "splits" / "split_3_3_1_holdout" / "holdout.json").read_text())
    for number in held:
        for ext in (".hea", ".mat"):
            (unseen / f"A{number:05d}{ext}").symlink_to(subset2017 / f"A{number:05d}{ext}")
    answers = tmp_path / "answers.txt"
    assert main(["predict", "--run", str(job_dir), "--input", str(unseen), "--output", str(answers)]) == 0
    lines = answers.read_text().splitlines()
    assert len(lines) == len(held) == ens["n_records"] and all(line[-1] in "NAO~" for line in lines)
    reference = dict(r.split(",") for r in (subset2017 / "REFERENCE.csv").read_text().split())
    accuracy = np.mean([reference[n] == label for n, label in (line.split(",") for line in lines)])
    assert accuracy == pytest.approx(ens["ensemble"]["accuracy"])
