"""`export` on fold folders written as a trial writes them (FoldLog + train_task on real CinC 2017 records, no
Ray): the ONNX file answers as `predict` does, the sidecar and the model card say what they must, and a
refused architecture or a failed check leaves no model.onnx."""

import json

import numpy as np
import pytest
import torch

from ecgcore.data.preprocess import lead_spectrograms
from ecgcore.export.onnx import TOLERANCE
from ecgcore.tracks import open_track
from ecgcore.trained import ensemble
from ecgcore.training.train import train_task
from orchestrator.cli import main
from orchestrator.commands import export as export_command
from orchestrator.commands.predict import trained_folds
from orchestrator.commands.summarize import job_summary
from orchestrator.logdir.reader import JobDir
from orchestrator.logdir.writer import FoldLog
from tests.conftest import ROOT, linked_records, tiny_model, write_json
from tests.ecgcore.test_train import make_task

SIGNATURE = "ab" * 32


@pytest.fixture(autouse=True)
def no_git(monkeypatch):
    """The export's provenance asks git for the commit; the tests do not touch the checkout."""
    monkeypatch.setattr("orchestrator.plan.provenance.git_commit", lambda where=None: "c0ffee")


@pytest.fixture(scope="module")
def job(sample2017, tmp_path_factory):
    """Two finished folds of a tiny CNN (1 epoch) on 60 real records: log/CNN/tiny/fold<k>."""
    data = linked_records(sample2017, tmp_path_factory.mktemp("data"), 60)
    job_dir = tmp_path_factory.mktemp("log") / "CNN" / "tiny"
    for fold in (0, 1):
        task = make_task(data, job_dir / f"fold{fold}", tiny_model(max_epochs=1), split="split_3_3_1", fold=fold)
        provenance = {"git_commit": "f01d", "host": "trainer", "data_signatures": {str(data): SIGNATURE}}
        fold_log = FoldLog(task, {"model": "tiny", "split": task.split, "cvids": [0, 1, 2], "challenge": 2017},
                           provenance)
        fold_log.open()
        fold_log.finish(train_task(task, fold_log))
    return job_dir


def test_a_job_exports_as_one_graph_that_answers_as_predict(job, sample2017, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--run", str(job), "--out", str(out)]) == 0
    assert "2 fold model(s)" in capsys.readouterr().out
    sidecar = json.loads((out / "model.onnx.json").read_text())
    assert sidecar["folds"] == [0, 1] and sidecar["classes"] == ["N", "A", "O", "~"]
    assert sidecar["input"]["leads"] == ["ECG"] and sidecar["input"]["sampling_rate_hz"] == 300
    assert sidecar["input"]["shape"] == [1, "frames", 1, 33] and sidecar["input"]["min_frames"] >= 1
    assert sidecar["thresholds"] is None and sidecar["check"]["max_abs_difference"] < TOLERANCE
    assert len(sidecar["check"]["lengths"]) >= 3
    assert "scipy.signal.spectrogram(lead, fs=300, nperseg=64, noverlap=32)" in sidecar["preprocessing"][
        "before_the_graph"][-1]
    # Records the check never saw, run as the README says: the log spectrogram of the record as it is.
    import onnxruntime

    track = open_track("cinc2017")
    (tmp_path / "unseen").mkdir()
    unseen = track.read_unlabelled(str(linked_records(sample2017, tmp_path / "unseen", 70)))
    unseen = unseen.take(range(60, 70))
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    got = np.concatenate([session.run(None, {"spectrogram": lead_spectrograms(s[None], 300.0, 64, 32)[None]})[0]
                          for s in unseen.signals])
    expected, _ = ensemble(trained_folds(job), unseen)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_the_model_card_reuses_summarize(job, tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--run", str(job / "fold1"), "--out", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    summary = job_summary(JobDir(job))
    pooled = summary.interval("score")
    assert "# Model card: CNN / tiny (fold 1)" in card and "not a medical device" in card
    assert f"| mean | {summary.stat('score')[0]:.3f} |" in card and "| naive |" in card
    assert f"[{pooled.low:.2f}, {pooled.high:.2f}]" in card
    assert "| fold | score | F1_N | F1_A | F1_O | F1_~ | accuracy |" in card
    assert SIGNATURE in card and "split_3_3_1" in card and "commit `f01d`" in card and "commit `c0ffee`" in card
    assert json.loads((out / "model.onnx.json").read_text())["folds"] == [1]


def test_a_failed_check_says_by_how_much_and_leaves_no_file(job, tmp_path, monkeypatch, capsys):
    real = export_command.onnx_probabilities
    monkeypatch.setattr(export_command, "onnx_probabilities", lambda path, inputs: real(path, inputs) + 0.01)
    out = tmp_path / "export"
    assert main(["export", "--run", str(job / "fold0"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disagree" in err and "0.01 > tolerance" in err
    assert not list(out.iterdir())


def test_feature_models_are_refused_with_the_reason(tmp_path, capsys):
    fold = tmp_path / "FeatureGBM" / "gbm" / "fold0"
    model = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())
    write_json(fold / "model.json", model)
    write_json(fold / "scores.json", {"challenge": 2017, "kind": "classify", "data_dir": str(tmp_path)})
    torch.save({}, fold / "best_model.pt")
    assert main(["export", "--run", str(fold), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "FeatureGBM cannot be exported to ONNX" in err and "LightGBM" in err
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_without_the_dataset_the_check_asks_for_records(job, tmp_path, capsys):
    fold = tmp_path / "CNN" / "moved" / "fold0"
    fold.mkdir(parents=True)
    for name in ("model.json", "job.json", "best_model.pt"):
        (fold / name).write_bytes((job / "fold0" / name).read_bytes())
    scores = json.loads((job / "fold0" / "scores.json").read_text())
    write_json(fold / "scores.json", {**scores, "data_dir": str(tmp_path / "gone")})
    assert main(["export", "--run", str(fold), "--out", str(tmp_path / "out")]) == 2
    assert "pass --records DIR" in capsys.readouterr().err
