"""Model registry: architecture name (the model file's model_name) -> builder.

`@register("CRNN", params=CRNNParams, input="spectrogram")` records a builder
`f(params, inputs: InputSpec, n_classes, drop_rate) -> nn.Module` and the
dataclass its model_parameters load into (documented under the architecture's
name on the model file's reference page); `create_model(config, inputs,
n_classes)` builds the model of a whole model config. Lookup is by exact name; an unknown
name lists the known ones.

Three input kinds exist, and a model's forward is `forward(x, lengths)` with
padded positions zero and `lengths` the valid steps per record (int64):

- "spectrogram": x is (batch, frames, leads, freqs), a log spectrogram per
  lead computed in preprocessing (the CNN/CRNN of Zihlmann et al.).
- "signal": x is (batch, leads, samples), the (resampled, windowed) signal
  in mV. Models that need a spectrogram too (ECG-DualNet) compute it inside.
- "features": x is (batch, n_features), the engineered features of each
  record (ecgcore.features.extract), computed once when the dataset is prepared.

An architecture's trainer names what fits it, a key of the trainer registry
(ecgcore.training.trainers, which models never import): "epochs" (gradient
descent, every network), "boosting" (FeatureGBM), "stacking" (HybridStack: a
network and a booster, stacked) or "stack" (Stack: a stacker over finished
jobs' models).

A signal model also offers `encode(x, lengths) -> (features (batch, channels,
steps), lengths)`, the network without its classification head, and the
attribute `encoder_channels`; pre-training puts its own head on that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ecgcore.config.schema import documented
from ecgcore.errors import ProjectError

INPUT_KINDS = ("signal", "spectrogram", "features")
TRAINERS = ("epochs", "boosting", "stacking", "stack")


@dataclass(frozen=True)
class InputSpec:
    """What the data pipeline feeds a model."""

    kind: str  # one of INPUT_KINDS
    n_leads: int
    fs: float  # sampling rate of the samples the model sees (after resampling)
    length: int | None = None  # fixed window length in samples; None: whole records, variable
    n_freqs: int | None = None  # frequency bins per frame (spectrogram input only)
    n_features: int | None = None  # features per record (features input only)


@dataclass(frozen=True)
class Architecture:
    name: str
    params: type
    build: Callable
    input: str
    trainer: str = "epochs"


_REGISTRY: dict[str, Architecture] = {}


def register(name: str, params: type, input: str, trainer: str = "epochs") -> Callable:
    if input not in INPUT_KINDS or trainer not in TRAINERS:
        raise ValueError(f"input kind {input!r} not in {INPUT_KINDS} or trainer {trainer!r} not in {TRAINERS}")

    def decorate(build: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = Architecture(name, params, build, input, trainer)
        documented("model-file.md", "model_parameters", name, f"input: {input}; trainer: {trainer}")(params)
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


def create_model(config, inputs: InputSpec, n_classes: int):
    """The network (or booster module) a model config describes, for these inputs: the one factory.

    config is a ModelConfig: its architecture builds from its model_parameters, with its drop rate.
    """
    arch = get_architecture(config.model_name)
    return arch.build(config.model_parameters, inputs, n_classes, config.training_parameters.drop_rate)


def part_models(config) -> dict:
    """The model configs of a stacked model's parts by part name, each prepared from the dataset on its own ({} for
    any other model): its params declare them (`part_models()`)."""
    declared = getattr(config.model_parameters, "part_models", None)
    return declared() if declared else {}


# Importing the model modules fills the registry.
from ecgcore.models import booster, dualnet, globalskip, hybrid, resnet1d, spectral, stack  # noqa: E402,F401
