"""The training loop without Ray: weights, oversampling, determinism, observer calls."""

import numpy as np
import pytest

from ecgcore.config.modelfile import parse_model
from ecgcore.config.task import Task
from ecgcore.tracks import CHALLENGE_TRACKS
from ecgcore.training.classify import class_weights
from ecgcore.training.loop import TrainingObserver, epoch_batches
from ecgcore.training.train import train_task
from tests.conftest import tiny_model


def test_class_weights_formula():
    labels = np.array([0] * 60 + [1] * 10 + [2] * 25 + [3] * 5)
    w = class_weights(labels, 0.2, 4)
    assert w == pytest.approx([0.8 + 0.2 * 100 / 60, 0.8 + 0.2 * 10, 0.8 + 0.2 * 4, 0.8 + 0.2 * 20])


def test_oversampling_by_dataset_compensation():
    labels = np.array([0] * 90 + [1] * 10)
    rng = np.random.default_rng(0)
    batches = epoch_batches(labels, np.arange(100), 10, 0.3, rng)
    drawn = np.concatenate(batches)
    assert drawn.size == 100 and all(b.size == 10 for b in batches)
    # class 1 is copied int(100*0.3/10)+1 = 4 times, class 0 once: about 40/130 of the draw.
    assert 0.2 < np.mean(labels[drawn] == 1) < 0.42
    plain = np.concatenate(epoch_batches(labels, np.arange(100), 10, 0.0, rng))
    assert sorted(plain.tolist()) == list(range(100))


class Recorder(TrainingObserver):
    def __init__(self):
        self.rows, self.best = [], []

    def on_validation(self, row):
        self.rows.append(row)

    def on_best(self, model, epoch):
        self.best.append(epoch)


def make_task(data_dir, tmp_path, model_file: dict, kind="classify", init=None, time_limit=None,
              split="split_3_3_1", fold=1, challenge=2017) -> Task:
    model = parse_model(model_file, "tiny.json")
    return Task(task_id=f"{model.model_name}/t/fold{fold}", job="t", fold=fold, model_file="tiny", model=model,
                data_dir=str(data_dir), split=split, out_dir=str(tmp_path),
                max_epochs=model.training_parameters.max_epochs, log_en=False, log_test_score=True,
                threads=1, track=CHALLENGE_TRACKS[challenge], track_options={}, kind=kind, init_checkpoint=init,
                time_limit_s=time_limit)


def _task(synth_dir, tmp_path, **training):
    return make_task(synth_dir, tmp_path, tiny_model("CRNN", **training))


def test_train_task_runs_and_repeats_exactly(synth_dir, tmp_path):
    rec = Recorder()
    a = train_task(_task(synth_dir, tmp_path), rec)
    assert [r["epoch"] for r in rec.rows] == [1, 2] and rec.best
    assert set(a.scores) == {"train", "valid", "test"}
    assert a.scores["test"]["n"] == len(a.predictions["names"]) == len(a.predictions["probs"]) > 15
    assert np.allclose(a.predictions["probs"].sum(axis=1), 1, atol=1e-5)  # softmax: one class per record
    assert a.thresholds is None
    b = train_task(_task(synth_dir, tmp_path))
    assert a.scores == b.scores  # same seed, same CPU scores


def test_early_stop_after_wait_without_improvement(synth_dir, tmp_path, monkeypatch):
    # Validation scores that peak at epoch 2, then only fall: with early_stop_wait 3 the
    # run stops at epoch 5 and keeps the epoch-2 model. Ties count as improvement (>=),
    # as in the reference.
    scores = iter([0.2, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1])

    def fake_score(self, subset):
        s = next(scores) if subset is self.fold.valid else 0.0
        return {"score": s, "accuracy": s, "f1": {}}

    monkeypatch.setattr("ecgcore.training.classify.SingleLabelLoop._score", fake_score)
    rec = Recorder()
    result = train_task(_task(synth_dir, tmp_path, max_epochs=8, early_stop_wait=3), rec)
    assert result.stop_reason == "early_stop" and result.epochs_run == 5 and result.best_epoch == 2
    assert rec.best == [1, 2] and [r["best_epoch"] for r in rec.rows] == [1, 2, 2, 2, 2]
