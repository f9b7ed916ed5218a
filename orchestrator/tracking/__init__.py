"""MLflow tracking of a submit (`submit --mlflow URI`): which jobs are tracked where, and is the client there.

The package knows jobs, the log folder and MLflow, and nothing of Ray:
orchestrator/run/tracking.py forwards Tune's trial events on the driver to
`MlflowTracker` (orchestrator/tracking/mlflow_runs.py), which talks to the
store through orchestrator/tracking/store.py. No module here imports mlflow at
module level (store.py imports it when it connects), so a submit without
tracking, and every light command, runs without the optional `mlflow` extra.
"""

from __future__ import annotations

from ecgcore.errors import ProjectError

INSTALL = "pip install '.[mlflow]'"


def tracking_uri(job, overrides) -> str | None:
    """Where a job is tracked: submit --mlflow > the job's mlflow_tracking_uri > the settings' (with_settings
    filled the job's open key) > nowhere."""
    return overrides.mlflow_tracking_uri or job.config.mlflow_tracking_uri or None


def require_mlflow(jobs, overrides) -> None:
    """Refuse, before anything runs, a tracked submit on a machine without the MLflow client."""
    uris = sorted({uri for job in jobs if (uri := tracking_uri(job, overrides))})
    if not uris:
        return
    try:
        import mlflow.tracking  # noqa: F401  (the client; imported again where it is used)
    except ImportError as exc:
        raise ProjectError(f"MLflow tracking to {', '.join(uris)} (submit --mlflow, or mlflow_tracking_uri in the "
                           f"job or settings file) needs the MLflow client, the `mlflow` extra: {INSTALL} "
                           f"({exc})") from None
