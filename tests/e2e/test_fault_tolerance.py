"""Real Ray retries: a trial that raises once, and a trial worker killed with SIGKILL, each continue
from their last checkpoint and finish with a clean fold log (each validation once, no gap)."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from orchestrator.commands.submit import SubmitOptions, plan
from orchestrator.plan.expand import Overrides
from tests.conftest import tiny_model, write_json

pytestmark = pytest.mark.slow


def run(tmp_path, synth_dir, max_epochs, fault=None):
    from orchestrator.run import driver

    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=max_epochs, early_stop_wait=50))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [1], "log_en": True}})
    opts = SubmitOptions(job_file=str(job_file), log_dir=str(tmp_path / "log"),
                         overrides=Overrides(data=str(synth_dir)))
    jobs, tasks = plan(opts, tmp_path)
    outcomes = driver.run_tasks(tasks, jobs, opts.overrides, str(tmp_path / "log"), {}, fault=fault)
    return outcomes, tmp_path / "log" / "CNN" / "job" / "fold1"


def assert_clean(fold: Path, epochs: int) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = (fold / "hotlog.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, epochs + 1))
    events = EventAccumulator(str(fold))
    events.Reload()
    assert [e.step for e in events.Scalars("score/valid")] == list(range(1, epochs + 1))
    assert json.loads((fold / "scores.json").read_text())["epochs_run"] == epochs
    return json.loads((fold / "attempt.json").read_text())


def test_a_trial_that_raises_once_is_retried_from_its_checkpoint(tmp_path, synth_dir, ray_session):
    marker = tmp_path / "raised"
    outcomes, fold = run(tmp_path, synth_dir, 4, {"raise_at_epoch": 2, "marker": str(marker)})
    assert marker.exists() and [o.ok for o in outcomes] == [True]
    attempt = assert_clean(fold, 4)
    assert attempt["attempt"] == 2 and attempt["resumed_after_epoch"] == 1


def kill_when(fold: Path, rows: int, killed: list) -> None:
    """SIGKILL the trial's worker once its hotlog has this many rows."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if len((fold / "hotlog.csv").read_text().splitlines()) > rows:
                pid = json.loads((fold / "attempt.json").read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)


def test_a_killed_trial_worker_is_retried_and_completes(tmp_path, synth_dir, ray_session):
    fold = tmp_path / "log" / "CNN" / "job" / "fold1"
    killed = []
    killer = threading.Thread(target=kill_when, args=(fold, 2, killed), daemon=True)
    killer.start()
    outcomes, _ = run(tmp_path, synth_dir, 12)
    killer.join(timeout=1)
    assert killed, "the trial finished before it could be killed"
    assert [o.ok for o in outcomes] == [True]
    attempt = assert_clean(fold, 12)
    assert attempt["attempt"] >= 2 and attempt["pid"] != killed[0]


def test_a_fold_folder_that_cannot_be_written_fails_that_fold_only(tmp_path, synth_dir, ray_session):
    """A file where fold 1's folder should be (unwritable even as root): fold 1 fails naming its folder, fold 0
    finishes, and the blocking file is left as it was."""
    from orchestrator.run import driver

    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=2))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0, 1], "log_en": False,
                                                                  "max_retries": 0}})
    blocked = tmp_path / "log" / "CNN" / "job" / "fold1"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    opts = SubmitOptions(job_file=str(job_file), log_dir=str(tmp_path / "log"),
                         overrides=Overrides(data=str(synth_dir)))
    jobs, tasks = plan(opts, tmp_path)
    outcomes = driver.run_tasks(tasks, jobs, opts.overrides, str(tmp_path / "log"), {})
    assert [o.ok for o in outcomes] == [True, False]
    assert f"fold folder {blocked}: cannot write" in outcomes[1].error
    assert blocked.read_text() == "not a folder"
    assert (blocked.parent / "fold0" / "scores.json").exists()
