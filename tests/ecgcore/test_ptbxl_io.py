"""The PTB-XL reader on the shared real sample (labels checked against a hand-made table) and on the synthetic set."""

import ast
import csv
import dataclasses
import shutil
import warnings

import numpy as np
import pytest
from scipy.signal import find_peaks, resample_poly

from ecgcore.errors import DataError
from ecgcore.io.ptbxl import TASKS, read_labels, read_records
from ecgcore.io.synth_ptbxl import LEADS, SCP_STATEMENTS, write_synthetic_ptbxl
from tests.conftest import SHARED, need

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # wfdb's import warns about pandas; irrelevant here
    import wfdb

# The 14 records' scp_codes keys (the sample README's table), mapped by hand through scp_statements.csv:
# NORM: diagnostic, class NORM, subclass NORM; NDT: diagnostic and form, class STTC, subclass STTC;
# IVCD: diagnostic, class CD, subclass IVCD; SR, STACH, SARRH, SBRAD, PACE: rhythm only.
# A record missing from a task's table has no label for it and is dropped.
HAND = {
    "all": {"03961": "NORM SR", "06003": "NORM STACH", "06005": "NORM SR", "06009": "NORM SR", "08040": "NORM SR",
            "09008": "NDT SR", "09589": "NORM SR", "09764": "NORM SR", "11165": "IVCD SARRH", "12083": "PACE",
            "13792": "NORM SR", "14287": "NORM SBRAD", "17691": "NORM SR", "19293": "NORM SR"},
    "diagnostic": {"03961": "NORM", "06003": "NORM", "06005": "NORM", "06009": "NORM", "08040": "NORM",
                   "09008": "NDT", "09589": "NORM", "09764": "NORM", "11165": "IVCD", "13792": "NORM",
                   "14287": "NORM", "17691": "NORM", "19293": "NORM"},
    "subdiagnostic": {"03961": "NORM", "06003": "NORM", "06005": "NORM", "06009": "NORM", "08040": "NORM",
                      "09008": "STTC", "09589": "NORM", "09764": "NORM", "11165": "IVCD", "13792": "NORM",
                      "14287": "NORM", "17691": "NORM", "19293": "NORM"},
    "superdiagnostic": {"03961": "NORM", "06003": "NORM", "06005": "NORM", "06009": "NORM", "08040": "NORM",
                        "09008": "STTC", "09589": "NORM", "09764": "NORM", "11165": "CD", "13792": "NORM",
                        "14287": "NORM", "17691": "NORM", "19293": "NORM"},
    "form": {"09008": "NDT"},
    "rhythm": {"03961": "SR", "06003": "STACH", "06005": "SR", "06009": "SR", "08040": "SR", "09008": "SR",
               "09589": "SR", "09764": "SR", "11165": "SARRH", "12083": "PACE", "13792": "SR", "14287": "SBRAD",
               "17691": "SR", "19293": "SR"},
}
ALL_14 = tuple(HAND["all"])


@pytest.fixture(scope="module")
def real():
    return need(SHARED / "ecg-samples" / "ptbxl", "ptbxl_database.csv")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("ptbxl") / "synth"
    return out, write_synthetic_ptbxl(out, 120, seed=11)


def _as_table(labels):
    return {name: " ".join(c for c, on in zip(labels.classes, row, strict=True) if on)
            for name, row in zip(labels.names, labels.targets, strict=True)}


@pytest.mark.parametrize("task", TASKS)
def test_real_labels_match_the_hand_table(real, task):
    labels = read_labels(real, task)
    assert _as_table(labels) == HAND[task]
    assert labels.classes == tuple(sorted({c for v in HAND[task].values() for c in v.split()}))
    assert labels.targets.dtype == bool and labels.targets.shape == (len(HAND[task]), len(labels.classes))
    assert labels.dropped == tuple(n for n in ALL_14 if n not in HAND[task])


def test_real_metadata_and_files_follow_the_rate(real):
    lr, hr = read_labels(real, "all", 100), read_labels(real, "all", 500)
    assert hr.names == ALL_14 and hr.patients[:3] == ("7050", "17336", "2810")
    assert hr.folds == (5, 6, 3, 2, 4, 4, 10, 8, 8, 6, 4, 8, 8, 10)
    assert hr.files[1] == "records500/06000/06003_hr" and lr.files[1] == "records100/06000/06003_lr"


