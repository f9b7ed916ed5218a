"""One real Ray Tune submit of tiny jobs, checked file by file; then summarize, compare, report, predict."""

import csv
import json

import pytest
import torch

from orchestrator.cli import main
from orchestrator.commands.summarize import summarize
from tests.conftest import tiny_model, tiny_signal_model, write_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, synth_dir, ray_session):
    base = tmp_path_factory.mktemp("e2e")
    write_json(base / "models" / "tiny_cnn.json", tiny_model("CNN"))
    write_json(base / "models" / "tiny_crnn.json", tiny_model("CRNN"))
    write_json(base / "models" / "tiny_skip.json", tiny_signal_model())
    jobs = {
        "cnn_job": {"description": "tiny", "model": "tiny_cnn", "split": "split_3_3_1",
                    "log_en": "True", "log_test_score": "True", "cvids": [0, 1, 2]},
        "crnn_job": {"description": "tiny", "model": "tiny_crnn", "split": "split_3_3_1",
                     "log_en": "False", "log_test_score": "False", "cvids": [0, 1, 2]},
        # Repeated CV: folds 0 and 3 are fold 0 of repeats 0 and 1 (split_3_3_1, then split_3_3_2).
        "cnn_rep": {"model": "tiny_cnn", "split": "split_3_3_1_r2", "cvids": [0, 3]},
        "skip_job": {"model": "tiny_skip", "split": "split_3_3_1_holdout", "cvids": [0, 1]},
    }
    job_file = write_json(base / "jobs" / "tiny.json", jobs)
    code = main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(base / "log"),
                 "--cpus-per-task", "1"])
    return base, code


def test_submit_succeeds(finished_run):
    assert finished_run[1] == 0


def test_the_dataset_is_prepared_once_and_shared(finished_run):
    log = finished_run[0] / "log"
    # CNN and CRNN share one preprocessing (tiny_model), GlobalSkipNet has its own: two cache files.
    assert len(list((log / ".cache").glob("*.npz"))) == 2
    scores = [json.loads(p.read_text()) for p in log.glob("*/*/fold*/scores.json")]
    assert scores and all(s["shared_dataset"] for s in scores)  # from the object store, not re-read


