"""A model file's content as a validated ModelConfig (and a Task from its plain dict).

model_parameters are typed by the architecture the registry names; rules
across sections (a spectrogram model takes spectrograms, a features model
takes no augmentation, a stack's parts) are checked here, so ecgcore can
read a fold's saved model.json without the orchestrator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ecgcore.config.model import AUGMENTATION_SWITCHES, ModelConfig, Preprocessing
from ecgcore.config.schema import ConfigError, check_name, load_dataclass, locate
from ecgcore.config.task import Task
from ecgcore.errors import ProjectError
from ecgcore.models import get_architecture
from ecgcore.models.stack import part_refusal

# (part name, file naming it, JSON path) -> the part's config, for parts given by model-file name.
PartResolver = Callable[[str, object, str], ModelConfig]


def parse_model(data, file="<model>", root: str = "$", resolve_part: PartResolver | None = None) -> ModelConfig:
    """A model file's content, with model_parameters typed by its architecture.

    root is the JSON path of data in file ("$", or a part of a stacked model written inline).
    resolve_part loads a stacked model's part that is named by file (the orchestrator's model files);
    without it, parts must be written inline (a fold's saved model.json).
    """
    locate(ModelConfig, file, root)  # model_name is checked before the object is built: its errors link too
    if not isinstance(data, dict):
        raise ConfigError(file, root, "expected an object")
    name = data.get("model_name")
    if not isinstance(name, str):
        raise ConfigError(file, f"{root}.model_name", "missing or not a string (the architecture name)")
    try:
        arch = get_architecture(name)
    except ProjectError as exc:
        raise ConfigError(file, f"{root}.model_name", str(exc)) from None
    fields = dataclasses.fields(arch.params)
    parts = {f.name: (lambda value, path: _part(value, file, path, resolve_part))
             for f in fields if f.type in (ModelConfig, "ModelConfig")}
    resolved = {f.name: (lambda value, path: _resolved_parts(value, file, path, resolve_part))
                for f in fields if f.type == "tuple[ModelConfig, ...]"}
    params = lambda value, path: load_dataclass(arch.params, value, file, path,  # noqa: E731
                                                special={**parts, **resolved})
    model = load_dataclass(ModelConfig, data, file, root, special={"model_parameters": params})
    check_model(model, arch.input, file, root)
    if parts:
        check_stack(model, file, root)
    if resolved:
        check_job_stack(model, file, root)
    return model


def _part(value, file, path: str, resolve_part: PartResolver | None) -> ModelConfig:
    """A stacked model's part: a model file named beside this one, or (a saved, resolved model) inline."""
    if not isinstance(value, str):
        return parse_model(value, file, path, resolve_part)
    check_name(value, file, path, "model name")
    if resolve_part is None or str(file).startswith("<"):
        raise ConfigError(file, path, "a part must be given inline here, not by file name")
    return resolve_part(value, file, path)


def _resolved_parts(value, file, path: str, resolve_part: PartResolver | None) -> tuple[ModelConfig, ...]:
    """A Stack's parts' model configs: submit reads them from the parts' fold folders into the task and a fold's
    model.json keeps them inline; a model file (read with a part resolver) leaves them out."""
    if resolve_part is not None and not str(file).startswith("<"):
        raise ConfigError(file, path, "filled from the parts' fold folders when the stack is submitted: leave it out")
    if not isinstance(value, list):
        raise ConfigError(file, path, "expected a list of model configs")
    return tuple(parse_model(v, file, f"{path}[{i}]") for i, v in enumerate(value))


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
        _check_job_name(model.init_from, file, f"{root}.init_from")


def _check_job_name(name: str, file, path: str) -> None:
    """'<architecture>/<job>' under the log folder: two plain names."""
    parts = name.split("/")
    if len(parts) != 2:
        raise ConfigError(file, path, "expected '<architecture>/<job>' under the log folder")
    for part in parts:
        check_name(part, file, path, "name")


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


def check_job_stack(model: ModelConfig, file, root: str) -> None:
    """A Stack: at least two distinct jobs as its parts, none that was fitted on the validation records, and no
    preprocessing, augmentation or init_from of its own (each part preprocesses the record as its job did)."""
    p, path = model.model_parameters, f"{root}.model_parameters"
    if len(p.parts) < 2 or len(set(p.parts)) != len(p.parts):
        raise ConfigError(file, f"{path}.parts", "a stack needs at least two distinct jobs")
    for i, part in enumerate(p.parts):
        _check_job_name(part, file, f"{path}.parts[{i}]")
    if p.models and len(p.models) != len(p.parts):
        raise ConfigError(file, f"{path}.models", f"{len(p.models)} model configs for {len(p.parts)} parts")
    for i, part in enumerate(p.models):
        problem = part_refusal(part)
        if problem:
            raise ConfigError(file, f"{path}.models[{i}]", f"{p.parts[i]} cannot be a part: {problem}")
    if model.preprocessing != Preprocessing(spectrogram=False):
        raise ConfigError(file, f"{root}.preprocessing", f"{model.model_name} takes the record as it is: leave "
                                                         "preprocessing out (each part preprocesses it as its job did)")
    if any(getattr(model.data_augmentation, key) for key in AUGMENTATION_SWITCHES):
        raise ConfigError(file, f"{root}.data_augmentation", "a stack trains no network: turn augmentation off")
    if model.init_from is not None:
        raise ConfigError(file, f"{root}.init_from", "a stack's parts are jobs (parts): nothing to fine-tune from")


def task_from_dict(data: dict) -> Task:
    """Rebuild a Task sent through Ray as a plain dict (its model written inline)."""
    special = {"model": lambda value, path: parse_model(value, "<task>")}
    return load_dataclass(Task, data, "<task>", "$", special=special)
