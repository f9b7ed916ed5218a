"""A corpus of bad inputs: each one fails with one clear error, exit code 2, no traceback, nothing under log/.

Static cases are folders `tests/bad_inputs/<case>/`: `case.json` holds the command's arguments (with the
placeholders {case}, {shared} and {data2017}), the exit code and the fragments the error must contain (the
file and the JSON path, or the record); the job and model files lie beside it. Damaged datasets need binary
records, so those cases are generated (tests/bad_inputs/cases.py) from a small clean synthetic set and listed
in tests/bad_inputs/README.md. Every case runs in-process through `orchestrator.cli.main` with the Ray part
of `submit` replaced by a failure, so a case that would start Ray fails the test; three of them also run as
`python -m orchestrator` in a subprocess, whose stderr must hold no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config.jobs import load_jobs, parse_model
from tests.bad_inputs import cases_tracks  # noqa: F401 -- registers the tracks' cases in GENERATED
from tests.bad_inputs.cases import CASES, GENERATED, SHARED_MODELS, Case, Env, argv, copy_data
from tests.conftest import ROOT, write_json

STATIC = sorted(p.parent.name for p in CASES.glob("*/case.json"))
SUBPROCESS = ["job_fold_outside_split", "model_unknown_architecture", "data12_truncated_mat"]


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> Env:
    from ecgcore.io.synth import write_synthetic_dataset
    from ecgcore.io.synth12 import write_synthetic_12lead

    root = tmp_path_factory.mktemp("bad_inputs_clean")
    write_synthetic_dataset(root / "s2017", 24, seed=3)
    write_synthetic_12lead(root / "s2021", 12, seed=5)
    shutil.copytree(root / "s2017", root / "data2017")
    return Env({2017: root / "s2017", 2021: root / "s2021"}, root / "data2017")


def static_case(name: str, env: Env) -> Case:
    spec = json.loads((CASES / name / "case.json").read_text())
    fill = {"{case}": str(CASES / name), "{shared}": str(SHARED_MODELS.parent), "{data2017}": str(env.data2017)}

    def expand(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    return Case([expand(a) for a in spec["argv"]], [expand(e) for e in spec["expect"]], spec["exit_code"],
                spec.get("prepared", False))


def build(case_id: str, work: Path, env: Env) -> Case:
    return GENERATED[case_id](work, env) if case_id in GENERATED else static_case(case_id, env)


def full_argv(case: Case, log: Path) -> list[str]:
    """The case's command with --log-dir <tmp>/log, unless the case brings its own."""
    return case.argv if case.log_dir is not None else [*case.argv, "--log-dir", str(log)]


def check_error(stderr: str, case: Case) -> None:
    """One error line, naming the file and field or record; no traceback."""
    assert "Traceback" not in stderr, stderr
    assert stderr.count("error: ") == 1, stderr
    message = stderr[stderr.index("error: "):]
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def check_log(log: Path, case: Case) -> None:
    """Nothing summarize could take for a result: no log/<arch>/<job>/fold*, only hidden entries at most."""
    if case.log_dir is not None:
        assert not case.log_dir.is_dir(), f"{case.log_dir} was created"
        return
    if not log.exists():
        return
    assert [p.name for p in log.iterdir() if not p.name.startswith(".")] == [], sorted(log.rglob("*"))
    assert not list(log.glob("*/*/fold*"))
    cache = log / ".cache"
    if case.prepared:  # the error came after the dataset was read: complete cache entries are allowed
        assert all((f.suffix == ".npz" or f.name.startswith("digests-")) and f.suffix != ".tmp"
                   and not f.name.startswith(".") for f in cache.iterdir())
    else:
        assert not cache.exists(), "the dataset cache was written though reading the data failed"


def _no_ray(*args, **kwargs):
    raise AssertionError("this bad input got past every check: submit would start Ray")


@pytest.mark.parametrize("case_id", STATIC + sorted(GENERATED))
def test_bad_input(case_id, env, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("orchestrator.commands.submit._run", _no_ray)
    case = build(case_id, tmp_path, env)
    capsys.readouterr()
    code = main(full_argv(case, tmp_path / "log"))
    check_error(capsys.readouterr().err, case)
    assert code == case.exit_code
    check_log(tmp_path / "log", case)


@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_bad_input_subprocess(case_id, env, tmp_path):
    case = build(case_id, tmp_path, env)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *full_argv(case, tmp_path / "log")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    check_error(proc.stderr, case)
    assert proc.returncode == case.exit_code
    check_log(tmp_path / "log", case)


@pytest.mark.parametrize("challenge", [2017, 2021])
def test_clean_inputs_reach_ray(challenge, env, tmp_path, monkeypatch):
    """The control: the undamaged set and the shared models pass every check, so each error above is the damage's."""
    started = []
    monkeypatch.setattr("orchestrator.commands.submit._run", lambda *args, **kwargs: started.append(args) or 0)
    assert main([*argv(tmp_path, copy_data(tmp_path, env, challenge), challenge),
                 "--log-dir", str(tmp_path / "log")]) == 0
    assert len(started) == 1


def test_corpus_covers_every_kind_of_input():
    ids = STATIC + sorted(GENERATED)
    assert len(ids) >= 25
    for prefix in ("job_", "model_", "data_", "data12_", "split_", "log_"):
        assert any(i.startswith(prefix) for i in ids), prefix


def test_bool_strings_are_booleans_only_where_a_boolean_belongs(tmp_path):
    """On purpose: "True"/"False" strings are read as booleans (the reference's job files wrote them), in job
    and model files alike; anywhere else (a number, an integer) a string is an error: see the corpus's
    job_false_string_for_integer and model_false_string_for_number."""
    job = {"model": "tiny", "split": "split_5_6_14", "cvids": [0], "log_en": "False", "log_test_score": "True"}
    config = load_jobs(write_json(tmp_path / "job.json", {"a": job}))[0].config
    assert config.log_en is False and config.log_test_score is True
    model = json.loads((SHARED_MODELS / "tiny.json").read_text())
    model["model_parameters"]["max_pooling"] = "False"
    assert parse_model(model, "m.json").model_parameters.max_pooling is False
