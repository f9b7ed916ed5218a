"""Continuing a fold from a checkpoint, without Ray: the training state and the fold log.

A retried trial gets the state of its last validation back (EpochLoop.state through
TrainingObserver.on_checkpoint); training must continue from there as if never stopped,
and the fold folder must hold each validation exactly once.
"""

import csv
import json

import numpy as np
import pytest

from ecgcore.training.loop import TrainingObserver
from ecgcore.training.train import train_task
from orchestrator.logdir.writer import FoldLog
from tests.conftest import tiny_signal_model
from tests.ecgcore.test_train import make_task


class Crash(Exception):
    pass


class CrashAt(TrainingObserver):
    """Keeps the last checkpoint; raises after the row of validation `epoch`, like a trial dying there."""

    def __init__(self, epoch: int, inner=None):
        self.epoch, self.inner, self.state, self.rows = epoch, inner, None, []

    def on_validation(self, row):
        self.rows.append(row)
        if self.inner:
            self.inner.on_validation(row)
        if row["epoch"] == self.epoch:
            raise Crash()

    def on_best(self, model, epoch):
        if self.inner:
            self.inner.on_best(model, epoch)

    def on_checkpoint(self, state):
        self.state = state


def model(**training):
    return tiny_signal_model(training_parameters={"max_epochs": 4, "early_stop_wait": 10, **training})


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(synth_dir, tmp_path):
    task = make_task(synth_dir, tmp_path, model(mixup=0.2, schedule="cosine"))
    whole = train_task(task)
    observer = CrashAt(3)
    with pytest.raises(Crash):
        train_task(task, observer)
    assert observer.state["epoch"] == 2  # the crash came before validation 3's checkpoint
    resumed = train_task(task, resume=observer.state)
    assert resumed.epochs_run == whole.epochs_run == 4 and resumed.best_epoch == whole.best_epoch
    assert np.array_equal(resumed.predictions["probs"], whole.predictions["probs"])
    assert resumed.info["resumed_after_epoch"] == 2


@pytest.mark.parametrize("reload_step", [1, 3])
def test_a_resume_between_reloads_keeps_the_augmentation_draw(synth_dir, tmp_path, reload_step):
    augmented = tiny_signal_model(training_parameters={"max_epochs": 5, "early_stop_wait": 10},
                                  data_augmentation={"scaling": 0.3, "reload_step": reload_step})
    task = make_task(synth_dir, tmp_path, augmented)
    whole = train_task(task)
    observer = CrashAt(3)
    with pytest.raises(Crash):
        train_task(task, observer)
    assert observer.state["train_seeds"] is not None
    resumed = train_task(task, resume=observer.state)  # epoch 3 uses the draw of epoch 1 when reload_step is 3
    assert np.array_equal(resumed.predictions["probs"], whole.predictions["probs"])


def test_the_time_limit_counts_across_attempts(synth_dir, tmp_path):
    task = make_task(synth_dir, tmp_path, model(), time_limit=1000)
    observer = CrashAt(2)
    with pytest.raises(Crash):
        train_task(task, observer)
    state = dict(observer.state, time_left_s=0.0)  # as if the first attempt used all of it
    resumed = train_task(task, resume=state)
    assert resumed.stop_reason == "time_limit" and resumed.epochs_run == 2


def rows_of(fold):
    with open(fold / "hotlog.csv") as fh:
        return list(csv.DictReader(fh))


def test_fold_log_keeps_each_validation_once_after_a_retry(synth_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fold = tmp_path / "fold1"
    task = make_task(synth_dir, fold, model())
    task = type(task)(**{**task.__dict__, "log_en": True})
    log = FoldLog(task, {"challenge": 2017}, {})
    log.open()
    observer = CrashAt(3, inner=log)
    with pytest.raises(Crash):
        train_task(task, observer)
    log.close()
    assert [r["epoch"] for r in rows_of(fold)] == ["1", "2", "3"]  # row 3 was written before the crash
    retry = FoldLog(task, {"challenge": 2017}, {})
    retry.open(observer.state)
    assert [r["epoch"] for r in rows_of(fold)] == ["1", "2"]
    retry.finish(train_task(task, retry, resume=observer.state))
    assert [r["epoch"] for r in rows_of(fold)] == ["1", "2", "3", "4"]
    lines = (fold / "validations.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    events = EventAccumulator(str(fold))
    events.Reload()
    assert [e.step for e in events.Scalars("score/valid")] == [1, 2, 3, 4]
    attempt = json.loads((fold / "attempt.json").read_text())
    assert attempt["attempt"] == 2 and attempt["resumed_after_epoch"] == 2
    assert json.loads((fold / "scores.json").read_text())["epochs_run"] == 4
