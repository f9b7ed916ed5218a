"""The CinC 2020/2021 challenge metric against cases computed by hand, on the shipped official tables."""

import numpy as np
import pytest

from ecgcore.errors import DataError
from ecgcore.metrics.challenge import SINUS_RHYTHM, challenge_score, modified_confusion, scored_classes

AF, AFL, RBBB = "164889003", "164890007", "59118001"  # RBBB 59118001 is equivalent to CRBBB 713427006


def test_class_tables_merge_equivalent_codes():
    c2020, c2021 = scored_classes(2020), scored_classes(2021)
    assert len(c2020.codes) == 24 and len(c2021.codes) == 26
    assert c2020.index_of("713427006") == c2020.index_of("59118001") is not None
    assert c2021.index_of("733534002") == c2021.index_of("164909002") is not None
    assert c2020.index_of("733534002") is None  # a 2021 class only
    assert np.allclose(c2021.weights, c2021.weights.T) and np.all(np.diag(c2021.weights) == 1)
    with pytest.raises(DataError, match="known years: 2020, 2021"):
        scored_classes(2019)


@pytest.mark.parametrize("year", [2020, 2021])
def test_hand_computed_case(year):
    c = scored_classes(year)
    # One record labelled AF, answered AF and AFL: |labels u outputs| = 2, so A[AF,AF] = A[AF,AFL] = 1/2.
    # observed = 0.5 * w(AF,AF) + 0.5 * w(AF,AFL) = 0.5 + 0.5 * 0.5 = 0.75; perfect = 1;
    # always sinus rhythm: A[AF,SR] = 1/2, so 0.5 * w(AF,SR) = 0.5 * 0.25 = 0.125.
    labels = c.encode([[AF]])
    outputs = c.encode([[AF, AFL]])
    assert c.weights[c.index_of(AF), c.index_of(AFL)] == 0.5
    assert c.weights[c.index_of(AF), c.index_of(SINUS_RHYTHM)] == 0.25
    assert challenge_score(labels, outputs, c) == pytest.approx((0.75 - 0.125) / (1 - 0.125))


@pytest.mark.parametrize("year", [2020, 2021])
def test_normalisation_bounds(year):
    c = scored_classes(year)
    labels = c.encode([[AF], [AFL, "713427006"], [SINUS_RHYTHM], ["270492004", "164889003"]])
    assert challenge_score(labels, labels, c) == pytest.approx(1.0)
    sinus = c.encode([[SINUS_RHYTHM]] * 4)
    assert challenge_score(labels, sinus, c) == pytest.approx(0.0)
    nothing = np.zeros_like(labels)
    assert challenge_score(labels, nothing, c) < 0  # below always-sinus: it misses the sinus records too


def test_equivalent_codes_are_one_class():
    c = scored_classes(2021)
    labels = c.encode([[RBBB], [AF]])
    outputs = c.encode([["713427006"], [AF]])  # the label's equivalent code counts as right
    assert challenge_score(labels, outputs, c) == pytest.approx(1.0)


def test_a_record_without_scored_labels_adds_nothing():
    c = scored_classes(2021)
    labels = c.encode([[AF], [AFL]])
    outputs = c.encode([[AF, AFL], [SINUS_RHYTHM]])
    base = challenge_score(labels, outputs, c)
    # A third record whose only code is unscored (here 251173003, not a scored class) has no label row:
    # whatever is predicted for it changes neither the observed, the perfect nor the inactive score.
    labels3 = c.encode([[AF], [AFL], ["251173003"]])
    assert not labels3[2].any()
    for extra in ([AF], [SINUS_RHYTHM, AFL], []):
        outputs3 = c.encode([[AF, AFL], [SINUS_RHYTHM], extra])
        assert challenge_score(labels3, outputs3, c) == pytest.approx(base)


def test_modified_confusion_by_hand():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=bool)
    outputs = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=bool)
    # record 0: |{0,1}| = 2 -> A[0,0] += .5, A[0,1] += .5
    # record 1: |{0,1,2}| = 3 -> A[0,2] += 1/3, A[1,2] += 1/3
    # record 2: no label -> nothing
    expected = np.array([[0.5, 0.5, 1 / 3], [0, 0, 1 / 3], [0, 0, 0]])
    np.testing.assert_allclose(modified_confusion(labels, outputs), expected)


