"""The MLflow tracker without Ray: hand-made fold folders logged to a real sqlite store, read back through
MlflowClient (runs, nesting, metric histories, artifacts); resume, a failed fold, a store that is down or
fails mid-submit; where the tracking URI comes from; a submit without the mlflow extra."""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from pathlib import Path

import pytest

from orchestrator.tracking.mlflow_runs import MlflowTracker, TrackedJob, final_metrics, row_metrics
from tests.conftest import tiny_model, write_json
from tests.orchestrator.fake_runs import write_job

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

EPOCHS = 3


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One sqlite store for the module: creating its schema takes seconds; each test has its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _rows(fold: int) -> list[dict]:
    return [{"epoch": e, "best_epoch": e, "train_loss": 1.0 / e + fold, "valid_score": 0.1 * e + fold / 10,
             "valid_f1": {"N": 0.5}, "learning_rate": 0.001, "elapsed_s": 2.0 * e} for e in range(1, EPOCHS + 1)]


def _job(tmp_path: Path, name: str, uri: str, folds=(0, 1)) -> TrackedJob:
    """A tracked job over fold folders with job.json, scores.json and predictions.csv (fake_runs), not yet
    finished: scores.json is set aside until _finish is called."""
    log = tmp_path / "log"
    write_job(log, "CNN", name, [0.1 + 0.1 * k for k in folds], seed=len(name), folds=list(folds))
    job_dir = log / "CNN" / name
    for k in folds:
        fold = job_dir / f"fold{k}"
        (fold / "scores.json").rename(fold / "scores.done")
        (fold / "validations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(k)))
        with open(fold / "hotlog.csv", "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["epoch", "best_epoch", "train_loss", "valid_score", "learning_rate", "elapsed_s"])
            out.writerows([r[c] for c in ("epoch", "best_epoch", "train_loss", "valid_score", "learning_rate",
                                          "elapsed_s")] for r in _rows(k))
    return TrackedJob(name=name, uri=uri, tags={"job": name, "architecture": "CNN", "split": "split_5_6_14"},
                      params={"training_parameters.learning_rate": "0.001"}, job_dir=job_dir,
                      folds={k: job_dir / f"fold{k}" for k in folds})


def _finish(job: TrackedJob, fold: int) -> dict:
    path = job.folds[fold]
    (path / "scores.done").rename(path / "scores.json")
    return json.loads((path / "scores.json").read_text())


def _tracker(jobs, experiment: str, resume=False) -> tuple[MlflowTracker, list[str]]:
    warnings: list[str] = []
    tracker = MlflowTracker(jobs, experiment, resume, warn=warnings.append)
    tracker.start()
    return tracker, warnings


def _saved(job: TrackedJob) -> dict:
    return json.loads((job.job_dir / "mlflow.json").read_text())


def _task(job: TrackedJob, fold: int) -> str:
    return f"CNN/{job.name}/fold{fold}"


def test_run_tree_metrics_and_artifacts(tmp_path, store_uri):
    job = _job(tmp_path, "tree", store_uri)
    tracker, warnings = _tracker([job], "tree")
    client = MlflowClient(store_uri)
    scores = {}
    for k in (0, 1):
        tracker.fold_started(_task(job, k))
        for row in _rows(k)[:2]:  # as Tune reports them, with its own keys beside the row's
            tracker.validation(_task(job, k), {**row, "training_iteration": row["epoch"], "time_total_s": 1.0})
        scores[k] = _finish(job, k)
        tracker.fold_finished(_task(job, k))
        if k == 0:
            assert client.get_run(_saved(job)["parent_run_id"]).info.status == "RUNNING"  # fold 1 still runs
    tracker.close()
    assert warnings == []
    ids = _saved(job)
    parent = client.get_run(ids["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["split"] == "split_5_6_14"
    assert parent.data.params == {"training_parameters.learning_rate": "0.001"}
    experiment = client.get_experiment_by_name("tree")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {c.info.run_id for c in children} == set(ids["fold_run_ids"].values())
    assert {c.info.run_name for c in children} == {"fold0", "fold1"}
    child = client.get_run(ids["fold_run_ids"]["1"])
    history = client.get_metric_history(child.info.run_id, "valid_score")
    # Epochs 1-2 reported live, epoch 3 only in validations.jsonl: each logged once, at step = epoch.
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["valid_score"]) for r in _rows(1)]
    assert "training_iteration" not in child.data.metrics and "valid_f1" not in child.data.metrics
    assert child.data.metrics["final_test_score"] == pytest.approx(scores[1]["test"]["score"])
    assert child.data.metrics["final_test_f1_noise"] == pytest.approx(scores[1]["test"]["f1"]["~"])
    local = Path(client.download_artifacts(child.info.run_id, "scores.json", str(tmp_path / "down")))
    assert local.read_text() == (job.folds[1] / "scores.json").read_text()
    assert {a.path for a in client.list_artifacts(child.info.run_id)} >= {"hotlog.csv", "predictions.csv"}
    tests = [s["test"]["score"] for s in scores.values()]
    assert parent.data.metrics["test_score_mean"] == pytest.approx(statistics.fmean(tests))
    assert parent.data.metrics["test_score_std"] == pytest.approx(statistics.stdev(tests))
    assert parent.data.metrics["folds"] == 2
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        "plots/tree_curves.png", "plots/tree_confusion.png"}


def test_resume_continues_the_same_runs(tmp_path, store_uri):
    job = _job(tmp_path, "again", store_uri)
    tracker, _ = _tracker([job], "again")
    tracker.fold_started(_task(job, 0))
    _finish(job, 0)
    tracker.fold_finished(_task(job, 0))
    tracker.fold_started(_task(job, 1))
    tracker.validation(_task(job, 1), _rows(1)[0])
    tracker.close()  # interrupted
    first = _saved(job)
    client = MlflowClient(store_uri)
    assert client.get_run(first["parent_run_id"]).info.status == "KILLED"
    assert client.get_run(first["fold_run_ids"]["1"]).info.status == "KILLED"

    job = TrackedJob(name=job.name, uri=job.uri, tags=job.tags, params=job.params, job_dir=job.job_dir,
                     folds=job.folds)  # the same job as a new process (resume) sees it
    resumed, warnings = _tracker([job], "again", resume=True)
    assert client.get_run(first["parent_run_id"]).info.status == "RUNNING"
    resumed.fold_started(_task(job, 1))
    for row in _rows(1):  # the retried trial reports epoch 1 again
        resumed.validation(_task(job, 1), row)
    _finish(job, 1)
    resumed.fold_finished(_task(job, 1))
    assert warnings == [] and _saved(job) == first
    history = client.get_metric_history(first["fold_run_ids"]["1"], "train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert client.get_run(first["parent_run_id"]).info.status == "FINISHED"
    assert len(client.search_runs([client.get_experiment_by_name("again").experiment_id])) == 3

    fresh, _ = _tracker([job], "again", resume=False)  # a fresh submit: new runs
    assert _saved(job)["parent_run_id"] != first["parent_run_id"]


def test_failed_fold_and_resume_of_an_untracked_run(tmp_path, store_uri):
    job = _job(tmp_path, "fails", store_uri)
    _finish(job, 0)  # finished by an earlier submit without tracking: logged when the tracker starts
    tracker, _ = _tracker([job], "fails", resume=True)
    client = MlflowClient(store_uri)
    fold0 = _saved(job)["fold_run_ids"]["0"]
    assert client.get_run(fold0).info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(fold0, "valid_score")] == [1, 2, 3]
    tracker.fold_started(_task(job, 1))
    (job.folds[1] / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    tracker.fold_ended(_task(job, 1), "FAILED")
    tracker.close()
    ids = _saved(job)
    assert client.get_run(ids["fold_run_ids"]["1"]).info.status == "FAILED"
    assert [a.path for a in client.list_artifacts(ids["fold_run_ids"]["1"])] == ["error.txt"]
    assert client.get_run(ids["parent_run_id"]).info.status == "FAILED"


def test_unreachable_server_warns_once_per_job_in_little_time(tmp_path):
    jobs = [_job(tmp_path, name, "http://127.0.0.1:9") for name in ("a", "b")]
    started = time.monotonic()
    tracker, warnings = _tracker(jobs, "down")
    for job in jobs:
        tracker.fold_started(_task(job, 0))
        tracker.validation(_task(job, 0), _rows(0)[0])
        _finish(job, 0)
        tracker.fold_finished(_task(job, 0))
    tracker.close()
    assert time.monotonic() - started < 5
    assert len(warnings) == 2 and all("http://127.0.0.1:9" in w for w in warnings)
    assert "job a " in warnings[0] and "job b " in warnings[1]
    assert not (jobs[0].job_dir / "mlflow.json").exists()


def test_a_store_failing_mid_submit_stops_its_jobs_quietly(tmp_path, store_uri):
    jobs = [_job(tmp_path, name, store_uri) for name in ("x", "y")]
    tracker, warnings = _tracker(jobs, "flaky")
    tracker._stores[store_uri].client.log_batch = _raise  # the store goes away
    tracker.validation(_task(jobs[0], 0), _rows(0)[0])
    tracker.validation(_task(jobs[1], 0), _rows(0)[0])
    tracker.close()
    assert len(warnings) == 2 and "database is gone" in warnings[0]


def _raise(*args, **kwargs):
    raise RuntimeError("database is gone")


def test_row_and_final_metrics():
    assert row_metrics({"epoch": 2, "best_epoch": 1, "train_loss": 0.5, "valid_score": float("nan"),
                        "test_auroc": 0.7, "training_iteration": 2, "final_test_score": 0.8, "done": False,
                        "valid_f1": {"N": 1.0}}) == {"best_epoch": 1, "train_loss": 0.5, "test_auroc": 0.7}
    scores = {"test": {"score": 0.5, "f1": {"N": 0.9, "~": None}, "confusion": [[1]]}, "epochs_run": 4,
              "thresholds": {"AF": 0.3}}
    assert final_metrics(scores) == {"final_test_score": 0.5, "final_test_f1_N": 0.9, "final_epochs_run": 4}


def test_search_variants_are_sibling_parents_grouped_by_a_tag(tmp_path, store_uri, monkeypatch):
    from orchestrator.commands.submit import SubmitOptions, plan
    from orchestrator.plan.expand import Overrides
    from orchestrator.tracking.mlflow_runs import tracked_jobs

    write_json(tmp_path / "models" / "tiny.json", tiny_model(learning_rate={"grid": [0.001, 0.01]}))
    job_file = write_json(tmp_path / "jobs" / "j.json", {"lr": {"model": "tiny", "split": "split_3_3_1",
                                                                "cvids": [0, 1]}})
    monkeypatch.chdir(tmp_path)
    overrides = Overrides(mlflow_tracking_uri="sqlite:///relative.db")
    jobs, tasks = plan(SubmitOptions(job_file=str(job_file), log_dir="log", overrides=overrides), tmp_path)
    tracked = tracked_jobs(jobs, tasks, overrides, {"git_commit": "abc123"})
    assert [t.name for t in tracked] == ["lr__learning_rate-0.001", "lr__learning_rate-0.01"]
    assert tracked[0].uri == f"sqlite:///{tmp_path / 'relative.db'}"  # resume from elsewhere finds it
    assert tracked[1].tags["search"] == "lr" and json.loads(tracked[1].tags["variant"]) == {
        "training_parameters.learning_rate": 0.01}
    assert tracked[1].params["training_parameters.learning_rate"] == "0.01"
    assert tracked[0].tags["git_commit"] == tracked[0].tags["mlflow.source.git.commit"] == "abc123"
    variant = tmp_path / "log" / "CNN" / "lr__learning_rate-0.001"
    assert tracked[0].folds == {k: str(variant / f"fold{k}") for k in (0, 1)}
    for job in tracked:
        job.uri = store_uri
        Path(job.job_dir).mkdir(parents=True)
    _tracker(tracked, "search")
    client = MlflowClient(store_uri)
    parents = client.search_runs([client.get_experiment_by_name("search").experiment_id], "tags.search = 'lr'")
    assert sorted(r.info.run_name for r in parents) == ["lr__learning_rate-0.001", "lr__learning_rate-0.01"]
    assert all("mlflow.parentRunId" not in r.data.tags for r in parents)


def test_tracking_uri_precedence(tmp_path):
    from orchestrator.config.jobs import load_jobs
    from orchestrator.config.settings import Settings, with_settings
    from orchestrator.plan.expand import Overrides
    from orchestrator.tracking import tracking_uri

    job_file = write_json(tmp_path / "jobs.json", {
        "own": {"model": "m", "split": "split_5_6_14", "cvids": [0], "mlflow_tracking_uri": "sqlite:///job.db"},
        "open": {"model": "m", "split": "split_5_6_14", "cvids": [0]}})
    jobs = load_jobs(job_file)
    assert [tracking_uri(j, Overrides()) for j in jobs] == ["sqlite:///job.db", None]  # default: off
    jobs = with_settings(jobs, Settings(mlflow_tracking_uri="http://settings:5000"))
    assert [tracking_uri(j, Overrides()) for j in jobs] == ["sqlite:///job.db", "http://settings:5000"]
    cli = Overrides(mlflow_tracking_uri="http://cli:5000")
    assert [tracking_uri(j, cli) for j in jobs] == ["http://cli:5000", "http://cli:5000"]


def test_without_the_extra_mlflow_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main

    write_json(tmp_path / "models" / "tiny.json", tiny_model())
    job_file = write_json(tmp_path / "jobs" / "j.json", {"j": {"model": "tiny", "split": "split_3_3_1",
                                                               "cvids": [0]}})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    code = main(["submit", str(job_file), "--mlflow", "sqlite:///x.db", "--log-dir", str(tmp_path / "log"),
                 "--data", str(tmp_path / "no-data")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install '.[mlflow]'" in err and "sqlite:///x.db" in err
    assert not (tmp_path / "log").exists()
