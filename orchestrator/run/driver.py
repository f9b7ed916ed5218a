"""The Ray edge on the driver: connect to Ray, build the Tuner, collect the outcomes.

This is the one module that builds the Tuner (orchestrator.run.rayjob only sends
a whole submit to a cluster through the Ray Jobs API; orchestrator.run.trial is
what each trial runs). A failed trial is retried by Tune (`FailureConfig`, the
jobs' `max_retries`) from its last checkpoint. Trial actors are reused so torch
is imported once per worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory

from ecgcore.config.schema import to_plain
from ecgcore.config.task import Task
from ecgcore.models.hybrid import part_models
from orchestrator.config.jobs import NamedJob
from orchestrator.logdir.runstate import config_hash
from orchestrator.plan.datasets import SharedData, part_id
from orchestrator.plan.expand import Overrides, resources
from orchestrator.run.ddp import COORDINATOR_CPUS
from orchestrator.run.jobcaps import JobCaps
from orchestrator.run.progress import ProgressView
from orchestrator.run.trial import run_trial


@dataclass(frozen=True, kw_only=True)
class TrialOutcome:
    task_id: str
    ok: bool
    test_score: float | None
    error: str | None
    skipped: bool = False  # finished by an earlier, interrupted submit; not run again
    stopped: bool = False  # stopped early by the job's scheduler (ASHA): not a failure, not a result
    epoch: int | None = None  # the last epoch reported


class Progress(tune.Callback):
    """Forwards Tune's trial events to the terminal view (orchestrator.run.progress)."""

    def __init__(self, view: ProgressView):
        self.view = view

    def on_step(self, iteration, trials, **info):
        self.view.tick()

    def on_trial_start(self, iteration, trials, trial, **info):
        res = trial.config["spec"]["resources"]
        asked = trial.placement_group_factory.required_resources if res.get("workers", 1) == 1 else \
            f"{res['workers']} DDP workers x {{'CPU': {res['cpu']:g}, 'GPU': {res['gpu']:g}}}"
        self.view.start(trial_task_id(trial), asked)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not result.get("fold_done"):  # the final report: on_trial_complete shows it
            self.view.result(trial_task_id(trial), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.view.complete(trial_task_id(trial), trial.last_result or {})

    def on_trial_error(self, iteration, trials, trial, **info):
        self.view.error(trial_task_id(trial), f"{trial.local_path}/error.txt")

    def on_experiment_end(self, trials, **info):
        self.view.tick(force=True)


def experiment_name(job_file: str, tasks: list[Task]) -> str:
    """Stable for the same job file and task configurations, so `resume` finds the experiment again."""
    digest = hashlib.sha256(json.dumps(sorted((t.task_id, config_hash(t)) for t in tasks)).encode())
    return f"{Path(job_file).stem}-{digest.hexdigest()[:10]}"


def connect(address: str | None, dashboard_host: str, dashboard_port: int | None,
            quiet_workers: bool = False) -> str | None:
    """Start a local Ray (dashboard on dashboard_host, token auth on) or join a cluster; return the dashboard URL.

    An already initialised Ray (tests share one session) is used as it is.
    quiet_workers keeps the trials' own output (Ray's checkpoint notices, library
    warnings) out of the terminal; it stays in Ray's session logs.
    """
    if ray.is_initialized():
        return None
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    if address:
        context = ray.init(address=address, log_to_driver=not quiet_workers, logging_level=logging.WARNING)
    else:
        # "local": a new Ray on this machine, even where `ray start` left one running (--address auto joins it).
        context = ray.init(address="local", include_dashboard=True, dashboard_host=dashboard_host,
                           dashboard_port=dashboard_port,
                           log_to_driver=not quiet_workers, logging_level=logging.WARNING)
    url = getattr(context, "dashboard_url", None)
    return f"http://{url}" if url else None


def initialised() -> bool:
    """Whether this process is already connected to a Ray (tests share one; connect() then uses it)."""
    return ray.is_initialized()


def alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def node_gpus() -> list[float]:
    """The GPUs of every live node of the connected Ray (logical ones included)."""
    return [float(node.get("Resources", {}).get("GPU", 0.0)) for node in ray.nodes() if node.get("Alive")]


def local_gpus() -> float:
    """The GPUs a local Ray started on this machine would see, found without starting it.

    Ray's own detection (NVIDIA's library, CUDA_VISIBLE_DEVICES), not torch's: a CPU-only torch on a GPU
    machine still gets its GPU folds, which then say they run on the CPU (run/trial.py, fold_device).
    """
    from ray._private.accelerators import get_accelerator_manager_for_resource  # Ray 2.60's detector

    return float(get_accelerator_manager_for_resource("GPU").get_current_node_num_accelerators())


def run_tasks(tasks: list[Task], jobs: list[NamedJob], overrides: Overrides, log_dir: Path,
              provenance: dict, max_concurrent: int | None = None, fault: dict | None = None,
              experiment: str | None = None, resume: bool = False,
              storage_path: str | None = None, quiet: bool = False,
              shared: SharedData | None = None, callbacks: list[tune.Callback] | None = None) -> list[TrialOutcome]:
    """Schedule every task as a Tune trial and wait for all of them (fault: see TuneFoldLog, tests only).

    With resume, an earlier experiment of the same name is restored with
    Tune's own `Tuner.restore`: finished trials stay finished, unfinished
    and failed ones continue from their last checkpoints. storage_path (a
    shared folder or a URI such as s3://bucket/x) holds the experiment and
    checkpoints instead of log/.tune. callbacks: Tune callbacks beside the progress view (MLflow tracking).
    """
    name = experiment or time.strftime("submit-%Y%m%d-%H%M%S")
    storage = storage_path or str(log_dir.resolve() / ".tune")
    path = f"{storage.rstrip('/')}/{name}"
    trainable = tune.with_resources(_with_data(shared), _placement)
    callbacks = [Progress(ProgressView.for_terminal(quiet, tasks)), *(callbacks or [])]
    if resume and tune.Tuner.can_restore(path):
        print(f"continuing the Tune experiment {path}: unfinished folds resume from their checkpoints")
        tuner = _restored(path, trainable, callbacks)
    else:
        if "://" not in path:
            shutil.rmtree(path, ignore_errors=True)  # a fresh submit starts a fresh experiment
        tuner = _new_tuner(tasks, jobs, overrides, (storage, name), provenance, max_concurrent, fault, trainable,
                           callbacks, shared)
    outcomes = []
    for result in _fit(tuner, len(tasks)):
        task_id = result.config["spec"]["task"]["task_id"]
        metrics = result.metrics or {}
        error = None if result.error is None else _last_line(result.error)
        done = result.error is None and metrics.get("fold_done", False)
        outcomes.append(TrialOutcome(task_id=task_id, ok=done, test_score=metrics.get("final_test_score"),
                                     error=error, skipped=bool(metrics.get("skipped")),
                                     stopped=result.error is None and not done, epoch=metrics.get("epoch")))
    order = {t.task_id: i for i, t in enumerate(tasks)}
    return sorted(outcomes, key=lambda o: order.get(o.task_id, len(order)))


def _fit(tuner: tune.Tuner, n_trials: int):
    """tuner.fit(), with every trial allowed to wait for resources at once.

    Tune lets a custom search algorithm (JobCaps) have only one trial waiting
    for resources at a time (TUNE_MAX_PENDING_TRIALS_PG "auto"), so trials
    would start one by one and a cluster's second node would sit idle. (With
    Ray Client, --address ray://, Tune runs on the head and does not see this
    process's environment: there capped jobs start their trials one by one.)
    """
    key = "TUNE_MAX_PENDING_TRIALS_PG"
    previous = os.environ.get(key)
    if previous is None:
        os.environ[key] = str(max(n_trials, 1))
    try:
        return tuner.fit()
    finally:
        if previous is None:
            del os.environ[key]


def _new_tuner(tasks, jobs, overrides, where: tuple[str, str], provenance, max_concurrent, fault,
               trainable, callbacks: list[tune.Callback], shared: SharedData | None) -> tune.Tuner:
    by_name = {j.name: j for j in jobs}
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    specs = []
    for task in tasks:
        job = by_name[task.job]
        key = shared.key_of.get(task.task_id) if shared else None
        specs.append({"task": to_plain(task), "job": {**to_plain(job.config), "variant": job.variant},
                      "cap_group": job.job_name,
                      "data_key": key, "cache_file": shared.cache_files.get(key) if key else None,
                      "dataset_notes": shared.notes.get(task.task_id, []) if shared else [],
                      **_part_keys(task, shared),
                      "resources": resources(job, overrides, cluster_gpus),
                      "retries": job.config.max_retries})
    caps = {j.job_name: j.config.max_concurrent for j in jobs if j.config.max_concurrent}
    # a DDP fold's Ray Train runs (their checkpoints) live in the experiment, so a fresh submit starts them afresh
    common = {"provenance": provenance, "fault": fault, "ddp_storage": f"{where[0].rstrip('/')}/{where[1]}/ddp"}
    if caps:
        configs = [{"spec": spec, **common} for spec in specs]
        search = {"search_alg": JobCaps(configs, caps), "num_samples": len(configs)}
    else:
        search = {}
    return tune.Tuner(
        trainable,
        param_space={} if caps else {"spec": tune.grid_search(specs), **common},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent, **search,
                                    scheduler=_scheduler(jobs, tasks),
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=where[1],
            storage_path=where[0],
            failure_config=tune.FailureConfig(max_failures=max(s["retries"] for s in specs)),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # a retry needs only the last
            verbose=0,
            callbacks=callbacks,
        ),
    )


