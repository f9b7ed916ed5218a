"""Data-parallel training of one fold over several processes (torch.distributed), without Ray.

Whoever starts the processes initialises the process group (Ray Train in orchestrator/run/ddp.py;
torchrun would do as well); `Replicas.from_process_group()` then says which rank this process is.
How the ranks stay one model:
- every rank draws the epoch's batch order and training inputs from the same seeded generator, so
  all ranks cut the same batches; each trains on its slice of a batch (batch[rank::world]) and
  DistributedDataParallel averages the gradients, so a step sees the whole batch, as one process
  would (the mean of the slices' mean losses; slices differ by at most one record);
- draws made inside a batch's loss (mixup partners, pre-training masks) come from a generator of
  the rank's own, since slices differ in size and would otherwise drift the shared generator apart;
- BatchNorm normalises with each rank's slice (plain DDP; SyncBatchNorm needs CUDA), and its running
  statistics are copied from rank 0 before every validation, so all ranks evaluate the same model
  and take the same decisions (best model, early stop) without exchanging them;
- the time limit is decided together: a rank that is out of time stops all of them at the same batch.
Rank 0 alone reports and writes; the others train silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Replicas:
    """This process's place among the processes training one fold: rank of world (0 of 1: alone)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_process_group(cls) -> Replicas:
        if dist.is_available() and dist.is_initialized():
            return cls(rank=dist.get_rank(), world=dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def shard(self, batch: np.ndarray) -> np.ndarray:
        """This rank's records of a batch; a batch smaller than the world gives each rank one record."""
        if not self.active:
            return batch
        if len(batch) >= self.world:
            return batch[self.rank::self.world]
        return batch[[self.rank % len(batch)]]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module that trains: DDP around the model (rank 0's weights broadcast now), or the model."""
        if not self.active:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def draws(self, shared: np.random.Generator, seed: list[int]) -> np.random.Generator:
        """The generator for draws inside a batch's loss: the shared one alone, a rank's own otherwise."""
        return np.random.default_rng([*seed, self.rank]) if self.active else shared

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a collective: every rank must ask)."""
        if not self.active:
            return flag
        value = torch.tensor([int(flag)], device=self._collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, value: float) -> float:
        """The mean over the ranks of a number each of them has (a collective)."""
        if not self.active:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(total)
        return float(total.item()) / self.world

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank."""
        if self.active:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def weight_digests(self, model: nn.Module) -> list[str]:
        """Every rank's SHA-256 of the model's state, by rank: equal when the replicas agree."""
        return self.weight_digests_of(model.state_dict())

    def weight_digests_of(self, state: dict) -> list[str]:
        """Every rank's SHA-256 of a state_dict it holds, by rank (a collective)."""
        return self.gather(state_digest(state))

    def gather(self, value) -> list:
        """Every rank's value (anything picklable), by rank (a collective)."""
        if not self.active:
            return [value]
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered

    @staticmethod
    def _collective_device() -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
            else torch.device("cpu")


def state_digest(state: dict) -> str:
    """SHA-256 of a state_dict's names, dtypes, shapes and raw bytes (bit-exact)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
