"""The trial worker: one fold of one job inside a Ray Tune trial.

Each trial gets its task as a plain dict (visible in the dashboard and in
params.json), rebuilds the Task, and calls ecgcore's `train_task` with a
FoldLog that also reports every validation to Tune, with a `tune.Checkpoint`
of the training state. A failed trial is retried by Tune from its last
checkpoint: `tune.get_checkpoint()` gives the state back, the fold log drops
the rows after it, and training continues. Every path is absolute because
trials run in their own cwd. A fold of a job with workers_per_task > 1 is
trained by several processes through Ray Train (orchestrator.run.ddp); its
trial only starts them and reports the fold's end. A fold folder on object
storage is written through a local stage (orchestrator.logdir.writer); a
fine-tuning checkpoint or a stack's part folds there are downloaded first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import ray
import torch
from ray import tune

from ecgcore.config.modelfile import task_from_dict
from ecgcore.config.task import Task
from ecgcore.io.cache import read_records
from ecgcore.training.distributed import Replicas
from ecgcore.training.train import train_task
from orchestrator.logdir.reader import BEST_MODEL, MODEL, SCORES
from orchestrator.logdir.runstate import finished
from orchestrator.logdir.storage import Remote, is_uri, name_of, parent_of, read_json
from orchestrator.logdir.writer import FoldLog


def node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _tune_report(metrics: dict, checkpoint_dir: str | None) -> None:
    tune.report(metrics, checkpoint=None if checkpoint_dir is None else tune.Checkpoint.from_directory(checkpoint_dir))


# The numbers of a validation row Tune is given (the progress view, ASHA's valid_score): Tune tracks every number
# of every result per trial (minimum, maximum, windows), which with a whole row of per-class values grew its
# experiment state by ~10 KB a trial. The whole row travels as one JSON string, "row" (MLflow logs it from there).
TUNE_KEYS = ("epoch", "best_epoch", "train_loss", "valid_score", "valid_loss", "test_score", "learning_rate",
             "elapsed_s")


class TuneFoldLog(FoldLog):
    """FoldLog that also reports each validation to Ray Tune, with a checkpoint to retry from.

    report(metrics, checkpoint_dir) sends them: to Tune from a trial, to Ray Train from a DDP
    fold's rank 0 (which forwards them to Tune).
    fault (tests only, never set by the CLI): {"raise_at_epoch": N, "marker": path} raises once,
    after the row of validation N is written, to exercise a retry.
    """

    def __init__(self, task, job, provenance, fault: dict | None = None, report=_tune_report):
        super().__init__(task, job, provenance)
        self.fault, self.row, self.report = fault, None, report

    def open(self, resume: dict | None = None, placement: dict | None = None) -> None:
        super().open(resume, attempt_extra={"ray_node_id": node_id(), **(placement or {})})

    def on_validation(self, row: dict) -> None:
        super().on_validation(row)
        self.row = {**{k: row[k] for k in TUNE_KEYS if k in row},
                    "row": json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)})}
        if self.fault and row["epoch"] == self.fault["raise_at_epoch"] and not Path(self.fault["marker"]).exists():
            Path(self.fault["marker"]).write_text("raised once")
            raise RuntimeError(f"injected fault at validation {row['epoch']}")

    def on_checkpoint(self, state: dict) -> None:
        # the node with the row: should the trial fail, the driver can tell whether its node was lost
        metrics = {**self.row, "node_id": node_id()}
        if self.row["epoch"] >= self.task.max_epochs:  # the last epoch: the fold ends now, nothing to retry from
            self.report(metrics, None)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, Path(tmp) / CHECKPOINT_FILE)  # EpochLoop.state(): already on the CPU
            self.report(metrics, tmp)


CHECKPOINT_FILE = "state.pt"


def restored_state(checkpoint) -> dict | None:
    """The training state of a retried fold's last checkpoint (Tune's or Ray Train's); None: a fresh start."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)


def run_trial(config: dict, shared: dict | None = None, book: list | None = None) -> None:
    """Tune function trainable: one fold of one job, continued from its checkpoint on a retry.

    config: Tune's (the task id, resources); book: [reference to the driver's trial book]
    (orchestrator.run.driver.trial_book), whose entry for the task completes it. A fold whose scores.json
    already holds this configuration's result (a resumed submit whose experiment state lagged behind) is
    reported done without training again; a fresh submit removes those files first.
    """
    quiet_ray_loggers()
    config = full_config(config, book_of(book))
    spec = config["spec"]
    task = task_from_dict(spec["task"])
    if finished(task):
        scores = read_json(task.out_dir, SCORES)
        tune.report({"epoch": scores["epochs_run"], **_final(task, scores), "fold_done": True, "skipped": True})
        return
    if spec["resources"].get("workers", 1) > 1:
        from orchestrator.run.ddp import train_replicated  # Ray Train: only for DDP folds

        scores = train_replicated(config, task, prepared(spec, shared))
    else:
        parts = {name: prepared({"data_key": key, "cache_file": spec["part_files"][name]}, shared)
                 for name, key in spec.get("part_keys", {}).items()}
        scores = train_fold(config, task, prepared(spec, shared), parts, restored_state(tune.get_checkpoint()),
                            gpu_placement())
    tune.report({"epoch": scores["epochs_run"], **_final(task, scores), "fold_done": True})


