"""The 12-lead track without Ray: multi-label training with each loss, the fold log, predict, score,
ensemble and summarize on synthetic 12-lead records."""

import csv
import json

import numpy as np
import pytest

from ecgcore.metrics.challenge import scored_classes
from ecgcore.training.train import train_task
from orchestrator.cli import main
from orchestrator.commands.summarize import summarize
from orchestrator.logdir.writer import FoldLog, hotlog_columns
from tests.conftest import tiny_signal_model
from tests.ecgcore.test_train import Recorder, make_task

CLASSES_2021 = scored_classes(2021)


def model12(**loss):
    return tiny_signal_model(loss_function_parameters=loss, preprocessing={"fs": 100, "standardize": True},
                             training_parameters={"batch_size": 8})


def task12(data_dir, out_dir, model=None, split="split_3_3_1", fold=1):
    return make_task(data_dir, out_dir, model or model12(loss="bce"), split=split, fold=fold, challenge=2021)


@pytest.mark.parametrize("loss", ["bce", "weighted_bce", "confusion_bce", "challenge"])
def test_each_multilabel_loss_trains_and_scores(synth12_dir, tmp_path, loss):
    rec = Recorder()
    result = train_task(task12(synth12_dir, tmp_path, model12(loss=loss)), rec)
    assert [r["epoch"] for r in rec.rows] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) for r in rec.rows)
    assert {"valid_score", "valid_auroc", "valid_auprc", "test_score"} <= set(rec.rows[0])
    test = result.scores["test"]
    assert test["score"] == test["challenge_metric"] and -1.5 < test["score"] <= 1
    assert set(test["f1"]) == set(CLASSES_2021.abbreviations)
    assert len(result.thresholds) == 26 and all(0 < t < 1 for t in result.thresholds)
    probs = result.predictions["probs"]
    assert probs.shape == (test["n"], 26) and probs.min() >= 0 and probs.max() <= 1
    assert result.info["loss"] == loss and ("positive_weights" in result.info) == (loss == "weighted_bce")


def test_multilabel_training_repeats_exactly_with_mixup_and_smoothing(synth12_dir, tmp_path):
    model = tiny_signal_model(loss_function_parameters={"loss": "challenge", "label_smoothing": 0.1},
                              training_parameters={"batch_size": 8, "mixup": 0.4})
    a = train_task(task12(synth12_dir, tmp_path, model))
    b = train_task(task12(synth12_dir, tmp_path, model))
    assert np.array_equal(a.predictions["probs"], b.predictions["probs"])
    assert a.thresholds == b.thresholds


def test_lead_subset_trains_a_two_lead_model(synth12_dir, tmp_path):
    model = tiny_signal_model(preprocessing={"fs": 100, "leads": ["II", "V2"]})
    result = train_task(task12(synth12_dir, tmp_path, model))
    assert np.isfinite(result.scores["test"]["score"])


def test_validation_thresholds_score_the_test_fold(synth12_dir, tmp_path):
    """The test score uses the validation fold's thresholds, recomputable from the saved predictions."""
    from ecgcore.tracks import open_track

    result = train_task(task12(synth12_dir, tmp_path))
    track = open_track("cinc2021")
    again = track.report(result.predictions["targets"], result.predictions["probs"], result.thresholds)
    assert again["score"] == pytest.approx(result.scores["test"]["score"])


@pytest.fixture(scope="module")
def finished_job(synth12_dir, tmp_path_factory):
    """Three folds of a 12-lead job written by FoldLog, as a trial writes them."""
    log = tmp_path_factory.mktemp("log12")
    for fold in range(3):
        out = log / "GlobalSkipNet" / "job12" / f"fold{fold}"
        task = task12(synth12_dir, out, split="split_3_3_1_holdout", fold=fold)
        job = {"model": "tiny", "split": task.split, "cvids": [0, 1, 2], "challenge": 2021}
        fold_log = FoldLog(task, job, {"git": "test"})
        fold_log.open()
        fold_log.finish(train_task(task, fold_log))
    return log


