"""The CinC 2020/2021 12-lead track end to end: reading labels, sources, rates and leads; split files with
record names; report, tune and strata; lead subsets and per-record rates in the pipeline; job and model
checks for the multi-label track; the `split` and `data synth` commands for 12-lead data."""

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from ecgcore.config.model import STANDARD_LEADS
from ecgcore.config.modelfile import parse_model
from ecgcore.config.task import Task
from ecgcore.data.pipeline import load_fold, make_subset, pipeline_for
from ecgcore.data.splits import load_split, resolve_split, write_split
from ecgcore.errors import DataError
from ecgcore.io.cinc2020 import parse_header
from ecgcore.io.synth12 import write_synthetic_12lead
from ecgcore.tracks import open_track
from orchestrator.cli import main
from tests.conftest import tiny_signal_model, write_json

SCORED = {"426783006": "NSR", "164889003": "AF", "284470004": "PAC|SVPB", "39732003": "LAD"}
SOURCE_OF_PREFIX = {"A": "CPSC", "E": "Georgia", "HR": "PTB-XL", "JS": "Chapman-Shaoxing/Ningbo",
                    "Q": "CPSC-Extra", "S": "PTB"}
N_RECORDS = 45  # 40 at 500 Hz, 4 at 250 Hz (Q*), 1 with its leads stored in reverse order (S00001)


def _copy_record(src: Path, name: str, dst: Path, new: str, reverse_leads: bool = False) -> None:
    """The record under a new name; with reverse_leads, its rows and signal lines in reverse order."""
    text = (src / f"{name}.hea").read_text().replace(name, new)
    val = scipy.io.loadmat(src / f"{name}.mat")["val"]
    if reverse_leads:
        lines = text.splitlines()
        text = "\n".join([lines[0], *lines[12:0:-1], *lines[13:]]) + "\n"
        val = val[::-1]
    scipy.io.savemat(dst / f"{new}.mat", {"val": np.ascontiguousarray(val)}, format="4")
    (dst / f"{new}.hea").write_text(text)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("track12") / "data"
    write_synthetic_12lead(root, 40, seed=2)
    low = tmp_path_factory.mktemp("track12_250hz")
    write_synthetic_12lead(low, 4, seed=9, fs=250)
    for k, hea in enumerate(sorted(low.glob("*.hea")), start=1):
        _copy_record(low, hea.stem, root, f"Q{k:05d}")
    _copy_record(root, "A00001", root, "S00001", reverse_leads=True)
    return root


@pytest.fixture(scope="module")
def records(dataset):
    return open_track("cinc2021").read(str(dataset), warn=False)


def _row(records, name: str) -> int:
    return records.names.index(name)


# Reading


def test_targets_are_the_scored_classes_of_dx(dataset, records):
    track = open_track("cinc2021")
    assert records.targets.shape == (N_RECORDS, 26) and records.targets.dtype == bool
    assert track.classes.index_of("55827005") is None
    unscored_only = 0
    for name, row in zip(records.names, records.targets, strict=True):
        dx = parse_header((dataset / f"{name}.hea").read_text(), name).dx
        assert {track.class_names[j] for j in np.flatnonzero(row)} == {SCORED[c] for c in dx if c in SCORED}
        assert row[track.classes.sinus] == ("426783006" in dx)
        unscored_only += dx == ("55827005",)
    assert track.class_names[track.classes.sinus] == "NSR"
    assert unscored_only >= 1 and (~records.targets.any(axis=1)).sum() > unscored_only


def test_sources_rates_and_leads_per_record(records):
    assert len(records) == N_RECORDS
    for name, source in zip(records.names, records.sources, strict=True):
        assert source == SOURCE_OF_PREFIX[re.match(r"[A-Z]+", name).group()]
    fs = dict(zip(records.names, records.fs, strict=True))
    assert {n for n, f in fs.items() if f == 250} == {"Q00001", "Q00002", "Q00003", "Q00004"}
    assert {f for n, f in fs.items() if not n.startswith("Q")} == {500}
    assert records.signals[_row(records, "Q00001")].shape == (12, 2500)
    assert records.signals[_row(records, "A00001")].shape == (12, 5000)
    assert records.leads[_row(records, "S00001")] == STANDARD_LEADS[::-1]
    assert {leads for n, leads in zip(records.names, records.leads, strict=True) if n != "S00001"} == {
        STANDARD_LEADS}


