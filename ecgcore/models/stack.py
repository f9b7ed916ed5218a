"""Stack: a stacker over the models of finished jobs, fitted on their out-of-fold outputs only.

The model file names N >= 2 finished jobs of one split and dataset
(`parts`, each "<architecture>/<job>" under the log folder, as `init_from`
names one): networks, FeatureGBMs, HybridStacks with the trees stacker, in
any mix. Fold k of the stack takes fold k of every part, and a stacker learns
from the parts' class log-probabilities (clipped at LOG_FLOOR, as
ecgcore.models.hybrid does), with the engineered features of
ecgcore.features.extract beside them when `features` is set:

- "logistic": a multinomial logistic regression (scikit-learn, C =
  stacker_c), kept as an nn.Linear; the features' missing values are imputed
  with the stacker's training medians and the features standardised (buffers
  `fill`, `center`, `scale`; the log-probabilities pass unchanged).
- "trees": LightGBM multiclass with small trees (num_leaves, learning_rate,
  min_child_samples), missing features routed by the trees; its number of
  rounds is chosen by a stratified inner cross-validation on the stacker's
  training records, then it is refitted on all of them.

The out-of-fold rule: the stacker of fold k is fitted on fold k's validation
records, on which no part's fold-k model trained (they only chose its best
epoch or early-stopping round). A part whose fold-k model was itself fitted
on those records is refused (`part_refusal`). Fitting is
ecgcore.training.stack (trainer "stack").

The parts' resolved model configs (`models`, in the order of `parts`) are
read from their fold folders when the stack is submitted and saved inline in
the stack's model.json, so a Stack fold rebuilds from its own folder:
best_model.pt holds every part's weights and the stacker. The input is the
record itself (kind "signal", no preprocessing of its own): forward runs
each part's own pipeline and network on it (ecgcore.inference.predict_proba),
then the stacker, so `predict` and fold ensembles take a folder of records as
for any model. forward goes through numpy and is for inference only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ecgcore.config.model import DataAugmentation, ModelConfig, Preprocessing, spec
from ecgcore.errors import ProjectError
from ecgcore.inference import predict_proba
from ecgcore.models import InputSpec, create_model, register
from ecgcore.models.booster import BoostedTrees, FeatureGBMParams
from ecgcore.models.hybrid import HybridStackParams, log_probs
from ecgcore.tracks import logged_track_name

STACKERS = ("logistic", "trees")
FEATURES = "features"  # the part name under which the driver prepares the stacker's engineered features
# The input of the engineered features: a FeatureGBM's, so the driver's cache of them is shared with any FeatureGBM.
FEATURES_MODEL = ModelConfig(model_name="FeatureGBM", model_parameters=FeatureGBMParams(),
                             preprocessing=Preprocessing(spectrogram=False),
                             data_augmentation=DataAugmentation(resampling=False, zero_filter=False))


@dataclass(frozen=True)
class StackParams:
    parts: tuple[str, ...] = spec(None, "the stacked jobs, each '<architecture>/<job>' under the log folder (fold k "
                                        "of each is fold k's part); at least 2", required=True)
    stacker: str = spec("logistic", "logistic: multinomial logistic regression (scikit-learn); trees: LightGBM "
                                    "multiclass, rounds chosen by inner cross-validation", choices=STACKERS)
    features: bool = spec(False, "also give the stacker the engineered features (ecgcore.features.extract)")
    stacker_c: float = spec(1.0, "logistic stacker: inverse L2 penalty (scikit-learn's C)", min=1e-6)
    num_leaves: int = spec(7, "trees stacker: leaves per tree", min=2)
    learning_rate: float = spec(0.05, "trees stacker: shrinkage", min=1e-4, max=1.0)
    min_child_samples: int = spec(10, "trees stacker: records at least in a leaf", min=1)
    max_rounds: int = spec(1000, "trees stacker: boosting rounds at most", min=1)
    early_stop_wait: int = spec(50, "trees stacker: inner cross-validation rounds without a lower log-loss before "
                                    "it stops", min=1)
    inner_folds: int = spec(5, "trees stacker: stratified folds of the inner cross-validation", min=2)
    models: tuple[ModelConfig, ...] = spec((), "the parts' model configs, in the order of parts: read from their fold "
                                               "folders when the stack is submitted, written inline in a fold's "
                                               "model.json (never in a model file)", nonempty=False)

    def part_models(self) -> dict[str, ModelConfig]:
        """The configs the driver prepares the dataset for, by part name (the parts' once resolved, the features')."""
        parts = dict(zip(self.parts, self.models, strict=False))  # models are empty until submit resolves them
        return {**parts, FEATURES: FEATURES_MODEL} if self.features else parts


def part_jobs(model: ModelConfig) -> tuple[str, ...]:
    """The '<architecture>/<job>' parts of a Stack, () for any other model."""
    p = model.model_parameters
    return p.parts if isinstance(p, StackParams) else ()


def with_models(model: ModelConfig, models: tuple[ModelConfig, ...]) -> ModelConfig:
    """The Stack's config with its parts' resolved model configs."""
    return replace(model, model_parameters=replace(model.model_parameters, models=tuple(models)))


def part_refusal(model: ModelConfig) -> str | None:
    """Why a job of this model cannot be a Stack's part (its fold-k model was fitted on fold k's validation
    records, where the stack's stacker is fitted), or None."""
    p = model.model_parameters
    if isinstance(p, StackParams):
        return "it is a Stack: its stacker was fitted on the validation records this stack is fitted on"
    if isinstance(p, HybridStackParams) and p.stacker == "logistic":
        return ("its logistic stacker was fitted on the validation records this stack is fitted on (a HybridStack "
                "with stacker 'trees' may be a part)")
    return None


