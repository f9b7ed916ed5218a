"""The GPU efficiency paths, checked on the CPU: prefetching, one loss read per epoch, no CUDA on a CPU fold.

The CUDA branches themselves (pinned memory, asynchronous copies, cuDNN
autotuning, the CUDA random state) cannot run here; these tests hold the CPU
behaviour they must not change and show that a CPU fold never reaches them.
"""

import itertools
import sys
import threading

import numpy as np
import pytest
import torch

from ecgcore.data import batches
from ecgcore.data import pipeline as data
from ecgcore.inference import predict_proba
from ecgcore.models import create_model
from ecgcore.training import optim
from ecgcore.training.loop import TrainingObserver
from ecgcore.training.train import train_task
from tests.conftest import tiny_model, tiny_signal_model
from tests.ecgcore.test_train import make_task


def test_prefetch_yields_exactly_the_input_sequence():
    items = [np.full(3, i) for i in range(50)] + [None, "x", (1, 2)]
    with batches.prefetch(iter(items), depth=2) as ready:
        got = list(ready)
    assert len(got) == len(items) and all(a is b for a, b in zip(got, items, strict=True))
    assert not ready.alive
    assert list(batches.prefetch([])) == []


def test_prefetch_raises_the_producers_error_after_the_items_before_it():
    def produce():
        yield from range(5)
        raise ValueError("item 5 is broken")

    got = []
    with batches.prefetch(produce(), depth=2) as ready, pytest.raises(ValueError, match="item 5"):
        for item in ready:
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    assert not ready.alive


def test_prefetch_stops_its_thread_when_the_consumer_breaks_early():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()  # the producer closes the generator it was left in

    with batches.prefetch(endless(), depth=2) as ready:
        for item in ready:
            if item == 3:
                break
    ready.close(timeout=2)  # a second close is harmless
    assert not ready.alive and closed.is_set()
    assert next(ready, "done") == "done"
    with pytest.raises(ValueError):
        batches.prefetch([1], depth=0)


class Checkpoints(TrainingObserver):
    def __init__(self):
        self.rows, self.states = [], []

    def on_validation(self, row):
        self.rows.append(row)

    def on_checkpoint(self, state):
        self.states.append(state)


def test_the_epoch_loss_read_once_is_the_mean_of_the_batch_losses(synth_dir, tmp_path, monkeypatch):
    per_batch, step = [], optim.Stepper.step

    def step_and_read(self, loss):  # the old way: one host read per batch
        per_batch.append(float(loss.detach()))
        step(self, loss)

    monkeypatch.setattr(optim.Stepper, "step", step_and_read)
    boundaries = []
    observer = Checkpoints()
    observer.on_validation = lambda row: (boundaries.append(len(per_batch)), observer.rows.append(row))
    train_task(make_task(synth_dir, tmp_path, tiny_model("CNN", mixup=0.2)), observer)
    assert len(observer.rows) == 2 and boundaries[0] > 1
    epochs = [per_batch[:boundaries[0]], per_batch[boundaries[0]:boundaries[1]]]
    assert [r["train_loss"] for r in observer.rows] == [float(np.mean(e)) for e in epochs]  # exactly


def test_a_cpu_checkpoint_has_no_cuda_state_and_one_with_it_resumes_without_cuda(synth_dir, tmp_path, monkeypatch):
    task = make_task(synth_dir, tmp_path, tiny_signal_model(training_parameters={"mixup": 0.2}))
    observer = Checkpoints()
    whole = train_task(task, observer)
    first = observer.states[0]
    assert first["epoch"] == 1 and "cuda_rng_state" not in first
    from_gpu = {**first, "cuda_rng_state": [torch.zeros(16, dtype=torch.uint8)]}  # as a CUDA worker saves it

    def no_cuda(*args, **kwargs):
        raise AssertionError("a CPU fold touched CUDA")

    monkeypatch.setattr(torch.cuda, "set_rng_state_all", no_cuda)
    monkeypatch.setattr(torch.cuda, "device_count", no_cuda)
    resumed = train_task(task, resume=from_gpu)
    assert resumed.info["resumed_after_epoch"] == 1
    assert np.array_equal(resumed.predictions["probs"], whole.predictions["probs"])


