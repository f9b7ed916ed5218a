"""A submit's MLflow run tree: one parent run per job (a search variant is a job), one child run per fold.

Logged from the driver, never from the trials: trials may run on nodes with
no route to the tracking server, and the fold folder stays the source of
truth. `MlflowTracker` is told of trial events (orchestrator/run/tracking.py
forwards Tune's) and reads everything else from the log folder:
  parent run  tags job_file, job, architecture, split, track, kind,
              model_file, job_dir, git_commit (and MLflow's own
              mlflow.source.git.commit); a search variant also search (the job
              in the job file: its variants are sibling parents with one tag)
              and variant (its values); params: the resolved model, flattened
              (training_parameters.learning_rate, ...). Once every fold is
              finished: <final metric>_mean and _std over the folds
              (test_score_mean, test_score_std, ...), folds, and the job's
              plots (orchestrator/logdir/plots.py) under plots/.
  child run   run name fold<k>, tag mlflow.parentRunId; each validation row
              with step = epoch as Tune reports it, and at the end whatever
              validations.jsonl has that was not reported (each epoch once,
              so a retried trial re-reporting rows adds nothing); the final
              scores (final_test_score, final_test_f1_N, ...), the thresholds
              of multi-label jobs (threshold_<class>); artifacts hotlog.csv,
              scores.json, predictions.csv and any PNG of the fold folder; a
              failed fold: FAILED with its error.txt.
The run ids are kept in log/<arch>/<job>/mlflow.json. A log folder on object
storage is read through orchestrator.logdir.storage (a fold's files copied to
a temporary folder for as long as they are logged). `resume` continues those
runs (a fold finished and logged earlier is left as it is; one finished
without tracking is logged now); a fresh submit, which removes the old
results, starts new runs. A store that fails (down, unwritable) stops the
tracking of every job logging there for the rest of the submit, with one
warning per job; nothing raised here reaches the caller.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ecgcore.config.schema import to_plain
from orchestrator.logdir.reader import (
    ERROR,
    HOTLOG,
    MLFLOW_RUNS,
    PREDICTIONS,
    SCORES,
    FoldDir,
)
from orchestrator.logdir.storage import mounted, parent_of, read_json, write_json
from orchestrator.tracking import tracking_uri
from orchestrator.tracking.store import Store, absolute_uri, connect, metric_name, number

_ROW_EXTRAS = ("best_epoch", "learning_rate", "elapsed_s")  # logged beside the train_/valid_/test_ values
_FINAL_EXTRAS = ("best_epoch", "epochs_run", "elapsed_s")
EPOCH_KEY = "train_loss"  # in every validation row of every trainer: its history says which epochs are logged


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def row_metrics(row: dict) -> dict[str, float]:
    """A validation row's metrics: its train_/valid_/test_ numbers and best_epoch, learning_rate, elapsed_s.

    Tune's own keys in a reported result (training_iteration, time_total_s, ...) and the final report's
    final_* values are left out; so are per-class dicts and undefined numbers.
    """
    return {key: value for key, value in row.items()
            if (key in _ROW_EXTRAS or key.split("_", 1)[0] in ("train", "valid", "test") and "_" in key)
            and number(value)}


def final_metrics(scores: dict) -> dict[str, float]:
    """A finished fold's scores.json as metrics: final_<part>_<metric>, per-class final_<part>_f1_<class>,
    final_best_epoch, final_epochs_run, final_elapsed_s."""
    out = {}
    for part in ("train", "valid", "test"):
        for key, value in (scores.get(part) or {}).items():
            if isinstance(value, dict):
                out.update({f"final_{part}_{key}_{metric_name(c)}": v for c, v in value.items() if number(v)})
            elif number(value):
                out[f"final_{part}_{key}"] = value
    out.update({f"final_{key}": scores[key] for key in _FINAL_EXTRAS if number(scores.get(key))})
    return out


def threshold_metrics(scores: dict) -> dict[str, float]:
    """A multi-label track's decision thresholds, tuned on the validation fold: threshold_<class>."""
    return {f"threshold_{metric_name(c)}": v for c, v in (scores.get("thresholds") or {}).items() if number(v)}


