"""Bad-input cases of the PTB-XL and WFDB-folder tracks (registered into cases.GENERATED).

Each builds its own small dataset: a synthetic PTB-XL set in PTB-XL's layout, or a folder of WFDB
records (two leads, 250 Hz) written with wfdb and a labels CSV. Inputs that are warnings, not errors
(records without a label, a patient in two folds of the user's fold column), are in test_track_inputs.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.bad_inputs.cases import SHARED_MODELS, SPLIT, Case, generated
from tests.conftest import write_json

LABELS = ("normal", "af", "other", "noisy")


def write_wfdb_folder(root: Path, n: int = 24, fs: int = 250, seed: int = 0, **columns) -> Path:
    """n two-lead records (I, II) in root/sub<k>/rec<i>, and root/labels.csv (record, label, extra columns)."""
    import wfdb

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        folder = root / f"sub{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        signal = rng.normal(0, 0.2, (fs * 4, 2)) + np.sin(np.arange(fs * 4) / fs * 2 * np.pi * (1 + i % 4))[:, None]
        wfdb.wrsamp(f"rec{i:02d}", fs=fs, units=["mV", "mV"], sig_name=["I", "II"], p_signal=signal,
                    fmt=["16", "16"], write_dir=str(folder))
        rows.append({"record": f"sub{i % 2}/rec{i:02d}", "label": LABELS[i % 4],
                     **{k: v[i] for k, v in columns.items()}})
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return labels


def wfdb_argv(work: Path, data: Path, options: dict, model: str = "tiny", **job) -> list[str]:
    body = {"model": model, "split": SPLIT, "cvids": [0], "track": "wfdb", "track_options": options, **job}
    job_file = write_json(work / "jobs" / "job.json", {"a": body})
    return ["submit", str(job_file), "--models-dir", str(SHARED_MODELS), "--data", str(data)]


def ptbxl_argv(work: Path, data: Path, options: dict | None = None, **job) -> list[str]:
    body = {"model": "tiny12", "split": "dataset_recommended", "cvids": [0], "track": "ptbxl",
            "track_options": {"sampling_rate": 100, **(options or {})}, **job}
    job_file = write_json(work / "jobs" / "job.json", {"a": body})
    return ["submit", str(job_file), "--models-dir", str(SHARED_MODELS), "--data", str(data)]


def synthetic_ptbxl(work: Path, records: int = 40) -> Path:
    from ecgcore.io.synth_ptbxl import write_synthetic_ptbxl

    write_synthetic_ptbxl(work / "ptbxl", records, seed=2)
    return work / "ptbxl"


@generated
def wfdb_labels_name_missing_records(work, env):
    data = work / "data"
    labels = write_wfdb_folder(data)
    with open(labels, "a") as fh:
        fh.write("sub0/gone1,normal\nsub1/gone2,af\n")
    return Case(wfdb_argv(work, data, {"labels": str(labels)}),
                [str(labels), "2 record(s) of the labels CSV have no .hea file", "sub0/gone1"])


@generated
def wfdb_unknown_label_column(work, env):
    data = work / "data"
    labels = write_wfdb_folder(data)
    return Case(wfdb_argv(work, data, {"labels": str(labels), "label_column": "diagnosis"}),
                [str(labels), "diagnosis"])


@generated
def wfdb_fold_without_records(work, env):
    data = work / "data"
    labels = write_wfdb_folder(data, fold=[(0, 1, 3)[i % 3] for i in range(24)])
    return Case(wfdb_argv(work, data, {"labels": str(labels)}, split="dataset_folds"),
                [str(labels), "fold", "2"])


@generated
def wfdb_missing_lead(work, env):
    data = work / "data"
    labels = write_wfdb_folder(data)
    model = write_json(work / "models" / "leads.json", {
        **_model("tiny12"), "preprocessing": {"spectrogram": False, "fs": 100, "leads": ["I", "V5"]},
        "loss_function_parameters": {"loss": "auto"}})
    argv = wfdb_argv(work, data, {"labels": str(labels), "classes": list(LABELS), "multilabel": False},
                     model="leads")
    argv[argv.index("--models-dir") + 1] = str(model.parent)
    return Case(argv, ["record sub0/rec00", "has no lead V5"])


@generated
def job_unknown_track(work, env):
    job_file = write_json(work / "jobs" / "job.json", {"a": {"model": "tiny", "split": SPLIT, "cvids": [0],
                                                            "track": "mitbih"}})
    return Case(["submit", str(job_file), "--models-dir", str(SHARED_MODELS), "--data", str(env.data2017)],
                [str(job_file), "$.a.track: 'mitbih' is not one of 'cinc2017'"])


@generated
def ptbxl_without_database(work, env):
    data = synthetic_ptbxl(work)
    (data / "ptbxl_database.csv").unlink()
    return Case(ptbxl_argv(work, data), [str(data / "ptbxl_database.csv")])


@generated
def ptbxl_unknown_task(work, env):
    data = synthetic_ptbxl(work)
    argv = ptbxl_argv(work, data, {"task": "diagnosis"})
    return Case(argv, ["$.a.track_options.task: 'diagnosis' is not one of 'all'"])


@generated
def ptbxl_scp_codes_unparsable(work, env):
    data = synthetic_ptbxl(work)
    database = data / "ptbxl_database.csv"
    with open(database, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[3]["scp_codes"] = "{'NORM': 100.0"
    with open(database, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Case(ptbxl_argv(work, data), [str(database), rows[3]["ecg_id"], "scp_codes"])


@generated
def ptbxl_missing_rate_folder(work, env):
    data = synthetic_ptbxl(work)
    import shutil

    shutil.rmtree(data / "records100")
    return Case(ptbxl_argv(work, data), [str(data / "records100"), "sampling_rate"])


def _model(name: str) -> dict:
    import json

    return json.loads((SHARED_MODELS / f"{name}.json").read_text())
