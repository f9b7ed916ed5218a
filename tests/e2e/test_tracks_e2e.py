"""The PTB-XL and WFDB-folder tracks end to end: one real Ray submit of tiny jobs on each, then summarize,
compare, predict, score, ensemble-free commands read them back.

PTB-XL runs on the 14 real records of the shared sample (too few to learn: the run must go through every
command, its scores are what they are); the WFDB track on the shared CinC 2017 records presented as a
plain folder with a labels CSV, and on a multi-label folder with patients and a fold column."""

from __future__ import annotations

import csv
import json

import pytest

from orchestrator.cli import main
from tests.bad_inputs.cases_tracks import write_wfdb_folder
from tests.conftest import SHARED, need, tiny_signal_model, write_json

pytestmark = pytest.mark.slow
PTBXL = SHARED / "ecg-samples" / "ptbxl"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_session):
    need(PTBXL, "ptbxl_database.csv")
    base = tmp_path_factory.mktemp("tracks_e2e")
    write_json(base / "models" / "skip.json", tiny_signal_model(training_parameters={"max_epochs": 2}))
    multi = base / "multi"
    labels = write_wfdb_folder(multi, n=30, patient=[f"p{i // 2}" for i in range(30)],
                               fold=[(i // 2) % 5 for i in range(30)])
    # Several labels for some records make the task multi-label; a record without a row is skipped.
    rows = labels.read_text().splitlines()
    rows[1:4] = [r.replace(",normal,", ",normal;af,") for r in rows[1:4]]
    labels.write_text("\n".join(rows[:-1]) + "\n")
    jobs = {
        "px": {"model": "skip", "track": "ptbxl", "track_options": {"task": "superdiagnostic", "sampling_rate": 500},
               "split": "dataset_folds", "data": str(PTBXL), "cvids": [0, 2, 6]},
        "own": {"model": "skip", "track": "wfdb", "track_options": {"labels": str(labels)},
                "split": "dataset_folds", "data": str(multi), "cvids": [0, 1, 2, 3, 4]},
    }
    job_file = write_json(base / "jobs" / "tracks.json", jobs)
    code = main(["submit", str(job_file), "--log-dir", str(base / "log"), "--cpus-per-task", "1"])
    return base, code, multi


def test_both_submits_succeed(runs):
    assert runs[1] == 0


def test_the_folds_record_their_track(runs):
    scores = json.loads((runs[0] / "log" / "GlobalSkipNet" / "px" / "fold0" / "scores.json").read_text())
    assert scores["track"] == "ptbxl" and scores["classes"] == ["CD", "NORM", "STTC"]
    assert scores["track_options"] == {"task": "superdiagnostic", "sampling_rate": 500, "min_samples": 0}
    own = json.loads((runs[0] / "log" / "GlobalSkipNet" / "own" / "fold0" / "scores.json").read_text())
    assert own["track"] == "wfdb" and own["track_options"]["multilabel"] is True
    assert set(own["test"]) >= {"score", "fmax", "auc", "f1", "auprc"} and own["thresholds"]


def test_summarize_shows_the_track_s_metric(runs, capsys):
    assert main(["summarize", "GlobalSkipNet", "--log-dir", str(runs[0] / "log"), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)["jobs"]
    assert summary["px"]["track"] == "ptbxl" and len(summary["px"]["folds"]) == 3
    assert set(summary["own"]["mean"]) == {"score", "fmax", "auprc", "f_measure", "accuracy"}
    assert summary["own"]["bootstrap"]["ci"]["score"][0] is not None
    assert main(["summarize", "GlobalSkipNet", "--log-dir", str(runs[0] / "log"), "--plot"]) == 0
    out = capsys.readouterr().out
    assert "PTB-XL superdiagnostic macro AUROC" in out and "macro AUROC over 4 classes" in out


def test_predict_and_score_a_ptbxl_job(runs, tmp_path, capsys):
    answers = tmp_path / "answers.csv"
    job = runs[0] / "log" / "GlobalSkipNet" / "px"
    assert main(["predict", "--run", str(job), "--input", str(PTBXL), "--output", str(answers)]) == 0
    with open(answers, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 14 and list(rows[0]) == ["record", "labels", "p_CD", "p_NORM", "p_STTC"]
    assert all(0 <= float(r["p_NORM"]) <= 1 and set(r["labels"].split(";")) <= {"", "CD", "NORM", "STTC"}
               for r in rows)
    assert {r["record"] for r in rows} >= {"03961", "12083"}  # a PTB-XL folder's records by ecg_id
    capsys.readouterr()
    assert main(["score", "--track", "ptbxl", "--option", "sampling_rate=500", "--labels", str(PTBXL),
                 "--outputs", str(answers), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["records"] == 13 and result["track"] == "ptbxl" and set(result["auc"]) == {"CD", "NORM", "STTC"}
    assert 0 <= result["score"] <= 1 and 0 <= result["fmax"] <= 1
    # any WFDB folder too: the records named by their paths below --input
    assert main(["predict", "--run", str(job / "fold0"), "--input", str(PTBXL / "records500"),
                 "--output", str(tmp_path / "any.csv")]) == 0
    assert "03000/03961_hr" in (tmp_path / "any.csv").read_text()


def test_report_and_export_of_a_multilabel_wfdb_job(runs, tmp_path):
    pytest.importorskip("onnxruntime")
    log, job = runs[0] / "log", runs[0] / "log" / "GlobalSkipNet" / "own"
    assert main(["report", "GlobalSkipNet/own", "GlobalSkipNet/px", "--log-dir", str(log),
                 "--out", str(tmp_path / "r.html")]) == 0
    assert "macro AUROC over 4 classes" in (tmp_path / "r.html").read_text()
    assert main(["export", "--run", str(job / "fold0"), "--out", str(tmp_path / "onnx")]) == 0
    sidecar = json.loads((tmp_path / "onnx" / "model.onnx.json").read_text())
    assert sidecar["track"] == "wfdb" and sidecar["classes"] == ["af", "noisy", "normal", "other"]
    assert sidecar["thresholds"] and "activation" in sidecar["output"]


def test_the_wfdb_job_skipped_and_counted_its_unlabelled_record(runs):
    notes = [json.loads(p.read_text())["notes"] for p in (runs[0] / "log").glob("*/own/fold*/scores.json")]
    assert notes and all(any("1 record(s) without a label" in n for n in fold) for fold in notes)


def test_compare_two_folds_of_the_same_design(runs, capsys):
    log = runs[0] / "log"
    assert main(["compare", "GlobalSkipNet/own", "GlobalSkipNet/own", "--log-dir", str(log)]) == 0
    assert "no evidence of a difference" in capsys.readouterr().out
