"""`submit --address http://host:8265`: the job file is checked here, then the same submit runs as a Ray job
(Jobs API, token authentication on) on a cluster started on this machine, and every fold lands."""

import json
import os
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import pytest

from ecgcore.errors import ProjectError
from orchestrator.config.settings import Settings
from orchestrator.plan.expand import Overrides
from orchestrator.run.rayjob import SETTINGS_FILE, is_jobs_address, remote_argv, upload_copy
from tests.conftest import ROOT, tiny_model, write_json

SCRIPT = textwrap.dedent("""
    import socket
    import sys
    from ray.cluster_utils import Cluster
    from orchestrator.cli import main

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    data, log = sys.argv[1:3]
    # Its own agent port: the test session's local Ray may hold Ray's default one.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": 0,
        "dashboard_agent_listen_port": free_port()})
    url = "http://" + cluster.head_node.address_info["webui_url"]
    typo = main(["submit", "jobs/typo.json", "--address", url])
    code = main(["submit", "jobs/j.json", "--data", data, "--log-dir", log, "--address", url, "--max-epochs", "1",
                 "--cpus-per-task", "1", "--quiet"])
    missing = main(["submit", "jobs/j.json", "--data", "/nonexistent/ds", "--address", url, "--quiet"])
    print("EXIT", typo, code, missing)
    cluster.shutdown()
""")


def _opts(tmp_path, **kw):
    base = dict(job_file=str(tmp_path / "jobs" / "j.json"), models_dir=None, log_dir=str(tmp_path / "log"),
                overrides=Overrides(data="data/x", max_epochs=2), max_concurrent=3, storage_path="tune",
                resume=True, quiet=False)
    return Namespace(**{**base, **kw})


def test_the_remote_command_keeps_project_files_relative_and_makes_other_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = remote_argv(_opts(tmp_path), [], tmp_path)
    assert argv[:6] == ["submit", "jobs/j.json", "--address", "auto", "--settings", SETTINGS_FILE]
    assert argv[argv.index("--log-dir") + 1] == str(tmp_path / "log")
    assert argv[argv.index("--data") + 1] == str(tmp_path / "data" / "x")
    assert argv[argv.index("--storage-path") + 1] == str(tmp_path / "tune")
    assert argv[argv.index("--max-epochs") + 1] == "2" and argv[argv.index("--max-concurrent") + 1] == "3"
    assert argv[-1] == "--resume" and "--cpus-per-task" not in argv
    uri = remote_argv(_opts(tmp_path, storage_path="s3://bucket/tune"), [], tmp_path)
    assert uri[uri.index("--storage-path") + 1] == "s3://bucket/tune"
    with pytest.raises(ProjectError, match="outside the project folder"):
        remote_argv(_opts(tmp_path, job_file="/etc/j.json"), [], tmp_path)
    assert is_jobs_address("http://head:8265") and not is_jobs_address("ray://head:10001")
    assert not is_jobs_address("auto") and not is_jobs_address(None)


def test_the_upload_is_the_code_and_job_files_with_the_settings_resolved_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kept in ("orchestrator/x.py", "jobs/j.json", "models/m.json"):
        write_json(tmp_path / kept, {})
    for dropped in ("log/CNN/a/fold0/scores.json", "data/training2017/A.mat", ".venv/bin/x", ".git/HEAD",
                    "orchestrator/__pycache__/x.pyc", "orchestrator.yaml", "benchmarks/results/r.json"):
        write_json(tmp_path / dropped, {})
    settings = Settings(data_root="data/cinc2017", storage_path="tune", address="http://head:8265")
    copy = upload_copy(tmp_path, tmp_path.parent / "up", settings)
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert files == sorted(["orchestrator/x.py", "jobs/j.json", "models/m.json", SETTINGS_FILE])
    sent = json.loads((copy / SETTINGS_FILE).read_text())
    assert sent["data_root"] == str(tmp_path / "data" / "cinc2017") and sent["storage_path"] == str(tmp_path / "tune")
    assert sent["address"] is None and sent["log_root"] == str(tmp_path / "log")


@pytest.mark.slow
def test_a_submit_through_the_jobs_api_runs_on_the_cluster(tmp_path, synth_dir):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN"))
    write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1", "cvids": [0, 1],
                                                      "log_en": False}})
    write_json(tmp_path / "jobs" / "typo.json", {"job": {"model": "tiny", "split": "split_3_3_1", "cvid": [0]}})
    (tmp_path / "run.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "run.py", str(synth_dir), str(tmp_path / "log")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)
    out = proc.stdout + proc.stderr
    assert "EXIT 2 0 2" in proc.stdout, out[-4000:]  # the cluster's input error is exit 2 here too
    assert "$.job.cvid" in proc.stderr  # refused here, before anything was sent
    assert "submitted Ray job" in proc.stdout and "SUCCEEDED" in proc.stdout
    assert "2/2 task(s) finished" in proc.stdout  # the remote submit's own report, streamed back
    for k in (0, 1):
        assert (tmp_path / "log" / "CNN" / "job" / f"fold{k}" / "scores.json").exists()
