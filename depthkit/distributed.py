"""More than one process: ``torchrun --nproc_per_node=N -m depthkit train ...``.

torchrun starts N copies of the command and tells each its ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``. :func:`init_distributed` joins them into one process group (nccl on CUDA, one GPU
per process; gloo on the CPU); :func:`depthkit.train.fit` then wraps the model in
``DistributedDataParallel``, gives each rank its shard of every epoch (``DistributedSampler`` with
``set_epoch``), sums validation metrics across ranks, and lets rank 0 alone write files. Without
torchrun every function here is a no-op, so the same code runs in one process.

The pattern follows torchvision's ``references/segmentation`` (``utils.init_distributed_mode``),
with the CPU/gloo case added.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


# Rank 0 prepares the data (caches of up to ~420,000 DIW images) while the other ranks wait at a
# barrier. That wait runs on its own gloo group with this timeout; the training collectives (nccl)
# keep torch's default (10 minutes), so a rank that really hangs is still caught quickly.
PREPARE_TIMEOUT = timedelta(hours=3)
_wait_group = None  # the gloo group of barrier(), made by init_distributed


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without torchrun)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0)."""
    return rank() == 0


def init_distributed(device: str | None = None) -> torch.device | None:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; return this rank's device (None: not distributed)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    use_cuda = torch.cuda.is_available() and (device or "auto") in ("auto", "cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    global _wait_group
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if _wait_group is None:  # every rank makes it, in the same order
        _wait_group = dist.new_group(backend="gloo", timeout=PREPARE_TIMEOUT)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every rank gets here, for up to :data:`PREPARE_TIMEOUT` (no-op in one process)."""
    if is_distributed():
        dist.barrier(group=_wait_group)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over all ranks (in place; returned for convenience)."""
    if is_distributed():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics drift apart per rank), so all evaluate one model."""
    if is_distributed():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def shard(n: int, seed: int = 0, epoch: int = 0, shuffle: bool = False) -> list[int] | None:
    """This rank's positions in ``range(n)`` for one epoch (``DistributedSampler`` + ``set_epoch``); None in one process."""
    if not is_distributed():
        return None
    if not shuffle:  # evaluation: every position exactly once over all ranks, no padding
        return list(range(rank(), n, world_size()))
    sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world_size(), rank=rank(),
                                                  shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return list(sampler)


def cleanup() -> None:
    """Leave the process group (at the end of a torchrun command)."""
    global _wait_group
    if is_distributed():
        barrier()
        dist.destroy_process_group()
        _wait_group = None
