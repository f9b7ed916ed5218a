"""ecgcore.metrics.paired: the paired tests agree with scipy/statsmodels and with worked examples."""

import math

import numpy as np
import pytest
import scipy.stats

from ecgcore.metrics.paired import (
    TestResult,
    corrected_t_test,
    fold_differences,
    holm,
    min_wilcoxon_p,
    wilcoxon_test,
)

# Demšar (2006), JMLR 7, Table 2: AUC of C4.5 and C4.5+m on 14 data sets.
C45 = [0.763, 0.599, 0.954, 0.628, 0.882, 0.936, 0.661, 0.583, 0.775, 1.000, 0.940, 0.619, 0.972, 0.957]
C45_M = [0.768, 0.591, 0.971, 0.661, 0.888, 0.931, 0.668, 0.583, 0.838, 1.000, 0.962, 0.666, 0.981, 0.978]


def _random_scores(seed: int, n: int, n_zero: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous fold scores (no ties), with n_zero folds where b equals a exactly."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.6, 0.9, n)
    b = a + rng.normal(0.01, 0.02, n)
    b[:n_zero] = a[:n_zero]
    return a, b


@pytest.mark.parametrize("n", [5, 15])
@pytest.mark.parametrize("n_zero", [0, 1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_matches_scipy(seed, n, n_zero):
    a, b = _random_scores(seed, n, n_zero)
    result = wilcoxon_test(a, b)
    expected = scipy.stats.wilcoxon(b, a, zero_method="zsplit")  # default method="auto"
    assert result.statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-12)
    assert result.n == n
    # which null distribution scipy's "auto" used, as the result names it
    if n_zero == 0:
        assert result.method == "Wilcoxon signed-rank, exact"
    elif n <= 13:
        assert result.method == "Wilcoxon signed-rank, exact permutation"
    else:
        assert result.method == "Wilcoxon signed-rank, normal approximation"
    assert ("zsplit" in result.note) == (n_zero > 0)
    assert ("smallest two-sided p" in result.note) == (n < 6)


@pytest.mark.parametrize("n", [5, 15])
def test_wilcoxon_with_tied_differences_matches_scipy(n):
    # Scores on a 0.001 grid give tied |differences|; scipy is given the differences
    # rounded to 3 decimals, as its docs advise, so float noise does not break the ties.
    rng = np.random.default_rng(7)
    a = np.round(rng.uniform(0.6, 0.9, n), 3)
    b = np.round(a + rng.choice([-0.004, -0.002, 0.002, 0.004, 0.006], n), 3)
    result = wilcoxon_test(a, b)
    expected = scipy.stats.wilcoxon(np.round(b - a, 3), zero_method="zsplit")
    assert result.statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-12)
    assert "tied |differences|" in result.note


def test_wilcoxon_demsar_2006_table_2():
    # Demšar ranks |C4.5+m - C4.5| with the two zero differences splitting ranks 1 and 2
    # (1.5 each, half to each sign): R+ = 93, R- = 12, T = min(R+, R-) = 12 < 21, the
    # critical value for N = 14 at alpha = 0.05, so the paper rejects the null.
    # The differences are rounded to 3 decimals (the data's precision) so that float
    # noise cannot make +0.005 and -0.005 differ in magnitude and rank.
    d = np.round(np.subtract(C45_M, C45), 3)
    ranks = scipy.stats.rankdata(np.abs(d))
    assert ranks.tolist() == [3.5, 7, 9, 12, 5, 3.5, 6, 1.5, 14, 1.5, 11, 13, 8, 10]  # the paper's ranks
    r_plus = ranks[d > 0].sum() + ranks[d == 0].sum() / 2
    r_minus = ranks[d < 0].sum() + ranks[d == 0].sum() / 2
    assert (r_plus, r_minus) == (93, 12)

    result = wilcoxon_test(np.zeros(d.size), d)
    assert result.statistic == 12
    assert result.p_value < 0.05
    assert result.n == 14
    assert result.method == "Wilcoxon signed-rank, normal approximation"  # zeros/ties and n > 13
    # the raw scores give the same result: fold_differences drops the float noise itself
    assert np.array_equal(fold_differences(C45, C45_M), d)
    assert wilcoxon_test(C45, C45_M) == result


def test_fold_differences_drop_float_noise():
    # 0.3 - 0.2 = 0.09999999999999998 but 0.2 - 0.1 = 0.1 in floating point
    assert 0.3 - 0.2 != 0.2 - 0.1
    d = fold_differences([0.2, 0.1], [0.3, 0.2])
    assert d[0] == d[1]


@pytest.mark.parametrize(
    ("a", "b"),
    [([0.1, 0.2], [0.1]), ([0.1], [0.2]), ([0.1, float("nan")], [0.1, 0.2]), ([0.1, 0.2], [0.1, math.inf])],
)
def test_fold_differences_reject_bad_input(a, b):
    with pytest.raises(ValueError):
        fold_differences(a, b)


def test_min_wilcoxon_p():
    assert min_wilcoxon_p(5) == 0.0625
    assert min_wilcoxon_p(6) == 0.03125
    assert min_wilcoxon_p(1) == 1.0


def test_wilcoxon_five_folds_all_favouring_b_is_exactly_the_minimum():
    a = [0.80, 0.81, 0.79, 0.82, 0.78]
    b = [0.81, 0.83, 0.82, 0.86, 0.83]  # b better on every fold, distinct differences
    result = wilcoxon_test(a, b)
    assert result.method == "Wilcoxon signed-rank, exact"
    assert result.statistic == 0
    assert result.p_value == 0.0625 == min_wilcoxon_p(5)
    assert "with 5 folds the smallest two-sided p is 0.0625" in result.note


def test_wilcoxon_all_differences_zero():
    result = wilcoxon_test([0.8, 0.7, 0.9], [0.8, 0.7, 0.9])
    assert isinstance(result, TestResult)
    assert (result.statistic, result.p_value, result.n) == (0.0, 1.0, 3)
    assert "all differences are 0" in result.note


# Hand-computed corrected t-test, d = b - a = [0.02, 0.01, 0.03, -0.01, 0.02], n_train=600, n_test=160:
#   J = 5, d̄ = 0.07 / 5 = 0.014
#   d - d̄ = [0.006, -0.004, 0.016, -0.024, 0.006], squares sum to
#     3.6e-5 + 1.6e-5 + 2.56e-4 + 5.76e-4 + 3.6e-5 = 9.2e-4, σ̂² = 9.2e-4 / 4 = 2.3e-4
#   variance factor 1/J + n_test/n_train = 0.2 + 160/600 = 7/15 = 0.46667
#   t = 0.014 / sqrt(7/15 * 2.3e-4) = 0.014 / sqrt(1.07333e-4) = 0.014 / 0.0103602 = 1.35133
#   p = 2 * scipy.stats.t.sf(1.35133, df=4) = 0.2480
# The plain paired t-test uses σ̂²/J only: t = 0.014 / sqrt(2.3e-4 / 5) = 0.014 / 0.0067823 = 2.06419, p = 0.1079.
A_T = np.array([0.80, 0.82, 0.79, 0.83, 0.81])
D_T = np.array([0.02, 0.01, 0.03, -0.01, 0.02])
B_T = A_T + D_T


def test_corrected_t_test_hand_computed():
    d_mean = 0.014
    var = 2.3e-4
    factor = 1 / 5 + 160 / 600
    t = d_mean / math.sqrt(factor * var)
    p = 2 * scipy.stats.t.sf(t, 4)
    assert t == pytest.approx(1.35133, abs=1e-5)
    assert p == pytest.approx(0.2480, abs=1e-4)

    result = corrected_t_test(A_T, B_T, n_train=600, n_test=160)
    assert result.statistic == pytest.approx(t, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.n == 5
    assert result.method == "Nadeau-Bengio corrected resampled t-test"
    # a worse b flips the sign of t, not p
    flipped = corrected_t_test(B_T, A_T, n_train=600, n_test=160)
    assert flipped.statistic == pytest.approx(-t, rel=1e-9)
    assert flipped.p_value == pytest.approx(p, rel=1e-9)


def test_corrected_t_test_is_wider_than_plain_and_reduces_to_it():
    plain = scipy.stats.ttest_rel(B_T, A_T)
    assert float(plain.statistic) == pytest.approx(2.06419, abs=1e-5)
    corrected = corrected_t_test(A_T, B_T, n_train=600, n_test=160)
    assert abs(corrected.statistic) < abs(float(plain.statistic))
    assert corrected.p_value > float(plain.pvalue)
    # n_test/n_train -> 0 leaves 1/J: the plain paired t = d̄ / sqrt(σ̂²/J)
    uncorrected = corrected_t_test(A_T, B_T, n_train=600, n_test=0)
    assert uncorrected.statistic == pytest.approx(float(plain.statistic), rel=1e-9)
    assert uncorrected.p_value == pytest.approx(float(plain.pvalue), rel=1e-9)


def test_corrected_t_test_zero_variance():
    a = [0.80, 0.70, 0.90]
    same = corrected_t_test(a, a, n_train=100, n_test=50)
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    # 0.81 - 0.80, 0.71 - 0.70, 0.91 - 0.90: equal once float noise is dropped
    better = corrected_t_test(a, [0.81, 0.71, 0.91], n_train=100, n_test=50)
    assert (better.statistic, better.p_value) == (math.inf, 0.0)
    assert "zero variance" in better.note
    worse = corrected_t_test([0.81, 0.71, 0.91], a, n_train=100, n_test=50)
    assert worse.statistic == -math.inf


@pytest.mark.parametrize(("n_train", "n_test"), [(0, 10), (-5, 10), (100, -1), (math.nan, 10)])
def test_corrected_t_test_rejects_bad_sizes(n_train, n_test):
    with pytest.raises(ValueError):
        corrected_t_test(A_T, B_T, n_train=n_train, n_test=n_test)


def test_holm_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)


def test_holm_keeps_nan_and_adjusts_the_rest():
    adjusted = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(adjusted[1])
    assert [adjusted[i] for i in (0, 2, 3, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)
    assert all(math.isnan(x) for x in holm([math.nan, math.nan]))
    assert holm([]) == []
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_holm_rejects_out_of_range():
    with pytest.raises(ValueError):
        holm([0.5, 1.5])
