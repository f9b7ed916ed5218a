"""Fitting a FeatureGBM on one fold: LightGBM boosting rounds, logged and validated like epochs.

The booster is LightGBM rather than scikit-learn's HistGradientBoosting:
LightGBM stops early on the fold's own validation part (HGB can only hold
out a random slice of the training records), calls back after every round
(so the hotlog gets one row per block of `validation_step` rounds), takes
per-record weights and missing values natively, and repeats exactly with
`deterministic` and a fixed seed and thread count. docs/benchmarks.md has
the measured comparison.

The model file's options keep their meaning where they have one for trees:
learning_rate is the shrinkage, max_epochs the number of rounds at most,
validation_step the rounds per hotlog row, early_stop_wait the rounds
without a lower validation loss before stopping, seed (mixed with the fold)
the booster's seed. Class weighting is the epoch loop's: each training
record weighs its class weight (class_penalty) times its class's
oversampling copies (dataset_compensation), which is what those options do
to the deep models' loss in expectation. The best round is the one with the
lowest class-weighted validation log-loss: smoother than the F1 score of a
few hundred records, and the objective the trees minimise.
"""

from __future__ import annotations

import time

import numpy as np

from ecgcore.features.extract import FEATURE_NAMES
from ecgcore.training.classify import class_weights, final_scores
from ecgcore.training.loop import FoldRun, TrainResult, oversampling_copies
from ecgcore.training.trainers import trainer


class _Rounds:
    """LightGBM callback: hotlog rows every validation_step rounds, early stop, time limit."""

    def __init__(self, run: FoldRun, matrices):
        self.task, self.fold, self.matrices, self.observer = run.task, run.fold, matrices, run.observer
        self.track = run.task.open_track()
        self.tp, self.started = run.task.model.training_parameters, run.started
        limit = run.task.time_limit_s
        self.deadline = None if limit is None else time.monotonic() + limit
        self.best_value, self.best_epoch, self.epoch, self.stop_reason = np.inf, 0, 0, "max_epochs"

    def __call__(self, env) -> None:
        import lightgbm

        self.epoch = env.iteration + 1
        losses = {name: value for name, _, value, _ in env.evaluation_result_list}
        if losses["valid"] < self.best_value:
            self.best_value, self.best_epoch = losses["valid"], self.epoch
        out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
        waited = self.epoch - self.best_epoch >= self.tp.early_stop_wait
        if self.epoch % self.tp.validation_step == 0 or self.epoch == self.task.max_epochs or out_of_time or waited:
            self.observer.on_validation(self._row(env.model, losses))
        if out_of_time or waited:
            self.stop_reason = "time_limit" if out_of_time else "early_stop"
            raise lightgbm.callback.EarlyStopException(self.best_epoch - 1, [])

    def _row(self, booster, losses: dict) -> dict:
        row = {"epoch": self.epoch, "best_epoch": self.best_epoch, "train_loss": losses["train"],
               "valid_loss": losses["valid"]}
        for part in ("valid", "test") if self.task.log_test_score else ("valid",):
            probs = booster.predict(self.matrices[part], num_iteration=self.epoch)
            report = self.track.report(getattr(self.fold, part).labels, probs)
            row.update({f"{part}_accuracy": report["accuracy"], f"{part}_score": report["score"],
                        f"{part}_f1": report["f1"]})
        return {**row, "learning_rate": self.tp.learning_rate, "elapsed_s": time.monotonic() - self.started}


def feature_matrix(subset) -> np.ndarray:
    """(records, features) float64 from a subset of prepared feature records (n_features, 1) each."""
    return np.stack([np.asarray(x, dtype=np.float64)[:, 0] for x in subset.signals])


def record_weights(labels: np.ndarray, weights: np.ndarray, compensation: float) -> np.ndarray:
    """Class weight x oversampling copies per record, scaled to mean 1."""
    w = (np.asarray(weights) * oversampling_copies(labels, compensation, len(weights)))[labels]
    return w / w.mean()


def extraction_notes(fold) -> list[str]:
    """One note per fold part naming the records whose features could not be extracted (NaN, kept)."""
    failed_column = FEATURE_NAMES.index("extraction_failed")
    notes = []
    for part in ("train", "valid", "test"):
        subset = getattr(fold, part)
        failed = [n for n, x in zip(subset.names, subset.signals, strict=True) if x[failed_column, 0] == 1.0]
        if failed:
            shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
            notes.append(f"{part}: feature extraction failed on {len(failed)} record(s), kept with missing "
                         f"features: {shown}")
    return notes


@trainer("boosting", replicas=False)
def fit_booster(run: FoldRun, model, track, info: dict, resume: dict | None, parts: dict) -> TrainResult:
    """A FeatureGBM: records weighted by class, the booster fitted with early stop, then the final scores."""
    info["class_weights"] = class_weights(run.fold.train.labels,
                                          run.task.model.loss_function_parameters.class_penalty,
                                          len(track.class_names)).tolist()
    rounds = train_booster(run, model, info)
    return final_scores(run, model, track, rounds, info)


def train_booster(run: FoldRun, model, info: dict) -> _Rounds:
    """Fit model (a BoostedTrees) on the fold and keep its best round; returns the rounds' record
    (best_epoch, epoch, stop_reason), which the final scoring reads as it reads an epoch loop's."""
    import lightgbm

    task, fold = run.task, run.fold
    tp, p = task.model.training_parameters, task.model.model_parameters
    matrices = {part: feature_matrix(getattr(fold, part)) for part in ("train", "valid", "test")}
    weights = np.asarray(info["class_weights"])
    train_w = record_weights(fold.train.labels, weights, tp.dataset_compensation)
    seed = int(np.random.SeedSequence([tp.seed, task.fold]).generate_state(1)[0] % (2**31 - 1))
    params = {"objective": "multiclass", "num_class": model.n_classes, "learning_rate": tp.learning_rate,
              "num_leaves": p.num_leaves, "max_depth": p.max_depth, "min_child_samples": p.min_child_samples,
              "feature_fraction": p.feature_fraction, "bagging_fraction": p.bagging_fraction,
              "bagging_freq": 1 if p.bagging_fraction < 1 else 0, "lambda_l2": p.lambda_l2,
              "seed": seed, "deterministic": True, "force_col_wise": True, "num_threads": task.threads,
              "verbosity": -1}
    train_set = lightgbm.Dataset(matrices["train"], fold.train.labels, weight=train_w, free_raw_data=False)
    valid_set = lightgbm.Dataset(matrices["valid"], fold.valid.labels, reference=train_set,
                                 weight=weights[fold.valid.labels])
    rounds = _Rounds(run, matrices)
    booster = lightgbm.train(params, train_set, num_boost_round=task.max_epochs, valid_sets=[train_set, valid_set],
                             valid_names=["train", "valid"], callbacks=[rounds])
    model.set_booster(booster.model_to_string(num_iteration=rounds.best_epoch))
    run.observer.on_best(model, rounds.best_epoch)
    info["notes"] = info.get("notes", []) + extraction_notes(fold)
    return rounds
