"""Regenerate the documentation's pictures (docs/img/*.png) the way a user makes them: through the CLI.

    python scripts/docs_images.py --log-dir LOG [--out-dir docs/img]

LOG is a log folder holding the full-set jobs of docs/benchmarks.md (its second full-set run: CinC 2017,
8,528 records, 5-fold CV on split_5_6_14_holdout), on the development VM
/work/bench/benchmarks/results/full3/log. LOG is only read: the fold files the commands need are copied
into a temporary folder first (not the model files, TensorBoard events or Tune's state), because
`summarize` writes summary.json into the log folder it reads. From that copy:

- report.png: the top of the HTML report (1000 x 1400) of FeatureGBM/cinc2017_gbm, SEResNet18/SEResNet_cpu
  and Stack/stack_gbm_se (the stack of those two): `report JOB JOB JOB --out report.html --screenshot PNG`,
  rendered by headless Chromium (orchestrator/report/browser.py, the path of the test suite's browser test);
- learning-curves.png: SEResNet_cpu's learning curves, from `summarize SEResNet18 --plot --out DIR`;
- confusion.png: stack_gbm_se's summed test confusion matrix, from `summarize Stack --plot --out DIR`.

And from a run started for the purpose:

- dashboard.png: the Ray dashboard's Actors page (1400 x 560) while a run trains: `data synth` (300
  records), `submit jobs/demo.json --data SYNTH --log-dir TMP` in the background, and once a trial has
  validated, the page captured by headless Chromium carrying the token of ~/.ray/auth_token as the
  dashboard's login cookie (token authentication stays on; browser.screenshot_url); then the submit is
  stopped with SIGINT, as Ctrl+C would, and the script checks that no process of its local Ray is left.

Nothing is drawn by hand. 84 s and 116 s in two runs on the 2-core development VM (the second beside
other work: the report 18 s, the two summarize 16 s, the dashboard 82 s, of which the submit ran 49 s).
Needs Linux (/proc) and Chromium (Debian's `chromium`, or $CHROMIUM). Each picture is written to
--out-dir (default docs/img) and its size printed; look at the new file beside the old one before
committing it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT_JOBS = ["FeatureGBM/cinc2017_gbm", "SEResNet18/SEResNet_cpu", "Stack/stack_gbm_se"]
# picture -> (the architecture `summarize --plot` is run on, the PNG of it that becomes the picture)
PLOTS = {"learning-curves.png": ("SEResNet18", "SEResNet_cpu_curves.png"),
         "confusion.png": ("Stack", "stack_gbm_se_confusion.png")}
PICTURES = ("report.png", *PLOTS, "dashboard.png")
# What the report and summarize read: not the models, TensorBoard events, Tune's state or the data caches.
NOT_READ = shutil.ignore_patterns(".tune", ".cache", "*.pt", "*.joblib", "events.out.tfevents.*")
DASHBOARD_LINE = re.compile(r"Ray dashboard: (http://\S+)")
TOKEN_COOKIE = "ray-authentication-token"  # ray/_private/authentication/authentication_constants.py


def cli(*argv: str, cwd: Path = ROOT) -> None:
    """One orchestrator command line as a fresh process; stops on failure."""
    cmd = [sys.executable, "-m", "orchestrator", *argv]
    print(f"$ (cd {cwd}; python {' '.join(cmd[1:])})", flush=True)
    if subprocess.run(cmd, cwd=cwd).returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[1:])}")


def report_picture(work: Path, png: Path) -> None:
    # Run from the work folder with a relative --log-dir, so the page says "under log" as a user's does.
    cli("report", *REPORT_JOBS, "--log-dir", "log", "--out", "report.html", "--screenshot", str(png), cwd=work)


def plot_pictures(work: Path, out_dir: Path) -> None:
    for name, (architecture, made) in PLOTS.items():
        cli("summarize", architecture, "--log-dir", "log", "--plot", "--out", "plots", cwd=work)
        shutil.copyfile(work / "plots" / made, out_dir / name)


def dashboard_picture(work: Path, png: Path) -> None:
    from orchestrator.report.browser import screenshot_url

    cli("data", "synth", "--out", str(work / "synth"), "--records", "300", "--seed", "0")
    output = work / "submit.out"
    submit = start_submit(work / "synth", work / "demo-log", output)
    try:
        url = wait_for(submit, output, DASHBOARD_LINE, 180).group(1)
        # Submit prints a [valid] line once a trial has validated: by then the trials are actors on the page.
        wait_for(submit, output, re.compile(r"^\[valid\] ", re.MULTILINE), 600)
        screenshot_url(f"{url}/#/actors", png, ready_text="ALIVE", cookies={TOKEN_COOKIE: ray_token()},
                       width=1400, height=560)
    finally:
        stop_submit(submit, output)


def start_submit(data: Path, log_dir: Path, output: Path) -> subprocess.Popen:
    """`submit jobs/demo.json` in the background, in a session of its own (its local Ray is all in there)."""
    cmd = [sys.executable, "-m", "orchestrator", "submit", "jobs/demo.json", "--data", str(data),
           "--log-dir", str(log_dir)]
    print(f"$ python {' '.join(cmd[1:])} > {output} &", flush=True)
    # Unbuffered, so the dashboard's URL reaches the file when it is printed, not when the run ends.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    with open(output, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(proc: subprocess.Popen, output: Path, pattern: re.Pattern, timeout: float) -> re.Match:
    """The first match of `pattern` in the running command's output; exits if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(output.read_text(errors="replace"))
        if match:
            return match
        if proc.poll() is not None:
            sys.exit(f"submit ended (exit {proc.returncode}) before printing {pattern.pattern!r}; see {output}")
        time.sleep(1)
    sys.exit(f"submit printed no {pattern.pattern!r} in {timeout:g} s; see {output}")


