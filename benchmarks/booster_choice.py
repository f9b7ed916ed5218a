"""Benchmark: LightGBM against scikit-learn's HistGradientBoosting on the same features and folds.

    python benchmarks/booster_choice.py --data ../shared/ecg-data/training2017 --threads 2

The features are those FeatureGBM trains on (ecgcore.features.extract, through the
dataset preparation and its cache in --cache-dir). Both boosters get the same
5 stratified folds (seed 0), no class weights (as models/FeatureGBM.json), learning rate 0.05,
500 rounds, 31 leaves, no early stopping (so neither has an advantage from
its own stopping rule), the same thread count. Printed per booster: the
official CinC 2017 score (mean ± std over the folds), mean F1 per class and
the median fit time per fold.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ecgcore.data.pipeline import pipeline_for  # noqa: E402
from ecgcore.io.cache import dataset_signature, prepared_records, preprocessing_key  # noqa: E402
from ecgcore.metrics.cinc2017 import score_report  # noqa: E402
from ecgcore.tracks import open_track  # noqa: E402
from orchestrator.config.jobs import load_model  # noqa: E402

ROUNDS, RATE, LEAVES = 500, 0.05, 31


def feature_matrix(data: str, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(ROOT / "models", "FeatureGBM", "benchmark", "$")
    records = open_track("cinc2017").read(data)
    key = preprocessing_key(2017, data, model, dataset_signature(data))
    prepared = prepared_records(records, pipeline_for(model, records), cache_dir / f"{key}.npz")
    return np.stack([s[:, 0] for s in prepared.signals]).astype(np.float64), np.asarray(prepared.targets)


def fit_lightgbm(x, y, threads: int):
    import lightgbm

    params = {"objective": "multiclass", "num_class": 4, "learning_rate": RATE, "num_leaves": LEAVES,
              "num_threads": threads, "deterministic": True, "force_col_wise": True, "verbosity": -1, "seed": 0}
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=ROUNDS)
    return booster.predict


def fit_hgb(x, y, threads: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # HGB's threads are OpenMP's; threadpoolctl caps them to the same count as LightGBM's.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        clf = HistGradientBoostingClassifier(learning_rate=RATE, max_iter=ROUNDS, max_leaf_nodes=LEAVES,
                                             early_stopping=False, random_state=0).fit(x, y)
    return clf.predict_proba


def run(name: str, fit, x, y, folds, threads: int) -> dict:
    scores, f1s, times = [], [], []
    for train, test in folds:
        started = time.monotonic()
        predict = fit(x[train], y[train], threads)
        times.append(time.monotonic() - started)
        report = score_report(y[test], predict(x[test]).argmax(axis=1))
        scores.append(report["score"])
        f1s.append([report["f1"][c] for c in "NAO~"])
    f1 = np.mean(f1s, axis=0)
    print(f"{name:>22}: score {np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}  F1 N/A/O/~ "
          f"{' '.join(f'{v:.3f}' for v in f1)}  fit {np.median(times):.1f} s per fold (median)", flush=True)
    return {"score": scores, "fit_s": times}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", default=str(ROOT / "log" / ".cache"))
    args = p.parse_args()
    from sklearn.model_selection import StratifiedKFold

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?")
    print(f"{platform.node()}: {model_name}, {args.threads} threads; {ROUNDS} rounds, lr {RATE}, {LEAVES} leaves")
    x, y = feature_matrix(args.data, Path(args.cache_dir))
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    print(f"{len(y)} records, {x.shape[1]} features")
    run("LightGBM", fit_lightgbm, x, y, folds, args.threads)
    run("HistGradientBoosting", fit_hgb, x, y, folds, args.threads)


if __name__ == "__main__":
    main()
