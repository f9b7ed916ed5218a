"""expand(): pure, ordered, stable ids; the dry-run table; GPUs per task against the nodes' GPUs."""

import dataclasses
from pathlib import PurePath

import pytest

from ecgcore.errors import ProjectError
from orchestrator.cli import main
from orchestrator.config.jobs import load_jobs, load_models
from orchestrator.plan.expand import Overrides, check_gpu_capacity, expand, resources
from tests.conftest import ROOT

LOG, BASE = PurePath("log"), PurePath("/project")


def _plan(overrides=Overrides()):
    jobs = load_jobs(ROOT / "jobs" / "cv5.json")
    return jobs, expand(jobs, load_models(jobs, ROOT / "models"), LOG, BASE, overrides)


def test_one_task_per_job_and_fold_interleaved():
    _, tasks = _plan()
    assert [t.task_id for t in tasks[:4]] == ["CNN/CNN_paper/fold0", "CRNN/CRNN_paper/fold0",
                                              "CNN/CNN_paper/fold1", "CRNN/CRNN_paper/fold1"]
    assert len(tasks) == 10 and len({t.task_id for t in tasks}) == 10


def test_deterministic_and_paths():
    _, a = _plan()
    _, b = _plan()
    assert a == b
    t = a[0]
    assert t.out_dir == "/project/log/CNN/CNN_paper/fold0"
    assert t.data_dir == "/project/data/training2017"
    assert t.max_epochs == 500 and t.threads == 1


def test_overrides_win():
    jobs, tasks = _plan(Overrides(data="../shared/x", max_epochs=3, cpus_per_task=2))
    assert tasks[0].data_dir == "/shared/x" and tasks[0].max_epochs == 3 and tasks[0].threads == 2
    assert resources(jobs[0], Overrides(gpus_per_task=0.25), cluster_gpus=1) == {"cpu": 1.0, "gpu": 0.25, "workers": 1}
    assert resources(jobs[0], Overrides(), cluster_gpus=2)["gpu"] == 1.0
    assert resources(jobs[0], Overrides(), cluster_gpus=0)["gpu"] == 0.0


def test_dry_run_prints_table_and_starts_nothing(capsys, tmp_path):
    code = main(["submit", str(ROOT / "jobs" / "cv5.json"), "--dry-run", "--max-epochs", "2",
                 "--log-dir", str(tmp_path / "log")])
    out = capsys.readouterr().out
    assert code == 0 and "CRNN/CRNN_paper/fold4" in out and "10 task(s) from 2 job(s)" in out
    assert not (tmp_path / "log").exists()


def test_kinds_fine_tuning_checkpoints_and_time_limit():
    jobs = load_jobs(ROOT / "jobs" / "pretrain_ribeiro.json") + load_jobs(ROOT / "jobs" / "finetune_ribeiro.json")
    tasks = expand(jobs, load_models(jobs, ROOT / "models"), LOG, BASE, Overrides(time_limit_s=30.0))
    pre, fine = tasks[0], tasks[1]
    assert pre.task_id == "ResNet1d/pretrain_ribeiro/fold0" and pre.kind == "pretrain"
    assert pre.init_checkpoint is None and pre.time_limit_s == 30.0
    assert fine.kind == "classify"
    assert fine.init_checkpoint == "/project/log/ResNet1d/pretrain_ribeiro/fold0/best_model.pt"
    assert tasks[3].init_checkpoint.endswith("pretrain_ribeiro/fold1/best_model.pt")


def test_published_job_mixes_every_architecture():
    from ecgcore.models import get_architecture, known_architectures

    jobs = load_jobs(ROOT / "jobs" / "published.json")
    tasks = expand(jobs, load_models(jobs, ROOT / "models"), LOG, BASE)
    # a Stack stacks finished jobs: it cannot run in the submit that trains its parts
    trained = {a for a in known_architectures() if get_architecture(a).trainer != "stack"}
    assert {t.model.model_name for t in tasks} == trained
    assert all(t.part_folds == () for t in tasks)
    assert len(tasks) == 5 * len(jobs)


def test_gpu_capacity_is_checked_against_the_largest_node():
    jobs, _ = _plan()
    check_gpu_capacity(jobs, Overrides(), [0.0], "this machine")  # no GPU asked, none there: CPU folds
    check_gpu_capacity(jobs, Overrides(), [1.0, 1.0], "the Ray cluster")  # the default, 1 GPU, fits
    check_gpu_capacity(jobs, Overrides(gpus_per_task=0.2), [1.0], "this machine")
    with pytest.raises(ProjectError, match=r"job CNN_paper asks for 2 GPU\(s\) per task, but no node of the Ray "
                                           r"cluster has more than 1 \(GPUs per node: 1, 1\)"):
        check_gpu_capacity(jobs, Overrides(gpus_per_task=2), [1.0, 1.0], "the Ray cluster")
    with pytest.raises(ProjectError, match="job CNN_paper asks for 1 GPU\\(s\\) per task, but this machine has 0;"):
        check_gpu_capacity(jobs, Overrides(gpus_per_task=1), [0.0], "this machine")
    with pytest.raises(ProjectError, match="1.5 GPUs per task; above one GPU a task takes whole GPUs"):
        check_gpu_capacity(jobs, Overrides(gpus_per_task=1.5), [4.0], "this machine")


def test_ddp_jobs_ask_per_worker_and_are_checked_for_all_their_workers():
    jobs, _ = _plan()
    ddp = [dataclasses.replace(j, config=dataclasses.replace(j.config, workers_per_task=4, gpus_per_worker=0.5))
           for j in jobs]
    assert resources(ddp[0], Overrides(), cluster_gpus=2) == {"cpu": 1.0, "gpu": 0.5, "workers": 4}
    assert resources(ddp[0], Overrides(gpus_per_task=0), cluster_gpus=2)["gpu"] == 0  # the command line wins
    check_gpu_capacity(ddp, Overrides(), [1.0, 1.0], "the Ray cluster")  # 4 x 0.5 on two nodes
    with pytest.raises(ProjectError, match=r"job CNN_paper: 4 workers x 0.5 GPU\(s\) per fold, but this machine "
                                           r"has 1 GPU\(s\) in all"):
        check_gpu_capacity(ddp, Overrides(), [1.0], "this machine")
