"""Generic WFDB folder reader: synthetic .dat/.mat records, label CSV variants, matching, and CinC 2017 parity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import wfdb

from ecgcore.errors import DataError
from ecgcore.io import cinc2017
from ecgcore.io.wfdb_folder import (
    LabelTable,
    find_records,
    match,
    patient_leakage,
    pick_leads,
    read_labels,
    read_record,
)


def write_dat(folder, name, fs, leads, digital, gain=200.0, baseline=10, units="mV"):
    """A .dat record from int16 samples (samples, leads): its mV values are exactly (d - baseline) / gain."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(leads)
    wfdb.wrsamp(name, fs=fs, units=[units] * n, sig_name=list(leads), d_signal=digital.astype(np.int16),
                fmt=["16"] * n, adc_gain=[gain] * n, baseline=[baseline] * n, write_dir=str(folder))
    return folder / f"{name}.hea"


def write_mat(folder, name, fs, leads, val, gain=1000.0, baseline=5, first_line_name=None):
    """A challenge-style record: MATLAB v4 'val' (leads, samples) int16 and a header naming the .mat."""
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"{name}.mat", {"val": val.astype(np.int16)}, format="4")
    lines = [f"{first_line_name or name} {len(leads)} {fs} {val.shape[1]}"]
    lines += [f"{name}.mat 16+24 {gain:g}({baseline})/mV 16 0 {int(row[0])} 0 0 {lead}"
              for lead, row in zip(leads, val, strict=True)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def digital(n_samples, n_leads, seed=0):
    return np.random.default_rng(seed).integers(-2000, 2000, size=(n_samples, n_leads))


@pytest.fixture
def data(tmp_path):
    """Nested records at three rates with three lead sets, .dat and .mat, plus folders that must be skipped."""
    root = tmp_path / "data"
    write_dat(root, "A001", 300, ("ECG",), digital(600, 1))
    write_dat(root / "sub", "B002", 500, ("I", "aVR"), digital(1000, 2, seed=1))
    write_mat(root / "sub" / "deep", "C003", 250, ("I", "II", "V1"), digital(500, 3, seed=2).T)
    write_dat(root / "splits", "S1", 300, ("ECG",), digital(10, 1))
    write_dat(root / ".cache" / "x", "K1", 300, ("ECG",), digital(10, 1))
    return root


def write_csv(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- records -------------------------------------------------------------------------------------

def test_find_records_nested_posix_names_skipping_splits_and_cache(data):
    records = find_records(data)
    assert list(records) == ["A001", "sub/B002", "sub/deep/C003"]
    assert records["sub/deep/C003"] == data / "sub" / "deep" / "C003.hea"


def test_find_records_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_records(tmp_path / "nope")
    with pytest.raises(DataError, match="no .hea files"):
        find_records(tmp_path)


def test_read_record_dat_single_and_multi_lead(data):
    signal, fs, leads = read_record(data / "A001.hea")
    assert signal.shape == (1, 600) and signal.dtype == np.float32 and fs == 300.0 and leads == ("ECG",)
    np.testing.assert_array_equal(signal, ((digital(600, 1).T - 10) / 200.0).astype(np.float32))
    signal, fs, leads = read_record(data / "sub" / "B002.hea")
    assert signal.shape == (2, 1000) and fs == 500.0 and leads == ("I", "aVR")
    np.testing.assert_array_equal(signal, ((digital(1000, 2, seed=1).T - 10) / 200.0).astype(np.float32))


def test_read_record_mat_uses_gain_and_baseline(data):
    signal, fs, leads = read_record(data / "sub" / "deep" / "C003.hea")
    assert signal.shape == (3, 500) and fs == 250.0 and leads == ("I", "II", "V1")
    np.testing.assert_array_equal(signal, ((digital(500, 3, seed=2).T - 5) / 1000.0).astype(np.float32))


def test_read_record_mat_header_quirk_wfdb_rejects(tmp_path):
    # Georgia (CinC 2020) headers name the .mat on their first line; wfdb.rdheader refuses them.
    hea = write_mat(tmp_path, "E001", 500, ("I",), digital(50, 1).T, first_line_name="E001.mat")
    signal, fs, _ = read_record(hea)
    assert signal.shape == (1, 50) and fs == 500.0


def test_read_record_multi_segment_through_wfdb(tmp_path):
    # The master header's lines name segment records, not signal files.
    write_dat(tmp_path, "seg1", 100, ("II",), digital(30, 1))
    write_dat(tmp_path, "seg2", 100, ("II",), digital(20, 1, seed=1))
    (tmp_path / "M.hea").write_text("M/2 1 100 50\nseg1 30\nseg2 20\n")
    signal, fs, leads = read_record(tmp_path / "M.hea")
    expected = np.concatenate([digital(30, 1), digital(20, 1, seed=1)])[:, 0]
    np.testing.assert_array_equal(signal[0], ((expected - 10) / 200.0).astype(np.float32))
    assert fs == 100.0 and leads == ("II",)


def test_read_record_converts_microvolts_to_mv(tmp_path):
    hea = write_dat(tmp_path, "U1", 100, ("II",), digital(40, 1), gain=1.0, baseline=0, units="uV")
    signal, _, _ = read_record(hea)
    np.testing.assert_allclose(signal[0], digital(40, 1)[:, 0] / 1000.0, rtol=1e-6)


def test_read_record_errors(tmp_path):
    hea = write_dat(tmp_path, "M1", 100, ("II",), digital(40, 1))
    (tmp_path / "M1.dat").unlink()
    with pytest.raises(DataError, match=r"M1.hea: signal file M1.dat is missing"):
        read_record(hea)
    samples = digital(40, 1)
    samples[3, 0] = -32768  # WFDB's "no sample" value in format 16
    hea = write_dat(tmp_path, "N1", 100, ("II",), samples)
    with pytest.raises(DataError, match=r"N1.hea: 1 samples are missing or not finite"):
        read_record(hea)
    hea = write_mat(tmp_path, "T1", 100, ("I", "II"), digital(40, 2).T)
    hea.write_text(hea.read_text().replace("T1.mat 16+24 1000(5)/mV 16 0 ", "T2.mat 16+24 1000(5)/mV 16 0 ", 1))
    with pytest.raises(DataError, match=r"T1.hea: signals in several files \['T1.mat', 'T2.mat'\]"):
        read_record(hea)
    hea = write_dat(tmp_path, "P1", 100, ("II",), digital(40, 1), units="mmHg")
    with pytest.raises(DataError, match=r"P1.hea: lead II is in 'mmHg'; expected mV, uV or V"):
        read_record(hea)


# --- labels CSV ----------------------------------------------------------------------------------

def test_read_labels_one_row_per_record(tmp_path):
    table = read_labels(write_csv(tmp_path, "record,label\nB,N\nA,AF\n"))
    assert table == LabelTable(names=("A", "B"), labels=(("AF",), ("N",)), patients=(), folds=(),
                               multilabel=False, classes=("AF", "N"))


def test_read_labels_several_rows_and_semicolons_keep_first_seen_order(tmp_path):
    path = write_csv(tmp_path, "record , label\nA, PVC ; AF \nA,AF\nA,LBBB\nsub/B,N\n\n,\n")
    table = read_labels(path)
    assert table.names == ("A", "sub/B")
    assert table.labels == (("PVC", "AF", "LBBB"), ("N",))
    assert table.multilabel and table.classes == ("AF", "LBBB", "N", "PVC")


def test_read_labels_patient_fold_and_custom_label_column(tmp_path):
    path = write_csv(tmp_path, "record,dx,patient,fold\nA,N,p1,1\nB,AF,p1,2\nA,PVC,p1, 1\nC,N,p2,2\n")
    table = read_labels(path, label_column="dx")
    assert table.names == ("A", "B", "C") and table.patients == ("p1", "p1", "p2") and table.folds == (1, 2, 2)
    assert table.labels[0] == ("N", "PVC")


@pytest.mark.parametrize("text, message", [
    ("name,label\nA,N\n", r"no record column 'record'; the file's columns are \['name', 'label'\]"),
    ("record,dx\nA,N\n", r"no label column 'label'; the file's columns are \['record', 'dx'\]"),
    ("record,label\nA,\n", r":2: record A: empty label in ''"),
    ("record,label\nA,N;;AF\n", r":2: record A: empty label in 'N;;AF'"),
    ("record,label\nA,N\n,AF\n", r":3: empty 'record' cell"),
    ("record,label,fold\nA,N,1\nB,N,two\n", r":3: record B: fold 'two' is not an integer"),
    ("record,label,fold\nA,N,1.5\n", r":2: record A: fold '1.5' is not an integer"),
    ("record,label,fold\nA,N,1\nA,AF,2\n", r":3: fold 2 differs from 1 on an earlier row"),
    ("record,label,patient\nA,N,p1\nA,AF,p2\n", r":3: patient 'p2' differs from 'p1'"),
    ("record,label,patient\nA,N,\n", r":2: record A: empty patient"),
    ("record,label\nA,N,AF\n", r":2: more cells than the 2 columns"),
    ("record,label\n", r"no records"),
])
def test_read_labels_errors_name_the_csv(tmp_path, text, message):
    path = write_csv(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        read_labels(path)
    assert str(path) in str(info.value)


def test_read_labels_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"labels CSV .*nope.csv does not exist"):
        read_labels(tmp_path / "nope.csv")


# --- matching ------------------------------------------------------------------------------------

def test_match_by_path_or_base_name_and_reports_unlabelled(data, tmp_path):
    table = read_labels(write_csv(tmp_path, "record,label,fold\nA001,N,0\nC003,AF;N,1\n"))
    matched = match(table, find_records(data))
    assert matched.names == ("A001", "sub/deep/C003")
    assert matched.paths == (data / "A001.hea", data / "sub" / "deep" / "C003.hea")
    assert matched.labels == (("N",), ("AF", "N")) and matched.folds == (0, 1) and matched.patients == ()
    assert matched.unlabelled == ("sub/B002",)


def test_match_ambiguous_base_name_lists_candidates(data, tmp_path):
    write_dat(data / "other", "C003", 300, ("ECG",), digital(10, 1))
    records = find_records(data)
    with pytest.raises(DataError, match=r"'C003' is ambiguous: .*other/C003, sub/deep/C003"):
        match(read_labels(write_csv(tmp_path, "record,label\nC003,N\n")), records)
    # The relative path is never ambiguous.
    assert match(read_labels(write_csv(tmp_path, "record,label\nother/C003,N\n")), records).names == ("other/C003",)


def test_match_missing_records_count_and_first_five(data, tmp_path):
    rows = "".join(f"X{i},N\n" for i in range(7))
    with pytest.raises(DataError, match=r"7 record\(s\) of the labels CSV have no .hea file among the 3 found: "
                                        r"X0, X1, X2, X3, X4, \.\.\.$"):
        match(read_labels(write_csv(tmp_path, "record,label\nA001,N\n" + rows)), find_records(data))


def test_match_same_record_twice(data, tmp_path):
    table = read_labels(write_csv(tmp_path, "record,label\nB002,N\nsub/B002,AF\n"))
    with pytest.raises(DataError, match=r"gives record sub/B002 twice: as 'B002' and as 'sub/B002'"):
        match(table, find_records(data))


@pytest.mark.parametrize("folds, message", [
    ((0, 2, 3), r"fold\(s\) 1 have no records .*must be 0\.\.3 without gaps"),
    ((1, 3, 4), r"fold\(s\) 2 have no records .*must be 1\.\.4 without gaps"),
    ((2, 3, 3), r"fold\(s\) 1 have no records"),
    ((-1, 0, 1), r"fold -1 is negative"),
])
def test_match_fold_gaps(data, tmp_path, folds, message):
    names = ("A001", "B002", "C003")
    text = "record,label,fold\n" + "".join(f"{n},N,{f}\n" for n, f in zip(names, folds, strict=True))
    with pytest.raises(DataError, match=message):
        match(read_labels(write_csv(tmp_path, text)), find_records(data))


@pytest.mark.parametrize("folds", [(0, 1, 2), (1, 2, 2), (1, 1, 1)])
def test_match_contiguous_folds(data, tmp_path, folds):
    names = ("A001", "B002", "C003")
    text = "record,label,fold\n" + "".join(f"{n},N,{f}\n" for n, f in zip(names, folds, strict=True))
    assert match(read_labels(write_csv(tmp_path, text)), find_records(data)).folds == folds


# --- leakage and leads ---------------------------------------------------------------------------

def test_patient_leakage():
    names = ("a", "b", "c", "d", "e")
    assert patient_leakage(names, ("p2", "p1", "p2", "p1", "p3"), (1, 1, 2, 1, 3)) == [("p2", (1, 2))]
    assert patient_leakage(names, ("p", "p", "q", "q", "q"), (3, 1, 1, 2, 3)) == [("p", (1, 3)), ("q", (1, 2, 3))]
    assert patient_leakage(names, (), (1, 1, 2, 1, 3)) == []
    assert patient_leakage(names, ("p",) * 5, ()) == []


def test_pick_leads_case_insensitive_in_wanted_order():
    signal = np.arange(12, dtype=np.float32).reshape(3, 4)
    picked = pick_leads(signal, ("I", "AVR", "V1"), ("v1", "aVR"), "sub/B002")
    np.testing.assert_array_equal(picked, signal[[2, 1]])
    assert pick_leads(signal, ("I", "AVR", "V1"), ("I",), "r").shape == (1, 4)
    with pytest.raises(DataError, match=r"record sub/B002: no lead\(s\) V5, aVL \(it has I, AVR, V1\)"):
        pick_leads(signal, ("I", "AVR", "V1"), ("V5", "I", "aVL"), "sub/B002")


# --- CinC 2017 parity ----------------------------------------------------------------------------

def test_cinc2017_records_read_as_the_cinc2017_reader_reads_them(sample2017, tmp_path):
    # The same formula ((val - baseline) / gain in float64, then float32) on the same int16 samples:
    # the values must be identical, not merely close.
    lines = (sample2017 / cinc2017.REFERENCE_FILE).read_text().splitlines()
    table = read_labels(write_csv(tmp_path, "record,label\n" + "\n".join(lines) + "\n"))
    matched = match(table, find_records(sample2017))
    assert len(matched.names) == 800 and matched.unlabelled == ()
    for name, hea in zip(matched.names, matched.paths, strict=True):
        signal, fs, leads = read_record(hea)
        expected, expected_fs = cinc2017.read_record(hea, hea.with_suffix(".mat"))
        assert fs == expected_fs and leads == ("ECG",) and signal.shape == (1, expected.size)
        assert np.array_equal(signal[0], expected), name
