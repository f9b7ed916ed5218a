"""Acceptance of the 12-lead track: jobs/cinc2021_12lead.json through a real Ray submit on the shared
CinC 2020/2021 sample, then `summarize`, `predict` to challenge output files, and `score` on them."""

import json

import pytest

from orchestrator.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run12(sample2020, tmp_path_factory, ray_session):
    base = tmp_path_factory.mktemp("run12")
    code = main(["submit", str(ROOT / "jobs" / "cinc2021_12lead.json"), "--data", str(sample2020),
                 "--log-dir", str(base / "log"), "--max-epochs", "1", "--cpus-per-task", "1"])
    return base, code


def test_the_shipped_12lead_job_runs_every_fold(run12):
    base, code = run12
    assert code == 0
    job_dir = base / "log" / "ResNet1d" / "cinc2021_resnet"
    for k in range(5):
        scores = json.loads((job_dir / f"fold{k}" / "scores.json").read_text())
        assert scores["challenge"] == 2021 and scores["split"] == "split_5_6_14"
        assert scores["test"]["n"] >= 15 and len(scores["thresholds"]) == 26


def test_summarize_shows_challenge_metric_auroc_auprc(run12, capsys):
    assert main(["summarize", "ResNet1d", "--log-dir", str(run12[0] / "log")]) == 0
    out = capsys.readouterr().out
    assert "cinc2021_resnet" in out and "auroc" in out and "auprc" in out and "CinC 2021 challenge metric" in out


def test_predict_then_score_the_sample(run12, sample2020, capsys):
    """One fold's model classifies the sample into challenge files that `score` reads. (A job folder's
    ensemble, its mean probabilities and thresholds, is tested on a small multi-label job:
    tests/ecgcore/test_multilabel_training.py.)"""
    base = run12[0]
    out = base / "outputs"
    assert main(["predict", "--run", str(base / "log" / "ResNet1d" / "cinc2021_resnet" / "fold0"),
                 "--input", str(sample2020), "--output", str(out)]) == 0
    assert len(list(out.glob("*.csv"))) == 79
    capsys.readouterr()
    assert main(["score", "--labels", str(sample2020), "--outputs", str(out), "--year", "2021", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["records"] == 79
    assert set(metrics) >= {"challenge_metric", "auroc", "auprc", "accuracy", "f_measure"}
