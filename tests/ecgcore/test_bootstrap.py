"""Bootstrap intervals: weighted metrics against the unweighted ones, resampling rules, paired differences."""

from dataclasses import astuple

import numpy as np
import pytest

from ecgcore.io.cinc2017 import CLASSES
from ecgcore.metrics import challenge as ch
from ecgcore.metrics.bootstrap import (
    Pooled,
    _record_counts,
    bootstrap_intervals,
    metric_values,
    paired_bootstrap,
    point_metrics,
    resample_counts,
    stratified_counts,
)
from ecgcore.metrics.cinc2017 import score_report
from ecgcore.tracks import open_track
from tests.conftest import SHARED

C21 = ch.scored_classes(2021)
MAIN_12 = ("score", "auroc", "auprc", "f_measure", "accuracy")

T17, T21 = open_track("cinc2017"), open_track("cinc2021")


def noisy(labels, rng, error, n_classes=4):
    """Predictions equal to the labels except a fraction `error` replaced by a random class."""
    wrong = rng.random(len(labels)) < error
    return np.where(wrong, rng.integers(0, n_classes, len(labels)), labels)


def pool_2017(n_records, repeats=2, seed=0, error=0.3, labels=None, prefix="R"):
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.choice(4, size=n_records, p=[0.6, 0.1, 0.25, 0.05])
    labels = np.tile(labels, repeats)
    records = tuple(f"{prefix}{i:05d}" for i in range(n_records)) * repeats
    return Pooled(T17, CLASSES, records, labels, noisy(labels, rng, error))


def pool_12(n_records, repeats=2, seed=0, rare_positive=None):
    """Random 2021 multi-label pool; probabilities rounded to one decimal so scores tie."""
    rng = np.random.default_rng(seed)
    n_classes = len(C21.names)
    labels = rng.random((n_records, n_classes)) < rng.uniform(0.02, 0.15, n_classes)
    labels[:, C21.sinus] = rng.random(n_records) < 0.5
    if rare_positive is not None:
        labels[:, rare_positive] = False
        labels[3, rare_positive] = True
    labels = np.tile(labels, (repeats, 1))
    noise = rng.random(labels.shape)
    probs = np.round(np.where(labels, 0.25 + 0.75 * noise, 0.5 * noise ** 4), 1)  # mostly right, some misses
    records = tuple(f"S{i:05d}" for i in range(n_records)) * repeats
    return Pooled(T21, C21.names, records, labels, probs >= 0.5, probs)


def expected_12(labels, outputs, probs):
    auroc, auprc = ch.auroc_auprc(labels, probs)
    out = {"score": ch.challenge_score(labels, outputs, C21), "auroc": auroc, "auprc": auprc,
           "f_measure": ch.f_measure(labels, outputs), "accuracy": ch.accuracy(labels, outputs)}
    out.update({f"F1_{n}": v for n, v in zip(C21.names, ch.class_f1(labels, outputs), strict=True)})
    return out


def expected_2017(labels, outputs):
    report = score_report(labels, outputs)
    return {"score": report["score"], "accuracy": report["accuracy"],
            **{f"F1_{c}": v for c, v in report["f1"].items()}}


def assert_metrics_equal(got, expected):
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=name)


def random_weights(rng, n_rows, n=6):
    weights = rng.integers(0, 4, size=(n, n_rows))
    weights[:, 0] = np.maximum(weights[:, 0], 1)  # never an empty resample
    return weights


def test_weighted_2017_equals_duplicated_rows():
    pool = pool_2017(50, repeats=2, seed=1)
    weights = random_weights(np.random.default_rng(2), len(pool.records))
    values = metric_values(pool, weights)
    for b, w in enumerate(weights):
        rows = np.repeat(np.arange(len(w)), w)
        assert_metrics_equal({n: v[b] for n, v in values.items()}, expected_2017(pool.labels[rows], pool.outputs[rows]))


def test_weighted_12lead_equals_duplicated_rows():
    pool = pool_12(60, repeats=2, seed=3)
    pool.labels[:, 0] = pool.outputs[:, 0] = False  # no positive: F1, AUROC and AUPRC undefined
    pool.labels[:, 1] = True  # no negative: AUROC undefined, AUPRC defined
    assert_weighted_equals_duplicated(pool, random_weights(np.random.default_rng(4), len(pool.records)))


