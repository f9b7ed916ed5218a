"""`export` of a 12-lead job (CinC 2021 classes) trained on the real CinC 2020 sample: the band-pass and the
resampling stay outside the graph and the sidecar says how, the thresholds are the folds' mean as in
`predict`, and the model card carries the per-class F1 and the leave-source-out warning."""

import json

import numpy as np
import pytest

from ecgcore.export.onnx import TOLERANCE
from ecgcore.training.train import train_task
from orchestrator.cli import main
from orchestrator.logdir.writer import FoldLog
from tests.conftest import tiny_signal_model
from tests.ecgcore.test_train import make_task


@pytest.fixture(autouse=True)
def no_git(monkeypatch):
    monkeypatch.setattr("orchestrator.plan.provenance.git_commit", lambda where=None: "c0ffee")


@pytest.fixture(scope="module")
def job12(sample2020, tmp_path_factory):
    """Two finished folds of a tiny 12-lead GlobalSkipNet (1 epoch, 100 Hz, band-pass, standardised)."""
    model = tiny_signal_model(preprocessing={"fs": 100, "standardize": True, "bandpass": [0.5, 40.0]},
                              training_parameters={"batch_size": 8, "max_epochs": 1},
                              loss_function_parameters={"loss": "bce"})
    job_dir = tmp_path_factory.mktemp("log12") / "GlobalSkipNet" / "tiny12"
    for fold in (0, 1):
        task = make_task(sample2020, job_dir / f"fold{fold}", model, split="split_3_3_1", fold=fold, challenge=2021)
        fold_log = FoldLog(task, {"model": "tiny", "split": task.split, "cvids": [0, 1], "challenge": 2021}, {})
        fold_log.open()
        fold_log.finish(train_task(task, fold_log))
    return job_dir


def test_12lead_job_export(job12, tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--run", str(job12), "--out", str(out)]) == 0
    sidecar = json.loads((out / "model.onnx.json").read_text())
    assert sidecar["input"]["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert sidecar["input"]["shape"] == [1, 12, "samples"] and sidecar["input"]["sampling_rate_hz"] == 100
    assert len(sidecar["classes"]) == len(sidecar["class_codes"]) == 26
    folds = [json.loads((job12 / f"fold{k}" / "scores.json").read_text())["thresholds"] for k in (0, 1)]
    mean = {c: (folds[0][c] + folds[1][c]) / 2 for c in sidecar["classes"]}
    assert sidecar["thresholds"] == pytest.approx(mean) and len(set(mean.values())) > 1
    steps = " ".join(sidecar["preprocessing"]["before_the_graph"])
    assert "band-pass 0.5-40 Hz" in steps and "resample to 100 Hz" in steps
    assert "standardise" in sidecar["preprocessing"]["in_the_graph"][0]
    assert sidecar["check"]["max_abs_difference"] < TOLERANCE and sidecar["output"]["activation"] == "sigmoid per class"
    card = (out / "MODEL_CARD.md").read_text()
    assert "ensemble of 2 folds" in card and "test F1 per class" in card and "There is no naive row" in card
    assert "Leave-source-out collapse" in card and "not leave-source-out" in card
    assert np.isfinite(sidecar["check"]["max_abs_difference"])
