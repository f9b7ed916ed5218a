"""The Ray edge on the driver: connect to Ray, build the Tuner, collect the outcomes.

This is the one module that builds the Tuner (orchestrator.run.rayjob only sends
a whole submit to a cluster through the Ray Jobs API; orchestrator.run.trial is
what each trial runs). A failed trial is retried by Tune (`FailureConfig`, the
jobs' `max_retries`) from its last checkpoint. Trial actors are reused so torch
is imported once per worker. A trial that fails and is retried (its node lost,
its worker killed, an error raised) is told in one line (which fold, which
node, retrying from which epoch as which attempt), not with Tune's traceback:
the trace stays in the trial's error file and, for an error of ours, in the
fold's error.txt. Tune's experiment goes under the log folder (<log>/.tune,
a URI there too) unless storage_path says otherwise.
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
from ecgcore.models import part_models
from orchestrator.config.jobs import NamedJob
from orchestrator.logdir.runstate import config_hash
from orchestrator.logdir.storage import Remote, is_uri, join
from orchestrator.plan.datasets import SharedData, part_id
from orchestrator.plan.expand import Overrides, resources
from orchestrator.run.ddp import COORDINATOR_CPUS
from orchestrator.run.failures import retry_line
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

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.view.retry(trial_task_id(trial), retry_line(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.view.error(trial_task_id(trial), f"{trial.local_path}/error.txt")


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


def run_tasks(tasks: list[Task], jobs: list[NamedJob], overrides: Overrides, log_dir: str,
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
    # Tune's "Failed to fetch metrics" (Tuner.restore and the results: trials without result.json) stay out of
    # the terminal: the fold folders hold every row
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    name = experiment or time.strftime("submit-%Y%m%d-%H%M%S")
    storage = storage_path or join(log_dir, ".tune")
    path = join(storage, name)
    # a DDP fold's Ray Train runs (their checkpoints) live in the experiment, so a fresh submit starts them afresh
    common = {"provenance": provenance, "fault": fault, "ddp_storage": join(path, "ddp")}
    trainable = tune.with_resources(_with_data(shared, trial_book(tasks, jobs, overrides, shared, common)),
                                    _placement)
    callbacks = [Progress(ProgressView.for_terminal(quiet, tasks)), *(callbacks or [])]
    if resume and tune.Tuner.can_restore(path):
        print(f"continuing the Tune experiment {path}: unfinished folds resume from their checkpoints")
        tuner = _restored(path, trainable, callbacks)
    else:
        _forget(path)  # a fresh submit starts a fresh experiment
        tuner = _new_tuner(tasks, jobs, (storage, name), trial_configs(tasks, jobs, overrides), max_concurrent,
                           trainable, callbacks)
    return trial_outcomes(_fit(tuner, len(tasks)), tasks)


def trial_outcomes(results, tasks: list[Task]) -> list[TrialOutcome]:
    """One outcome per trial that started, in the task list's order.

    A submit stopped (Ctrl-C, SIGTERM) before every trial started leaves results with no config (JobCaps had
    not handed them one yet): those folds never ran, and the submit's summary counts them as not run.
    """
    outcomes = []
    for result in results:
        if result.config is None:
            continue
        metrics = result.metrics or {}
        error = None if result.error is None else _last_line(result.error)
        done = result.error is None and metrics.get("fold_done", False)
        if done:
            _forget_checkpoint(result.checkpoint)
        outcomes.append(TrialOutcome(task_id=trial_task_id(result), ok=done, test_score=metrics.get("final_test_score"),
                                     error=error, skipped=bool(metrics.get("skipped")),
                                     stopped=result.error is None and not done, epoch=metrics.get("epoch")))
    order = {t.task_id: i for i, t in enumerate(tasks)}
    return sorted(outcomes, key=lambda o: order.get(o.task_id, len(order)))


def _forget_checkpoint(checkpoint) -> None:
    """A finished fold's last Tune checkpoint, deleted once the experiment has ended (Tune has saved it with the
    trial finished, so no resume restores it): only a retry reads one, and Tune's state then holds no model per
    finished trial. (Deleted any earlier, a submit killed before Tune saved its state would resume that trial
    from a checkpoint that is gone.)"""
    if checkpoint is None:
        return
    try:
        checkpoint.filesystem.delete_dir(checkpoint.path)
    except OSError:
        pass  # already gone: nothing to free


def _forget(path: str) -> None:
    if is_uri(path):
        Remote(path).remove_tree()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fit(tuner: tune.Tuner, n_trials: int):
    """tuner.fit(), with every trial allowed to wait for resources at once, and failures told in one line.

    Tune lets a custom search algorithm (JobCaps) have only one trial waiting
    for resources at a time (TUNE_MAX_PENDING_TRIALS_PG "auto"), so trials
    would start one by one and a cluster's second node would sit idle. Every
    trial may wait instead: with fewer waiting (32 of 10,000 tried), Tune kept
    no finished trial's actor for the next one and started a new process,
    torch imported again, for most trials. (With
    Ray Client, --address ray://, Tune runs on the head and does not see this
    process's environment: there capped jobs start their trials one by one.)
    TUNE_PRINT_ALL_TRIAL_ERRORS 0: Tune logs no traceback per failure (a lost
    node's is a page of ActorDiedError); the Progress callback says it in a line.
    TUNE_DISABLE_AUTO_CALLBACK_LOGGERS 1:
    no result.json, progress.csv, params.json and TensorBoard file per trial in Tune's
    experiment; the fold folder has them all (hotlog.csv, validations.jsonl, its events,
    job.json, model.json), and Tune's copies made its state larger than the results.
    """
    settings = {"TUNE_MAX_PENDING_TRIALS_PG": str(max(n_trials, 1)), "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
                "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update({key: value for key, value in settings.items() if previous[key] is None})
    try:
        return tuner.fit()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)


def trial_book(tasks, jobs, overrides, shared: SharedData | None, common: dict) -> dict:
    """What each trial needs beyond its Tune config, by task id: its task, job, data keys and notes, with what all
    trials share ("" key: provenance, fault, DDP storage). Put in the object store once (tune.with_parameters),
    so Tune's per-trial state stays a few hundred bytes: with the whole task in every trial's config, its
    experiment state grew by ~50 KB a trial and was rewritten whole at every save, slowing a large search."""
    by_name = {j.name: j for j in jobs}
    book = {"": common}
    for task in tasks:
        key = shared.key_of.get(task.task_id) if shared else None
        job = by_name[task.job]
        book[task.task_id] = {"task": to_plain(task), "job": {**to_plain(job.config), "variant": job.variant},
                              "data_key": key, "cache_file": shared.cache_files.get(key) if key else None,
                              "dataset_notes": shared.notes.get(task.task_id, []) if shared else [],
                              **_part_keys(task, shared)}
    return book


def trial_configs(tasks, jobs, overrides) -> list[dict]:
    """Tune's config of each trial: the task id, what the scheduler needs (job cap group, resources, retries)."""
    by_name = {j.name: j for j in jobs}
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    return [{"spec": {"task_id": t.task_id, "cap_group": by_name[t.job].job_name,
                      "resources": resources(by_name[t.job], overrides, cluster_gpus),
                      "retries": by_name[t.job].config.max_retries}} for t in tasks]


def _new_tuner(tasks, jobs, where: tuple[str, str], configs: list[dict], max_concurrent,
               trainable, callbacks: list[tune.Callback]) -> tune.Tuner:
    caps = {j.job_name: j.config.max_concurrent for j in jobs if j.config.max_concurrent}
    # A searcher hands out the configs, not a grid_search: Tune's grid generator deep-copies the whole grid for
    # every trial it makes, quadratic in the trials (10,000 of them did not start in 6 minutes).
    return tune.Tuner(
        trainable,
        param_space={},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent,
                                    search_alg=JobCaps(configs, caps), num_samples=len(configs),
                                    scheduler=_scheduler(jobs, tasks),
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=where[1],
            storage_path=where[0],
            failure_config=tune.FailureConfig(max_failures=max(c["spec"]["retries"] for c in configs)),
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


def _with_data(shared: SharedData | None, book: dict):
    """run_trial with the trial book and the prepared datasets in the object store, put there once for all trials.

    The book goes in as a reference inside a list, which tune.with_parameters does not resolve: each trial actor
    fetches it once (orchestrator.run.trial.book_of), not once per trial (with 10,000 tasks it is ~50 MB of
    dicts, a second to unpickle). A dataset larger than half the object store is left out: its trials read the
    driver's cache file instead (still not re-reading the records).
    """
    handle = [ray.put(book)]
    if shared is None or not shared.records or shared.nbytes > ray.available_resources().get(
            "object_store_memory", 0) / 2:
        return tune.with_parameters(run_trial, book=handle)
    trainable = tune.with_parameters(run_trial, shared=shared.records, book=handle)  # ray.put now
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
    """The task id of a Tune trial or result (its config's; an experiment of before the trial book: its task's)."""
    spec = trial.config["spec"]
    return spec["task_id"] if "task_id" in spec else spec["task"]["task_id"]


def _trial_name(trial) -> str:
    return trial_task_id(trial).replace("/", "_")


def _last_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
