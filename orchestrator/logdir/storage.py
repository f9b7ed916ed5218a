"""The log folder's one file-system layer: a local folder, or a URI on any storage pyarrow can write.

A log root (`--log-dir`, the settings' `log_root`) is a local path or a URI: `s3://bucket/prefix`,
`gs://bucket/prefix`, or any URI `pyarrow.fs.FileSystem.from_uri` opens, the layer Ray Tune itself
writes experiments through. Endpoint and credentials come from the standard environment variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`;
`GOOGLE_APPLICATION_CREDENTIALS`), read by pyarrow itself.

Everything else in the orchestrator reads and writes plain local files, so a URI is met here in two
forms, both built on a `Remote` folder (listing, download, upload, delete through pyarrow.fs):
  - `Stage`: the folder a writer works in. A trial's fold folder on a URI is written in a temporary
    local folder and pushed (changed files uploaded, files removed locally deleted there) after every
    validation and at the end; a retried fold pulls it back first. scores.json is pushed last, so a
    fold on object storage is finished exactly when its scores.json is there, as on a disk.
  - `mounted()`: the folder a reader works in. The files of the tree the command reads (the small
    ones; the models too where it loads them) are downloaded to a temporary folder, the command runs
    on it unchanged, and what it wrote there (summary.json, plots, ensemble.json) is uploaded back.
A local path is used as it is by both: nothing is copied and behaviour is what it always was.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ecgcore.errors import ProjectError

# Heavy files a reader that does not load models leaves on the storage: the models, TensorBoard's
# events, Tune's experiment and the driver's data cache.
MODELS = ("*.pt", "*.onnx")
HEAVY = (*MODELS, "events.out.tfevents.*", ".tune/*", ".cache/*", "*/.tune/*", "*/.cache/*")

Manifest = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns) as last synchronised


class StorageError(ProjectError):
    """A log folder on storage that cannot be read or written (no space, no permission, the bucket gone)."""


def is_uri(location) -> bool:
    """Whether a log location is a URI (s3://, gs://, ...) rather than a local path; file:// counts as local."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def local_path(location) -> Path:
    text = str(location)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def join(location: str, *parts: str) -> str:
    """location/part/...: a URI joined by string (pathlib would fold its '//'), a path by pathlib."""
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(local_path(location).joinpath(*parts))


def name_of(location: str) -> str:
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def parent_of(location: str) -> str:
    return str(location).rstrip("/").rsplit("/", 1)[0] if is_uri(location) else str(local_path(location).parent)


def _heavy(rel: str, patterns: tuple[str, ...]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


class Remote:
    """A folder on a pyarrow file system, addressed by its URI; errors name the URI."""

    def __init__(self, uri: str):
        import pyarrow.fs as pafs  # pyarrow comes with Ray; the light commands only import it for a URI

        self.uri = uri.rstrip("/")
        self._pafs = pafs
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
        except (OSError, ValueError) as exc:
            raise StorageError(f"log folder {self.uri}: cannot open it ({_reason(exc)})") from None
        self.root = self.root.rstrip("/")

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def listing(self, skip: tuple[str, ...] = ()) -> Manifest:
        """Every file under the folder (recursively), by relative path; {} when the folder does not exist."""
        selector = self._pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        infos = self._call("list", lambda: self.fs.get_file_info(selector))
        out = {}
        for info in infos:
            if info.type == self._pafs.FileType.File:
                rel = info.path[len(self.root):].lstrip("/")
                if not _heavy(rel, skip):
                    out[rel] = (info.size, info.mtime_ns or 0)
        return out

    def exists(self, rel: str = "") -> bool:
        info = self._call("read", lambda: self.fs.get_file_info(self._path(rel)))
        return info.type != self._pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's content; None when it is absent."""
        try:
            with self.fs.open_input_stream(self._path(rel)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"{join(self.uri, rel)}: cannot read it ({_reason(exc)})") from None

    def write_bytes(self, rel: str, data: bytes) -> None:
        """One object, written whole (on object storage a reader sees the old content or the new one)."""
        def put():
            with self.fs.open_output_stream(self._path(rel)) as out:
                out.write(data)
        self._call("write", put, rel)

    def delete(self, rel: str) -> None:
        def remove():
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self._path(rel))
        self._call("delete", remove, rel)

    def remove_tree(self) -> None:
        """Delete the folder and everything under it; nothing when it is absent."""
        def remove():
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_dir(self.root)
        self._call("delete", remove)

    def download(self, rel: str, target: Path) -> None:
        data = self.read_bytes(rel)
        if data is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def probe(self) -> None:
        """Write and delete a probe object: a log folder that cannot be written is refused before any trial."""
        self.write_bytes(".write-probe", b"")
        self.delete(".write-probe")

    def _call(self, what: str, action: Callable, rel: str = ""):
        try:
            return action()
        except OSError as exc:
            where = join(self.uri, rel) if rel else self.uri
            raise StorageError(f"{where}: cannot {what} ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _local_listing(folder: Path) -> Manifest:
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            out[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


class Stage:
    """A local working copy of a folder on storage, synchronised by push(); for a local path, the path itself.

    pull() downloads the folder (skipping `skip` patterns); push() uploads the files written or changed
    since the last pull/push, with `last` ones (scores.json) after all others, and deletes on the storage
    the files that were removed here. discard() removes the working copy.
    """

    def __init__(self, location: str, prefix: str = "ecg-stage-", folder: Path | None = None):
        """folder: the working copy's place (default: a new temporary folder), for a URI."""
        self.location = str(location)
        self.remote = Remote(self.location) if is_uri(self.location) else None
        if self.remote is None:
            self.dir = local_path(self.location)
        else:
            self.dir = folder or Path(tempfile.mkdtemp(prefix=prefix))
        self.synced: Manifest = {}  # local view after the last sync
        self.known: set[str] = set()  # files on the storage as far as this stage knows
        self.closed = False

    def pull(self, skip: tuple[str, ...] = (), contents: bool = True, owned: bool = False) -> None:
        """Download the folder's files but those matching `skip` (contents=False: none of them).

        push() removes there the files this stage knows of and that are gone locally: those it downloaded, and
        with owned=True (a writer that owns the whole folder: a fold's) every file there, skipped ones included.
        A reader's copy leaves alone what it did not download.
        """
        if self.remote is None:
            return
        remote = self.remote.listing()
        wanted = [rel for rel in remote if contents and not _heavy(rel, skip)]
        for rel in wanted:
            self.remote.download(rel, self.dir / rel)
        self.known |= set(remote) if owned else set(wanted)
        self.synced = _local_listing(self.dir)

    def push(self, last: tuple[str, ...] = ()) -> None:
        if self.remote is None or self.closed:
            return
        now = _local_listing(self.dir)
        changed = sorted((rel for rel, sig in now.items() if self.synced.get(rel) != sig),
                         key=lambda rel: rel.rsplit("/", 1)[-1] in last)
        for rel in changed:
            self.remote.write_bytes(rel, (self.dir / rel).read_bytes())
        for rel in sorted((self.known | set(self.synced)) - set(now)):
            self.remote.delete(rel)
        self.synced, self.known = now, set(now)

    def discard(self) -> None:
        """Remove the working copy; a later push does nothing (it would delete the folder on the storage)."""
        self.closed = True
        if self.remote is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def read_text(location: str, name: str) -> str | None:
    """A file of a folder at a path or URI; None when it is absent."""
    if is_uri(location):
        data = Remote(location).read_bytes(name)
        return None if data is None else data.decode()
    try:
        return (local_path(location) / name).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_json(location: str, name: str) -> dict | None:
    """A JSON file of a folder at a path or URI; None when it is absent or half-written."""
    try:
        text = read_text(location, name)
        return None if text is None else json.loads(text)
    except (OSError, ValueError):
        return None


def write_text(location: str, name: str, text: str, exclusive: bool = False) -> None:
    """Write a file of a folder at a path or URI (the folder made where needed).

    exclusive: FileExistsError when it is there already. On object storage that is a check before the write,
    not one atomic step: two submits started in the same instant could both pass it.
    """
    if is_uri(location):
        remote = Remote(location)
        if exclusive and remote.exists(name):
            raise FileExistsError(join(location, name))
        remote.write_bytes(name, text.encode())
        return
    folder = local_path(location)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "x" if exclusive else "w") as fh:
        fh.write(text)


def write_json(location: str, name: str, content) -> None:
    """A JSON file of a folder at a path or URI, replaced whole (a reader never sees half of it)."""
    if is_uri(location):
        write_text(location, name, json.dumps(content, indent=2) + "\n")
        return
    from orchestrator.logdir.reader import write_json_atomic  # the log's one local atomic writer

    local_path(location).mkdir(parents=True, exist_ok=True)
    write_json_atomic(local_path(location) / name, content)


def remove(location: str, name: str) -> None:
    """Delete a file of a folder at a path or URI; nothing when it is absent."""
    if is_uri(location):
        Remote(location).delete(name)
    else:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (local_path(location) / name).unlink()


def exists(location: str) -> bool:
    """Whether a file or folder is at the path or URI."""
    if is_uri(location):
        parent = Remote(parent_of(location))
        return parent.exists(name_of(location))
    return local_path(location).exists()


def check_writable(location: str) -> None:
    """Refuse a log folder that cannot be created or written, before anything runs, naming it."""
    if is_uri(location):
        Remote(location).probe()
        return
    folder = local_path(location)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"log folder {folder}: cannot create it ({exc.strerror})") from None
    probe = folder / ".write-probe"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"log folder {folder}: not writable ({exc.strerror})") from None


