"""`submit --address http://head:8265`: the same submit, run as a Ray job on a cluster (Ray Jobs API).

The job files are checked here first, so a typo fails on this machine and
nothing is sent. Then a copy of the project folder (code, jobs/, models/; not
log/, data/ or .venv/) goes up as the job's working directory, with the
machine settings resolved here in one file beside it, and the job runs
`python -m orchestrator submit ... --address auto --settings <that file>` on
the head node, which joins the cluster it runs in. So the cluster run resolves
every value as this machine did (command line > job file > settings >
defaults). Its output is streamed here and the exit status is the job's
driver's. Dataset, log and storage paths are sent as absolute paths: they are
paths on the cluster's nodes (shared storage), not here.

The dashboard's token authentication stays on: Ray's client sends the token
of ~/.ray/auth_token (or RAY_AUTH_TOKEN) with every request.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ecgcore.config.schema import to_plain
from ecgcore.errors import ProjectError

# Not uploaded with the code: results, datasets, environments, caches, this machine's own settings.
EXCLUDED_PATHS = {"log", "data", ".venv", ".git", "build", "dist", "orchestrator.yaml", "benchmarks/results"}
EXCLUDES_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SETTINGS_FILE = "remote-settings.json"  # in the uploaded copy: the settings resolved on this machine


def is_jobs_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def remote_argv(opts, tasks: list, root: Path) -> list[str]:
    """The submit command the cluster runs: project files relative to the upload, other paths absolute."""
    argv = ["submit", _inside(opts.job_file, root, "job file"), "--address", "auto", "--settings", SETTINGS_FILE,
            "--log-dir", _absolute(opts.log_dir)]
    if opts.models_dir:
        argv += ["--models-dir", _inside(opts.models_dir, root, "models folder")]
    o = opts.overrides
    data = _remote_data(o.data, tasks, opts)
    if data:
        argv += ["--data", data]
    for flag, value in (("--max-epochs", o.max_epochs), ("--cpus-per-task", o.cpus_per_task),
                        ("--gpus-per-task", o.gpus_per_task), ("--time-limit", o.time_limit_s),
                        ("--max-concurrent", opts.max_concurrent), ("--mlflow", o.mlflow_tracking_uri),
                        ("--storage-path", _absolute(opts.storage_path))):
        if value is not None:
            argv += [flag, str(value)]
    return argv + [flag for flag, on in (("--resume", opts.resume), ("--quiet", opts.quiet)) if on]


def _remote_data(given: str | None, tasks: list, opts) -> str | None:
    """--data for the cluster: the one dataset folder of every task, absolute; None where there are several
    and each job names an absolute one (a relative one would resolve inside the uploaded copy)."""
    if given:
        return str(Path(given).resolve())
    folders = sorted({t.data_dir for t in tasks})
    if len(folders) == 1:
        return folders[0]
    from orchestrator.config.jobs import load_jobs

    relative = [j.name for j in load_jobs(opts.job_file) if j.config.data and not Path(j.config.data).is_absolute()]
    if relative:
        raise ProjectError(f"{opts.job_file}: the jobs use {len(folders)} dataset folders and job(s) "
                           f"{', '.join(relative)} give a relative one, which on the cluster would resolve inside "
                           "the uploaded copy of the project: give absolute `data` paths, or one --data")
    return None


def _absolute(path: str | None) -> str | None:
    if path is None or "://" in path:
        return path
    return str(Path(path).resolve())


def remote_settings(settings):
    """The settings resolved here, with their paths made absolute for the cluster."""
    return replace(settings, data_root=str(Path(settings.data_root).resolve()),
                   log_root=_absolute(settings.log_root),
                   storage_path=_absolute(settings.storage_path), address=None)


def upload_copy(root: Path, into: Path, settings) -> Path:
    """A copy of the project without results, data and environments, and the resolved settings beside it."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        where = Path(folder).resolve().relative_to(root.resolve())
        return {n for n in names if n in EXCLUDES_ANYWHERE or n.endswith(".egg-info")
                or (where / n).as_posix() in EXCLUDED_PATHS}

    copy = into / "project"
    shutil.copytree(root, copy, ignore=ignore, symlinks=True)
    (copy / SETTINGS_FILE).write_text(json.dumps(to_plain(remote_settings(settings)), indent=2))
    return copy


def _inside(path: str, root: Path, what: str) -> str:
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ProjectError(f"{what} {path} is outside the project folder {root}, which is what the Ray job "
                           "uploads: move it into the project (e.g. jobs/ or models/)")
    return resolved.relative_to(root.resolve()).as_posix()


def submit_as_ray_job(opts, tasks: list, root: Path, say: Callable[[str], None] = print) -> int:
    """Submit, stream the job's output until it ends, and return its driver's exit status."""
    from ray.job_submission import JobSubmissionClient

    argv = remote_argv(opts, tasks, root)
    with tempfile.TemporaryDirectory(prefix="ecg-orchestrator-upload-") as tmp:
        upload = upload_copy(root, Path(tmp), opts.settings)
        try:
            client = JobSubmissionClient(opts.address)
            job_id = _submit(client, shlex.join(["python", "-m", "orchestrator", *argv]), upload)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ProjectError(f"Ray Jobs API at {opts.address}: {exc}") from None
    say(f"submitted Ray job {job_id} to {opts.address}: python -m orchestrator {shlex.join(argv)}")
    say(f"  (from another shell: ray job logs --follow {job_id} --address {opts.address}; "
        f"ray job stop {job_id} --address {opts.address})")
    try:
        asyncio.run(_follow(client, job_id))
    except KeyboardInterrupt:
        say(f"stopped following; the job goes on (ray job stop {job_id} --address {opts.address} ends it)")
        return 130
    return _final_status(client, job_id, say)


def _final_status(client, job_id: str, say) -> int:
    """The driver's exit code (2 for an input error there, as here); 1 for a job that ended without one."""
    info = client.get_job_info(job_id)
    while not info.status.is_terminal():  # the log stream can close a moment before the status is final
        time.sleep(0.5)
        info = client.get_job_info(job_id)
    say(f"Ray job {job_id}: {info.status}")
    if info.driver_exit_code is not None:
        return int(info.driver_exit_code)
    return 0 if info.status == "SUCCEEDED" else 1


def _submit(client, entrypoint: str, upload: Path, tries: int = 15) -> str:
    """submit_job, again while a freshly started head says its job agent is not up yet ("try again later")."""
    for attempt in range(tries):
        try:
            return client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": str(upload)})
        except RuntimeError as exc:
            if "try again later" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


async def _follow(client, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        print(chunk, end="", flush=True)
