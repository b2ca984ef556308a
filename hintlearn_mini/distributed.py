"""Training on several processes: PyTorch's own ``torch.distributed`` and ``torchrun``.

``torchrun --nproc_per_node=N -m hintlearn_mini.bench ...`` starts N processes (one per
GPU, or N CPU processes with the ``gloo`` backend) that train *one* run together. The
rules, all in this file or in ``train.fit``:

* every process goes through the same global batches of ``batch_size`` images (the
  same order and the same augmented views as one process, seeded by (seed, epoch)) and
  trains on its contiguous share (:func:`my_shard`). A ``DistributedSampler`` would
  deal the images out in another order, so two processes could never be compared with
  one; sharing the global batch keeps the run the one-process run up to BatchNorm;
* ``DistributedDataParallel`` averages the gradients of the trainable modules (the
  student, regressors, embeddings, fusion modules); the frozen teacher has none. The
  learning rate is that of the global batch;
* state a method keeps outside its gradients stays one state: CRD's memory bank is
  updated on every process with every process's rows (:func:`all_rows`, as MoCo shares
  its queue) and its constant Z is a mean over the global batch (:func:`global_mean`);
* BatchNorm normalises each process's share, unless the profile asks for
  ``SyncBatchNorm`` (a GPU only: :func:`synchronised_batchnorm`);
* one process (rank 0) writes files: checkpoints, the run cache, the CSV rows; the
  others wait for its decisions (:func:`process_zero_says`).

Every function here is the identity for a single process, so the book's runs never
notice it. Tested on a CPU with two ``gloo`` processes (``tests/test_distributed.py``).
Chapter: ``book/08_comparison.ipynb`` (one bank across processes) and the README.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["processes", "is_writer", "my_shard", "all_rows", "global_mean", "process_zero_says",
           "torchrun_processes", "start_from_torchrun", "stop", "synchronised_batchnorm"]


def processes() -> tuple[int, int]:
    """``(rank, count)`` of the processes training together; ``(0, 1)`` for one process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_writer() -> bool:
    """True in the one process that writes files (rank 0, or the only process)."""
    return processes()[0] == 0


def my_shard(*batch: Tensor) -> tuple[Tensor, ...]:
    """This process's contiguous share of a global batch (all of it for one process):
    with N processes and B images, shares of ``B // N`` or ``B // N + 1`` images."""
    rank, count = processes()
    if count == 1:
        return batch
    mine = torch.tensor_split(torch.arange(len(batch[0])), count)[rank]
    return tuple(t[mine] for t in batch)


def all_rows(*tensors: Tensor) -> list[Tensor]:
    """Every process's rows of each tensor, concatenated in rank order: the same result on
    every process. Shares of different lengths are padded for the exchange."""
    if processes()[1] == 1:
        return list(tensors)
    device = tensors[0].device
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(processes()[1])]
    dist.all_gather(sizes, torch.tensor([len(tensors[0])], device=device))
    longest = int(max(sizes))
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[:len(tensor)] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        gathered.append(torch.cat([part[:int(n)] for part, n in zip(parts, sizes)]))
    return gathered


def global_mean(values: Tensor) -> Tensor:
    """The mean of ``values`` over every process's share."""
    if processes()[1] == 1:
        return values.mean()
    total = torch.stack([values.sum(), torch.tensor(float(values.numel()), device=values.device)])
    dist.all_reduce(total)
    return total[0] / total[1]


def process_zero_says(value):
    """Process 0's ``value`` (any picklable object), on every process. For decisions
    that read files, which only process 0 writes: "is this run in the cache?"."""
    if processes()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def torchrun_processes() -> int:
    """How many processes ``torchrun`` started for this run (``WORLD_SIZE``; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start_from_torchrun(device: str) -> str:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE`` > 1 in the environment);
    return the device this process trains on: ``cuda:LOCAL_RANK`` for ``cuda``, else
    ``device``. Backend: NCCL on GPUs, gloo on CPUs. Without torchrun: ``device``."""
    if torchrun_processes() <= 1 or dist.is_initialized():
        return device
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return device


def stop(wait: bool = True) -> None:
    """Leave the process group, if there is one. ``wait``: first wait for every process
    to get here (a process that left early could close its connections while another
    still reads its last message); False after an error, when the others may never come."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def synchronised_batchnorm(modules: list[nn.Module], device: str):
    """Within the block, the BatchNorm layers of ``modules`` compute their statistics
    over the global batch (``torch.nn.SyncBatchNorm``); afterwards the same modules
    hold plain BatchNorm layers again. The layers share their parameters and buffers
    (the same tensors throughout), so an optimiser built inside or outside the block
    trains them.

    SyncBatchNorm runs on GPUs only: on a CPU, or for one process, the block changes
    nothing (with a warning when several CPU processes asked for it)."""
    count = processes()[1]
    if count == 1 or not device.startswith("cuda"):
        if count > 1:
            warnings.warn(f"SyncBatchNorm needs GPUs; on {device} each of the {count} processes "
                          f"normalises its own share of the batch", stacklevel=3)
        yield
        return
    swapped = [_replace_layers(m, nn.modules.batchnorm._BatchNorm, _to_sync) for m in modules]
    try:
        yield
    finally:
        for module, names in zip(modules, swapped):
            _replace_layers(module, nn.SyncBatchNorm, _to_plain, only=names)


def _replace_layers(module: nn.Module, kind: type, convert, only=None) -> list[str]:
    """Replace every child layer of ``kind`` (those named in ``only``) by ``convert(layer)``;
    the names replaced."""
    names = []
    for name, layer in list(module.named_modules()):
        if isinstance(layer, kind) and name and (only is None or name in only):
            parent_name, _, child = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child, convert(layer))
            names.append(name)
    return names


def _to_sync(layer: nn.Module) -> nn.SyncBatchNorm:
    sync = nn.SyncBatchNorm(layer.num_features, layer.eps, layer.momentum, layer.affine,
                            layer.track_running_stats)
    sync._plain_type = type(layer)  # what it goes back to
    return _sharing_tensors(sync, layer)


def _to_plain(layer: nn.SyncBatchNorm) -> nn.Module:
    plain = layer._plain_type(layer.num_features, layer.eps, layer.momentum, layer.affine,
                              layer.track_running_stats)
    return _sharing_tensors(plain, layer)


def _sharing_tensors(new: nn.Module, old: nn.Module) -> nn.Module:
    """``new`` with ``old``'s very parameters and buffers (not copies: an optimiser built
    on ``old``'s parameters trains ``new``) and its mode."""
    for name, parameter in old.named_parameters(recurse=False):
        setattr(new, name, parameter)
    for name, buffer in old.named_buffers(recurse=False):
        setattr(new, name, buffer)
    return new.train(old.training)