def test_describe_counts_sources_and_labels(records):
    line = open_track("cinc2021").describe(records)
    assert line.startswith(f"{N_RECORDS} records (")
    for source, n in Counter(records.sources).items():
        assert f"{source} {n}" in line
    assert f"{int(records.targets.any(axis=1).sum())} with a scored label" in line


# Split files with record names


@pytest.mark.parametrize("name", ["sources_6_14", "split_5_6_14_holdout"])
def test_split_files_round_trip_with_record_names(records, tmp_path, name):
    split = open_track("cinc2021").split(records, name)[1]
    directory = tmp_path / "splits" / name
    write_split(split, directory)
    stored = json.loads((directory / "test0.json").read_text())
    assert stored and all(isinstance(n, str) for n in stored)
    assert load_split(directory) == split

    def never():
        raise AssertionError("a stored split must be used as it is")

    assert resolve_split(tmp_path, name, list(records.names), None, generate=never) == split


@pytest.mark.parametrize("stranger", ["X99999", 1])
def test_stored_split_naming_an_unknown_record_is_refused(records, tmp_path, stranger):
    split = open_track("cinc2021").split(records, "split_5_6_14")[1]
    directory = tmp_path / "splits" / "split_5_6_14"
    write_split(split, directory)
    ids = [stranger] if isinstance(stranger, int) else [*split.folds[1].valid, stranger]
    write_json(directory / "valid1.json", ids)
    with pytest.raises(DataError, match=re.escape(f"{directory}/valid1.json") + ".*not in the dataset"):
        resolve_split(tmp_path, "split_5_6_14", list(records.names), None, generate=lambda: split)


def test_persisted_split_is_written_once_and_read_back(dataset, records):
    track = open_track("cinc2021")
    _, first = track.split(records, "split_3_3_7", persist=True)
    stored = json.loads((dataset / "splits" / "split_3_3_7" / "test2.json").read_text())
    assert stored == list(first.folds[2].test) and all(isinstance(n, str) for n in stored)
    assert track.split(records, "split_3_3_7")[1] == first


def test_single_label_track_refuses_leave_source_out(records):
    with pytest.raises(DataError, match="leave-source-out"):
        open_track("cinc2017").split(records, "sources_6_14")
    with pytest.raises(DataError, match="unknown track 'cinc2019'"):
        open_track("cinc2019")


# Report, tune, strata


def test_report_of_perfect_probabilities(records):
    track = open_track("cinc2021")
    report = track.report(records.targets, records.targets.astype(float))
    assert report["score"] == report["challenge_metric"] == pytest.approx(1.0)
    for key in ("auroc", "auprc", "f_measure", "accuracy"):
        assert report[key] == pytest.approx(1.0), key
    assert "f_beta" not in report and report["n"] == N_RECORDS
    assert list(report["f1"]) == list(track.class_names)
    assert report["f1"]["NSR"] == 1.0 and report["f1"]["AFL"] is None
    assert report["positives"]["AF"] == int(records.targets[:, 0].sum())


def test_f1_of_a_class_predicted_but_absent_is_zero(records):
    track = open_track("cinc2021")
    probs = records.targets.astype(float)
    probs[0, track.class_names.index("AFL")] = 0.9
    assert track.report(records.targets, probs)["f1"]["AFL"] == 0.0


def test_always_sinus_scores_zero(records):
    track = open_track("cinc2021")
    probs = np.zeros(records.targets.shape)
    probs[:, track.classes.sinus] = 1.0
    assert track.report(records.targets, probs)["score"] == pytest.approx(0.0, abs=1e-12)


def test_2020_report_adds_f_beta_and_g_beta(dataset):
    track = open_track("cinc2020")
    targets = track.read(str(dataset), warn=False).targets
    assert targets.shape == (N_RECORDS, 24)
    report = track.report(targets, targets.astype(float))
    assert report["score"] == pytest.approx(1.0)
    assert report["f_beta"] == pytest.approx(1.0) and report["g_beta"] == pytest.approx(1.0)


def test_tuned_thresholds_beat_one_half_where_it_is_wrong(records):
    track = open_track("cinc2021")
    rng = np.random.default_rng(0)
    targets = records.targets
    probs = np.where(targets, 0.3 + 0.15 * rng.random(targets.shape), 0.35 * rng.random(targets.shape))
    thresholds = track.tune(targets, probs)
    assert thresholds.shape == (26,) and np.all((thresholds > 0) & (thresholds < 1))
    assert track.report(targets, probs, thresholds)["score"] > track.report(targets, probs)["score"]


