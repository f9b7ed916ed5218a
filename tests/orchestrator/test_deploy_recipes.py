"""deploy/: the Slurm and KubeRay recipes, checked as far as a machine without Slurm or Kubernetes allows.

The sbatch script: its shell syntax (bash -n), and a run of it with stand-ins for srun, scontrol, sleep
and python that record what they are asked to do (the Ray nodes started, the submit run on the head).
The RayJob: it parses as YAML, is a ray.io/v1 RayJob whose pods all get the object-storage variables.
Both: the same `python -m orchestrator submit ...` command line, which the project's own argument parser
reads as intended, with only flags the object-storage end-to-end test also passes. No Ray is started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.cli import build_parser
from tests.conftest import ROOT

SBATCH = ROOT / "deploy" / "slurm" / "ecg-submit.sbatch"
RAYJOB = ROOT / "deploy" / "kuberay" / "rayjob.yaml"
SUBMIT = "python -m orchestrator submit"
# The flags tests/e2e/test_storage_e2e.py passes to submit: a recipe may use these, no others.
E2E_FLAGS = {"--address", "--log-dir", "--data", "--storage-path", "--max-concurrent", "--quiet"}
LOG_URI = "s3://ecg-runs/cv5"  # the RayJob's log URI, given to the sbatch script as its LOG_URI
AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")


def _bash() -> str:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    return bash


def _sbatch_command() -> list[str]:
    """The sbatch script's submit command line, its backslash continuations joined, as words."""
    text = re.sub(r"\\\n\s*", " ", SBATCH.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(SUBMIT)]
    assert len(lines) == 1, f"expected one `{SUBMIT}` line in {SBATCH}, found {lines}"
    return shlex.split(lines[0])


def _sbatch_default(name: str) -> str:
    """NAME's default in the script, from its `NAME=${NAME:-default}` line."""
    found = re.search(rf"^{name}=\$\{{{name}:-([^}}]+)\}}$", SBATCH.read_text(), re.M)
    assert found, f"{SBATCH}: no {name}=${{{name}:-...}} line"
    return found.group(1)


def _substituted(words: list[str], values: dict[str, str]) -> list[str]:
    def one(word: str) -> str:
        for name, value in values.items():
            word = word.replace(f"${{{name}}}", value).replace(f"${name}", value)
        assert "$" not in word, f"a shell variable left in {word!r}"
        return word
    return [one(w) for w in words]


def _rayjob() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(RAYJOB.read_text())


def _rayjob_command() -> list[str]:
    return shlex.split(_rayjob()["spec"]["entrypoint"])