CUDA_FUNCTIONS = ("synchronize", "get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all",
                  "device_count", "current_device", "current_stream", "set_device", "is_bf16_supported",
                  "empty_cache", "memory_allocated", "init", "_lazy_init", "Stream", "Event")


@pytest.fixture
def no_cuda(monkeypatch):
    """Every torch.cuda function raises, but the device choice of train_task (it must ask, and learns: no GPU)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a CPU fold called torch.cuda")

    def is_available():
        if sys._getframe(1).f_globals.get("__name__") != "ecgcore.training.train":
            raise AssertionError("torch.cuda.is_available called during a CPU fold")
        return False

    for name in CUDA_FUNCTIONS:
        monkeypatch.setattr(torch.cuda, name, refuse)
    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    monkeypatch.setattr(torch.Tensor, "pin_memory", refuse)
    benchmark = torch.backends.cudnn.benchmark
    yield
    assert torch.backends.cudnn.benchmark == benchmark  # autotuning is a CUDA fold's business


@pytest.mark.parametrize("case", ["classify", "multilabel", "pretrain"])
def test_a_cpu_fold_never_calls_cuda(synth_dir, synth12_dir, tmp_path, no_cuda, case):
    if case == "classify":
        task = make_task(synth_dir, tmp_path, tiny_model("CRNN", max_epochs=1, mixup=0.2, amp=True, grad_clip=1.0))
    elif case == "multilabel":
        model = tiny_signal_model(training_parameters={"max_epochs": 1, "mixup": 0.2}, preprocessing={"window": 300})
        task = make_task(synth12_dir, tmp_path, model, challenge=2021)
    else:
        task = make_task(synth_dir, tmp_path, tiny_signal_model(training_parameters={"max_epochs": 1}), kind="pretrain")
    observer = Checkpoints()
    result = train_task(task, observer)
    assert result.info["device"] == "cpu" and result.epochs_run == 1
    assert "cuda_rng_state" not in observer.states[-1]
    assert train_task(task, resume=observer.states[-1]).epochs_run == 1  # restore() on the CPU too


def test_evaluation_batches_are_the_old_ones_on_the_cpu_and_larger_on_cuda():
    cpu = torch.device("cpu")
    assert batches.eval_batch_size(cpu) == batches.eval_batch_size(cpu, 512) == batches.EVAL_BATCH == 64
    assert batches.eval_batch_size("cuda", 32) == 128  # a device name only: nothing asks CUDA anything
    assert batches.eval_batch_size("cuda", 8) == 64 and batches.eval_batch_size("cuda", 1024) == 256


def test_only_windowed_signals_and_features_count_as_fixed_length(synth_dir, tmp_path):
    def pipe(model_file):
        return data.Pipeline(make_task(synth_dir, tmp_path, model_file).model, 300.0, 1)

    assert batches.fixed_length(pipe(tiny_signal_model(preprocessing={"window": 400})))
    assert not batches.fixed_length(pipe(tiny_signal_model()))  # whole records: as long as the longest
    assert not batches.fixed_length(pipe(tiny_model("CNN")))  # spectrograms of whole records


def test_probabilities_land_on_their_records_whatever_the_batch(synth_dir, tmp_path):
    task = make_task(synth_dir, tmp_path, tiny_signal_model(preprocessing={"window": 400}))
    fold = data.load_fold(task)
    torch.manual_seed(0)
    model = create_model(task.model, fold.pipeline.inputs, 4)
    part = fold.valid
    args = (model, fold.pipeline, part.eval_items, part.owners, len(part), torch.device("cpu"))
    by_64, by_3 = predict_proba(*args), predict_proba(*args, batch_size=3)
    assert by_64.shape == (len(part), 4) and np.allclose(by_64.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(by_64, by_3, atol=1e-5)
