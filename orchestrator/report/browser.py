"""Find and drive headless Chromium: a PNG screenshot or the rendered DOM of a local HTML file, or a web page.

Used by the report tests (does the page really render, do its images decode),
by `report --screenshot` and by scripts/docs_images.py. One Chromium process
per call. A local file is run from the command line (no DevTools protocol, no
Python browser package):

  chromium --headless --no-sandbox --disable-gpu ... --screenshot=OUT.png file:///...report.html
  chromium --headless --no-sandbox --disable-gpu ... --dump-dom file:///...report.html

Plain `--headless` is the new headless mode from Chromium 112 on (the old one
was removed in 132; `--headless=new` means the same) and the old mode before,
and both have --screenshot and --dump-dom, so the one spelling works everywhere.

screenshot_url is for a page behind a login cookie (the Ray dashboard with its
token authentication on, docs/guide/watching.md): Chromium has no command-line
flag to set a cookie or a request header, so that one call speaks Chromium's
DevTools protocol (JSON messages ended by a NUL byte) over --remote-debugging-pipe,
file descriptors 3 and 4: no debugging port is opened, and the standard library
is enough. It sets the cookies, opens the page, waits until the page's text shows
a given string (a page that never gets there fails instead of being captured)
and saves the visible part.

Each call gets a fresh temporary profile (--user-data-dir): concurrent test
workers must not share one, and Chromium refuses a profile another process holds.
A failure (non-zero exit, time-out, no output) is a ProjectError carrying the
tail of Chromium's stderr.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
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
)
# A local file: let the page finish loading (fonts, data URIs, load handlers) before the capture.
FILE_FLAGS = ("--virtual-time-budget=5000",)


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


def _chromium() -> str:
    chromium = find_chromium()
    if chromium is None:
        raise ProjectError(f"no Chromium found (set $CHROMIUM or install one of: {', '.join(NAMES)})")
    return chromium


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_TAIL:]) or "(no stderr)"


def _run(flags: list[str], html_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run Chromium on one local file with a throw-away profile; ProjectError unless it exits 0."""
    chromium = _chromium()
    if not html_path.is_file():
        raise ProjectError(f"{html_path}: no such file to open in Chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *BASE_FLAGS, *FILE_FLAGS, f"--user-data-dir={profile}", *flags, html_path.resolve().as_uri()]
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


class _DevTools:
    """One headless Chromium driven over --remote-debugging-pipe: send a command, read until its answer."""

    def __init__(self, profile: str, timeout: float):
        self.deadline = time.monotonic() + timeout
        self.stderr_path = Path(profile) / "stderr.txt"  # a file, not a pipe nobody reads while Chromium logs
        to_chrome, from_chrome = os.pipe(), os.pipe()

        def child_fds() -> None:
            # Chromium reads commands on fd 3 and writes answers on fd 4. Copies above 10 first, so that a
            # pipe end that is itself fd 3 or 4 is not overwritten before it is moved (the copies close on exec).
            reads = fcntl.fcntl(to_chrome[0], fcntl.F_DUPFD_CLOEXEC, 10)
            writes = fcntl.fcntl(from_chrome[1], fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        cmd = [_chromium(), *BASE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        with open(self.stderr_path, "w") as stderr:
            try:
                # close_fds=False keeps fds 3 and 4 (made in child_fds); Python's own fds are close-on-exec.
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                             preexec_fn=child_fds, close_fds=False, start_new_session=True)
            except OSError as exc:
                os.close(to_chrome[1])
                os.close(from_chrome[0])
                raise ProjectError(f"cannot run Chromium {cmd[0]}: {exc}") from exc
            finally:
                os.close(to_chrome[0])
                os.close(from_chrome[1])
        self.out, self.inp = to_chrome[1], from_chrome[0]
        self.buffer, self.last_id = bytearray(), 0

    def fail(self, what: str) -> ProjectError:
        return ProjectError(f"Chromium (DevTools) {what}:\n{_tail(self.stderr_path.read_text(errors='replace'))}")

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command (to the page of `session`, else to the browser) and return its result."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.out, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise self.fail(f"exited (code {self.proc.wait()})") from None
        while True:  # events and earlier answers arrive in between: skip them
            answer = json.loads(self._message())
            if answer.get("id") == self.last_id:
                if "error" in answer:
                    raise self.fail(f"{method}: {answer['error'].get('message', answer['error'])}")
                return answer.get("result", {})

    def _message(self) -> bytes:
        while (end := self.buffer.find(b"\0")) < 0:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise self.fail("timed out")
            chunk = os.read(self.inp, 1 << 16)
            if not chunk:
                raise self.fail(f"exited (code {self.proc.wait()})")
            self.buffer += chunk  # a bytearray, grown in place: a screenshot's answer is megabytes
        message = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.out)  # Chromium exits when its command pipe closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.inp)


def screenshot_url(url: str, png_path: Path, ready_text: str, cookies: dict[str, str] | None = None,
                   width: int = 1400, height: int = 900, timeout: float = 90) -> None:
    """Open `url` with `cookies` set for it, wait until the page's text contains `ready_text`, save the view.

    HttpOnly cookies, as a server sets them at login. A page that does not show `ready_text` within
    `timeout` seconds (a login form, an error page) is a ProjectError quoting the start of its text.
    """
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        tools = _DevTools(profile, timeout)
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            page = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            tools.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, page)
            for name, value in (cookies or {}).items():
                tools.call("Network.setCookie", {"name": name, "value": value, "url": url, "httpOnly": True}, page)
            tools.call("Page.navigate", {"url": url}, page)
            _wait_for_text(tools, page, ready_text)
            data = tools.call("Page.captureScreenshot", {"format": "png"}, page)["data"]
        finally:
            tools.close()
    png_path.write_bytes(base64.b64decode(data))


def _wait_for_text(tools: _DevTools, page: str, text: str) -> None:
    """Poll the page's visible text until it contains `text`; then a moment for the layout to settle."""
    shown = ""
    while time.monotonic() < tools.deadline - 2:
        result = tools.call("Runtime.evaluate", {"expression": "document.body ? document.body.innerText : ''",
                                                 "returnByValue": True}, page)
        shown = str(result.get("result", {}).get("value", ""))
        if text in shown:
            time.sleep(1)  # a script-built page draws its table a frame or two after the text is there
            return
        time.sleep(0.5)
    raise ProjectError(f"the page never showed {text!r}; it shows: {' '.join(shown.split())[:300]!r}")
