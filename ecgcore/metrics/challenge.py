"""The CinC 2020/2021 challenge metric, with the official scored classes and weight matrices.

The tables ship as package data (ecgcore/tables/, BSD 2-Clause, see
LICENSE.txt there): weights.csv is the reward matrix over the scored
classes. In 2021 a header entry "a|b" is one class made of equivalent codes;
the 2020 matrix lists every code and gives equivalent codes identical rows
and columns, so they are merged here into the first code's class
(713427006|59118001, 284470004|63593006, 427172004|17338001): 27 codes ->
24 classes in 2020, 30 codes -> 26 classes in 2021. Codes outside the
scored classes are ignored.

The metric follows the challenges' evaluation code: for each recording,
every pair (scored label l, predicted class p) adds 1 / max(1, |labels
union outputs|) to A[l, p]; the raw score is sum(weights * A); it is
normalised to 0 for the classifier that only ever outputs sinus rhythm
(426783006) and 1 for the perfect one.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ecgcore.errors import DataError

SINUS_RHYTHM = "426783006"
EQUIVALENT_2020 = (("713427006", "59118001"), ("284470004", "63593006"), ("427172004", "17338001"))


@dataclass(frozen=True)
class Edition:
    """What differs between the two editions' evaluations, besides their tables."""

    equivalents: tuple[tuple[str, str], ...] = ()  # code pairs the weight table lists apart but scores as one
    beta_measures: bool = False  # the evaluation also reports F-beta and G-beta (beta 2)


# 2020's weights.csv lists every code (equivalents with identical rows) and its evaluation reported
# F-beta/G-beta; 2021's table writes a merged class as "a|b" and dropped those two measures.
EDITIONS = {2020: Edition(EQUIVALENT_2020, beta_measures=True), 2021: Edition()}
YEARS = tuple(EDITIONS)


@dataclass(frozen=True)
class ScoredClasses:
    year: int
    codes: tuple[tuple[str, ...], ...]  # per class, its SNOMED CT codes (equivalents merged)
    weights: np.ndarray  # (classes, classes) reward matrix
    abbreviations: tuple[str, ...] = ()  # per class, e.g. "AF", "CRBBB|RBBB" (dx_mapping_scored.csv)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple("|".join(c) for c in self.codes)

    @property
    def sinus(self) -> int:
        return self._index[SINUS_RHYTHM]

    def index_of(self, code: str) -> int | None:
        return self._index.get(code.strip())

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {code: i for i, codes in enumerate(self.codes) for code in codes}

    def encode(self, code_lists) -> np.ndarray:
        """(records, classes) bool matrix from each record's codes; unscored codes are dropped."""
        out = np.zeros((len(code_lists), len(self.codes)), dtype=bool)
        for i, codes in enumerate(code_lists):
            for code in codes:
                j = self.index_of(str(code))
                if j is not None:
                    out[i, j] = True
        return out


def read_weights(text: str, where: str) -> tuple[list[str], np.ndarray]:
    rows = [[cell.strip() for cell in row] for row in csv.reader(text.splitlines()) if row]
    header = [h for h in rows[0][1:] if h]
    matrix = np.array([[float(v) for v in row[1:len(header) + 1]] for row in rows[1:]], dtype=np.float64)
    if matrix.shape != (len(header), len(header)) or [r[0] for r in rows[1:]] != header:
        raise DataError(f"{where}: not a square weight matrix with matching row and column codes")
    return header, matrix


@functools.cache
def scored_classes(year: int) -> ScoredClasses:
    if year not in YEARS:
        raise DataError(f"no challenge tables for {year}; known years: {', '.join(map(str, YEARS))}")
    where = f"ecgcore/tables/cinc{year}/weights.csv"
    text = resources.files("ecgcore").joinpath("tables", f"cinc{year}", "weights.csv").read_text()
    header, matrix = read_weights(text, where)
    codes = [tuple(h.split("|")) for h in header]
    if EDITIONS[year].equivalents:
        codes, matrix = _merge_equivalents(codes, matrix, EDITIONS[year].equivalents, where)
    abbrev = _abbreviations(year)
    names = tuple("|".join(dict.fromkeys(abbrev.get(c, c) for c in group)) for group in codes)
    return ScoredClasses(year, tuple(codes), matrix, names)


