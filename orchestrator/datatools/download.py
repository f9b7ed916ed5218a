"""Resumable, verified downloads and safe unpacking, for `data fetch` (orchestrator.datatools.fetch).

download() fetches a URL into `<file>.part` and resumes it with HTTP Range:
after a dropped connection in the same call, and from an earlier run's part.
A server that answers 200 instead of 206 means starting over; 416 means the
part is already whole, or stale. verify() streams the file through SHA256 or
MD5 and deletes it on a mismatch. unpack() extracts zip and tar archives but
refuses members with absolute paths or `..`. Bar is the progress line shown on
a terminal. Standard library only: urllib with a timeout on every request.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from ecgcore.errors import ProjectError

TIMEOUT_S = 60  # per blocking socket operation, not per file: a slow but moving transfer is fine
CHUNK = 1 << 20
ATTEMPTS = 5  # requests per file, as long as each one gets further than the one before
RETRY_PAUSE_S = 5.0  # times the attempt number, after an answer that says "busy, come back later"
_BUSY = {429, 500, 502, 503, 504}  # rate limits and overloaded servers, which physionet.org can answer
USER_AGENT = "ecg-orchestrator-data-fetch (python urllib)"


class TransferFailed(Exception):
    """A file that could not be fetched; the caller adds the manual steps and raises a ProjectError."""


def why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(getattr(exc, "reason", None) or exc or type(exc).__name__)


def get_text(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:  # URLError and HTTPError are OSErrors
        raise TransferFailed(f"{url}: {why(exc)}") from None


def download(url: str, target: Path, progress: bool) -> None:
    """Fetch url into target by way of target.part, resuming the part from an earlier try or run."""
    part = target.with_name(target.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        outcome = _transfer(url, part, progress)
        if outcome == "done":
            part.replace(target)
            return
        if outcome == "stuck":
            break  # this request added nothing: another one now will not either
        if outcome == "busy":
            time.sleep(RETRY_PAUSE_S * attempt)
    why_not = "the server kept answering busy (HTTP 429/5xx)" if outcome == "busy" else "the transfer stopped"
    raise TransferFailed(f"{url}: {why_not} after {_size(part):,} bytes ({part.name} is kept, so running the "
                         f"command again resumes it)")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _transfer(url: str, part: Path, progress: bool) -> str:
    """One request appending to part: 'done', 'again' (got further, or must start over), 'busy' or 'stuck'."""
    have = _size(part)
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return _unsatisfiable(exc, part, have)
        if exc.code in _BUSY:
            return "busy"
        raise TransferFailed(f"{url}: {why(exc)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransferFailed(f"{url}: {why(exc)}") from None
    with response:
        start, total = _span(response, have)
        if start is None:  # a range other than the one asked for: the part cannot be trusted
            part.unlink()
            return "again"
        got = _copy(response, part, start, total, progress)
    if total is not None and _size(part) < total:
        return "again" if got else "stuck"
    return "done"  # without a length the end of the stream is the end; the checksum catches the rest


def _span(response: http.client.HTTPResponse, have: int) -> tuple[int | None, int | None]:
    """(offset the body starts at, full file size if known)."""
    length = response.headers.get("Content-Length")
    if response.status != 206:  # 200: the whole file, whether or not a range was asked for
        return 0, int(length) if length and length.isdigit() else None
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match or int(match.group(1)) != have:
        return None, None
    return have, int(match.group(2)) if match.group(2).isdigit() else None


def _unsatisfiable(exc: urllib.error.HTTPError, part: Path, have: int) -> str:
    # 416: nothing at or past our offset. The part is the whole file, or the file changed: start over.
    total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
    if total.isdigit() and int(total) == have:
        return "done"
    part.unlink()
    return "again"


def _copy(response: http.client.HTTPResponse, part: Path, start: int, total: int | None, progress: bool) -> int:
    """Append the body to part (or rewrite part when start is 0); the bytes that arrived."""
    bar = Bar(part.name.removesuffix(".part"), total, "MB", progress, start)
    got = 0
    with open(part, "ab" if start else "wb") as out:
        try:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                bar.update(start + got)
        except (OSError, http.client.HTTPException):
            pass  # a dropped connection: what arrived is kept, and the next request resumes after it
        finally:
            bar.close()
    return got


def digest(path: Path, algo: str) -> str:
    with open(path, "rb") as fh:  # file_digest streams: a multi-GB archive is never in memory at once
        return hashlib.file_digest(fh, lambda: hashlib.new(algo, usedforsecurity=False)).hexdigest()


def verify(path: Path, algo: str, expected: str, source: str) -> None:
    actual = digest(path, algo)
    if actual != expected:
        path.unlink()  # never keep a file that would be unpacked by the next run as if it were good
        raise ProjectError(f"{path.name}: {algo} checksum mismatch: expected {expected} (from {source}), "
                           f"got {actual}. The file was deleted; run the command again to download it anew.")


def safe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return bool(name) and not path.is_absolute() and ".." not in path.parts and not re.match(r"[A-Za-z]:", name)


def _resource_fork(name: str) -> bool:
    # macOS archivers add ._<name> files; a ._A0001.hea would look like a record to the readers.
    return "__MACOSX" in PurePosixPath(name).parts or PurePosixPath(name).name.startswith("._")


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or a tar(.gz) into `into`, refusing any member that would land outside it."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = [n for n in zf.namelist() if not safe_member(n)]
                if bad:
                    raise ProjectError(f"{archive.name}: refused member {bad[0]!r}: an absolute path or '..' "
                                       f"would write outside {into}")
                zf.extractall(into, [n for n in zf.namelist() if not _resource_fork(n)])
        else:
            with tarfile.open(archive, "r:*") as tar:
                links = [m.name for m in tar.getmembers() if not (m.isfile() or m.isdir())]
                if links:  # a dataset is files and folders; links are how older "data" filters were bypassed
                    raise ProjectError(f"{archive.name}: refused member {links[0]!r}: not a plain file or folder")
                # "data" rules refuse absolute paths and '..' as well.
                tar.extractall(into, filter=lambda m, d: None if _resource_fork(m.name) else tarfile.data_filter(m, d))
    except tarfile.FilterError as exc:
        raise ProjectError(f"{archive.name}: refused member {exc.tarinfo.name!r}: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ProjectError(f"{archive.name}: cannot be unpacked: {exc}") from None


class Bar:
    """A `\\r` status line on a terminal (done / total, rate); nothing when off or not a terminal."""

    def __init__(self, label: str, total: float | None, unit: str, enabled: bool, start: float = 0) -> None:
        self.label, self.total, self.unit, self.done, self.base = label, total, unit, start, start
        self.enabled = enabled and sys.stderr.isatty()
        self.began = self.shown = time.monotonic()
        self.scale, self.fmt = (1e6, "{:.1f}") if unit == "MB" else (1, "{:.0f}")

    def update(self, done: float, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.2 and not force):
            return
        self.shown = now
        rate = (done - self.base) / self.scale / max(now - self.began, 1e-6)  # this session's speed only
        total = f" / {self.fmt.format(self.total / self.scale)}" if self.total else ""
        sys.stderr.write(f"\r  {self.label}: {self.fmt.format(done / self.scale)}{total} {self.unit}, "
                         f"{rate:.1f} {self.unit}/s   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(self.done, force=True)
            sys.stderr.write("\n")
