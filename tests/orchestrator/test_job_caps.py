"""A job's max_concurrent: the searcher holds a job's next fold back while its cap is reached (pure), and
with real Ray two folds of a capped job never overlap, while another job's folds still run."""

import json

import pytest

from ecgcore.config.schema import ConfigError
from orchestrator.cli import main
from orchestrator.config.jobs import load_jobs
from tests.conftest import tiny_model, write_json

jobcaps = pytest.importorskip("orchestrator.run.jobcaps")


def _configs(*groups):
    return [{"spec": {"cap_group": g, "task": {"task_id": f"{g}/{i}"}}} for i, g in enumerate(groups)]


def _ids(configs):
    return [c["spec"]["task"]["task_id"] for c in configs]


def test_a_capped_job_waits_for_its_own_trials_only(tmp_path):
    caps = jobcaps.JobCaps(_configs("a", "a", "b", "a"), {"a": 1})
    first, second, third = caps.suggest("t1"), caps.suggest("t2"), caps.suggest("t3")
    assert _ids([first, second]) == ["a/0", "b/2"] and third is None  # a/1 waits for a/0; b is not capped
    caps.on_trial_complete("t2")  # b ending frees nothing for a
    assert caps.suggest("t4") is None
    caps.on_trial_complete("t1", error=True)  # failed for good: its slot is free again
    assert _ids([caps.suggest("t5")]) == ["a/1"]
    caps.on_trial_complete("t5")
    assert _ids([caps.suggest("t6")]) == ["a/3"] and caps.suggest("t7") == caps.FINISHED


def test_the_state_survives_save_and_restore(tmp_path):
    caps = jobcaps.JobCaps(_configs("a", "a", "a"), {"a": 2})
    caps.suggest("t1"), caps.suggest("t2")
    caps.save(str(tmp_path / "state.json"))
    again = jobcaps.JobCaps([], {})
    again.restore(str(tmp_path / "state.json"))
    assert again.suggest("t3") is None  # t1 and t2 still count as running (resumed by Tune itself)
    again.on_trial_complete("t2")
    assert _ids([again.suggest("t3")]) == ["a/2"]


def test_a_trial_that_failed_for_good_counts_again_after_resume(tmp_path):
    caps = jobcaps.JobCaps(_configs("a", "a", "a"), {"a": 1})
    caps.suggest("t1")
    caps.on_trial_complete("t1", error=True)  # failed for good: its slot is free in this submit
    assert _ids([caps.suggest("t2")]) == ["a/1"]
    caps.save(str(tmp_path / "state.json"))
    again = jobcaps.JobCaps([], {})
    again.restore(str(tmp_path / "state.json"))  # resume restarts t1 itself, and t2 runs on: both count
    again.on_trial_complete("t2")
    assert again.suggest("t3") is None
    again.on_trial_complete("t1")
    assert _ids([again.suggest("t3")]) == ["a/2"]


def test_max_concurrent_is_a_checked_job_key(tmp_path):
    job = {"model": "m", "split": "split_3_3_1", "cvids": [0], "max_concurrent": 0}
    with pytest.raises(ConfigError, match=r"\$\.j\.max_concurrent"):
        load_jobs(write_json(tmp_path / "j.json", {"j": job}))
    assert load_jobs(write_json(tmp_path / "k.json", {"j": {**job, "max_concurrent": 2}}))[0].config.max_concurrent == 2


@pytest.mark.slow
def test_two_folds_of_a_capped_job_never_overlap(tmp_path, synth_dir, ray_session):
    write_json(tmp_path / "models" / "tiny.json", tiny_model("CNN", max_epochs=3))
    jobs = {"capped": {"model": "tiny", "split": "split_3_3_1", "cvids": [0, 1], "log_en": False,
                       "max_concurrent": 1},
            "free": {"model": "tiny", "split": "split_3_3_1", "cvids": [0, 1], "log_en": False}}
    job_file = write_json(tmp_path / "jobs" / "j.json", jobs)
    assert main(["submit", str(job_file), "--data", str(synth_dir), "--log-dir", str(tmp_path / "log"),
                 "--cpus-per-task", "1", "--quiet"]) == 0
    spans = {}
    for fold in (tmp_path / "log" / "CNN").glob("*/fold*"):
        started = json.loads((fold / "attempt.json").read_text())["started"]
        spans[f"{fold.parent.name}/{fold.name}"] = (started, (fold / "scores.json").stat().st_mtime)
    assert len(spans) == 4
    # Without the cap both capped folds, first in task order, would start together on the 2 CPUs.
    (a0, a1), (b0, b1) = sorted([spans["capped/fold0"], spans["capped/fold1"]])
    assert a1 <= b0  # the second capped fold started after the first ended
