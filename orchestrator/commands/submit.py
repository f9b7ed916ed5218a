"""The `submit` command: job file -> validated tasks -> Ray Tune -> fold logs.

Everything that can be checked without Ray is checked first (job and model
files, dataset records and labels, the split, the log folder), so a mistake
exits with code 2 before Ray starts and before anything is written under
log/. `--dry-run` stops after printing the task table.

`--resume` (or the `resume` command) continues an interrupted submit of the
same job file: folds whose scores.json holds this configuration's result
are not run again, the others continue from their checkpoints (Tune's
Tuner.restore), and a fold folder written by a changed model file is
refused. Each job folder is locked while a submit writes it. SIGTERM stops
a submit the way Ctrl-C does: Tune saves its state, so `resume` can continue.

The log folder may be a URI (s3://bucket/prefix, gs://..., orchestrator.logdir.storage):
the trials write their fold folders there, Tune's experiment goes under it
(<log>/.tune), and the driver's data cache into a temporary folder. A dataset
given as a URI is downloaded once by the driver (to a temporary folder) and
reaches the trials through Ray's object store, so worker nodes need no copy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ecgcore.config import modelfile
from ecgcore.config.schema import ConfigError
from ecgcore.config.task import Task
from ecgcore.errors import ProjectError
from ecgcore.io.signature import SIGNATURE_SCHEME
from ecgcore.models import part_models
from ecgcore.models.stack import fold_refusal, part_jobs, part_refusal, with_models
from orchestrator.config.jobs import NamedJob, check_kinds, load_jobs, load_model_files, model_path, parse_model
from orchestrator.config.search import describe_search, expand_variants
from orchestrator.config.settings import Settings, with_settings
from orchestrator.logdir.reader import JOB, MLFLOW_RUNS, MODEL, SCORES
from orchestrator.logdir.runstate import JobLocks, check_unchanged, finished
from orchestrator.logdir.storage import check_writable, exists, is_uri, join, mounted, parent_of, read_json, remove
from orchestrator.plan.datasets import SharedData, prepare_data
from orchestrator.plan.expand import DEFAULTS, Overrides, check_gpu_capacity, expand, task_table
from orchestrator.plan.provenance import provenance
from orchestrator.run.rayjob import is_jobs_address, submit_as_ray_job
from orchestrator.tracking import require_mlflow

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, kw_only=True)
class SubmitOptions:
    job_file: str
    models_dir: str | None = None  # default: models/ beside the job file's folder
    log_dir: str = DEFAULTS.log_root
    overrides: Overrides = field(default_factory=Overrides)
    address: str | None = None
    max_concurrent: int | None = None
    dry_run: bool = False
    resume: bool = False
    storage_path: str | None = None  # Tune's experiment and checkpoints (default: <log>/.tune)
    quiet: bool = False  # no progress until the closing summary (CI logs)
    dashboard_host: str = DEFAULTS.dashboard_host
    dashboard_port: int | None = DEFAULTS.dashboard_port
    settings: Settings = DEFAULTS  # fills what the job files leave open


def default_models_dir(job_file: str | Path) -> Path:
    return Path(job_file).resolve().parent.parent / "models"


def plan(opts: SubmitOptions, root: Path):
    """Load and validate the job file and its models, search variants expanded; return (jobs, tasks)."""
    jobs = with_settings(load_jobs(opts.job_file), opts.settings)
    files = load_model_files(jobs, opts.models_dir or default_models_dir(opts.job_file))
    jobs = expand_variants(jobs, {n: list(f.spaces) for n, f in files.items()}, {n: f.raw for n, f in files.items()},
                           parse_model)
    models = {n: f.config for n, f in files.items()}
    check_kinds(jobs, models)
    tasks = expand(jobs, models, opts.log_dir, root, opts.overrides)
    return jobs, tasks


def check_init_checkpoints(tasks: list[Task]) -> None:
    """A fine-tuning task needs its pre-trained fold finished before this submit starts; a stacked model's
    deep part taken from another job must come from the same split (else the stack's test fold was trained on)."""
    for task in tasks:
        if not task.init_checkpoint:
            continue
        if not exists(task.init_checkpoint):
            raise ProjectError(f"{task.task_id}: init_from of model {task.model_file!r} needs "
                               f"{task.init_checkpoint}, which does not exist (run that job first)")
        if part_models(task.model):
            split = (read_json(parent_of(task.init_checkpoint), SCORES) or {}).get("split")
            if split != task.split:
                raise ProjectError(f"{task.task_id}: the deep part's fold {task.init_checkpoint} was trained on "
                                   f"split {split or '(unfinished fold)'}, this job runs {task.split}: the stack "
                                   "would be tested on records its deep part trained on")


def resolve_stack_parts(tasks: list[Task]) -> list[Task]:
    """A Stack's parts must be finished folds of the same split, fold, dataset and track, and not fitted on the
    validation records themselves; returns the tasks with each Stack's parts' model configs (from their fold
    folders' model.json) in its model, where the trials build the stack from and its model.json keeps them."""
    out, written = [], {t.out_dir for t in tasks}
    for task in tasks:
        for part, folder in zip(part_jobs(task.model), task.part_folds, strict=True):
            if folder in written:  # this submit would clear and rewrite it while the stack reads it
                raise ProjectError(f"{task.task_id}: part {part}, fold folder {folder}: this submit trains it too; "
                                   "run the parts first, then the stack")
        if task.part_folds:
            models = tuple(_part_model(task, part, folder)
                           for part, folder in zip(part_jobs(task.model), task.part_folds, strict=True))
            task = replace(task, model=with_models(task.model, models))
        out.append(task)
    return out


def _part_model(task: Task, part: str, folder: str):
    """The model config of one part's fold folder, after the checks that it may be this stack's part."""
    def refuse(why: str) -> ProjectError:
        return ProjectError(f"{task.task_id}: part {part}, fold folder {folder}: {why}")

    scores = read_json(folder, SCORES)
    if scores is None:
        if exists(join(folder, JOB)):
            raise refuse("unfinished (no scores.json): let that fold finish first")
        raise refuse(f"job {part} has no fold {task.fold}: run that fold first")
    problem = fold_refusal(task, scores)
    saved = read_json(folder, MODEL)
    if problem is None and saved is None:
        problem = "no model.json"
    if problem is not None:
        raise refuse(problem)
    model = modelfile.parse_model(saved, join(folder, MODEL))
    problem = part_refusal(model)
    if problem is not None:
        raise refuse(f"it cannot be a part: {problem}")
    return model


def fold_paths(jobs: list[NamedJob]) -> dict[tuple[str, int], tuple[str, str]]:
    """(job, fold) -> (job file, JSON path of the fold id): a fold the data lacks is named in the job file."""
    return {(job.name, cvid): (job.file, f"$.{job.job_name}.cvids[{i}]")
            for job in jobs for i, cvid in enumerate(job.config.cvids)}


def check_architectures(tasks: list[Task], shared: SharedData, models_dir: str | Path) -> None:
    """Build each distinct network once on torch's meta device (no memory, no weights), before Ray starts.

    An architecture's own rules on its parameters and inputs (ResNet1d's odd kernel and window length,
    SEResNet18's stride, ...) are checked when it is built; here they fail once, naming the model file,
    instead of in every trial.
    """
    import torch

    from ecgcore.data.pipeline import pipeline_for
    from ecgcore.models import create_model
    seen = set()
    for task in tasks:
        track = task.open_track()
        key = (task.model, shared.key_of[task.task_id], track)
        if key in seen:
            continue
        seen.add(key)
        inputs = pipeline_for(task.model, shared.records[key[1]]).inputs
        try:
            with torch.device("meta"):
                create_model(task.model, inputs, len(track.class_names))
        except ProjectError as exc:
            file = model_path(models_dir, task.model_file, "", "")
            raise ConfigError(file, "$.model_parameters", str(exc)) from None


def log_location(log_dir: str, root: Path) -> str:
    """The log folder as trials reach it: a URI as given, a path made absolute."""
    return str(log_dir).rstrip("/") if is_uri(log_dir) else str((root / log_dir).resolve())


@contextlib.contextmanager
def driver_files(log_dir: str, tasks: list[Task]):
    """(data cache folder, tasks with every dataset URI read from a local copy) for the driver's own reading.

    The cache is <log>/.cache for a local log folder, a temporary folder for a URI; datasets given as a URI
    are downloaded once into one. The temporary folders are removed when the submit ends.
    """
    with contextlib.ExitStack() as stack:
        if is_uri(log_dir):
            cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecg-cache-",
                                                                          ignore_cleanup_errors=True)))
        else:
            cache = Path(join(log_dir, ".cache"))
        copies = {d: stack.enter_context(mounted(d, models=True)) for d in {t.data_dir for t in tasks} if is_uri(d)}
        yield cache, [replace(t, data_dir=str(copies[t.data_dir])) if t.data_dir in copies else t for t in tasks]


