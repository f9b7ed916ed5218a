"""The shared parts of every training loop: epoch batches, the epoch loop, the fold's run, the result.

`EpochLoop` runs epochs with periodic validation, keeps the best model,
stops early or at the time limit; the classification loops (ecgcore.training.classify
for single-label tracks, ecgcore.training.multilabel for multi-label ones) and pre-training
(ecgcore.training.pretrain) say what a batch's loss is and how a validation scores.
Prediction (class probabilities of a model) is ecgcore.inference.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ecgcore.data import augment
from ecgcore.data import batches as batching
from ecgcore.data.inputs import LazyInputs
from ecgcore.training import optim, precise_bn
from ecgcore.training.distributed import Replicas


def cpu_copy(value):
    """value with every tensor copied to the CPU (a copy even when it is there already)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v) for v in value)
    return copy.deepcopy(value)


class TrainingObserver:
    """Receives progress; the default does nothing."""

    def on_validation(self, row: dict) -> None:
        pass

    def on_best(self, model: nn.Module, epoch: int) -> None:
        pass

    def on_checkpoint(self, state: dict) -> None:
        """After each validation: everything a retry needs to continue from here (EpochLoop.state)."""


@dataclass(kw_only=True)
class TrainResult:
    """A trained fold: its best model's scores, how training went, its test predictions, what else was learnt."""

    scores: dict  # "train"/"valid"/"test" -> score_report of the best model
    best_epoch: int
    epochs_run: int
    stop_reason: str  # "max_epochs", "early_stop" or "time_limit"
    predictions: dict = field(default_factory=dict)  # of the test fold: names, targets, probs
    thresholds: list | None = None  # per class, tuned on the validation fold (multi-label track)
    info: dict = field(default_factory=dict)

    @classmethod
    def after(cls, loop, **outcome) -> TrainResult:
        """The result of a finished loop (epochs or boosting rounds): its best and last epoch, why it stopped."""
        return cls(best_epoch=loop.best_epoch, epochs_run=loop.epoch, stop_reason=loop.stop_reason, **outcome)


def oversampling_copies(labels: np.ndarray, compensation: float, n_classes: int = 0) -> np.ndarray:
    """Copies of each class's records in an epoch's pool: int(100*f/class_percent)+1 (0 for an absent class).

    The result has an entry for every class up to the largest label, or n_classes when that is more.
    """
    counts = np.bincount(labels, minlength=n_classes)
    percent = 100.0 * counts / labels.size
    return np.where(counts > 0, (100 * compensation / np.where(counts > 0, percent, 1.0)).astype(np.int64) + 1, 0)


