"""Machine settings: found from --settings, $ECG_ORCH_SETTINGS or ./orchestrator.yaml; precedence command line >
job file > settings file > defaults; the `settings` command; job, model and settings files in YAML, with lines."""

import pytest

from ecgcore.config.schema import ConfigError
from orchestrator.cli import _submit_options, build_parser, main
from orchestrator.commands.submit import SubmitOptions, plan
from orchestrator.config.settings import ENV, Settings, load_settings
from orchestrator.plan.expand import resources
from tests.conftest import tiny_model, write_json


def _yaml(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_file_is_found_by_flag_then_environment_then_current_folder(tmp_path):
    assert load_settings(None, {}, tmp_path).settings == Settings()  # nothing anywhere: every default
    _yaml(tmp_path / "orchestrator.yaml", "log_root: local-log\n")
    env_file = _yaml(tmp_path / "env.yaml", "log_root: env-log\n")
    flag_file = _yaml(tmp_path / "flag.yaml", "log_root: flag-log\n")
    assert load_settings(None, {}, tmp_path).settings.log_root == "local-log"
    assert load_settings(None, {ENV: str(env_file)}, tmp_path).settings.log_root == "env-log"
    resolved = load_settings(str(flag_file), {ENV: str(env_file)}, tmp_path)
    assert resolved.settings.log_root == "flag-log" and resolved.found_by == "--settings"
    with pytest.raises(ConfigError, match=rf"settings file named by \${ENV} does not exist"):
        load_settings(None, {ENV: str(tmp_path / "missing.yaml")}, tmp_path)


def test_settings_files_are_checked_like_job_files_with_lines(tmp_path):
    bad = _yaml(tmp_path / "s.yaml", "log_root: x\n\ncpus_per_tsk: 2\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: line 3: \$\.cpus_per_tsk: unknown key .*did you mean "
                                          r"'cpus_per_task'"):
        load_settings(str(bad), {}, tmp_path)
    wrong = _yaml(tmp_path / "t.yaml", "dashboard_port: [8265]\n")
    with pytest.raises(ConfigError, match=r"line 1: \$\.dashboard_port: expected an integer"):
        load_settings(str(wrong), {}, tmp_path)
    assert load_settings(str(_yaml(tmp_path / "empty.yaml", "")), {}, tmp_path).settings == Settings()


def test_precedence_command_line_over_job_over_settings_over_defaults(tmp_path):
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    job_file = write_json(tmp_path / "jobs" / "j.json", {
        "own": {"model": "tiny", "split": "split_3_3_1", "cvids": [0], "cpus_per_task": 0.25, "data": "job-data"},
        "open": {"model": "tiny", "split": "split_3_3_1", "cvids": [0]}})
    settings = Settings(data_root="settings-data", cpus_per_task=0.5, gpus_per_task=0.1)
    jobs, tasks = plan(SubmitOptions(job_file=str(job_file), settings=settings), tmp_path)
    by_job = {t.job: t for t in tasks}
    assert by_job["own"].data_dir == str(tmp_path / "job-data")  # job file over settings
    assert by_job["open"].data_dir == str(tmp_path / "settings-data")  # settings over the default
    by_name = {j.name: j for j in jobs}
    args = build_parser().parse_args(["submit", str(job_file), "--cpus-per-task", "2"])
    options = _submit_options(args, settings)
    # the command line over all
    assert resources(by_name["own"], options.overrides, 0) == {"cpu": 2.0, "gpu": 0.1, "workers": 1}
    assert resources(by_name["own"], SubmitOptions(job_file="x").overrides, 0)["cpu"] == 0.25
    assert resources(by_name["open"], SubmitOptions(job_file="x").overrides, 0)["cpu"] == 0.5
    _, defaults = plan(SubmitOptions(job_file=str(job_file)), tmp_path)
    assert {t.job: t.data_dir for t in defaults}["open"] == str(tmp_path / "data" / "training2017")


def test_command_line_options_take_their_defaults_from_the_settings():
    settings = Settings(log_root="/srv/log", address="auto", dashboard_host="0.0.0.0", dashboard_port=9000,
                        storage_path="/srv/tune", max_concurrent=3)
    from_settings = _submit_options(build_parser().parse_args(["submit", "j.json"]), settings)
    assert (from_settings.log_dir, from_settings.address, from_settings.dashboard_host, from_settings.dashboard_port,
            from_settings.storage_path, from_settings.max_concurrent) == ("/srv/log", "auto", "0.0.0.0", 9000,
                                                                          "/srv/tune", 3)
    given = _submit_options(build_parser().parse_args(
        ["submit", "j.json", "--log-dir", "mine", "--address", "ray://h:10001", "--dashboard-port", "9100",
         "--max-concurrent", "1"]), settings)
    assert (given.log_dir, given.address, given.dashboard_port, given.max_concurrent) == ("mine", "ray://h:10001",
                                                                                          9100, 1)
    assert _submit_options(build_parser().parse_args(["submit", "j.json"]), Settings()).log_dir == "log"


def test_the_settings_command_prints_every_value_and_its_source(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "settings file: none" in out and all(f"{name} " in out for name in Settings.__dataclass_fields__)
    assert out.count("default") >= len(Settings.__dataclass_fields__)
    file = _yaml(tmp_path / "m.yaml", "data_root: /data/cinc2017\ngpus_per_task: 0.25\n")
    monkeypatch.setenv(ENV, str(file))
    assert main(["settings"]) == 0
    lines = {line.split("=")[0].strip(): line for line in capsys.readouterr().out.splitlines() if "=" in line}
    assert "/data/cinc2017" in lines["data_root"] and lines["data_root"].endswith(str(file))
    assert "0.25" in lines["gpus_per_task"] and lines["log_root"].endswith("default")
    assert main(["settings", "--settings", str(tmp_path / "nope.yaml")]) == 2


def test_job_and_model_files_may_be_yaml(tmp_path):
    model = ("model_name: CNN\nmodel_parameters:\n  n_channels_first: 4\n"
             "  growth_block_end: 4\n  n_conv_blocks: 2\n  kernel_size: [3, 3]\n  dilation_rates: [1]\n"
             "  strides_block_end: [2, 2]\n  max_pooling: false\ntraining_parameters:\n  learning_rate: 1e-3\n"
             "  max_epochs: 2\n")
    _yaml(tmp_path / "models" / "tiny.yaml", model)
    job_file = _yaml(tmp_path / "jobs" / "j.yaml", "job:\n  model: tiny\n  split: split_3_3_1\n  cvids: [0, 2]\n")
    _, tasks = plan(SubmitOptions(job_file=str(job_file)), tmp_path)
    assert [t.fold for t in tasks] == [0, 2] and tasks[0].model.training_parameters.learning_rate == 0.001
    bad_job = _yaml(tmp_path / "jobs" / "k.yaml", "job:\n  model: tiny\n  split: split_3_3_1\n  cvids:\n    - 0\n"
                    "    - 9\n")
    with pytest.raises(ConfigError, match=r"k\.yaml: line 6: \$\.job\.cvids\[1\]: fold 9 is outside"):
        plan(SubmitOptions(job_file=str(bad_job)), tmp_path)
    _yaml(tmp_path / "models" / "tiny.yaml", model + "  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"tiny\.yaml: line 13: \$\.training_parameters\.batch_size: must be"):
        plan(SubmitOptions(job_file=str(job_file)), tmp_path)
    broken = _yaml(tmp_path / "jobs" / "b.yaml", "job:\n  model: tiny\n  cvids: [0, 1\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: line \d: \$: invalid YAML"):
        plan(SubmitOptions(job_file=str(broken)), tmp_path)
    twice = _yaml(tmp_path / "jobs" / "t.yaml", "job:\n  model: tiny\n  model: tiny\n")
    with pytest.raises(ConfigError, match=r"t\.yaml: line 3: \$: key 'model' appears twice"):
        plan(SubmitOptions(job_file=str(twice)), tmp_path)
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    with pytest.raises(ConfigError, match="ambiguous"):
        plan(SubmitOptions(job_file=str(job_file)), tmp_path)


def test_yaml_merge_keys_work_and_what_is_not_plain_data_is_one_error(tmp_path, monkeypatch):
    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    merged = _yaml(tmp_path / "jobs" / "m.yaml", "base: &b\n  model: tiny\n  split: split_3_3_1\n  cvids: [0]\n"
                   "other:\n  <<: *b\n  cvids: [1]\n")
    _, tasks = plan(SubmitOptions(job_file=str(merged)), tmp_path)
    assert [(t.job, t.fold) for t in tasks] == [("base", 0), ("other", 1)]
    cases = {"j:\n  model: !!python/object:os.system x\n": r"line 2: \$: not plain data",
             "job: &a {model: m, x: *a}\n": r"line 1: \$: an alias refers to a node that contains it"}
    for i, (text, message) in enumerate(cases.items()):
        with pytest.raises(ConfigError, match=message):
            plan(SubmitOptions(job_file=str(_yaml(tmp_path / "jobs" / f"bad{i}.yaml", text))), tmp_path)
    _yaml(tmp_path / "jobs" / "typo.yaml", "job:\n  model: tiny\n  cvid: [0]\n")
    monkeypatch.chdir(tmp_path)
    for spelling in ("jobs/typo.yaml", "./jobs/typo.yaml", str(tmp_path / "jobs" / "typo.yaml")):
        with pytest.raises(ConfigError, match=r"line 3: \$\.job\.cvid: unknown key"):
            plan(SubmitOptions(job_file=spelling), tmp_path)

