"""FeatureGBM: gradient-boosted trees on engineered per-record features (the CinC 2017 winners' family).

The input kind is "features": preprocessing turns each record into the
vector of ecgcore.features.extract once, when the dataset is prepared, and a batch is
(batch, n_features) with NaN where a feature could not be computed (the
booster routes missing values itself). The trees are LightGBM's; the
network-shaped wrapper, `BoostedTrees`, lets a booster go through everything
a neural network goes through: its state dict (the model text as a uint8
buffer) is best_model.pt, `forward` returns log-probabilities so the
softmax in prediction, fold ensembles and `predict` gives the booster's own
probabilities. Training is ecgcore.training.boosting, not the epoch loop
(Architecture.trainer == "boosting").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ecgcore.config.model import spec
from ecgcore.models import InputSpec, register


@dataclass(frozen=True)
class FeatureGBMParams:
    num_leaves: int = spec(31, "leaves per tree", min=2)
    max_depth: int = spec(-1, "depth limit of a tree (-1: none, the leaves limit it)", min=-1)
    min_child_samples: int = spec(20, "records at least in a leaf", min=1)
    feature_fraction: float = spec(0.8, "fraction of the features each tree may split on", min=0.05, max=1.0)
    bagging_fraction: float = spec(0.8, "fraction of the records each tree is fitted on", min=0.05, max=1.0)
    lambda_l2: float = spec(1.0, "L2 penalty on leaf values", min=0.0)


class BoostedTrees(nn.Module):
    """A LightGBM multi-class booster as a module: forward(x (batch, features), lengths) -> log-probabilities."""

    def __init__(self, n_classes: int, n_features: int):
        super().__init__()
        self.n_classes, self.n_features = n_classes, n_features
        self.register_buffer("booster_text", torch.zeros(0, dtype=torch.uint8))
        self._booster = None

    def set_booster(self, model_text: str) -> None:
        """Take a booster's model text (LightGBM's Booster.model_to_string)."""
        self.booster_text = torch.frombuffer(bytearray(model_text.encode()), dtype=torch.uint8)
        self._booster = None

    @property
    def booster(self):
        if self._booster is None:
            if self.booster_text.numel() == 0:
                raise RuntimeError("this FeatureGBM has no trees yet (untrained)")
            import lightgbm

            self._booster = lightgbm.Booster(model_str=bytes(self.booster_text.tolist()).decode())
        return self._booster

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The buffer's length is the model text's: take the saved one whatever its size.
        key = prefix + "booster_text"
        if key in state_dict:
            self.set_booster(bytes(state_dict[key].tolist()).decode())
            state_dict = {k: v for k, v in state_dict.items() if k != key}
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if key in missing_keys:
            missing_keys.remove(key)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        probs = self.booster.predict(x.detach().cpu().numpy().astype(np.float64))
        probs = np.asarray(probs).reshape(x.shape[0], self.n_classes)
        return torch.log(torch.from_numpy(probs).clamp_min(1e-12)).to(device=x.device, dtype=torch.float32)


@register("FeatureGBM", params=FeatureGBMParams, input="features", trainer="boosting")
def build_feature_gbm(p: FeatureGBMParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    return BoostedTrees(n_classes, inputs.n_features)