def assert_weighted_equals_duplicated(pool, row_weights):
    """Each weight vector's metrics equal the existing functions on the rows duplicated that many times."""
    values = metric_values(pool, row_weights)
    for b, w in enumerate(row_weights):
        rows = np.repeat(np.arange(len(w)), w)
        expected = expected_12(pool.labels[rows], pool.outputs[rows], pool.probs[rows])
        assert_metrics_equal({n: v[b] for n, v in values.items()}, expected)


def test_weighted_record_counts_equal_duplicated_records():
    pool = pool_12(40, repeats=3, seed=5)
    counts = np.random.default_rng(6).integers(0, 3, size=(4, 40))
    row_weights = np.tile(counts, (1, 3))  # rows are record-major per repeat: record i is row i, i+40, i+80
    assert_weighted_equals_duplicated(pool, row_weights)


def test_point_metrics_equal_existing_functions():
    p17 = pool_2017(80, seed=7)
    assert_metrics_equal(point_metrics(p17), expected_2017(p17.labels, p17.outputs))
    p12 = pool_12(50, seed=8)
    assert_metrics_equal(point_metrics(p12), expected_12(p12.labels, p12.outputs, p12.probs))


def test_12lead_classes_must_be_the_scored_classes():
    pool = pool_12(10, seed=0)
    with pytest.raises(ValueError, match="scored classes"):
        point_metrics(Pooled(T21, pool.classes[::-1], pool.records, pool.labels, pool.outputs, pool.probs))


@pytest.mark.parametrize("make", [lambda: pool_2017(150, seed=9), lambda: pool_12(150, seed=10)])
def test_intervals_contain_the_point(make):
    pool = make()
    intervals = bootstrap_intervals(pool, n_resamples=300, seed=0)
    assert set(intervals) == set(point_metrics(pool))
    for name in ("score", "accuracy") + (MAIN_12[1:4] if pool.track is not T17 else ()):
        iv = intervals[name]
        assert iv.low <= iv.point <= iv.high and iv.low < iv.high, name


def test_interval_narrows_with_more_records():
    labels = np.repeat(np.arange(4), [60, 10, 25, 5])
    small = pool_2017(100, repeats=1, labels=labels, seed=11)
    big = Pooled(T17, CLASSES, tuple(f"{r}_{k}" for k in range(4) for r in small.records),
                 np.tile(small.labels, 4), np.tile(small.outputs, 4))
    s, b = bootstrap_intervals(small, 400, seed=1), bootstrap_intervals(big, 400, seed=1)
    for name in ("score", "accuracy"):
        assert b[name].point == pytest.approx(s[name].point)
        assert b[name].high - b[name].low < 0.75 * (s[name].high - s[name].low), name


def test_seed_reproducible():
    pool = pool_12(80, seed=12)
    first, again = bootstrap_intervals(pool, 200, seed=3), bootstrap_intervals(pool, 200, seed=3)
    other = bootstrap_intervals(pool, 200, seed=4)
    for name in first:  # Interval equality with NaN-safe comparison (a never-seen class has NaN bounds)
        assert np.array_equal(astuple(first[name]), astuple(again[name]), equal_nan=True), name
    assert any((first[n].low, first[n].high) != (other[n].low, other[n].high) for n in MAIN_12)


def test_2017_strata_keep_every_class_in_every_resample():
    strata = np.repeat(np.arange(4), [30, 2, 10, 1])  # one noise record, two AF records
    counts = resample_counts(strata, 500, seed=0)
    per_class = counts @ np.eye(4, dtype=np.int64)[strata]
    assert (per_class == [30, 2, 10, 1]).all()
    assert (counts[:, -1] == 1).all() and counts[:, :30].std() > 0


