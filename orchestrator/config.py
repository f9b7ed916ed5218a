"""Job and model files: the typed job schema and the loaders for both.

A job file is an object keyed by job name; each job names a model file in
models/ and the folds to run. Everything is validated here, before Ray
starts: unknown keys, wrong types, unknown architectures, missing model
files, fold ids outside the split and unsafe job names each raise one
ConfigError naming the file and the JSON path.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from ecgcore.config import AUGMENTATION_SWITCHES, ModelConfig, Preprocessing, spec
from ecgcore.errors import ProjectError
from ecgcore.models import get_architecture
from ecgcore.splits import split_folds
from ecgcore.task import Task
from orchestrator.schema import ConfigError, load_dataclass, read_document
from orchestrator.search import check_spaces, find_spaces, substitute

# Job and model names become folder names: keep them plain.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SchedulerConfig:
    type: str = spec("asha", "asha: at each rung, stop the trials whose validation score falls behind",
                     choices=("asha",))
    grace_period: int = spec(1, "epochs every trial runs before it may be stopped", min=1)
    reduction_factor: float = spec(3.0, "keep the best 1/reduction_factor of the trials at each rung", min=1.01)


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
    challenge: int = spec(2017, "labels, classes and metric: 2017 (REFERENCE.csv, N/A/O/~, F1 score) or "
                                "2020/2021 (the scored SNOMED CT codes of #Dx, the challenge metric)",
                          choices=(2017, 2020, 2021))
    num_samples: int = spec(1, "draws per grid point when the model file has choice/uniform/loguniform/randint "
                               "values (see orchestrator/search.py)", min=1)
    scheduler: SchedulerConfig | None = spec(None, "a Tune trial scheduler for the job's folds and variants")
    kind: str = spec("classify", "classify, or pretrain: self-supervised pre-training of the model's "
                                 "encoder (see the model file's pretraining section)",
                     choices=("classify", "pretrain"))


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


def check_name(name: str, file, path: str, what: str) -> None:
    if not _PLAIN_NAME.match(name) or ".." in name:
        raise ConfigError(file, path, f"{what} {name!r} must be a plain name "
                                      "(letters, digits, _ . -; no '/', no '..')")


def load_jobs(file: str | Path) -> list[NamedJob]:
    """All jobs of a job file, in file order."""
    data = read_document(Path(file))
    if not isinstance(data, dict) or not data:
        raise ConfigError(file, "$", "expected an object of jobs keyed by job name")
    jobs = []
    for name, body in data.items():
        check_name(name, file, f"$.{name}", "job name")
        job = load_dataclass(JobConfig, body, file, f"$.{name}")
        check_name(job.model, file, f"$.{name}.model", "model name")
        try:
            n_folds = split_folds(job.split)
        except ProjectError as exc:
            raise ConfigError(file, f"$.{name}.split", str(exc)) from None
        if n_folds is None and job.challenge == 2017:
            raise ConfigError(file, f"$.{name}.split", "leave-source-out needs the 12-lead data (challenge 2020/2021)")
        for i, cvid in enumerate(job.cvids):
            if n_folds is not None and cvid >= n_folds:
                raise ConfigError(file, f"$.{name}.cvids[{i}]",
                                  f"fold {cvid} is outside {job.split} (folds 0..{n_folds - 1})")
        if len(set(job.cvids)) != len(job.cvids):
            raise ConfigError(file, f"$.{name}.cvids", "a fold id is listed twice")
        jobs.append(NamedJob(name, job, str(file)))
    return jobs


def parse_model(data, file, root: str = "$") -> ModelConfig:
    """A model file's content, with model_parameters typed by its architecture.

    root is the JSON path of data in file ("$", or a part of a stacked model written inline).
    """
    if not isinstance(data, dict):
        raise ConfigError(file, root, "expected an object")
    name = data.get("model_name")
    if not isinstance(name, str):
        raise ConfigError(file, f"{root}.model_name", "missing or not a string (the architecture name)")
    try:
        arch = get_architecture(name)
    except ProjectError as exc:
        raise ConfigError(file, f"{root}.model_name", str(exc)) from None
    parts = {f.name: (lambda value, path: load_part(value, file, path)) for f in dataclasses.fields(arch.params)
             if f.type in (ModelConfig, "ModelConfig")}
    params = lambda value, path: load_dataclass(arch.params, value, file, path, special=parts)  # noqa: E731
    model = load_dataclass(ModelConfig, data, file, root, special={"model_parameters": params})
    check_model(model, arch.input, file, root)
    if parts:
        check_stack(model, file, root)
    return model


def load_part(value, file, path: str) -> ModelConfig:
    """A stacked model's part: a model file named beside this one, or (a saved, resolved model) inline."""
    if isinstance(value, str):
        check_name(value, file, path, "model name")
        if str(file).startswith("<"):
            raise ConfigError(file, path, "a part must be given inline here, not by file name")
        return load_model(Path(file).parent, value, file, path)
    return parse_model(value, file, path)


