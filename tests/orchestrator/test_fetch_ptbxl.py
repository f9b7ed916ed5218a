"""`data fetch ptbxl` offline: PTB-XL's zip from a real HTTP server on 127.0.0.1 (tests/orchestrator/test_fetch.py's),
resumed, unpacked into PTB-XL's flat layout and every file checked against the published SHA256SUMS.txt."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgcore.errors import ProjectError
from orchestrator.cli import main
from orchestrator.datatools.fetch import DATASETS, MARKER, fetch
from tests.orchestrator.conftest import FileServer
from tests.orchestrator.test_fetch import _nothing_complete

PTBXL_TOP = "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3"
PTBXL_ZIP = PTBXL_TOP + ".zip"
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def ptbxl_files(tmp_path_factory) -> dict[str, bytes]:
    """PTB-XL 1.0.3 in miniature, path -> bytes: records 1 and 2 (1 s, 12 leads) under records100/ and records500/,
    the two CSVs, and SHA256SUMS.txt listing every other file in PhysioNet's `<sha256> <path>` form."""
    root = tmp_path_factory.mktemp("ptbxl")
    rng = np.random.default_rng(0)
    for ecg_id in (1, 2):
        for fs, folder, suffix in ((100, "records100", "lr"), (500, "records500", "hr")):
            (root / folder / "00000").mkdir(parents=True, exist_ok=True)
            wfdb.wrsamp(f"{ecg_id:05d}_{suffix}", fs=fs, units=["mV"] * 12, sig_name=LEADS,
                        p_signal=rng.normal(0, 0.2, (fs, 12)), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                        baseline=[0] * 12, write_dir=str(root / folder / "00000"))
    (root / "ptbxl_database.csv").write_text(
        "ecg_id,patient_id,scp_codes,strat_fold,filename_lr,filename_hr\n"
        "1,15709.0,\"{'NORM': 100.0}\",3,records100/00000/00001_lr,records500/00000/00001_hr\n"
        "2,13243.0,\"{'AFIB': 100.0}\",2,records100/00000/00002_lr,records500/00000/00002_hr\n")
    (root / "scp_statements.csv").write_text(",description,diagnostic,rhythm\nNORM,normal ECG,1.0,\nAFIB,"
                                             "atrial fibrillation,,1.0\n")
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    files["SHA256SUMS.txt"] = "".join(f"{_sha256(data)} {rel}\n" for rel, data in sorted(files.items())).encode()
    return files


