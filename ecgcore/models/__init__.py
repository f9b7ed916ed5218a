"""Model registry: architecture name (the model file's model_name) -> builder.

`@register("CRNN", params=CRNNParams)` records a builder `f(params, n_classes,
drop_rate) -> nn.Module` and the dataclass its model_parameters load into.
Lookup is by exact name; an unknown name lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ecgcore.errors import ProjectError


@dataclass(frozen=True)
class Architecture:
    name: str
    params: type
    build: Callable


_REGISTRY: dict[str, Architecture] = {}


def register(name: str, params: type) -> Callable:
    def decorate(build: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = Architecture(name, params, build)
        return build

    return decorate


def known_architectures() -> list[str]:
    return sorted(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ProjectError(
            f"unknown architecture {name!r}; known: {', '.join(known_architectures())}"
        ) from None


# Importing the model modules fills the registry.
from ecgcore.models import spectral  # noqa: E402,F401