def test_tables_ship_with_their_licence():
    from importlib import resources

    notice = resources.files("ecgcore").joinpath("tables", "LICENSE.txt").read_text()
    assert "BSD 2-Clause" in notice and "PhysioNet/Computing in Cardiology Challenges" in notice


def test_accuracy_f_measure_and_beta_measures_by_hand():
    from ecgcore.metrics.challenge import accuracy, beta_measures, f_measure

    labels = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)
    outputs = np.array([[1, 0], [1, 0], [0, 1]], dtype=bool)
    assert accuracy(labels, outputs) == pytest.approx(1 / 3)
    # class 0: tp 2, fp 0, fn 0 -> 1; class 1: tp 0, fp 1, fn 1 -> 0; macro 0.5
    assert f_measure(labels, outputs) == pytest.approx(0.5)
    # weights 1/|labels|: records 1, 1/2, 1 (no label -> 1). class 0: tp 1 + 1/2; class 1: fp 1, fn 1/2.
    # F2 = 5tp / (5tp + fp + 4fn): class 0 -> 1, class 1 -> 0. G2 = tp / (tp + fp + 2fn): 1 and 0.
    f2, g2 = beta_measures(labels, outputs, 2.0)
    assert f2 == pytest.approx(0.5) and g2 == pytest.approx(0.5)
    labels2 = np.array([[1], [0]], dtype=bool)
    outputs2 = np.array([[1], [1]], dtype=bool)
    f2, g2 = beta_measures(labels2, outputs2, 2.0)  # tp 1, fp 1: F2 = 5/6, G2 = 1/2
    assert f2 == pytest.approx(5 / 6) and g2 == pytest.approx(0.5)


def test_auroc_and_auprc_by_hand():
    from ecgcore.metrics.challenge import auroc_auprc

    labels = np.array([[1], [0], [1], [0]], dtype=bool)
    probs = np.array([[0.9], [0.8], [0.4], [0.1]])
    # AUROC: positive pairs (0.9 vs 0.8, 0.1; 0.4 vs 0.8, 0.1): 3 of 4 ordered -> 0.75.
    # AUPRC: thresholds 0.9 (recall 1/2, precision 1), 0.8 (1/2, 1/2), 0.4 (1, 2/3), 0.1 (1, 1/2)
    #        -> 0.5 * 1 + 0 + 0.5 * 2/3 + 0 = 5/6.
    auroc, auprc = auroc_auprc(labels, probs)
    assert auroc == pytest.approx(0.75) and auprc == pytest.approx(5 / 6)
    tied = auroc_auprc(labels, np.full((4, 1), 0.5))
    assert tied[0] == pytest.approx(0.5) and tied[1] == pytest.approx(0.5)
    # A class without positives is left out of the macro average, as in the challenge code.
    both = auroc_auprc(np.hstack([labels, np.zeros((4, 1), bool)]), np.hstack([probs, probs]))
    assert both == pytest.approx((0.75, 5 / 6))


def test_threshold_tuning_finds_thresholds_the_metric_prefers():
    from ecgcore.metrics.challenge import tune_thresholds

    c = scored_classes(2021)
    rng = np.random.default_rng(0)
    codes = [AF, AFL, SINUS_RHYTHM, "270492004"]
    labels = c.encode([[codes[i]] for i in rng.integers(0, 4, 60)])
    # The model is right but under-confident: positives score 0.3, negatives 0.1, so 0.5 finds nothing.
    probs = np.where(labels, 0.3, 0.1)
    assert challenge_score(labels, probs >= 0.5, c) < 0.5
    thresholds = tune_thresholds(labels, probs, c)
    assert challenge_score(labels, probs >= thresholds, c) == pytest.approx(1.0)
    for code in codes:
        assert 0.1 < thresholds[c.index_of(code)] <= 0.3