def _containers(doc: dict) -> list[dict]:
    cluster = doc["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["spec"]["containers"]]


# ----- the sbatch script -----

def test_sbatch_is_valid_bash():
    result = subprocess.run([_bash(), "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sbatch_follows_rays_slurm_recipe():
    text = SBATCH.read_text()
    directives = re.findall(r"^#SBATCH (--[\w-]+)", text, re.M)
    for flag in ("--nodes", "--exclusive", "--tasks-per-node", "--cpus-per-task", "--gpus-per-task"):
        assert flag in directives
    assert re.search(r"^#SBATCH --tasks-per-node=1$", text, re.M)
    assert re.search(r"^set -euo pipefail$", text, re.M)
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in text
    # The object-storage keys come from the environment, never from the script.
    assert not re.search(r"^\s*(export\s+)?AWS_\w+=", text, re.M)
    for name in AWS:
        assert name in text  # named in the comment that says where they come from


STUBS = {
    # srun: `hostname --ip-address` answers an address; everything else (ray start) is recorded.
    "srun": 'if [[ " $* " == *" hostname "* ]]; then echo "10.1.2.3"; exit 0; fi\n'
            'printf "%s\\n" "$*" >> "$RECORD/srun"\n',
    "scontrol": 'printf "gpu-a\\ngpu-b\\ngpu-c\\n"\n',
    "sleep": "exit 0\n",
    # python -c (how many nodes are alive) answers 3; python -m orchestrator records its words.
    "python": 'if [[ "$1" == -c ]]; then echo 3; exit 0; fi\n'
              'printf "%s\\0" "$@" > "$RECORD/submit"; printf "%s\\n" "$RAY_ADDRESS" > "$RECORD/ray_address"\n',
}


def _run_sbatch(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The script run as Slurm would, on 3 nodes of 16 CPUs and 1 GPU, with the stand-ins on PATH."""
    bash = _bash()
    bin_dir, record, project = tmp_path / "bin", tmp_path / "record", tmp_path / "project"
    for folder in (bin_dir, record, project / ".venv" / "bin"):
        folder.mkdir(parents=True)
    (project / ".venv" / "bin" / "activate").write_text("# the project's venv\n")
    for name, body in STUBS.items():
        stub = bin_dir / name
        stub.write_text(f"#!{bash}\n{body}")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path), "RECORD": str(record),
        "SLURM_JOB_NODELIST": "gpu-[a-c]", "SLURM_JOB_NUM_NODES": "3", "SLURM_CPUS_PER_TASK": "16",
        "SLURM_GPUS_PER_TASK": "1", "SLURM_SUBMIT_DIR": str(project), **env,
    }
    result = subprocess.run([bash, str(SBATCH)], capture_output=True, text=True, env=environment, timeout=60)
    return result, record


def _srun_lines(record: Path, count: int) -> list[str]:
    """The recorded `srun ... ray start` lines; the srun calls run in the background, so wait for them."""
    deadline = time.monotonic() + 10
    while True:
        lines = (record / "srun").read_text().splitlines() if (record / "srun").exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_sbatch_starts_ray_on_every_node_then_submits_on_the_head(tmp_path):
    result, record = _run_sbatch(tmp_path, LOG_URI=LOG_URI)
    assert result.returncode == 0, result.stderr
    runs = sorted(_srun_lines(record, 3))
    assert len(runs) == 3, runs
    head = [r for r in runs if "--head" in r]
    assert head == ["--nodes=1 --ntasks=1 -w gpu-a ray start --head --node-ip-address=10.1.2.3 --port=6379 "
                    "--num-cpus 16 --num-gpus 1 --block"]
    workers = sorted(r for r in runs if "--head" not in r)
    assert workers == [f"--nodes=1 --ntasks=1 -w gpu-{n} ray start --address 10.1.2.3:6379 --num-cpus 16 "
                       "--num-gpus 1 --block" for n in "bc"]
    submit = (record / "submit").read_text().split("\0")[:-1]
    assert submit == ["-m", "orchestrator", "submit", "jobs/cv5.json", "--address", "auto", "--log-dir", LOG_URI]
    assert (record / "ray_address").read_text().strip() == "10.1.2.3:6379"  # what --address auto finds


def test_sbatch_takes_the_job_file_from_the_environment(tmp_path):
    result, record = _run_sbatch(tmp_path, LOG_URI="/shared/ecg/log", JOB_FILE="jobs/small_cv5.json")
    assert result.returncode == 0, result.stderr
    submit = (record / "submit").read_text().split("\0")[:-1]
    assert submit[3:] == ["jobs/small_cv5.json", "--address", "auto", "--log-dir", "/shared/ecg/log"]


def test_sbatch_without_a_log_uri_stops_before_starting_anything(tmp_path):
    result, record = _run_sbatch(tmp_path)
    assert result.returncode != 0
    assert "set LOG_URI=s3://bucket/prefix or a folder every node mounts" in result.stderr
    assert not (record / "srun").exists() and not (record / "submit").exists()


# ----- the RayJob -----

def test_rayjob_is_a_ray_io_v1_rayjob():
    doc = _rayjob()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert spec["entrypoint"].startswith(SUBMIT)
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert cluster["workerGroupSpecs"] and all(g["replicas"] >= 1 for g in cluster["workerGroupSpecs"])


def test_every_rayjob_pod_gets_the_storage_settings_and_the_same_image():
    containers = _containers(_rayjob())
    assert len(containers) >= 2
    assert len({c["image"] for c in containers}) == 1
    for container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_USAGE_STATS_ENABLED"]["value"] == "0"
        for name in AWS:
            assert name in env, f"{container['name']}: no {name}"
        for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in env[secret] and env[secret]["valueFrom"]["secretKeyRef"]["name"]
        # The dataset: a volume at the project's data/ (or --data in the entrypoint).
        data = [m for m in container.get("volumeMounts", []) if m["mountPath"].endswith("/data")]
        assert data or "--data" in _rayjob_command()


# ----- both recipes: one command line -----

def test_both_recipes_run_the_same_submit_command():
    sbatch = _substituted(_sbatch_command(), {"JOB_FILE": _sbatch_default("JOB_FILE"), "LOG_URI": LOG_URI})
    assert sbatch == _rayjob_command()


def test_the_submit_command_parses_with_the_projects_parser():
    words = _rayjob_command()
    assert words[:3] == ["python", "-m", "orchestrator"]
    args = build_parser().parse_args(words[3:])
    assert args.command == "submit"
    assert args.job_file == "jobs/cv5.json" and (ROOT / args.job_file).is_file()
    assert args.address == "auto" and args.log_dir == LOG_URI


def test_the_recipes_pass_only_flags_the_storage_e2e_test_passes():
    for words in (_sbatch_command(), _rayjob_command()):
        flags = {w.split("=", 1)[0] for w in words if w.startswith("--")}
        assert flags <= E2E_FLAGS, flags - E2E_FLAGS
