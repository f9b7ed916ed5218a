"""Machine settings: one optional YAML (or JSON) file instead of a hand-edited definitions.py.

Looked up from `--settings FILE`, then the ECG_ORCH_SETTINGS environment
variable, then ./orchestrator.yaml; the first one named is the one read (a
named file that does not exist is an error; ./orchestrator.yaml may be
absent). Every value is optional; the defaults are declared here, once.

Precedence, for every value: command line > job file > settings file >
defaults. The settings file only supplies values the job file and the
command line leave open: `with_settings` fills a job's open keys (data,
cpus_per_task, gpus_per_task, mlflow_tracking_uri) and the CLI fills its open
options from it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ecgcore.config.model import spec
from ecgcore.config.schema import ConfigError, documented, load_dataclass, read_document

ENV = "ECG_ORCH_SETTINGS"
LOCAL = "orchestrator.yaml"


@documented("settings.md")
@dataclass(frozen=True)
class Settings:
    data_root: str = spec("data/training2017", "dataset folder for jobs that name none (`data` key) when submit "
                                               "has no --data")
    log_root: str = spec("log", "where log/<arch>/<job>/fold<k>/ go (submit, status, summarize --log-dir)")
    cpus_per_task: float = spec(1.0, "CPUs per fold, for jobs without cpus_per_task", min=0.01)
    gpus_per_task: float | None = spec(None, "GPUs per fold, for jobs without gpus_per_task (null: 1 when the "
                                             "cluster has GPUs, else 0)", min=0.0)
    max_concurrent: int | None = spec(None, "folds running at once over all jobs of a submit (null: as many as "
                                            "the resources allow)", min=1)
    address: str | None = spec(None, "Ray cluster to join: auto, host:6379, ray://host:10001 or "
                                     "http://head:8265 (null: start a local Ray)")
    dashboard_host: str = spec("127.0.0.1", "where the local Ray dashboard listens (others get a warning)")
    dashboard_port: int | None = spec(None, "the local Ray dashboard's port (null: 8265, or the next free one; a "
                                            "port given here must be free)", min=1, max=65535)
    storage_path: str | None = spec(None, "Tune's experiment and checkpoints: a folder every node mounts or a "
                                          "URI (null: <log_root>/.tune)")
    mlflow_tracking_uri: str | None = spec(None, "MLflow tracking URI for jobs without mlflow_tracking_uri, when "
                                                 "submit has no --mlflow (null: no tracking)")


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    file: Path | None  # the settings file read, if any
    found_by: str  # how the file was chosen, or why there is none
    given: frozenset[str]  # the keys the file sets


def find_settings(cli_file: str | None, env: Mapping[str, str], cwd: Path) -> tuple[Path | None, str]:
    if cli_file:
        return Path(cli_file), "--settings"
    if env.get(ENV):
        return Path(env[ENV]), f"${ENV}"
    local = cwd / LOCAL
    if local.is_file():
        return local, f"./{LOCAL}"
    return None, f"no --settings, ${ENV} unset, no ./{LOCAL}"


def load_settings(cli_file: str | None = None, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Resolved:
    """The settings in force: the file found (checked like a job file) over the defaults."""
    file, found_by = find_settings(cli_file, os.environ if env is None else env, cwd or Path.cwd())
    if file is None:
        return Resolved(Settings(), None, found_by, frozenset())
    if not file.is_file():
        raise ConfigError(file, "$", f"settings file named by {found_by} does not exist")
    data = read_document(file)
    if data is None:  # an empty YAML file: every default
        data = {}
    return Resolved(load_dataclass(Settings, data, file), file, found_by,
                    frozenset(data) if isinstance(data, dict) else frozenset())


def with_settings(jobs: list, settings: Settings) -> list:
    """Jobs whose open keys (data, cpus_per_task, gpus_per_task, mlflow_tracking_uri) take the settings' values."""
    out = []
    for job in jobs:
        c = job.config
        config = replace(c, data=c.data if c.data is not None else settings.data_root,
                         cpus_per_task=c.cpus_per_task if c.cpus_per_task is not None else settings.cpus_per_task,
                         gpus_per_task=c.gpus_per_task if c.gpus_per_task is not None else settings.gpus_per_task,
                         mlflow_tracking_uri=c.mlflow_tracking_uri if c.mlflow_tracking_uri is not None
                         else settings.mlflow_tracking_uri)
        out.append(replace(job, config=config))
    return out


def report(resolved: Resolved) -> str:
    """Every value in force and where it came from (the `settings` command)."""
    where = f"{resolved.file} (chosen by {resolved.found_by})" if resolved.file else f"none ({resolved.found_by})"
    lines = [f"settings file: {where}"]
    fields = dataclasses.fields(Settings)
    width = max(len(f.name) for f in fields)
    for f in fields:
        value = getattr(resolved.settings, f.name)
        source = str(resolved.file) if f.name in resolved.given else "default"
        lines.append(f"  {f.name:<{width}} = {_show(value):<24} {source}")
    lines.append("precedence: command line > job file > settings file > defaults")
    return "\n".join(lines)


def _show(value) -> str:
    return "null" if value is None else str(value)