def ray_token() -> str:
    """The token Ray's clients send, found where Ray looks: $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return (token or path.read_text()).strip()


def stop_submit(submit: subprocess.Popen, output: Path) -> None:
    """SIGINT (Ctrl+C) to the submit; then no process of its session may be left: its local Ray stops with it.

    Not `ray stop`: that stops every Ray on the machine, other users' and test runs' too.
    """
    if submit.poll() is None:
        submit.send_signal(signal.SIGINT)
        try:
            submit.wait(timeout=180)
        except subprocess.TimeoutExpired:
            print("submit did not stop within 180 s of SIGINT: SIGTERM", flush=True)
            submit.terminate()
            submit.wait(timeout=60)
    lines = output.read_text(errors="replace").strip().splitlines()
    print(f"submit stopped (exit {submit.returncode}): {lines[-1] if lines else 'no output'}", flush=True)
    left = session_processes(submit.pid)
    for _ in range(30):  # Ray's last processes exit a moment after the driver
        if not left:
            return
        time.sleep(1)
        left = session_processes(submit.pid)
    for pid in left:  # only the submit's own session: never another user's Ray
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    sys.exit(f"processes of the submit's Ray were left after it stopped and were sent SIGTERM: {left}")


def session_processes(session: int) -> list[int]:
    """The live processes of session `session` (from /proc: a process keeps its session when reparented)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, _ppid, _pgrp, sid = stat.read_text().rsplit(")", 1)[1].split()[:4]
            if int(sid) == session and state != "Z":
                pids.append(int(stat.parent.name))
    return pids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log-dir", required=True, type=Path,
                   help=f"the log folder holding {', '.join(REPORT_JOBS)} (only read)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    args = p.parse_args(argv)
    log_dir, out_dir = args.log_dir.resolve(), args.out_dir.resolve()
    missing = [job for job in REPORT_JOBS if not (log_dir / job).is_dir()]
    if missing:
        sys.exit(f"{log_dir} has no {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="docs-images-") as tmp:
        work = Path(tmp)
        shutil.copytree(log_dir, work / "log", ignore=NOT_READ)
        report_picture(work, out_dir / "report.png")
        print(f"[{time.monotonic() - started:.0f} s]", flush=True)
        plot_pictures(work, out_dir)
        print(f"[{time.monotonic() - started:.0f} s]", flush=True)
        dashboard_picture(work, out_dir / "dashboard.png")
    for name in PICTURES:
        print(f"{out_dir / name}: {(out_dir / name).stat().st_size / 1024:.0f} KiB")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
