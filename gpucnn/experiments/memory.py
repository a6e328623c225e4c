"""Memory bandwidth: copies against buffer size, host-to-device, elementwise ops."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from gpucnn.bench import FREE_MEMORY_FRACTION, Sweep, cache_bytes, measure, sweep
from gpucnn.hardware import detect, free_memory_bytes
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


def elementwise_size(cache: int | None, free: int | None, buffers: int = 3) -> int:
    """Bytes per tensor for the elementwise ops: the copy sweep's largest size, well beyond
    the last-level cache, halved while ``buffers`` tensors of it would take more than half
    the free memory."""
    size = copy_sizes(cache)[-1]
    while free is not None and buffers * size > FREE_MEMORY_FRACTION * free and size > KIB:
        size //= 2
    return size


def measure_elementwise(op: str, size_bytes: int, device: str):
    """Time one elementwise op on float32 tensors of ``size_bytes`` each, output preallocated.

    * ``add``: ``torch.add(a, b, out=c)``, reads 2 tensors, writes 1, 1 FLOP per element;
    * ``relu``: ``torch.clamp_min(a, 0, out=c)``, which is what ``torch.relu`` runs in ATen
      (``relu(x) = clamp_min(x, 0)``); the ``out=`` form keeps an allocation out of the
      timing. Reads 1, writes 1, one compare (counted as 1 FLOP) per element.
    """
    n = size_bytes // 4
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, generator=gen).to(device)
    c = torch.empty_like(a)
    if op == "add":
        b = torch.randn(n, generator=gen).to(device)
        fn, reads = (lambda: torch.add(a, b, out=c)), 2
    elif op == "relu":
        fn, reads = (lambda: torch.clamp_min(a, 0.0, out=c)), 1
    else:
        raise ValueError(f"unknown elementwise op {op!r}: choose add or relu")
    traffic = (reads + 1) * 4.0 * n
    return measure(fn, name=f"{op} {size_bytes} B", device=device, shape=(size_bytes,),
                   flops=float(n), bytes_moved=traffic, working_set_bytes=traffic)


@experiment
def elementwise_bandwidth(device: str) -> dict[str, Any]:
    """GB/s and GFLOP/s of add and relu on tensors far beyond the last-level cache."""
    cache = cache_bytes(detect(), device)
    size = elementwise_size(cache, free_memory_bytes(device))
    return {"add": measure_elementwise("add", size, device), "relu": measure_elementwise("relu", size, device),
            "size_bytes": size, "cache_bytes": cache}


def transfer_sizes(smallest: int = 4 * KIB, largest: int = 256 * KIB * KIB) -> list[int]:
    """Host-to-device transfer sizes: powers of four from 4 KiB to 256 MiB."""
    sizes, size = [], smallest
    while size <= largest:
        sizes.append(size)
        size *= 4
    return sizes


def measure_host_to_device(size_bytes: int, device: str, pinned: bool):
    """Time copying ``size_bytes`` from host memory to ``device``.

    Traffic is the bytes that cross the host-device link (``size_bytes``), not read + write.
    Pageable memory is first staged by the driver through a pinned bounce buffer; pinned
    (page-locked) memory can be read by the device's DMA engine directly.
    """
    src = torch.ones(size_bytes // 4, dtype=torch.float32)
    if pinned:
        src = src.pin_memory()
    dst = torch.empty(size_bytes // 4, dtype=torch.float32, device=device)
    m = measure(lambda: dst.copy_(src, non_blocking=pinned), name=f"host to {device} "
                f"{'pinned' if pinned else 'pageable'} {size_bytes} B", device=device, shape=(size_bytes,),
                bytes_moved=float(size_bytes),
                # The host link (PCIe, NVLink-C2C), not the device memory, bounds this copy: measure
                # knows no peak for it, so skip the HBM check and record no bandwidth peak, which would
                # give a meaningless "% of peak" (a PCIe copy is ~2 % of HBM) in results.json.
                working_set_bytes=0)
    return replace(m, peak_bytes_per_s=None)


@experiment
def host_to_device_bandwidth(device: str) -> dict[str, Any]:
    """Host-to-device copy GB/s against size, from pageable and from pinned host memory."""
    if device == "cpu":
        raise ValueError("host_to_device_bandwidth needs an accelerator device, not the CPU")
    out: dict[str, Any] = {}
    for mode in ("pageable", "pinned"):
        try:
            out[mode] = sweep(transfer_sizes(), lambda s, p=(mode == "pinned"): measure_host_to_device(s, device, p),
                              device=device, bytes_needed=lambda s: 2.0 * s, time_limit_s=float("inf"))
        except RuntimeError as exc:
            # Not every backend can pin host memory; record why instead of failing the page.
            if mode == "pageable" or "pin" not in str(exc).lower():
                raise
            out[mode] = Sweep((), f"pinned host memory is not available with {device}: {exc}")
    return out
