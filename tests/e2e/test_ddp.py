"""A fold trained by two processes through Ray Train (gloo on CPUs), submitted as any job.

One real submit of a job with workers_per_task 2: rank 0 raises once after validation 2, Tune
retries the trial, the new TorchTrainer finds Train's checkpoint and every rank continues from
it. Checked: the fold log is clean (each validation once), both ranks end with identical
weights, the fold records both workers, and the fold trains like the same fold in one process
(nearer to it than one process with another seed is).
"""

import json

import numpy as np
import pytest

from ecgcore.config.modelfile import task_from_dict
from ecgcore.config.schema import to_plain
from ecgcore.training.train import train_task
from orchestrator.commands.status import status
from orchestrator.commands.submit import SubmitOptions, plan
from orchestrator.commands.summarize import summarize
from orchestrator.logdir.reader import FoldDir
from orchestrator.plan.expand import Overrides
from tests.conftest import tiny_model, write_json
from tests.e2e.test_fault_tolerance import assert_clean
from tests.ecgcore.test_distributed import TRAINING, _Losses

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, synth_dir, ray_session):
    from orchestrator.run import driver

    base = tmp_path_factory.mktemp("ddp")
    write_json(base / "models" / "tiny.json", tiny_model("CNN", **TRAINING, early_stop_wait=50))
    # 2 x 0.9 CPUs: the session has 2, and the trial itself holds 0.01 while its workers train
    job_file = write_json(base / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1", "cvids": [1],
                                                             "workers_per_task": 2, "cpus_per_task": 0.9}})
    opts = SubmitOptions(job_file=str(job_file), log_dir=str(base / "log"), overrides=Overrides(data=str(synth_dir)))
    jobs, tasks = plan(opts, base)
    marker = base / "raised"
    outcomes = driver.run_tasks(tasks, jobs, opts.overrides, str(base / "log"), {},
                                fault={"raise_at_epoch": 2, "marker": str(marker)})
    return base, tasks[0], outcomes, marker


def test_the_fold_finishes_after_a_retry_from_trains_checkpoint(ddp_run):
    base, task, outcomes, marker = ddp_run
    assert marker.exists() and [o.ok for o in outcomes] == [True]
    attempt = assert_clean(base / "log" / "CNN" / "job" / "fold1", TRAINING["max_epochs"])
    assert attempt["attempt"] == 2 and attempt["resumed_after_epoch"] == 1  # raised before its checkpoint


def test_both_ranks_end_with_identical_weights_and_are_recorded(ddp_run):
    fold = ddp_run[0] / "log" / "CNN" / "job" / "fold1"
    scores = json.loads((fold / "scores.json").read_text())
    replicas = scores["replicas"]
    assert replicas["world_size"] == 2 and replicas["identical"]
    assert len(replicas["final_weights_sha256"]) == 2 and len(set(replicas["final_weights_sha256"])) == 1
    workers = scores["workers"]
    assert [w["rank"] for w in workers] == [0, 1] and all(w["gpu_ids"] == [] for w in workers)
    assert json.loads((fold / "attempt.json").read_text())["workers"] == workers
    rows = json.loads(summarize(ddp_run[0] / "log", "CNN", fmt="json"))["jobs"]["job"]["folds"]
    assert rows[0]["workers"] == workers
    assert "after 6 epochs, 2 DDP workers" in status(ddp_run[0] / "log")


def test_two_workers_train_like_one_process(ddp_run):
    fold = ddp_run[0] / "log" / "CNN" / "job" / "fold1"
    ddp_losses = [row["train_loss"] for row in FoldDir(fold).validations()]
    task = ddp_run[1]
    reseeded = to_plain(task)
    reseeded["model"]["training_parameters"]["seed"] = 1
    alone, other = _Losses(), _Losses()
    train_task(task, alone)
    train_task(task_from_dict(reseeded), other)
    # the yardstick of tests/ecgcore/test_distributed.py, on the fold Ray Train trained (and retried)
    ddp_gap = np.mean(np.abs(np.subtract(ddp_losses, alone.losses)))
    seed_gap = np.mean(np.abs(np.subtract(other.losses, alone.losses)))
    assert ddp_gap < seed_gap / 3, (ddp_gap, seed_gap)
