"""Resume with real Ray: a submit stopped (SIGTERM) after some folds finished is continued by `resume`,
which runs only the unfinished folds; a changed model file makes `resume` refuse."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.cli import main
from tests.conftest import ROOT, tiny_model, write_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, synth_dir):
    """A 3-fold job, one fold at a time, stopped with SIGTERM once fold 0 has finished."""
    base = tmp_path_factory.mktemp("resume")
    write_json(base / "models" / "tiny.json", tiny_model("CNN", max_epochs=8, early_stop_wait=50))
    job_file = write_json(base / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                              "cvids": [0, 1, 2], "log_en": False}})
    folds = base / "log" / "CNN" / "job"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "submit", str(job_file), "--data", str(synth_dir),
                             "--log-dir", str(base / "log"), "--max-concurrent", "1", "--cpus-per-task", "1"],
                            cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any((folds / f"fold{k}" / "scores.json").exists() for k in range(3)):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130  # cut short, as a shell says after Ctrl-C
    done = {k for k in range(3) if (folds / f"fold{k}" / "scores.json").exists()}
    stamps = {k: (folds / f"fold{k}" / "scores.json").stat().st_mtime_ns for k in done}
    return base, job_file, folds, done, stamps


def test_resume_runs_only_the_unfinished_folds(interrupted, synth_dir, ray_session, capsys):
    base, job_file, folds, done, stamps = interrupted
    assert 1 <= len(done) < 3, f"expected an interrupted run, finished folds: {done}"
    capsys.readouterr()
    code = main(["resume", str(job_file), "--data", str(synth_dir), "--log-dir", str(base / "log")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"resume: {len(done)} of 3 fold(s) finished earlier; running the other {3 - len(done)}" in out
    assert "continuing the Tune experiment" in out  # Tune's own restore, not a new experiment
    for k in range(3):
        scores = folds / f"fold{k}" / "scores.json"
        assert scores.exists()
        if k in done:  # not run again: the very same file
            assert scores.stat().st_mtime_ns == stamps[k]
    rows = [(folds / f"fold{k}" / "hotlog.csv").read_text().splitlines()[1:] for k in range(3)]
    assert all([int(r.split(",")[0]) for r in fold_rows] == list(range(1, 9)) for fold_rows in rows)
    assert not (folds / ".lock").exists()


def test_resume_refuses_a_changed_model_file(interrupted, synth_dir, capsys):
    base, job_file, *_ = interrupted
    write_json(base / "models" / "tiny.json", tiny_model("CNN", max_epochs=8, early_stop_wait=50,
                                                         learning_rate=0.01))
    capsys.readouterr()
    code = main(["resume", str(job_file), "--data", str(synth_dir), "--log-dir", str(base / "log")])
    err = capsys.readouterr().err
    assert code == 2 and "$.training_parameters.learning_rate: 0.001 -> 0.01" in err
    summary = json.loads((base / "log" / "CNN" / "job" / "fold0" / "scores.json").read_text())
    assert summary["epochs_run"] == 8  # untouched