def test_tuned_thresholds_never_worse_than_one_half(records):
    track = open_track("cinc2021")
    probs = np.random.default_rng(1).random(records.targets.shape)
    thresholds = track.tune(records.targets, probs)
    assert np.all((thresholds > 0) & (thresholds < 1))
    tuned = track.report(records.targets, probs, thresholds)["score"]
    assert tuned >= track.report(records.targets, probs)["score"]


def test_strata_is_the_rarest_label_of_each_record():
    targets = np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=bool)
    # Positives per class: 3, 1, 2.
    assert open_track("cinc2021").strata(targets).tolist() == [1, 2, 0, 3, 2]


# Lead subsets and rates in the pipeline


def _pipeline(records, **preprocessing):
    model = parse_model(tiny_signal_model(preprocessing={"fs": None, **preprocessing}), "m.json")
    return pipeline_for(model, records)


def _prepare(pipeline, records, name):
    i = _row(records, name)
    return pipeline.prepare(records.signals[i], records.fs[i], records.leads[i])


def test_lead_subset_takes_the_named_rows_in_order(records):
    signal = records.signals[_row(records, "A00001")]
    pipeline = _pipeline(records, leads=["I", "II"])
    assert pipeline.inputs.n_leads == 2 and pipeline.inputs.fs == 500
    np.testing.assert_array_equal(_prepare(pipeline, records, "A00001"), signal[:2])
    np.testing.assert_array_equal(_prepare(_pipeline(records, leads=["II", "I"]), records, "A00001"),
                                  signal[[1, 0]])
    assert _pipeline(records).inputs.n_leads == 12


def test_leads_are_found_by_name_not_position(records):
    pipeline = _pipeline(records, leads=["I", "V6", "aVR"])
    np.testing.assert_array_equal(_prepare(pipeline, records, "S00001"), _prepare(pipeline, records, "A00001"))


def test_missing_lead_names_the_record_and_the_lead(records):
    i = _row(records, "A00001")
    six = dataclasses.replace(records.take([i]), signals=(records.signals[i][:6],),
                              leads=(STANDARD_LEADS[:6],))
    with pytest.raises(DataError, match="record A00001 has no lead V2"):
        make_subset(_pipeline(records, leads=["I", "V2"]), six)


def test_other_rate_needs_preprocessing_fs(records):
    with pytest.raises(DataError, match="record Q00001 is at 250 Hz.*preprocessing.fs"):
        make_subset(_pipeline(records, leads=["I", "II"]), records)


def test_every_rate_comes_out_at_preprocessing_fs(records):
    pipeline = _pipeline(records, fs=100, leads=["II", "I"])
    subset = make_subset(pipeline, records)
    assert pipeline.inputs.fs == 100 and pipeline.inputs.n_leads == 2
    assert {s.shape for s in subset.signals} == {(2, 1000)}  # 10 s records at 500 and 250 Hz
    assert subset.eval_items[_row(records, "Q00001")].shape == (1000, 2)


def test_load_fold_of_a_leave_source_out_split(dataset, records):
    model = parse_model(tiny_signal_model(preprocessing={"fs": 100, "leads": ["I", "II"]}), "m.json")
    task = Task(task_id="GlobalSkipNet/a/fold1", job="a", fold=1, model_file="m", model=model,
                data_dir=str(dataset), split="sources_6_14", out_dir=str(dataset / "unused"), max_epochs=1,
                log_en=False, log_test_score=False, threads=1, track="cinc2021", track_options={}, kind="classify",
                init_checkpoint=None, time_limit_s=None)
    fold = load_fold(task)
    source = open_track("cinc2021").split(records, "sources_6_14")[1].properties["test sources"][1]
    assert fold.test.sources and set(fold.test.sources) == {source}
    assert source not in set(fold.train.sources) | set(fold.valid.sources)
    assert len(fold.train) + len(fold.valid) + len(fold.test) == N_RECORDS
    assert fold.test.labels.shape == (len(fold.test), 26)
    assert {s.shape for s in fold.train.signals} == {(2, 1000)}


# Job and model checks for the multi-label track


JOB = {"model": "tiny", "split": "split_5_6_14", "cvids": [0, 1]}


def _submit(tmp_path: Path, job: dict, model: dict) -> int:
    write_json(tmp_path / "models" / "tiny.json", model)
    job_file = write_json(tmp_path / "jobs" / "job.json", {"a": job})
    return main(["submit", str(job_file), "--dry-run", "--log-dir", str(tmp_path / "log")])


