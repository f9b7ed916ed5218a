"""`data fetch`: download, verify and unpack the PhysioNet/CinC challenge training sets and PTB-XL.

DATASETS says, per dataset, where its files are, where their checksums are
published and what folder the readers expect. fetch() downloads each file
(resuming `<file>.part` with HTTP Range), checks its SHA256/MD5 against the
published value and unpacks it into `dest/.<folder>.partial`. The folder is
renamed into place, with its marker `.fetched.json`, only when everything is
there: a dataset folder is complete or absent, and a rerun on a complete one
does nothing. Standard library only.

Sources: cinc2017 is training2017.zip of physionet.org challenge-2017 1.0.0,
checked against that folder's SHA256SUMS.txt (read at run time). cinc2020 is
the 2020 Challenge's six tar.gz archives on storage.googleapis.com, whose MD5s
are published only on the Challenge page, so they are copied below. cinc2021
is physionet.org challenge-2021 1.0.3, which publishes single files
(training/<database>/g<n>/<record>.hea/.mat), not archives: each file under
training/ is checked against that release's SHA256SUMS.txt.

ptbxl is PTB-XL 1.0.3's zip from physionet.org/static/published-projects/.
No published SHA256 of the zip itself could be found, and PhysioNet's
publishing code suggests there is none to find (MIT-LCP/physionet-build,
physionet-django/project/projectfiles/local.py): make_checksum_file writes
SHA256SUMS.txt, one SHA256 per file of the release except itself, and
make_zip zips those files and that list under one folder named like the zip,
keeping only the zip's size. So the zip is downloaded (resumed) unchecked,
unpacked into the .partial folder, and every file in it is then checked
against the list published beside the release's files
(physionet.org/files/ptb-xl/1.0.3/SHA256SUMS.txt, read at run time like
cinc2017's): every listed file present with its SHA256, nothing unlisted, and
the zip's copy of the list identical to the published one. Any mismatch
deletes the .partial folder and the zip, so a rerun downloads it anew.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import shutil
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ecgcore.errors import ProjectError
from orchestrator.datatools.download import Bar, TransferFailed, digest, download, get_text, safe_member, unpack, verify

MARKER = ".fetched.json"
WORKERS = 8  # parallel requests for a release of single files; physionet.org throttles each connection
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Archive:
    """One archive: its file name under the dataset's base URL and the sub-folder it unpacks into."""

    name: str
    subdir: str = ""
    md5: str | None = None  # only where the digest is published on a web page, not in a checksum file


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are, how they are checked, and what the readers expect."""

    name: str
    folder: str  # the dataset folder fetch() makes under dest
    base_url: str  # every file name is relative to it; tests and mirrors change only this
    landing: str  # the page to download from by hand
    layout: tuple[str, ...]  # what dest/<folder> holds, for the manual steps
    required: tuple[str, ...]  # glob patterns that must match in the finished folder
    archives: tuple[Archive, ...] = ()
    sums_file: str = ""  # a checksum file under base_url (SHA256SUMS.txt), downloaded and parsed
    digest_page: str = ""  # else: the page the archives' MD5s were copied from
    inner: str = ""  # the folder inside the unpacked archives that becomes dest/<folder>
    file_prefix: str = ""  # a release of single files: every file the checksum file lists below this
    sums_base: str = ""  # the folder sums_file is in, where that is not base_url
    unpacked_sums: bool = False  # no digest of the archives is published: their unpacked files are checked

    @property
    def checksum_source(self) -> str:
        return (self.sums_base or self.base_url) + self.sums_file if self.sums_file else self.digest_page


# The 2020 Challenge page, "Data" section (physionetchallenges.github.io/2020/, now served at
# https://moody-challenge.physionet.org/2020/): archive, MD5 as published there. The 2021 page
# repeats the same six links and MD5s. storage.cloud.google.com links on the page need a Google
# login; storage.googleapis.com is the same bucket for anonymous downloads (the page itself
# links PTB-XL that way).
_PAGE_2020 = "https://moody-challenge.physionet.org/2020/"
_ARCHIVES_2020 = (
    Archive("PhysioNetChallenge2020_Training_CPSC.tar.gz", "cpsc_2018", "7b6b1f1ab1b4c59169c639d379575a87"),
    Archive("PhysioNetChallenge2020_Training_2.tar.gz", "cpsc_2018_extra", "36b409ee2b46aa6f1d2bef99b8451925"),
    Archive("PhysioNetChallenge2020_Training_StPetersburg.tar.gz", "st_petersburg_incart",
            "abcdf9fd1b2f2ca8b1ff158f3b9789b0"),
    Archive("PhysioNetChallenge2020_Training_PTB.tar.gz", "ptb", "349316b6985cd21940210e36af9415ec"),
    Archive("PhysioNetChallenge2020_Training_PTB-XL.tar.gz", "ptb-xl", "7ae20a89ae21fd68626ddb3c6b44fdd4"),
    Archive("PhysioNetChallenge2020_Training_E.tar.gz", "georgia", "4971a0562df4a7e2fd8f58e060927ff2"),
)
_PAIRS = "(one .hea/.mat pair per record, at any depth: the reader searches the whole tree)"
# PhysioNet names a release's zip, and the one folder inside it, after the title and version.
_PTBXL = "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3"

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec(
        name="cinc2017", folder="training2017", inner="training2017",
        base_url="https://physionet.org/files/challenge-2017/1.0.0/",
        landing="https://physionet.org/content/challenge-2017/1.0.0/",
        archives=(Archive("training2017.zip"),), sums_file="SHA256SUMS.txt",
        layout=("REFERENCE.csv   (record,label lines: A00001,N)",
                "A00001.hea, A00001.mat, ... A08528.hea, A08528.mat"),
        required=("REFERENCE.csv", "*.hea", "*.mat")),
    DatasetSpec(
        name="cinc2020", folder="cinc2020",
        base_url="https://storage.googleapis.com/physionet-challenge-2020-12-lead-ecg-public/",
        landing=_PAGE_2020, archives=_ARCHIVES_2020, digest_page=_PAGE_2020,
        layout=("cpsc_2018/Training_WFDB/A0001.hea, A0001.mat, ...",
                "cpsc_2018_extra/, st_petersburg_incart/, ptb/, ptb-xl/, georgia/ alike", _PAIRS),
        required=("**/*.hea", "**/*.mat")),
    DatasetSpec(
        name="cinc2021", folder="cinc2021",
        base_url="https://physionet.org/files/challenge-2021/1.0.3/",
        landing="https://physionet.org/content/challenge-2021/1.0.3/",
        sums_file="SHA256SUMS.txt", file_prefix="training/",
        layout=("chapman_shaoxing/g1/JS00001.hea, JS00001.mat, ...", "cpsc_2018/g1/A0001.hea, A0001.mat, ...",
                "georgia/, ningbo/, ptb/, ptb-xl/, st_petersburg_incart/, cpsc_2018_extra/ alike", _PAIRS),
        required=("**/*.hea", "**/*.mat")),
    DatasetSpec(
        name="ptbxl", folder="ptbxl", inner=_PTBXL,
        base_url="https://physionet.org/static/published-projects/ptb-xl/",
        landing="https://physionet.org/content/ptb-xl/1.0.3/",
        archives=(Archive(f"{_PTBXL}.zip"),), unpacked_sums=True,
        sums_base="https://physionet.org/files/ptb-xl/1.0.3/", sums_file="SHA256SUMS.txt",
        layout=("ptbxl_database.csv, scp_statements.csv, SHA256SUMS.txt, ...",
                "records100/00000/00001_lr.hea, 00001_lr.dat, ...   (100 Hz)",
                "records500/00000/00001_hr.hea, 00001_hr.dat, ...   (500 Hz)"),
        required=("ptbxl_database.csv", "scp_statements.csv", "records100/*/*.hea", "records500/*/*.hea")),
)}


def dataset_spec(dataset: str, sources: Mapping[str, str | DatasetSpec] | None = None) -> DatasetSpec:
    """The table entry, with its base URL replaced (a str) or the whole entry replaced (a DatasetSpec)."""
    if dataset not in DATASETS:
        raise ProjectError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    override = (sources or {}).get(dataset)
    if isinstance(override, DatasetSpec):
        return override
    if override:  # a mirror holds the checksum file, where there is one, beside the archives
        return dataclasses.replace(DATASETS[dataset], base_url=override.rstrip("/") + "/", sums_base="")
    return DATASETS[dataset]


def fetch(dataset: str, dest: Path, say: Callable[[str], None] = print, progress: bool = True,
          sources: Mapping[str, str | DatasetSpec] | None = None) -> Path:
    """Download, verify and unpack `dataset` into dest/<folder>; return that folder."""
    spec = dataset_spec(dataset, sources)
    dest = Path(dest)
    final = dest / spec.folder
    if (final / MARKER).is_file():
        try:
            when = json.loads((final / MARKER).read_text()).get("fetched_at", "?")
        except (OSError, ValueError, AttributeError):
            raise ProjectError(f"{final / MARKER} is unreadable: move {final} away and fetch again") from None
        say(f"{spec.name}: already complete in {final} (fetched {when}); nothing to do")
        return final
    if final.exists():
        raise ProjectError(f"{final} exists but has no {MARKER}, so `data fetch` did not make it (or not "
                           f"completely); move it away and run again, or use it as it is with --data {final}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"--dest {dest}: cannot create it ({exc.strerror})") from None
    staging = dest / f".{spec.folder}.partial"
    try:
        if spec.file_prefix:
            record = _fetch_files(spec, staging, say, progress)
        elif spec.unpacked_sums:
            record = _fetch_unpacked_checked(spec, dest / ".downloads", staging, say, progress)
        else:
            record = _fetch_archives(spec, dest / ".downloads", staging, say, progress)
    except TransferFailed as exc:
        raise ProjectError(f"{spec.name}: download failed: {exc}\n{_manual_steps(spec, dest)}") from None
    _commit(spec, staging, final, record)
    for archive in spec.archives:  # unpacked and committed: the archives are no longer needed
        (dest / ".downloads" / archive.name).unlink()
    if (dest / ".downloads").is_dir() and not any((dest / ".downloads").iterdir()):
        (dest / ".downloads").rmdir()  # unless it still holds another dataset's downloads
    say(f"{spec.name}: ready in {final} ({sum(1 for _ in final.rglob('*.hea')):,} .hea headers)")
    return final


def fetch_command(dataset: str, dest: str, base_url: str | None = None) -> int:
    """`data fetch DATASET [--dest DIR]`: 0 when the dataset is complete; problems raise ProjectError."""
    fetch(dataset, Path(dest), sources={dataset: base_url} if base_url else None)
    return 0


def _fetch_archives(spec: DatasetSpec, downloads: Path, staging: Path, say: Callable[[str], None],
                    progress: bool) -> dict:
    digests = _published_digests(spec)
    _clear_staging(staging, downloads)
    for archive in spec.archives:
        path = _downloaded(spec, archive, downloads, say, progress)
        algo, expected = digests[archive.name]
        verify(path, algo, expected, spec.checksum_source)
        say(f"{spec.name}: {archive.name}: {algo} ok, unpacking")
        unpack(path, staging / archive.subdir)
    return _record(spec, {name: f"{algo}:{value}" for name, (algo, value) in digests.items()})


def _clear_staging(staging: Path, downloads: Path) -> None:
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run; unpacking again is cheap next to downloading
    downloads.mkdir(parents=True, exist_ok=True)


def _downloaded(spec: DatasetSpec, archive: Archive, downloads: Path, say: Callable[[str], None],
                progress: bool) -> Path:
    path = downloads / archive.name
    if not path.is_file():  # else a completed download of an earlier run, checked by the caller like a new one
        say(f"{spec.name}: downloading {spec.base_url}{archive.name}")
        download(spec.base_url + archive.name, path, progress)
    return path


def _published_digests(spec: DatasetSpec) -> dict[str, tuple[str, str]]:
    if not spec.sums_file:
        return {a.name: ("md5", str(a.md5).lower()) for a in spec.archives}
    sums = _parse_sums(get_text(spec.checksum_source))
    missing = [a.name for a in spec.archives if a.name not in sums]
    if missing:
        raise ProjectError(f"{spec.checksum_source} has no checksum for {', '.join(missing)}")
    return {a.name: ("sha256", sums[a.name]) for a in spec.archives}


def _parse_sums(text: str) -> dict[str, str]:
    """`<sha256> <path>` lines; PhysioNet writes one space, sha256sum two, or ` *` for binary mode."""
    sums = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and _HEX64.fullmatch(parts[0]):
            sums[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return sums


def _fetch_files(spec: DatasetSpec, staging: Path, say: Callable[[str], None], progress: bool) -> dict:
    text = get_text(spec.checksum_source)
    files = {p: d for p, d in _parse_sums(text).items() if p.startswith(spec.file_prefix)}
    if not files:
        raise ProjectError(f"{spec.checksum_source} lists no files under {spec.file_prefix}")
    say(f"{spec.name}: {len(files):,} files listed under {spec.base_url}{spec.file_prefix}; "
        f"fetching those not yet verified in {staging}")
    bar = Bar(spec.name, len(files), "files", progress)
    pool = ThreadPoolExecutor(WORKERS)
    try:
        for n, _ in enumerate(pool.map(lambda item: _fetch_one(spec, staging, *item), files.items()), 1):
            bar.update(n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on the first failure, start nothing more
        bar.close()
    sums_digest = hashlib.sha256(text.encode()).hexdigest()
    return _record(spec, {spec.sums_file: f"sha256:{sums_digest}"}, files=len(files))


def _fetch_one(spec: DatasetSpec, staging: Path, rel: str, expected: str) -> None:
    inner = rel.removeprefix(spec.file_prefix)
    if not safe_member(inner):
        raise ProjectError(f"{spec.checksum_source}: refused path {rel!r} (absolute or with '..')")
    target = staging / inner
    if target.is_file() and digest(target, "sha256") == expected:
        return  # verified by an earlier, interrupted run
    target.parent.mkdir(parents=True, exist_ok=True)
    download(spec.base_url + urllib.parse.quote(rel), target, False)
    verify(target, "sha256", expected, spec.checksum_source)


def _fetch_unpacked_checked(spec: DatasetSpec, downloads: Path, staging: Path, say: Callable[[str], None],
                            progress: bool) -> dict:
    """Archives without a published digest: unpack them, then check every file against the release's list."""
    text = get_text(spec.checksum_source)  # before the download: a release without its list is refused early
    listed, list_digest = _parse_sums(text), hashlib.sha256(text.encode()).hexdigest()
    if not listed:
        raise ProjectError(f"{spec.checksum_source} lists no files")
    _clear_staging(staging, downloads)
    paths = [_downloaded(spec, archive, downloads, say, progress) for archive in spec.archives]
    try:
        for archive, path in zip(spec.archives, paths, strict=True):
            say(f"{spec.name}: unpacking {archive.name}, then checking every file against {spec.checksum_source}")
            unpack(path, staging / archive.subdir)
        _check_unpacked(spec, staging / spec.inner, listed, list_digest, progress)
    except ProjectError as exc:
        # The archive is what failed, not the transfer: keeping it would fail the same way on every rerun.
        shutil.rmtree(staging, ignore_errors=True)
        for path in paths:
            path.unlink(missing_ok=True)
        raise ProjectError(f"{exc}\nThe unpacked files and {', '.join(p.name for p in paths)} were deleted; "
                           f"run the command again to download it anew.") from None
    return _record(spec, {spec.sums_file: f"sha256:{list_digest}"}, files=len(listed))