def fold_aggregates(folds: list[dict]) -> dict[str, float]:
    """Mean and (sample) std over the folds of each final metric they all have, named without final_."""
    common = set.intersection(*(set(f) for f in folds)) if folds else set()
    out: dict[str, float] = {"folds": len(folds)}
    for key in sorted(common):
        values = [f[key] for f in folds]
        name = key.removeprefix("final_")
        out[f"{name}_mean"] = statistics.fmean(values)
        if len(values) > 1:  # ddof=1, as summarize
            out[f"{name}_std"] = statistics.stdev(values)
    return out


def flat_params(model: dict, prefix: str = "") -> dict[str, str]:
    """The model's sections flattened to dotted keys; values as JSON text (a string as itself)."""
    out = {}
    for key, value in model.items():
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[metric_name(f"{prefix}{key}")] = value if isinstance(value, str) else json.dumps(value)
    return out


@dataclass
class TrackedJob:
    """One tracked job: what its runs are tagged with, its fold folders, and the state of its runs."""

    name: str
    uri: str
    tags: dict[str, str]
    params: dict[str, str]
    job_dir: str  # a path or a URI, as the fold folders
    folds: dict[int, str]  # fold id -> fold folder
    on: bool = True
    parent: str | None = None
    concluded: bool = False  # the parent has its aggregates and is FINISHED
    runs: dict[int, str] = field(default_factory=dict)  # fold id -> child run id
    status: dict[int, str] = field(default_factory=dict)  # fold id -> the child run's status
    epochs: dict[int, set[int]] = field(default_factory=dict)  # fold id -> epochs logged to the child


def tracked_jobs(jobs, tasks, overrides, provenance: dict) -> list[TrackedJob]:
    """The submit's jobs that have a tracking URI (orchestrator.tracking.tracking_uri)."""
    out = []
    for job in jobs:
        uri = tracking_uri(job, overrides)
        mine = [t for t in tasks if t.job == job.name]
        if not uri or not mine:
            continue
        first, job_dir = mine[0], parent_of(mine[0].out_dir)
        tags = {"job_file": str(Path(job.file).resolve()), "job": job.name, "architecture": first.model.model_name,
                "split": first.split, "track": first.track, "kind": first.kind,
                "model_file": first.model_file, "job_dir": str(job_dir)}
        if provenance.get("git_commit"):
            tags.update({"git_commit": provenance["git_commit"], "mlflow.source.git.commit": provenance["git_commit"]})
        if job.variant is not None:
            tags.update({"search": job.job_name, "variant": json.dumps(job.variant)})
        out.append(TrackedJob(name=job.name, uri=absolute_uri(uri), tags=tags,
                              params=flat_params(to_plain(first.model)), job_dir=job_dir,
                              folds={t.fold: t.out_dir for t in mine}))
    return out


