"""GPU scheduling with logical GPUs: Ray accepts num_gpus on a machine without one, so placement is real here.

A Ray with 2 logical GPUs runs in a subprocess (the test session's own Ray is left alone): 4 folds at 0.5 GPU
run two to a GPU at once, 2 folds at 1.0 get different GPUs, a job asking for more GPUs per task than a node
has is refused before any trial starts. Every fold records the GPU ids Ray gave it and its CUDA_VISIBLE_DEVICES,
and, torch seeing no CUDA here, says it trained on the CPU. Without a Ray, the refusal comes before Ray starts.
"""

import collections
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, tiny_model, write_json

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import sys
    import ray
    from orchestrator.cli import main

    data, log, *jobs = sys.argv[1:]
    ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False)
    codes = [main(["submit", job, "--data", data, "--log-dir", log, "--cpus-per-task", "1", "--quiet"])
             for job in jobs]
    print("EXIT", *codes)
    print(main(["status", "--log-dir", log]))
""")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


def _job(tmp_path, name: str, gpus: float, cvids: list[int]):
    return write_json(tmp_path / "jobs" / f"{name}.json", {name: {
        "model": "tiny", "split": "split_4_3_1", "cvids": cvids, "log_en": False, "gpus_per_task": gpus}})


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory, synth_dir):
    base = tmp_path_factory.mktemp("gpus")
    write_json(base / "models" / "tiny.json", tiny_model("CNN", max_epochs=3))
    jobs = [_job(base, "half", 0.5, [0, 1, 2, 3]), _job(base, "whole", 1.0, [0, 1]), _job(base, "big", 3.0, [0])]
    (base / "run.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(base / "run.py"), str(synth_dir), str(base / "log"), *map(str, jobs)],
                          cwd=base, capture_output=True, text=True, timeout=600, env=ENV)
    return base / "log" / "CNN", proc


def _fold(job_dir, k: int) -> tuple[dict, dict]:
    fold = job_dir / f"fold{k}"
    return json.loads((fold / "scores.json").read_text()), json.loads((fold / "attempt.json").read_text())


def test_exit_codes_and_the_refusal(gpu_run):
    _, proc = gpu_run
    assert "EXIT 0 0 2" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "job big asks for 3 GPU(s) per task, but the Ray cluster has 2;" in proc.stderr
    assert "on GPU" in proc.stdout  # status shows each fold's GPU


def test_half_a_gpu_each_packs_two_folds_per_gpu_at_once(gpu_run):
    arch_dir, _ = gpu_run
    folds = [_fold(arch_dir / "half", k) for k in range(4)]
    ids = [scores["gpu_ids"] for scores, _ in folds]
    assert collections.Counter(i for gpu in ids for i in gpu) == {"0": 2, "1": 2}, ids
    for scores, attempt in folds:
        assert attempt["gpu_ids"] == scores["gpu_ids"] and scores["cuda_visible_devices"] == scores["gpu_ids"][0]
        assert scores["device"] == "cpu" and any("sees no CUDA device" in n for n in scores["notes"])
    spans = {k: (a["started"], a["started"] + s["elapsed_s"]) for k, (s, a) in enumerate(folds)}
    shared = [(i, j) for i in range(4) for j in range(i + 1, 4) if ids[i] == ids[j]]
    overlapping = [(i, j) for i, j in shared if spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1]]
    assert overlapping, f"no two folds on the same GPU ran at the same time: {spans}, {ids}"


def test_whole_gpus_are_different_gpus(gpu_run):
    arch_dir, _ = gpu_run
    ids = [_fold(arch_dir / "whole", k)[0]["gpu_ids"] for k in (0, 1)]
    assert sorted(i for gpu in ids for i in gpu) == ["0", "1"], ids


def test_a_gpu_job_is_refused_before_a_local_ray_starts(tmp_path, synth_dir):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=1))
    job = _job(tmp_path, "needs_gpu", 1.0, [0])
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "submit", str(job), "--data", str(synth_dir),
                           "--log-dir", str(tmp_path / "log")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=ENV)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "job needs_gpu asks for 1 GPU(s) per task, but this machine has 0;" in proc.stderr
    assert "Ray dashboard" not in proc.stdout + proc.stderr  # refused before Ray started
