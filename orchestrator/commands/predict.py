"""The `predict` command: classify records with a fold's best model or a job's folds.

RUN_DIR is a fold folder (log/<arch>/<job>/fold<k>, its best_model.pt) or a
job folder (the mean probabilities of all its finished folds). Every record
with a .hea file in the input folder is classified. The job's track reads the
records and writes the answers in its format (ecgcore.tracks):
  CinC 2017, a single-label labels file: OUTPUT is one file of "A00001,N" lines;
  CinC 2020/2021: OUTPUT is a folder of the challenge's per-record files,
  <record>.csv (#record, the class codes, the binary labels, the
  probabilities), which `score` reads;
  PTB-XL, a multi-label labels file: OUTPUT is one CSV, a row per record with
  its classes and every probability.
A fold's labels come from its per-class thresholds (tuned on its validation
fold); a job's folds are ensembled by averaging both their probabilities and
their thresholds.
"""

from __future__ import annotations

from pathlib import Path

from ecgcore.errors import ProjectError
from ecgcore.records import Records
from ecgcore.trained import TrainedFold, ensemble
from orchestrator.logdir.reader import BEST_MODEL, FoldDir, JobDir


def fold_dirs(run_dir: Path) -> list[FoldDir]:
    """The fold itself (a fold folder) or the job's folds with a model (a job folder)."""
    if FoldDir(run_dir).has_model:
        return [FoldDir(run_dir)]
    folds = [f for f in JobDir(run_dir).folds() if f.has_model]
    if not folds:
        raise ProjectError(f"{run_dir}: neither a fold folder with {BEST_MODEL} nor a job folder with folds")
    return folds


def trained_folds(run_dir: Path) -> list[TrainedFold]:
    """fold_dirs(run_dir), each loaded as the artefact that classifies records (ecgcore.trained)."""
    return [TrainedFold.load(f.path) for f in fold_dirs(run_dir)]


def read_inputs(input_dir: Path, track) -> Records:
    """The records to classify, without labels."""
    if not input_dir.is_dir():
        raise ProjectError(f"input folder {input_dir} does not exist")
    return track.read_unlabelled(str(input_dir))


def predict(run_dir: str | Path, input_dir: str | Path, output: str | Path, say=print) -> int:
    folds = trained_folds(Path(run_dir))
    tracks = {f.track for f in folds}
    if len(tracks) != 1:
        raise ProjectError(f"{run_dir}: folds were trained on different tracks {sorted(t.name for t in tracks)}")
    track = tracks.pop()
    records = read_inputs(Path(input_dir), track)
    probs, thresholds = ensemble(folds, records)
    where = track.write_answers(Path(output), records.names, probs, thresholds)
    say(f"{len(records)} record(s) classified with {len(folds)} fold model(s) -> {where}")
    return 0