def check_model(model: ModelConfig, input_kind: str, file, root: str = "$") -> None:
    """Rules across sections that a single field's bounds cannot express."""
    pre, tp = model.preprocessing, model.training_parameters
    if pre.spectrogram != (input_kind == "spectrogram"):
        raise ConfigError(file, f"{root}.preprocessing.spectrogram",
                          f"{model.model_name} takes {input_kind} input: set spectrogram to "
                          f"{str(input_kind == 'spectrogram').lower()}")
    if pre.noverlap >= pre.nperseg:
        raise ConfigError(file, f"{root}.preprocessing.noverlap", "must be smaller than nperseg")
    if tp.exponential_decay and tp.schedule not in ("constant", "exponential"):
        raise ConfigError(file, f"{root}.training_parameters.exponential_decay",
                          f"true means the exponential schedule, but schedule is {tp.schedule!r}")
    if pre.window_stride is not None and pre.window is None:
        raise ConfigError(file, f"{root}.preprocessing.window_stride", "needs a window")
    if input_kind == "features":
        check_features_model(model, file, root)
    if model.init_from is not None:
        parts = model.init_from.split("/")
        if len(parts) != 2:
            raise ConfigError(file, f"{root}.init_from", "expected '<architecture>/<job>' under the log folder")
        for part in parts:
            check_name(part, file, f"{root}.init_from", "name")


def check_features_model(model: ModelConfig, file, root: str = "$") -> None:
    """A features model's inputs are computed once per record: nothing may vary them between epochs."""
    if model.preprocessing.window is not None:
        raise ConfigError(file, f"{root}.preprocessing.window", f"{model.model_name} takes whole records' "
                                                                "features: no window")
    for key in AUGMENTATION_SWITCHES:
        value = getattr(model.data_augmentation, key)
        if value:
            raise ConfigError(file, f"{root}.data_augmentation.{key}",
                              f"{model.model_name} takes features computed once per record: augmentation must "
                              f"be off (set {key} to {'false' if isinstance(value, bool) else 0})")


def check_stack(model: ModelConfig, file, root: str) -> None:
    """A stacked model: a network and a booster as its parts, and no preprocessing of its own (each part
    preprocesses the record itself, in training as in prediction)."""
    p = model.model_parameters
    for name, part, trainer in (("deep", p.deep, "epochs"), ("features", p.features, "boosting")):
        arch = get_architecture(part.model_name)
        if arch.trainer != trainer or arch.input == "features" and trainer == "epochs":
            raise ConfigError(file, f"{root}.model_parameters.{name}",
                              f"{part.model_name} cannot be the {name} part: it needs "
                              f"{'a network on the signal or a spectrogram' if trainer == 'epochs' else 'a booster'}")
    if model.preprocessing != Preprocessing(spectrogram=False):
        raise ConfigError(file, f"{root}.preprocessing", f"{model.model_name} takes the record as it is: leave "
                                                         "preprocessing out and set it in each part's model file")
    if any(getattr(model.data_augmentation, key) for key in AUGMENTATION_SWITCHES):
        raise ConfigError(file, f"{root}.data_augmentation", "augmentation belongs to the deep part's model file")


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
            raise ConfigError(job.file, f"$.{job.name}.scheduler", "a scheduler ranks validation scores; "
                                                                   "pre-training has none")
        input_kind = get_architecture(model.model_name).input
        if job.config.kind == "pretrain" and input_kind != "signal":
            raise ConfigError(job.file, f"$.{job.name}.kind",
                              f"pre-training needs a signal architecture; {model.model_name} takes {input_kind}")
        loss = model.loss_function_parameters.loss
        multilabel = job.config.challenge != 2017
        if loss != "auto" and (loss == "cross_entropy") == multilabel:
            raise ConfigError(job.file, f"$.{job.name}.model",
                              f"model {job.config.model!r} has loss {loss!r}, which does not fit challenge "
                              f"{job.config.challenge} ({'multi' if multilabel else 'single'}-label): use "
                              f"{'bce, weighted_bce, confusion_bce or challenge' if multilabel else 'cross_entropy'}")
        stacked = get_architecture(model.model_name).trainer == "stacking"
        if (input_kind == "features" or stacked) and multilabel:
            raise ConfigError(job.file, f"$.{job.name}.challenge",
                              f"model {job.config.model!r} ({model.model_name}) has single-lead CinC 2017 "
                              f"features and one softmax: it takes challenge 2017, not {job.config.challenge}")
        if model.preprocessing.leads is not None and not multilabel:
            raise ConfigError(job.file, f"$.{job.name}.model",
                              f"model {job.config.model!r} selects leads, but CinC 2017 records have one lead")


def task_from_dict(data: dict) -> Task:
    """Rebuild a Task sent through Ray as a plain dict."""
    special = {"model": lambda value, path: parse_model(value, "<task>")}
    return load_dataclass(Task, data, "<task>", "$", special=special)
