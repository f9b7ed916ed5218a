"""Bootstrap confidence intervals for the scores of a job's pooled test-fold predictions.

The scores of one cross-validation run are point estimates on a finite set of
records; this module says how far they could move with another draw of
records, for every track (single label: the mean F1 of the scored classes;
multi-label: the track's primary metric beside AUROC, AUPRC, F-measure and
accuracy), and whether one model beats another on the same records.

Design:
- The unit of resampling is the record: the rows of one record (its test
  predictions in the different CV repeats) are drawn together, since they are
  not independent evidence.
- A resample is a vector of integer counts per record and a row's weight is
  its record's count, so every metric is written as weighted sums and the B
  resamples are evaluated at once with numpy matrix products (the weighted
  metric with integer weights equals the unweighted one on duplicated rows).
- Resampling is stratified: within each stratum of n records, n are drawn
  with replacement, so stratum sizes are kept. The pool's track says what a
  stratum is (single label: the record's class; multi-label: the record's
  rarest positive class, records with no label forming their own stratum) and
  which metrics it reports; a multi-label resample in which a class with
  positives in the pool has no positive weight is redrawn, at most
  MAX_REDRAWS rounds, as in ecg_ptbxl_benchmarking (which redraws until every
  class is present).
- Intervals are percentile intervals (Efron & Tibshirani, An Introduction to
  the Bootstrap, 1993, ch. 13). paired_bootstrap applies the same counts to
  two models tested on the same records and gives the interval of the
  difference, which is far narrower than comparing two separate intervals.

Only numpy and the metric modules: a light CLI command imports this.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ecgcore.metrics.challenge import SINUS_RHYTHM

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
MAX_REDRAWS = 100
_CHUNK_CELLS = 1 << 24  # resamples x rows evaluated at once: bounds memory to ~130 MB of float64 weights


@dataclass(frozen=True)
class Pooled:
    """A job's pooled test-fold predictions: one row per (record, repeat) test prediction."""

    track: object  # the ecgcore.tracks track the job ran on: its metrics and strata
    classes: tuple[str, ...]  # class names in column order
    records: tuple[str, ...]  # per row, the record name (a record appears once per CV repeat)
    labels: np.ndarray  # single label: (rows,) int class index; multi-label: (rows, C) bool
    outputs: np.ndarray  # single label: (rows,) int predicted index; multi-label: (rows, C) bool (thresholded)
    probs: np.ndarray | None = None  # multi-label: (rows, C) float probabilities (AUROC/AUPRC); else may be None


@dataclass(frozen=True)
class Interval:
    point: float  # the metric on the pooled predictions (all weights 1)
    low: float
    high: float  # percentile interval bounds (NaN-aware: nanpercentile; NaN if all resamples NaN)


