"""Search spaces in model files: checked at load, expanded into stably named variants (pure, no Ray),
previewed by --dry-run; and with real Ray, a grid of 2 learning rates x 2 folds ranked by summarize."""

import json

import pytest

from ecgcore.config.schema import ConfigError, check_name
from orchestrator.cli import main
from orchestrator.commands.submit import SubmitOptions, plan
from orchestrator.config.jobs import load_jobs
from orchestrator.config.search import assignments, find_spaces
from tests.conftest import tiny_model, write_json


def files(tmp_path, model: dict, job: dict):
    write_json(tmp_path / "models" / "tiny.json", model)
    return write_json(tmp_path / "jobs" / "j.json", {"job": {"model": "tiny", "split": "split_3_3_1", **job}})


def spaced(**training):
    model = tiny_model()
    model["training_parameters"].update(training)
    return model


def planned(tmp_path, model, **job):
    return plan(SubmitOptions(job_file=str(files(tmp_path, model, {"cvids": [0, 1], **job}))), tmp_path)


def test_a_grid_gives_one_variant_per_value_with_readable_names(tmp_path):
    jobs, tasks = planned(tmp_path, spaced(learning_rate={"grid": [0.001, 0.003]}, batch_size={"grid": [8, 16]}))
    names = sorted(j.name for j in jobs)
    # keys in the model file's order (batch_size comes first in training_parameters)
    assert names == ["job__batch_size-16_learning_rate-0.001", "job__batch_size-16_learning_rate-0.003",
                     "job__batch_size-8_learning_rate-0.001", "job__batch_size-8_learning_rate-0.003"]
    assert len(tasks) == 8 and all(t.task_id.startswith("CNN/job__") for t in tasks)
    by_name = {t.job: t.model.training_parameters for t in tasks}
    assert by_name["job__batch_size-8_learning_rate-0.003"].learning_rate == 0.003
    assert by_name["job__batch_size-8_learning_rate-0.003"].batch_size == 8
    for name in names:
        check_name(name, "j.json", "$", "variant")  # plain enough to be a folder name


def test_drawn_values_are_stable_and_differ_between_samples(tmp_path):
    model = spaced(learning_rate={"loguniform": [1e-4, 1e-2]}, batch_size={"choice": [8, 16, 32]},
                   seed={"randint": [0, 100]})
    first, _ = planned(tmp_path, model, num_samples=4)
    again, _ = planned(tmp_path, model, num_samples=4)
    assert [j.name for j in first] == [j.name for j in again]
    assert len({j.name for j in first}) == 4 and all(j.name.startswith("job__s") for j in first)
    rates = [j.model.training_parameters.learning_rate for j in first]
    assert all(1e-4 <= r <= 1e-2 for r in rates) and len(set(rates)) == 4
    assert all(j.model.training_parameters.batch_size in (8, 16, 32) for j in first)


def test_grid_times_samples():
    spaces = find_spaces({"a": {"grid": [1, 2, 3]}, "b": {"uniform": [0.0, 1.0]}}, "m.json")
    combos = assignments(spaces, 2, "job")
    assert len(combos) == 6 and [k for k, _ in combos] == [0, 1] * 3


@pytest.mark.parametrize("space, path, message", [
    ({"grid": []}, "$.training_parameters.learning_rate.grid", "non-empty list"),
    ({"uniform": [1, 0]}, "$.training_parameters.learning_rate.uniform", "low < high"),
    ({"loguniform": [0, 1]}, "$.training_parameters.learning_rate.loguniform", "low > 0"),
    ({"grid": [0.1, "fast"]}, "$.training_parameters.learning_rate.grid[1]", "expected a number"),
    ({"grid": [0.1, -1]}, "$.training_parameters.learning_rate.grid[1]", "must be at least 0"),
])
def test_bad_spaces_name_the_file_and_json_path(tmp_path, space, path, message):
    with pytest.raises(ConfigError) as err:
        planned(tmp_path, spaced(learning_rate=space))
    assert err.value.path == path and message in err.value.detail and err.value.file.endswith("tiny.json")


