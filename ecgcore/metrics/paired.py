"""Paired tests that compare two cross-validated models on their per-fold scores.

Given the scores of models A and B on the same folds (same split, same repeats, in
the same order), these functions test whether B differs from A:

- `wilcoxon_test`: two-sided Wilcoxon signed-rank test on the fold differences
  (`scipy.stats.wilcoxon`), zero differences handled by splitting their ranks
  between the signs ("zsplit"), as recommended by Demšar (2006).
- `corrected_t_test`: the corrected resampled t-test of Nadeau & Bengio (2003) in
  the repeated k-fold form of Bouckaert & Frank (2004). Folds share training
  records, so their scores are correlated and the plain paired t-test is too
  liberal; the correction inflates the variance by the test/train size ratio.
- `holm`: Holm (1979) step-down adjustment of several p-values
  (`statsmodels.stats.multitest.multipletests`).

With few folds the Wilcoxon test cannot reach small p-values at all (5 folds:
p >= 0.0625), which `min_wilcoxon_p` and each result's `note` make explicit.

References:
    J. Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets",
        JMLR 7:1-30, 2006.
    C. Nadeau and Y. Bengio, "Inference for the Generalization Error",
        Machine Learning 52:239-281, 2003.
    R. R. Bouckaert and E. Frank, "Evaluating the Replicability of Significance
        Tests for Comparing Learning Algorithms", PAKDD 2004, LNCS 3056:3-12.
    S. Holm, "A Simple Sequentially Rejective Multiple Test Procedure",
        Scandinavian Journal of Statistics 6(2):65-70, 1979.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Fold scores are usually in [0, 1]; float subtraction leaves noise of ~1e-16 that
# would make |0.768 - 0.763| and |0.931 - 0.936| rank differently. Rounding the
# differences at this many decimals removes that noise and nothing real.
_DIFF_DECIMALS = 12
# scipy.stats.wilcoxon(method="auto") uses the exact null distribution up to this
# n when there are no zeros or ties, and an exhaustive permutation test up to
# _MAX_PERMUTATION_N when there are (2**13 sign flips < its 9999 resamples).
_MAX_EXACT_N = 50
_MAX_PERMUTATION_N = 13


@dataclass(frozen=True)
class TestResult:
    """The outcome of one paired test; `statistic` and `p_value` as scipy reports them."""

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float
    method: str  # e.g. "Wilcoxon signed-rank, exact" / "Nadeau-Bengio corrected resampled t-test"
    n: int  # number of paired fold differences used
    note: str = ""  # e.g. the smallest attainable p, ties/zeros handling


def fold_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per-fold differences b - a (rounded at 1e-12 to drop float noise).

    Raises ValueError unless a and b are 1-D, of equal length >= 2 and finite.
    """
    a_arr = np.asarray(a, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if a_arr.ndim != 1 or b_arr.ndim != 1:
        raise ValueError(f"fold scores must be 1-D, got shapes {a_arr.shape} and {b_arr.shape}")
    if a_arr.size != b_arr.size:
        raise ValueError(f"unpaired fold scores: {a_arr.size} for a, {b_arr.size} for b")
    if a_arr.size < 2:
        raise ValueError(f"need at least 2 paired folds, got {a_arr.size}")
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("fold scores must be finite (no NaN or inf)")
    return np.round(b_arr - a_arr, _DIFF_DECIMALS)


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p the exact Wilcoxon signed-rank test can give with n differences: 2 / 2**n."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(1.0, 2.0 / 2.0**n)


def _few_folds_note(n: int) -> str:
    if n >= 6:
        return ""
    return f"with {n} folds the smallest two-sided p is {min_wilcoxon_p(n):g}, so p < 0.05 is impossible"


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of the fold differences b - a.

    Zero differences keep their ranks, split half to each sign (zero_method="zsplit").
    The null distribution is the one scipy's method="auto" picks, made explicit:
    exact when there are no zeros or tied |differences| and n <= 50; otherwise an
    exhaustive sign-flip permutation test (exact given the observed ranks) when
    n <= 13, else the normal approximation with tie-corrected variance.
    """
    d = fold_differences(a, b)
    n = int(d.size)
    few = _few_folds_note(n)
    n_zero = int(np.count_nonzero(d == 0))
    if n_zero == n:
        return TestResult(0.0, 1.0, "Wilcoxon signed-rank", n, _join("all differences are 0: no evidence", few))
    n_tied = n - int(np.unique(np.abs(d)).size)
    if n_zero == 0 and n_tied == 0 and n <= _MAX_EXACT_N:
        method, label, null = "exact", "Wilcoxon signed-rank, exact", "exact null distribution"
    elif n <= _MAX_PERMUTATION_N:
        method = stats.PermutationMethod()
        label = "Wilcoxon signed-rank, exact permutation"
        null = f"exhaustive permutation null over 2**{n} sign flips"
    else:
        method, label = "asymptotic", "Wilcoxon signed-rank, normal approximation"
        null = "normal approximation, tie-corrected variance, no continuity correction"
    res = stats.wilcoxon(d, zero_method="zsplit", alternative="two-sided", method=method)
    handling = []
    if n_zero:
        handling.append(f"{n_zero} zero difference(s), ranks split between signs (zsplit)")
    if n_tied:
        handling.append(f"tied |differences| get average ranks ({n - n_tied} distinct of {n})")
    return TestResult(float(res.statistic), float(res.pvalue), label, n, _join(null, *handling, few))


def corrected_t_test(a: Sequence[float], b: Sequence[float], n_train: float, n_test: float) -> TestResult:
    """Nadeau-Bengio corrected resampled t-test of b - a over J = k folds x r repeats.

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d, ddof=1)), df = J - 1, two-sided p.
    n_train and n_test are the (mean) numbers of training and test records per fold;
    n_test = 0 gives back the plain paired t-test.
    """
    if not (math.isfinite(n_train) and n_train > 0):
        raise ValueError(f"n_train must be a positive number, got {n_train}")
    if not (math.isfinite(n_test) and n_test >= 0):
        raise ValueError(f"n_test must be a non-negative number, got {n_test}")
    d = fold_differences(a, b)
    j = int(d.size)
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    factor = 1.0 / j + n_test / n_train
    method = "Nadeau-Bengio corrected resampled t-test"
    note = f"df={j - 1}, variance factor 1/J + n_test/n_train = {factor:.6g}"
    if var == 0.0:
        if mean == 0.0:
            return TestResult(0.0, 1.0, method, j, _join(note, "all differences are 0"))
        t = math.copysign(math.inf, mean)
        return TestResult(t, 0.0, method, j, _join(note, f"all differences equal {mean:g}: zero variance"))
    t = mean / math.sqrt(factor * var)
    p = float(min(1.0, 2.0 * stats.t.sf(abs(t), j - 1)))
    return TestResult(t, p, method, j, note)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order; NaN stays NaN and is not counted."""
    from statsmodels.stats.multitest import multipletests  # slow import, only needed here

    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-D, got shape {p.shape}")
    present = ~np.isnan(p)
    if ((p[present] < 0) | (p[present] > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    adjusted = np.full(p.shape, np.nan)
    if present.any():
        adjusted[present] = multipletests(p[present], method="holm")[1]
    return [float(x) for x in adjusted]
