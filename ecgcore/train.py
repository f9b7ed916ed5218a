"""Training loop: `train_task(task, observer) -> TrainResult`, no Ray needed.

Follows the reference training of Zihlmann et al.: Adam, class-weighted
cross-entropy with weights (1-c) + c*100/class_percent, oversampling of rare
classes by dataset_compensation, augmentation of the training set only
(random resampling, zero bursts, white noise) redrawn every reload_step
epochs, validation every validation_step epochs, the best model by
validation score kept, early stop after early_stop_wait epochs without
improvement. Everything random draws from seeds derived from (seed, fold),
so a CPU run repeats exactly. Outputs go to an observer (the orchestrator's
fold log, which may also report to Ray); nothing here writes files.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ecgcore import data
from ecgcore.cinc2017 import CLASSES
from ecgcore.metrics import score_report
from ecgcore.models import get_architecture
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
    stopped_early: bool
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
    arch = get_architecture(task.model.model_name)
    tp = task.model.training_parameters
    model = arch.build(task.model.model_parameters, fold.n_freqs, len(CLASSES), tp.drop_rate).to(device)
    info = {"device": str(device), "n_parameters": sum(p.numel() for p in model.parameters()),
            "n_train": len(fold.train), "n_valid": len(fold.valid), "n_test": len(fold.test),
            "class_weights": class_weights(fold.train.labels,
                                           task.model.loss_function_parameters.class_penalty).tolist()}
    loop = _Loop(task, model, fold, info["class_weights"], device, rng, observer, started)
    loop.run()
    model.load_state_dict(loop.best_state)
    scores, test_predictions = {}, []
    for part in ("train", "valid", "test"):
        subset = getattr(fold, part)
        probs = predict_proba(model, subset.features, device)
        scores[part] = score_report(subset.labels, probs.argmax(axis=1))
        if part == "test":
            test_predictions = [(name, CLASSES[label], p.tolist())
                                for name, label, p in zip(subset.names, subset.labels, probs, strict=False)]
    info["elapsed_s"] = time.monotonic() - started
    return TrainResult(scores, loop.best_epoch, loop.epoch, loop.stopped_early, test_predictions, info)


@torch.no_grad()
def predict_proba(model: nn.Module, features: list[np.ndarray], device) -> np.ndarray:
    """Class probabilities for spectrograms, batched by similar length."""
    model.eval()
    order = np.argsort([f.shape[0] for f in features])
    out = np.zeros((len(features), len(CLASSES)), dtype=np.float64)
    for start in range(0, len(order), EVAL_BATCH):
        idx = order[start:start + EVAL_BATCH]
        x, lengths = data.to_tensors([features[i] for i in idx], device)
        out[idx] = torch.softmax(model(x, lengths).float(), dim=1).cpu().numpy()
    return out


class _Loop:
    """State of one training run: epochs, validation, best model, early stop."""

    def __init__(self, task, model, fold, weights, device, rng, observer, started):
        self.task, self.model, self.fold, self.device = task, model, fold, device
        self.rng, self.observer, self.started = rng, observer, started
        self.tp = task.model.training_parameters
        self.l2 = task.model.loss_function_parameters.l2_penalty
        self.weights = torch.tensor(weights, dtype=torch.float32, device=device)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.tp.learning_rate)
        decay = 0.9999 if self.tp.exponential_decay else 1.0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: decay ** step)
        self.decayed = [p for n, p in model.named_parameters() if "weight" in n and p.ndim > 1]
        self.best_score, self.best_epoch, self.best_state = -1.0, 0, None
        self.epoch, self.stopped_early = 0, False

    def run(self) -> None:
        train_x = None
        for epoch in range(1, self.task.max_epochs + 1):
            if train_x is None or (epoch - 1) % self.task.model.data_augmentation.reload_step == 0:
                train_x = data.augmented_features(self.fold.train, self.task.model, self.rng)
            loss = self.train_epoch(train_x)
            self.epoch = epoch
            if epoch % self.tp.validation_step == 0 or epoch == self.task.max_epochs:
                self.validate(epoch, loss)
                if epoch - self.best_epoch >= self.tp.early_stop_wait:
                    self.stopped_early = True
                    break
        if self.best_state is None:
            self.best_state = copy.deepcopy(self.model.state_dict())

    def train_epoch(self, train_x: list[np.ndarray]) -> float:
        self.model.train()
        losses = []
        labels = self.fold.train.labels
        lengths = np.array([f.shape[0] for f in train_x])
        for batch in epoch_batches(labels, lengths, self.tp.batch_size, self.tp.dataset_compensation,
                                   self.rng):
            x, lengths = data.to_tensors([train_x[i] for i in batch], self.device)
            y = torch.as_tensor(labels[batch], device=self.device)
            logits = self.model(x, lengths)
            loss = (nn.functional.cross_entropy(logits, y, reduction="none") * self.weights[y]).mean()
            if self.l2 > 0:
                loss = loss + self.l2 * 0.5 * sum((p ** 2).sum() for p in self.decayed)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def validate(self, epoch: int, train_loss: float) -> None:
        valid = self._score(self.fold.valid)
        if valid["score"] >= self.best_score:
            self.best_score, self.best_epoch = valid["score"], epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.observer.on_best(self.model, epoch)
        row = {"epoch": epoch, "best_epoch": self.best_epoch, "train_loss": train_loss,
               "valid_accuracy": valid["accuracy"], "valid_score": valid["score"],
               "valid_f1": valid["f1"]}
        if self.task.log_test_score:
            test = self._score(self.fold.test)
            row.update(test_accuracy=test["accuracy"], test_score=test["score"], test_f1=test["f1"])
        row.update(learning_rate=self.scheduler.get_last_lr()[0],
                   elapsed_s=time.monotonic() - self.started)
        self.observer.on_validation(row)

    def _score(self, subset) -> dict:
        probs = predict_proba(self.model, subset.features, self.device)
        return score_report(subset.labels, probs.argmax(axis=1))
