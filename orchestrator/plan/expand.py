"""Jobs x folds -> Tasks: a pure function, previewed by `submit --dry-run`.

No I/O, no Ray: the same jobs, models and options always give the same
tasks in the same order with the same ids. As in the reference queue, folds
are interleaved across jobs (fold 0 of every job, then fold 1, ...) so every
job has a first result early.
"""

from __future__ import annotations

import math
import os.path
from dataclasses import dataclass, fields
from pathlib import PurePath

from ecgcore.config.model import ModelConfig
from ecgcore.config.task import Task
from ecgcore.errors import ProjectError
from ecgcore.models.stack import part_jobs
from ecgcore.tracks import track_class
from orchestrator.config.jobs import NamedJob
from orchestrator.config.settings import Settings
from orchestrator.logdir.reader import BEST_MODEL
from orchestrator.logdir.storage import is_uri, join

DEFAULTS = Settings()  # where neither the command line, the job nor a settings file gives a value


@dataclass(frozen=True)
class Overrides:
    """Command-line values; each wins over the job file's."""

    data: str | None = None
    max_epochs: int | None = None
    cpus_per_task: float | None = None
    gpus_per_task: float | None = None
    time_limit_s: float | None = None
    mlflow_tracking_uri: str | None = None  # submit --mlflow (orchestrator.tracking.tracking_uri)


def located(base: PurePath | str, *parts: str, root: PurePath | None = None) -> str:
    """base/parts: a URI (s3://...) joined as a string, a path made absolute against root and normalised."""
    if is_uri(base):
        return join(str(base), *parts)
    return os.path.normpath(PurePath(root, base, *parts) if root else PurePath(base, *parts))


def expand(jobs: list[NamedJob], models: dict[str, ModelConfig], log_dir: PurePath,
           root: PurePath, overrides: Overrides = Overrides()) -> list[Task]:
    """One Task per job x cvid; relative paths are resolved against root (a log or data URI is kept)."""
    tasks = []
    rounds = max((len(j.config.cvids) for j in jobs), default=0)
    for i in range(rounds):
        for job in jobs:
            if i < len(job.config.cvids):
                tasks.append(_task(job, job.config.cvids[i], job.model or models[job.config.model],
                                   log_dir, root, overrides))
    return tasks


def _task(job: NamedJob, fold: int, model: ModelConfig, log_dir: PurePath, root: PurePath,
          overrides: Overrides) -> Task:
    arch = model.model_name
    data = overrides.data or job.config.data or DEFAULTS.data_root
    max_epochs = model.training_parameters.max_epochs
    if overrides.max_epochs is not None:
        max_epochs = min(max_epochs, overrides.max_epochs)
    return Task(
        task_id=f"{arch}/{job.name}/fold{fold}",
        job=job.name,
        fold=fold,
        model_file=job.config.model,
        model=model,
        data_dir=located(data, root=root),
        split=job.config.split,
        out_dir=located(log_dir, arch, job.name, f"fold{fold}", root=root),
        max_epochs=max_epochs,
        log_en=job.config.log_en,
        log_test_score=job.config.log_test_score,
        threads=max(1, math.floor(_cpus(job, overrides))),
        track=job.config.track,
        track_options=_absolute_paths(job.config.track, job.config.track_options, root),
        kind=job.config.kind,
        init_checkpoint=None if model.init_from is None else
        located(log_dir, model.init_from, f"fold{fold}", BEST_MODEL, root=root),
        time_limit_s=overrides.time_limit_s,
        part_folds=tuple(located(log_dir, part, f"fold{fold}", root=root) for part in part_jobs(model)),
    )


def _absolute_paths(track: str, options: dict, root: PurePath) -> dict:
    """The track options with the files they name (a labels CSV) made absolute: trials run in other folders."""
    paths = {f.name for f in fields(track_class(track).Options) if f.metadata.get("path")}
    return {k: os.path.normpath(root / v) if k in paths and v is not None else v for k, v in options.items()}