def epoch_batches(labels: np.ndarray, lengths: np.ndarray, batch_size: int, compensation: float,
                  rng: np.random.Generator, bucket: int = 8) -> list[np.ndarray]:
    """One epoch of index batches with rare classes oversampled (reference batch_splitter).

    labels are integer strata: the class (CinC 2017), or the rarest scored
    class of each record (multi-label, see ecgcore.tracks).

    Records are drawn as in the reference; then, within windows of `bucket`
    batches, batches are cut from records of similar length so little of a
    batch is padding (a 61 s record no longer doubles the cost of a batch of
    30 s ones). The batches are shuffled.
    """
    n = labels.size
    copies = oversampling_copies(labels, compensation)
    pool = [np.tile(np.flatnonzero(labels == cls), copies[cls]) for cls in np.flatnonzero(copies)]
    chosen = rng.permutation(np.concatenate(pool))[:n]
    batches = []
    window = batch_size * bucket
    for start in range(0, n, window):
        part = chosen[start:start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(np.array_split(part, int(np.ceil(part.size / batch_size))))
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass(kw_only=True)
class FoldRun:
    """What every trainer of one fold shares: the task, its data, where and how it runs, since when.

    rng draws the augmentations and batches; started is time.monotonic() when this attempt began (an
    epoch loop restored from a checkpoint moves its own copy back by the time already spent, so the time
    limit counts across attempts). replicas: the processes training this fold together (DDP), if more than one.
    """

    task: object
    fold: object
    device: torch.device
    rng: np.random.Generator
    observer: TrainingObserver
    started: float
    replicas: Replicas = Replicas()


class EpochLoop:
    """Epochs of training with periodic validation, the best model kept, early stop and a time limit.

    Subclasses say what one batch's loss is (`batch_loss`, calling `train_model`
    and drawing from `draw_rng`), how a validation scores the model (`evaluate`
    -> the value that picks the best model and the hotlog row), and whether
    higher values are better. `model` is the network itself (its state, its
    evaluation); `train_model` is what a training step calls: the same network,
    or DDP around it when several processes train the fold (ecgcore.training.distributed).
    """

    higher_is_better = True
    compensation = 0.0  # oversampling of rare classes in the epoch's batches

    def __init__(self, run: FoldRun, model):
        task, fold, device = run.task, run.fold, run.device
        self.task, self.model, self.fold, self.device = task, model, fold, device
        self.rng, self.observer, self.started = run.rng, run.observer, run.started
        self.tp = task.model.training_parameters
        self.replicas = run.replicas
        self.train_model = run.replicas.wrap(model, device)
        self.draw_rng = run.replicas.draws(run.rng, [self.tp.seed, task.fold])
        self.strata = task.open_track().strata(fold.train.labels)
        steps = max(1, -(-len(fold.train) // self.tp.batch_size))
        self.stepper = optim.Stepper(model, self.tp, steps, task.max_epochs, device)
        self.eval_batch = batching.eval_batch_size(device, self.tp.batch_size)
        self.batch_lengths = None  # the current training batch's lengths on the host (no device read for them)
        batching.tune_device(device, fold.pipeline)
        self.best_value, self.best_epoch, self.best_state = None, 0, None
        self.epoch, self.stop_reason = 0, "max_epochs"
        self.train_x = None  # the current draw of training inputs (kept until the next reload)
        # The limit counts training time, not the reading and preprocessing before it.
        self.deadline = None if task.time_limit_s is None else time.monotonic() + task.time_limit_s
        self.out_of_time = False

    def state(self) -> dict:
        """The loop at the end of a validation: weights, optimiser, schedule, random streams, best so far.

        Every tensor is copied to the CPU: state_dict()s hold the live tensors, which the next
        epoch changes in place, and a checkpoint must load on any worker, with or without a GPU.
        """
        state = {"epoch": self.epoch, "best_value": self.best_value, "best_epoch": self.best_epoch,
                 "best_state": self.best_state, "model": self.model.state_dict(),
                 "stepper": self.stepper.state_dict(), "rng": self.rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(),
                 # the draw in use, so a resumed run keeps it until the next reload, as the run would have
                 # (a tensor: checkpoints load with weights_only, which refuses numpy arrays)
                 "train_seeds": None if self.train_x is None or self.train_x.seeds is None
                 else torch.from_numpy(self.train_x.seeds),
                 "time_left_s": None if self.deadline is None else self.deadline - time.monotonic(),
                 "elapsed_s": time.monotonic() - self.started}
        if self.device.type == "cuda":  # dropout on a GPU draws from its own generators; a CPU fold never asks
            state["cuda_rng_state"] = torch.cuda.get_rng_state_all()
        return cpu_copy(state)

    def restore(self, state: dict) -> None:
        """Continue from a state(): the next epoch is state["epoch"] + 1.

        The training draw in use (its per-record seeds) is part of the state, so
        augmented inputs stay those of the interrupted run until its next reload.
        """
        self.model.load_state_dict(state["model"])
        self.stepper.load_state_dict(state["stepper"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng_state") is not None:  # older states have none
            # a worker with fewer GPUs than the one that saved the state restores those it has
            torch.cuda.set_rng_state_all(state["cuda_rng_state"][:torch.cuda.device_count()])
        self.epoch, self.best_epoch = state["epoch"], state["best_epoch"]
        self.best_value, self.best_state = state["best_value"], state["best_state"]
        if state["time_left_s"] is not None:
            self.deadline = time.monotonic() + max(0.0, state["time_left_s"])
        self.started = time.monotonic() - state["elapsed_s"]  # elapsed_s counts across attempts
        if state.get("train_seeds") is not None:
            self.train_x = self.fold.pipeline.train_items(self.fold.train.signals, None, seeds=state["train_seeds"])

    def run(self) -> None:
        pipeline = self.fold.pipeline
        for epoch in range(self.epoch + 1, self.task.max_epochs + 1):
            if self.train_x is None or (pipeline.varies and
                                        (epoch - 1) % self.task.model.data_augmentation.reload_step == 0):
                self.train_x = pipeline.train_items(self.fold.train.signals, self.rng)
            loss = self.train_epoch(self.train_x)
            self.epoch = epoch
            if epoch % self.tp.validation_step == 0 or epoch == self.task.max_epochs or self.out_of_time:
                self.validate(epoch, loss)
                if epoch - self.best_epoch >= self.tp.early_stop_wait:
                    self.stop_reason = "early_stop"
                    break
            if self.out_of_time and epoch < self.task.max_epochs:
                self.stop_reason = "time_limit"
                break
        if self.best_state is None:
            self.best_state = copy.deepcopy(self.model.state_dict())

    def train_epoch(self, train_x: LazyInputs) -> float:
        """One epoch; its loss is the mean of the batches' losses, read from the device once at the end.

        The batch order is drawn here, before any batch, as it always was; the
        inputs are built on the prefetch thread from their own seeds; mixup and
        the like draw in batch_loss, on this thread, in batch order.
        """
        self.model.train()
        order = epoch_batches(self.strata, train_x.lengths, self.tp.batch_size, self.compensation, self.rng)
        order = [self.replicas.shard(batch) for batch in order]  # all ranks drew the same order
        # float64, so each entry is exactly the float(loss) of old and their mean the same number
        losses = torch.zeros(len(order), dtype=torch.float64, device=self.device)
        done = 0
        pin = self.device.type == "cuda"
        with batching.prefetch(batching.host_batches(self.fold.pipeline, train_x, order, pin)) as ready:
            for batch, x, lengths in ready:
                self.batch_lengths = lengths
                x, lengths_t = batching.to_device(x, lengths, self.device)
                with self.stepper.autocast():
                    loss = self.batch_loss(x, lengths_t, batch)
                self.stepper.step(loss)
                losses[done] = loss.detach()  # no host read per batch: the device runs ahead
                done += 1
                # The time limit ends training at a batch boundary, so one slow epoch cannot overrun it;
                # the ranks of a DDP fold stop at the same batch.
                if self.deadline is not None and self.replicas.any(time.monotonic() >= self.deadline):
                    self.out_of_time = True
                    break
        return self.replicas.mean(float(np.mean(losses[:done].cpu().numpy())))

    def validate(self, epoch: int, train_loss: float) -> None:
        if augment.enabled(self.fold.pipeline.aug):  # running statistics of augmented inputs misjudge clean ones
            precise_bn.recalibrate(self.model, self.fold.pipeline, self.fold.train.eval_items, self.device,
                                   self.eval_batch)
        self.replicas.sync_buffers(self.model)
        value, row = self.evaluate()
        if self.best_value is None or (value >= self.best_value if self.higher_is_better
                                       else value <= self.best_value):
            self.best_value, self.best_epoch = value, epoch  # ties go to the later epoch, as in the reference
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.observer.on_best(self.model, epoch)
        self.observer.on_validation({"epoch": epoch, "best_epoch": self.best_epoch, "train_loss": train_loss,
                                     **row, "learning_rate": self.stepper.lr,
                                     "elapsed_s": time.monotonic() - self.started})
        self.observer.on_checkpoint(self.state())

    def batch_loss(self, x: torch.Tensor, lengths: torch.Tensor, batch: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self) -> tuple[float, dict]:
        raise NotImplementedError
