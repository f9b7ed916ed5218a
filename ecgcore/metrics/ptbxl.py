"""The PTB-XL benchmark's scores: macro AUC and the sample-centric Fmax.

Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights
from PTB-XL", IEEE JBHI 25(5), 2021, rank models on every PTB-XL task by the
macro-averaged ROC AUC over classes (sklearn's `roc_auc_score(...,
average='macro')` in github.com/helme/ecg_ptbxl_benchmarking
`code/utils/utils.py` `evaluate_experiment`). The arXiv version of the paper
(2004.13701) and that repository's first release also report Fmax, the
sample-centric maximum F1 over thresholds used in protein function prediction
(CAFA: Radivojac et al., Nat Methods 10:221, 2013), computed by `F_max` /
`eval_prrc_parallel` in the same file until commit 6f566dc removed it.

Inputs are `targets` (records x classes, bool) and `probs` (records x
classes, float in [0, 1]). A class whose targets hold one value only has no
AUC; it is skipped rather than failing, because bootstrap resamples and small
test sets produce such classes (the benchmark instead redraws resamples until
every class has a positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ecgcore.metrics.bootstrap import fmax as weighted_fmax

# F_max's thresholds: np.arange(0.00, 1.01, 1/100), kept in the benchmark's own float spelling.
FMAX_THRESHOLDS = np.arange(0.00, 1.01, 0.01)


def _checked(targets, probs) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(targets, dtype=bool), np.asarray(probs, dtype=float)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"targets {y.shape} and probs {p.shape} must be the same (records, classes) shape")
    return y, p


def class_auc(targets, probs) -> np.ndarray:
    """Per class ROC AUC (sklearn's roc_auc_score); NaN for a class with only positives or only negatives."""
    from sklearn.metrics import roc_auc_score  # here: importing sklearn costs a light caller half a second

    y, p = _checked(targets, probs)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        if 0 < y[:, c].sum() < len(y):
            out[c] = roc_auc_score(y[:, c], p[:, c])
    return out


def macro_auc(targets, probs) -> float:
    """The benchmark's score: mean AUC over the classes that have one (NaN if none has).

    With every class defined this equals roc_auc_score(targets, probs, average='macro').
    """
    return mean_defined(class_auc(targets, probs))


def mean_defined(values: np.ndarray) -> float:
    """The mean of the per-class values that are defined (not NaN); NaN if none is."""
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan


def fmax(targets, probs) -> float:
    """Sample-centric Fmax: max over thresholds t = 0.00, 0.01, ..., 1.00 of 2 P(t) R(t) / (P(t) + R(t)).

    As the benchmark's F_max (after the CAFA assessment tool): at threshold t a class is predicted
    when its probability is >= t; P(t) is the precision TP / predicted averaged over the records
    that have at least one prediction, R(t) the recall TP / positives averaged over the records.
    Thresholds at which no record has a prediction are skipped; NaN if all are.
    Deviations, both outside the benchmark's domain: recall is averaged over the records with at
    least one positive (the benchmark averages over all records, which all have one after its
    select_data), and P = R = 0 counts as F = 0 instead of NaN.
    """
    y, p = _checked(targets, probs)
    # The bootstrap's weighted Fmax with every record weighted 1: one implementation for both.
    return float(weighted_fmax(y, p, np.ones((1, len(y))), FMAX_THRESHOLDS)[0])


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def report(targets, probs, classes: Sequence[str] | None = None) -> dict:
    """The benchmark's scores as a JSON-ready dict; NaN becomes None. Classes default to "0", "1", ..."""
    y, p = _checked(targets, probs)
    names = [str(c) for c in (range(y.shape[1]) if classes is None else classes)]
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} class names for {y.shape[1]} columns")
    per_class = class_auc(y, p)
    score = _json_number(mean_defined(per_class))
    return {
        "score": score,
        "macro_auc": score,
        "fmax": _json_number(fmax(y, p)),
        "auc": {name: _json_number(v) for name, v in zip(names, per_class, strict=True)},
        "positives": {name: int(n) for name, n in zip(names, y.sum(axis=0), strict=True)},
        "n": int(len(y)),
    }
