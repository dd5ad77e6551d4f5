"""Which process of a torch.distributed group this is (see :mod:`tabular_suite.training.distributed`):
the part of it that files and tracking need, below every other layer."""

from __future__ import annotations

import os

import torch.distributed as dist

__all__ = ["is_main_process", "rank_and_world"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside a process group.

    >>> rank_and_world()
    (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Rank 0, or a process outside any group: the one that writes files and logs (before the
    group is joined, torchrun's ``RANK`` tells).

    >>> is_main_process()
    True
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0