def test_fold_folder_file_by_file(finished_run):
    fold = finished_run[0] / "log" / "CNN" / "cnn_job" / "fold1"
    job = json.loads((fold / "job.json").read_text())
    assert job["cvid"] == 1 and job["name"] == "cnn_job" and job["log_en"] is True
    model = json.loads((fold / "model.json").read_text())
    assert model["model_name"] == "CNN" and model["training_parameters"]["max_epochs"] == 2
    with open(fold / "hotlog.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one row per validation, no duplicate
    assert {"best_epoch", "train_loss", "valid_score", "test_score", "learning_rate", "elapsed_s"} <= set(rows[0])
    assert list(fold.glob("events.out.tfevents.*"))
    state = torch.load(fold / "best_model.pt", weights_only=True)
    assert any(k.endswith("dense.weight") for k in state)
    with open(fold / "predictions.csv") as fh:
        preds = list(csv.DictReader(fh))
    assert len(preds) > 15 and set(preds[0]) == {"record", "label", "prediction", "p_N", "p_A", "p_O", "p_noise"}
    scores = json.loads((fold / "scores.json").read_text())
    for part in ("train", "valid", "test"):
        assert 0 <= scores[part]["score"] <= 1 and len(scores[part]["confusion"]) == 4
    assert scores["test"]["n"] == len(preds) and scores["best_epoch"] in (1, 2)
    assert scores["best_epoch"] <= scores["epochs_run"] <= 2
    prov = scores["provenance"]
    assert prov["seed"] == 0 and len(prov["config_hash"]) == 16 and prov["packages"]["ray"].startswith("2.60")


def test_logging_switches(finished_run):
    fold = finished_run[0] / "log" / "CRNN" / "crnn_job" / "fold2"
    assert not list(fold.glob("events.out.tfevents.*"))  # log_en "False"
    header = (fold / "hotlog.csv").read_text().splitlines()[0]
    assert "test_score" not in header  # log_test_score "False"


def test_summarize(finished_run, capsys):
    log = finished_run[0] / "log"
    text = summarize(log, "CNN")
    assert "cnn_job" in text and "mean" in text and "±" in text and "naive" in text
    summary = json.loads((log / "CNN" / "summary.json").read_text())
    job = summary["jobs"]["cnn_job"]
    assert job["complete"] and len(job["folds"]) == 3
    folds = [json.loads((log / "CNN" / "cnn_job" / f"fold{k}" / "scores.json").read_text()) for k in range(3)]
    assert job["mean"]["score"] == pytest.approx(sum(f["test"]["score"] for f in folds) / 3)
    assert main(["summarize", "CRNN", "--log-dir", str(log), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("job,fold,score,F1_N")


def test_predict_fold_and_job(finished_run, synth_dir):
    log = finished_run[0] / "log"
    out_fold = finished_run[0] / "answers_fold.csv"
    out_job = finished_run[0] / "answers_job.csv"
    assert main(["predict", "--run", str(log / "CNN" / "cnn_job" / "fold0"), "--input", str(synth_dir),
                 "--output", str(out_fold)]) == 0
    assert main(["predict", "--run", str(log / "CNN" / "cnn_job"), "--input", str(synth_dir),
                 "--output", str(out_job)]) == 0
    lines = out_job.read_text().splitlines()
    assert len(lines) == 60 and lines[0].startswith("A00001,") and lines[0][-1] in "NAO~"
    # The fold model reproduces its own test predictions.
    with open(log / "CNN" / "cnn_job" / "fold0" / "predictions.csv") as fh:
        expected = {r["record"]: r["prediction"] for r in csv.DictReader(fh)}
    got = dict(line.split(",") for line in out_fold.read_text().splitlines())
    assert all(got[r] == p for r, p in expected.items())


def test_mixed_architectures_and_holdout_ensemble(finished_run, synth_dir, capsys):
    log = finished_run[0] / "log"
    job_dir = log / "GlobalSkipNet" / "skip_job"
    assert main(["ensemble", str(job_dir)]) == 0
    ens = json.loads((job_dir / "ensemble.json").read_text())
    # 60 synthetic records, about a quarter of each class held out; no fold saw them.
    held = {f"A{n:05d}" for n in json.loads((synth_dir / "splits" / "split_3_3_1_holdout" / "holdout.json")
                                             .read_text())}
    assert 14 <= len(held) <= 16 and ens["n_records"] == len(held)
    assert ens["folds"] == [0, 1] and set(ens["single_fold_scores"]) == {"0", "1"}
    for k in (0, 1):
        with open(job_dir / f"fold{k}" / "predictions.csv") as fh:
            tested = {r["record"] for r in csv.DictReader(fh)}
        assert len(tested) >= 14 and not tested & held
    text = summarize(log, "GlobalSkipNet")
    assert "ens(HO)" in text and f"{len(held)} hold-out records" in text
    for arch in ("CNN", "CRNN", "GlobalSkipNet"):
        assert main(["summarize", arch, "--log-dir", str(log)]) == 0
    assert main(["ensemble", str(log / "CNN" / "cnn_job")]) == 2  # split without a hold-out part
    assert "no hold-out part" in capsys.readouterr().err


def test_repeated_split_is_logged_per_repeat(finished_run, synth_dir):
    log = finished_run[0] / "log"
    scores = {k: json.loads((log / "CNN" / "cnn_rep" / f"fold{k}" / "scores.json").read_text()) for k in (0, 3)}
    assert (scores[0]["repeat"], scores[0]["repeat_fold"]) == (0, 0)
    assert (scores[3]["repeat"], scores[3]["repeat_fold"]) == (1, 0)
    with open(log / "CNN" / "cnn_rep" / "fold0" / "predictions.csv") as fh:
        first = {r["record"] for r in csv.DictReader(fh)}
    with open(log / "CNN" / "cnn_job" / "fold0" / "predictions.csv") as fh:
        assert first == {r["record"] for r in csv.DictReader(fh)}  # repeat 0 is split_3_3_1 itself
    assert "mean r0" in summarize(log, "CNN")
    repeats = json.loads((log / "CNN" / "summary.json").read_text())["jobs"]["cnn_rep"]["repeats"]
    assert repeats["folds_per_repeat"] == 3 and set(repeats["mean"]["score"]) == {"0", "1"}


def test_compare_and_report(finished_run, capsys):
    log = finished_run[0] / "log"
    assert main(["compare", "CNN/cnn_job", "CRNN/crnn_job", "--log-dir", str(log), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "A = CNN/cnn_job, B = CRNN/crnn_job" in out and "CRNN/crnn_job vs CNN/cnn_job: " in out
    assert "cannot reach p < 0.05 with 3 folds" in out
    assert main(["compare", "CNN/cnn_job", "CNN/cnn_rep", "--log-dir", str(log)]) == 2
    assert "split split_3_3_1 vs split_3_3_1_r2" in capsys.readouterr().err
    scores = json.loads((log / "CNN" / "cnn_job" / "fold0" / "scores.json").read_text())
    assert len(scores["provenance"]["data_signatures"][scores["data_dir"]]) == 64  # sha256 of the files
    out_html = finished_run[0] / "report.html"
    assert main(["report", "CNN", "CRNN", "--log-dir", str(log), "--out", str(out_html), "--resamples", "100"]) == 0
    text = out_html.read_text()
    assert "<script" not in text and text.count("<table") >= 5 and text.count("<img") >= 5
    assert scores["provenance"]["data_signatures"][scores["data_dir"]][:16] in text
