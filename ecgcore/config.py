"""Typed model configuration: the sections of a models/*.json file.

Each section is a frozen dataclass whose defaults are the one place a default
is declared. Field metadata carries the bounds the loader checks ("min",
"max", "choices") and a one-line help text. The keys are those of the
reference repository, so its model files load unchanged; keys it did not have
(max_epochs, seed, ...) are added with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def spec(default: Any, help: str, **bounds: Any) -> Any:
    """A dataclass field with a default, a help text and optional bounds."""
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class Preprocessing:
    spectrogram: bool = spec(True, "feed a log spectrogram (the CNN/CRNN need it)")
    nperseg: int = spec(64, "spectrogram window length in samples", min=8)
    noverlap: int = spec(32, "spectrogram window overlap in samples", min=0)


@dataclass(frozen=True)
class LossFunctionParameters:
    l2_penalty: float = spec(0.0, "weight of 0.5*sum(w^2) over conv/dense/LSTM weights", min=0.0)
    class_penalty: float = spec(
        0.2, "c in the class weight (1-c) + c*100/class_percent", min=0.0, max=1.0)


@dataclass(frozen=True)
class TrainingParameters:
    learning_rate: float = spec(0.001, "Adam learning rate", min=0.0)
    batch_size: int = spec(20, "records per batch", min=1)
    drop_rate: float = spec(0.15, "dropout rate", min=0.0, max=0.95)
    exponential_decay: bool = spec(False, "multiply the learning rate by 0.9999 every step")
    dataset_compensation: float = spec(
        0.2, "oversampling: class copies int(100*f/class_percent)+1", min=0.0)
    validation_step: int = spec(5, "validate every this many epochs", min=1)
    early_stop_wait: int = spec(100, "stop after this many epochs without a better valid score", min=1)
    max_epochs: int = spec(500, "training epochs at most (the reference's CNN ran 500)", min=1)
    seed: int = spec(0, "seed of weight init, batching and augmentation (the fold id is mixed in)", min=0)


@dataclass(frozen=True)
class DataAugmentation:
    resampling: bool = spec(True, "random time stretch by a factor in [2/3, 4/3)")
    resample_method: str = spec("random", "how the stretch factor is drawn", choices=("random",))
    zero_filter: bool = spec(True, "zero random short bursts of samples")
    reload_step: int = spec(5, "draw new augmentations every this many epochs", min=1)
    awgn: bool = spec(False, "add white Gaussian noise")
    awgn_snr: float = spec(3.0, "linear signal-to-noise power ratio of that noise", min=0.01)


@dataclass(frozen=True)
class ModelConfig:
    """A whole model file; model_parameters is the architecture's own dataclass."""

    model_name: str = spec(None, "architecture, a key of the model registry", required=True)
    model_parameters: Any = spec(None, "the architecture's parameters", required=True)
    preprocessing: Preprocessing = spec(Preprocessing(), "input preprocessing")
    loss_function_parameters: LossFunctionParameters = spec(LossFunctionParameters(), "loss")
    training_parameters: TrainingParameters = spec(TrainingParameters(), "optimisation")
    data_augmentation: DataAugmentation = spec(DataAugmentation(), "training-set augmentation")
