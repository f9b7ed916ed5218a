"""`submit --mlflow` for real: a tiny 2-fold job through Ray Tune into a local sqlite MLflow store, read back
through MlflowClient (run tree, tags, params, a metric history, scores, an artifact, the fold mean and std);
`resume` continues the same runs; an unreachable tracking server warns once and the job still finishes."""

import json
import statistics
import time
from types import SimpleNamespace

import pytest

from orchestrator.cli import main
from tests.conftest import tiny_model, write_json

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.slow
COMMIT = "0123abc+dirty"  # provenance's git commit, fixed: the test runs no git


def _job_file(base, folds, epochs):
    write_json(base / "models" / "tiny_cnn.json", tiny_model("CNN", max_epochs=epochs))
    return write_json(base / "jobs" / "tiny.json", {"cnn": {"model": "tiny_cnn", "split": "split_3_3_1",
                                                            "cvids": folds, "log_en": False, "max_retries": 0}})


def _submit(command, job_file, base, synth_dir, uri):
    return main([command, str(job_file), "--data", str(synth_dir), "--log-dir", str(base / "log"),
                 "--cpus-per-task", "1", "--quiet", "--mlflow", uri])


def _ids(job_dir) -> dict:
    return json.loads((job_dir / "mlflow.json").read_text())


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, synth_dir, ray_session):
    """The tiny job submitted with --mlflow; one fold fails at its last validation (no retries), and
    `resume` continues it from its checkpoint of epoch 1 in the restored Tune experiment."""
    from orchestrator.run import driver

    base = tmp_path_factory.mktemp("mlflow_e2e")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    job_file, job_dir = _job_file(base, [0, 1], 2), base / "log" / "CNN" / "cnn"
    run_tasks, fault = driver.run_tasks, {"raise_at_epoch": 2, "marker": str(base / "raised")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("orchestrator.plan.provenance.git_commit", lambda: COMMIT)
        mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        mp.setattr(driver, "run_tasks", lambda *args, **kw: run_tasks(*args, **kw, fault=fault))
        first = _submit("submit", job_file, base, synth_dir, uri)
        failed = next(k for k in (0, 1) if not (job_dir / f"fold{k}" / "scores.json").exists())
        client, before = MlflowClient(uri), _ids(job_dir)
        statuses = {name: client.get_run(run_id).info.status
                    for name, run_id in [("job", before["parent_run_id"]), *before["fold_run_ids"].items()]}
        mp.setattr(driver, "run_tasks", run_tasks)
        seen = _spy_completions(mp)
        resumed = _submit("resume", job_file, base, synth_dir, uri)
    return SimpleNamespace(base=base, client=client, job_dir=job_dir, ids=_ids(job_dir), codes=(first, resumed),
                           failed=failed, before=before, statuses=statuses, seen=seen)


def _spy_completions(mp) -> list[bool]:
    """For each trial completed, whether the tracker told was made for a resume: the restored Tuner must call
    this submit's callbacks, not those pickled with the first submit's experiment."""
    from orchestrator.run.tracking import MlflowCallback

    seen, complete = [], MlflowCallback.on_trial_complete

    def spy(self, *args, **kw):
        seen.append(self.tracker.resume)
        complete(self, *args, **kw)

    mp.setattr(MlflowCallback, "on_trial_complete", spy)
    return seen


def _scores(job_dir, fold):
    return json.loads((job_dir / f"fold{fold}" / "scores.json").read_text())


def test_the_run_tree(tracked):
    client, ids = tracked.client, tracked.ids
    assert tracked.codes == (1, 0)  # a fold failed; resume finished it
    experiment = client.get_experiment_by_name("tiny")  # the job file's name
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3
    parent = client.get_run(ids["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "cnn"
    tags = parent.data.tags
    assert (tags["job"], tags["architecture"], tags["split"]) == ("cnn", "CNN", "split_3_3_1")
    assert tags["job_file"] == str(tracked.base / "jobs" / "tiny.json") and tags["git_commit"] == COMMIT
    assert tags["mlflow.source.git.commit"] == COMMIT
    assert parent.data.params["model_name"] == "CNN"
    assert parent.data.params["training_parameters.max_epochs"] == "2"
    assert parent.data.params["model_parameters.kernel_size"] == "[3, 3]"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["fold0", "fold1"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert {r.info.run_id for r in children} == set(ids["fold_run_ids"].values())


def test_resume_continued_the_same_runs(tracked):
    assert tracked.seen == [True]  # the failed fold, finished by the restored experiment, told this submit's tracker
    assert tracked.ids == tracked.before
    failed, done = str(tracked.failed), str(1 - tracked.failed)
    assert tracked.statuses == {"job": "FAILED", failed: "FAILED", done: "FINISHED"}
    for fold in (failed, done):  # each epoch once: the failed attempt's and the restored trial's rows
        history = tracked.client.get_metric_history(tracked.ids["fold_run_ids"][fold], "train_loss")
        assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in tracked.client.list_artifacts(tracked.ids["fold_run_ids"][failed])}
    assert artifacts == {"error.txt", "hotlog.csv", "scores.json", "predictions.csv"}  # the failed attempt's trace


def test_a_fold_run_has_its_history_scores_and_files(tracked, tmp_path):
    client, fold = tracked.client, tracked.job_dir / f"fold{1 - tracked.failed}"  # the fold that did not fail
    run_id = tracked.ids["fold_run_ids"][fold.name.removeprefix("fold")]
    rows = [json.loads(line) for line in (fold / "validations.jsonl").read_text().splitlines()]
    history = client.get_metric_history(run_id, "valid_score")
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["valid_score"]) for r in rows]
    assert [m.step for m in history] == [1, 2]
    metrics = client.get_run(run_id).data.metrics
    scores = json.loads((fold / "scores.json").read_text())
    assert metrics["final_test_score"] == pytest.approx(scores["test"]["score"])
    assert metrics["final_epochs_run"] == scores["epochs_run"]
    assert {a.path for a in client.list_artifacts(run_id)} == {"hotlog.csv", "scores.json", "predictions.csv"}
    local = client.download_artifacts(run_id, "predictions.csv", str(tmp_path))
    assert open(local).read() == (fold / "predictions.csv").read_text()


def test_the_parent_has_the_fold_mean_and_std(tracked):
    client, parent = tracked.client, tracked.ids["parent_run_id"]
    metrics = client.get_run(parent).data.metrics
    tests = [_scores(tracked.job_dir, k)["test"]["score"] for k in (0, 1)]
    assert metrics["test_score_mean"] == pytest.approx(statistics.fmean(tests))
    assert metrics["test_score_std"] == pytest.approx(statistics.stdev(tests))
    assert metrics["folds"] == 2
    assert {a.path for a in client.list_artifacts(parent, "plots")} == {"plots/cnn_curves.png",
                                                                        "plots/cnn_confusion.png"}


def test_an_unreachable_server_warns_once_and_the_job_finishes(tmp_path, synth_dir, ray_session, capsys,
                                                              monkeypatch):
    monkeypatch.setattr("orchestrator.plan.provenance.git_commit", lambda: COMMIT)
    job_file = _job_file(tmp_path, [2], 1)
    started = time.monotonic()
    code = _submit("submit", job_file, tmp_path, synth_dir, "http://127.0.0.1:9")
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 0 and (tmp_path / "log" / "CNN" / "cnn" / "fold2" / "scores.json").exists()
    assert err.count("MLflow tracking of job cnn is off") == 1 and "http://127.0.0.1:9" in err
    assert not (tmp_path / "log" / "CNN" / "cnn" / "mlflow.json").exists()
    assert elapsed < 60
