"""benchmarks/gpu_check.py on a machine without a GPU: `--dry-run` lists every step, every architecture it would
check and the two packing command lines without importing Ray or starting anything; a run by mistake says that no
GPU is visible and exits 2 after the environment step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from ecgcore.models import get_architecture, known_architectures
from tests.conftest import ROOT

SCRIPT = "benchmarks/gpu_check.py"
STEPS = ("environment", "forward_backward", "throughput", "packing", "ddp")


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _imported(importtime_log: str) -> set[str]:
    """Module names from `-X importtime` lines: "import time: self [us] | cumulative | module"."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def test_dry_run_lists_every_step_architecture_and_packing_command_without_ray(tmp_path):
    out_dir = tmp_path / "out"
    proc = _run("-X", "importtime", SCRIPT, "--dry-run", "--out-dir", str(out_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text, lines = proc.stdout, proc.stdout.splitlines()
    for step in STEPS:
        assert any(line.startswith(f"{step}:") for line in lines), step
    networks = [a for a in known_architectures() if get_architecture(a).trainer == "epochs"]
    assert networks, "the registry is empty"
    for arch in networks:  # each registered network is named with the model file it would be checked with
        assert any(line.startswith("  ") and f" {arch} " in line for line in lines), arch
    submits = [line for line in lines if "-m orchestrator submit" in line]
    for gpus in ("1", "0.2"):
        found = [line for line in submits if line.endswith(f"--gpus-per-task {gpus}")]
        assert len(found) == 1, (gpus, submits)
        assert "--time-limit" in found[0] and "--cpus-per-task" in found[0] and "--quiet" in found[0]
    assert "split_5_6_14" in text and '"cvids": [0, 1, 2, 3, 4]' in text
    modules = _imported(proc.stderr)
    assert "torch" in modules, "-X importtime gave no module list"
    assert not {m for m in modules if m == "ray" or m.startswith("ray.")}, "--dry-run imported Ray"
    assert not out_dir.exists(), "--dry-run wrote results"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here: the script would run for real")
def test_without_a_gpu_it_writes_the_environment_step_and_exits_2(tmp_path):
    proc = _run(SCRIPT, "--out-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no GPU" in proc.stdout
    steps = json.loads((tmp_path / "gpu_check.json").read_text())["steps"]
    assert list(steps) == list(STEPS)
    assert steps["environment"]["status"] == "ok" and steps["environment"]["cuda_available"] is False
    assert all(steps[s]["status"] == "skipped" and "no GPU" in steps[s]["reason"] for s in STEPS[1:])
    assert "| environment | ok |" in (tmp_path / "gpu_check.md").read_text()
