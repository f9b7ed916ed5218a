"""Training loop: `train_task(task, observer) -> TrainResult`, no Ray needed.

Follows the reference training of Zihlmann et al.: class-weighted
cross-entropy with weights (1-c) + c*100/class_percent, oversampling of rare
classes by dataset_compensation, augmentation of the training set only,
redrawn every reload_step epochs, validation every validation_step epochs,
the best model by validation score kept, early stop after early_stop_wait
epochs without improvement. The optimiser, schedule, label smoothing, mixup,
clipping and mixed precision come from the model file (ecgcore.training.optim).
Everything random draws from seeds derived from (seed, fold), so a CPU run
repeats exactly. A task of kind "pretrain" goes to ecgcore.training.pretrain; a task
of a multi-label track trains with ecgcore.training.multilabel, and its per-class
thresholds are tuned on the validation fold. A boosted
model (FeatureGBM) is fitted by ecgcore.training.boosting instead of the epoch loop
and scored by the same final step; a stacked one (HybridStack) by
ecgcore.training.stacking. Outputs
go to an observer (the orchestrator's fold log, which may also report to
Ray); nothing here writes files.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn

from ecgcore.config.task import Task
from ecgcore.data import pipeline as data
from ecgcore.errors import ProjectError
from ecgcore.models import create_model, get_architecture
from ecgcore.training import multilabel, optim
from ecgcore.training.distributed import Replicas
from ecgcore.training.loop import EpochLoop, FoldRun, TrainingObserver, TrainResult, predict_proba

# oneDNN caches a compiled primitive (with its buffers) per input shape; with
# variable-length records every batch has a new shape and a reused Ray actor
# grew to 20 GB over eight folds. Without the cache memory stays flat and the
# speed is the same (measured: 13.7 s vs 13.8 s for 16 CNN_paper batches).
# It must be set before the first convolution in the process; a user's own
# setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


def class_weights(train_labels: np.ndarray, class_penalty: float, n_classes: int) -> np.ndarray:
    """(1-c) + c*100/percent per class; a class absent from training gets weight 1."""
    counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
    percent = 100.0 * counts / counts.sum()
    occurrence = np.divide(100.0, percent, out=np.ones_like(percent), where=percent > 0)
    return (1 - class_penalty) + class_penalty * occurrence


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


def train_task(task: Task, observer: TrainingObserver | None = None, resume: dict | None = None,
               prepared=None, parts: dict | None = None, device: str | None = None,
               notes: tuple[str, ...] = (), replicas: Replicas = Replicas()) -> TrainResult:
    """Train task.model on its fold and score the best model on train/valid/test.

    resume is a state the observer received through on_checkpoint: training
    continues after that validation (a retried trial), not from scratch.
    prepared is the task's dataset already preprocessed (ecgcore.io.cache);
    without it the fold reads and preprocesses the dataset itself. parts
    holds the same for each part of a stacked model, by part name. device is
    where to train ("cpu", "cuda"); the caller that knows what the fold was given
    (the trial: Ray's GPU ids) decides, and a fold given no GPU then never touches
    CUDA. None: CUDA when torch sees it, else the CPU. notes go to scores.json.
    replicas: this process's rank among those training the fold with DDP (their
    process group already initialised); only rank 0's result is complete.
    """
    started = time.monotonic()
    torch.set_num_threads(task.threads)
    seed = np.random.SeedSequence([task.model.training_parameters.seed, task.fold])
    # Each rank its own dropout draws; rank 0 (and a lone process) the fold's, DDP gives all rank 0's weights.
    torch.manual_seed(int(seed.generate_state(1)[0]) + replicas.rank)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fold = data.load_fold(task, prepared)
    run = FoldRun(task=task, fold=fold, device=device, rng=np.random.default_rng(seed),
                  observer=observer or TrainingObserver(), started=started, replicas=replicas)
    track = task.open_track()
    model = create_model(task.model, fold.pipeline.inputs, len(track.class_names)).to(device)
    info = {"device": str(device), "n_parameters": sum(p.numel() for p in model.parameters()),
            "n_train": len(fold.train), "n_valid": len(fold.valid), "n_test": len(fold.test),
            "test_sources": sorted(set(fold.test.sources)), "source_fs": fold.pipeline.source_fs,
            "shared_dataset": prepared is not None,
            # What the reader left out: the caller that prepared the dataset says it (notes), else the reader here.
            "notes": [*notes, *(track.dataset_note(task.data_dir) if prepared is None else ())]}
    if replicas.active and get_architecture(task.model.model_name).trainer in ("stacking", "boosting"):
        raise ProjectError(f"{task.model.model_name} is not trained by gradient steps: it cannot be trained by "
                           "several processes (workers_per_task must be 1)")
    if get_architecture(task.model.model_name).trainer == "stacking":
        from ecgcore.training.stacking import train_stack  # LightGBM, scikit-learn and the feature set: hybrids only

        return train_stack(run, model, parts or {}, track, info)
    if task.init_checkpoint:
        info["initialised_tensors"] = load_pretrained(model, task.init_checkpoint)
    if task.kind == "pretrain":
        from ecgcore.training.pretrain import pretrain

        return pretrain(run, model, info, resume)
    if get_architecture(task.model.model_name).trainer == "boosting":
        from ecgcore.training.boosting import train_booster  # LightGBM and the feature set: only boosted models

        info["class_weights"] = class_weights(fold.train.labels, task.model.loss_function_parameters.class_penalty,
                                              len(track.class_names)).tolist()
        rounds = train_booster(run, model, info)
        return _final_scores(run, model, track, rounds, info)
    if track.multilabel:
        info.update(multilabel.multilabel_info(task, fold))
        loop = multilabel.MultiLabelLoop(run, model, track, info)
    else:
        info["class_weights"] = class_weights(fold.train.labels, task.model.loss_function_parameters.class_penalty,
                                              len(track.class_names)).tolist()
        loop = _Loop(run, model, track, info["class_weights"])
    if resume is not None:
        loop.restore(resume)
        info["resumed_after_epoch"] = resume["epoch"]
    loop.run()
    if replicas.active:
        return _replicated_result(run, model, track, loop, info)
    model.load_state_dict(loop.best_state)
    return _final_scores(run, model, track, loop, info)


def _replicated_result(run: FoldRun, model, track, loop, info: dict) -> TrainResult:
    """Rank 0's scores of the best model, with every rank's digest of its weights; the other ranks stop here."""
    replicas = run.replicas
    info["replicas"] = {"world_size": replicas.world, "final_weights_sha256": replicas.weight_digests(model),
                        "best_weights_sha256": replicas.weight_digests_of(loop.best_state)}
    info["replicas"]["identical"] = all(len(set(info["replicas"][k])) == 1
                                        for k in ("final_weights_sha256", "best_weights_sha256"))
    if not replicas.leader:
        return TrainResult.after(loop, scores={}, info=info)
    model.load_state_dict(loop.best_state)
    return _final_scores(run, model, track, loop, info)


def _final_scores(run: FoldRun, model, track, loop, info: dict) -> TrainResult:
    """The best model scored on each part; multi-label thresholds come from the validation fold."""
    fold, device = run.fold, run.device
    probs = {part: predict_proba(model, fold.pipeline, getattr(fold, part).eval_items, getattr(fold, part).owners,
                                 len(getattr(fold, part)), device, multilabel=track.multilabel)
             for part in ("train", "valid", "test")}
    thresholds = track.tune(fold.valid.labels, probs["valid"])
    scores = {part: track.report(getattr(fold, part).labels, p, thresholds) for part, p in probs.items()}
    predictions = {"names": list(fold.test.names), "targets": fold.test.labels, "probs": probs["test"]}
    info["elapsed_s"] = time.monotonic() - run.started
    return TrainResult.after(loop, scores=scores, predictions=predictions,
                             thresholds=None if thresholds is None else thresholds.tolist(), info=info)


class _Loop(EpochLoop):
    """Single-label classification: class-weighted cross-entropy, validation by the track's score."""

    def __init__(self, run: FoldRun, model, track, weights):
        super().__init__(run, model)
        self.track = track
        self.compensation = self.tp.dataset_compensation
        self.loss_cfg = run.task.model.loss_function_parameters
        self.weights = torch.tensor(weights, dtype=torch.float32, device=run.device)

    def batch_loss(self, x, lengths, batch) -> torch.Tensor:
        # A host tensor copied without waiting: as_tensor(..., device=cuda) would block on every batch.
        y = torch.as_tensor(self.fold.train.labels[batch]).to(self.device, non_blocking=True)
        if self.tp.mixup > 0 and x.shape[0] > 1:
            x, lengths, perm, lam = optim.mixup(x, lengths, self.tp.mixup, self.draw_rng)
            logits = self.train_model(x, lengths)
            per_record = (lam * optim.weighted_loss(logits, y, self.weights, self.loss_cfg)
                          + (1 - lam) * optim.weighted_loss(logits, y[perm], self.weights, self.loss_cfg))
        else:
            per_record = optim.weighted_loss(self.train_model(x, lengths), y, self.weights, self.loss_cfg)
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
        return self.track.report(subset.labels, probs)
