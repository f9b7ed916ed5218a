"""Typed model configuration: the sections of a models/*.json file.

Each section is a frozen dataclass whose defaults are the one place a default
is declared. Field metadata carries the bounds the loader checks ("min",
"max", "choices", "length") and a one-line help text. The keys of the
reference repository keep their names and meaning, so its model files load
unchanged; everything added since (optimisers, schedules, augmentations,
windows, pre-training) defaults to off or to the reference's behaviour. Each section is `documented` on the model file's
reference page (docs/reference/model-file.md) under its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecgcore.config.schema import documented

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LOSSES = ("auto", "cross_entropy", "bce", "weighted_bce", "confusion_bce", "challenge")


def spec(default: Any, help: str, **bounds: Any) -> Any:
    """A dataclass field with a default, a help text and optional bounds."""
    return field(default=default, metadata={"help": help, **bounds})


@documented("model-file.md", "preprocessing")
@dataclass(frozen=True)
class Preprocessing:
    spectrogram: bool = spec(True, "feed a log spectrogram; must match the architecture's input kind")
    nperseg: int = spec(64, "spectrogram window length in samples", min=8)
    noverlap: int = spec(32, "spectrogram window overlap in samples", min=0)
    fs: float | None = spec(None, "resample every record to this rate in Hz (null: keep the native rate)",
                            min=1.0)
    window: int | None = spec(None, "fixed input length in samples at fs: training draws a random window "
                                    "per record, evaluation averages windows over the record", min=16)
    window_stride: int | None = spec(None, "step between evaluation windows (null: window // 2)", min=1)
    standardize: bool = spec(False, "scale each lead of each record to zero mean, unit variance")
    bandpass: tuple[float, ...] | None = spec(None, "[low, high] Hz: zero-phase order-3 Butterworth band-pass "
                                                    "of every record (null: none)", length=2, min=0.0)
    notch: float | None = spec(None, "remove this mains frequency (50 or 60 Hz) with a zero-phase notch",
                               min=1.0)
    leads: tuple[str, ...] | None = spec(None, "12-lead data: use these leads, by name, in this order (2021's "
                                               "subsets: 6 = I II III aVR aVL aVF, 4 = I II III V2, "
                                               "3 = I II V2, 2 = I II; null: every lead)",
                                         choices=STANDARD_LEADS)


@documented("model-file.md", "loss_function_parameters")
@dataclass(frozen=True)
class LossFunctionParameters:
    l2_penalty: float = spec(0.0, "weight of 0.5*sum(w^2) over conv/dense/LSTM weights", min=0.0)
    class_penalty: float = spec(
        0.2, "c in the class weight (1-c) + c*100/class_percent", min=0.0, max=1.0)
    label_smoothing: float = spec(0.0, "label smoothing of the cross-entropy targets", min=0.0, max=0.5)
    loss: str = spec("auto", "cross_entropy (CinC 2017); for the multi-label 2020/2021 track bce, weighted_bce "
                             "(positive weight (1-c) + c*negatives/positives, c = class_penalty), "
                             "confusion_bce (DSAIL_SNU) or challenge (BUT, differentiable challenge metric); "
                             "auto: cross_entropy for 2017, bce for 2020/2021", choices=LOSSES)


@documented("model-file.md", "training_parameters")
@dataclass(frozen=True)
class TrainingParameters:
    learning_rate: float = spec(0.001, "peak learning rate", min=0.0)
    batch_size: int = spec(20, "records per batch", min=1)
    drop_rate: float = spec(0.15, "dropout rate", min=0.0, max=0.95)
    exponential_decay: bool = spec(False, "multiply the learning rate by decay_rate every step")
    dataset_compensation: float = spec(
        0.2, "oversampling: class copies int(100*f/class_percent)+1", min=0.0)
    validation_step: int = spec(5, "validate every this many epochs", min=1)
    early_stop_wait: int = spec(100, "stop after this many epochs without a better valid score", min=1)
    max_epochs: int = spec(500, "training epochs at most (the reference's CNN ran 500)", min=1)
    seed: int = spec(0, "seed of weight init, batching and augmentation (the fold id is mixed in)", min=0)
    optimizer: str = spec("adam", "adam, adamw (decoupled decay, none on norms and biases) or radam",
                          choices=("adam", "adamw", "radam"))
    weight_decay: float = spec(0.0, "weight decay (never applied to norm layers and biases)", min=0.0)
    schedule: str = spec("constant", "learning-rate schedule after warm-up",
                         choices=("constant", "exponential", "step", "cosine"))
    decay_rate: float = spec(0.9999, "per-step factor of the exponential schedule", min=0.0, max=1.0)
    step_epochs: int = spec(30, "step schedule: epochs between drops", min=1)
    step_gamma: float = spec(0.1, "step schedule: factor at each drop", min=0.0, max=1.0)
    warmup_epochs: int = spec(0, "linear warm-up from 0 to learning_rate over this many epochs", min=0)
    mixup: float = spec(0.0, "mixup Beta(a, a) parameter a (0: off)", min=0.0)
    grad_clip: float = spec(0.0, "clip the gradient norm to this value (0: off)", min=0.0)
    amp: bool = spec(False, "mixed precision: float16 with loss scaling on CUDA, bfloat16 on CPU")


@documented("model-file.md", "data_augmentation")
@dataclass(frozen=True)
class DataAugmentation:
    resampling: bool = spec(True, "random time stretch by a factor in [2/3, 4/3)")
    resample_method: str = spec("random", "how the stretch factor is drawn", choices=("random",))
    zero_filter: bool = spec(True, "zero random short bursts of samples")
    reload_step: int = spec(5, "draw new augmentations every this many epochs", min=1)
    awgn: bool = spec(False, "add white Gaussian noise")
    awgn_snr: float = spec(3.0, "linear signal-to-noise power ratio of that noise", min=0.01)
    probability: float = spec(1.0, "chance that each enabled augmentation is applied to a record",
                              min=0.0, max=1.0)
    scaling: float = spec(0.0, "std of a random gain around 1 (0: off)", min=0.0, max=1.0)
    sample_drop: float = spec(0.0, "fraction of single samples set to zero (0: off)", min=0.0, max=0.5)
    cutout: float = spec(0.0, "length of one zeroed segment as a fraction of the record (0: off)",
                         min=0.0, max=0.5)
    time_shift: float = spec(0.0, "largest circular shift as a fraction of the record (0: off)",
                             min=0.0, max=1.0)
    piecewise_resampling: bool = spec(False, "stretch each of 2-6 pieces by its own factor in [0.8, 1.25]")
    baseline_sine: float = spec(0.0, "amplitude in mV of an added 0.05-0.5 Hz baseline sine (0: off)",
                                min=0.0)
    bandpass: bool = spec(False, "random band-pass: low cut 0.5-5 Hz, high cut 25-60 Hz (order 2)")


# The DataAugmentation fields that switch an augmentation on (the others only tune one).
AUGMENTATION_SWITCHES = ("resampling", "zero_filter", "awgn", "scaling", "sample_drop", "cutout", "time_shift",
                         "piecewise_resampling", "baseline_sine", "bandpass")


@documented("model-file.md", "pretraining")
@dataclass(frozen=True)
class Pretraining:
    objective: str = spec("masked", "masked: rebuild masked spans; forecast: predict the unseen tail",
                          choices=("masked", "forecast"))
    mask_fraction: float = spec(0.15, "masked: fraction of samples hidden", min=0.01, max=0.9)
    span: int = spec(40, "masked: samples per hidden span", min=1)
    forecast_fraction: float = spec(0.25, "forecast: fraction of the window at the end to predict",
                                    min=0.01, max=0.9)


@documented("model-file.md")
@dataclass(frozen=True)
class ModelConfig:
    """A whole model file; model_parameters is the architecture's own dataclass."""

    model_name: str = spec(None, "architecture, a key of the model registry", required=True)
    model_parameters: Any = spec(None, "the architecture's parameters", required=True)
    preprocessing: Preprocessing = spec(Preprocessing(), "input preprocessing")
    loss_function_parameters: LossFunctionParameters = spec(LossFunctionParameters(), "loss")
    training_parameters: TrainingParameters = spec(TrainingParameters(), "optimisation")
    data_augmentation: DataAugmentation = spec(DataAugmentation(), "training-set augmentation")
    pretraining: Pretraining = spec(Pretraining(), "objective when a job has kind 'pretrain'")
    init_from: str | None = spec(None, "fine-tune: start from '<architecture>/<job>' in the log folder "
                                       "(fold k from its fold k); the classifier head is not loaded")
