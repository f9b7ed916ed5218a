"""Job and model files: what loads, and one clear error for each kind of mistake."""

import json
import shutil
from pathlib import Path

import pytest

from ecgcore.config.schema import ConfigError
from orchestrator.cli import main
from orchestrator.config.jobs import load_jobs, load_model, parse_model
from tests.conftest import ROOT, write_json

JOB = {"description": "d", "model": "tiny", "split": "split_5_6_14", "log_en": "True",
       "log_test_score": "False", "cvids": [0, 1]}


def test_shipped_files_load_unchanged():
    jobs = load_jobs(ROOT / "jobs" / "cv5.json")
    assert [j.name for j in jobs] == ["CNN_paper", "CRNN_paper"]
    cnn = load_model(ROOT / "models", "CNN_paper", "x", "$")
    assert cnn.model_name == "CNN" and cnn.model_parameters.n_conv_blocks == 6
    assert cnn.model_parameters.dilation_rates == (1, 1, 1, 1)
    crnn = load_model(ROOT / "models", "CRNN_paper", "x", "$")
    assert crnn.model_parameters.n_lstmneurons == 200 and crnn.model_parameters.bidirectional is True
    # Keys the reference files lack get their declared defaults.
    assert crnn.training_parameters.seed == 0


def test_string_booleans(tmp_path):
    jobs = load_jobs(write_json(tmp_path / "j.json", {"a": JOB}))
    assert jobs[0].config.log_en is True and jobs[0].config.log_test_score is False


def _job_error(tmp_path, content) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_jobs(write_json(tmp_path / "j.json", content))
    return info.value


@pytest.mark.parametrize("change, path, words", [
    ({"cvid": [0]}, "$.a.cvid", "unknown key 'cvid' (did you mean 'cvids'?)"),
    ({"log_en": "maybe"}, "$.a.log_en", "expected true/false"),
    ({"cvids": [0, 5]}, "$.a.cvids[1]", "fold 5 is outside split_5_6_14"),
    ({"cvids": "0"}, "$.a.cvids", "expected a list"),
    ({"cvids": [0, 0]}, "$.a.cvids", "listed twice"),
    ({"split": "five_folds"}, "$.a.split", "split_<folds>_<tv>_<seed>"),
    ({"model": "../etc/passwd"}, "$.a.model", "plain name"),
    ({"cpus_per_task": 0}, "$.a.cpus_per_task", "at least"),
])
def test_job_errors_name_file_and_path(tmp_path, change, path, words):
    err = _job_error(tmp_path, {"a": {**JOB, **change}})
    assert err.path == path and words in str(err) and str(tmp_path / "j.json") in str(err)


def test_missing_required_key(tmp_path):
    body = {k: v for k, v in JOB.items() if k != "split"}
    assert _job_error(tmp_path, {"a": body}).path == "$.a.split"


@pytest.mark.parametrize("name", ["a/b", "..", "x..y", "", "-"])
def test_job_names_are_plain(tmp_path, name):
    assert "plain name" in str(_job_error(tmp_path, {name: JOB}))


def test_malformed_json_and_duplicates(tmp_path):
    (tmp_path / "bad.json").write_text('{"a": {"model": "x",}}')
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_jobs(tmp_path / "bad.json")
    (tmp_path / "dup.json").write_text('{"a": {}, "a": {}}')
    with pytest.raises(ConfigError, match="appears twice"):
        load_jobs(tmp_path / "dup.json")


def _model_error(content) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_model(content, "m.json")
    return info.value


def test_model_errors():
    base = json.loads((ROOT / "models" / "CNN_paper.json").read_text())
    err = _model_error({**base, "model_name": "ResNet"})
    assert err.path == "$.model_name" and "known: CNN, CRNN" in str(err)
    err = _model_error({**base, "model_parameters": {**base["model_parameters"], "n_lstmneurons": 10}})
    assert err.path == "$.model_parameters.n_lstmneurons"  # a CRNN key in a CNN file
    tp = {**base["training_parameters"], "batch_size": 0}
    assert _model_error({**base, "training_parameters": tp}).path == "$.training_parameters.batch_size"
    tp = {**base["training_parameters"], "learning_rate": "fast"}
    assert "expected a number" in str(_model_error({**base, "training_parameters": tp}))
    mp = {**base["model_parameters"], "kernel_size": [5]}
    assert "expected 2 values" in str(_model_error({**base, "model_parameters": mp}))


def _submit(tmp_path: Path, job: dict, *extra: str) -> int:
    models_dir = tmp_path / "models"
    models_dir.mkdir(exist_ok=True)
    shutil.copy(ROOT / "models" / "CNN_paper.json", models_dir / "tiny.json")
    job_file = write_json(tmp_path / "jobs" / "job.json", {"a": job})
    return main(["submit", str(job_file), "--log-dir", str(tmp_path / "log"), *extra])


@pytest.mark.parametrize("job", [
    {**JOB, "cvids": [7]},
    {**JOB, "model": "no_such_model"},
    {**JOB, "unknown": 1},
])
def test_submit_refuses_bad_jobs_before_writing(tmp_path, capsys, job):
    assert _submit(tmp_path, job) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "job.json" in err
    assert not (tmp_path / "log").exists()


def test_submit_refuses_missing_dataset(tmp_path, capsys):
    assert _submit(tmp_path, {**JOB, "data": str(tmp_path / "absent")}) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("change, model, path, words", [
    ({"workers_per_task": 2, "gpus_per_task": 1}, "CNN_paper", "$.a.gpus_per_task", "gpus_per_worker"),
    ({"gpus_per_worker": 1}, "CNN_paper", "$.a.gpus_per_worker", "applies to workers_per_task > 1"),
    ({"workers_per_task": 2}, "FeatureGBM", "$.a.workers_per_task", "not trained by gradient steps"),
    ({"workers_per_task": 64}, "CNN_paper", "$.a.workers_per_task", "batch_size 20 is smaller than 64 workers"),
    ({"workers_per_task": 0}, "CNN_paper", "$.a.workers_per_task", "at least 1"),
])
def test_ddp_job_keys_are_checked_at_load(tmp_path, capsys, change, model, path, words):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    shutil.copy(ROOT / "models" / f"{model}.json", models_dir / "m.json")
    job_file = write_json(tmp_path / "jobs" / "job.json", {"a": {**JOB, "model": "m", **change}})
    assert main(["submit", str(job_file), "--log-dir", str(tmp_path / "log"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert path in err and words in err and "job.json" in err, err
