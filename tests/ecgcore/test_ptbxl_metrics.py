"""The PTB-XL benchmark's metrics on small examples worked out by hand, and against sklearn."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgcore.metrics.ptbxl import class_auc, fmax, macro_auc, report


def test_auc_by_hand():
    # Positives score 0.9 and 0.3, negatives 0.8 and 0.1: 3 of the 4 (positive, negative) pairs are ordered.
    assert macro_auc([[1], [0], [1], [0]], [[0.9], [0.8], [0.3], [0.1]]) == 0.75


def test_macro_auc_equals_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random((50, 4)) < 0.4
    p = np.clip(0.3 * y + rng.random((50, 4)), 0, 1)
    assert macro_auc(y, p) == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)


def test_a_class_with_one_label_value_is_skipped():
    y = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]], bool)  # class 1 all positive, class 2 none
    p = np.array([[0.9, 0.5, 0.1], [0.8, 0.5, 0.2], [0.3, 0.5, 0.3], [0.1, 0.5, 0.4]])
    np.testing.assert_array_equal(np.isnan(class_auc(y, p)), [False, True, True])
    assert macro_auc(y, p) == 0.75
    assert math.isnan(macro_auc(y[:, 1:], p[:, 1:]))


def test_fmax_by_hand():
    # Targets r1 {0}, r2 {1}, r3 {0, 1}. Predicted at threshold t: the classes with probability >= t.
    #   t <= 0.2       all: precision (1/2 + 1/2 + 1)/3 = 2/3, recall 1            F = 0.8
    #   0.2 < t <= .45 r3 loses class 1: P 2/3, R (1 + 1 + 1/2)/3 = 5/6           F = 20/27
    #   .45 < t <= .5  r1 predicts {0} only: P (1 + 1/2 + 1)/3 = 5/6, R 5/6      F = 5/6
    #   .5 < t <= .6   r3 predicts nothing (left out of P): P 3/4, R 2/3         F = 12/17
    #   .6 < t <= .7   r2 predicts {0}, wrong: P 1/2, R 1/3                       F = 0.4
    #   .7 < t <= .8   only r1: P 1, R 1/3                                        F = 0.5
    #   t > .8         nothing predicted: threshold skipped
    y = [[1, 0], [0, 1], [1, 1]]
    p = [[0.8, 0.45], [0.7, 0.6], [0.5, 0.2]]
    assert fmax(y, p) == pytest.approx(5 / 6, abs=1e-12)
    assert fmax(y, np.minimum(p, 0.45)) == pytest.approx(0.8, abs=1e-12)  # capped: only the first two rows remain


def test_fmax_threshold_is_inclusive_up_to_one():
    # At t = 1.00 the probability 1.0 still counts as a prediction (>=), giving a perfect F.
    assert fmax([[1, 0]], [[1.0, 0.0]]) == 1.0


def test_fmax_records_without_positives_do_not_count_for_recall():
    y = [[1, 0], [0, 0]]
    assert fmax(y, [[0.9, 0.1], [0.05, 0.02]]) == 1.0
    assert math.isnan(fmax([[0, 0]], [[0.3, 0.4]]))


def test_report_is_json_ready():
    y = np.array([[1, 1], [0, 1], [1, 1], [0, 1]], bool)
    p = np.array([[0.9, 0.5], [0.8, 0.5], [0.3, 0.5], [0.1, 0.5]])
    out = report(y, p, ("NORM", "SR"))
    assert out["score"] == out["macro_auc"] == 0.75
    assert out["auc"] == {"NORM": 0.75, "SR": None} and out["positives"] == {"NORM": 2, "SR": 4} and out["n"] == 4
    assert out["fmax"] == pytest.approx(fmax(y, p))
    json.dumps(out, allow_nan=False)
    assert report(y[:, 1:], p[:, 1:])["score"] is None and list(report(y, p)["auc"]) == ["0", "1"]


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same"):
        fmax(np.zeros((3, 2), bool), np.zeros((3, 3)))
