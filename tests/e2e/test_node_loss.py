"""A node lost in the middle of a job, with the log on object storage (a real S3 server, moto's, on 127.0.0.1).

A three-node ray.cluster_utils.Cluster (a head without CPUs, two 1-CPU workers) runs a 4-fold job with
--log-dir s3://...; once a fold has written a few validations, the worker node it runs on is removed (its
raylet killed, as a lost machine). The fold is retried on the other node from its last checkpoint, which
comes back from the bucket, and the job finishes. The terminal says so in one line (which fold, which node,
from which epoch, as which attempt) instead of Ray's ActorDiedError traceback, and the fold's attempt.json
keeps the lost attempt and its node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, tiny_model, write_json
from tests.e2e.s3server import s3_server

pytestmark = pytest.mark.slow
BUCKET = "ecg-nodes"

SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import boto3
    import ray
    from ray.cluster_utils import Cluster
    from orchestrator.cli import main

    job, data, log, bucket, prefix = sys.argv[1:6]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    s3 = boto3.client("s3")

    def text(key):
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            return ""

    def remove_a_busy_node():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for k in range(4):
                fold = f"{prefix}/CNN/job/fold{k}/"
                if len(text(fold + "hotlog.csv").splitlines()) > 3 and not text(fold + "scores.json"):
                    node = json.loads(text(fold + "attempt.json"))["ray_node_id"]
                    worker = next(w for w in workers if w.node_id == node)
                    cluster.remove_node(worker, allow_graceful=False)
                    print("REMOVED", k, node, flush=True)
                    return
            time.sleep(0.2)

    threading.Thread(target=remove_a_busy_node, daemon=True).start()
    code = main(["submit", job, "--data", data, "--log-dir", log, "--address", cluster.address,
                 "--cpus-per-task", "1"])
    print("EXIT", code, flush=True)
    ray.shutdown()
    cluster.shutdown()
""")


def test_a_lost_node_is_retried_elsewhere_and_told_in_one_line(tmp_path, synth_dir):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=16, early_stop_wait=100))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_4_3_1",
                                                                  "cvids": [0, 1, 2, 3], "log_en": True}})
    (tmp_path / "run.py").write_text(SCRIPT)
    with s3_server(BUCKET) as (env, client):
        proc = subprocess.run(
            [sys.executable, str(tmp_path / "run.py"), str(job_file), str(synth_dir), f"s3://{BUCKET}/lost",
             BUCKET, "lost"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"})
        out = proc.stdout + proc.stderr
        assert "EXIT 0" in proc.stdout, out[-4000:]
        removed = next(line.split() for line in proc.stdout.splitlines() if line.startswith("REMOVED"))
        fold, node = int(removed[1]), removed[2]

        def read(key):
            return client.get_object(Bucket=BUCKET, Key=f"lost/CNN/job/fold{fold}/{key}")["Body"].read().decode()

        attempt = json.loads(read("attempt.json"))
        rows = [int(r.split(",")[0]) for r in read("hotlog.csv").splitlines()[1:]]
    assert attempt["attempt"] == 2 and attempt["ray_node_id"] != node
    assert attempt["earlier_attempts"][0]["ray_node_id"] == node and attempt["resumed_after_epoch"] >= 1
    assert rows == list(range(1, 17))  # each epoch once: the lost attempt's rows up to its checkpoint, then the rest
    retry = [line for line in out.splitlines() if f"CNN/job/fold{fold}" in line and "retrying" in line]
    assert len(retry) == 1, out[-4000:]
    assert f"lost its worker on node {node[:12]}" in retry[0] and "as attempt 2" in retry[0], retry[0]
    assert "Traceback" not in out and "ActorDiedError(" not in out, out[-4000:]