def _restored(path: str, trainable, callbacks: list[tune.Callback]) -> tune.Tuner:
    """Tune.restore with this submit's callbacks.

    Ray 2.60's Tuner.restore takes no callbacks: it unpickles the first run's RunConfig, whose callbacks
    hold that run's progress view and tracker. Its internal tuner keeps that RunConfig (get_run_config);
    with Ray Client (ray://) the tuner is an actor on the head, and fit() reads the RunConfig back from it.
    """
    tuner = tune.Tuner.restore(path, trainable, resume_errored=True)
    if not tuner._is_ray_client:
        tuner._local_tuner.get_run_config().callbacks = callbacks
    else:
        run_config = ray.get(tuner._remote_tuner.get_run_config.remote())
        run_config.callbacks = callbacks
        ray.get(tuner._remote_tuner.set_run_config_and_remote_string_queue.remote(run_config, None))
    return tuner


def _part_keys(task: Task, shared: SharedData | None) -> dict:
    """A stacked model's parts' preprocessing keys and cache files, by part name; {} for any other model."""
    keys = {name: shared.key_of.get(part_id(task.task_id, name)) for name in part_models(task.model)} if shared else {}
    keys = {name: key for name, key in keys.items() if key}
    if not keys:
        return {}
    return {"part_keys": keys, "part_files": {name: shared.cache_files[key] for name, key in keys.items()}}


