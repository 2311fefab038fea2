"""Training on several processes with PyTorch's own engine: `torch.distributed` and
`DistributedDataParallel`, launched by `torchrun` (nothing home-made: no custom all-reduce,
no custom launcher).

How the work is shared, and why:
- The global batch is `train.batch_size`; each of the N ranks computes `batch_size / N` of its
  rows. Every rank draws the same global batch from the same data RNG (the run's seed) and
  keeps its own slice, so N ranks see exactly the rows one process would: the loss curve is the
  same to float tolerance, and a run resumes on any number of ranks (the RNG state is global).
- DDP averages the gradients; clipping then sees the global gradient on every rank.
- Rank 0 alone logs, plots, evaluates and writes checkpoints; the others wait at a barrier.
  Decisions that end the run (the time budget, divergence) are made on rank 0 and broadcast.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Environment variables torchrun sets for each process it starts.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the others: rank r of world_size."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rows(self, batch_size: int) -> slice:
        """The rows of a global batch this rank computes."""
        per_rank = self.local_batch(batch_size)
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.world_size:
            raise ValueError(
                f"train.batch_size ({batch_size}) is the global batch and must divide evenly "
                f"among {self.world_size} ranks"
            )
        return batch_size // self.world_size


def launched_by_torchrun() -> bool:
    return all(v in os.environ for v in ENV_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def start(device_setting: str) -> tuple[Ranks, str]:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU) and return this
    rank's place and the device it trains on ("cuda:LOCAL_RANK" on CUDA). A single process
    (no torchrun) gets Ranks() and its device setting unchanged."""
    if not launched_by_torchrun():
        return Ranks(), device_setting
    ranks = Ranks(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    cuda = device_setting.startswith("cuda") or (
        device_setting == "auto" and torch.cuda.is_available()
    )
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
        device_setting = f"cuda:{ranks.local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30)
        )
    return ranks, device_setting


def stop() -> None:
    """Leave the process group (after the last collective of the run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


def rank0_decides(ranks: Ranks, decision: bool, device: torch.device) -> bool:
    """Rank 0's `decision`, on every rank (the others' own values are ignored)."""
    if not ranks.distributed:
        return decision
    flag = torch.tensor([1 if decision else 0], dtype=torch.int32, device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def mean_over_ranks(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The element-wise mean of `values` across ranks (a copy on one process)."""
    if not ranks.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / ranks.world_size


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The model DDP trains on several ranks (gradients averaged in backward); the model
    itself on one."""
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