def fold_refusal(task, scores: dict) -> str | None:
    """Why a finished part fold (its scores.json) does not fit the stack's task, or None: the same kind, split,
    fold, dataset and track, so that the part's fold-k model never trained on fold k's validation or test records."""
    if scores.get("kind", "classify") != "classify":
        return f"a {scores['kind']} fold, not a classifier"
    if scores.get("split") != task.split:
        return (f"trained on split {scores.get('split')}, this stack runs {task.split}: the stack would be fitted "
                "or tested on records the part trained on")
    if scores.get("fold") != task.fold:
        return f"its scores.json is of fold {scores.get('fold')}, not {task.fold}"
    if scores.get("data_dir") != task.data_dir:
        return f"trained on dataset {scores.get('data_dir')}, this stack's is {task.data_dir}"
    if logged_track_name(scores.get) != task.track:
        return f"of track {logged_track_name(scores.get)}, this stack's is {task.track}"
    return None


class Stack(nn.Module):
    """forward(x (batch, leads, samples) raw records, lengths) -> stacked class log-probabilities."""

    def __init__(self, p: StackParams, inputs: InputSpec, n_classes: int):
        super().__init__()
        from ecgcore.data.pipeline import Pipeline  # data imports the registry this module fills

        if len(p.models) != len(p.parts):
            raise ProjectError(f"Stack of {', '.join(p.parts)}: the parts' model configs are not resolved (submit "
                               "reads them from the parts' fold folders)")
        self.kind, self.n_classes, self.fs = p.stacker, n_classes, inputs.fs
        self.pipelines = [Pipeline(m, inputs.fs, inputs.n_leads) for m in p.models]
        self.parts = nn.ModuleList(create_model(m, pipe.inputs, n_classes)
                                   for m, pipe in zip(p.models, self.pipelines, strict=True))
        self.features_pipeline = Pipeline(FEATURES_MODEL, inputs.fs, inputs.n_leads) if p.features else None
        n_in = len(p.parts) * n_classes + (self.features_pipeline.inputs.n_features if p.features else 0)
        if p.stacker == "trees":
            self.stacker = BoostedTrees(n_classes, n_in)
        else:
            self.stacker = nn.Linear(n_in, n_classes)
            self.register_buffer("fill", torch.zeros(n_in, dtype=torch.float64))
            self.register_buffer("center", torch.zeros(n_in, dtype=torch.float64))
            self.register_buffer("scale", torch.ones(n_in, dtype=torch.float64))

    @staticmethod
    def stacker_inputs(part_probs: list[np.ndarray], features: np.ndarray | None) -> np.ndarray:
        """(records, parts x classes [+ features]): each part's clipped log-probabilities, then the features."""
        return np.concatenate([*(log_probs(p) for p in part_probs), *(() if features is None else (features,))],
                              axis=1)

    def combine(self, x: np.ndarray) -> np.ndarray:
        """Stacked class probabilities of stacker inputs."""
        if self.kind == "trees":
            return np.exp(self.stacker(torch.from_numpy(x)).double().numpy())
        x = np.where(np.isnan(x), self.fill.cpu().numpy(), x)
        x = (x - self.center.cpu().numpy()) / self.scale.cpu().numpy()
        with torch.no_grad():
            logits = self.stacker(torch.from_numpy(x).float().to(self.stacker.weight.device))
        return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def features(self, records: list[np.ndarray]) -> np.ndarray:
        """(records, features) of raw records, as the driver prepares them for a FeatureGBM."""
        return np.stack([self.features_pipeline.prepare(x, self.fs)[:, 0] for x in records]).astype(np.float64)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        records = [x[i, :, :int(n)].cpu().numpy() for i, n in enumerate(lengths)]
        part_probs = []
        for net, pipeline in zip(self.parts, self.pipelines, strict=True):
            items = pipeline.eval_items([pipeline.prepare(r, self.fs) for r in records])
            part_probs.append(predict_proba(net, pipeline, items, items.owners, len(records), x.device))
        features = None if self.features_pipeline is None else self.features(records)
        probs = self.combine(self.stacker_inputs(part_probs, features))
        return torch.log(torch.from_numpy(probs).clamp_min(1e-12)).to(device=x.device, dtype=torch.float32)


@register("Stack", params=StackParams, input="signal", trainer="stack")
def build_stack(p: StackParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return Stack(p, inputs, n_classes)
