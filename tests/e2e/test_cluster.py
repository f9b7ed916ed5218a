"""A job on a two-node Ray cluster started on this machine (ray.cluster_utils.Cluster), one logical GPU per
node: the GPU folds run on both nodes and every fold lands; without --storage-path the multi-node submit is
refused.

The cluster runs in a subprocess, so the test session's own local Ray is left alone.
"""

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
    from ray.cluster_utils import Cluster
    from orchestrator.cli import main

    job, data, log, store = sys.argv[1:5]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    common = ["submit", job, "--data", data, "--log-dir", log, "--address", cluster.address, "--cpus-per-task", "1",
              "--gpus-per-task", "1"]
    refused = main(common)
    code = main(common + ["--storage-path", store])
    print("EXIT", refused, code)
    cluster.shutdown()
""")


def test_a_job_spreads_over_two_nodes(tmp_path, synth_dir):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=3))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_4_3_1",
                                                                  "cvids": [0, 1, 2, 3], "log_en": False}})
    (tmp_path / "run.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(job_file), str(synth_dir),
                           str(tmp_path / "log"), str(tmp_path / "shared-store")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"})
    assert "EXIT 2 0" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--log-dir as a URI" in proc.stderr and "--storage-path" in proc.stderr
    folds = tmp_path / "log" / "CNN" / "job"
    nodes = set()
    for k in range(4):
        scores = json.loads((folds / f"fold{k}" / "scores.json").read_text())
        attempt = json.loads((folds / f"fold{k}" / "attempt.json").read_text())
        nodes.add(attempt["ray_node_id"])
        assert scores["gpu_ids"] == ["0"]  # each node has one (logical) GPU: every fold had a whole one
    assert len(nodes) == 2, f"all GPU folds ran on {nodes}"
    assert (tmp_path / "shared-store").is_dir()