@contextlib.contextmanager
def mounted(location, *, models: bool = False, write_back: bool = False, under: str | None = None) -> Iterator[Path]:
    """A local folder with the tree at location for a reader: the location itself, or for a URI a temporary
    copy of its files (the models only with models=True; only the subfolder `under` where given), whose new,
    changed and removed files go back with write_back=True once the reader is done. The copy is removed
    either way."""
    if not is_uri(location):
        yield local_path(location)
        return
    root = Path(tempfile.mkdtemp(prefix="ecg-mount-"))
    stage = Stage(join(str(location), under) if under else str(location), folder=root / under if under else root)
    try:
        stage.pull(skip=HEAVY if not models else HEAVY[len(MODELS):])
        yield root
        if write_back:
            stage.push()
    finally:
        stage.discard()
        shutil.rmtree(root, ignore_errors=True)


def run_on(location: str, command, *, models: bool = False, write_back: bool = False, under: str | None = None,
           say=print):
    """command(local folder, say) on the folder at location: the location itself, or a mounted copy of a URI's
    files (see mounted); the command's messages and errors name the URI, not the copy."""
    if not is_uri(location):
        return command(location, say)
    with mounted(location, models=models, write_back=write_back, under=under) as local:
        def named(text):
            return text.replace(str(local), location.rstrip("/")) if isinstance(text, str) else text

        try:
            return named(command(str(local), lambda text: say(named(text))))
        except ProjectError as exc:
            exc.args = (named(str(exc)),)
            raise


def run_on_fold_or_job(run: str, command, say=print):
    """run_on with the models, for a fold or a job folder: a fold folder on storage comes with its job folder
    (the model card reads the job's cross-validation scores)."""
    if is_uri(run) and re.fullmatch(r"fold\d+", name_of(run)):
        fold = name_of(run)
        return run_on(parent_of(run), lambda job, tell: command(str(Path(job) / fold), tell), models=True, say=say)
    return run_on(run, command, models=True, say=say)