def _abbreviations(year: int) -> dict[str, str]:
    """SNOMED CT code -> the challenge's abbreviation (AF, SNR, ...)."""
    text = resources.files("ecgcore").joinpath("tables", f"cinc{year}", "dx_mapping_scored.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    return {row[1].strip(): row[2].strip() for row in rows[1:] if len(row) > 2}


def _merge_equivalents(codes, matrix, equivalents, where):
    keep = list(range(len(codes)))
    flat = [c[0] for c in codes]
    for first, second in equivalents:
        i, j = flat.index(first), flat.index(second)
        if not (np.array_equal(matrix[i], matrix[j]) and np.array_equal(matrix[:, i], matrix[:, j])):
            raise DataError(f"{where}: equivalent codes {first} and {second} have different weights")
        codes[i] = (first, second)
        keep.remove(j)
    return [codes[k] for k in keep], matrix[np.ix_(keep, keep)]


def modified_confusion(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """A[l, p]: per recording, 1/|labels union outputs| for every (label, output) pair."""
    labels, outputs = labels.astype(np.float64), outputs.astype(np.float64)
    norm = np.maximum(np.logical_or(labels, outputs).sum(axis=1), 1.0)
    return (labels / norm[:, None]).T @ outputs


def challenge_score(labels: np.ndarray, outputs: np.ndarray, classes: ScoredClasses) -> float:
    """The normalised challenge metric of binary labels and outputs, (records, classes) each."""
    sinus = classes.index_of(SINUS_RHYTHM)
    observed = float(np.sum(classes.weights * modified_confusion(labels, outputs)))
    correct = float(np.sum(classes.weights * modified_confusion(labels, labels)))
    inactive_outputs = np.zeros_like(labels, dtype=bool)
    inactive_outputs[:, sinus] = True
    inactive = float(np.sum(classes.weights * modified_confusion(labels, inactive_outputs)))
    if correct == inactive:
        return 0.0  # as the official code: no recording to tell the two apart
    return (observed - inactive) / (correct - inactive)


def accuracy(labels: np.ndarray, outputs: np.ndarray) -> float:
    """Fraction of recordings whose whole set of outputs equals their labels."""
    return float(np.mean(np.all(labels == outputs, axis=1))) if len(labels) else float("nan")


def class_f1(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2TP / (2TP + FP + FN); NaN for a class never present and never output."""
    tp = np.sum(labels & outputs, axis=0)
    fp = np.sum(~labels & outputs, axis=0)
    fn = np.sum(labels & ~outputs, axis=0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def f_measure(labels: np.ndarray, outputs: np.ndarray) -> float:
    """Macro F-measure over the classes where it is defined."""
    return _nanmean(class_f1(labels, outputs))


def beta_measures(labels: np.ndarray, outputs: np.ndarray, beta: float = 2.0) -> tuple[float, float]:
    """2020's macro F-beta and G-beta, from confusion counts weighted 1 / (labels of the recording)."""
    weight = 1.0 / np.maximum(labels.sum(axis=1), 1)[:, None]
    tp = np.sum((labels & outputs) * weight, axis=0)
    fp = np.sum((~labels & outputs) * weight, axis=0)
    fn = np.sum((labels & ~outputs) * weight, axis=0)
    f_den = (1 + beta ** 2) * tp + fp + beta ** 2 * fn
    g_den = tp + fp + beta * fn
    f_beta = np.where(f_den > 0, (1 + beta ** 2) * tp / np.where(f_den > 0, f_den, 1), np.nan)
    g_beta = np.where(g_den > 0, tp / np.where(g_den > 0, g_den, 1), np.nan)
    return _nanmean(f_beta), _nanmean(g_beta)


def auroc_auprc(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """Macro AUROC (ties count one half) and AUPRC (step-wise, as the challenge code) over defined classes."""
    aurocs, auprcs = [], []
    for k in range(labels.shape[1]):
        y, p = labels[:, k].astype(bool), probs[:, k]
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0:
            aurocs.append(np.nan)
            auprcs.append(np.nan)
            continue
        if n_neg:
            greater = (p[y][:, None] > p[~y][None, :]).sum() + 0.5 * (p[y][:, None] == p[~y][None, :]).sum()
            aurocs.append(greater / (n_pos * n_neg))
        else:
            aurocs.append(np.nan)
        thresholds = np.unique(p)[::-1]
        tp = np.array([np.sum(y & (p >= t)) for t in thresholds])
        predicted = np.array([np.sum(p >= t) for t in thresholds])
        recall = np.concatenate([[0.0], tp / n_pos])
        auprcs.append(float(np.sum(np.diff(recall) * tp / predicted)))
    return _nanmean(np.array(aurocs)), _nanmean(np.array(auprcs))


def tune_thresholds(labels: np.ndarray, probs: np.ndarray, classes: ScoredClasses,
                    grid: np.ndarray | None = None, rounds: int = 3) -> np.ndarray:
    """Per-class thresholds that maximise the challenge metric, by coordinate search over a grid.

    Starts at 0.5 everywhere; each round tries every grid value for one class
    at a time, keeping the others, and stops when a round changes nothing.
    """
    grid = np.linspace(0.05, 0.95, 19) if grid is None else np.asarray(grid)
    thresholds = np.full(labels.shape[1], 0.5)
    best = challenge_score(labels, probs >= thresholds, classes)
    for _ in range(rounds):
        changed = False
        for k in range(labels.shape[1]):
            for t in grid:
                trial = thresholds.copy()
                trial[k] = t
                score = challenge_score(labels, probs >= trial, classes)
                if score > best + 1e-12:
                    best, thresholds, changed = score, trial, True
        if not changed:
            break
    return thresholds


def challenge_metrics(labels: np.ndarray, binary: np.ndarray, probs: np.ndarray, classes: ScoredClasses) -> dict:
    """Every metric of the year's evaluation: the challenge metric, AUROC, AUPRC, accuracy, F-measure
    (and F-beta, G-beta with beta 2 for 2020)."""
    auroc, auprc = auroc_auprc(labels, probs)
    out = {"challenge_metric": challenge_score(labels, binary, classes), "auroc": auroc, "auprc": auprc,
           "accuracy": accuracy(labels, binary), "f_measure": f_measure(labels, binary)}
    if EDITIONS[classes.year].beta_measures:
        out["f_beta"], out["g_beta"] = beta_measures(labels, binary, 2.0)
    return out


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")
