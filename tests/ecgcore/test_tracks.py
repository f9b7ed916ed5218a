"""The track registry and interface: names, the older challenge key, splits over a dataset's own folds,
patient leakage, the PTB-XL track on the shared sample, and no branch on a dataset outside ecgcore/tracks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ecgcore.data.leakage import check_split_leakage
from ecgcore.data.splits import OWN_FOLDS, OWN_RECOMMENDED, Fold, Split, own_folds_split
from ecgcore.errors import DataError, ProjectError
from ecgcore.tracks import CHALLENGE_TRACKS, TRACKS, detect_track, open_track, track_class
from orchestrator.config.jobs import load_jobs
from tests.conftest import ROOT, SHARED, need, write_json

PTBXL = SHARED / "ecg-samples" / "ptbxl"


def test_every_registered_track_opens_and_declares_its_kind():
    for name in TRACKS:
        cls = track_class(name)
        assert cls.name == name and cls.split_policies
    assert {open_track(n).name for n in ("cinc2017", "cinc2020", "cinc2021")} == {"cinc2017", "cinc2020", "cinc2021"}
    with pytest.raises(DataError, match="unknown track 'mitbih'; known: cinc2017, cinc2020, cinc2021, ptbxl, wfdb"):
        open_track("mitbih")


def test_the_challenge_key_keeps_working(tmp_path):
    jobs = {f"j{y}": {"model": "m", "split": "split_5_6_14", "cvids": [0], "challenge": y} for y in CHALLENGE_TRACKS}
    jobs["plain"] = {"model": "m", "split": "split_5_6_14", "cvids": [0]}
    jobs["both"] = {"model": "m", "split": "split_5_6_14", "cvids": [0], "challenge": 2021, "track": "cinc2021"}
    loaded = {j.name: j.config for j in load_jobs(write_json(tmp_path / "jobs.json", jobs))}
    assert {n: c.track for n, c in loaded.items()} == {"j2017": "cinc2017", "j2020": "cinc2020", "j2021": "cinc2021",
                                                      "plain": "cinc2017", "both": "cinc2021"}
    assert loaded["plain"].track_options == {}


def test_challenge_and_track_must_agree(tmp_path):
    job = {"model": "m", "split": "split_5_6_14", "cvids": [0], "challenge": 2017, "track": "cinc2021"}
    with pytest.raises(ProjectError, match=r"\$\.a\.challenge: challenge 2017 is track cinc2017, but track is cinc20"):
        load_jobs(write_json(tmp_path / "jobs.json", {"a": job}))


def test_track_options_are_checked_against_the_track(tmp_path):
    job = {"model": "m", "split": "dataset_recommended", "cvids": [0], "track": "ptbxl",
           "track_options": {"task": "superdiagnostic", "rate": 500}}
    with pytest.raises(ProjectError, match=r"\$\.a\.track_options\.rate: unknown key 'rate'"):
        load_jobs(write_json(tmp_path / "jobs.json", {"a": job}))
    job["track_options"] = {}
    assert load_jobs(write_json(tmp_path / "jobs.json", {"a": job}))[0].config.track_options == {
        "task": "superdiagnostic", "sampling_rate": 100, "min_samples": 0}


def test_a_track_refuses_split_policies_it_has_not(tmp_path):
    for track, split, words in (("ptbxl", "split_5_6_14", "generated stratified k-fold"),
                                ("cinc2017", "dataset_folds", "the dataset's own folds"),
                                ("cinc2017", "sources_6_14", "leave-source-out")):
        job = {"model": "m", "split": split, "cvids": [0], "track": track}
        with pytest.raises(ProjectError, match=rf"\$\.a\.split: {re.escape(words)}.*do not apply to track {track}"):
            load_jobs(write_json(tmp_path / "jobs.json", {"a": job}))


def test_no_branch_on_a_dataset_outside_the_track_modules():
    """Acceptance: a year, a challenge flag or a track's name compared outside ecgcore/tracks/ is a finding."""
    pattern = re.compile(r"(==|!=) *[\"']?(20(17|20|21)\b|cinc20\d\d|ptbxl|wfdb)"
                         r"|\bin *[(\[{] *[\"']?(20(17|20|21)|cinc)|MULTILABEL_YEARS"
                         r"|\.challenge *(==|!=|\bin\b)|track(_name)? *(==|!=) *[\"']")
    found = []
    for folder in ("ecgcore", "orchestrator"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.relative_to(ROOT).parts[:2] == ("ecgcore", "tracks"):
                continue
            found += [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
                      for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def _ten_folds(n_per_patient=(1, 2, 3)):
    names, patients, folds = [], [], []
    for p in range(40):
        for r in range(n_per_patient[p % 3]):
            names.append(f"r{p:02d}_{r}")
            patients.append(f"p{p}")
            folds.append(p % 10 + 1)
    return names, patients, folds


def test_the_recommended_split_tests_on_the_last_fold_and_validates_on_the_one_before():
    names, patients, folds = _ten_folds()
    split = own_folds_split(OWN_RECOMMENDED, names, folds)
    assert len(split.folds) == 1
    fold_of = dict(zip(names, folds, strict=True))
    only = split.folds[0]
    assert {fold_of[n] for n in only.test} == {10} and {fold_of[n] for n in only.valid} == {9}
    assert {fold_of[n] for n in only.train} == set(range(1, 9))
    cv = own_folds_split(OWN_FOLDS, names, folds)
    assert len(cv.folds) == 10 and sorted(n for f in cv.folds for n in f.test) == sorted(names)
    assert [{fold_of[n] for n in f.valid} for f in cv.folds] == [{k % 10 + 1} for k in range(1, 11)]
    assert check_split_leakage(cv, names, patients, refuse=True) == []  # the folds are patients' folds


def test_a_leaking_split_is_refused_when_made_here_and_a_warning_in_the_dataset_s_own_folds():
    names, patients = ["a", "b", "c", "d"], ["p1", "p1", "p2", "p3"]
    split = Split("split_2_2_0", (Fold(("a", "c"), ("d",), ("b",)),), {})
    with pytest.raises(DataError, match=r"fold 0: 1 patient\(s\), e\.g\. p1"):
        check_split_leakage(split, names, patients, refuse=True)
    warning = check_split_leakage(split, names, patients, refuse=False)
    assert warning and "patients with records in two of train, validation and test" in warning[0]


def test_the_wfdb_track_keeps_a_patient_s_records_together_in_a_generated_split(tmp_path):
    from tests.bad_inputs.cases_tracks import write_wfdb_folder

    patients = [f"p{i // 3}" for i in range(24)]  # 8 patients of 3 records
    labels = write_wfdb_folder(tmp_path / "data", patient=patients)
    track = open_track("wfdb", {"labels": str(labels)})
    records = track.read(str(tmp_path / "data"))
    ids, split = track.split(records, "split_2_2_0")
    patient_of = dict(zip(records.names, records.patients, strict=True))
    for fold in split.folds:
        parts = [{patient_of[n] for n in getattr(fold, part)} for part in ("train", "valid", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(n for f in split.folds for n in f.test) == sorted(records.names)


def test_ptbxl_on_the_shared_sample_reads_its_records_patients_and_folds():
    need(PTBXL, "ptbxl_database.csv")
    track = open_track("ptbxl", {"task": "superdiagnostic", "sampling_rate": 500}, root=str(PTBXL))
    assert track.class_names == ("CD", "NORM", "STTC")
    records = track.read(str(PTBXL))
    assert len(records) == 13 and "12083" not in records.names  # PACE only: no superdiagnostic label
    assert records.signals[0].shape == (12, 5000) and records.fs[0] == 500.0
    assert records.leads[0][3:6] == ("aVR", "aVL", "aVF")  # PTB-XL's AVR spelt as the other tracks spell it
    assert records.patients[records.names.index("06003")] == "17336" and records.folds[0] == 5
    assert track.dataset_note(str(PTBXL)) == ["1 record(s) without a superdiagnostic label dropped"]
    ids, split = track.split(records, OWN_RECOMMENDED)
    fold_of = dict(zip(records.names, records.folds, strict=True))
    assert sorted(split.folds[0].test) == ["09589", "19293"] and {fold_of[n] for n in split.folds[0].valid} == {8}
    assert "leakage" not in split.properties


def test_ptbxl_without_the_rate_s_folder_says_which(tmp_path):
    need(PTBXL, "ptbxl_database.csv")
    track = open_track("ptbxl", {"sampling_rate": 100}, root=str(PTBXL))
    with pytest.raises(DataError, match=r"records100 does not exist: this PTB-XL copy has no 100 Hz records"):
        track.read(str(PTBXL))


def test_the_data_check_detects_ptbxl_and_reports_its_layout(capsys):
    from orchestrator.cli import main

    need(PTBXL, "ptbxl_database.csv")
    assert detect_track(PTBXL) == "ptbxl"
    assert main(["data", "check", str(PTBXL)]) == 1  # the default rate's records100/ is absent
    assert "records100 does not exist" in capsys.readouterr().out
    assert main(["data", "check", str(PTBXL), "--option", "sampling_rate=500", "--split", OWN_FOLDS]) == 0
    out = capsys.readouterr().out
    assert "PTB-XL (superdiagnostic task, records500/)" in out and "records: 13 found, 13 readable" in out
    assert "split dataset_folds: 7 fold(s), no patient in two parts of a fold" in out


def test_f1_thresholds_pick_each_class_s_best_cut():
    track = open_track("ptbxl", {}, classes=("A", "B"))
    targets = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=bool)
    probs = np.array([[0.9, 0.2], [0.35, 0.1], [0.3, 0.6], [0.1, 0.7]])
    thresholds = track.tune(targets, probs)
    # A: every cut in (0.30, 0.35] separates it; B: its best F1 (2/3) first at a cut in (0.2, 0.6].
    assert 0.30 < thresholds[0] <= 0.35 and 0.2 < thresholds[1] <= 0.6
    report = track.report(targets, probs, thresholds)
    assert report["f1"] == {"A": 1.0, "B": pytest.approx(2 / 3)}
    assert report["score"] == pytest.approx((1.0 + 2 / 3) / 2)  # macro AUROC: A 1, B 2 of 3 pairs


def test_the_ptbxl_pool_s_bootstrap_point_equals_the_benchmark_s_metrics():
    from ecgcore.metrics import ptbxl as metrics
    from ecgcore.metrics.bootstrap import Pooled, bootstrap_intervals

    rng = np.random.default_rng(0)
    targets = rng.random((120, 4)) < 0.3
    targets[~targets.any(axis=1), 0] = True
    probs = np.clip(targets * 0.3 + rng.random((120, 4)) * 0.7, 0, 1)
    track = open_track("ptbxl", {}, classes=("a", "b", "c", "d"))
    pooled = Pooled(track, track.class_names, tuple(f"r{i}" for i in range(120)), targets, probs >= 0.5, probs)
    intervals = bootstrap_intervals(pooled, n_resamples=200)
    assert intervals["score"].point == pytest.approx(metrics.macro_auc(targets, probs))
    assert intervals["fmax"].point == pytest.approx(metrics.fmax(targets, probs))
    assert intervals["score"].low < intervals["score"].point < intervals["score"].high


def test_records_below_readers_and_data():
    """Records is its own module: readers and the data layer import it, not the tracks."""
    for path in [*(ROOT / "ecgcore" / "io").glob("*.py"), *(ROOT / "ecgcore" / "data").glob("*.py")]:
        assert not re.search(r"^(from|import) ecgcore\.tracks", Path(path).read_text(), re.M), path


def test_the_wfdb_track_refuses_class_names_with_spaces_and_several_labels_for_a_single_label_job(tmp_path):
    from tests.bad_inputs.cases_tracks import write_wfdb_folder

    labels = write_wfdb_folder(tmp_path / "data", n=8)
    labels.write_text(labels.read_text().replace(",af", ",atrial fib"))
    with pytest.raises(DataError, match=r"class names cannot contain spaces: 'atrial fib'"):
        open_track("wfdb", {"labels": str(labels)}).class_names  # noqa: B018 -- reading it raises
    labels.write_text(labels.read_text().replace(",atrial fib", ",af;other"))
    forced = open_track("wfdb", {"labels": str(labels), "multilabel": False})
    with pytest.raises(DataError, match="has the labels af, other, but the job's track_options say multilabel false"):
        forced.read(str(tmp_path / "data"))