def test_min_samples_drops_rare_classes_except_for_diagnostic(real):
    # As select_data: classes seen in <= min_samples records go, then records left without a label.
    rare = read_labels(real, "all", min_samples=1)
    assert rare.classes == ("NORM", "SR") and rare.dropped == ("11165", "12083")
    assert read_labels(real, "superdiagnostic", min_samples=1).classes == ("NORM",)
    assert read_labels(real, "diagnostic", min_samples=1).classes == ("IVCD", "NDT", "NORM")


def test_read_records_on_real_records(real):
    labels = read_labels(real, "all")
    two = dataclasses.replace(labels, names=labels.names[1:3], targets=labels.targets[1:3], files=labels.files[1:3])
    signals, fs, leads = read_records(real, two, 500)
    assert fs == 500.0 and leads == LEADS and len(signals) == 2
    for s in signals:
        assert s.shape == (12, 5000) and s.dtype == np.float32
        assert 0.02 < float(s.std()) < 2.0 and float(np.abs(s).max()) < 10.0  # mV, not µV or V
    # 06003_hr.hea's initial values: I -90, II 960, V1 -1285 (1000 units per mV).
    np.testing.assert_allclose(signals[0][[0, 1, 6], 0], [-0.09, 0.96, -1.285], atol=1e-6)


def test_missing_records100_names_the_folder_and_the_fix(real):
    labels = read_labels(real, "superdiagnostic", 100)
    with pytest.raises(DataError, match=r"records100 does not exist: this PTB-XL copy has no 100 Hz records "
                                        r"\(sampling_rate 100\); use sampling_rate 500 or fetch the full dataset"):
        read_records(real, labels, 100)


def test_folder_and_csv_errors(tmp_path, synth):
    with pytest.raises(DataError, match="PTB-XL folder .*nowhere does not exist"):
        read_labels(tmp_path / "nowhere", "all")
    shutil.copy(synth[0] / "scp_statements.csv", tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path / 'ptbxl_database.csv'} does not exist: a PTB-XL folder holds"):
        read_labels(tmp_path, "all")
    (tmp_path / "scp_statements.csv").rename(tmp_path / "ptbxl_database.csv")
    with pytest.raises(DataError, match="ptbxl_database.csv: column.s. ecg_id, patient_id, scp_codes, strat_fold, "
                                        "filename_lr, filename_hr missing from the header"):
        read_labels(tmp_path, "all")
    shutil.copy(synth[0] / "ptbxl_database.csv", tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path / 'scp_statements.csv'} does not exist: a PTB-XL folder holds"):
        read_labels(tmp_path, "all")


def test_task_and_rate_errors(synth):
    with pytest.raises(DataError, match="unknown PTB-XL task 'diag'; expected one of all, diagnostic, "
                                        "subdiagnostic, superdiagnostic, form, rhythm"):
        read_labels(synth[0], "diag")
    with pytest.raises(DataError, match="sampling_rate 250 is not available; expected 100 or 500"):
        read_labels(synth[0], "all", 250)
    labels = read_labels(synth[0], "rhythm", 500)
    with pytest.raises(DataError, match="sampling_rate 250 is not available"):
        read_records(synth[0], labels, 250)
    with pytest.raises(DataError, match="read_labels and read_records were given different sampling rates"):
        read_records(synth[0], labels, 100)


def test_bad_scp_codes_cell_names_record_and_cell(tmp_path, synth):
    shutil.copy(synth[0] / "scp_statements.csv", tmp_path)
    rows = list(csv.DictReader(open(synth[0] / "ptbxl_database.csv", newline="")))
    rows[4]["scp_codes"] = "{'NORM': 100.0, 'SR'"
    with open(tmp_path / "ptbxl_database.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=r"ecg_id 5: scp_codes \"\{'NORM': 100.0, 'SR'\" is not a Python dict"):
        read_labels(tmp_path, "superdiagnostic")


def test_missing_record_file_is_named(tmp_path, synth):
    shutil.copytree(synth[0], tmp_path / "copy")
    labels = read_labels(tmp_path / "copy", "superdiagnostic", 100)
    (tmp_path / "copy" / "records100" / "00000" / "00007_lr.dat").unlink()
    with pytest.raises(DataError, match=r"PTB-XL record file .*records100/00000/00007_lr.dat is missing"):
        read_records(tmp_path / "copy", labels, 100)