def test_12lead_redraw_until_every_class_present():
    positives = np.zeros((20, 3), dtype=bool)
    positives[:, 0] = True
    positives[7, 1] = True  # a class with one positive record, in one big stratum with the others
    strata = np.zeros(20, dtype=int)
    assert (resample_counts(strata, 300, seed=5)[:, 7] == 0).any()  # without the redraw it goes missing
    counts = stratified_counts(strata, positives, 300, seed=5)
    assert (counts[:, 7] > 0).all() and (counts.sum(axis=1) == 20).all()
    with pytest.raises(ValueError, match="class rare is still absent"):
        stratified_counts(strata, positives, 300, seed=5, names=("a", "rare", "none"), max_rounds=0)


def test_12lead_rare_class_present_in_every_bootstrap_resample():
    rare = 5
    pool = pool_12(60, seed=13, rare_positive=rare)
    unit_labels = pool.labels[:60]
    counts = _record_counts(pool, unit_labels, 300, seed=0)
    present = unit_labels.any(axis=0)
    assert ((counts @ unit_labels.astype(int))[:, present] > 0).all()


def test_record_with_different_labels_across_repeats_raises():
    pool = pool_2017(10, repeats=2, seed=0)
    labels = pool.labels.copy()
    labels[10] = (labels[10] + 1) % 4
    with pytest.raises(ValueError, match="different labels"):
        bootstrap_intervals(Pooled(T17, CLASSES, pool.records, labels, pool.outputs), 10)


@pytest.mark.parametrize("make", [lambda: pool_2017(80, seed=14), lambda: pool_12(80, seed=15)])
def test_paired_with_itself_is_exactly_zero(make):
    pool = make()
    # Rows in another order, each record's repeats still in the same order (rows pair by occurrence).
    rng, n = np.random.default_rng(0), len(set(pool.records))
    order = np.concatenate([r * n + rng.permutation(n) for r in range(len(pool.records) // n)])
    shuffled = Pooled(pool.track, pool.classes, tuple(np.array(pool.records)[order]), pool.labels[order],
                      pool.outputs[order], None if pool.probs is None else pool.probs[order])
    for name, iv in paired_bootstrap(pool, shuffled, 200, seed=0).items():
        if not np.isnan(iv.point):
            assert (iv.point, iv.low, iv.high) == (0.0, 0.0, 0.0), name


def test_paired_point_is_the_difference_and_a_better_model_is_above_zero():
    a = pool_2017(120, seed=16, error=0.4)
    b = Pooled(T17, CLASSES, a.records, a.labels, a.labels.copy())  # right on every record
    delta = paired_bootstrap(a, b, 300, seed=0)
    pa, pb = point_metrics(a), point_metrics(b)
    for name, iv in delta.items():
        assert iv.point == pytest.approx(pb[name] - pa[name]), name
    assert delta["score"].low > 0 and delta["accuracy"].low > 0


def test_paired_mismatched_records_raise():
    a = pool_2017(20, seed=17)
    b = Pooled(T17, CLASSES, ("X99999",) + a.records[1:], a.labels, a.outputs)
    with pytest.raises(ValueError, match="different records: 1 only in A, 1 only in B, e.g. R00000"):
        paired_bootstrap(a, b, 10)
    with pytest.raises(ValueError, match="different records: 1 only in A, 0 only in B"):
        paired_bootstrap(a, Pooled(T17, CLASSES, a.records[:-1], a.labels[:-1], a.outputs[:-1]), 10)


def test_real_2017_sample_interval():
    reference = SHARED / "ecg-samples" / "cinc2017" / "REFERENCE.csv"
    if not reference.exists():
        pytest.skip(f"shared CinC 2017 sample {reference} is not present")
    rows = [line.split(",") for line in reference.read_text().splitlines() if line.strip()]
    names = tuple(r[0].strip() for r in rows)
    labels = np.array([CLASSES.index(r[1].strip()) for r in rows])
    rng = np.random.default_rng(2017)  # a fixed noisy rule, two CV repeats
    pool = Pooled(T17, CLASSES, names * 2, np.tile(labels, 2),
                  np.concatenate([noisy(labels, rng, 0.25), noisy(labels, rng, 0.25)]))
    iv = bootstrap_intervals(pool, 500, seed=0)["score"]
    assert iv.low <= iv.point <= iv.high
    assert 0.01 < iv.high - iv.low < 0.3
