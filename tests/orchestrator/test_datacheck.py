"""`data check`: clean datasets pass, each kind of damage fails naming its record, notes do not fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from ecgcore.errors import ProjectError
from ecgcore.io.synth import write_synthetic_dataset
from ecgcore.io.synth12 import write_synthetic_12lead
from orchestrator.datatools.check import check_command

VICTIM = "A00003"  # the damaged record of the synthetic 2017 set


def run_check(path: Path, track: str | None = None) -> tuple[int, str]:
    lines: list[str] = []
    rc = check_command(str(path), track, out=lines.append)
    return rc, "\n".join(lines)


@pytest.fixture(scope="module")
def clean2017(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "synth2017"
    write_synthetic_dataset(out, 12, seed=7)
    return out


@pytest.fixture(scope="module")
def clean12(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean12") / "synth12"
    write_synthetic_12lead(out, 8, seed=2)
    return out


@pytest.fixture
def copy2017(clean2017, tmp_path) -> Path:
    return Path(shutil.copytree(clean2017, tmp_path / "data"))


@pytest.fixture
def copy12(clean12, tmp_path) -> Path:
    return Path(shutil.copytree(clean12, tmp_path / "data12"))


def load_val(mat: Path) -> np.ndarray:
    return scipy.io.loadmat(str(mat))["val"]


def save_val(mat: Path, val: np.ndarray, key: str = "val") -> None:
    scipy.io.savemat(str(mat), {key: val}, format="4")


def edit_first_line(hea: Path, field: int, value: str) -> None:
    lines = hea.read_text().splitlines()
    parts = lines[0].split()
    parts[field] = value
    hea.write_text("\n".join([" ".join(parts), *lines[1:]]) + "\n")


def edit_reference(root: Path, edit) -> None:
    ref = root / "REFERENCE.csv"
    ref.write_text("".join(f"{line}\n" for line in edit(ref.read_text().splitlines())))


def truncate(root: Path, name: str) -> None:
    mat = root / f"{name}.mat"
    mat.write_bytes(mat.read_bytes()[: mat.stat().st_size // 2])


def two_leads_in_header(root: Path, name: str) -> None:
    hea = root / f"{name}.hea"
    edit_first_line(hea, 1, "2")
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join([*lines, lines[1]]) + "\n")


def duplicate_header(root: Path, name: str) -> None:
    (root / "sub").mkdir()
    shutil.copy(root / f"{name}.hea", root / "sub")


def zero_length(root: Path, name: str) -> None:
    save_val(root / f"{name}.mat", np.zeros((1, 0), dtype=np.int16))
    edit_first_line(root / f"{name}.hea", 3, "0")


DAMAGE_2017 = {
    "truncated .mat": (truncate, "unreadable .mat"),
    ".mat without val": (lambda r, n: save_val(r / f"{n}.mat", load_val(r / f"{n}.mat"), "data"), "no variable 'val'"),
    "header length": (lambda r, n: edit_first_line(r / f"{n}.hea", 3, "123"), "header and samples disagree"),
    "header lead count": (two_leads_in_header, "2 signals in header"),
    "all NaN": (lambda r, n: save_val(r / f"{n}.mat", np.full(load_val(r / f"{n}.mat").shape, np.nan)),
                "non-finite samples"),
    "zero length": (zero_length, "zero-length record"),
    "all flat": (lambda r, n: save_val(r / f"{n}.mat", np.zeros_like(load_val(r / f"{n}.mat"))), "flat record"),
    "missing record": (lambda r, n: [(r / f"{n}{s}").unlink() for s in (".hea", ".mat")],
                       "labelled record without files"),
    "no label": (lambda r, n: edit_reference(r, lambda ls: [ln for ln in ls if not ln.startswith(n)]),
                 "record without a label"),
    "unknown label": (lambda r, n: edit_reference(r, lambda ls: [f"{n},X" if ln.startswith(n) else ln for ln in ls]),
                      "is not one of N, A, O, ~"),
    "duplicate label": (lambda r, n: edit_reference(r, lambda ls: [*ls, f"{n},N"]), "listed twice"),
    "duplicate record": (duplicate_header, "duplicate record name"),
}


def test_clean_synthetic_2017_passes(clean2017):
    rc, text = run_check(clean2017)
    assert rc == 0, text
    assert "as CinC 2017" in text and "errors: 0" in text
    assert text.splitlines()[-1].startswith("OK: 12 records usable")


@pytest.mark.parametrize("damage", sorted(DAMAGE_2017))
def test_damaged_2017_fails_naming_the_record(copy2017, damage):
    make, expected = DAMAGE_2017[damage]
    make(copy2017, VICTIM)
    rc, text = run_check(copy2017)
    assert rc == 1, text
    problems = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert problems and all(VICTIM in ln for ln in problems), text
    assert any(expected in ln for ln in problems), text
    assert text.splitlines()[-1].startswith("FAILED:")


def test_clipping_and_flat_stretch_are_notes(copy2017):
    val = load_val(copy2017 / f"{VICTIM}.mat")
    rail = np.percentile(val, 95)
    save_val(copy2017 / f"{VICTIM}.mat", np.minimum(val, rail).astype(np.int16))
    other = copy2017 / "A00005.mat"
    flat = load_val(other)
    flat[0, 300:1200] = flat[0, 300]  # 3 s at 300 Hz
    save_val(other, flat)
    rc, text = run_check(copy2017)
    assert rc == 0, text
    assert f"note: clipping: {copy2017 / VICTIM}.mat" in text
    assert f"note: long flat segment: {other}: 3.0 s" in text
    assert "notes: 2 (clipping 1, long flat segment 1)" in text


def test_listing_is_capped_per_kind(copy2017):
    edit_reference(copy2017, lambda ls: [*ls, *(f"B{i:05d},N" for i in range(25))])
    rc, text = run_check(copy2017)
    assert rc == 1
    assert text.count("error: labelled record without files:") == 21  # 20 lines + "... and 5 more"
    assert "... and 5 more" in text and "FAILED: 25 problem(s)" in text


def test_not_a_dataset(tmp_path):
    rc, text = run_check(tmp_path)
    assert rc == 1 and "no REFERENCE.csv" in text and "FAILED" in text
    with pytest.raises(ProjectError, match="no such folder"):
        check_command(str(tmp_path / "absent"), out=lambda line: None)


def test_2017_folder_without_reference_is_not_12lead(copy2017):
    (copy2017 / "REFERENCE.csv").unlink()
    rc, text = run_check(copy2017)
    assert rc == 1 and "no record has #Dx codes" in text


def test_clean_synthetic_12lead_passes(clean12):
    rc, text = run_check(clean12)
    assert rc == 0, text
    assert "12-lead" in text and "2021 scored classes" in text and "sources: " in text
    rc, text = run_check(clean12, "cinc2020")
    assert rc == 0 and "2020 scored classes" in text


def test_12lead_flat_lead_is_a_note_flat_record_an_error(copy12):
    name = sorted(p.stem for p in copy12.glob("*.mat"))[0]
    mat = copy12 / f"{name}.mat"
    val = load_val(mat)
    val[6] = 0
    save_val(mat, val)
    rc, text = run_check(copy12)
    assert rc == 0 and f"note: flat lead: {mat}: lead(s) V1 constant" in text
    save_val(mat, np.zeros_like(val))
    rc, text = run_check(copy12)
    assert rc == 1 and f"error: flat record: {mat}" in text


@pytest.mark.parametrize("damage, expected", [("drop a lead", "header and samples disagree"),
                                              ("nan", "non-finite samples"), ("truncate", "unreadable")])
def test_damaged_12lead_fails(copy12, damage, expected):
    name = sorted(p.stem for p in copy12.glob("*.mat"))[1]
    mat = copy12 / f"{name}.mat"
    if damage == "truncate":
        truncate(copy12, name)
    else:
        val = load_val(mat)
        save_val(mat, val[:11] if damage == "drop a lead" else np.where(val > 100, np.nan, val))
    rc, text = run_check(copy12)
    assert rc == 1, text
    assert any(ln.startswith(f"error: {expected}") and name in ln for ln in text.splitlines()), text


def test_real_sample_2017_passes(sample2017):
    rc, text = run_check(sample2017)
    assert rc == 0, text
    assert "records: 800 found, 800 readable" in text


def test_real_sample_2020_passes(sample2020):
    rc, text = run_check(sample2020)
    assert rc == 0, text
    assert "records: 79 found, 79 readable" in text
    assert "sources: CPSC 2, Chapman-Shaoxing/Ningbo 33, Georgia 30, PTB-XL 14" in text
    assert "lead(s) V1 V2 V3 V4 V5 V6 constant" in text  # JS11438: a real quirk, a note


@pytest.mark.slow
def test_full_training2017_passes(full2017):
    rc, text = run_check(full2017)
    assert rc == 0, text
    assert "classes: N 5050, A 738, O 2456, ~ 284" in text
    assert "records: 8528 found, 8528 readable" in text


def test_damaged_copy_of_real_records_names_the_record(sample2017, tmp_path):
    labels = (sample2017 / "REFERENCE.csv").read_text().splitlines()[:5]
    names = [line.split(",")[0] for line in labels]
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(sample2017 / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    (tmp_path / "REFERENCE.csv").write_text("".join(f"{line}\n" for line in labels))
    rc, text = run_check(tmp_path)
    assert rc == 0, text
    truncate(tmp_path, names[2])
    rc, text = run_check(tmp_path)
    assert rc == 1
    problems = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(problems) == 1 and f"{names[2]}.mat" in problems[0], text
