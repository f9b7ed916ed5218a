"""Training one task: `train_task(task, observer) -> TrainResult`, no Ray needed.

train_task seeds the fold, loads its data, builds the model and hands both to
the task's trainer (ecgcore.training.trainers: the architecture's, or
"pretrain" for a task of that kind). The epoch trainer follows the reference
training of Zihlmann et al. (ecgcore.training.classify): augmentation of the
training set only, redrawn every reload_step epochs, validation every
validation_step epochs, the best model by validation score kept, early stop
after early_stop_wait epochs without improvement; the optimiser, schedule,
label smoothing, mixup, clipping and mixed precision come from the model file
(ecgcore.training.optim). Everything random draws from seeds derived from
(seed, fold), so a CPU run repeats exactly. Outputs go to an observer (the
orchestrator's fold log, which may also report to Ray); nothing here writes
files.
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
from ecgcore.models import create_model
from ecgcore.training.distributed import Replicas
from ecgcore.training.loop import FoldRun, TrainingObserver, TrainResult
from ecgcore.training.trainers import get_trainer, trainer_name

# oneDNN caches a compiled primitive (with its buffers) per input shape; with
# variable-length records every batch has a new shape and a reused Ray actor
# grew to 20 GB over eight folds. Without the cache memory stays flat and the
# speed is the same (measured: 13.7 s vs 13.8 s for 16 CNN_paper batches).
# It must be set before the first convolution in the process; a user's own
# setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


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
    trainer = get_trainer(trainer_name(task.kind, task.model))
    if replicas.active and not trainer.replicas:
        raise ProjectError(f"{task.model.model_name} is not trained by gradient steps: it cannot be trained by "
                           "several processes (workers_per_task must be 1)")
    if task.init_checkpoint and trainer.fine_tunes:
        info["initialised_tensors"] = load_pretrained(model, task.init_checkpoint)
    return trainer.fit(run, model, track, info, resume, parts or {})