def test_a_space_on_a_choice_field_checks_every_candidate(tmp_path):
    with pytest.raises(ConfigError, match=r"optimizer\.choice\[1\]: 'sgd' is not one of"):
        planned(tmp_path, spaced(optimizer={"choice": ["adam", "sgd"]}))


def test_dry_run_prints_the_variants_and_the_space(tmp_path, capsys):
    job_file = files(tmp_path, spaced(learning_rate={"loguniform": [1e-4, 1e-2]}), {"cvids": [0], "num_samples": 2})
    assert main(["submit", str(job_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "search job: 2 variant(s) of model 'tiny', 2 draw(s) per grid point" in out
    assert "space $.training_parameters.learning_rate loguniform [0.0001, 0.01]" in out
    assert out.count("CNN/job__s") == 2


def test_num_samples_and_scheduler_are_job_keys(tmp_path):
    job_file = files(tmp_path, tiny_model(), {"cvids": [0], "num_samples": 3,
                                              "scheduler": {"type": "asha", "grace_period": 2}})
    job = load_jobs(job_file)[0]
    assert job.config.num_samples == 3 and job.config.scheduler.grace_period == 2
    bad = files(tmp_path, tiny_model(), {"cvids": [0], "scheduler": {"type": "hyperband"}})
    with pytest.raises(ConfigError, match=r"\$\.job\.scheduler\.type: 'hyperband' is not one of"):
        load_jobs(bad)


@pytest.mark.slow
def test_a_grid_of_two_learning_rates_by_two_folds_is_ranked(tmp_path, synth_dir, ray_session, capsys):
    job_file = files(tmp_path, spaced(learning_rate={"grid": [0.001, 0.01]}), {"cvids": [0, 1], "log_en": False})
    assert main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(tmp_path / "log")]) == 0
    variants = sorted(p.name for p in (tmp_path / "log" / "CNN").iterdir() if p.is_dir())
    assert variants == ["job__learning_rate-0.001", "job__learning_rate-0.01"]
    for variant in variants:
        for k in (0, 1):
            fold = tmp_path / "log" / "CNN" / variant / f"fold{k}"
            assert (fold / "scores.json").exists()
            job = json.loads((fold / "job.json").read_text())
            assert job["variant"] == {"training_parameters.learning_rate": float(variant.split("-", 1)[1])}
    capsys.readouterr()
    assert main(["summarize", "CNN", "--log-dir", str(tmp_path / "log")]) == 0
    out = capsys.readouterr().out
    assert "search job: variants ranked by mean CV score" in out
    ranking = json.loads((tmp_path / "log" / "CNN" / "summary.json").read_text())["rankings"]["job"]
    means = [json.loads((tmp_path / "log" / "CNN" / "summary.json").read_text())["jobs"][v]["mean"]["score"]
             for v in ranking]
    assert sorted(ranking) == variants and means == sorted(means, reverse=True)
    assert out.index(f"1. {ranking[0]}") < out.index(f"2. {ranking[1]}")


@pytest.mark.slow
def test_an_asha_job_runs_through_tune(tmp_path, synth_dir, ray_session, capsys):
    model = spaced(learning_rate={"grid": [0.0001, 0.001, 0.01]}, max_epochs=4)
    job_file = files(tmp_path, model, {"cvids": [0], "log_en": False,
                                       "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2}})
    code = main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(tmp_path / "log"),
                 "--cpus-per-task", "1"])
    out = capsys.readouterr().out
    assert code == 0
    finished = len(list((tmp_path / "log" / "CNN").glob("*/fold0/scores.json")))
    stopped = out.count("stopped early by the scheduler")
    assert finished >= 1 and finished + stopped == 3
