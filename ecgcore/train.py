"""Training loop: `train_task(task, observer) -> TrainResult`, no Ray needed.

Follows the reference training of Zihlmann et al.: class-weighted
cross-entropy with weights (1-c) + c*100/class_percent, oversampling of rare
classes by dataset_compensation, augmentation of the training set only,
redrawn every reload_step epochs, validation every validation_step epochs,
the best model by validation score kept, early stop after early_stop_wait
epochs without improvement. The optimiser, schedule, label smoothing, mixup,
clipping and mixed precision come from the model file (ecgcore.optim).
Everything random draws from seeds derived from (seed, fold), so a CPU run
repeats exactly. A task of kind "pretrain" goes to ecgcore.pretrain. Outputs
go to an observer (the orchestrator's fold log, which may also report to
Ray); nothing here writes files.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ecgcore import data, optim
from ecgcore.cinc2017 import CLASSES
from ecgcore.errors import ProjectError
from ecgcore.metrics import score_report
from ecgcore.models import InputSpec, get_architecture
from ecgcore.task import Task

EVAL_BATCH = 64

# oneDNN caches a compiled primitive (with its buffers) per input shape; with
# variable-length records every batch has a new shape and a reused Ray actor
# grew to 20 GB over eight folds. Without the cache memory stays flat and the
# speed is the same (measured: 13.7 s vs 13.8 s for 16 CNN_paper batches).
# It must be set before the first convolution in the process; a user's own
# setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


class TrainingObserver:
    """Receives progress; the default does nothing."""

    def on_validation(self, row: dict) -> None:
        pass

    def on_best(self, model: nn.Module, epoch: int) -> None:
        pass


@dataclass
class TrainResult:
    scores: dict  # "train"/"valid"/"test" -> score_report of the best model
    best_epoch: int
    epochs_run: int
    stop_reason: str  # "max_epochs", "early_stop" or "time_limit"
    test_predictions: list = field(default_factory=list)  # (record, label, probabilities)
    info: dict = field(default_factory=dict)


def class_weights(train_labels: np.ndarray, class_penalty: float) -> np.ndarray:
    """(1-c) + c*100/percent per class; a class absent from training gets weight 1."""
    counts = np.bincount(train_labels, minlength=len(CLASSES)).astype(np.float64)
    percent = 100.0 * counts / counts.sum()
    occurrence = np.divide(100.0, percent, out=np.ones_like(percent), where=percent > 0)
    return (1 - class_penalty) + class_penalty * occurrence


def epoch_batches(labels: np.ndarray, lengths: np.ndarray, batch_size: int, compensation: float,
                  rng: np.random.Generator, bucket: int = 8) -> list[np.ndarray]:
    """One epoch of index batches with rare classes oversampled (reference batch_splitter).

    Records are drawn as in the reference; then, within windows of `bucket`
    batches, batches are cut from records of similar length so little of a
    batch is padding (a 61 s record no longer doubles the cost of a batch of
    30 s ones). The batches are shuffled.
    """
    n = labels.size
    counts = np.bincount(labels, minlength=len(CLASSES))
    pool = []
    for cls in np.flatnonzero(counts):
        copies = int(100 * compensation / (100.0 * counts[cls] / n)) + 1
        pool.append(np.tile(np.flatnonzero(labels == cls), copies))
    chosen = rng.permutation(np.concatenate(pool))[:n]
    batches = []
    window = batch_size * bucket
    for start in range(0, n, window):
        part = chosen[start:start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(np.array_split(part, int(np.ceil(part.size / batch_size))))
    return [batches[i] for i in rng.permutation(len(batches))]


def build_model(task: Task, inputs: InputSpec, n_classes: int) -> nn.Module:
    arch = get_architecture(task.model.model_name)
    return arch.build(task.model.model_parameters, inputs, n_classes, task.model.training_parameters.drop_rate)


def load_pretrained(model: nn.Module, path: str) -> int:
    """Copy the weights of a checkpoint whose names and shapes match, except the head; return how many."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ProjectError(f"cannot load the checkpoint to fine-tune from: {path} ({exc})") from None
    # A pre-training run saves the classifier as "net." beside its decoder.
    state = {k.removeprefix("net."): v for k, v in state.items() if not k.startswith("decoder.")}
    own = model.state_dict()
    matched = {k: v for k, v in state.items()
               if not k.startswith("head.") and k in own and own[k].shape == v.shape}
    if not matched:
        raise ProjectError(f"{path}: no weight fits this model (another architecture or size?)")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def train_task(task: Task, observer: TrainingObserver | None = None) -> TrainResult:
    """Train task.model on its fold and score the best model on train/valid/test."""
    observer = observer or TrainingObserver()
    started = time.monotonic()
    torch.set_num_threads(task.threads)
    seed = np.random.SeedSequence([task.model.training_parameters.seed, task.fold])
    torch.manual_seed(int(seed.generate_state(1)[0]))
    rng = np.random.default_rng(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fold = data.load_fold(task)
    model = build_model(task, fold.pipeline.inputs, len(CLASSES)).to(device)
    info = {"device": str(device), "n_parameters": sum(p.numel() for p in model.parameters()),
            "n_train": len(fold.train), "n_valid": len(fold.valid), "n_test": len(fold.test)}
    if task.init_checkpoint:
        info["initialised_tensors"] = load_pretrained(model, task.init_checkpoint)
    if task.kind == "pretrain":
        from ecgcore.pretrain import pretrain

        return pretrain(task, model, fold, device, rng, observer, started, info)
    info["class_weights"] = class_weights(fold.train.labels,
                                          task.model.loss_function_parameters.class_penalty).tolist()
    loop = _Loop(task, model, fold, info["class_weights"], device, rng, observer, started)
    loop.run()
    model.load_state_dict(loop.best_state)
    scores, test_predictions = {}, []
    for part in ("train", "valid", "test"):
        subset = getattr(fold, part)
        probs = predict_proba(model, fold.pipeline, subset.eval_items, subset.owners, len(subset), device)
        scores[part] = score_report(subset.labels, probs.argmax(axis=1))
        if part == "test":
            test_predictions = [(name, CLASSES[label], p.tolist())
                                for name, label, p in zip(subset.names, subset.labels, probs, strict=True)]
    info["elapsed_s"] = time.monotonic() - started
    return TrainResult(scores, loop.best_epoch, loop.epoch, loop.stop_reason, test_predictions, info)


@torch.no_grad()
def predict_proba(model: nn.Module, pipeline: data.Pipeline, items: list[np.ndarray], owners: np.ndarray,
                  n_records: int, device) -> np.ndarray:
    """Class probabilities per record: inputs batched by similar length, windows averaged per record."""
    model.eval()
    order = np.argsort([f.shape[0] for f in items], kind="stable")
    probs = np.zeros((len(items), len(CLASSES)), dtype=np.float64)
    for start in range(0, len(order), EVAL_BATCH):
        idx = order[start:start + EVAL_BATCH]
        x, lengths = pipeline.to_tensors([items[i] for i in idx], device)
        probs[idx] = torch.softmax(model(x, lengths).float(), dim=1).cpu().numpy()
    out = np.zeros((n_records, len(CLASSES)), dtype=np.float64)
    np.add.at(out, owners, probs)
    return out / np.bincount(owners, minlength=n_records)[:, None]


class EpochLoop:
    """Epochs of training with periodic validation, the best model kept, early stop and a time limit.

    Subclasses say what one batch's loss is (`batch_loss`), how a validation
    scores the model (`evaluate` -> the value that picks the best model and
    the hotlog row), and whether higher values are better.
    """

    higher_is_better = True
    compensation = 0.0  # oversampling of rare classes in the epoch's batches

    def __init__(self, task, model, fold, device, rng, observer, started):
        self.task, self.model, self.fold, self.device = task, model, fold, device
        self.rng, self.observer, self.started = rng, observer, started
        self.tp = task.model.training_parameters
        steps = max(1, -(-len(fold.train) // self.tp.batch_size))
        self.stepper = optim.Stepper(model, self.tp, steps, task.max_epochs, device)
        self.best_value, self.best_epoch, self.best_state = None, 0, None
        self.epoch, self.stop_reason = 0, "max_epochs"
        # The limit counts training time, not the reading and preprocessing before it.
        self.deadline = None if task.time_limit_s is None else time.monotonic() + task.time_limit_s
        self.out_of_time = False

    def run(self) -> None:
        train_x = None
        pipeline = self.fold.pipeline
        for epoch in range(1, self.task.max_epochs + 1):
            if train_x is None or (pipeline.varies and
                                   (epoch - 1) % self.task.model.data_augmentation.reload_step == 0):
                train_x = pipeline.train_items(self.fold.train.signals, self.rng)
            loss = self.train_epoch(train_x)
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

    def train_epoch(self, train_x: list[np.ndarray]) -> float:
        self.model.train()
        losses = []
        lengths = np.array([f.shape[0] for f in train_x])
        for batch in epoch_batches(self.fold.train.labels, lengths, self.tp.batch_size, self.compensation,
                                   self.rng):
            x, lengths_t = self.fold.pipeline.to_tensors([train_x[i] for i in batch], self.device)
            with self.stepper.autocast():
                loss = self.batch_loss(x, lengths_t, batch)
            self.stepper.step(loss)
            losses.append(float(loss.detach()))
            # The time limit ends training at a batch boundary, so one slow epoch cannot overrun it.
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.out_of_time = True
                break
        return float(np.mean(losses))

    def validate(self, epoch: int, train_loss: float) -> None:
        value, row = self.evaluate()
        if self.best_value is None or (value >= self.best_value if self.higher_is_better
                                       else value <= self.best_value):
            self.best_value, self.best_epoch = value, epoch  # ties go to the later epoch, as in the reference
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.observer.on_best(self.model, epoch)
        self.observer.on_validation({"epoch": epoch, "best_epoch": self.best_epoch, "train_loss": train_loss,
                                     **row, "learning_rate": self.stepper.lr,
                                     "elapsed_s": time.monotonic() - self.started})

    def batch_loss(self, x: torch.Tensor, lengths: torch.Tensor, batch: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self) -> tuple[float, dict]:
        raise NotImplementedError


class _Loop(EpochLoop):
    """Classification: class-weighted cross-entropy, validation by the official score."""

    def __init__(self, task, model, fold, weights, device, rng, observer, started):
        super().__init__(task, model, fold, device, rng, observer, started)
        self.compensation = self.tp.dataset_compensation
        self.loss_cfg = task.model.loss_function_parameters
        self.weights = torch.tensor(weights, dtype=torch.float32, device=device)

    def batch_loss(self, x, lengths, batch) -> torch.Tensor:
        y = torch.as_tensor(self.fold.train.labels[batch], device=self.device)
        if self.tp.mixup > 0 and x.shape[0] > 1:
            x, lengths, perm, lam = optim.mixup(x, lengths, self.tp.mixup, self.rng)
            logits = self.model(x, lengths)
            per_record = (lam * optim.weighted_loss(logits, y, self.weights, self.loss_cfg)
                          + (1 - lam) * optim.weighted_loss(logits, y[perm], self.weights, self.loss_cfg))
        else:
            per_record = optim.weighted_loss(self.model(x, lengths), y, self.weights, self.loss_cfg)
        loss = per_record.mean()
        if self.loss_cfg.l2_penalty > 0:
            loss = loss + self.loss_cfg.l2_penalty * optim.l2_penalty(self.model)
        return loss

    def evaluate(self) -> tuple[float, dict]:
        valid = self._score(self.fold.valid)
        row = {"valid_accuracy": valid["accuracy"], "valid_score": valid["score"], "valid_f1": valid["f1"]}
        if self.task.log_test_score:
            test = self._score(self.fold.test)
            row.update(test_accuracy=test["accuracy"], test_score=test["score"], test_f1=test["f1"])
        return valid["score"], row

    def _score(self, subset) -> dict:
        probs = predict_proba(self.model, self.fold.pipeline, subset.eval_items, subset.owners, len(subset),
                              self.device)
        return score_report(subset.labels, probs.argmax(axis=1))
