"""The Tune side of MLflow tracking: trial events on the driver, forwarded to orchestrator.tracking.mlflow_runs.

Tune calls these hooks in its event loop on the driver, so the tracker logs
from there and never from a trial (whose node may have no route to the
tracking server). Every validation a trial reports (TuneFoldLog, in
orchestrator/run/trial.py) is logged as it arrives; a finished fold is read
back from its folder. The tracker catches everything its store raises, so
nothing from MLflow reaches Tune.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ray import tune

from orchestrator.run.driver import trial_task_id


class MlflowCallback(tune.Callback):
    def __init__(self, tracker):
        self.tracker = tracker

    def on_trial_start(self, iteration, trials, trial, **info):
        self.tracker.fold_started(trial_task_id(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not result.get("fold_done"):  # the final report: on_trial_complete reads the fold folder
            # the whole validation row (orchestrator.run.trial.TUNE_KEYS: Tune itself gets a few numbers)
            self.tracker.validation(trial_task_id(trial), json.loads(result["row"]) if "row" in result else result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if (trial.last_result or {}).get("fold_done"):
            self.tracker.fold_finished(trial_task_id(trial))
        else:  # stopped early by the job's scheduler (ASHA)
            self.tracker.fold_ended(trial_task_id(trial), "KILLED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.tracker.fold_ended(trial_task_id(trial), "FAILED")  # out of retries

    def on_experiment_end(self, trials, **info):
        self.tracker.close()


def tracking_callbacks(tasks, jobs, overrides, provenance: dict, resume: bool,
                       say: Callable[[str], None] = print) -> list[tune.Callback]:
    """[the MLflow callback] when a job is tracked, its parent runs open; [] when none is.

    The experiment is $MLFLOW_EXPERIMENT_NAME (MLflow's own variable), else the job file's name.
    """
    from orchestrator.tracking.mlflow_runs import MlflowTracker, tracked_jobs

    tracked = tracked_jobs(jobs, tasks, overrides, provenance)
    if not tracked:
        return []
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or Path(tracked[0].tags["job_file"]).stem
    tracker = MlflowTracker(tracked, experiment, resume)
    tracker.start()
    for uri in sorted({job.uri for job in tracked if job.on}):
        names = [job.name for job in tracked if job.uri == uri and job.on]
        say(f"MLflow: {len(names)} job(s) tracked in experiment {experiment!r} at {uri}")
    return [MlflowCallback(tracker)]
