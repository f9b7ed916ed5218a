"""What the log folder says about a submit: finished folds, changed configurations, job locks.

A fold is finished when its scores.json carries the configuration hash of
the task that would run now. `resume` runs only the other folds, and
refuses when a fold folder was written by another configuration (a changed
model or job file), naming the values that changed. Two submits must not
write one job folder at once: each takes `log/<arch>/<job>/.lock` (host,
pid, start time) and the second is refused with the holder's name; a lock
left by a process that no longer runs on this host is stale and taken over.
Fold and job folders are paths or URIs (orchestrator.logdir.storage): on object
storage the lock is an object, checked before it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

from ecgcore.config.schema import to_plain
from ecgcore.config.task import Task
from ecgcore.errors import ProjectError
from ecgcore.tracks import CHALLENGE_TRACKS
from orchestrator.logdir.reader import LOCK, MODEL, SCORES
from orchestrator.logdir.storage import join, read_json, remove, write_text


def config_hash(task: Task) -> str:
    """Hash of everything that determines a fold's result (not where it is written)."""
    plain = to_plain(task)
    # part_folds are where a stack's parts are read from (its parts and their model configs are in the model)
    for key in ("out_dir", "task_id", "log_en", "log_test_score", "part_folds"):
        plain.pop(key)
    year = {track: year for year, track in CHALLENGE_TRACKS.items()}.get(plain["track"])
    if year is not None and not plain["track_options"]:
        # A challenge track's task is the one a fold of before tracks recorded with its year: same hash, so
        # `submit --resume` keeps the folds those runs finished.
        del plain["track"], plain["track_options"]
        plain["challenge"] = year
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


def finished(task: Task) -> bool:
    """Whether the task's fold folder holds the result of exactly this configuration."""
    return _holds_result(task, read_json(task.out_dir, SCORES))


def _holds_result(task: Task, scores: dict | None) -> bool:
    stored = (scores or {}).get("provenance", {}).get("config_hash")
    return stored is not None and stored == config_hash(task)


def check_unchanged(task: Task) -> None:
    """Refuse to resume into a fold folder written by another model or job configuration."""
    saved = read_json(task.out_dir, MODEL)
    if saved is None:
        return
    changes = _differences(saved, to_plain(task.model), "$")
    scores = read_json(task.out_dir, SCORES)  # read once: on object storage each read is a request
    if not changes and scores is not None and not _holds_result(task, scores):
        changes = ["the job's settings (split, data, epochs, track or kind)"]
    if changes:
        raise ProjectError(f"{task.task_id}: the model file {task.model_file!r} changed since this fold ran "
                           f"({'; '.join(changes[:5])}); resume would mix two configurations. Submit again "
                           "(without --resume) to start over, or restore the file")


def _differences(old, new, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{path}.{key}")
        return out
    return [] if old == new else [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


class JobLocks:
    """Locks on every job folder of a submit, released together; a context manager."""

    def __init__(self, job_dirs: list[str], job_file: str):
        self.job_dirs, self.job_file, self.held = sorted(set(job_dirs)), job_file, []

    def __enter__(self) -> JobLocks:
        try:
            for job_dir in self.job_dirs:
                self._take(job_dir)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _take(self, job_dir: str) -> None:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "job_file": self.job_file}
        for _ in range(2):
            try:
                write_text(job_dir, LOCK, json.dumps(me), exclusive=True)
                self.held.append(job_dir)
                return
            except FileExistsError:
                holder = read_json(job_dir, LOCK)
                if holder and holder.get("host") == me["host"] and not process_alive(int(holder.get("pid", -1))):
                    remove(job_dir, LOCK)  # stale: its process is gone
                    continue
                raise ProjectError(f"{job_dir} is being written by another submit: {describe(holder)}. "
                                   f"Wait for it, or remove {join(job_dir, LOCK)} if that process is gone") from None
        raise ProjectError(f"{join(job_dir, LOCK)}: could not take the lock")

    def release(self) -> None:
        for job_dir in self.held:
            holder = read_json(job_dir, LOCK)
            if holder and holder.get("pid") == os.getpid():
                remove(job_dir, LOCK)
        self.held = []


def describe(holder: dict | None) -> str:
    if not holder:
        return "an unreadable lock"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since} ({holder.get('job_file')})"