@pytest.mark.parametrize("job, model, file, path, words", [
    ({"challenge": 2021}, {"loss_function_parameters": {"loss": "cross_entropy"}}, "jobs/job.json", "$.a.model",
     "'cross_entropy', which does not fit track cinc2021"),
    ({"challenge": 2017}, {"loss_function_parameters": {"loss": "bce"}}, "jobs/job.json", "$.a.model",
     "'bce', which does not fit track cinc2017"),
    ({"challenge": 2017}, {"preprocessing": {"leads": ["I", "II"]}}, "jobs/job.json", "$.a.model",
     "selects leads"),
    ({"challenge": 2021}, {"preprocessing": {"leads": ["I", "V7"]}}, "models/tiny.json",
     "$.preprocessing.leads[1]", "'V7' is not one of"),
    ({"challenge": 2017, "split": "sources_6_14"}, {}, "jobs/job.json", "$.a.split", "leave-source-out"),
    ({"challenge": 2019}, {}, "jobs/job.json", "$.a.challenge", "2019 is not one of"),
])
def test_multilabel_mistakes_are_refused(tmp_path, capsys, job, model, file, path, words):
    assert _submit(tmp_path, {**JOB, **job}, tiny_signal_model(**model)) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / file}: {path}: " in err and words in err and "Traceback" not in err


def test_leave_source_out_job_passes_a_dry_run(tmp_path, capsys):
    job = {**JOB, "challenge": 2021, "split": "sources_6_14", "cvids": [0, 1, 2, 3]}
    model = tiny_signal_model(preprocessing={"leads": ["I", "II"]}, loss_function_parameters={"loss": "bce"})
    assert _submit(tmp_path, job, model) == 0
    out = capsys.readouterr().out
    assert "4 task(s) from 1 job(s)" in out
    assert all(f"GlobalSkipNet/a/fold{k}" in out for k in range(4)) and "sources_6_14" in out
    assert not (tmp_path / "log").exists()


# Commands


def test_split_command_leave_source_out_on_the_sample(sample2020, tmp_path, capsys):
    out = tmp_path / "sources"
    assert main(["split", str(sample2020), "--challenge", "2021", "--sources", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("test*.json")) == [f"test{k}.json" for k in range(4)]
    sources = json.loads((out / "properties.json").read_text())["test sources"]
    assert sources == ["CPSC", "Chapman-Shaoxing/Ningbo", "Georgia", "PTB-XL"]
    prefixes = {"CPSC": "A", "Chapman-Shaoxing/Ningbo": "JS", "Georgia": "E", "PTB-XL": "HR"}
    for k, source in enumerate(sources):
        names = json.loads((out / f"test{k}.json").read_text())
        assert names and all(isinstance(n, str) and re.match(rf"{prefixes[source]}\d", n) for n in names)
    records = open_track("cinc2021").read(str(sample2020), warn=False)
    assert load_split(out).folds == open_track("cinc2021").split(records, "sources_6_14")[1].folds
    assert "sources_6_14: 4 folds" in capsys.readouterr().out


def test_split_command_names_folds_tv_and_seed(dataset, records, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["split", str(dataset), "--challenge", "2021", "--folds", "3", "--tv", "3", "--seed", "1"]
    assert main([*args, "--out", str(out)]) == 0
    split = load_split(out)
    assert len(split.folds) == 3 and split.properties["name"] == "split_3_3_1"
    assert sorted(n for f in split.folds for n in f.test) == sorted(records.names)
    assert "split_3_3_1: 3 folds" in capsys.readouterr().out


def test_split_command_refuses_leave_source_out_for_2017(tmp_path, capsys):
    assert main(["split", str(tmp_path), "--sources", "--out", str(tmp_path / "s")]) == 2
    assert "leave-source-out" in capsys.readouterr().err


def test_synth_command_writes_readable_12lead_records(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "synth", "--challenge", "2021", "--out", str(out), "--records", "12"]) == 0
    heas, mats = sorted(p.stem for p in out.glob("*.hea")), sorted(p.stem for p in out.glob("*.mat"))
    assert len(heas) == 12 and heas == mats
    records = open_track("cinc2021").read(str(out), warn=False)
    assert records.targets.shape == (12, 26) and set(Counter(records.sources).values()) == {3}
    assert "12 synthetic records" in capsys.readouterr().out


def test_a_record_name_twice_in_one_dataset_is_refused(tmp_path):
    write_synthetic_12lead(tmp_path / "a", 4, seed=0)
    write_synthetic_12lead(tmp_path / "b", 4, seed=0)
    with pytest.raises(DataError, match=r"[ab]/A00001.hea: record A00001 is also at .*[ab]/A00001.hea"):
        open_track("cinc2021").read(str(tmp_path))
