"""`submit --address http://head:8265`: the same submit, run as a Ray job on a cluster (Ray Jobs API).

The job files are checked here first, so a typo fails on this machine and
nothing is sent. Then the project folder (code, jobs/, models/; not log/,
data/ or .venv/) is uploaded as the job's working directory, and the job
runs `python -m orchestrator submit ... --address auto` on the head node,
which joins the cluster it runs in. Its output is streamed here and the exit
status is the job's. Dataset, log and storage paths are passed as absolute
paths: they are paths on the cluster's nodes (shared storage), not here.

The dashboard's token authentication stays on: Ray's client sends the token
of ~/.ray/auth_token (or RAY_AUTH_TOKEN) with every request.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from ecgcore.errors import ProjectError

# Not uploaded with the code: results, datasets, environments, caches.
EXCLUDES = ["log", "data", ".venv", ".git", "**/__pycache__", "benchmarks/results", "*.egg-info", ".pytest_cache",
            ".ruff_cache"]


def is_jobs_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def remote_argv(opts, root: Path) -> list[str]:
    """The submit command the cluster runs: project files relative to the upload, other paths absolute."""
    argv = ["submit", _inside(opts.job_file, root, "job file"), "--address", "auto",
            "--log-dir", str(Path(opts.log_dir).resolve())]
    if opts.models_dir:
        argv += ["--models-dir", _inside(opts.models_dir, root, "models folder")]
    o = opts.overrides
    if o.data:
        argv += ["--data", str(Path(o.data).resolve())]
    for flag, value in (("--max-epochs", o.max_epochs), ("--cpus-per-task", o.cpus_per_task),
                        ("--gpus-per-task", o.gpus_per_task), ("--time-limit", o.time_limit_s),
                        ("--max-concurrent", opts.max_concurrent), ("--storage-path", opts.storage_path)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + [flag for flag, on in (("--resume", opts.resume), ("--quiet", opts.quiet)) if on]


def _inside(path: str, root: Path, what: str) -> str:
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ProjectError(f"{what} {path} is outside the project folder {root}, which is what the Ray job "
                           "uploads: move it into the project (e.g. jobs/ or models/)")
    return resolved.relative_to(root.resolve()).as_posix()


def submit_as_ray_job(opts, root: Path, say: Callable[[str], None] = print) -> int:
    """Submit, stream the job's output until it ends, and return 0 if it succeeded, 1 if not."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    argv = remote_argv(opts, root)
    try:
        client = JobSubmissionClient(opts.address)
        job_id = _submit(client, shlex.join(["python", "-m", "orchestrator", *argv]), root)
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
    status = client.get_job_status(job_id)
    while not status.is_terminal():  # the log stream can close a moment before the status is final
        time.sleep(0.5)
        status = client.get_job_status(job_id)
    say(f"Ray job {job_id}: {status}")
    return 0 if status == JobStatus.SUCCEEDED else 1


def _submit(client, entrypoint: str, root: Path, tries: int = 15) -> str:
    """submit_job, again while a freshly started head says its job agent is not up yet ("try again later")."""
    for attempt in range(tries):
        try:
            return client.submit_job(entrypoint=entrypoint,
                                     runtime_env={"working_dir": str(root), "excludes": EXCLUDES})
        except RuntimeError as exc:
            if "try again later" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


async def _follow(client, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        print(chunk, end="", flush=True)
