"""Find and drive headless Chromium: a PNG screenshot or the rendered DOM of a local HTML file.

Used by the report tests (does the page really render, do its images decode)
and by `report --screenshot`. One Chromium process per call, run from the
command line (no DevTools protocol, no Python browser package):

  chromium --headless --no-sandbox --disable-gpu ... --screenshot=OUT.png file:///...report.html
  chromium --headless --no-sandbox --disable-gpu ... --dump-dom file:///...report.html

Plain `--headless` is the new headless mode from Chromium 112 on (the old one
was removed in 132; `--headless=new` means the same) and the old mode before,
and both have --screenshot and --dump-dom, so the one spelling works everywhere.
Each call gets a fresh temporary profile (--user-data-dir): concurrent test
workers must not share one, and Chromium refuses a profile another process holds.
A failure (non-zero exit, time-out, no output) is a ProjectError carrying the
tail of Chromium's stderr.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ecgcore.errors import ProjectError

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
STDERR_TAIL = 15  # lines: Chromium logs dbus/GPU noise first, the real complaint last

BASE_FLAGS = (
    "--headless",
    "--no-sandbox",  # Chromium refuses to start as root with its sandbox on (CI containers run as root)
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm, too small for the renderer
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--virtual-time-budget=5000",  # let the page finish loading (fonts, data URIs, load handlers) first
)


def find_chromium() -> str | None:
    """$CHROMIUM when set (taken as given, so a wrong value fails loudly), else the first of NAMES on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_TAIL:]) or "(no stderr)"


def _run(flags: list[str], html_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run Chromium on one local file with a throw-away profile; ProjectError unless it exits 0."""
    chromium = find_chromium()
    if chromium is None:
        raise ProjectError(f"no Chromium found (set $CHROMIUM or install one of: {', '.join(NAMES)})")
    if not html_path.is_file():
        raise ProjectError(f"{html_path}: no such file to open in Chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *BASE_FLAGS, f"--user-data-dir={profile}", *flags, html_path.resolve().as_uri()]
        try:
            # Own process group: on a time-out the renderer and zygote children die with the browser.
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProjectError(f"cannot run Chromium {chromium}: {exc}") from exc
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have exited just now
                os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            raise ProjectError(f"Chromium timed out after {timeout:g} s on {html_path}:\n{_tail(stderr)}") from None
    if proc.returncode != 0:
        raise ProjectError(f"Chromium failed (exit {proc.returncode}) on {html_path}:\n{_tail(stderr)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def screenshot(html_path: Path, png_path: Path, width: int = 1000, height: int = 1400, timeout: float = 60) -> None:
    """Render `html_path` in a width x height window and save the visible part as `png_path`."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)  # so a stale file from an earlier run cannot pass for this one
    result = _run([f"--window-size={width},{height}", f"--screenshot={png_path}"], Path(html_path), timeout)
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise ProjectError(f"Chromium wrote no screenshot {png_path} for {html_path}:\n{_tail(result.stderr)}")


def dump_dom(html_path: Path, timeout: float = 60) -> str:
    """The DOM after loading `html_path` (and running its scripts, if any), serialised as HTML."""
    result = _run(["--dump-dom"], Path(html_path), timeout)
    if not result.stdout.strip():
        raise ProjectError(f"Chromium printed no DOM for {html_path}:\n{_tail(result.stderr)}")
    return result.stdout