_BOOKS: dict[str, dict] = {}  # this actor's trial book, by object id: fetched once, kept for its next trials


def book_of(handle: list | None) -> dict:
    """The trial book behind [reference]: from this process's cache after the first trial."""
    if not handle:
        return {}
    key = handle[0].hex()
    if key not in _BOOKS:
        _BOOKS.clear()  # another submit's book: this process serves a new experiment
        _BOOKS[key] = ray.get(handle[0])
    return _BOOKS[key]


def full_config(config: dict, book: dict) -> dict:
    """The trial's config with its book entry: {"spec": task, job, data keys, ..., "provenance", "fault", ...}."""
    spec = config["spec"]
    return {**book.get("", {}), **config, "spec": {**book.get(spec.get("task_id"), {}), **spec}}


def train_fold(config: dict, task: Task, records, parts: dict | None, resume: dict | None, placement: dict,
               report=_tune_report, replicas: Replicas = Replicas(), device: str | None = None) -> dict:
    """Train the fold in this process, writing its folder (a trial, or a DDP fold's rank 0); its scores.

    device: where to train when the caller knows better than fold_device (a DDP worker's own GPU).
    """
    where, note = fold_device(placement)
    log = TuneFoldLog(task, config["spec"]["job"], config["provenance"], config.get("fault"), report)
    log.open(resume, placement)
    try:
        notes = (*config["spec"].get("dataset_notes", ()), *((note,) if note else ()))
        with tempfile.TemporaryDirectory(prefix="ecg-init-") as scratch:
            result = train_task(local_init(task, Path(scratch)), log, resume, records, parts,
                                device=device or where, notes=notes, replicas=replicas)
    except BaseException as exc:
        log.record_error(exc)
        raise
    finally:
        log.close()
    return log.finish(result)


def local_init(task: Task, scratch: Path) -> Task:
    """The task with what it starts from on this machine: a fine-tuning checkpoint and a stack's part folds on
    object storage are downloaded to scratch (train_task reads local files; the task's recorded init_checkpoint
    stays the URI, in scores.json too)."""
    changes = {}
    if task.init_checkpoint and is_uri(task.init_checkpoint):
        target = scratch / name_of(task.init_checkpoint)
        Remote(parent_of(task.init_checkpoint)).download(name_of(task.init_checkpoint), target)
        changes["init_checkpoint"] = str(target)
    if any(is_uri(folder) for folder in task.part_folds):
        changes["part_folds"] = tuple(_local_fold(folder, scratch / f"part{i}") if is_uri(folder) else folder
                                      for i, folder in enumerate(task.part_folds))
    return replace(task, **changes) if changes else task


def _local_fold(folder: str, target: Path) -> str:
    """The files of a trained fold on object storage that TrainedFold.load reads, copied into target."""
    remote = Remote(folder)
    for name in (MODEL, BEST_MODEL, SCORES):
        remote.download(name, target / name)
    return str(target)


def quiet_ray_loggers() -> None:
    """Keep Ray's per-validation INFO lines ("Checkpoint successfully created", a DDP worker's "Reporting
    training result") out of the submit's terminal; they stay in Ray's session logs' warnings and above."""
    for name in ("ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)


def gpu_placement() -> dict:
    """The GPU ids Ray assigned to this trial and the CUDA_VISIBLE_DEVICES it set for the process."""
    ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
    return {"gpu_ids": [str(i) for i in ids], "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def fold_device(placement: dict) -> tuple[str, str | None]:
    """Where the fold trains, and a note when that is not what it was given.

    A fold given no GPU trains on the CPU without asking torch about CUDA at all. One given a GPU
    whose torch sees none (a CPU-only wheel, a driver missing, logical GPUs in a test) says so once,
    loudly, on stderr and in scores.json's notes, and trains on the CPU rather than failing.
    """
    if not placement["gpu_ids"]:
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    note = (f"Ray gave this fold GPU {', '.join(placement['gpu_ids'])} (CUDA_VISIBLE_DEVICES="
            f"{placement['cuda_visible_devices']}) but torch {torch.__version__} sees no CUDA device: "
            "training on the CPU")
    print(f"WARNING: {note}", file=sys.stderr, flush=True)
    return "cpu", note


def prepared(spec: dict, shared: dict | None):
    """The task's preprocessed dataset: from the object store, else from the driver's cache file."""
    key = spec.get("data_key")
    if key is None:
        return None
    if shared and key in shared:
        return shared[key]
    return read_records(Path(spec["cache_file"])) if Path(spec["cache_file"]).exists() else None


def _final(task: Task, scores: dict) -> dict:
    if task.kind == "classify":
        test, valid = (_number(scores[part]["score"]) for part in ("test", "valid"))
        return {"final_test_score": test, "final_valid_score": valid, "valid_score": valid}
    return {"final_valid_loss": scores["valid"]["loss"]}


def _number(score) -> float:
    """A score for Tune and the progress lines: NaN where it is undefined (None in scores.json), so a pre-training
    fold (no score at all) stays told apart."""
    return float("nan") if score is None else score
