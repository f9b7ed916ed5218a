"""A Stack end to end on real records: two small part jobs (FeatureGBM, CNN_small for one epoch) over two folds,
then a Stack of both through Ray (tracked in a local MLflow store), its fold folders, `summarize`, `predict`
and the MLflow runs of it."""

import json

import pytest
import torch

from ecgcore.trained import TrainedFold
from orchestrator.cli import main
from tests.conftest import ROOT, linked_records, write_json

pytestmark = pytest.mark.slow

N_RECORDS = 240
N_PREDICTED = 40  # predict runs every part and the features on each record, per fold: a few suffice
SPLIT = "split_3_3_1"


def _has_mlflow() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def _model(name: str, **training) -> dict:
    model = json.loads((ROOT / "models" / f"{name}.json").read_text())
    model["training_parameters"].update(training)
    return model


@pytest.fixture(scope="module")
def stacked(sample2017, tmp_path_factory, ray_session):
    base = tmp_path_factory.mktemp("stack_e2e")
    (base / "data").mkdir()
    data = linked_records(sample2017, base / "data", N_RECORDS)
    write_json(base / "models" / "gbm.json", _model("FeatureGBM", max_epochs=60, validation_step=10,
                                                     early_stop_wait=20))
    write_json(base / "models" / "cnn.json", _model("CNN_small", max_epochs=1, validation_step=1))
    stack = json.loads((ROOT / "models" / "Stack_gbm_cnn.json").read_text())
    stack["model_parameters"].update(parts=["FeatureGBM/gbm", "CNN/cnn"], features=True)
    write_json(base / "models" / "stack.json", stack)
    parts = write_json(base / "jobs" / "parts.json", {name: {"model": name, "split": SPLIT, "cvids": [0, 1]}
                                                      for name in ("gbm", "cnn")})
    jobs = write_json(base / "jobs" / "stack.json", {"stk": {"model": "stack", "split": SPLIT, "cvids": [0, 1]}})
    log = base / "log"
    assert main(["submit", str(parts), "--data", str(data), "--log-dir", str(log), "--quiet"]) == 0
    tracking = ["--mlflow", f"sqlite:///{base / 'mlflow.db'}"] if _has_mlflow() else []
    assert main(["submit", str(jobs), "--data", str(data), "--log-dir", str(log), "--quiet", *tracking]) == 0
    return data, log


def test_each_stack_fold_scores_its_parts_and_keeps_them_in_its_model(stacked):
    _, log = stacked
    for k in (0, 1):
        fold = log / "Stack" / "stk" / f"fold{k}"
        scores = json.loads((fold / "scores.json").read_text())
        assert set(scores["parts"]) == {"FeatureGBM/gbm", "CNN/cnn"} and scores["stacker"]["kind"] == "logistic"
        for part in ("FeatureGBM/gbm", "CNN/cnn"):  # each part scores in the stack as its own fold scored itself
            own = json.loads((log / part / f"fold{k}" / "scores.json").read_text())
            assert scores["parts"][part]["test"] == pytest.approx(own["test"]["score"], abs=1e-9)
        assert scores["shared_dataset"] and scores["test"]["score"] > 0.4
        assert any("only the test score is out of sample" in note for note in scores["notes"])
        model = json.loads((fold / "model.json").read_text())
        assert [m["model_name"] for m in model["model_parameters"]["models"]] == ["FeatureGBM", "CNN"]
        state = torch.load(fold / "best_model.pt", weights_only=True)
        assert any(k.startswith("parts.1.") for k in state) and "stacker.weight" in state
        assert TrainedFold.load(fold).model.model_parameters.parts == ("FeatureGBM/gbm", "CNN/cnn")


def test_summarize_and_predict_take_a_stack_like_any_job(stacked, tmp_path, capsys):
    data, log = stacked
    assert main(["summarize", "Stack", "--log-dir", str(log), "--resamples", "0"]) == 0
    assert "stk" in capsys.readouterr().out
    (tmp_path / "records").mkdir()
    records = linked_records(data, tmp_path / "records", N_PREDICTED)
    answers = tmp_path / "answers.txt"
    assert main(["predict", "--run", str(log / "Stack" / "stk"), "--input", str(records), "--output",
                 str(answers)]) == 0
    lines = answers.read_text().splitlines()
    assert len(lines) == N_PREDICTED and all(line[-1] in "NAO~" for line in lines)


def test_mlflow_tracks_a_stack_like_any_job(stacked):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    _, log = stacked
    job = log / "Stack" / "stk"
    ids = json.loads((job / "mlflow.json").read_text())
    client = MlflowClient(f"sqlite:///{log.parent / 'mlflow.db'}")
    assert client.get_run(ids["parent_run_id"]).data.tags["architecture"] == "Stack"
    for k in (0, 1):
        scores = json.loads((job / f"fold{k}" / "scores.json").read_text())
        metrics = client.get_run(ids["fold_run_ids"][str(k)]).data.metrics
        assert metrics["final_test_score"] == pytest.approx(scores["test"]["score"])
