"""The `predict` command: classify records with a fold's best model or a job's folds.

RUN_DIR is a fold folder (log/<arch>/<job>/fold<k>, its best_model.pt) or a
job folder (the mean probabilities of all its finished folds). Every record
with a .hea file in the input folder is classified. The answers are written
in the format of the challenge the job was trained for:
  CinC 2017: OUTPUT is one file of "A00001,N" lines;
  CinC 2020/2021: OUTPUT is a folder of the challenge's per-record files,
  <record>.csv (#record, the class codes, the binary labels, the
  probabilities), which `score` reads. A fold's labels come from its
  per-class thresholds (tuned on its validation fold); a job's folds are
  ensembled by averaging both their probabilities and their thresholds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.data.pipeline import pipeline_for, prepare_records
from ecgcore.errors import ProjectError
from ecgcore.models import create_model
from ecgcore.tracks import Records, track_for
from ecgcore.training.loop import predict_proba
from orchestrator.commands.score import write_output_file
from orchestrator.logdir.reader import BEST_MODEL, MODEL, FoldDir, JobDir


def fold_dirs(run_dir: Path) -> list[FoldDir]:
    """The fold itself (a fold folder) or the job's folds with a model (a job folder)."""
    if FoldDir(run_dir).has_model:
        return [FoldDir(run_dir)]
    folds = [f for f in JobDir(run_dir).folds() if f.has_model]
    if not folds:
        raise ProjectError(f"{run_dir}: neither a fold folder with {BEST_MODEL} nor a job folder with folds")
    return folds


def read_inputs(input_dir: Path, track) -> Records:
    """The records to classify, without labels."""
    if not input_dir.is_dir():
        raise ProjectError(f"input folder {input_dir} does not exist")
    return track.read_unlabelled(str(input_dir))


def fold_probabilities(fold: FoldDir, records: Records, prepared_by: dict | None = None) -> np.ndarray:
    """Class probabilities of one fold's best model, preprocessed as that fold was trained.

    prepared_by keeps the prepared records per preprocessing across the calls of one command, so
    the folds of a job (which share it) preprocess the records once: for a features model that is
    the feature extraction, the slowest step.
    """
    model_cfg = parse_model(read_json(fold.file(MODEL)), fold.file(MODEL))
    track = track_for(fold.challenge)
    trained_fs = (fold.scores() or {}).get("source_fs")
    pipeline = pipeline_for(model_cfg, records, trained_fs)
    key = (repr(model_cfg.preprocessing), pipeline.inputs.kind, pipeline.source_fs)
    prepared = (prepared_by or {}).get(key)
    if prepared is None:
        prepared = prepare_records(pipeline, records)
        if prepared_by is not None:
            prepared_by[key] = prepared
    items = pipeline.eval_items(prepared)
    model = load_network(fold, model_cfg, pipeline.inputs, len(track.class_names))
    return predict_proba(model, pipeline, items, items.owners, len(records), torch.device("cpu"),
                         multilabel=track.multilabel)


def load_network(fold: FoldDir, model_cfg, inputs, n_classes: int) -> torch.nn.Module:
    """The fold's best model on the CPU, in eval mode (predict and export load it alike)."""
    model = create_model(model_cfg, inputs, n_classes)
    model.load_state_dict(torch.load(fold.file(BEST_MODEL), map_location="cpu", weights_only=True))
    return model.eval()


def fold_thresholds(fold: FoldDir, track) -> np.ndarray:
    """A multi-label fold's per-class thresholds from its scores.json (0.5 where it has none)."""
    stored = (fold.scores() or {}).get("thresholds")
    if not stored:
        return np.full(len(track.class_names), 0.5)
    return np.array([stored[c] for c in track.class_names], dtype=np.float64)


def ensemble_probabilities(folds: list[FoldDir], records: Records, track) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean probabilities over the folds and, for multi-label jobs, their mean thresholds."""
    prepared_by = {}
    probs = np.mean([fold_probabilities(f, records, prepared_by) for f in folds], axis=0)
    if not track.multilabel:
        return probs, None
    return probs, np.mean([fold_thresholds(f, track) for f in folds], axis=0)


def predict(run_dir: str | Path, input_dir: str | Path, output: str | Path, say=print) -> int:
    folds = fold_dirs(Path(run_dir))
    challenges = {f.challenge for f in folds}
    if len(challenges) != 1:
        raise ProjectError(f"{run_dir}: folds were trained for different challenges {sorted(challenges)}")
    track = track_for(challenges.pop())
    records = read_inputs(Path(input_dir), track)
    probs, thresholds = ensemble_probabilities(folds, records, track)
    output = Path(output)
    if track.multilabel:
        write_output_folder(output, records.names, track, probs, thresholds)
        say(f"{len(records)} record(s) classified with {len(folds)} fold model(s) -> {output}/<record>.csv")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text("".join(f"{n},{track.class_names[int(i)]}\n"
                           for n, i in zip(records.names, probs.argmax(axis=1), strict=True)))
    os.replace(tmp, output)
    say(f"{len(records)} record(s) classified with {len(folds)} fold model(s) -> {output}")
    return 0


def write_output_folder(output: Path, names, track, probs: np.ndarray, thresholds: np.ndarray) -> None:
    """One challenge output file per record; each is written whole (a temporary name, then a rename)."""
    if output.exists() and not output.is_dir():
        raise ProjectError(f"{output}: exists and is not a folder (12-lead predictions are one file per record)")
    output.mkdir(parents=True, exist_ok=True)
    codes = list(track.classes.names)
    for name, p in zip(names, probs, strict=True):
        tmp = output / f".{name}.csv.tmp"
        write_output_file(tmp, name, codes, p >= thresholds, p)
        os.replace(tmp, output / f"{name}.csv")