def resources(job: NamedJob, overrides: Overrides, cluster_gpus: float) -> dict[str, float]:
    """Ray resources of each process training one of the job's folds, and how many processes.

    One process (workers 1) is the trial itself. Several (workers_per_task > 1, DDP) each take
    cpus_per_task CPUs and gpus_per_worker GPUs; a command-line --gpus-per-task wins for them too.
    GPUs default to 1 where the cluster has any.
    """
    workers = job.config.workers_per_task
    gpus = overrides.gpus_per_task
    if gpus is None:
        gpus = job.config.gpus_per_task if workers == 1 else job.config.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if cluster_gpus > 0 else 0.0
    return {"cpu": float(_cpus(job, overrides)), "gpu": float(gpus), "workers": workers}


def check_gpu_capacity(jobs: list[NamedJob], overrides: Overrides, node_gpus: list[float], where: str) -> None:
    """Refuse a job whose tasks ask for more GPUs than any one node has: Ray would leave them pending forever.

    node_gpus: the GPUs of each node (one entry for a local Ray on this machine); where names them in the message.
    """
    largest, total = max(node_gpus, default=0.0), sum(node_gpus)
    for job in jobs:
        res = resources(job, overrides, total)
        gpus = res["gpu"]
        if res["workers"] > 1 and res["workers"] * gpus > total:
            raise ProjectError(f"job {job.name}: {res['workers']} workers x {gpus:g} GPU(s) per fold, but {where} "
                               f"has {total:g} GPU(s) in all; lower workers_per_task or gpus_per_worker")
        if gpus > 1 and gpus != int(gpus):
            raise ProjectError(f"job {job.name}: {gpus:g} GPUs per task; above one GPU a task takes whole GPUs "
                               "(fractions pack several tasks onto one GPU)")
        if gpus > largest:
            per_node = ", ".join(f"{g:g}" for g in node_gpus)
            has = f"{where} has {largest:g}" if len(node_gpus) <= 1 else \
                f"no node of {where} has more than {largest:g} (GPUs per node: {per_node})"
            raise ProjectError(f"job {job.name} asks for {gpus:g} GPU(s) per task, but {has}; lower gpus_per_task "
                               "(job file or --gpus-per-task) or run where the GPUs are")


def _cpus(job: NamedJob, overrides: Overrides) -> float:
    for value in (overrides.cpus_per_task, job.config.cpus_per_task):
        if value is not None:
            return value
    return DEFAULTS.cpus_per_task


def task_table(tasks: list[Task], jobs: list[NamedJob], overrides: Overrides) -> str:
    """The dry-run preview: one line per task."""
    by_name = {j.name: j for j in jobs}
    w_id = max([len("task id"), *(len(t.task_id) for t in tasks)])
    w_model = max([len("model"), *(len(t.model_file) for t in tasks)])
    w_split = max([len("split"), *(len(t.split) for t in tasks)])
    header = (f"{'#':>3}  {'task id':<{w_id}} {'model':<{w_model}} {'split':<{w_split}} {'epochs':>6} "
              f"{'cpu':>4} {'gpu':>4}  data")
    lines = [header]
    for i, t in enumerate(tasks):
        res = resources(by_name[t.job], overrides, cluster_gpus=0)
        job = by_name[t.job].config
        given = job.gpus_per_task if job.workers_per_task == 1 else job.gpus_per_worker
        gpu = "auto" if given is None and overrides.gpus_per_task is None else f"{res['gpu']:g}"
        ddp = f"  (DDP: {res['workers']} workers, cpu and gpu each)" if res["workers"] > 1 else ""
        lines.append(f"{i:>3}  {t.task_id:<{w_id}} {t.model_file:<{w_model}} {t.split:<{w_split}} "
                     f"{t.max_epochs:>6} {res['cpu']:>4g} {gpu:>4}  {t.data_dir}{ddp}")
    lines.append(f"{len(tasks)} task(s) from {len(jobs)} job(s)")
    return "\n".join(lines)