def submit(opts: SubmitOptions, say: Callable[[str], None] = print) -> int:
    root = Path.cwd()
    jobs, tasks = plan(opts, root)
    if opts.dry_run:
        say(task_table(tasks, jobs, opts.overrides))
        for line in describe_search(jobs):
            say(line)
        return 0
    if is_jobs_address(opts.address):  # checked here; run there, where the data and log paths are
        return submit_as_ray_job(opts, tasks, root, say)
    require_mlflow(jobs, opts.overrides)
    check_init_checkpoints(tasks)
    tasks = resolve_stack_parts(tasks)
    for data_dir in sorted({t.data_dir for t in tasks}):
        if not exists(data_dir):  # before anything is written under log/
            raise ProjectError(f"dataset folder {data_dir} does not exist")
    log_dir = log_location(opts.log_dir, root)
    check_writable(log_dir)
    with driver_files(log_dir, tasks) as (cache, readable):
        shared = prepare_data(readable, cache, say, fold_paths(jobs))
        # provenance names the dataset as the job gave it, not the driver's copy of a URI
        shared.signatures = {t.data_dir: shared.signatures[r.data_dir] for t, r in zip(tasks, readable, strict=True)}
        check_architectures(tasks, shared, opts.models_dir or default_models_dir(opts.job_file))
        with JobLocks([parent_of(t.out_dir) for t in tasks], opts.job_file):
            done = prepare_folds(tasks, opts.resume, say)
            return _run(opts, jobs, tasks, log_dir, done, shared, say)


