"""Several processes, one run: the little of torch.distributed the trainer needs (``torchrun`` sets it up)."""

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Cluster:
    """This process's place in the run: ``rank`` of ``world_size``, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self):
        """True on the one process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def world_size():
    """The number of processes ``torchrun`` started (``WORLD_SIZE``), 1 without it."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(device_name):
    """Join the process group when launched by ``torchrun`` with several processes.

    NCCL when the processes train on CUDA, gloo otherwise (CPU runs, and tests).
    """
    if world_size() == 1:
        return Cluster()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = device_name != "cpu" and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo")
    return Cluster(dist.get_rank(), world_size(), local_rank)


def wrap(module, *, sync_buffers):
    """``DistributedDataParallel(module)``; without ``sync_buffers``, each process keeps its own buffers after the start."""
    if sync_buffers:
        return DistributedDataParallel(module)
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:  # torch >= 2.13
        return DistributedDataParallel(module, forward_sync_buffers=False)
    return DistributedDataParallel(module, broadcast_buffers=False)


def stop(cluster, *, clean):
    """Leave the process group; after a ``clean`` run, first wait at a barrier for every process.

    The wait releases the GIL, which a gloo worker thread may still need to free the tensors of the last
    collective: a process that had nothing left to do (not the writer) would otherwise reach interpreter
    exit first, and the worker thread would abort it. After an error there is no barrier, since the other
    processes may be waiting in another collective: ``torchrun`` stops them.
    """
    if not (cluster.distributed and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def any_process(cluster, flag, device):
    """True on every process if ``flag`` is true on any (so that all of them stop together)."""
    if not cluster.distributed:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def all_processes(cluster, flag, device):
    """True on every process if ``flag`` is true on all of them."""
    return not any_process(cluster, not flag, device)


def gather(cluster, value):
    """The list of every process's ``value`` (picklable), in rank order; ``[value]`` alone."""
    if not cluster.distributed:
        return [value]
    values = [None] * cluster.world_size
    dist.all_gather_object(values, value)
    return values
