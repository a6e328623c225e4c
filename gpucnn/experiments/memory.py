"""Memory bandwidth: copies against buffer size, host-to-device, elementwise ops."""

from __future__ import annotations

from typing import Any

import torch

from gpucnn.bench import cache_bytes, measure, sweep
from gpucnn.hardware import detect
from gpucnn.results import experiment

KIB = 1024


def copy_sizes(cache: int | None, smallest: int = KIB, at_least: int = 256 * KIB * KIB) -> list[int]:
    """Buffer sizes in bytes: powers of two from 1 KiB to 8x the last-level cache."""
    largest = max(at_least, 8 * (cache or 0))
    sizes, size = [], smallest
    while size <= largest:
        sizes.append(size)
        size *= 2
    return sizes


def measure_copy(size_bytes: int, device: str):
    """Time ``dst.copy_(src)`` of ``size_bytes``; traffic = read + write = 2 x size."""
    src = torch.ones(size_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return measure(lambda: dst.copy_(src), name=f"copy {size_bytes} B", device=device, shape=(size_bytes,),
                   bytes_moved=2.0 * size_bytes, working_set_bytes=2.0 * size_bytes)


@experiment
def copy_bandwidth(device: str) -> dict[str, Any]:
    """Copy GB/s from 1 KiB to 8x the last-level cache (bytes read + written, GB = 10^9 B)."""
    cache = cache_bytes(detect(), device)
    result = sweep(copy_sizes(cache), lambda s: measure_copy(s, device), device=device,
                   bytes_needed=lambda s: 2.0 * s, time_limit_s=float("inf"))
    return {"sweep": result, "cache_bytes": cache}