def prepare_folds(tasks: list[Task], resume: bool, say: Callable[[str], None]) -> set[str]:
    """Resume: check every fold folder and return the finished folds. Fresh: forget earlier results (and the
    earlier MLflow runs: a fresh submit is tracked as new runs)."""
    if not resume:
        for task in tasks:
            remove(task.out_dir, SCORES)
            remove(parent_of(task.out_dir), MLFLOW_RUNS)
        return set()
    for task in tasks:
        check_unchanged(task)
    done = {t.task_id for t in tasks if finished(t)}
    say(f"resume: {len(done)} of {len(tasks)} fold(s) finished earlier; running the other {len(tasks) - len(done)}")
    return done


def _run(opts: SubmitOptions, jobs, tasks: list[Task], log_dir: str, done: set[str], shared: SharedData,
         say) -> int:
    from orchestrator.run import driver  # imports Ray: only when something will run
    from orchestrator.run.tracking import tracking_callbacks

    if opts.dashboard_host not in LOOPBACK:
        say(f"warning: the Ray dashboard will listen on {opts.dashboard_host}: its API runs code on this "
            "machine for anyone who reaches the port with the token (~/.ray/auth_token). Keep it on 127.0.0.1 "
            "and use an SSH tunnel unless the network is yours.")
    fresh_local = not opts.address and not driver.initialised()
    if fresh_local:  # refuse before starting it, from the GPUs Ray will find on this machine
        check_gpu_capacity(jobs, opts.overrides, [driver.local_gpus()], "this machine")
    url = driver.connect(opts.address, opts.dashboard_host, opts.dashboard_port,
                        quiet_workers=opts.quiet or sys.stdout.isatty())
    if url:
        say(f"Ray dashboard: {url} (token authentication is on: open it with the token in ~/.ray/auth_token; "
            "REST calls need 'Authorization: Bearer <token>')")
    if not fresh_local:  # a cluster, or a Ray already running: its nodes' GPUs, before any trial starts
        check_gpu_capacity(jobs, opts.overrides, driver.node_gpus(), "the Ray cluster")
    nodes = driver.alive_nodes()
    if nodes > 1 and not opts.storage_path and not is_uri(log_dir):
        raise ProjectError(
            f"the Ray cluster has {nodes} nodes, and trials on other nodes cannot reach the log folder {log_dir} on "
            "this one: pass --log-dir as a URI on object storage every node reaches (s3://bucket/prefix, "
            "gs://bucket/prefix; the fold folders and Tune's checkpoints go there), or --storage-path with a folder "
            "every node mounts (NFS, ...) and keep --log-dir on that shared storage too")
    say(f"submitting {len(tasks)} task(s); TensorBoard: tensorboard --logdir {log_dir}")
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _as_interrupt) if _main_thread() else None
    try:
        # The data signature beside the code version: a report can say which files a score came from.
        recorded = {**provenance(), "data_signatures": shared.signatures, "data_signature_scheme": SIGNATURE_SCHEME}
        callbacks = tracking_callbacks(tasks, jobs, opts.overrides, recorded, opts.resume, say)
        outcomes = driver.run_tasks(tasks, jobs, opts.overrides, log_dir, recorded, opts.max_concurrent,
                                   experiment=driver.experiment_name(opts.job_file, tasks), resume=opts.resume,
                                   storage_path=opts.storage_path, quiet=opts.quiet, shared=shared,
                                   callbacks=callbacks)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return _report(outcomes, done, time.monotonic() - started, log_dir, say, n_tasks=len(tasks),
                   scheduled=any(job.config.scheduler is not None for job in jobs))


