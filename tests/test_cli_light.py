"""Light commands answer without the heavy libraries: `--help` must not import torch, Ray or scipy.signal."""

import subprocess
import sys

from tests.conftest import ROOT

PROBE = ("import runpy, sys\n"
         "sys.argv = ['orchestrator', '--help']\n"
         "try:\n"
         "    runpy.run_module('orchestrator', run_name='__main__')\n"
         "except SystemExit:\n"
         "    pass\n"
         "print(sorted(m for m in ('torch', 'ray', 'scipy.signal') if m in sys.modules))\n")


def test_help_imports_neither_torch_nor_ray():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "usage: python -m orchestrator" in out
    assert out.strip().splitlines()[-1] == "[]"
