"""Process groups for scale-out: the same code runs single-process or under ``accelerate launch``/torchrun.

Work is split by whole batches (batch b goes to rank b % world), so every sample is computed in the
same batch as in a single-process run; float64 sums are all-reduced and per-sample records gathered
back into sample order, so results equal a single-process run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist

from saesteer.errors import DistributedError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def my_batches(self, n_items: int, batch_size: int) -> list[tuple[int, int]]:
        """(start, end) of the batches this rank processes."""
        starts = range(0, n_items, batch_size)
        return [(s, min(s + batch_size, n_items)) for i, s in enumerate(starts) if i % self.size == self.rank]


def world() -> World:
    """The current process group; launched with WORLD_SIZE > 1 (accelerate, torchrun) it is initialised
    through accelerate (gloo on CPU, nccl on GPUs)."""
    if not dist.is_available():
        return World()
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState()
    if dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def gather(items: list[Any], current: World) -> list[Any]:
    """Concatenate every rank's list (rank order); a no-op single-process."""
    if current.size == 1:
        return items
    parts: list[Any] = [None] * current.size
    with collective("gathering per-sample records"):
        dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


@contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed collective (a peer process died) into a DistributedError that says what to do."""
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as exc:
        raise DistributedError(
            f"{what} failed on rank {dist.get_rank()}: another process stopped ({str(exc).splitlines()[0]}). "
            "Nothing from this step was written to the store. Fix: read the other ranks' output (killed, out of "
            "memory?) and rerun; benchmark records already on disk are kept and skipped."
        ) from exc
