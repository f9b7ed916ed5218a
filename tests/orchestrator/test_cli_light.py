"""Light commands answer without the heavy libraries: `--help` of every command, `settings`, `status`
and `summarize` (without --plot) must not import torch, Ray or scipy.signal. (`docs reference` renders the
architectures' parameters, declared beside their torch modules: tests/orchestrator/test_reference.py checks
that it imports no Ray.)"""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "ray", "scipy.signal")
PROBE = ("import runpy, sys\n"
         "sys.argv = ['orchestrator', *sys.argv[1:]]\n"
         "try:\n"
         "    runpy.run_module('orchestrator', run_name='__main__')\n"
         "except SystemExit:\n"
         "    pass\n"
         f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
COMMANDS = ("submit", "resume", "status", "settings", "summarize", "compare", "report", "predict", "ensemble", "score",
            "export", "split", "data", "docs")


def _heavy_imports(*argv: str, cwd=ROOT) -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    *text, loaded = out.strip().splitlines()
    return "\n".join(text), json.loads(loaded.replace("'", '"'))


def test_help_imports_neither_torch_nor_ray():
    text, loaded = _heavy_imports("--help")
    assert "usage: python -m orchestrator" in text and loaded == []


@pytest.mark.parametrize("argv", [(c, "--help") for c in COMMANDS] + [("data", "check", "--help"),
                                                                      ("docs", "reference", "--help")])
def test_every_commands_help_is_light(argv):
    text, loaded = _heavy_imports(*argv)
    assert "usage:" in text and loaded == []


def test_settings_status_and_summarize_are_light(tmp_path):
    fold = tmp_path / "log" / "CNN" / "job" / "fold0"
    fold.mkdir(parents=True)
    (fold / "job.json").write_text(json.dumps({"cvids": [0], "challenge": 2017}))
    for argv in (("settings",), ("status", "--log-dir", "log"), ("summarize", "CNN", "--log-dir", "log")):
        text, loaded = _heavy_imports(*argv, cwd=tmp_path)
        assert text and loaded == [], argv
