"""Data reuse, measured directly: one matmul computed two ways.

``A @ B`` runs as a tiled kernel (BLAS on a CPU, cuBLAS on a GPU) that loads
each input tile into fast memory once and reuses it many times. The same
product written as a broadcast multiply and a sum,
``(A[:, :, None] * B[None, :, :]).sum(1)``, does the same multiplies and adds
but writes all n^3 products to memory and reads them back: no reuse at all.
The ratio of the two times is what tiling buys.
"""

from __future__ import annotations

from typing import Any

import torch

from gpucnn.bench import Measurement, measure, sweep
from gpucnn.profile import current_profile
from gpucnn.results import experiment

# Small n: the broadcast's n^3 intermediate is 4 n^3 bytes (64 MiB at n = 256).
CPU_SIZES = (16, 32, 64, 128, 256)
GPU_SIZES = (16, 32, 64, 128, 256, 512)


def reuse_sizes(device: str) -> tuple[int, ...]:
    """The sizes for ``device``, none above the profile's largest matmul (tests shrink it)."""
    limit = current_profile().max_matmul_n
    return tuple(n for n in (CPU_SIZES if device == "cpu" else GPU_SIZES) if n <= limit)


def broadcast_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` with no reuse: every product a[i, k] * b[k, j] goes to memory, then is summed over k."""
    return (a.unsqueeze(2) * b.unsqueeze(0)).sum(dim=1)


def measure_reuse(n: int, device: str, how: str) -> Measurement:
    """Time an n x n x n product as a tiled matmul (``how="matmul"``) or as a broadcast and a sum."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    if how == "matmul":
        def fn() -> torch.Tensor:
            return a @ b
        moved, working = 3.0 * 4 * n * n, 0.0  # reused inputs: only FLOP/s is checked against a peak
    elif how == "broadcast":
        def fn() -> torch.Tensor:
            return broadcast_matmul(a, b)
        moved = 2.0 * 4 * n**3  # the products, written once and read once
        working = moved
    else:
        raise ValueError(f"unknown method {how!r}: choose matmul or broadcast")
    return measure(fn, name=f"{how} n={n}", device=device, shape=(n, n, n), flops=2.0 * n**3,
                   bytes_moved=moved, working_set_bytes=working, allow_tf32=False)


@experiment
def reuse_ratio(device: str) -> dict[str, Any]:
    """The same product timed as a tiled matmul and as a broadcast multiply and sum, for small n."""
    sizes = reuse_sizes(device)
    need = lambda n: 3.0 * 4 * n**3  # noqa: E731 - the products, their sum's scratch, and room to spare
    return {
        "matmul": sweep(sizes, lambda n: measure_reuse(n, device, "matmul"), device=device, bytes_needed=need),
        "broadcast": sweep(sizes, lambda n: measure_reuse(n, device, "broadcast"), device=device,
                           bytes_needed=need),
    }