def _check_unpacked(spec: DatasetSpec, root: Path, listed: dict[str, str], list_digest: str, progress: bool) -> None:
    """root holds exactly the listed files with their SHA256s, plus, if the archive packs one, the list itself."""
    if not root.is_dir():
        raise ProjectError(f"{spec.name}: the archive has no folder {spec.inner}/, where the release's files belong")
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    wanted = {**listed, spec.sums_file: list_digest} if spec.sums_file in found else listed
    missing, unlisted = sorted(wanted.keys() - found), sorted(found - wanted.keys())
    if missing or unlisted:
        raise ProjectError(f"{spec.name}: the unpacked files are not the ones {spec.checksum_source} lists: "
                           f"{len(missing)} listed but missing {missing[:3]}, "
                           f"{len(unlisted)} there but not listed {unlisted[:3]}")
    names = sorted(wanted)
    bar = Bar(f"{spec.name} sha256", len(names), "files", progress)
    pool = ThreadPoolExecutor(WORKERS)  # hashlib releases the GIL: the threads hash files side by side
    try:
        hashes = pool.map(lambda rel: digest(root / rel, "sha256"), names)
        for n, (name, actual) in enumerate(zip(names, hashes, strict=True), 1):
            if actual != wanted[name]:
                raise ProjectError(f"{name}: sha256 checksum mismatch: expected {wanted[name]} "
                                   f"(from {spec.checksum_source}), got {actual}")
            bar.update(n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on the first mismatch, hash nothing more
        bar.close()


def _record(spec: DatasetSpec, checksums: dict[str, str], **extra: object) -> dict:
    return {"dataset": spec.name, "fetched_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "source": spec.base_url, "checksum_source": spec.checksum_source, "checksums": checksums, **extra}


def _commit(spec: DatasetSpec, staging: Path, final: Path, record: dict) -> None:
    """Check the layout, write the marker, then rename: the one step that makes the dataset appear."""
    root = staging / spec.inner
    missing = [pattern for pattern in spec.required if not any(root.glob(pattern))]
    if missing:
        shutil.rmtree(staging)
        raise ProjectError(f"{spec.name}: the verified files unpacked, but {root} has nothing matching "
                           f"{', '.join(missing)}: not the layout the readers expect")
    # The marker goes in before the rename, so the folder never exists without it; the rename is
    # atomic on one file system, so a crash leaves either the .partial folder or the whole dataset.
    (root / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    root.rename(final)
    if spec.inner:
        shutil.rmtree(staging)  # whatever the archives held beside the dataset folder


def _manual_steps(spec: DatasetSpec, dest: Path) -> str:
    folder = dest / spec.folder
    check = (f"check them against the checksums at {spec.checksum_source}", [])
    if spec.file_prefix:
        url = spec.base_url + spec.file_prefix
        cut = len([p for p in urllib.parse.urlparse(url).path.split("/") if p])
        get = [f"mkdir -p {folder} && cd {folder} && wget -r -N -c -np -nH --cut-dirs={cut} {url}"]
        steps = [("download", get), check, ("wget keeps the tree as it is on the server", [])]
    else:
        rename = f" && mv {spec.inner} {spec.folder}" if spec.inner != spec.folder else ""
        unpack_step = (f"unpack: cd {dest} && unzip {spec.archives[0].name}{rename}", []) if spec.inner else (
            "unpack each into its own sub-folder:",
            [f"mkdir -p {folder / a.subdir} && tar -xzf {a.name} -C {folder / a.subdir}" for a in spec.archives])
        steps = [("download", [f"{spec.base_url}{a.name}" for a in spec.archives]), check, unpack_step]
        if spec.unpacked_sums:  # no digest of the archive is published: its files are checked once unpacked
            steps[1:] = [unpack_step, (f"check every file against the published list: cd {folder} && "
                                       f"curl -s {spec.checksum_source} | sha256sum -c --quiet", [])]
    lines = [f"To get {spec.name} by hand (see {spec.landing}):"]
    for n, (step, commands) in enumerate(steps, 1):
        lines += [f"  {n}. {step}", *[f"     {command}" for command in commands]]
    return "\n".join([*lines, f"  so that {folder}/ holds:", *[f"       {line}" for line in spec.layout],
                      f"  then pass --data {folder} (a folder made by hand has no {MARKER}; the readers need none)."])
