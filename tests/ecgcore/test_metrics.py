"""CinC 2017 metric against hand-computed cases."""

import numpy as np
import pytest

from ecgcore.metrics.cinc2017 import confusion_matrix, f1_per_class, official_score, score_report


def test_confusion_rows_are_reference_columns_are_prediction():
    m = confusion_matrix([0, 0, 1, 2, 3], [0, 1, 1, 2, 0])
    assert m.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]


def test_hand_computed_case():
    # Reference N N N N A A O O O ~ ; prediction N N N A A O O O N N
    labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 3]
    preds = [0, 0, 0, 1, 1, 2, 2, 2, 0, 0]
    m = confusion_matrix(labels, preds)
    f1 = f1_per_class(m)
    # N: TP 3, FP 2 (an O and the ~), FN 1 -> 6/9
    assert f1[0] == pytest.approx(6 / 9)
    # A: TP 1, FP 1, FN 1 -> 2/4
    assert f1[1] == pytest.approx(0.5)
    # O: TP 2, FP 1, FN 1 -> 4/6
    assert f1[2] == pytest.approx(4 / 6)
    # ~: TP 0 -> 0, and it does not enter the official score
    assert f1[3] == 0.0
    assert official_score(m) == pytest.approx((6 / 9 + 0.5 + 4 / 6) / 3)


def test_noise_errors_count_but_noise_f1_does_not_average():
    perfect = confusion_matrix([0, 1, 2, 3], [0, 1, 2, 3])
    assert official_score(perfect) == 1.0
    # Calling every noisy record N costs F1_N but F1_~ itself is not averaged in.
    m = confusion_matrix([0, 1, 2, 3, 3], [0, 1, 2, 0, 0])
    assert official_score(m) == pytest.approx((2 / 4 + 1 + 1) / 3)


def test_absent_class_has_f1_zero_not_nan():
    m = confusion_matrix([0, 0], [0, 0])
    assert np.isfinite(f1_per_class(m)).all()
    assert official_score(m) == pytest.approx(1 / 3)


def test_report_fields():
    r = score_report([0, 1, 2, 3], [0, 1, 2, 2])
    assert r["accuracy"] == 0.75 and r["n"] == 4
    assert set(r["f1"]) == {"N", "A", "O", "~"}
    assert r["confusion"][3] == [0, 0, 1, 0]
