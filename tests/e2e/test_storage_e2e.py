"""The log folder on object storage, against a real S3 server (moto's server mode on 127.0.0.1).

- Two jobs submitted with --log-dir s3://... and --data s3://... to a two-node ray.cluster_utils.Cluster
  (no folder shared by the nodes but the bucket): every fold folder lands in the bucket, TensorBoard events
  included; then status, summarize (--plot: the PNGs and summary.json go back to the bucket), compare,
  report, predict and export read it from there; the run writes nothing on the local disk but temporary
  folders and the outputs asked for (the listings of the working folder and of the records are compared).
- A submit killed with SIGKILL (its whole process group, Ray included) is continued by `resume` from the
  bucket: finished folds stay as they are, the others continue from their checkpoints, each epoch once.
The clusters run in subprocesses with the server's environment, so the test session's own Ray is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from orchestrator.cli import main
from tests.conftest import ROOT, tiny_model, write_json
from tests.e2e.s3server import aws_environment, keys, listing, s3_server

pytestmark = pytest.mark.slow
BUCKET = "ecg-runs"

CLUSTER = textwrap.dedent("""
    import sys
    from ray.cluster_utils import Cluster
    from orchestrator.cli import main

    job, data, log = sys.argv[1:4]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    code = main(["submit", job, "--data", data, "--log-dir", log, "--address", cluster.address,
                 "--cpus-per-task", "1"])
    print("EXIT", code, flush=True)
    cluster.shutdown()
