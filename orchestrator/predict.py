"""The `predict` command: classify records with a fold's best model or a job's folds.

RUN_DIR is a fold folder (log/<arch>/<job>/fold<k>, its best_model.pt) or a
job folder (the mean probabilities of all its finished folds). Every record
with a .hea file in the input folder is classified, and the answers are
written in the CinC 2017 format: one "A00001,N" line per record.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ecgcore.cinc2017 import CLASSES, find_record_files, read_record
from ecgcore.data import Pipeline
from ecgcore.errors import ProjectError
from ecgcore.models import get_architecture
from ecgcore.train import predict_proba
from orchestrator.config import parse_model
from orchestrator.expand import BEST_MODEL
from orchestrator.schema import read_json


def fold_dirs(run_dir: Path) -> list[Path]:
    if (run_dir / BEST_MODEL).exists():
        return [run_dir]
    folds = sorted(d for d in run_dir.glob("fold*") if (d / BEST_MODEL).exists())
    if not folds:
        raise ProjectError(f"{run_dir}: neither a fold folder with {BEST_MODEL} nor a job folder with folds")
    return folds


def read_inputs(input_dir: Path) -> tuple[list[str], list[np.ndarray], int]:
    if not input_dir.is_dir():
        raise ProjectError(f"input folder {input_dir} does not exist")
    files = {n: f for n, f in find_record_files(input_dir).items() if f[0] is not None}
    if not files:
        raise ProjectError(f"{input_dir}: no records (.hea files)")
    names, signals, rates = [], [], set()
    for name in sorted(files):
        hea, mat = files[name]
        if mat is None:
            raise ProjectError(f"{hea}: record {name} has no .mat file")
        signal, fs = read_record(hea, mat)
        names.append(name)
        signals.append(signal)
        rates.add(fs)
    if len(rates) != 1:
        raise ProjectError(f"{input_dir}: records have different sampling rates {sorted(rates)}")
    return names, signals, rates.pop()


def fold_probabilities(fold: Path, signals: list[np.ndarray], fs: float) -> np.ndarray:
    """Class probabilities of one fold's best model, preprocessed as that fold was trained."""
    model_cfg = parse_model(read_json(fold / "model.json"), fold / "model.json")
    pipeline = Pipeline(model_cfg, fs, np.atleast_2d(signals[0]).shape[0])
    items, owners = pipeline.eval_items([pipeline.prepare(s) for s in signals])
    arch = get_architecture(model_cfg.model_name)
    model = arch.build(model_cfg.model_parameters, pipeline.inputs, len(CLASSES),
                       model_cfg.training_parameters.drop_rate)
    state = torch.load(fold / BEST_MODEL, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return predict_proba(model, pipeline, items, owners, len(signals), torch.device("cpu"))


def predict(run_dir: str | Path, input_dir: str | Path, output: str | Path) -> int:
    folds = fold_dirs(Path(run_dir))
    names, signals, fs = read_inputs(Path(input_dir))
    probs = np.mean([fold_probabilities(f, signals, fs) for f in folds], axis=0)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text("".join(f"{n},{CLASSES[int(i)]}\n" for n, i in zip(names, probs.argmax(axis=1), strict=False)))
    os.replace(tmp, output)
    print(f"{len(names)} record(s) classified with {len(folds)} fold model(s) -> {output}")
    return 0
