"""The CinC 2020/2021 challenge metric against cases computed by hand, on the shipped official tables."""

import numpy as np
import pytest

from ecgcore.challenge import SINUS_RHYTHM, challenge_score, modified_confusion, scored_classes
from ecgcore.errors import DataError

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
