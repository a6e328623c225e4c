"""Memory bandwidth: copies against buffer size (also with the launch cost removed, for a GPU's L2),
host-to-device copies (also overlapping compute), elementwise ops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from gpucnn.bench import FREE_MEMORY_FRACTION, Sweep, cache_bytes, measure, sweep
from gpucnn.hardware import detect, free_memory_bytes
from gpucnn.measurement import Measurement
from gpucnn.profile import current_profile
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


def random_normal(n: int, generator: torch.Generator, block: int = 1 << 20) -> torch.Tensor:
    """``n`` float32 standard-normal values on the CPU: one random block of ``block`` values, repeated.

    torch's CPU generator fills a tensor on one thread: the elementwise tensors of a CPU
    with a 300 MiB last-level cache (three of 2 GiB) took several seconds to fill, longer
    than timing the ops. Repeating a 4 MiB block is a parallel copy. The ops read each element once, at addresses far apart, so
    values that repeat change nothing they measure; random ones (not zeros) keep any
    compression of zero-filled memory out of it.
    """
    block = min(block, n)
    first = torch.randn(block, generator=generator)
    return first.repeat(-(-n // block))[:n]


def measure_elementwise(op: str, size_bytes: int, device: str):
    """Time one elementwise op on float32 tensors of ``size_bytes`` each, output preallocated.

    * ``add``: ``torch.add(a, b, out=c)``, reads 2 tensors, writes 1, 1 FLOP per element;
    * ``relu``: ``torch.clamp_min(a, 0, out=c)``, which is what ``torch.relu`` runs in ATen
      (``relu(x) = clamp_min(x, 0)``); the ``out=`` form keeps an allocation out of the
      timing. Reads 1, writes 1, one compare (counted as 1 FLOP) per element.
    """
    n = size_bytes // 4
    gen = torch.Generator().manual_seed(0)
    a = random_normal(n, gen).to(device)
    c = torch.empty_like(a)
    if op == "add":
        b = random_normal(n, gen).to(device)
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


# --- the L2 tier with the launch cost removed ---------------------------------------

# Traffic (bytes read + written) each timed call should carry: enough that a launch (a few
# microseconds) is a small part of it even at the largest HBM bandwidths (about 0.3 ms at
# 3.35 TB/s), so each point measures the memory tier, not the call.
LAUNCH_FREE_BYTES_PER_CALL = 1 << 30
# At most this many copies per call: a CUDA graph of a few thousand nodes captures in well under a second.
MAX_COPIES_PER_CALL = 2048


def l2_copy_sizes(l2: int | None) -> list[int]:
    """Buffer sizes: powers of two from 1/64 of the L2 (source + destination well inside it) to 8x the L2.

    Without a known L2 size, as for a 64 MiB one.
    """
    l2 = l2 or 64 * KIB * KIB
    size = 64 * KIB
    while size * 2 <= l2 // 64:
        size *= 2
    return copy_sizes(l2, smallest=size, at_least=0)


def copies_per_call(size_bytes: int) -> int:
    """How many copies of ``size_bytes`` one timed call runs (see ``LAUNCH_FREE_BYTES_PER_CALL``)."""
    return max(1, min(MAX_COPIES_PER_CALL, -(-LAUNCH_FREE_BYTES_PER_CALL // (2 * size_bytes))))


def uses_cuda_graphs(device: str) -> bool:
    """CUDA graphs (also HIP graphs on ROCm) where torch.cuda runs the device; elsewhere a loop of calls."""
    return device.split(":")[0] == "cuda" and torch.cuda.is_available()


def measure_launch_free_copy(size_bytes: int, device: str):
    """Time ``copies_per_call`` copies of ``size_bytes`` per call, with the launch cost removed where possible.

    With CUDA, the copies are captured once in a CUDA graph and each call replays it: one launch
    for all of them, so even a copy that takes a few microseconds runs back to back with the next.
    On other devices each call runs the copies in a loop: the launches are queued while earlier
    copies run, which hides them once a copy takes longer than a launch.

    ``working_set_bytes`` is one copy's (source + destination), not the call's traffic: a copy
    that fits in the L2 may beat the HBM peak, and the harness must know it fits.
    """
    copies = copies_per_call(size_bytes)
    src = torch.ones(size_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)

    def loop() -> None:
        for _ in range(copies):
            dst.copy_(src)

    fn = loop
    if uses_cuda_graphs(device):
        # Warm up on a side stream before capture, as torch.cuda.graphs' documentation asks.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            loop()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loop()

        def fn(keep: tuple[torch.Tensor, ...] = (src, dst)) -> None:  # keeps the graph's buffers alive
            graph.replay()
    return measure(fn, name=f"copy {size_bytes} B x {copies} per call", device=device, shape=(size_bytes,),
                   bytes_moved=2.0 * size_bytes * copies, working_set_bytes=2.0 * size_bytes)


@experiment
def l2_copy_bandwidth(device: str) -> dict[str, Any]:
    """Copy GB/s from well inside the L2 to far beyond it, many copies per launch (accelerators only).

    On a CPU there is no launch to remove: a torch call's fixed cost is paid by every copy however
    they are issued, so the CPU's cache tiers are those of ``copy_bandwidth``, not measured here.
    """
    if device == "cpu":
        raise ValueError("l2_copy_bandwidth needs an accelerator device, not the CPU")
    cache = cache_bytes(detect(), device)
    sizes = l2_copy_sizes(cache)
    result = sweep(sizes, lambda s: measure_launch_free_copy(s, device), device=device,
                   bytes_needed=lambda s: 2.0 * s, time_limit_s=float("inf"))
    return {"sweep": result, "cache_bytes": cache, "graphs": uses_cuda_graphs(device),
            "copies_per_call": [copies_per_call(s) for s in sizes[:len(result.points)]]}


# --- host-to-device copies overlapping compute ---------------------------------------

def overlap_sizes() -> tuple[int, int]:
    """(bytes copied, matmul n): a copy and a matmul of similar length on a data-centre GPU in the full profile."""
    return (64 * KIB * KIB, 4096) if current_profile().name == "full" else (4 * KIB * KIB, 512)


@experiment
def copy_compute_overlap(device: str) -> dict[str, Any]:
    """A pinned host-to-device copy and a matmul: alone, one after the other, and overlapped (accelerators only).

    * copy: ``dst.copy_(src, non_blocking=True)`` from pinned host memory;
    * compute: an fp32 n x n matmul (TF32 off), on data already on the device;
    * serial: a blocking copy, then the matmul (what a loop without ``non_blocking`` does);
    * overlapped: the non-blocking copy on a side stream while the matmul runs on the current one,
      then the current stream waits for the copy (the next step needs its data).

    The side stream is CUDA's (also ROCm's); on other devices "overlapped" issues both on one
    stream, and ``side_stream`` is False.
    """
    if device == "cpu":
        raise ValueError("copy_compute_overlap needs an accelerator device, not the CPU")
    size, n = overlap_sizes()
    src = torch.ones(size // 4, dtype=torch.float32).pin_memory()
    dst = torch.empty(size // 4, dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    c = torch.empty_like(a)
    side_stream = uses_cuda_graphs(device)
    side = torch.cuda.Stream() if side_stream else None

    def copy() -> None:
        dst.copy_(src, non_blocking=True)

    def compute() -> None:
        torch.mm(a, b, out=c)

    def serial() -> None:
        dst.copy_(src)
        torch.mm(a, b, out=c)

    def overlapped() -> None:
        if side is None:
            copy()
            compute()
            return
        with torch.cuda.stream(side):
            copy()
        compute()
        torch.cuda.current_stream().wait_stream(side)

    def timed(fn: Callable[[], None], what: str) -> Measurement:
        # Only times are compared; the copy's rate is bounded by the host link, not by a peak measure knows.
        m = measure(fn, name=f"{what} ({size} B copy, n={n} matmul)", device=device, shape=(size, n),
                    allow_tf32=False, working_set_bytes=0)
        return replace(m, peak_bytes_per_s=None, peak_flops=None)

    return {"copy": timed(copy, "pinned copy"), "compute": timed(compute, "matmul"),
            "serial": timed(serial, "copy then matmul"), "overlapped": timed(overlapped, "copy overlapping matmul"),
            "copy_bytes": size, "matmul_n": n, "side_stream": side_stream}
