"""HybridStack: a deep signal network and the engineered-features booster, stacked (deep + features).

The model file names both parts, each a whole model config of its own (in a
model file, the name of another file in models/; in a saved, resolved
model.json, the config inline): `deep`, a network trained by the epoch loop
on its own preprocessing and inputs (e.g. CNN_cpu on spectrograms), and
`features`, a FeatureGBM on the features of ecgcore.features.extract. How their
outputs are combined is `stacker`:

- "logistic": a multinomial logistic regression over both parts' class
  log-probabilities, fitted on the validation fold, where both parts'
  outputs are out-of-sample (neither part trained on those records). The
  classic stacked generalisation (Wolpert 1992) over out-of-fold outputs.
- "trees": ENCASE-style (Hong et al., CinC 2017): the booster itself sees the
  deep part's class log-probabilities beside the engineered features and is
  fitted on the training records, as ENCASE fed its deep features to its
  GBDT; no separate stacker.

Fitting is ecgcore.training.stacking (Architecture.trainer == "stacking"). The input
is the record itself (kind "signal", no preprocessing of its own): forward
runs each part's own preprocessing on it, so `predict`, fold ensembles and
the fold's scores see the exact inputs training saw. forward goes through
numpy (the features, the booster) and is for inference; the deep part is
trained on its own, before stacking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ecgcore.config.model import ModelConfig, spec
from ecgcore.inference import predict_proba
from ecgcore.models import InputSpec, create_model, register

STACKERS = ("logistic", "trees")
LOG_FLOOR = 1e-6  # probabilities are clipped here before the log: one confident part must not dominate by -inf


@dataclass(frozen=True)
class HybridStackParams:
    deep: ModelConfig = spec(None, "the deep part: a model file in models/ (a network trained by epochs)",
                             required=True)
    features: ModelConfig = spec(None, "the features part: a FeatureGBM model file in models/", required=True)
    stacker: str = spec("logistic", "logistic: a logistic regression over both parts' log-probabilities, fitted "
                                    "on the validation fold; trees: the booster also sees the deep part's "
                                    "log-probabilities (ENCASE-style), fitted on the training records",
                        choices=STACKERS)
    stacker_c: float = spec(1.0, "logistic stacker: inverse L2 penalty (scikit-learn's C)", min=1e-6)

    def part_models(self) -> dict[str, ModelConfig]:
        """The configs the driver prepares the dataset for, by part name."""
        return {"deep": self.deep, "features": self.features}


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, LOG_FLOOR, 1.0))


class HybridStack(nn.Module):
    """forward(x (batch, 1, samples) raw records, lengths) -> stacked class log-probabilities."""

    def __init__(self, p: HybridStackParams, inputs: InputSpec, n_classes: int):
        super().__init__()
        from ecgcore.data.pipeline import Pipeline  # data imports the registry this module fills

        self.stacker_kind, self.n_classes, self.fs = p.stacker, n_classes, inputs.fs
        self.deep_pipeline = Pipeline(p.deep, inputs.fs, inputs.n_leads)
        self.features_pipeline = Pipeline(p.features, inputs.fs, inputs.n_leads)
        self.deep = create_model(p.deep, self.deep_pipeline.inputs, n_classes)
        extra = n_classes if p.stacker == "trees" else 0  # the booster's extra inputs: the deep log-probs
        self.booster = create_model(p.features, InputSpec("features", 1, inputs.fs, None, None,
                                                           self.features_pipeline.inputs.n_features + extra),
                                    n_classes)
        self.stacker = nn.Linear(2 * n_classes, n_classes)  # used by the logistic stacker only

    def part_inputs(self, records: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """Each part's prepared records: the deep part's signals, the (records, features) matrix."""
        deep = [self.deep_pipeline.prepare(x, self.fs) for x in records]
        feats = np.stack([self.features_pipeline.prepare(x, self.fs)[:, 0] for x in records]).astype(np.float64)
        return deep, feats

    def combine(self, deep_probs: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Stacked class probabilities from the deep part's probabilities and the features matrix."""
        deep_log = log_probs(deep_probs)
        if self.stacker_kind == "trees":
            booster_in = np.concatenate([feats, deep_log], axis=1)
            return np.exp(self.booster(torch.from_numpy(booster_in)).double().numpy())
        feat_log = self.booster(torch.from_numpy(feats)).double().numpy()
        with torch.no_grad():
            logits = self.stacker(torch.from_numpy(np.concatenate([deep_log, feat_log], axis=1)).float())
        return torch.softmax(logits.double(), dim=1).numpy()

    @torch.no_grad()
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        records = [x[i, :, :int(n)].cpu().numpy() for i, n in enumerate(lengths)]
        deep, feats = self.part_inputs(records)
        items = self.deep_pipeline.eval_items(deep)
        # the deep part is scored as any network is
        deep_probs = predict_proba(self.deep, self.deep_pipeline, items, items.owners, len(deep), x.device)
        probs = self.combine(deep_probs, feats)
        return torch.log(torch.from_numpy(probs).clamp_min(1e-12)).to(device=x.device, dtype=torch.float32)


@register("HybridStack", params=HybridStackParams, input="signal", trainer="stacking")
def build_hybrid_stack(p: HybridStackParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return HybridStack(p, inputs, n_classes)