def test_fold_log_of_a_multilabel_fold(finished_job):
    fold = finished_job / "GlobalSkipNet" / "job12" / "fold0"
    scores = json.loads((fold / "scores.json").read_text())
    assert scores["challenge"] == 2021 and scores["classes"] == list(CLASSES_2021.abbreviations)
    assert set(scores["thresholds"]) == set(CLASSES_2021.abbreviations)
    with open(fold / "hotlog.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == hotlog_columns(make_task(".", ".", model12(loss="bce"), challenge=2021))
    assert "valid_auroc" in rows[0] and len(rows) == 2
    with open(fold / "predictions.csv") as fh:
        preds = list(csv.DictReader(fh))
    assert len(preds) == scores["test"]["n"] and "p_NSR" in preds[0] and "labels" in preds[0]
    known = set(CLASSES_2021.abbreviations)
    assert all(set(p["labels"].split()) <= known and set(p["predictions"].split()) <= known for p in preds)
    assert any("NSR" in p["labels"] for p in preds)


def test_predict_writes_challenge_files_that_score_reads(finished_job, synth12_dir, tmp_path, capsys):
    out = tmp_path / "outputs"
    assert main(["predict", "--run", str(finished_job / "GlobalSkipNet" / "job12"), "--input", str(synth12_dir),
                 "--output", str(out)]) == 0
    files = sorted(out.glob("*.csv"))
    assert len(files) == 48
    lines = files[0].read_text().splitlines()
    assert lines[0] == f"#{files[0].stem}" and lines[1].split(",") == list(CLASSES_2021.names)
    binary, probs = [int(v) for v in lines[2].split(",")], [float(v) for v in lines[3].split(",")]
    thresholds = np.mean([list(json.loads((finished_job / "GlobalSkipNet" / "job12" / f"fold{k}" /
                                           "scores.json").read_text())["thresholds"].values()) for k in range(3)],
                         axis=0)
    assert binary == [int(p >= t) for p, t in zip(probs, thresholds, strict=True)]  # mean fold thresholds
    capsys.readouterr()
    assert main(["score", "--labels", str(synth12_dir), "--outputs", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["records"] == 48 and -1.5 < metrics["challenge_metric"] <= 1


def test_ensemble_and_summarize_a_multilabel_job(finished_job, capsys):
    job_dir = finished_job / "GlobalSkipNet" / "job12"
    assert main(["ensemble", str(job_dir)]) == 0
    ens = json.loads((job_dir / "ensemble.json").read_text())
    assert ens["challenge"] == 2021 and set(ens["single_fold_scores"]) == {"0", "1", "2"}
    assert set(ens["thresholds"]) == set(CLASSES_2021.abbreviations)
    table = summarize(finished_job, "GlobalSkipNet")
    assert "auroc" in table and "auprc" in table and "ens(HO)" in table and "naive" not in table
    assert "CinC 2021 challenge metric" in table and "test F1 per class" in table
    summary = json.loads((finished_job / "GlobalSkipNet" / "summary.json").read_text())
    entry = summary["jobs"]["job12"]
    assert entry["challenge"] == 2021 and len(entry["folds"]) == 3 and entry["complete"]
    assert set(entry["mean"]) == {"score", "auroc", "auprc", "f_measure", "accuracy"}
    scores = [json.loads((job_dir / f"fold{k}" / "scores.json").read_text())["test"]["score"] for k in range(3)]
    assert entry["mean"]["score"] == pytest.approx(np.mean(scores))


def test_predict_refuses_records_at_another_rate_than_the_training_data(synth12_dir, tmp_path, capsys):
    """Without preprocessing.fs a model runs at its training rate; 250 Hz input must not pass silently."""
    from ecgcore.io.synth12 import write_synthetic_12lead

    model = tiny_signal_model(preprocessing={"fs": None}, training_parameters={"max_epochs": 1})
    out = tmp_path / "log" / "GlobalSkipNet" / "native" / "fold1"
    task = task12(synth12_dir, out, model)
    fold_log = FoldLog(task, {"challenge": 2021}, {})
    fold_log.open()
    fold_log.finish(train_task(task, fold_log))
    assert json.loads((out / "scores.json").read_text())["source_fs"] == 500
    write_synthetic_12lead(tmp_path / "slow", 3, seed=1, fs=250)
    assert main(["predict", "--run", str(out), "--input", str(tmp_path / "slow"),
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is at 250 Hz, the model takes 500 Hz" in err and "A00001" in err


def test_summarize_csv_of_a_multilabel_job(finished_job, capsys):
    capsys.readouterr()
    assert main(["summarize", "GlobalSkipNet", "--log-dir", str(finished_job), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split(",")
    # The old columns first and unchanged; the bootstrap intervals are appended after them.
    assert header[:8] == ["job", "fold", "score", "auroc", "auprc", "f_measure", "accuracy", "challenge"]
    assert header[8:11] == ["score_pooled", "score_ci_low", "score_ci_high"]
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 3 and all(r[0] == "job12" and r[7] == "2021" and r[8] for r in rows)
    low, pooled, high = float(rows[0][9]), float(rows[0][8]), float(rows[0][10])
    assert low <= pooled <= high


def test_compare_and_report_two_multilabel_jobs(finished_job, capsys):
    """The 12-lead path of compare and report: multi-label predictions pooled, per-class F1, the challenge metric."""
    import shutil

    copy = finished_job / "GlobalSkipNet" / "job12_copy"
    shutil.copytree(finished_job / "GlobalSkipNet" / "job12", copy)
    capsys.readouterr()
    assert main(["compare", "GlobalSkipNet/job12", "GlobalSkipNet/job12_copy", "--log-dir", str(finished_job),
                 "--per-class", "--json", "--resamples", "100"]) == 0
    metrics = json.loads(capsys.readouterr().out)["pairs"][0]["metrics"]
    assert {"score", "auroc", "auprc", "f_measure", "accuracy", "F1_AF"} <= set(metrics)
    for m in metrics.values():  # the same predictions: no difference anywhere, and nothing claimed
        assert m["bootstrap"] == {"delta": 0.0, "low": 0.0, "high": 0.0}
        assert m["wilcoxon"]["p"] == 1.0 and m["corrected_t"]["p"] == 1.0
    out = finished_job / "report12.html"
    assert main(["report", "GlobalSkipNet", "--log-dir", str(finished_job), "--out", str(out),
                 "--resamples", "50"]) == 0
    text = out.read_text()
    assert "auroc" in text and "Verdict: GlobalSkipNet/job12_copy vs GlobalSkipNet/job12: no evidence" in text
    assert text.count("<img") >= 5  # forest plot, and curves and per-class table of each job
    shutil.rmtree(copy)
