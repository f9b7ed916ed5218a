"""`status` and the live progress view of a large search stay one screen, and fast; --all lists every fold."""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from orchestrator.commands.status import LISTED, status
from orchestrator.run.progress import MANY, ProgressView, TaskRow
from tests.orchestrator.fake_runs import write_search, write_unfinished

PLAN = ["running"] * 25 + ["failed"] * 22 + ["stopped"] * 3 + ["pending"] * 10  # the rest of 1,000 folds: done


@pytest.fixture(scope="module")
def search_log(tmp_path_factory):
    """200 learning rates x 5 folds; the last 60 folds unfinished (PLAN), a plain job of 3 folds beside them."""
    log = tmp_path_factory.mktemp("search") / "log"
    names = write_search(log, "CNN", "lr", 200)
    write_search(log, "CNN", "plain", 1, n_folds=3)
    (log / "CNN" / "plain__learning_rate-0.0001").rename(log / "CNN" / "plain")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    folds = [log / "CNN" / name / f"fold{k}" for name in names for k in range(5)][-len(PLAN):]
    for fold, state in zip(folds, PLAN, strict=True):
        for f in fold.iterdir():
            f.unlink()
        write_unfinished(fold, state, ended.pid)
    return log


def test_a_search_of_1000_folds_is_one_screen(search_log):
    started = time.perf_counter()
    text = status(search_log)
    seconds = time.perf_counter() - started
    lines = text.splitlines()
    print(f"status of 1,003 fold folders: {seconds:.3f} s, {len(lines)} lines")
    assert seconds < 5 and len(lines) <= 50
    counts = {"pending": 10, "running": 25, "stopped": 3, "done": 940, "failed": 22}
    assert lines[0].split() == ["job", "folds", *counts]
    assert lines[1].split() == ["CNN/lr", "(200", "variants)", "1000", *map(str, counts.values())]
    assert lines[2].split() == ["CNN/plain", "3", "0", "0", "0", "3", "0"]
    assert "running (25):" in lines and "failed (22):" in lines
    assert f"  ... and {25 - LISTED} more (status --all lists every fold)" in lines
    assert f"  ... and {22 - LISTED} more (status --all lists every fold)" in lines
    assert sum("RuntimeError: CUDA out of memory" in line for line in lines) == LISTED
    assert sum("epoch 2, best valid score 0.400 (epoch 1), attempt 1" in line for line in lines) == LISTED
    assert "stopped (3): their process is gone; resume continues them" in lines
    assert lines[-1] == "1003 fold(s): 943 done, 22 failed, 10 pending, 25 running, 3 stopped " \
                        "(status --all lists every fold)"


def test_all_lists_every_fold(search_log):
    started = time.perf_counter()
    lines = status(search_log, full=True).splitlines()
    print(f"status --all of 1,003 fold folders: {time.perf_counter() - started:.3f} s")
    assert len(lines) == 1004
    assert sum(bool(re.match(r"CNN/lr__learning_rate-[0-9.e-]+/fold\d +done +test score [01]\.\d{3} after 12 epochs$",
                             line)) for line in lines) == 940
    assert lines[-1] == "1003 fold(s): 943 done, 22 failed, 10 pending, 25 running, 3 stopped"


def test_a_submit_holding_many_job_folders_is_one_line(tmp_path):
    log = tmp_path / "log"
    names = write_search(log, "CNN", "lr", 10)
    lock = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "job_file": "jobs/lr.json"}
    for name in names:
        (log / "CNN" / name / ".lock").write_text(json.dumps(lock))
    lines = status(log).splitlines()
    held = [line for line in lines if "locked by" in line]
    assert len(held) == 1 and held[0].startswith(f"10 job folders ({log / 'CNN'}/...): locked by pid {os.getpid()}")
    assert sum("locked by" in line for line in status(log, full=True).splitlines()) == 10


def test_the_live_view_of_many_tasks_shows_the_running_and_failed_ones():
    view = ProgressView("live", {f"CNN/lr__v{i}/fold{k}": TaskRow(max_epochs=10) for i in range(100) for k in range(5)})
    ids = list(view.rows)
    for task_id in ids[:30]:
        view.start(task_id, {"CPU": 1})
    for task_id in ids[30:35]:
        view.error(task_id, f"/log/.tune/{task_id}/error.txt")
    view.retry(ids[35], "lost its worker on node 10.0.0.2 (ActorDiedError); retrying from the start as attempt 2")
    lines = view.table().splitlines()
    assert len(lines) > 0 and len(view.rows) > MANY
    assert lines[0].split() == ["task", "state", "epoch", "best", "elapsed", "ETA"]
    assert [line.split()[1] for line in lines[1:1 + LISTED]] == ["running"] * LISTED
    assert lines[1 + LISTED] == f"... and {30 - LISTED} more running"
    assert [line.split()[1] for line in lines[2 + LISTED:8 + LISTED]] == ["error"] * 5 + ["retry"]
    assert "ActorDiedError" in lines[7 + LISTED]
    assert lines[-1] == "5 error, 464 pending, 1 retry, 30 running" and len(lines) == LISTED + 9


def test_a_retry_is_one_line_even_when_quiet(capsys):
    for mode in ("lines", "quiet"):
        ProgressView(mode, {}).retry("CNN/j/fold0", "failed on node 10.0.0.2 (ValueError: x); retrying from the start")
        assert capsys.readouterr().out == \
            "[retry] CNN/j/fold0: failed on node 10.0.0.2 (ValueError: x); retrying from the start\n"
