"""summarize on hand-made fold results: rows, mean, sample std, incomplete jobs, formats."""

import json
import math

import pytest

from orchestrator.cli import main
from orchestrator.commands.summarize import summarize
from tests.conftest import write_json


def _fold(log, job, k, score, cvids):
    d = log / "CNN" / job / f"fold{k}"
    write_json(d / "job.json", {"cvids": cvids, "cvid": k})
    f1 = {"N": score, "A": score, "O": score, "~": 0.5}
    # Training fold mostly N; test fold with 6 N, 1 A, 3 O and no noise.
    train = {"confusion": [[50, 0, 0, 0], [0, 8, 0, 0], [0, 0, 25, 0], [0, 0, 0, 3]]}
    test = {"score": score, "accuracy": 0.9, "f1": f1,
            "confusion": [[5, 0, 1, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]}
    write_json(d / "scores.json", {"fold": k, "train": train, "test": test})


def test_mean_std_and_incomplete(tmp_path, capsys):
    log = tmp_path / "log"
    for k, s in enumerate([0.70, 0.80, 0.90]):
        _fold(log, "full", k, s, [0, 1, 2])
    _fold(log, "partial", 0, 0.5, [0, 1])
    (log / "CNN" / "partial" / "fold1").mkdir()  # started, never finished: no scores.json
    write_json(log / "CNN" / "partial" / "fold1" / "job.json", {"cvids": [0, 1], "cvid": 1})
    text = summarize(log, "CNN")
    assert "0.800 ± 0.100" in text
    # Always-N on 6 N, 1 A, 3 O: F1_N = 2*6 / (2*6 + 4) = 0.75, F1_A = F1_O = 0, score 0.25, accuracy 0.6.
    assert "naive  0.250  0.750  0.000  0.000  0.000     0.600" in text
    assert "(3 folds; naive 0.250)" in text
    assert "[incomplete: missing fold(s) [1]]" in text
    data = json.loads((log / "CNN" / "summary.json").read_text())
    assert data["jobs"]["full"]["std"]["score"] == pytest.approx(0.1)
    assert data["jobs"]["full"]["naive"] == {"majority_class": ["N"], "mean": pytest.approx(
        {"score": 0.25, "F1_N": 0.75, "F1_A": 0.0, "F1_O": 0.0, "F1_~": 0.0, "accuracy": 0.6})}
    assert data["jobs"]["partial"]["complete"] is False and data["jobs"]["partial"]["std"]["score"] is None
    assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "markdown"]) == 0
    assert "| fold | score | F1_N |" in capsys.readouterr().out
    assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "json"]) == 0
    assert math.isclose(json.loads(capsys.readouterr().out)["jobs"]["full"]["mean"]["score"], 0.8)


def test_unknown_architecture(tmp_path, capsys):
    _fold(tmp_path / "log", "a", 0, 0.5, [0])
    assert main(["summarize", "CRNN", "--log-dir", str(tmp_path / "log")]) == 2
    assert "architectures with results: CNN" in capsys.readouterr().err


def test_console_script_entry(tmp_path, capsys):
    from orchestrator.cli import summarize_main

    _fold(tmp_path / "log", "a", 0, 0.5, [0])
    assert summarize_main(["CNN", "--log-dir", str(tmp_path / "log")]) == 0
    assert "a                              0.500 ± n/a  (1 folds; naive 0.250)" in capsys.readouterr().out
