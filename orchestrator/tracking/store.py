"""One MLflow tracking store, reached once, quickly, or not at all; and the few writes the tracker makes.

With MLflow's defaults an HTTP tracking server that is down costs minutes per
call: 7 retries with exponential backoff, each with a 120 s timeout.
`connect` therefore probes the store once with no retry and a 10 s timeout
(PROBE_ENV: a refused connection fails at once, a server that never answers
in 10 s; a fresh `mlflow server` may take seconds over its first request), and
leaves MLflow's own variables set to a bounded policy for the calls that
follow (BOUNDED_ENV: 2 retries, 1 s backoff factor, 10 s timeout; where the
environment already sets one, that value is kept), so a server that goes
away during a submit costs one bounded call (about 2 s refused, at most
about 35 s hung) before the tracker stops using it. Only the driver process
talks to the store.

A local sqlite store (`sqlite:///mlflow.db`) keeps a new experiment's
artifacts in `mlartifacts/` beside the database file: MLflow's own default
would be ./mlruns under whatever folder the submit runs from.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
BOUNDED_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
ARTIFACTS = "mlartifacts"  # beside a sqlite store's database file
# MLflow's limits per log_batch call, and on a parameter's value (mlflow.utils.validation).
MAX_METRICS, MAX_PARAMS, MAX_PARAM_LENGTH = 1000, 100, 6000
_SQLITE = "sqlite:///"
_UNSAFE_KEY = re.compile(r"[^\w\-. :/]")  # what MLflow refuses in a metric or parameter name


def absolute_uri(uri: str) -> str:
    """A local sqlite store as an absolute path, so `resume` from another folder finds the same database."""
    if uri.startswith(_SQLITE) and not uri.startswith(_SQLITE + "/") and ":memory:" not in uri:
        return _SQLITE + str(Path(uri[len(_SQLITE):]).resolve())
    return uri


def metric_name(text: str) -> str:
    """A class name as part of a metric name: CinC 2017's `~` is noise (as in TensorBoard), other odd
    characters become _."""
    return "noise" if text == "~" else _UNSAFE_KEY.sub("_", text)


def number(value) -> bool:
    """A finite int or float (not a bool): what is logged as a metric."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """os.environ with values set, restored after: MLflow reads its HTTP policy at every request."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class Store:
    """A connected store and the experiment the submit logs to."""

    uri: str
    client: object  # mlflow.tracking.MlflowClient
    experiment_id: str

    def create_run(self, name: str, tags: dict[str, str]) -> str:
        return self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id

    def status(self, run_id: str | None) -> str | None:
        """The run's status (RUNNING, FINISHED, FAILED, KILLED); None when it is gone or deleted."""
        from mlflow.exceptions import MlflowException

        if not run_id:
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return None if run.info.lifecycle_stage == "deleted" else run.info.status

    def set_status(self, run_id: str, status: str) -> None:
        if status == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, status=status)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for i in range(0, len(batch), MAX_METRICS):
            self.client.log_batch(run_id, metrics=batch[i:i + MAX_METRICS])

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        batch = [Param(key, value[:MAX_PARAM_LENGTH]) for key, value in params.items()]
        for i in range(0, len(batch), MAX_PARAMS):
            self.client.log_batch(run_id, params=batch[i:i + MAX_PARAMS])

    def steps(self, run_id: str, key: str) -> set[int]:
        """The steps at which the run has logged metric key."""
        return {m.step for m in self.client.get_metric_history(run_id, key)}

    def log_files(self, run_id: str, paths: list[Path], artifact_path: str | None = None) -> None:
        for path in paths:
            self.client.log_artifact(run_id, str(path), artifact_path)


def connect(uri: str, experiment: str) -> Store:
    """The store at uri with the experiment found or created; raises whatever MLflow raises when it cannot."""
    from mlflow.tracking import MlflowClient

    # The store's schema set-up (alembic) and MLflow's INFO lines would mix with the progress view.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    http = uri.startswith(("http://", "https://"))
    client = MlflowClient(tracking_uri=uri)
    with _environment(PROBE_ENV) if http else contextlib.nullcontext():
        found = client.get_experiment_by_name(experiment)
    if http:
        for key, value in BOUNDED_ENV.items():
            os.environ.setdefault(key, value)
    if found is None:
        location = None
        if uri.startswith(_SQLITE):
            location = (Path(uri[len(_SQLITE):]).parent / ARTIFACTS).resolve().as_uri()
        return Store(uri, client, client.create_experiment(experiment, artifact_location=location))
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return Store(uri, client, found.experiment_id)
