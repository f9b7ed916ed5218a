"""Generated bad-input cases: a clean synthetic dataset, copied and damaged (see tests/bad_inputs/README.md).

Each function builds one case in its own work folder and returns the command's arguments and the
fragments its error must contain (the damaged file or record). tests/bad_inputs/test_bad_inputs.py runs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from tests.conftest import write_json

CASES = Path(__file__).resolve().parent
SHARED_MODELS = CASES / "_shared" / "models"
SPLIT = "split_2_2_0"


@dataclass(frozen=True)
class Env:
    clean: dict[int, Path]  # templates, copied before damage (2017 and 2021)
    data2017: Path  # a clean set the static cases may read (its split is written there)


@dataclass(frozen=True)
class Case:
    argv: list[str]
    expect: list[str]
    exit_code: int = 2
    prepared: bool = False  # the dataset was read and cached before the error: log/.cache may hold it
    log_dir: Path | None = None  # a --log-dir of the case's own (log folder cases)


# ----- generated cases: a clean synthetic set, damaged -----

GENERATED: dict[str, Callable[[Path, Env], Case]] = {}


def generated(fn: Callable[[Path, Env], Case]) -> Callable[[Path, Env], Case]:
    GENERATED[fn.__name__] = fn
    return fn


def copy_data(work: Path, env: Env, challenge: int = 2017) -> Path:
    return Path(shutil.copytree(env.clean[challenge], work / "data"))


def argv(work: Path, data: Path, challenge: int = 2017, **job) -> list[str]:
    body = {"model": "tiny" if challenge == 2017 else "tiny12", "split": SPLIT, "cvids": [0],
            "challenge": challenge, **job}
    job_file = write_json(work / "jobs" / "job.json", {"a": body})
    return ["submit", str(job_file), "--models-dir", str(SHARED_MODELS), "--data", str(data)]


def edit_header(hea: Path, edit: Callable[[list[str]], None]) -> None:
    lines = hea.read_text().splitlines()
    edit(lines)
    hea.write_text("\n".join(lines) + "\n")


def set_field(line: str, index: int, value: str) -> str:
    parts = line.split()
    parts[index] = value
    return " ".join(parts)


def save_val(mat: Path, val: np.ndarray, name: str = "val") -> None:
    scipy.io.savemat(mat, {name: val}, format="4")


@generated
def data_empty_folder(work, env):
    (work / "empty").mkdir()
    return Case(argv(work, work / "empty"), [f"{work / 'empty'}: no REFERENCE.csv"])


@generated
def data_reference_names_missing_record(work, env):
    data = copy_data(work, env)
    with open(data / "REFERENCE.csv", "a") as fh:
        fh.write("A09999,N\n")
    return Case(argv(work, data), [f"{data / 'REFERENCE.csv'}: record A09999 has no .hea/.mat files"])


@generated
def data_record_without_label(work, env):
    data = copy_data(work, env)
    ref = data / "REFERENCE.csv"
    ref.write_text("".join(line for line in ref.read_text().splitlines(True) if not line.startswith("A00003")))
    return Case(argv(work, data), [f"{data / 'A00003.hea'}: record A00003 has no label in REFERENCE.csv"])


@generated
def data_unknown_label(work, env):
    data = copy_data(work, env)
    ref = data / "REFERENCE.csv"
    lines = ref.read_text().splitlines()
    lines[2] = "A00003,X"
    ref.write_text("\n".join(lines) + "\n")
    return Case(argv(work, data), [f"{ref}:3: record A00003: label 'X' is not one of N, A, O, ~"])


@generated
def data_reference_not_text(work, env):
    data = copy_data(work, env)
    (data / "REFERENCE.csv").write_bytes(b"\xff\xfe\x00\x01binary")
    return Case(argv(work, data), [f"{data / 'REFERENCE.csv'}: not a text file of 'record,label' lines"])


@generated
def data_record_name_without_number(work, env):
    data = copy_data(work, env)
    for suffix in (".hea", ".mat"):
        (data / f"A00003{suffix}").rename(data / f"rec_x{suffix}")
    ref = data / "REFERENCE.csv"
    ref.write_text(ref.read_text().replace("A00003,", "rec_x,"))
    return Case(argv(work, data), [f"{ref}:3: record name 'rec_x' does not end in a record number"])


@generated
def data_truncated_mat(work, env):
    data = copy_data(work, env)
    mat = data / "A00003.mat"
    mat.write_bytes(mat.read_bytes()[:100])
    return Case(argv(work, data), [f"{mat}: unreadable MATLAB file"])


@generated
def data_mat_without_val(work, env):
    data = copy_data(work, env)
    mat = data / "A00003.mat"
    save_val(mat, scipy.io.loadmat(mat)["val"], name="signal")
    return Case(argv(work, data), [f"{mat}: no variable 'val'"])


@generated
def data_header_length_mismatch(work, env):
    data = copy_data(work, env)
    n = scipy.io.loadmat(data / "A00003.mat")["val"].shape[1]
    edit_header(data / "A00003.hea", lambda lines: lines.__setitem__(0, set_field(lines[0], 3, str(n + 5))))
    return Case(argv(work, data), [f"{data / 'A00003.mat'}: {n} samples but header A00003.hea says {n + 5}"])


@generated
def data_header_two_leads(work, env):
    data = copy_data(work, env)

    def two_leads(lines: list[str]) -> None:
        lines[0] = set_field(lines[0], 1, "2")
        lines.insert(2, lines[1].replace(" ECG", " ECG2"))

    edit_header(data / "A00003.hea", two_leads)
    return Case(argv(work, data), [f"{data / 'A00003.hea'}: 2 signals in header, a CinC 2017 record has 1"])


@generated
def data_all_nan(work, env):
    data = copy_data(work, env)
    mat = data / "A00003.mat"
    save_val(mat, np.full(scipy.io.loadmat(mat)["val"].shape, np.nan))
    return Case(argv(work, data), [f"{mat}: samples are not finite"])


@generated
def data_zero_length(work, env):
    data = copy_data(work, env)
    edit_header(data / "A00003.hea", lambda lines: lines.__setitem__(0, set_field(lines[0], 3, "0")))
    save_val(data / "A00003.mat", np.zeros((1, 0), dtype=np.int16))
    return Case(argv(work, data), [f"{data / 'A00003.mat'}: zero-length record"])


@generated
def data_mixed_rates(work, env):
    data = copy_data(work, env)
    edit_header(data / "A00003.hea", lambda lines: lines.__setitem__(0, set_field(lines[0], 2, "250")))
    return Case(argv(work, data), [f"dataset {data}: records have different sampling rates: 250 Hz "
                                   "(first record A00003), 300 Hz (first record A00001)"])


def write_stored_split(data: Path, **parts: list) -> Path:
    """A 2-fold split of the 24 clean records in the reference layout; parts replace files (test1=[])."""
    folder = data / "splits" / SPLIT
    halves = (list(range(1, 13)), list(range(13, 25)))
    files = {"properties.json": {"name": SPLIT}}
    for k in (0, 1):
        rest = halves[1 - k]
        files.update({f"train{k}.json": rest[:8], f"valid{k}.json": rest[8:], f"test{k}.json": halves[k]})
    for name, content in {**files, **{f"{k}.json": v for k, v in parts.items()}}.items():
        write_json(folder / name, content)
    return folder


@generated
def split_stored_empty_test(work, env):
    data = copy_data(work, env)
    folder = write_stored_split(data, test1=[])
    return Case(argv(work, data, cvids=[0, 1]), [f"{folder / 'test1.json'}: the test set of fold 1 is empty"],
                prepared=True)


@generated
def split_stored_unknown_record(work, env):
    data = copy_data(work, env)
    folder = write_stored_split(data, test0=[1, 2, 999])
    return Case(argv(work, data), [f"{folder / 'test0.json'}: 1 record(s) not in the dataset, e.g. [999]"],
                prepared=True)


@generated
def split_stored_properties_malformed(work, env):
    data = copy_data(work, env)
    folder = write_stored_split(data)
    (folder / "properties.json").write_text("{oops")
    return Case(argv(work, data), [f"{folder / 'properties.json'}: unreadable split properties"], prepared=True)


@generated
def split_too_few_records(work, env):
    data = copy_data(work, env)
    return Case(argv(work, data, split="split_5_6_14"),
                [f"dataset {data.resolve()}: split split_5_6_14: 24 records are too few for 5 folds with tv 6"],
                prepared=True)


@generated
def log_parent_is_file(work, env):
    (work / "file").write_text("a regular file where a folder should be")
    log = work / "file" / "log"
    return Case([*argv(work, env.data2017), "--log-dir", str(log)], [f"log folder {log}: cannot create it"],
                log_dir=log)


@generated
def log_read_only(work, env):
    """chmod 0o500 stops writes, except for root (tests may run as root): then the log path is a regular file."""
    parent = work / "read_only"
    parent.mkdir()
    parent.chmod(0o500)
    if os.access(parent, os.W_OK):  # root: mode bits do not stop writes
        parent.chmod(0o700)
        (parent / "log").write_text("a regular file where the log folder should be")
    log = parent / "log"
    return Case([*argv(work, env.data2017), "--log-dir", str(log)], [f"log folder {log}: cannot create it"],
                log_dir=log)


# ----- 12-lead (CinC 2020/2021) records: A00001 is a header without quirks, 12 leads x 5000 samples -----

REC12 = "A00001"


def copy12(work: Path, env: Env) -> tuple[Path, Path, Path]:
    data = copy_data(work, env, 2021)
    return data, data / f"{REC12}.hea", data / f"{REC12}.mat"


@generated
def data12_empty_folder(work, env):
    (work / "empty").mkdir()
    return Case(argv(work, work / "empty", 2021), [f"{work / 'empty'}: no .hea files"])


@generated
def data12_truncated_mat(work, env):
    data, hea, mat = copy12(work, env)
    mat.write_bytes(mat.read_bytes()[:10])
    return Case(argv(work, data, 2021), [f"{mat}: cannot read the 'val' variable (MatReadError"])


@generated
def data12_half_mat(work, env):
    data, hea, mat = copy12(work, env)
    mat.write_bytes(mat.read_bytes()[: mat.stat().st_size // 2])
    return Case(argv(work, data, 2021), [f"{mat}: cannot read the 'val' variable (ValueError"])


@generated
def data12_mat_without_val(work, env):
    data, hea, mat = copy12(work, env)
    save_val(mat, scipy.io.loadmat(mat)["val"], name="signal")
    return Case(argv(work, data, 2021), [f"{mat}: cannot read the 'val' variable (the file has no variable 'val')"])


@generated
def data12_missing_mat(work, env):
    data, hea, mat = copy12(work, env)
    mat.unlink()
    return Case(argv(work, data, 2021), [f"{hea}: no {REC12}.mat beside it"])


@generated
def data12_leads_mismatch(work, env):
    data, hea, mat = copy12(work, env)
    save_val(mat, scipy.io.loadmat(mat)["val"][:11])
    return Case(argv(work, data, 2021), [f"{mat}: samples are (11, 5000), the header says 12 leads x 5000 samples"])


@generated
def data12_header_lead_count(work, env):
    data, hea, mat = copy12(work, env)
    edit_header(hea, lambda lines: lines.pop(12))  # the V6 signal line
    return Case(argv(work, data, 2021), [f"{hea}: the first line announces 12 leads, 11 signal lines follow"])


@generated
def data12_header_length_mismatch(work, env):
    data, hea, mat = copy12(work, env)
    edit_header(hea, lambda lines: lines.__setitem__(0, set_field(lines[0], 3, "5003")))
    return Case(argv(work, data, 2021), [f"{mat}: samples are (12, 5000), the header says 12 leads x 5003 samples"])


@generated
def data12_malformed_dx(work, env):
    data, hea, mat = copy12(work, env)
    edit_header(hea, lambda lines: lines.__setitem__(
        next(i for i, line in enumerate(lines) if line.startswith("#Dx")), "#Dx: 164889003;426783006"))
    return Case(argv(work, data, 2021), [f"{hea}: #Dx entry '164889003;426783006' is not a SNOMED CT code"])


@generated
def data12_malformed_signal_line(work, env):
    data, hea, mat = copy12(work, env)
    edit_header(hea, lambda lines: lines.__setitem__(2, set_field(lines[2], 4, "zero")))
    return Case(argv(work, data, 2021), [f"{hea}: unreadable gain, ADC zero or initial value in ", " II'"])


@generated
def data12_all_nan(work, env):
    data, hea, mat = copy12(work, env)
    save_val(mat, np.full((12, 5000), np.nan))
    return Case(argv(work, data, 2021), [f"{mat}: samples are not finite"])


@generated
def data12_zero_length(work, env):
    data, hea, mat = copy12(work, env)
    edit_header(hea, lambda lines: lines.__setitem__(0, set_field(lines[0], 3, "0")))
    save_val(mat, np.zeros((12, 0), dtype=np.int16))
    return Case(argv(work, data, 2021), [f"{mat}: zero-length record"])


@generated
def data12_fold_outside_sources_split(work, env):
    """Leave-source-out has one fold per source in the data: the job file cannot be checked before reading it."""
    data, hea, mat = copy12(work, env)
    return Case(argv(work, data, 2021, split="sources_2_0", cvids=[0, 7]),
                [str(work / "jobs" / "job.json"), "$.a.cvids[1]: split sources_2_0 of "
                 f"{data} has 4 folds (0..3), no fold 7"], prepared=True)
