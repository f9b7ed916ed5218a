"""One fold trained by several processes: Ray Train's TorchTrainer started from inside the fold's Tune trial.

A job with workers_per_task > 1 gets, per fold, a Tune trial that holds almost nothing itself
(COORDINATOR_CPUS) and starts a TorchTrainer of workers_per_task workers, each with the job's
CPUs and gpus_per_worker GPUs (Ray Train 2.60 runs a Trainer inside a Tune function trainable;
passing a Trainer to the Tuner is the deprecated way). Train sets up the process group (NCCL on
GPUs, gloo on CPUs) and every worker calls ecgcore's `train_task` with its `Replicas`
(ecgcore.training.distributed says how the ranks stay one model). Rank 0 writes the fold folder
exactly as a one-process fold does, plus every worker's node and GPUs; the other ranks train
silently but call `ray.train.report` as often as rank 0 (Train's report is a barrier).

Checkpoints and retries: rank 0 reports each validation's state as a Ray Train checkpoint, which
Train keeps under the Tune experiment (<experiment>/ddp/<fold>) and `TuneReportCallback` forwards
the row to Tune (dashboard, progress, ASHA). Train itself never retries (max_failures 0): a
failure fails the trial, Tune retries it as any fold (the job's max_retries), and the new
TorchTrainer of the same name and storage finds Train's last checkpoint, from which every rank
restores. `submit --resume` continues an interrupted DDP fold the same way.
"""

from __future__ import annotations

import ray
import torch
from ray import train
from ray.train.torch import TorchConfig, TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from ecgcore.config.modelfile import task_from_dict
from ecgcore.config.task import Task
from ecgcore.training.distributed import Replicas
from ecgcore.training.loop import TrainingObserver
from ecgcore.training.train import train_task
from orchestrator.logdir.reader import SCORES
from orchestrator.logdir.storage import read_json
from orchestrator.run.trial import (
    fold_device,
    gpu_placement,
    node_id,
    quiet_ray_loggers,
    restored_state,
    train_fold,
)

COORDINATOR_CPUS = 0.01  # the trial only waits for its workers; they hold the fold's CPUs and GPUs


def train_replicated(config: dict, task: Task, records) -> dict:
    """Train the fold on workers_per_task processes and return its scores (rank 0 wrote them)."""
    spec = config["spec"]
    res = spec["resources"]
    gpus = res["gpu"] > 0
    per_worker = {"CPU": res["cpu"], **({"GPU": res["gpu"]} if gpus else {})}
    trainer = TorchTrainer(
        _worker,
        # the prepared records once in the object store, fetched by each worker (none: read from disk)
        train_loop_config={"config": config, "records": None if records is None else ray.put(records)},
        scaling_config=train.ScalingConfig(num_workers=res["workers"], use_gpu=gpus, resources_per_worker=per_worker),
        torch_config=TorchConfig(backend=backend(res["gpu"])),
        run_config=train.RunConfig(
            name=run_name(task), storage_path=config["ddp_storage"],
            failure_config=train.FailureConfig(max_failures=0),  # Tune retries the fold (the job's max_retries)
            checkpoint_config=train.CheckpointConfig(num_to_keep=1),
            callbacks=[TuneReportCallback()]),
    )
    trainer.fit()
    return read_json(task.out_dir, SCORES)


def backend(gpus_per_worker: float) -> str:
    """NCCL where every worker has a GPU of its own; gloo on CPUs, and for workers sharing a GPU (NCCL
    refuses two ranks on one device). Asked only of a GPU job: a CPU job's trial never touches CUDA."""
    return "nccl" if gpus_per_worker >= 1 and torch.cuda.is_available() else "gloo"


def run_name(task: Task) -> str:
    """The fold's Ray Train run, the same on every attempt so a retry finds its checkpoint."""
    return task.task_id.replace("/", "_")


def _worker(loop_config: dict) -> None:
    """One rank: rebuild the task, restore the last checkpoint if any, train; rank 0 writes the fold."""
    quiet_ray_loggers()
    config = loop_config["config"]
    task = task_from_dict(config["spec"]["task"])
    replicas = Replicas.from_process_group()
    placements = replicas.gather({"rank": replicas.rank, "node_id": node_id(), **gpu_placement()})
    records = None if loop_config["records"] is None else ray.get(loop_config["records"])
    resume = restored_state(train.get_checkpoint())
    device, _ = fold_device(placements[replicas.rank])
    if device == "cuda":
        device = str(train.torch.get_device())  # this worker's own GPU among those the node's workers see
    if replicas.leader:
        placement = {"gpu_ids": [i for p in placements for i in p["gpu_ids"]],
                     "cuda_visible_devices": placements[0]["cuda_visible_devices"], "workers": placements}
        train_fold(config, task, records, None, resume, placement, report=_train_report, replicas=replicas,
                   device=device)
    else:
        train_task(task, _Follower(), resume, records, device=device, replicas=replicas)


def _train_report(metrics: dict, checkpoint_dir: str | None) -> None:
    checkpoint = None if checkpoint_dir is None else train.Checkpoint.from_directory(checkpoint_dir)
    train.report(metrics, checkpoint=checkpoint)


class _Follower(TrainingObserver):
    """A rank other than 0: writes nothing, but reports with rank 0 (Train's report waits for every rank)."""

    def on_checkpoint(self, state: dict) -> None:
        train.report({})

