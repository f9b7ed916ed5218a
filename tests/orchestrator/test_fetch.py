"""`data fetch` against a real HTTP server on 127.0.0.1 that serves archives made here.

The server understands Range requests (206 + Content-Range, 416). On request it
can cut one transfer after N bytes, cut every transfer at a file offset, or
ignore Range and send the whole file with 200. It records each request's path
and Range header. fetch() runs the production code path; only the base URL (and,
for cinc2020, the archive table, whose real MD5s are of the real archives)
points at the local server. ptbxl gets a PTB-XL 1.0.3 zip in miniature: the
same top folder and layout, two records written with wfdb at 100 and 500 Hz,
and SHA256SUMS.txt inside it and beside it, as PhysioNet publishes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from ecgcore.errors import ProjectError
from ecgcore.io import cinc2017, cinc2020
from ecgcore.io.synth import write_synthetic_dataset
from ecgcore.io.synth12 import write_synthetic_12lead
from orchestrator.datatools import download
from orchestrator.datatools.fetch import DATASETS, MARKER, Archive, fetch, fetch_command
from tests.orchestrator.conftest import FileServer


def _zip_of(folder: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}/{path.name}")
    return buffer.getvalue()


def _targz_of(folder: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=prefix)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def zip2017(tmp_path_factory) -> bytes:
    """A training2017.zip laid out like the real one: training2017/REFERENCE.csv + A0000n.hea/.mat."""
    records = tmp_path_factory.mktemp("records2017")
    write_synthetic_dataset(records, 3, seed=1)
    return _zip_of(records, "training2017")


@pytest.fixture(scope="module")
def targz2020(tmp_path_factory) -> bytes:
    records = tmp_path_factory.mktemp("records2020")
    write_synthetic_12lead(records, 3, seed=1)
    return _targz_of(records, "Training_WFDB")


def _serve_2017(server: FileServer, archive: bytes, published: bytes | None = None) -> None:
    """training2017.zip and a SHA256SUMS.txt (PhysioNet's one-space format) for `published` (default: it)."""
    digest = hashlib.sha256(archive if published is None else published).hexdigest()
    server.files["training2017.zip"] = archive
    server.files["SHA256SUMS.txt"] = f"{'0' * 64} REFERENCE-v3.csv\n{digest} training2017.zip\n".encode()


def _fetch_2017(server: FileServer, dest: Path, **kwargs) -> Path:
    return fetch("cinc2017", dest, say=lambda _: None, progress=False, sources={"cinc2017": server.url}, **kwargs)


def _nothing_complete(dest: Path, folder: str = "training2017") -> None:
    assert not (dest / folder).exists()
    assert not list(dest.rglob(MARKER))


def test_good_archive_is_verified_unpacked_marked_and_not_fetched_again(server, zip2017, tmp_path):
    _serve_2017(server, zip2017)
    final = _fetch_2017(server, tmp_path)
    assert final == tmp_path / "training2017"
    dataset = cinc2017.load_dataset(final)  # the project's own reader accepts the result
    assert len(dataset) == 3
    marker = json.loads((final / MARKER).read_text())
    assert marker["dataset"] == "cinc2017"
    assert marker["checksums"] == {"training2017.zip": "sha256:" + hashlib.sha256(zip2017).hexdigest()}
    assert marker["fetched_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training2017"]  # no .partial, no downloads left
    said: list[str] = []
    before = len(server.requests)
    assert fetch("cinc2017", tmp_path, say=said.append, sources={"cinc2017": server.url}) == final
    assert len(server.requests) == before
    assert "nothing to do" in said[0]


def test_corrupted_archive_is_deleted_and_named_with_both_checksums(server, zip2017, tmp_path):
    corrupted = zip2017[:-10] + b"\0" * 10
    _serve_2017(server, corrupted, published=zip2017)
    with pytest.raises(ProjectError) as caught:
        _fetch_2017(server, tmp_path)
    message = str(caught.value)
    assert "training2017.zip" in message
    assert hashlib.sha256(zip2017).hexdigest() in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    _nothing_complete(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the bad archive is gone, .part included


def test_truncated_transfers_never_leave_a_complete_looking_dataset(server, zip2017, tmp_path):
    _serve_2017(server, zip2017)
    server.cut_at["training2017.zip"] = 1000  # every response stops there and closes the connection
    with pytest.raises(ProjectError, match="stopped after 1,000 bytes"):
        _fetch_2017(server, tmp_path)
    _nothing_complete(tmp_path)
    assert (tmp_path / ".downloads" / "training2017.zip.part").stat().st_size == 1000
    # The next run, with the server healthy again, resumes from the kept part.
    del server.cut_at["training2017.zip"]
    final = _fetch_2017(server, tmp_path)
    assert server.requests_for("training2017.zip")[-1] == "bytes=1000-"
    assert (final / MARKER).is_file()


def test_interrupted_transfer_resumes_with_range(server, zip2017, tmp_path):
    _serve_2017(server, zip2017)
    server.cut_once["training2017.zip"] = 700
    final = _fetch_2017(server, tmp_path)
    assert server.requests_for("training2017.zip") == [None, "bytes=700-"]
    assert len(cinc2017.load_dataset(final)) == 3  # checksum verified, then unpacked whole


def test_server_ignoring_range_starts_over_and_still_verifies(server, zip2017, tmp_path):
    _serve_2017(server, zip2017)
    server.cut_once["training2017.zip"] = 700
    server.ignore_range = True  # the retry asks for bytes=700- and gets the whole file with 200
    final = _fetch_2017(server, tmp_path)
    assert server.requests_for("training2017.zip") == [None, "bytes=700-"]
    assert (final / MARKER).is_file()  # appending the 200 body to the part would have failed the checksum


def test_part_already_complete_gets_416_and_is_used(server, zip2017, tmp_path):
    _serve_2017(server, zip2017)
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / "training2017.zip.part").write_bytes(zip2017)
    final = _fetch_2017(server, tmp_path)
    assert server.requests_for("training2017.zip") == [f"bytes={len(zip2017)}-"]
    assert (final / MARKER).is_file()


def test_busy_answer_is_retried_and_a_missing_file_is_not(server, zip2017, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRY_PAUSE_S", 0.0)
    _serve_2017(server, zip2017)
    server.fail_once["training2017.zip"] = 503
    final = _fetch_2017(server, tmp_path)
    assert server.requests_for("training2017.zip") == [None, None]
    assert (final / MARKER).is_file()
    del server.files["training2017.zip"]
    with pytest.raises(ProjectError, match=r"training2017\.zip: HTTP 404") as caught:
        _fetch_2017(server, tmp_path / "again")
    assert "To get cinc2017 by hand" in str(caught.value)
    assert server.requests_for("training2017.zip")[2:] == [None]  # 404 is final: asked once


def test_unreachable_server_gives_the_manual_steps(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProjectError) as caught:
        fetch("cinc2017", tmp_path, say=lambda _: None, progress=False,
              sources={"cinc2017": f"http://127.0.0.1:{port}/"})
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/SHA256SUMS.txt" in message  # what failed
    assert f"http://127.0.0.1:{port}/training2017.zip" in message  # what to download by hand
    assert "https://physionet.org/content/challenge-2017/1.0.0/" in message
    assert str(tmp_path / "training2017") in message and "REFERENCE.csv" in message and "A00001.hea" in message
    _nothing_complete(tmp_path)


def test_zip_member_with_dotdot_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("training2017/REFERENCE.csv", "A00001,N\n")
        zf.writestr("../evil.txt", "outside")
    _serve_2017(server, buffer.getvalue())
    dest = tmp_path / "data"
    with pytest.raises(ProjectError, match=r"refused member '\.\./evil\.txt'"):
        _fetch_2017(server, dest)
    assert not (tmp_path / "evil.txt").exists()
    _nothing_complete(dest)


def _spec_2020(server: FileServer, name: str, payload: bytes):
    """The cinc2020 entry with one archive and the MD5 of the payload served here (the real MD5s are of
    the real archives); everything else, including the code path, is the production one."""
    archive = Archive(name, "cpsc_2018", hashlib.md5(payload).hexdigest())
    server.files[name] = payload
    return dataclasses.replace(DATASETS["cinc2020"], base_url=server.url, archives=(archive,))


def test_cinc2020_targz_is_md5_verified_into_the_12lead_layout(server, targz2020, tmp_path):
    spec = _spec_2020(server, "PhysioNetChallenge2020_Training_CPSC.tar.gz", targz2020)
    final = fetch("cinc2020", tmp_path, say=lambda _: None, progress=False, sources={"cinc2020": spec})
    assert len(list((final / "cpsc_2018" / "Training_WFDB").glob("*.hea"))) == 3
    assert len(cinc2020.load_dataset(final, warn=False).names) == 3
    assert json.loads((final / MARKER).read_text())["checksums"] == {
        "PhysioNetChallenge2020_Training_CPSC.tar.gz": "md5:" + hashlib.md5(targz2020).hexdigest()}


def test_cinc2020_published_md5_is_checked(server, targz2020, tmp_path):
    # Only the base URL changes: the table's real MD5 does not match the archive made here.
    server.files["PhysioNetChallenge2020_Training_CPSC.tar.gz"] = targz2020
    with pytest.raises(ProjectError, match="7b6b1f1ab1b4c59169c639d379575a87"):
        fetch("cinc2020", tmp_path, say=lambda _: None, progress=False, sources={"cinc2020": server.url})
    _nothing_complete(tmp_path, "cinc2020")


def test_tar_member_with_dotdot_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    spec = _spec_2020(server, "evil.tar.gz", buffer.getvalue())
    dest = tmp_path / "data"
    with pytest.raises(ProjectError, match=r"refused member '\.\./evil'"):
        fetch("cinc2020", dest, say=lambda _: None, progress=False, sources={"cinc2020": spec})
    assert not list(tmp_path.rglob("evil"))
    _nothing_complete(dest, "cinc2020")


def test_tar_links_are_refused(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("cinc2020/A0001.hea")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    spec = _spec_2020(server, "link.tar.gz", buffer.getvalue())
    dest = tmp_path / "data"
    with pytest.raises(ProjectError, match=r"refused member 'cinc2020/A0001\.hea': not a plain file or folder"):
        fetch("cinc2020", dest, say=lambda _: None, progress=False, sources={"cinc2020": spec})
    _nothing_complete(dest, "cinc2020")


def test_a_destination_that_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ProjectError, match="cannot create it"):
        fetch("cinc2017", tmp_path / "file" / "data", say=lambda _: None, progress=False)


def test_cinc2021_single_files_are_checked_against_sha256sums(server, tmp_path):
    records = tmp_path / "records"
    write_synthetic_12lead(records, 2, seed=2)
    lines = []
    for path in sorted(records.iterdir()):
        rel = f"training/georgia/g1/{path.name}"
        server.files[rel] = path.read_bytes()
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()} {rel}")
    lines.append(f"{'1' * 64} LICENSE.txt")  # outside training/: not fetched
    server.files["SHA256SUMS.txt"] = ("\n".join(lines) + "\n").encode()
    dest = tmp_path / "data"
    assert fetch_command("cinc2021", str(dest), base_url=server.url) == 0
    assert len(cinc2020.load_dataset(dest / "cinc2021", warn=False).names) == 2
    assert sorted(p for p, _ in server.requests if p != "SHA256SUMS.txt") == sorted(
        f"training/georgia/g1/{p.name}" for p in records.iterdir())
    assert json.loads((dest / "cinc2021" / MARKER).read_text())["files"] == 4


def test_unknown_dataset_and_foreign_folder_are_refused(tmp_path):
    with pytest.raises(ProjectError, match="cinc2017, cinc2020, cinc2021"):
        fetch("cinc2019", tmp_path)
    (tmp_path / "training2017").mkdir()
    with pytest.raises(ProjectError, match="no .fetched.json"):
        fetch("cinc2017", tmp_path, say=lambda _: None)
