"""Data parallelism of the features stage over views with ``torch.distributed``.

``torchrun --nproc-per-node N -m gsseg train DATA --out RUN --views-per-step V`` starts N
processes; each renders and back-propagates its share of the V views of every step (view slot
``j`` goes to rank ``j % N``), the per-Gaussian feature gradients are summed across ranks
(all-reduce), and every rank takes the same optimiser step, so the features stay identical on
all ranks and equal those of one process with the same seed and ``--views-per-step``. An
objective's state (object-field's error maps, clustering's cross-view memory) follows the same
rule: every rank gathers the step's observations of all views (:meth:`ProcessGroup.gather_slots`)
and applies them in slot order (``Objective.update_state``).
Rank 0 is the only writer (config, RGB stage, checkpoints, outputs); the other ranks wait for
it at barriers. Backend: gloo on CPU, NCCL when the features live on a GPU (one GPU per rank,
``LOCAL_RANK``). Multi-node runs use torchrun's rendezvous flags (see the README).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from gsseg.errors import GssegError

# The RGB stage runs on rank 0 while the other ranks wait; their barrier must outlast it.
BARRIER_TIMEOUT = datetime.timedelta(hours=12)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: ``rank`` of ``world_size`` (1 = not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def owns(self, slot: int) -> bool:
        """Whether view slot ``slot`` (0..V-1 within a step) is this rank's."""
        return slot % self.world_size == self.rank

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum_(self, tensor: Tensor) -> Tensor:
        """In-place sum over ranks (no-op in one process)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_slots(self, items: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """Every rank's ``(slot, value)`` pairs, on every rank, sorted by slot (values are pickled,
        tensors travel on the CPU); the pairs themselves in one process."""
        if not self.distributed:
            return sorted(items, key=lambda item: item[0])
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, [(slot, _to_cpu(value)) for slot, value in items])
        return sorted((pair for part in gathered for pair in part), key=lambda item: item[0])


def _to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside (dicts, lists, tuples) moved to the CPU."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


SINGLE = ProcessGroup()


def launched_world_size() -> int:
    """WORLD_SIZE set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise GssegError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def init_process_group(device: str = "cpu") -> ProcessGroup:
    """Join the job torchrun started (env:// rendezvous); the single-process group otherwise.

    device: where the features live; ``cuda`` selects NCCL and this rank's ``LOCAL_RANK`` GPU.
    """
    world = launched_world_size()
    if world <= 1:
        return SINGLE
    if not dist.is_available():
        raise GssegError("this torch build has no torch.distributed; run without torchrun")
    if not dist.is_initialized():
        use_cuda = device.startswith("cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=BARRIER_TIMEOUT)
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


def current_group() -> ProcessGroup:
    """The group this process already joined, or the single-process group."""
    if dist.is_available() and dist.is_initialized():
        return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())
    return SINGLE