def _report(outcomes, done: set[str], elapsed: float, log_dir: str, say, n_tasks: int, scheduled: bool = False) -> int:
    """One line per task that started, a closing count (with the tasks an interrupt left unstarted); exit 1 when
    a fold failed (stopped by a scheduler is no failure), 130 (as a shell after Ctrl-C) when folds were cut short.

    A fold that ended without finishing and without an error was stopped: by the job's scheduler (ASHA) when
    there is one, else only by an interrupt (Ctrl-C, SIGTERM), which resume continues from its checkpoint.
    """
    failed = [o for o in outcomes if not o.ok and not o.stopped]
    cut = "stopped early by the scheduler" if scheduled else "interrupted"
    for o in outcomes:
        if o.stopped:
            status = f"{cut} after epoch {o.epoch}" + ("" if scheduled else " (resume continues it)")
        elif not o.ok:
            status = f"FAILED: {o.error}"
        else:
            status = "pre-trained" if o.test_score is None else "test score undefined (no class with both values)" \
                if o.test_score != o.test_score else f"test score {o.test_score:.3f}"
        status += " (finished earlier)" if o.skipped or o.task_id in done else ""
        say(f"  {o.task_id:<40} {status}")
    stopped = sum(o.stopped for o in outcomes)
    unstarted = n_tasks - len(outcomes)
    how = "stopped by the scheduler" if scheduled else "interrupted (resume continues them)"
    say(f"{sum(o.ok for o in outcomes)}/{n_tasks} task(s) finished"
        f"{f', {stopped} {how}' if stopped else ''}"
        f"{f', {unstarted} not started (resume runs them)' if unstarted > 0 else ''} in "
        f"{elapsed:.0f} s; results under {log_dir}")
    if failed:
        return 1
    return 130 if unstarted > 0 or (stopped and not scheduled) else 0


def _as_interrupt(signum, frame) -> None:
    """SIGTERM as Ctrl-C: Tune stops the trials and saves the experiment for `resume`."""
    os.kill(os.getpid(), signal.SIGINT)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
