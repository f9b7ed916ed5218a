"""Regenerate the documentation's pictures (docs/img/*.png) the way a user makes them: through the CLI.

    python scripts/docs_images.py --log-dir LOG [--submit --data ../shared/ecg-samples/cinc2017]
                                  [--out-dir docs/img]

docs/img/report.png is the top of the HTML report of the repeated cross-validation of the two
shipped small models (jobs/small_cv5_r3.json: CNN_small and CRNN_small on split_5_6_14_r3, 30
trials; 1,487 s on the 2-core development VM), rendered by headless Chromium:

    python -m orchestrator report CNN CRNN --log-dir LOG --out LOG/report.html --screenshot docs/img/report.png

which is `report --screenshot` (orchestrator/report/browser.py), the same path as the test suite's
browser test; nothing is drawn by hand. With --submit the script first runs that job file into LOG
(`submit jobs/small_cv5_r3.json --data DATA --log-dir LOG --quiet`); without it, LOG must already
hold those jobs' folds. Needs Chromium (Debian's `chromium`, or $CHROMIUM). Each picture is
written to --out-dir (default docs/img) and its size printed; compare the new file with the old
one before committing it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOB_FILE = "jobs/small_cv5_r3.json"
# picture -> the report's targets (architectures: every job of each under the log folder)
PICTURES = {"report.png": ["CNN", "CRNN"]}


def cli(*argv: str) -> None:
    """One orchestrator command line as a fresh process, from the project folder; stops on failure."""
    cmd = [sys.executable, "-m", "orchestrator", *argv]
    print("$ python", " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[1:])}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log-dir", required=True, type=Path, help="the log folder holding (or to hold) the jobs")
    p.add_argument("--submit", action="store_true", help=f"first run {JOB_FILE} into --log-dir")
    p.add_argument("--data", default="../shared/ecg-samples/cinc2017", help="the dataset for --submit")
    p.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    args = p.parse_args(argv)
    log_dir, out_dir = args.log_dir.resolve(), args.out_dir.resolve()
    if args.submit:
        cli("submit", JOB_FILE, "--data", args.data, "--log-dir", str(log_dir), "--quiet")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, targets in PICTURES.items():
        png = out_dir / name
        cli("report", *targets, "--log-dir", str(log_dir), "--out", str(log_dir / f"{png.stem}.html"),
            "--screenshot", str(png))
        print(f"{png}: {png.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
