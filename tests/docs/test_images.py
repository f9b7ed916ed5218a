"""The documentation's pictures (docs/img/*.png) are the ones scripts/docs_images.py makes, and are used.

- Every PNG under docs/img is one the script writes (its PICTURES), and every one it writes is there:
  a picture added by hand, or one the script no longer makes, fails.
- Every image that README.md or a docs page shows from docs/img is one of those, and each of them is
  shown somewhere.
- The script's --help runs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
SCRIPT = ROOT / "scripts" / "docs_images.py"
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+\.png)>?")


def _pictures() -> set[str]:
    spec = importlib.util.spec_from_file_location("docs_images", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.PICTURES)


def _shown() -> dict[str, list[str]]:
    """docs/img file name -> the pages that show it."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    shown: dict[str, list[str]] = {}
    for page in pages:
        for link in IMAGE.findall(page.read_text(encoding="utf-8")):
            target = Path(os.path.normpath(page.parent / link))
            if target.parent == IMG:
                shown.setdefault(target.name, []).append(page.relative_to(ROOT).as_posix())
    return shown


def test_every_picture_in_docs_img_is_made_by_the_script():
    made, present = _pictures(), {p.name for p in IMG.glob("*.png")}
    assert present == made, (f"docs/img has {sorted(present - made)} that scripts/docs_images.py does not make; "
                             f"the script makes {sorted(made - present)} that are not in docs/img")


def test_every_picture_is_shown_and_every_shown_picture_is_made():
    made, shown = _pictures(), _shown()
    assert set(shown) <= made, f"pages show pictures the script does not make: {sorted(set(shown) - made)}"
    assert made <= set(shown), f"pictures no page shows: {sorted(made - set(shown))}"


def test_script_help_runs():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--log-dir" in proc.stdout and "--out-dir" in proc.stdout