def metric_values(pooled: Pooled, row_weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric under each of B row-weight vectors, (B, rows) -> {name: (B,) values}."""
    weights = np.atleast_2d(np.asarray(row_weights, dtype=np.float64))
    if weights.shape[1] != len(pooled.records):
        raise ValueError(f"{weights.shape[1]} row weights for {len(pooled.records)} rows")
    return pooled.track.pooled_metrics(pooled, weights)


def point_metrics(pooled: Pooled) -> dict[str, float]:
    values = metric_values(pooled, np.ones((1, len(pooled.records))))
    return {name: float(v[0]) for name, v in values.items()}


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, empty), where=den != 0)


def single_label_metrics(pooled: Pooled, w: np.ndarray, scored: tuple[str, ...]) -> dict[str, np.ndarray]:
    """score (the mean F1 of the scored classes), F1 per class and accuracy of a single-label pool."""
    c = len(pooled.classes)
    missing = [name for name in scored if name not in pooled.classes]
    if missing:
        raise ValueError(f"pool without the scored classes {missing}: classes are {pooled.classes}")
    cells = np.asarray(pooled.labels, dtype=np.int64) * c + np.asarray(pooled.outputs, dtype=np.int64)
    onehot = np.zeros((len(cells), c * c))
    onehot[np.arange(len(cells)), cells] = 1.0
    matrix = (w @ onehot).reshape(-1, c, c)  # rows: reference, columns: prediction
    tp = np.diagonal(matrix, axis1=1, axis2=2)
    fp, fn = matrix.sum(axis=1) - tp, matrix.sum(axis=2) - tp
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, 0.0)  # 0 where undefined, as cinc2017.f1_per_class
    out = {"score": np.mean([f1[:, pooled.classes.index(name)] for name in scored], axis=0)}
    out.update({f"F1_{name}": f1[:, k] for k, name in enumerate(pooled.classes)})
    out["accuracy"] = _ratio(tp.sum(axis=1), matrix.sum(axis=(1, 2)), 0.0)
    return out


def multilabel_metrics(pooled: Pooled, w: np.ndarray, score) -> dict[str, np.ndarray]:
    """score(labels, outputs, probs, w) (the track's primary metric), AUROC, AUPRC, F-measure, accuracy and F1
    per class of a multi-label pool."""
    labels, outputs = np.asarray(pooled.labels, dtype=bool), np.asarray(pooled.outputs, dtype=bool)
    probs = None if pooled.probs is None else np.asarray(pooled.probs, dtype=np.float64)
    out = {"score": score(labels, outputs, probs, w)}
    if probs is not None:
        out["auroc"], out["auprc"] = _auroc_auprc(labels, probs, w)
    tp, fp, fn = (w @ (a & b).astype(np.float64) for a, b in ((labels, outputs), (~labels, outputs),
                                                              (labels, ~outputs)))
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, np.nan)
    out["f_measure"] = _row_nanmean(f1)
    out["accuracy"] = _ratio(w @ np.all(labels == outputs, axis=1), w.sum(axis=1), np.nan)
    out.update({f"F1_{name}": f1[:, k] for k, name in enumerate(pooled.classes)})
    return out


def _per_record_reward(labels: np.ndarray, outputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's share of sum(weights * modified_confusion): the metric is a sum over records."""
    norm = np.maximum(np.logical_or(labels, outputs).sum(axis=1), 1.0)
    return np.sum((labels @ weights) * outputs, axis=1) / norm


def challenge_score(labels, outputs, classes, w: np.ndarray) -> np.ndarray:
    """The CinC 2020/2021 challenge metric under each row-weight vector (classes: its ScoredClasses)."""
    inactive_outputs = np.zeros_like(labels)
    inactive_outputs[:, classes.index_of(SINUS_RHYTHM)] = True
    observed = _per_record_reward(labels, outputs, classes.weights)
    correct = _per_record_reward(labels, labels, classes.weights)
    inactive = _per_record_reward(labels, inactive_outputs, classes.weights)
    # Differences per record first, so a pool where perfect == always-sinus gives exactly 0 (score 0.0).
    return _ratio(w @ (observed - inactive), w @ (correct - inactive), 0.0)


def _row_nanmean(values: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=1), defined.sum(axis=1).astype(np.float64), np.nan)


def fmax(labels: np.ndarray, probs: np.ndarray, w: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The sample-centric Fmax of ecgcore.metrics.ptbxl.fmax under each row-weight vector: at each threshold,
    precision averaged over the rows with a prediction, recall over the rows with a positive."""
    labelled = labels.any(axis=1)
    positives = np.maximum(labels.sum(axis=1), 1)
    best = np.full(w.shape[0], np.nan)
    for t in thresholds:
        predicted = probs >= t
        n_pred = predicted.sum(axis=1)
        if not n_pred.any():
            continue
        tp = (predicted & labels).sum(axis=1)
        precision = _ratio(w @ np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0), w @ (n_pred > 0), np.nan)
        recall = _ratio(w @ np.where(labelled, tp / positives, 0.0), w @ labelled, np.nan)
        f = _ratio(2 * precision * recall, precision + recall, 0.0)
        best = np.where(np.isnan(best), f, np.fmax(best, f))
    return best


def macro_auroc(labels: np.ndarray, probs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The mean AUROC over the classes defined in each resample (a class needs a positive and a negative)."""
    return _auroc_auprc(labels, probs, w)[0]


def _auroc_auprc(labels: np.ndarray, probs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    aurocs, auprcs = zip(*(_class_auc(labels[:, k], probs[:, k], w) for k in range(labels.shape[1])), strict=True)
    return _row_nanmean(np.stack(aurocs, axis=1)), _row_nanmean(np.stack(auprcs, axis=1))


def _class_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted AUROC (ties one half) and step-wise AUPRC of one class for every resample."""
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # one group per unique score, ascending
    ws = w[:, order]
    pos = np.add.reduceat(ws * ys, starts, axis=1)
    neg = np.add.reduceat(ws * ~ys, starts, axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each unique score
    auroc = _ratio(np.sum(pos * (below + 0.5 * neg), axis=1), n_pos * n_neg, np.nan)
    # Thresholds descending: tp and predicted at t are the weights with p >= t; recall rises by pos/n_pos.
    tp = np.cumsum(pos[:, ::-1], axis=1)
    predicted = np.cumsum((pos + neg)[:, ::-1], axis=1)
    precision = _ratio(tp, predicted, 0.0)  # no predicted weight: no positive either, the step adds 0
    auprc = _ratio(np.sum(pos[:, ::-1] * precision, axis=1), n_pos, np.nan)
    return auroc, auprc


def resample_counts(strata: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(B, units) counts: within each stratum of n units, n units drawn with replacement."""
    return _draw(np.asarray(strata), n_resamples, np.random.default_rng(seed))


def _draw(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.zeros((n_resamples, len(strata)), dtype=np.int32)  # int32: half the memory of a large pool
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        n = len(members)
        counts[:, members] = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)
    return counts


def stratified_counts(strata: np.ndarray, positives: np.ndarray, n_resamples: int, seed: int,
                      names: tuple[str, ...] | None = None, max_rounds: int = MAX_REDRAWS) -> np.ndarray:
    """resample_counts, then redraw every resample where a class positive in the pool has no positive unit.

    positives: (units, C) bool. Raises ValueError naming the class when max_rounds of redraws do not suffice.
    """
    strata, positives = np.asarray(strata), np.asarray(positives, dtype=np.float64)
    rng = np.random.default_rng(seed)
    counts = _draw(strata, n_resamples, rng)
    present = positives.sum(axis=0) > 0
    for round_ in range(max_rounds + 1):
        absent = ((counts @ positives) == 0) & present
        redraw = absent.any(axis=1)
        if not redraw.any():
            return counts
        if round_ < max_rounds:
            counts[redraw] = _draw(strata, int(redraw.sum()), rng)
    k = int(np.flatnonzero(absent.any(axis=0))[0])
    name = names[k] if names is not None else f"column {k}"
    raise ValueError(f"class {name} is still absent from some resamples after {max_rounds} redraws")


def _units(pooled: Pooled) -> tuple[np.ndarray, np.ndarray]:
    """(row -> record index, per-record labels); a record's label must be the same in every repeat."""
    _, first, row_unit = np.unique(np.asarray(pooled.records, dtype=str), return_index=True, return_inverse=True)
    labels = np.asarray(pooled.labels)
    unit_labels = labels[first]
    same = unit_labels[row_unit] == labels
    bad = np.flatnonzero(~(same if same.ndim == 1 else same.all(axis=1)))
    if len(bad):
        raise ValueError(f"record {pooled.records[bad[0]]} has different labels in different repeats")
    return row_unit, unit_labels


def _record_counts(pooled: Pooled, unit_labels: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    strata, positives = pooled.track.resample_strata(unit_labels)
    if positives is None:
        return resample_counts(strata, n_resamples, seed)
    return stratified_counts(strata, positives, n_resamples, seed, names=tuple(pooled.classes))


def _resampled_values(pooled: Pooled, counts: np.ndarray, row_unit: np.ndarray) -> dict[str, np.ndarray]:
    """metric_values for every resample, in blocks of resamples so memory stays bounded on large pools."""
    step = max(1, _CHUNK_CELLS // max(1, len(row_unit)))
    blocks = [metric_values(pooled, counts[i:i + step][:, row_unit]) for i in range(0, len(counts), step)]
    return {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level {level}: expected a fraction between 0 and 1")
    if np.all(np.isnan(values)):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(pooled: Pooled, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                        level: float = DEFAULT_LEVEL) -> dict[str, Interval]:
    """Percentile interval of every metric over n_resamples stratified resamples of the records."""
    row_unit, unit_labels = _units(pooled)
    counts = _record_counts(pooled, unit_labels, n_resamples, seed)
    values = _resampled_values(pooled, counts, row_unit)
    point = point_metrics(pooled)
    return {name: Interval(point[name], *_percentiles(values[name], level)) for name in point}


def _row_keys(records) -> list[tuple[str, int]]:
    """(record, occurrence): the k-th row of a record in one pool pairs with its k-th row in the other."""
    seen: dict[str, int] = {}
    keys = []
    for name in records:
        keys.append((name, seen.get(name, 0)))
        seen[name] = keys[-1][1] + 1
    return keys


def _aligned(a: Pooled, b: Pooled) -> Pooled:
    """b with its rows in the order of a's."""
    if a.track.name != b.track.name or tuple(a.classes) != tuple(b.classes):
        raise ValueError(f"models scored differently: track {a.track.name} vs {b.track.name}, "
                         f"classes {', '.join(a.classes)} vs {', '.join(b.classes)}")
    keys_a, where_b = _row_keys(a.records), {key: i for i, key in enumerate(_row_keys(b.records))}
    only_a = [key for key in keys_a if key not in where_b]
    only_b = sorted(set(where_b) - set(keys_a))
    if only_a or only_b:
        examples = [f"{n} (A)" for n, _ in only_a[:3]] + [f"{n} (B)" for n, _ in only_b[:3]]
        raise ValueError(f"models were tested on different records: {len(only_a)} only in A, "
                         f"{len(only_b)} only in B, e.g. {', '.join(examples)}")
    order = np.array([where_b[key] for key in keys_a], dtype=np.int64)
    probs = None if b.probs is None else np.asarray(b.probs)[order]
    aligned = replace(b, records=tuple(a.records), labels=np.asarray(b.labels)[order],
                      outputs=np.asarray(b.outputs)[order], probs=probs)
    same = np.asarray(aligned.labels) == np.asarray(a.labels)
    if not same.all():
        bad = np.flatnonzero(~(same if same.ndim == 1 else same.all(axis=1)))[0]
        raise ValueError(f"the two pools give record {a.records[bad]} different labels")
    return aligned


def paired_bootstrap(a: Pooled, b: Pooled, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     level: float = DEFAULT_LEVEL) -> dict[str, Interval]:
    """Interval of metric(b) - metric(a) with the same resampled records for both models."""
    b = _aligned(a, b)
    row_unit, unit_labels = _units(a)
    counts = _record_counts(a, unit_labels, n_resamples, seed)
    values_a, values_b = _resampled_values(a, counts, row_unit), _resampled_values(b, counts, row_unit)
    point_a, point_b = point_metrics(a), point_metrics(b)
    return {name: Interval(point_b[name] - point_a[name], *_percentiles(values_b[name] - values_a[name], level))
            for name in point_a}
