"""The stackers of stacked models, fitted on stacker inputs (records x parts' log-probabilities [+ features]).

`logistic_weights`: a multinomial logistic regression (scikit-learn), as the
weights and bias of an nn.Linear (HybridStack's and Stack's "logistic").
`inner_cv_trees`: LightGBM multiclass whose number of rounds a stratified
inner cross-validation on the stacker's own training records chooses (early
stop on the mean held-out log-loss), refitted on all of them (Stack's "trees").
scikit-learn and LightGBM are imported inside, so only a stacked model's fit loads them.
"""

from __future__ import annotations

import warnings

import numpy as np

ABSENT_BIAS = -30.0  # the logistic bias of a class absent from the stacker's records: never predicted


def logistic_weights(x: np.ndarray, labels: np.ndarray, c: float, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (classes, inputs), bias (classes,)) of a multinomial logistic regression with C = c."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=c, max_iter=2000).fit(x, labels)
    weight = np.zeros((n_classes, x.shape[1]))
    bias = np.full(n_classes, ABSENT_BIAS)
    if fit.classes_.size == 2:  # scikit-learn's binary model: one logit, split symmetrically
        coef, intercept = np.vstack([-fit.coef_[0] / 2, fit.coef_[0] / 2]), np.r_[-fit.intercept_, fit.intercept_] / 2
    else:
        coef, intercept = fit.coef_, fit.intercept_
    weight[fit.classes_], bias[fit.classes_] = coef, intercept
    return weight, bias


def inner_cv_trees(x: np.ndarray, labels: np.ndarray, n_classes: int, p, seed: int, threads: int) -> tuple[str, dict]:
    """LightGBM's model text and what was chosen: p (StackParams) gives the trees, the rounds at most, the wait and
    the inner folds; the rounds are those of the lowest mean log-loss of the inner folds' held-out records."""
    import lightgbm
    from sklearn.model_selection import StratifiedKFold

    params = {"objective": "multiclass", "num_class": n_classes, "learning_rate": p.learning_rate,
              "num_leaves": p.num_leaves, "min_child_samples": p.min_child_samples, "seed": seed,
              "deterministic": True, "force_col_wise": True, "num_threads": threads, "verbosity": -1}
    counts = np.bincount(labels, minlength=n_classes)
    with warnings.catch_warnings():  # a class with fewer records than folds: said in the fold's notes instead
        warnings.simplefilter("ignore", UserWarning)
        folds = list(StratifiedKFold(p.inner_folds, shuffle=True, random_state=seed).split(x, labels))
    history = lightgbm.cv(params, lightgbm.Dataset(x, labels), num_boost_round=p.max_rounds, folds=folds,
                          callbacks=[lightgbm.early_stopping(p.early_stop_wait, verbose=False)])
    losses = history["valid multi_logloss-mean"]
    rounds = int(np.argmin(losses)) + 1
    booster = lightgbm.train(params, lightgbm.Dataset(x, labels), num_boost_round=rounds)
    chosen = {"rounds": rounds, "inner_folds": p.inner_folds, "inner_logloss": float(losses[rounds - 1]),
              "records": int(labels.size)}
    few = [int(k) for k in np.flatnonzero((counts > 0) & (counts < p.inner_folds))]
    if few:
        chosen["classes_below_inner_folds"] = few
    return booster.model_to_string(), chosen
