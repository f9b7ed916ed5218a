"""A Stack at submit: expand points each fold at its parts' fold folders (pure), and submit refuses, before Ray
starts, a part that is unfinished, lacks the fold, ran another split or dataset, or was fitted on the validation
records itself, naming the part's job and fold folder; a stack of fitting parts gets their model configs inline.

The part folds are written by the fold log itself (FoldLog.open, and finish with a result), as a trial writes
them; no training is needed for what submit reads (scores.json, job.json, model.json)."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecgcore.config.modelfile import parse_model
from ecgcore.training.loop import TrainResult
from orchestrator.cli import main
from orchestrator.commands.submit import SubmitOptions, plan, resolve_stack_parts
from orchestrator.logdir.writer import FoldLog
from tests.conftest import ROOT, tiny_model, write_json
from tests.ecgcore.test_train import make_task

GBM = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())
STACK = json.loads((ROOT / "models" / "Stack_gbm_cnn.json").read_text())
HYBRID = {**json.loads((ROOT / "models" / "HybridStack.json").read_text()),
          "model_parameters": {"deep": tiny_model("CNN"), "features": GBM, "stacker": "logistic"}}
PARTS = ["FeatureGBM/gbm", "CNN/cnn"]
SPLIT = "split_3_3_1"


def write_part(log: Path, part: str, fold: int, data, model: dict, split: str = SPLIT, finished: bool = True) -> Path:
    """Fold `fold` of the part's job as the fold log writes it: job.json and model.json, and once finished
    predictions.csv and scores.json."""
    arch, job = part.split("/")
    task = replace(make_task(data, log / part / f"fold{fold}", model, split=split, fold=fold),
                   task_id=f"{part}/fold{fold}", job=job, model_file=job)
    fold_log = FoldLog(task, {"model": job, "split": split, "cvids": [fold]}, {})
    fold_log.open()
    if finished:
        score = {"score": 0.5, "accuracy": 0.5, "f1": {}}
        fold_log.finish(TrainResult(scores={"train": score, "valid": score, "test": score}, best_epoch=1, epochs_run=1,
                                    stop_reason="max_epochs", info={},
                                    predictions={"names": ["A00001"], "targets": np.array([0]),
                                                 "probs": np.array([[0.7, 0.1, 0.1, 0.1]])}))
    return log / part / f"fold{fold}"


def stack_files(tmp_path, cvids=(0,), parts=PARTS) -> Path:
    write_json(tmp_path / "models" / "s.json", {**STACK, "model_parameters": {"parts": parts}})
    return write_json(tmp_path / "jobs" / "j.json", {"stk": {"model": "s", "split": SPLIT, "cvids": list(cvids)}})


def test_expand_points_each_fold_at_its_parts_fold_folders(tmp_path):
    jobs = stack_files(tmp_path, cvids=(0, 2))
    for log, joined in ((str(tmp_path / "log"), str(tmp_path / "log")), ("s3://bucket/log", "s3://bucket/log")):
        _, tasks = plan(SubmitOptions(job_file=str(jobs), log_dir=log), tmp_path)
        assert [t.part_folds for t in tasks] == [tuple(f"{joined}/{p}/fold{k}" for p in PARTS) for k in (0, 2)]


def test_fitting_parts_give_the_stack_their_model_configs(synth_dir, tmp_path):
    log = tmp_path / "log"
    for part, model in zip(PARTS, (GBM, tiny_model("CNN")), strict=True):
        write_part(log, part, 0, synth_dir, model)
    _, tasks = plan(SubmitOptions(job_file=str(stack_files(tmp_path)), log_dir=str(log),
                                  models_dir=str(tmp_path / "models")), tmp_path)
    tasks = [replace(t, data_dir=str(synth_dir)) for t in tasks]
    (task,) = resolve_stack_parts(tasks)
    models = task.model.model_parameters.models
    assert [m.model_name for m in models] == ["FeatureGBM", "CNN"]
    assert models[1] == parse_model(tiny_model("CNN"), "m.json")
    assert set(task.model.model_parameters.part_models()) == set(PARTS)


@pytest.mark.parametrize("case, message", [
    ("unfinished", "part CNN/cnn, fold folder {log}/CNN/cnn/fold0: unfinished (no scores.json)"),
    ("missing fold", "part FeatureGBM/gbm, fold folder {log}/FeatureGBM/gbm/fold1: job FeatureGBM/gbm has no fold 1"),
    ("other split", "part CNN/cnn, fold folder {log}/CNN/cnn/fold0: trained on split split_5_6_14, this stack "
                    "runs split_3_3_1"),
    ("other dataset", "part CNN/cnn, fold folder {log}/CNN/cnn/fold0: trained on dataset {other}, this stack's "
                      "is {data}"),
    ("fitted on valid", "part CNN/cnn, fold folder {log}/CNN/cnn/fold0: it cannot be a part: its logistic stacker "
                        "was fitted on the validation records"),
    ("same submit", "part CNN/cnn, fold folder {log}/CNN/cnn/fold0: this submit trains it too"),
])
def test_submit_refuses_a_part_that_cannot_be_stacked_before_ray_starts(synth_dir, tmp_path, capsys, case, message):
    log, other = tmp_path / "log", tmp_path / "other"
    other.mkdir()
    write_part(log, PARTS[0], 0, synth_dir, GBM)
    cnn = {"unfinished": dict(finished=False), "other split": dict(split="split_5_6_14"), "missing fold": {},
           "other dataset": dict(data=other), "fitted on valid": dict(model=HYBRID), "same submit": {}}[case]
    write_part(log, PARTS[1], 0, cnn.pop("data", synth_dir), cnn.pop("model", tiny_model("CNN")), **cnn)
    jobs = stack_files(tmp_path, cvids=(0, 1) if case == "missing fold" else (0,))
    if case == "same submit":  # the CNN job beside the stack in its job file
        write_json(tmp_path / "models" / "cnn.json", tiny_model("CNN"))
        write_json(jobs, {**json.loads(jobs.read_text()), "cnn": {"model": "cnn", "split": SPLIT, "cvids": [0]}})
    code = main(["submit", str(jobs), "--data", str(synth_dir), "--log-dir", str(log), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message.format(log=log, other=other, data=synth_dir) in err
    assert not (log / "Stack").exists()  # refused before anything was written for the stack