def test_synthetic_patients_never_span_two_folds(synth):
    labels = read_labels(synth[0], "all")
    fold_of, records_of = {}, {}
    for patient, fold in zip(labels.patients, labels.folds, strict=True):
        assert fold_of.setdefault(patient, fold) == fold
        records_of[patient] = records_of.get(patient, 0) + 1
    assert set(labels.folds) == set(range(1, 11))
    assert max(records_of.values()) in (2, 3) and sum(n > 1 for n in records_of.values()) >= 5
    row = next(csv.reader(open(synth[0] / "ptbxl_database.csv", newline="")))
    assert row[:3] == ["ecg_id", "patient_id", "age"] and row[-3:] == ["strat_fold", "filename_lr", "filename_hr"]


def test_synthetic_labels_and_counts(synth):
    out, counts = synth
    labels = read_labels(out, "superdiagnostic")
    assert labels.classes == ("CD", "HYP", "MI", "NORM", "STTC") and labels.dropped == ()
    assert dict(zip(labels.classes, labels.targets.sum(axis=0).tolist(), strict=True)) == counts
    assert (labels.targets.sum(axis=1) == 2).sum() >= 5  # some records carry two classes
    assert read_labels(out, "rhythm").classes == ("AFIB", "SBRAD", "SR", "STACH")
    assert set(read_labels(out, "form").classes) == {"HVOLT", "LVOLT", "NDT", "QWAVE", "STD_"}


def test_synthetic_is_deterministic_and_matches_wfdb_wrsamp(tmp_path):
    write_synthetic_ptbxl(tmp_path / "a", 6, seed=2)
    write_synthetic_ptbxl(tmp_path / "b", 6, seed=2)
    for rel in ("ptbxl_database.csv", "records500/00000/00003_hr.dat", "records100/00000/00003_lr.hea"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    # The hand-written WFDB files are byte for byte what wfdb.wrsamp writes for the same samples.
    record = wfdb.rdrecord(str(tmp_path / "a" / "records500/00000/00003_hr"), physical=False)
    wfdb.wrsamp("00003_hr", fs=500, units=["mV"] * 12, sig_name=list(LEADS), d_signal=record.d_signal,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    for ext in (".hea", ".dat"):
        mine = tmp_path / "a" / "records500" / "00000" / f"00003_hr{ext}"
        assert (tmp_path / f"00003_hr{ext}").read_bytes() == mine.read_bytes()


def test_synthetic_100hz_is_the_500hz_decimated(synth):
    labels = read_labels(synth[0], "all", 100)
    (low,), fs, _ = read_records(synth[0], dataclasses.replace(labels, files=labels.files[:1]), 100)
    high, _ = wfdb.rdsamp(str(synth[0] / "records500/00000/00001_hr"))
    assert fs == 100.0 and low.shape == (12, 1000)
    np.testing.assert_allclose(low, resample_poly(high.T, 1, 5, axis=1), atol=2e-3)  # two 1 µV roundings


def _rr(signal: np.ndarray, fs: int) -> np.ndarray:
    """RR intervals (s) from the peaks of the QRS energy (squared slope summed over leads)."""
    energy = np.convolve((np.diff(signal, axis=1) ** 2).sum(axis=0), np.ones(fs // 25), "same")
    peaks, _ = find_peaks(energy, distance=int(0.25 * fs), height=0.3 * np.percentile(energy, 99))
    return np.diff(peaks) / fs


def test_synthetic_rhythms_have_their_heart_rates(synth):
    out = synth[0]
    checked = 0
    for row in csv.DictReader(open(out / "ptbxl_database.csv", newline="")):
        codes = ast.literal_eval(row["scp_codes"])
        if "NORM" not in codes or "LVOLT" in codes:
            continue  # clean normal beats: the simple QRS detector above is reliable on them
        rr = _rr(wfdb.rdsamp(str(out / row["filename_hr"]))[0].T, 500)
        hr, cv = 60 / np.median(rr), rr.std() / rr.mean()
        expected = {"SR": 55 < hr < 100 and cv < 0.08, "STACH": hr > 100 and cv < 0.08,
                    "SBRAD": hr < 60 and cv < 0.08, "AFIB": cv > 0.08}
        assert next(ok for code, ok in expected.items() if code in codes), (row["ecg_id"], codes, hr, cv)
        checked += 1
    assert checked >= 20


def test_synthetic_statement_rows_are_the_real_ones(real):
    rows = {line.split(",")[0]: line for line in (real / "scp_statements.csv").read_text().splitlines()}
    for line in SCP_STATEMENTS.splitlines():
        assert rows[line.split(",")[0]] == line
