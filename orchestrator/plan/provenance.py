"""Provenance recorded with every fold: code version, packages, machine, time."""

from __future__ import annotations

import datetime
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "ray", "numpy", "scipy", "wfdb")


def git_commit(where: Path | None = None) -> str | None:
    """HEAD of the checkout holding this package, with '+dirty' for local changes."""
    where = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The installed version of each package ("not installed" for one that is not)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict:
    return {
        "git_commit": git_commit(),
        "packages": {"python": platform.python_version(), **package_versions()},
        "host": socket.gethostname(),
        "submitted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