def _serve_ptbxl(server: FileServer, published: dict[str, bytes], packed: dict[str, bytes] | None = None) -> None:
    """The zip of `packed` (default: published) under PhysioNet's top folder, and published's SHA256SUMS.txt."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, data in (published if packed is None else packed).items():
            zf.writestr(f"{PTBXL_TOP}/{rel}", data)
    server.files[PTBXL_ZIP] = buffer.getvalue()
    server.files["SHA256SUMS.txt"] = published["SHA256SUMS.txt"]


def _fetch_ptbxl(server: FileServer, dest: Path) -> Path:
    return fetch("ptbxl", dest, say=lambda _: None, progress=False, sources={"ptbxl": server.url})


def test_ptbxl_zip_resumes_then_every_file_is_checked_into_the_flat_layout(server, ptbxl_files, tmp_path):
    _serve_ptbxl(server, ptbxl_files)
    server.cut_at[PTBXL_ZIP] = 1000
    with pytest.raises(ProjectError, match="stopped after 1,000 bytes"):
        _fetch_ptbxl(server, tmp_path)
    _nothing_complete(tmp_path, "ptbxl")
    assert (tmp_path / ".downloads" / f"{PTBXL_ZIP}.part").stat().st_size == 1000
    del server.cut_at[PTBXL_ZIP]
    # Through the command line this time, which must offer ptbxl; the next run resumes the kept part.
    assert main(["data", "fetch", "ptbxl", "--dest", str(tmp_path), "--base-url", server.url]) == 0
    assert server.requests_for(PTBXL_ZIP)[-1] == "bytes=1000-"
    final = tmp_path / "ptbxl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ptbxl"]  # no .partial, no .downloads, no top folder
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [MARKER, "SHA256SUMS.txt", "ptbxl_database.csv", "records100", "records500", "scp_statements.csv"])
    rows = list(csv.DictReader(io.StringIO((final / "ptbxl_database.csv").read_text())))
    assert [row["ecg_id"] for row in rows] == ["1", "2"]
    for row in rows:
        for column, fs in (("filename_lr", 100), ("filename_hr", 500)):
            signal, fields = wfdb.rdsamp(str(final / row[column]))  # the CSV's relative paths resolve
            assert signal.shape == (fs, 12) and fields["fs"] == fs
    marker = json.loads((final / MARKER).read_text())
    assert marker["checksums"] == {"SHA256SUMS.txt": "sha256:" + _sha256(ptbxl_files["SHA256SUMS.txt"])}
    assert marker["files"] == len(ptbxl_files) - 1  # every listed file; the list does not list itself
    assert marker["checksum_source"] == server.url + "SHA256SUMS.txt"  # a mirror serves the list beside the zip


_DAMAGE = {  # what the zip holds instead of the release, and the refusal it earns
    "tampered": (lambda f: {**f, "records100/00000/00001_lr.dat": b"\0\0" + f["records100/00000/00001_lr.dat"][2:]},
                 r"records100/00000/00001_lr\.dat: sha256 checksum mismatch"),
    "missing": (lambda f: {k: v for k, v in f.items() if k != "scp_statements.csv"},
                r"1 listed but missing \['scp_statements\.csv'\]"),
    "unlisted": (lambda f: {**f, "records100/00000/extra.hea": b"extra 1 100 100\n"},
                 r"1 there but not listed \['records100/00000/extra\.hea'\]"),
    "other list": (lambda f: {**f, "SHA256SUMS.txt": f["SHA256SUMS.txt"] + b"\n"},
                   r"SHA256SUMS\.txt: sha256 checksum mismatch"),
}


@pytest.mark.parametrize("damage", _DAMAGE)
def test_ptbxl_files_unlike_the_published_list_are_refused_and_nothing_is_left(server, ptbxl_files, tmp_path,
                                                                               damage):
    packed, message = _DAMAGE[damage][0](ptbxl_files), _DAMAGE[damage][1]
    _serve_ptbxl(server, ptbxl_files, packed)
    with pytest.raises(ProjectError, match=message) as caught:
        _fetch_ptbxl(server, tmp_path)
    assert f"{PTBXL_ZIP} were deleted" in str(caught.value)
    if damage == "tampered":  # both digests named, the published one with where it comes from
        rel = "records100/00000/00001_lr.dat"
        assert f"expected {_sha256(ptbxl_files[rel])} (from {server.url}SHA256SUMS.txt), got {_sha256(packed[rel])}" \
            in str(caught.value)
    _nothing_complete(tmp_path, "ptbxl")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no unpacked file, no zip: the rerun starts afresh
    _serve_ptbxl(server, ptbxl_files)
    assert (_fetch_ptbxl(server, tmp_path) / "records500" / "00000" / "00001_hr.hea").is_file()


def test_ptbxl_comes_from_physionet_and_its_manual_steps_unpack_then_check(tmp_path):
    spec = DATASETS["ptbxl"]
    assert spec.base_url + spec.archives[0].name == \
        f"https://physionet.org/static/published-projects/ptb-xl/{PTBXL_ZIP}"
    assert spec.checksum_source == "https://physionet.org/files/ptb-xl/1.0.3/SHA256SUMS.txt"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProjectError) as caught:
        fetch("ptbxl", tmp_path, say=lambda _: None, progress=False, sources={"ptbxl": f"http://127.0.0.1:{port}/"})
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/SHA256SUMS.txt" in message  # the list is fetched first, before 1.7 GB
    assert f"unzip {PTBXL_ZIP} && mv {PTBXL_TOP} ptbxl" in message
    assert f"cd {tmp_path / 'ptbxl'} && curl -s http://127.0.0.1:{port}/SHA256SUMS.txt | sha256sum -c" in message
    assert "records500/00000/00001_hr.hea" in message
    _nothing_complete(tmp_path, "ptbxl")
