"""Batches on their way to the device: built ahead on a thread, pinned and copied without waiting.

The inputs of a training batch (augmentation, random window, spectrogram,
padding) are computed on the CPU while the model trains on the previous
batch: `prefetch` runs a producer on a daemon thread behind a bounded queue.
Only work that draws from nothing but the batch's own per-record seeds
(ecgcore.data.inputs.TrainInputs) may go there; every draw from the fold's
random stream (the epoch's batch order, mixup, pre-training masks) stays on
the training thread, in the order it always had, so a CPU run repeats bit
for bit and a resumed one continues exactly.

On CUDA the host tensors are pinned and copied with non_blocking=True, so the
training thread queues the copy and goes on; evaluation batches are larger
than training ones there (no gradients to hold), and cuDNN autotunes its
kernels when every batch has the same length. On the CPU none of that
applies: same batches, same sizes, no torch.cuda call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np
import torch

EVAL_BATCH = 64  # evaluation batch on the CPU (and the least on CUDA): CPU scores stay what they always were
CUDA_EVAL_MAX = 256  # the largest evaluation batch on CUDA: a 61 s record at 300 Hz is 18k steps per item
_CPU = torch.device("cpu")
_POLL_S = 0.05  # how often a producer blocked on a full queue looks whether the consumer has gone
_ITEM, _ERROR, _END = "item", "error", "end"


class Prefetcher(Iterator):
    """The items of an iterable, produced on a daemon thread up to `depth` ahead of the consumer.

    An exception raised by the producer is raised by the consumer's next() at
    the place of the item that failed, after every item before it. close()
    (also on leaving a `with` block, e.g. after a break) stops the producer
    after at most the item it is building and joins its thread.
    """

    def __init__(self, iterable: Iterable, depth: int = 2):
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, not {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, args=(iter(iterable),), name="ecg-prefetch",
                                        daemon=True)  # never keeps the process alive (a trial killed mid-epoch)
        self._thread.start()

    def _produce(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # whatever it is, the consumer raises it
            self._put((_ERROR, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator left half-way runs its own cleanup on its own thread
                close()
        self._put((_END, None))

    def _put(self, entry) -> bool:
        """Queue entry unless the consumer has closed; a timeout, so a full queue cannot hold the thread."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self):
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._done = True
        self._thread.join()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self, timeout: float | None = 30.0) -> None:
        self._done = True
        self._stop.set()
        try:  # make room, so a producer waiting in put() sees the stop at once
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prefetch(iterable: Iterable, depth: int = 2) -> Prefetcher:
    """Iterate `iterable` on a background thread, `depth` items ahead; use as `with prefetch(...) as items:`."""
    return Prefetcher(iterable, depth)


def host_batch(pipeline, items: list[np.ndarray], pin: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's (inputs, lengths) on the CPU, pinned when they go on to a GPU (an asynchronous copy needs it)."""
    x, lengths = pipeline.to_tensors(items, _CPU)
    if pin:
        x, lengths = x.pin_memory(), lengths.pin_memory()
    return x, lengths


def host_batches(pipeline, inputs, batches: Iterable[np.ndarray], pin: bool):
    """(index batch, inputs, lengths) on the CPU for each index batch of `inputs` (a LazyInputs)."""
    for idx in batches:
        x, lengths = host_batch(pipeline, inputs.batch(idx), pin)
        yield idx, x, lengths


def to_device(x: torch.Tensor, lengths: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch on the device; from pinned memory the copy is queued and the host does not wait for it.

    On the CPU .to() returns the very tensors: nothing is copied.
    """
    return x.to(device, non_blocking=True), lengths.to(device, non_blocking=True)


def eval_batch_size(device, train_batch: int | None = None) -> int:
    """Evaluation batch: EVAL_BATCH on the CPU; on CUDA 4x the training batch (no gradients), within bounds."""
    if torch.device(device).type != "cuda":
        return EVAL_BATCH
    return max(EVAL_BATCH, min(CUDA_EVAL_MAX, 4 * (train_batch or EVAL_BATCH)))


def fixed_length(pipeline) -> bool:
    """Whether every batch has the same number of time steps.

    Signal inputs cut to a window are padded to that window (Pipeline.to_tensors),
    train and evaluation pieces alike; features are one step. Whole records and
    spectrograms are as long as the longest record of their batch, which varies.
    """
    kind = pipeline.inputs.kind
    return kind == "features" or (kind == "signal" and bool(pipeline.pre.window))


def tune_device(device: torch.device, pipeline) -> None:
    """cuDNN autotuning on a CUDA fold whose batches share one length; nothing at all on the CPU.

    Autotuning times the candidate kernels once per input shape and keeps the
    fastest: a gain when shapes repeat, a search on nearly every batch when the
    length varies with the records, so it is switched off there (and back off
    for such a fold after a fixed-length one in the same process).
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = fixed_length(pipeline)
