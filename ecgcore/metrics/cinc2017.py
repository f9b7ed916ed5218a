"""Single-label scoring (CinC 2017 and a labels file's classes): confusion matrix, per-class F1 and the official score.

Per-class F1 = 2TP / (2TP + FP + FN) from the 4x4 confusion matrix (rows:
reference, columns: prediction). The official score is (F1_N + F1_A + F1_O)/3:
the noise class is in the matrix (its errors cost the other classes) but not
in the average. A class that never occurs and is never predicted has F1 = 0
(2TP + FP + FN = 0), reported as such rather than hidden.
"""

from __future__ import annotations

import numpy as np

from ecgcore.io.cinc2017 import CLASSES

SCORED = ("N", "A", "O")


def confusion_matrix(labels, predictions, n_classes: int = len(CLASSES)) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.shape[0]} labels but {predictions.shape[0]} predictions")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def f1_per_class(matrix: np.ndarray) -> np.ndarray:
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def official_score(matrix: np.ndarray, classes: tuple[str, ...] = CLASSES, scored: tuple[str, ...] = SCORED) -> float:
    """(F1_N + F1_A + F1_O) / 3; with other classes, the mean F1 over the scored ones (a labels file's track)."""
    f1 = f1_per_class(matrix)
    return float(np.mean([f1[classes.index(c)] for c in scored]))


def accuracy(matrix: np.ndarray) -> float:
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def score_report(labels, predictions, classes: tuple[str, ...] = CLASSES, scored: tuple[str, ...] = SCORED) -> dict:
    """Everything scores.json keeps about one set of predictions (single-label: any classes, scored subset)."""
    matrix = confusion_matrix(labels, predictions, len(classes))
    f1 = f1_per_class(matrix)
    return {
        "score": official_score(matrix, classes, scored),
        "accuracy": accuracy(matrix),
        "f1": {c: float(v) for c, v in zip(classes, f1, strict=False)},
        "confusion": matrix.tolist(),
        "n": int(matrix.sum()),
    }