def _scheduler(jobs: list[NamedJob], tasks: list[Task]):
    """Tune's ASHA over every fold of every variant, by validation score per epoch (None: FIFO)."""
    cfg = next((j.config.scheduler for j in jobs if j.config.scheduler is not None), None)
    if cfg is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", metric="valid_score", mode="max", grace_period=cfg.grace_period,
                         reduction_factor=cfg.reduction_factor,
                         # ASHA stops a trial that reaches max_t; one past the last epoch lets a
                         # surviving fold report its final scores.
                         max_t=max(t.max_epochs for t in tasks) + 1)


def _with_data(shared: SharedData | None):
    """run_trial with the prepared datasets in the object store, put there once for all trials.

    A dataset larger than half the object store is left out: its trials read the
    driver's cache file instead (still not re-reading the records).
    """
    if shared is None or not shared.records:
        return run_trial
    capacity = ray.available_resources().get("object_store_memory", 0)
    if shared.nbytes > capacity / 2:
        return run_trial
    trainable = tune.with_parameters(run_trial, shared=shared.records)  # ray.put now, Ray being initialised
    # The object store holds them from here; the driver's own copy would only double its memory.
    shared.records.clear()
    return trainable


def _placement(config: dict) -> PlacementGroupFactory:
    res = config["spec"]["resources"]
    if res.get("workers", 1) > 1:  # the fold's workers ask Ray Train for their own (orchestrator.run.ddp)
        return PlacementGroupFactory([{"CPU": COORDINATOR_CPUS}])
    bundle = {"CPU": res["cpu"]}
    if res["gpu"] > 0:
        bundle["GPU"] = res["gpu"]
    return PlacementGroupFactory([bundle])


def trial_task_id(trial) -> str:
    """The task id of a Tune trial (its config's task)."""
    return trial.config["spec"]["task"]["task_id"]


def _trial_name(trial) -> str:
    return trial_task_id(trial).replace("/", "_")


def _last_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
