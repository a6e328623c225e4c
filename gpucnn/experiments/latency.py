"""Small-op latency: what one tiny call costs, and how fast calls can be issued."""

from __future__ import annotations

from typing import Any

import torch

from gpucnn.bench import measure
from gpucnn.results import experiment


@experiment
def small_op_latency(device: str) -> dict[str, Any]:
    """Latency of a tiny op measured two ways.

    * ``single``: one call, then a synchronize, per timed run (``number_per_run=1``):
      the full cost of a call whose result you wait for.
    * ``stream``: many calls back to back, one synchronize at the end: the
      dispatch throughput, where an accelerator overlaps launch and execution.
    """
    x = torch.ones(1, device=device)
    a = torch.randn(2, 2, device=device)
    out: dict[str, Any] = {}
    for op, fn, flops in (("add", lambda: x + x, 1.0), ("matmul2x2", lambda: a @ a, 16.0)):
        out[f"{op}_single"] = measure(fn, name=f"{op} single call + sync", device=device, shape=(1,),
                                      flops=flops, number_per_run=1, min_runs=25)
        out[f"{op}_stream"] = measure(fn, name=f"{op} back to back", device=device, shape=(1,), flops=flops)
    return out
