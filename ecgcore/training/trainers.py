"""The trainer registry: a trainer's name -> the function that fits a model on one fold.

An architecture names its trainer when it registers (ecgcore.models: "epochs",
"boosting", "stacking", "stack"); a task of kind "pretrain" is fitted by the
trainer "pretrain", whatever its network. Each trainer module registers its
function with `@trainer(name, ...)`, and `get_trainer` imports the module the
first time its trainer is asked for: a plain network's fit never imports
LightGBM, scikit-learn or the feature set.

Every trainer has one signature, `fit(run, model, track, info, resume, parts)
-> TrainResult`: run is the fold's FoldRun (ecgcore.training.loop), model the
network built for the task, track the task's track, info the fold's info so
far (the trainer adds to it), resume a checkpoint's state to continue from
(None: from scratch), parts the prepared datasets of a stacked model's parts
by part name ({} for any other model). A trainer declares whether several
processes may train one fold together (DDP: gradient steps only), and whether
train_task starts its model from the task's init_checkpoint (fine-tuning) or
the trainer reads that checkpoint itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ecgcore.errors import ProjectError
from ecgcore.models import get_architecture

# The module that registers each trainer, imported on first use.
MODULES = {"epochs": "ecgcore.training.classify", "boosting": "ecgcore.training.boosting",
           "stacking": "ecgcore.training.stacking", "stack": "ecgcore.training.stack",
           "pretrain": "ecgcore.training.pretrain"}


@dataclass(frozen=True)
class Trainer:
    name: str
    fit: Callable  # fit(run, model, track, info, resume, parts) -> TrainResult
    replicas: bool  # several processes may train one fold together (DDP)
    fine_tunes: bool  # train_task loads task.init_checkpoint into the model first; False: the trainer reads it


_REGISTERED: dict[str, Trainer] = {}


def trainer(name: str, *, replicas: bool, fine_tunes: bool = True) -> Callable:
    """Register the decorated function as the trainer `name` (a key of MODULES)."""
    if name not in MODULES:
        raise ValueError(f"trainer {name!r} has no entry in MODULES")

    def decorate(fit: Callable) -> Callable:
        _REGISTERED[name] = Trainer(name, fit, replicas, fine_tunes)
        return fit

    return decorate


def trainer_name(kind: str, model) -> str:
    """The trainer of a task of this kind and model config: "pretrain" for pre-training, else the architecture's."""
    return "pretrain" if kind == "pretrain" else get_architecture(model.model_name).trainer


def get_trainer(name: str) -> Trainer:
    """The registered trainer, its module imported if it was not yet."""
    if name not in _REGISTERED:
        if name not in MODULES:
            raise ProjectError(f"unknown trainer {name!r}; known: {', '.join(sorted(MODULES))}")
        importlib.import_module(MODULES[name])
    return _REGISTERED[name]
