"""The per-fold log folder: log/<architecture>/<job>/fold<k>/.

FoldLog is the training observer that writes a fold's files:
  job.json, model.json   resolved copies (job with its fold id)
  hotlog.csv             header + one row per validation
  events.out.tfevents.*  TensorBoard scalars (when log_en)
  best_model.pt          state dict of the best model so far (weights_only loadable)
  predictions.csv        test-fold record, label(s), prediction(s), probabilities
  validations.jsonl      every validation row in full (per-class F1 too), replayed into
                         TensorBoard when a retried trial continues from its checkpoint
  attempt.json           host, pid, start time and attempt of the process writing the fold, and a
                         retried fold's earlier attempts (earlier_attempts: host, Ray node, start)
  error.txt              the trace of a failed attempt (removed when the fold starts again)
  scores.json            final scores and provenance, written last and atomically
A fold folder on object storage (out_dir a URI) is written in a local Stage
(orchestrator.logdir.storage) and pushed after every validation and at the
end, scores.json last; a retried fold pulls it back first. A fold folder
that cannot be written fails its fold with a StorageError naming the path.
A fold counts as finished only when scores.json exists, so an interrupted
run never looks like a result. Starting a fold clears what an earlier
attempt left; a retry that continues from the checkpoint of epoch E keeps
the rows up to E and drops the later ones (and rebuilds the TensorBoard
events from them), so each validation appears exactly once.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import time
from pathlib import Path

import torch

from ecgcore.config.schema import to_plain
from ecgcore.config.task import Task
from ecgcore.data.splits import repeat_of, split_repeats
from ecgcore.training.loop import TrainingObserver, TrainResult
from orchestrator.logdir.reader import (
    ATTEMPT,
    BEST_MODEL,
    ERROR,
    HOTLOG,
    JOB,
    MODEL,
    PLACEMENT_KEYS,
    PREDICTIONS,
    SCORES,
    VALIDATIONS,
    FoldDir,
    write_json_atomic,
)
from orchestrator.logdir.runstate import config_hash
from orchestrator.logdir.storage import Stage, StorageError

_OUTPUTS = (JOB, MODEL, HOTLOG, VALIDATIONS, BEST_MODEL, PREDICTIONS, SCORES)


def hotlog_columns(task: Task) -> list[str]:
    if task.kind == "pretrain":
        return ["epoch", "best_epoch", "train_loss", "valid_loss", "learning_rate", "elapsed_s"]
    metrics = task.open_track().hotlog_metrics
    parts = ("valid", "test") if task.log_test_score else ("valid",)
    return ["epoch", "best_epoch", "train_loss", *[f"{p}_{m}" for p in parts for m in metrics],
            "learning_rate", "elapsed_s"]


class FoldLog(TrainingObserver):
    def __init__(self, task: Task, job: dict, provenance: dict):
        self.task, self.job, self.provenance = task, job, provenance
        self.stage = Stage(task.out_dir, prefix="ecg-fold-")
        self.dir = self.stage.dir
        self.columns = hotlog_columns(task)
        self.writer = None
        self.placement: dict = {}  # the accelerators this attempt was given (PLACEMENT_KEYS), for scores.json

    def open(self, resume: dict | None = None, attempt_extra: dict | None = None) -> None:
        """Start the fold afresh, or (resume: a checkpoint's state) continue after its epoch."""
        with self.writing():
            # a retry continues the rows it pulls back; a fresh start only learns what to remove there
            self.stage.pull(skip=("events.out.tfevents.*",), contents=resume is not None, owned=True)
            self._open(resume, attempt_extra)
            self.stage.push()

    def _open(self, resume: dict | None, attempt_extra: dict | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for events in self.dir.glob("events.out.tfevents.*"):
            events.unlink()
        (self.dir / ERROR).unlink(missing_ok=True)
        if resume is None:
            for name in _OUTPUTS:
                (self.dir / name).unlink(missing_ok=True)
            write_json_atomic(self.dir / JOB, {**self.job, "name": self.task.job, "cvid": self.task.fold})
            write_json_atomic(self.dir / MODEL, to_plain(self.task.model))
            rows = []
        else:
            for name in (PREDICTIONS, SCORES):
                (self.dir / name).unlink(missing_ok=True)
            rows = self._rows_until(resume["epoch"])
            self._save_best(resume["best_state"])  # a crashed attempt may have saved a later best
        self.placement = {k: v for k, v in (attempt_extra or {}).items() if k in PLACEMENT_KEYS}
        write_json_atomic(self.dir / ATTEMPT, {"host": socket.gethostname(), "pid": os.getpid(),
                                               "started": time.time(),
                                               "resumed_after_epoch": None if resume is None else resume["epoch"],
                                               **(attempt_extra or {}), **self._attempts(resume)})
        with open(self.dir / HOTLOG, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(self.columns)
            out.writerows([_fmt(row[c]) for c in self.columns] for row in rows)
        (self.dir / VALIDATIONS).write_text("".join(json.dumps(row) + "\n" for row in rows))
        if self.task.log_en:
            from torch.utils.tensorboard import SummaryWriter  # heavy import, only when logging

            self.writer = SummaryWriter(log_dir=str(self.dir))
            for row in rows:
                self._tensorboard(row)

    def _attempts(self, resume: dict | None) -> dict:
        """This attempt's number and the earlier attempts of a retried fold (host, Ray node, start), so a fold that
        lost its node says where it ran before."""
        earlier = FoldDir(self.dir).attempt() if resume is not None else None
        if earlier is None:
            return {"attempt": 1, "earlier_attempts": []}
        before = earlier.pop("earlier_attempts", [])
        return {"attempt": earlier.get("attempt", 1) + 1, "earlier_attempts": [*before, earlier]}

    @contextlib.contextmanager
    def writing(self):
        """Writes to the fold folder; an OSError (no space, no permission) becomes a StorageError naming it."""
        try:
            yield
        except StorageError:
            raise
        except OSError as exc:
            where = exc.filename or self.task.out_dir
            raise StorageError(f"fold folder {self.task.out_dir}: cannot write {where} "
                               f"({exc.strerror or exc})") from None

    def _rows_until(self, epoch: int) -> list[dict]:
        return [row for row in FoldDir(self.dir).validations() if row["epoch"] <= epoch]

    def on_validation(self, row: dict) -> None:
        with self.writing():
            with open(self.dir / HOTLOG, "a", newline="") as fh:
                csv.writer(fh).writerow([_fmt(row[c]) for c in self.columns])
            with open(self.dir / VALIDATIONS, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            self._tensorboard(row)
            self.stage.push()  # the rows, the events and a new best model (on_best came first)

    def _tensorboard(self, row: dict) -> None:
        if self.writer is None:
            return
        step = row["epoch"]
        self.writer.add_scalar("loss/train", row["train_loss"], step)
        self.writer.add_scalar("learning_rate", row["learning_rate"], step)
        if "valid_loss" in row:
            self.writer.add_scalar("loss/valid", row["valid_loss"], step)
        for key, value in row.items():
            part, _, metric = key.partition("_")
            if part not in ("valid", "test") or metric == "loss":
                continue
            if isinstance(value, dict):  # per-class F1; None where a class is absent and never predicted
                for cls, f1 in value.items():
                    if f1 is not None:
                        self.writer.add_scalar(f"{metric}_{part}/{_tag(cls)}", f1, step)
            elif value is not None:
                self.writer.add_scalar(f"{metric}/{part}", value, step)
        self.writer.flush()

    def on_best(self, model, epoch: int) -> None:
        self._save_best(model.state_dict())

    def _save_best(self, state: dict) -> None:
        tmp = self.dir / f".{BEST_MODEL}.tmp"
        with self.writing():
            torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
            os.replace(tmp, self.dir / BEST_MODEL)

    def finish(self, result: TrainResult) -> dict:
        """Write the predictions and scores.json (last: the fold is finished from here); its scores."""
        scores = self._scores(result)
        with self.writing():
            if self.task.kind == "classify":
                write_predictions(self.dir / PREDICTIONS, self.task.open_track(), result.predictions,
                                  result.thresholds)
            write_json_atomic(self.dir / SCORES, scores)
            self.close()
            self.stage.push(last=(SCORES,))
        self.stage.discard()
        return scores

    def _scores(self, result: TrainResult) -> dict:
        track = self.task.open_track()
        scores = {
            "task_id": self.task.task_id, "architecture": self.task.model.model_name,
            "job": self.task.job, "kind": self.task.kind, "model_file": self.task.model_file,
            "fold": self.task.fold, "split": self.task.split, **_repeat(self.task), "data_dir": self.task.data_dir,
            "track": self.task.track, "track_options": track.options_json, "challenge": track.label,
            "classes": list(track.class_names),
            **result.scores,
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "stopped_early": result.stop_reason == "early_stop", "stop_reason": result.stop_reason,
            "init_checkpoint": self.task.init_checkpoint,
            **({} if result.thresholds is None else
               {"thresholds": dict(zip(track.class_names, result.thresholds, strict=True))}),
            "test_sources": result.info.get("test_sources"),
            "source_fs": result.info.get("source_fs"),
            "shared_dataset": result.info.get("shared_dataset"),
            "n_parameters": result.info.get("n_parameters"), "device": result.info.get("device"),
            **self.placement,
            "notes": result.info.get("notes", []),
            **({"parts": result.info["parts"]} if "parts" in result.info else {}),  # a stack's parts' own scores
            **({"stacker": result.info["stacker"]} if "stacker" in result.info else {}),  # a Stack's, as fitted
            # a DDP fold: world size and every rank's digest of its weights (identical when the ranks agree)
            **({"replicas": result.info["replicas"]} if "replicas" in result.info else {}),
            "elapsed_s": round(result.info.get("elapsed_s", 0.0), 2),
            "provenance": {**self.provenance, "seed": self.task.model.training_parameters.seed,
                           "config_hash": config_hash(self.task)},
        }
        return scores

    def record_error(self, exc: BaseException) -> None:
        """The failure's full trace beside the fold (`status` shows its last line and points here).

        Where the fold folder itself cannot be written, the trace stays in Ray's trial log: the original
        error is what the caller raises, not this one.
        """
        import traceback

        with contextlib.suppress(OSError, StorageError):
            (self.dir / ERROR).write_text("".join(traceback.format_exception(exc)))
            self.close()
            self.stage.push()
        self.stage.discard()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_predictions(path: Path, track, predictions: dict, thresholds) -> None:
    """The test fold's probabilities: one row per record, with its label(s) and the prediction(s)."""
    names, targets, probs = predictions["names"], predictions["targets"], predictions["probs"]
    classes = track.class_names
    tags = [_tag(c) for c in classes]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["record", "labels" if track.multilabel else "label",
                      "predictions" if track.multilabel else "prediction", *[f"p_{t}" for t in tags]])
        for name, target, p in zip(names, targets, probs, strict=True):
            if track.multilabel:
                label = " ".join(c for c, t in zip(classes, target, strict=True) if t)
                predicted = " ".join(c for c, q, t in zip(classes, p, thresholds, strict=True) if q >= t)
            else:
                label, predicted = classes[int(target)], classes[int(p.argmax())]
            out.writerow([name, label, predicted, *[f"{q:.6f}" for q in p]])


def _repeat(task: Task) -> dict:
    """A repeated split's fold as (repeat, fold within the repeat): the fold id alone hides it."""
    if split_repeats(task.split) < 2:
        return {}
    repeat, fold = repeat_of(task.split, task.fold)
    return {"repeat": repeat, "repeat_fold": fold}


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _tag(cls: str) -> str:
    return "noise" if cls == "~" else cls
