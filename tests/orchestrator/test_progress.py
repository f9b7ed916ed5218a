"""The terminal view of a running submit: event lines for logs, nothing when quiet, a live table with ETA."""

import time

import pytest

from orchestrator.cli import main
from orchestrator.run.progress import ProgressView, TaskRow
from tests.conftest import tiny_model, write_json

ROW = {"epoch": 2, "best_epoch": 2, "train_loss": 0.5, "valid_score": 0.61, "elapsed_s": 20.0}


def test_lines_mode_prints_one_line_per_event(capsys):
    view = ProgressView("lines", {"CNN/j/fold0": TaskRow(max_epochs=10)})
    view.start("CNN/j/fold0", {"CPU": 1})
    view.result("CNN/j/fold0", ROW)
    view.complete("CNN/j/fold0", {"fold_done": True, "final_test_score": 0.55})
    out = capsys.readouterr().out.splitlines()
    assert out == ["[start] CNN/j/fold0 on {'CPU': 1}",
                   "[valid] CNN/j/fold0 epoch 2: loss 0.500 valid 0.610 (best epoch 2)",
                   "[done ] CNN/j/fold0 test 0.550"]


def test_quiet_mode_shows_only_errors(capsys):
    view = ProgressView("quiet", {"CNN/j/fold0": TaskRow(max_epochs=10)})
    view.start("CNN/j/fold0", {"CPU": 1})
    view.result("CNN/j/fold0", ROW)
    assert capsys.readouterr().out == ""
    view.error("CNN/j/fold0", "/log/.tune/x/error.txt")
    assert capsys.readouterr().out == "[error] CNN/j/fold0: see /log/.tune/x/error.txt\n"


def test_live_table_has_state_epoch_best_elapsed_and_eta():
    view = ProgressView("live", {"CNN/j/fold0": TaskRow(max_epochs=10), "CNN/j/fold1": TaskRow(max_epochs=10)})
    view.start("CNN/j/fold0", {"CPU": 1})
    view.rows["CNN/j/fold0"].started = time.time() - 65
    view.result("CNN/j/fold0", ROW)  # 10 s per epoch, 8 epochs to go
    table = view.table().splitlines()
    assert table[0].split() == ["task", "state", "epoch", "best", "elapsed", "ETA"]
    assert table[1].split() == ["CNN/j/fold0", "running", "2/10", "0.610", "1:05", "1:20"]
    assert table[2].split() == ["CNN/j/fold1", "pending", "0/10"]
    assert table[3] == "1 pending, 1 running"


def test_a_stopped_trial_is_not_done(capsys):
    view = ProgressView("lines", {})
    view.complete("CNN/j/fold0", {"epoch": 3})
    assert view.rows["CNN/j/fold0"].state == "stopped" and "[stop ] CNN/j/fold0" in capsys.readouterr().out


@pytest.mark.slow
def test_quiet_submit_and_the_exposed_dashboard_warning(tmp_path, synth_dir, ray_session, capsys):
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0], "log_en": False}})
    assert main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(tmp_path / "log"),
                 "--quiet", "--dashboard-host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert "warning: the Ray dashboard will listen on 0.0.0.0: its API runs code on this machine" in out
    assert "[valid]" not in out and "[start]" not in out and "1/1 task(s) finished" in out
