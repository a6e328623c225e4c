"""Worker functions for the launcher's tests (``gpucnn.distributed.launch`` runs them in fresh processes)."""

from __future__ import annotations

import os
import time
from typing import Any


def echo(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """All-reduce each rank's number; return it with this launch's tag and this process's id."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    return {"rank": rank, "sum": float(t.item()), "tag": config.get("tag"), "pid": os.getpid(),
            "ifname": os.environ.get("GLOO_SOCKET_IFNAME")}


def raise_on_rank_1(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """Rank 1 raises; rank 0 waits for it in a collective that never completes."""
    import torch.distributed as dist

    if rank == 1:
        raise ValueError("boom on rank 1, on purpose")
    dist.barrier()
    return {}


def hang_on_rank_1(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """Rank 1 never returns; rank 0 finishes."""
    if rank == 1:
        time.sleep(3600)
    return {}


def wait(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """Both ranks sleep (until the test kills one)."""
    time.sleep(3600)
    return {}


def rank_0_waits_for_rank_1(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """Rank 0 waits in a barrier for rank 1, which sleeps (until the test kills it)."""
    import torch.distributed as dist

    if rank == 1:
        time.sleep(3600)
    dist.barrier()
    return {}