""")


@pytest.fixture(scope="module")
def s3():
    with s3_server(BUCKET) as (env, client), aws_environment(env):
        yield env, client


def _env(s3env: dict) -> dict:
    return {**os.environ, **s3env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def cluster_run(s3, synth_dir, tmp_path_factory):
    """Two jobs x 2 folds submitted to a two-node cluster with the log in the bucket."""
    env, client = s3
    work = tmp_path_factory.mktemp("s3work")
    write_json(work / "models" / "tiny.json", tiny_model("CNN", max_epochs=3))
    write_json(work / "models" / "tiny_fast.json", tiny_model("CNN", max_epochs=3, learning_rate=0.003))
    jobs = {name: {"model": model, "split": "split_3_3_1", "cvids": [0, 1], "log_en": True}
            for name, model in (("a", "tiny"), ("b", "tiny_fast"))}
    job_file = write_json(work / "jobs" / "ab.json", jobs)
    (work / "run.py").write_text(CLUSTER)
    for path in synth_dir.iterdir():  # the dataset in the bucket: the driver reads it from there
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"data/synth/{path.name}")
    before = {"work": listing(work), "data": listing(synth_dir)}
    log = f"s3://{BUCKET}/runs/ab"
    proc = subprocess.run([sys.executable, str(work / "run.py"), str(job_file), f"s3://{BUCKET}/data/synth", log],
                          cwd=work, capture_output=True, text=True, timeout=600, env=_env(env))
    assert "EXIT 0" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, log, before, proc


def test_a_cluster_submit_writes_every_fold_folder_to_the_bucket(cluster_run, s3):
    work, log, before, proc = cluster_run
    _, client = s3
    objects = keys(client, BUCKET, "runs/ab/")
    for job in ("a", "b"):
        for k in (0, 1):
            fold = f"runs/ab/CNN/{job}/fold{k}/"
            names = {key[len(fold):] for key in objects if key.startswith(fold)}
            assert {"scores.json", "hotlog.csv", "best_model.pt", "predictions.csv", "job.json", "model.json",
                    "attempt.json", "validations.jsonl"} <= names, names
            assert any(n.startswith("events.out.tfevents.") for n in names)
            rows = client.get_object(Bucket=BUCKET, Key=fold + "hotlog.csv")["Body"].read().decode().splitlines()
            assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3]
    assert any(key.startswith("runs/ab/.tune/") for key in objects)  # Tune's experiment: under the same URI
    nodes = {json.loads(client.get_object(Bucket=BUCKET, Key=f"runs/ab/CNN/{j}/fold{k}/attempt.json")["Body"]
                        .read())["ray_node_id"] for j in ("a", "b") for k in (0, 1)}
    assert len(nodes) == 2, f"every fold ran on one node: {nodes}"
    assert listing(work) == before["work"]  # no log/, no data cache, nothing else here


def test_the_readers_read_the_bucket(cluster_run, s3, synth_dir, tmp_path, capsys, monkeypatch):
    work, log, before, _ = cluster_run
    _, client = s3
    monkeypatch.chdir(work)
    capsys.readouterr()
    assert main(["status", "--log-dir", log]) == 0
    out = capsys.readouterr().out
    assert out.count("done") >= 4 and "ecg-mount" not in out
    assert main(["summarize", "CNN", "--log-dir", log, "--plot", "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "mean" in out and "ecg-mount" not in out and f"{log}/CNN" in out
    objects = keys(client, BUCKET, "runs/ab/CNN/")
    assert "runs/ab/CNN/summary.json" in objects and "runs/ab/CNN/a_curves.png" in objects
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", log, "--resamples", "50"]) == 0
    assert "Wilcoxon" in capsys.readouterr().out
    assert main(["report", "CNN/a", "CNN/b", "--log-dir", log, "--out", str(tmp_path / "r.html"),
                 "--resamples", "50"]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000
    assert main(["predict", "--run", f"{log}/CNN/a", "--input", str(synth_dir),
                 "--output", str(tmp_path / "answers.csv")]) == 0
    assert len((tmp_path / "answers.csv").read_text().splitlines()) == len(list(synth_dir.glob("*.hea")))
    assert f"{log}/CNN/a" not in capsys.readouterr().err
    pytest.importorskip("onnxruntime")
    assert main(["export", "--run", f"{log}/CNN/a/fold0", "--out", str(tmp_path / "onnx"),
                 "--records", str(synth_dir)]) == 0
    assert (tmp_path / "onnx" / "model.onnx").stat().st_size > 0
    assert listing(synth_dir) == before["data"]  # the dataset: read, never written


def test_a_missing_bucket_is_refused_before_ray_starts(s3, tmp_path, synth_dir, capsys):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN"))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0]}})
    code = main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", "s3://no-such-bucket/x"])
    err = capsys.readouterr().err
    assert code == 2 and "s3://no-such-bucket/x" in err
    assert not (tmp_path / "log").exists()


def test_resume_after_sigkill_continues_from_the_bucket(s3, synth_dir, tmp_path):
    env, client = s3
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=6, early_stop_wait=50))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1",
                                                                  "cvids": [0, 1], "log_en": False}})
    log = f"s3://{BUCKET}/runs/killed"
    args = ["--data", str(synth_dir), "--log-dir", log, "--max-concurrent", "1", "--cpus-per-task", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "submit", str(job_file), *args], cwd=tmp_path,
                            env=_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    done = _wait_for_a_finished_fold(client, "runs/killed/CNN/job/", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the submit and the Ray it started, at once
    proc.wait(timeout=60)
    stamps = {k: _modified(client, f"runs/killed/CNN/job/fold{k}/scores.json") for k in done}
    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "resume", str(job_file), *args], cwd=tmp_path,
                             env=_env(env), capture_output=True, text=True, timeout=600)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f"resume: {len(done)} of 2 fold(s) finished earlier" in out
    assert "Failed to fetch metrics" not in out
    for k in range(2):
        body = client.get_object(Bucket=BUCKET, Key=f"runs/killed/CNN/job/fold{k}/hotlog.csv")["Body"].read()
        assert [int(r.split(",")[0]) for r in body.decode().splitlines()[1:]] == list(range(1, 7))
        if k in done:
            assert _modified(client, f"runs/killed/CNN/job/fold{k}/scores.json") == stamps[k]
    assert "runs/killed/CNN/job/.lock" not in keys(client, BUCKET, "runs/killed/")


def _wait_for_a_finished_fold(client, prefix: str, proc) -> set[int]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = {k for k in range(2) if f"{prefix}fold{k}/scores.json" in keys(client, BUCKET, prefix)}
        if done:
            return done
        time.sleep(0.2)
    raise AssertionError("no fold finished before the deadline (or the submit ended)")


def _modified(client, key: str):
    return client.head_object(Bucket=BUCKET, Key=key)["LastModified"]