class MlflowTracker:
    """The run tree of a submit's tracked jobs, kept in step with trial events; never raises."""

    def __init__(self, jobs: list[TrackedJob], experiment: str, resume: bool,
                 warn: Callable[[str], None] = _stderr):
        self.jobs = {job.name: job for job in jobs}
        self.experiment, self.resume, self.warn = experiment, resume, warn
        self._stores: dict[str, Store] = {}

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks: the plain state goes, the stores' clients are made again where needed."""
        return {**self.__dict__, "_stores": {}}

    # Trial events, by task id ("<arch>/<job>/fold<k>").

    def start(self) -> None:
        """Open each job's parent run (a resumed job's own) and log the folds it has finished already."""
        for job in self.jobs.values():
            self._guarded(job, self._open_job, job)

    def fold_started(self, task_id: str) -> None:
        job, fold = self._fold(task_id)
        if job and job.status.get(fold) != "FINISHED":  # a finished fold's trial only reports it done
            self._guarded(job, self._start_fold, job, fold)

    def validation(self, task_id: str, row: dict) -> None:
        job, fold = self._fold(task_id)
        if job and job.status.get(fold) != "FINISHED":
            self._guarded(job, self._log_rows, job, fold, [row])

    def fold_finished(self, task_id: str) -> None:
        job, fold = self._fold(task_id)
        if job:
            self._guarded(job, self._finish_fold, job, fold)

    def fold_ended(self, task_id: str, status: str) -> None:
        """A fold that ends without a result: FAILED (its error.txt logged) or KILLED (stopped by a scheduler)."""
        job, fold = self._fold(task_id)
        if job and fold in job.runs and job.status.get(fold) == "RUNNING":
            self._guarded(job, self._end_fold, job, fold, status)

    def close(self) -> None:
        """The submit is over (or interrupted): runs still open end KILLED, a job with a failed fold FAILED."""
        for job in self.jobs.values():
            self._guarded(job, self._close_job, job)

    # Guarding: a failing store stops tracking there, never the submit.

    def _fold(self, task_id: str) -> tuple[TrackedJob | None, int]:
        arch_job, _, fold = task_id.rpartition("/fold")
        job = self.jobs.get(arch_job.split("/", 1)[-1])
        return (job, int(fold)) if job and job.on else (None, -1)

    def _guarded(self, job: TrackedJob, action, *args) -> None:
        if not job.on:
            return
        try:
            action(*args)
        except Exception as exc:  # anything MLflow, its HTTP or database layers raise
            self._store_failed(job.uri, exc)

    def _store_failed(self, uri: str, exc: Exception) -> None:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        for job in self.jobs.values():
            if job.uri == uri and job.on:
                job.on = False
                self.warn(f"warning: MLflow tracking of job {job.name} is off for the rest of this submit "
                          f"({uri}: {reason}); its fold logs under {job.job_dir} are complete")

    def _store(self, uri: str) -> Store:
        if uri not in self._stores:
            self._stores[uri] = connect(uri, self.experiment)
        return self._stores[uri]

    # The run tree.

    def _open_job(self, job: TrackedJob) -> None:
        store = self._store(job.uri)
        saved = read_json(job.job_dir, MLFLOW_RUNS) if self.resume else None
        parent = saved.get("parent_run_id") if saved and saved.get("tracking_uri") == job.uri else None
        status = store.status(parent)
        if status is None:
            job.parent = store.create_run(job.name, job.tags)
            store.log_params(job.parent, job.params)
        else:
            job.parent = parent
            self._reuse_children(store, job, saved.get("fold_run_ids", {}))
            # Concluded only if every fold of this submit is logged: a job given more folds since opens again.
            job.concluded = status == "FINISHED" and all(job.status.get(f) == "FINISHED" for f in job.folds)
            if not job.concluded and status != "RUNNING":
                store.set_status(parent, "RUNNING")
        self._save(job)
        for fold, folder in job.folds.items():
            if read_json(folder, SCORES) is not None:
                self._finish_fold(job, fold)

    def _reuse_children(self, store: Store, job: TrackedJob, run_ids: dict) -> None:
        for fold in job.folds:
            run_id = run_ids.get(str(fold))
            status = store.status(run_id)
            if status is not None:
                job.runs[fold], job.status[fold] = run_id, status
                job.epochs[fold] = store.steps(run_id, EPOCH_KEY)

    def _child(self, job: TrackedJob, fold: int) -> str:
        """The fold's run, made on first use."""
        if fold not in job.runs:
            tags = {"mlflow.parentRunId": job.parent, "job": job.name, "fold": str(fold),
                    "task_id": f"{job.tags['architecture']}/{job.name}/fold{fold}",
                    "fold_dir": str(job.folds[fold])}
            job.runs[fold] = self._store(job.uri).create_run(f"fold{fold}", tags)
            job.status[fold], job.epochs[fold] = "RUNNING", set()
            self._save(job)
        return job.runs[fold]

    def _start_fold(self, job: TrackedJob, fold: int) -> None:
        run_id = self._child(job, fold)
        if job.status[fold] != "RUNNING":  # a resumed fold's run, ended KILLED or FAILED by an earlier submit
            self._store(job.uri).set_status(run_id, "RUNNING")
            job.status[fold] = "RUNNING"

    def _log_rows(self, job: TrackedJob, fold: int, rows: list[dict]) -> None:
        run_id = self._child(job, fold)
        store = self._store(job.uri)
        for row in rows:
            epoch = row.get("epoch")
            if isinstance(epoch, int) and epoch not in job.epochs[fold]:  # a result without one is no validation
                store.log_metrics(run_id, row_metrics(row), step=epoch)
                job.epochs[fold].add(epoch)

    def _finish_fold(self, job: TrackedJob, fold: int) -> None:
        if job.status.get(fold) == "FINISHED":
            return
        with mounted(job.folds[fold]) as path:
            folder = FoldDir(path)
            scores = folder.scores()
            if scores is None:  # reported done, yet no result on disk: nothing to log
                return
            self._log_rows(job, fold, folder.validations())
            store, run_id = self._store(job.uri), job.runs[fold]
            store.log_metrics(run_id, {**final_metrics(scores), **threshold_metrics(scores)})
            store.log_files(run_id, [p for p in (folder.file(HOTLOG), folder.file(SCORES), folder.file(PREDICTIONS))
                                     if p.exists()] + sorted(folder.path.glob("*.png")))
        store.set_status(run_id, "FINISHED")
        job.status[fold] = "FINISHED"
        self._conclude(job)

    def _conclude(self, job: TrackedJob) -> None:
        """Once every fold of the job is finished: the parent's fold mean and std, its plots, FINISHED."""
        if job.concluded or any(job.status.get(fold) != "FINISHED" for fold in job.folds):
            return
        store = self._store(job.uri)
        folds = [final_metrics(read_json(folder, SCORES) or {}) for folder in job.folds.values()]
        store.log_metrics(job.parent, fold_aggregates(folds))
        from orchestrator.logdir.plots import plot_job  # matplotlib: only once a job is complete

        with tempfile.TemporaryDirectory(prefix="ecg-mlflow-plots-") as tmp, mounted(job.job_dir) as job_dir:
            written, _ = plot_job(job_dir, Path(tmp))
            store.log_files(job.parent, written, "plots")
        store.set_status(job.parent, "FINISHED")
        job.concluded = True

    def _end_fold(self, job: TrackedJob, fold: int, status: str) -> None:
        store, run_id = self._store(job.uri), job.runs[fold]
        if status == "FAILED":
            with mounted(job.folds[fold]) as path:
                if (path / ERROR).exists():
                    store.log_files(run_id, [path / ERROR])
        store.set_status(run_id, status)
        job.status[fold] = status

    def _close_job(self, job: TrackedJob) -> None:
        if job.concluded or job.parent is None:
            return
        store = self._store(job.uri)
        for fold, status in job.status.items():
            if status == "RUNNING":
                store.set_status(job.runs[fold], "KILLED")
                job.status[fold] = "KILLED"
        store.set_status(job.parent, "FAILED" if "FAILED" in job.status.values() else "KILLED")

    def _save(self, job: TrackedJob) -> None:
        write_json(job.job_dir, MLFLOW_RUNS, {
            "tracking_uri": job.uri, "experiment_id": self._store(job.uri).experiment_id,
            "parent_run_id": job.parent, "fold_run_ids": {str(fold): run for fold, run in sorted(job.runs.items())}})

