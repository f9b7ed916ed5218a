"""Job locks, resume checks and `status`, without Ray: what the log folder says about a submit."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ecgcore.config.schema import to_plain
from ecgcore.errors import ProjectError
from orchestrator.cli import main
from orchestrator.commands.status import fold_state, status
from orchestrator.config.jobs import parse_model
from orchestrator.logdir.reader import FoldDir
from orchestrator.logdir.runstate import LOCK, JobLocks, check_unchanged
from tests.conftest import tiny_model, write_json
from tests.ecgcore.test_train import make_task


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lock_file(job_dir, pid, host=None):
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / LOCK).write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid,
                                            "since": time.time() - 60, "job_file": "jobs/other.json"}))


def test_a_live_lock_refuses_a_second_submit_naming_the_holder(tmp_path, synth_dir, capsys):
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0]}})
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_file(tmp_path / "log" / "CNN" / "job", holder.pid)
        code = main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(tmp_path / "log")])
    finally:
        holder.kill()
    err = capsys.readouterr().err
    assert code == 2 and f"pid {holder.pid} on {socket.gethostname()}" in err and "jobs/other.json" in err
    assert not (tmp_path / "log" / "CNN" / "job" / "fold0").exists()


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    job_dir = tmp_path / "log" / "CNN" / "job"
    lock_file(job_dir, dead_pid())
    with JobLocks([job_dir], "jobs/j.json"):
        assert json.loads((job_dir / LOCK).read_text())["pid"] == os.getpid()
        with pytest.raises(ProjectError, match="being written by another submit"):
            JobLocks([job_dir], "jobs/j.json").__enter__()  # the same job folder twice at once
    assert not (job_dir / LOCK).exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    job_dir = tmp_path / "job"
    lock_file(job_dir, dead_pid(), host="some-other-node")
    with pytest.raises(ProjectError, match="on some-other-node"):
        JobLocks([job_dir], "j.json").__enter__()


def test_resume_names_what_changed_in_the_model_file(tmp_path):
    task = make_task(tmp_path, tmp_path / "fold0", tiny_model(learning_rate=0.002))
    (tmp_path / "fold0").mkdir()
    old = to_plain(parse_model(tiny_model(learning_rate=0.001), "m.json"))
    (tmp_path / "fold0" / "model.json").write_text(json.dumps(old))
    with pytest.raises(ProjectError, match=r"\$\.training_parameters\.learning_rate: 0\.001 -> 0\.002"):
        check_unchanged(task)


def write_fold(fold, **files):
    fold.mkdir(parents=True)
    for name, content in files.items():
        (fold / name.replace("_", ".", 1)).write_text(content)


def test_status_of_every_kind_of_fold(tmp_path):
    job = tmp_path / "log" / "CNN" / "job"
    hotlog = "epoch,best_epoch,train_loss,valid_accuracy,valid_score,learning_rate,elapsed_s\n" \
             "1,1,1.0,0.5,0.40,0.001,3\n2,1,0.9,0.5,0.30,0.001,6\n"
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "attempt": 2})
    gone = json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "started": time.time(), "attempt": 1})
    write_fold(job / "fold0", scores_json=json.dumps({"kind": "classify", "test": {"score": 0.71},
                                                      "epochs_run": 9}))
    write_fold(job / "fold1", attempt_json=me, hotlog_csv=hotlog)
    write_fold(job / "fold2", attempt_json=gone, hotlog_csv=hotlog)
    write_fold(job / "fold3", error_txt="Traceback ...\nRuntimeError: CUDA out of memory\n")
    write_fold(job / "fold4")
    assert fold_state(FoldDir(job / "fold0")).detail == "test score 0.710 after 9 epochs"
    running = fold_state(FoldDir(job / "fold1"))
    assert running.state == "running" and "epoch 2, best valid score 0.400 (epoch 1), attempt 2" in running.detail
    assert fold_state(FoldDir(job / "fold2")).state == "stopped"
    failed = fold_state(FoldDir(job / "fold3"))
    assert failed.state == "failed" and "RuntimeError: CUDA out of memory" in failed.detail
    assert str(job / "fold3" / "error.txt") in failed.detail
    assert fold_state(FoldDir(job / "fold4")).state == "pending"
    text = status(tmp_path / "log")
    assert text.endswith("5 fold(s): 1 done, 1 failed, 1 pending, 1 running, 1 stopped")


def test_status_of_a_job_file_lists_folds_not_started(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0, 2]}})
    assert main(["status", str(job_file), "--log-dir", "log"]) == 0
    out = capsys.readouterr().out
    assert "CNN/job/fold0   pending" in out and "CNN/job/fold2   pending" in out and "2 fold(s): 2 pending" in out
