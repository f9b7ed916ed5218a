"""Job and model files: the typed job schema and the loaders for both.

A job file is an object keyed by job name; each job names a model file in
models/ and the folds to run. Everything is validated here, before Ray
starts: unknown keys, wrong types, unknown architectures, missing model
files, fold ids outside the split and unsafe job names each raise one
ConfigError naming the file and the JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ecgcore.config import modelfile
from ecgcore.config.model import ModelConfig, spec
from ecgcore.config.schema import ConfigError, check_name, documented, load_dataclass, locate, read_document, to_plain
from ecgcore.data.splits import SPLIT_POLICIES, split_folds, split_policy
from ecgcore.errors import ProjectError
from ecgcore.models import get_architecture
from ecgcore.tracks import CHALLENGE_TRACKS, DEFAULT_TRACK, TRACKS, open_track, track_class
from ecgcore.training.trainers import get_trainer, trainer_name
from orchestrator.config.search import check_spaces, find_spaces, substitute


@documented("job-file.md", "scheduler")
@dataclass(frozen=True)
class SchedulerConfig:
    type: str = spec("asha", "asha: at each rung, stop the trials whose validation score falls behind",
                     choices=("asha",))
    grace_period: int = spec(1, "epochs every trial runs before it may be stopped", min=1)
    reduction_factor: float = spec(3.0, "keep the best 1/reduction_factor of the trials at each rung", min=1.01)


@documented("job-file.md")
@dataclass(frozen=True)
class JobConfig:
    model: str = spec(None, "model file in models/, without .json", required=True)
    split: str = spec(None, "split_<folds>_<tv>_<seed>", required=True)
    cvids: tuple[int, ...] = spec(None, "fold ids to run", required=True, min=0)
    description: str = spec("", "free text")
    log_en: bool = spec(True, "write TensorBoard events")
    log_test_score: bool = spec(True, "score the test fold at every validation (hotlog, TensorBoard)")
    data: str | None = spec(None, "dataset folder (default: submit --data, else data/training2017)")
    cpus_per_task: float | None = spec(None, "CPUs per fold (default 1)", min=0.01)
    gpus_per_task: float | None = spec(None, "GPUs per fold (default: 1 if the cluster has GPUs)", min=0.0)
    max_concurrent: int | None = spec(None, "this job's folds (and variants) running at once, at most "
                                            "(default: as many as the resources allow; submit --max-concurrent "
                                            "caps all jobs together)", min=1)
    max_retries: int = spec(2, "times Ray retries a failed fold, from its last checkpoint", min=0)
    track: str | None = spec(None, f"the dataset's track: reader, labels, metric and splits (default "
                                   f"{DEFAULT_TRACK}; see docs/tracks.md)", choices=tuple(TRACKS))
    track_options: Any = spec(None, "the track's own options, an object (PTB-XL: task, sampling_rate; wfdb: labels, "
                                    "classes, scored_classes; see docs/tracks.md)")
    challenge: int | None = spec(None, "the older name of track: 2017, 2020 or 2021 (cinc2017, cinc2020, cinc2021)",
                                 choices=tuple(CHALLENGE_TRACKS))
    num_samples: int = spec(1, "draws per grid point when the model file has choice/uniform/loguniform/randint "
                               "values (see orchestrator/config/search.py)", min=1)
    scheduler: SchedulerConfig | None = spec(None, "a Tune trial scheduler for the job's folds and variants")
    kind: str = spec("classify", "classify, or pretrain: self-supervised pre-training of the model's "
                                 "encoder (see the model file's pretraining section)",
                     choices=("classify", "pretrain"))
    mlflow_tracking_uri: str | None = spec(None, "MLflow tracking URI (sqlite:///mlflow.db, http://host:5000): the "
                                                 "job as a parent run, each fold as a child run (default: submit "
                                                 "--mlflow, else the settings' mlflow_tracking_uri, else none)")
    workers_per_task: int = spec(1, "processes training each fold together: above 1, PyTorch DistributedDataParallel "
                                    "through Ray Train, each worker with cpus_per_task CPUs and gpus_per_worker "
                                    "GPUs", min=1)
    gpus_per_worker: float | None = spec(None, "GPUs per worker when workers_per_task > 1 (default: 1 if the "
                                               "cluster has GPUs)", min=0.0)


@dataclass(frozen=True)
class NamedJob:
    name: str
    config: JobConfig
    file: str
    model: ModelConfig | None = None  # a search variant's own model (None: the model file's)
    variant: dict | None = None  # a search variant's values by JSON path
    space: tuple[str, ...] = ()  # a search variant's spaces, described (dry run)
    origin: str | None = None  # a search variant's job name in the job file

    @property
    def job_name(self) -> str:
        """The name in the job file (a variant's job, not the variant)."""
        return self.origin or self.name


@dataclass(frozen=True)
class ModelFile:
    """A loaded model file: its config (every space at its first value), JSON, and search spaces."""

    config: ModelConfig
    raw: dict
    spaces: tuple


def load_jobs(file: str | Path) -> list[NamedJob]:
    """All jobs of a job file, in file order."""
    data = read_document(Path(file))
    if not isinstance(data, dict) or not data:
        raise ConfigError(file, "$", "expected an object of jobs keyed by job name")
    jobs = []
    for name, body in data.items():
        check_name(name, file, f"$.{name}", "job name")
        job = _resolve_track(load_dataclass(JobConfig, body, file, f"$.{name}"), file, f"$.{name}")
        check_name(job.model, file, f"$.{name}.model", "model name")
        try:
            n_folds = split_folds(job.split)
        except ProjectError as exc:
            raise ConfigError(file, f"$.{name}.split", str(exc)) from None
        policy = split_policy(job.split)
        if policy not in track_class(job.track).split_policies:
            raise ConfigError(file, f"$.{name}.split", f"{SPLIT_POLICIES[policy]} splits do not apply to track "
                                                       f"{job.track} (its splits: {_policies(job.track)})")
        for i, cvid in enumerate(job.cvids):
            if n_folds is not None and cvid >= n_folds:
                raise ConfigError(file, f"$.{name}.cvids[{i}]",
                                  f"fold {cvid} is outside {job.split} (folds 0..{n_folds - 1})")
        if len(set(job.cvids)) != len(job.cvids):
            raise ConfigError(file, f"$.{name}.cvids", "a fold id is listed twice")
        jobs.append(NamedJob(name, job, str(file)))
    return jobs


def _resolve_track(job: JobConfig, file, path: str) -> JobConfig:
    """The job with `track` settled (from `track`, else the older `challenge`, else the default) and its
    track_options checked against the track's own schema, defaults filled in."""
    track = job.track or CHALLENGE_TRACKS.get(job.challenge, DEFAULT_TRACK)
    if job.track and job.challenge is not None and CHALLENGE_TRACKS[job.challenge] != job.track:
        raise ConfigError(file, f"{path}.challenge", f"challenge {job.challenge} is track "
                                                     f"{CHALLENGE_TRACKS[job.challenge]}, but track is {job.track}")
    options = load_dataclass(track_class(track).Options, job.track_options or {}, file, f"{path}.track_options")
    return replace(job, track=track, track_options=to_plain(options))


def _policies(track: str) -> str:
    return "; ".join(SPLIT_POLICIES[p] for p in track_class(track).split_policies)


def track_key(job: NamedJob) -> str:
    """The job file's key that chose the track, for errors about it."""
    return "challenge" if job.config.challenge is not None else "track"


def parse_model(data, file, root: str = "$") -> ModelConfig:
    """A model file's content; a stacked model's parts may be named by model file (beside this one)."""
    return modelfile.parse_model(data, file, root, resolve_part=_part_file)


def _part_file(name: str, file, path: str) -> ModelConfig:
    return load_model(Path(file).parent, name, file, path)


def load_model(models_dir: str | Path, name: str, job_file, job_path: str) -> ModelConfig:
    """A model file's config (every search space at its first value)."""
    return load_model_file(models_dir, name, job_file, job_path).config


def model_path(models_dir: str | Path, name: str, job_file, job_path: str) -> Path:
    """models/<name>.json, .yaml or .yml: exactly one of them."""
    found = [p for p in (Path(models_dir) / f"{name}{suffix}" for suffix in (".json", ".yaml", ".yml"))
             if p.is_file()]
    if not found:
        raise ConfigError(job_file, job_path, f"model file {Path(models_dir) / name}.json (or .yaml) does not exist")
    if len(found) > 1:
        raise ConfigError(job_file, job_path, f"model {name!r} is ambiguous: {', '.join(map(str, found))}")
    return found[0]


def load_model_file(models_dir: str | Path, name: str, job_file, job_path: str) -> ModelFile:
    path = model_path(models_dir, name, job_file, job_path)
    raw = read_document(path)
    locate(ModelConfig, path)  # a search space is checked before the model is parsed: its errors link too
    spaces = find_spaces(raw, path)
    if spaces:
        check_spaces(raw, spaces, path, parse_model)
    config = parse_model(substitute(raw, {s.path: s.candidates()[0] for s in spaces}), path)
    return ModelFile(config, raw, tuple(spaces))


def load_model_files(jobs: list[NamedJob], models_dir: str | Path) -> dict[str, ModelFile]:
    """Every model file the jobs name, each loaded once."""
    files: dict[str, ModelFile] = {}
    for job in jobs:
        if job.config.model not in files:
            files[job.config.model] = load_model_file(models_dir, job.config.model, job.file,
                                                      f"$.{job.name}.model")
    return files


def load_models(jobs: list[NamedJob], models_dir: str | Path) -> dict[str, ModelConfig]:
    """The config of every model file the jobs name (a search space at its first value)."""
    return {name: f.config for name, f in load_model_files(jobs, models_dir).items()}


def check_kinds(jobs: list[NamedJob], models: dict[str, ModelConfig]) -> None:
    """Job x model rules: pre-training needs a signal encoder; the loss and leads must fit the track."""
    schedulers = {job.config.scheduler for job in jobs if job.config.scheduler is not None}
    if len(schedulers) > 1:
        raise ConfigError(jobs[0].file, "$", "jobs of one submit share one Tune scheduler; these differ")
    for job in jobs:
        model = job.model or models[job.config.model]
        if job.config.scheduler is not None and job.config.kind == "pretrain":
            raise ConfigError(job.file, f"$.{job.job_name}.scheduler", "a scheduler ranks validation scores; "
                                                                       "pre-training has none")
        arch = get_architecture(model.model_name)
        input_kind = arch.input
        if job.config.kind == "pretrain" and (input_kind != "signal" or arch.trainer != "epochs"):
            why = f"takes {input_kind}" if input_kind != "signal" else "is not a network trained by epochs"
            raise ConfigError(job.file, f"$.{job.job_name}.kind",
                              f"pre-training needs a signal architecture; {model.model_name} {why}")
        _check_workers(job, model)
        track = open_track(job.config.track, job.config.track_options, root=job.config.data)
        problem = track.check_model(model, input_kind, arch.trainer)
        if problem is not None:
            where, why = problem
            key = "model" if where == "model" else track_key(job)
            raise ConfigError(job.file, f"$.{job.job_name}.{key}", f"model {job.config.model!r} {why}")


def _check_workers(job: NamedJob, model: ModelConfig) -> None:
    """Several processes per fold (DDP) need a network trained by gradient steps, and GPUs per worker."""
    cfg, path = job.config, f"$.{job.job_name}"
    if cfg.workers_per_task == 1:
        if cfg.gpus_per_worker is not None:
            raise ConfigError(job.file, f"{path}.gpus_per_worker", "applies to workers_per_task > 1; one process "
                                                                    "per fold takes gpus_per_task")
        return
    if cfg.gpus_per_task is not None:
        raise ConfigError(job.file, f"{path}.gpus_per_task", f"with workers_per_task {cfg.workers_per_task} give "
                                                              "the GPUs of each worker: gpus_per_worker")
    if not get_trainer(trainer_name(cfg.kind, model)).replicas:
        raise ConfigError(job.file, f"{path}.workers_per_task", f"{model.model_name} is not trained by gradient "
                                                                 "steps; it cannot be split over several processes")
    if model.training_parameters.batch_size < cfg.workers_per_task:
        raise ConfigError(job.file, f"{path}.workers_per_task", f"each worker trains on a slice of every batch: "
                                                                 f"batch_size {model.training_parameters.batch_size} "
                                                                 f"is smaller than {cfg.workers_per_task} workers")
