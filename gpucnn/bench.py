"""The one timing harness. Every page and the CLI measure through ``measure``.

It is built on ``torch.utils.benchmark.Timer`` and adds what a trustworthy
figure needs:

* all the threads torch uses (Timer's default is one thread);
* a clock that synchronizes the accelerator before every read, and a warm-up;
* a time budget per point, yet at least ``min_runs`` runs so the IQR means something;
* every global setting it changes (threads, TF32) restored, since all pages
  share one process;
* an impossible-result check: faster than the hardware's peak, or at the
  timer's resolution, raises ``ImpossibleResult`` naming the experiment;
* size sweeps that stay within free memory and end cleanly on out-of-memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.benchmark import Timer

from gpucnn.hardware import HardwareReport, detect, free_memory_bytes
from gpucnn.measurement import Measurement, Sweep
from gpucnn.profile import current_profile

# Measurement and Sweep live in a torch-free module (the archive reads them without
# torch); re-exported here so `from gpucnn.bench import Measurement, Sweep` keeps working.

# A CPU peak is an estimate from a clock a VM may under-report; a datasheet
# peak is at boost clock. Only results beyond these margins are impossible.
CPU_PEAK_MARGIN = 1.5
GPU_PEAK_MARGIN = 1.15
# Buffers must exceed the last-level cache by this factor before their traffic
# is compared with the DRAM/HBM peak: a copy that fits in cache beats DRAM.
CACHE_FACTOR = 4
# Bytes a sweep may use: a fraction of the free memory, because running out of
# memory on the CPU kills the process instead of raising.
FREE_MEMORY_FRACTION = 0.5


class ImpossibleResult(RuntimeError):
    """A measurement faster than the hardware can physically be."""


def synchronize(device: str) -> None:
    """Wait for all queued work on ``device``; a no-op on the CPU."""
    if device != "cpu":
        torch.accelerator.synchronize()


def _dtype_name(dtype: torch.dtype | str) -> str:
    return str(dtype).replace("torch.", "")


def reference_peaks(
    hw: HardwareReport, device: str, dtype: str, tf32: bool
) -> tuple[float | None, float | None, float]:
    """The (FLOP/s, bytes/s, margin) a result on ``device`` is compared with.

    The FLOP/s peak is that of the precision measured: a bf16 matmul runs on
    other units (tensor cores; AMX tiles or bf16 dot products on a CPU) than an
    fp32 one, and may legitimately beat the fp32 peak many times over. An fp32
    matmul on CUDA may run on tensor cores when TF32 is allowed, so its ceiling
    is then the TF32 peak. A precision with no known peak gets None: no % of
    peak, and no impossible-result check, rather than a check against the
    wrong peak.
    """
    if device == "cpu":
        return _cpu_peak(hw, dtype), None, CPU_PEAK_MARGIN * _boost_over_peak_clock(hw)
    acc = hw.accelerator
    if acc is None or acc.peaks is None:
        return None, None, GPU_PEAK_MARGIN
    p = acc.peaks
    flops = {"float32": p.tf32 if tf32 and p.tf32 else p.fp32, "bfloat16": p.bf16, "float16": p.fp16}.get(dtype)
    return flops, p.bandwidth, GPU_PEAK_MARGIN


def _boost_over_peak_clock(hw: HardwareReport) -> float:
    """How far the CPU's family may boost above the clock its peak is taken at (the highest the OS reports):
    a VM reports its nominal clock, and its cores run faster. 1 where the family is not known."""
    from gpucnn.datasheets import AMD_FAMILIES, INTEL_FAMILIES

    boost = next((row.max_boost_ghz for _, _, row in AMD_FAMILIES + INTEL_FAMILIES if row.name == hw.cpu.family), None)
    clock = hw.cpu.max_clock_ghz
    return max(1.0, boost / clock) if boost and clock else 1.0


def _cpu_peak(hw: HardwareReport, dtype: str) -> float | None:
    """The CPU's peak for ``dtype``: fp32, or the bf16 bound (AMX, AVX512_BF16) where the report has one.

    A report without a bf16 bound (an archived one, or an unknown ISA) gets no
    bf16 peak, never the fp32 one.
    """
    peak = {"float32": hw.cpu.peak_fp32, "bfloat16": hw.cpu.peak_bf16}.get(dtype)
    return peak.value if peak else None


def cache_bytes(hw: HardwareReport, device: str) -> int | None:
    """The last-level cache that a buffer must exceed before DRAM peaks apply."""
    if device == "cpu":
        return hw.cpu.llc_bytes
    return hw.accelerator.l2_bytes if hw.accelerator else None


def check_possible(
    name: str,
    median_s: float,
    *,
    flops: float,
    bytes_moved: float,
    working_set_bytes: float,
    peak_flops: float | None,
    peak_bytes_per_s: float | None,
    margin: float,
    cache: int | None,
    resolution_s: float,
) -> None:
    """Raise ImpossibleResult if a result is faster than the hardware allows.

    This is what catches a missing synchronize: the clock then stops before
    the work is done, and the result beats the peak.
    """
    if median_s <= resolution_s:
        raise ImpossibleResult(
            f"{name}: median time {median_s:.3g} s is at or below the timer's resolution "
            f"({resolution_s:.3g} s); the work was probably not waited for"
        )
    if flops and peak_flops and flops / median_s > margin * peak_flops:
        raise ImpossibleResult(
            f"{name}: {flops / median_s / 1e9:.4g} GFLOP/s exceeds {margin}x the reference peak "
            f"({peak_flops / 1e9:.4g} GFLOP/s); is a synchronize missing?"
        )
    # Only buffers well beyond the last-level cache are bound by DRAM/HBM.
    beyond_cache = cache is not None and working_set_bytes >= CACHE_FACTOR * cache
    if bytes_moved and peak_bytes_per_s and beyond_cache and bytes_moved / median_s > margin * peak_bytes_per_s:
        raise ImpossibleResult(
            f"{name}: {bytes_moved / median_s / 1e9:.4g} GB/s exceeds {margin}x the memory peak "
            f"({peak_bytes_per_s / 1e9:.4g} GB/s); is a synchronize missing?"
        )


class _TF32:
    """Set TF32 for CUDA matmuls and convolutions, and restore it on exit."""

    def __init__(self, allow: bool | None) -> None:
        self.allow = allow

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if self.allow is not None:
            torch.backends.cuda.matmul.allow_tf32 = self.allow
            torch.backends.cudnn.allow_tf32 = self.allow

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def measure(
    fn: Callable[[], object],
    *,
    name: str,
    device: str = "cpu",
    dtype: torch.dtype | str = torch.float32,
    shape: Iterable[int] = (),
    flops: float = 0.0,
    bytes_moved: float = 0.0,
    working_set_bytes: float | None = None,
    budget_s: float | None = None,
    min_runs: int | None = None,
    max_runs: int = 1000,
    number_per_run: int | None = None,
    threads: int | None = None,
    allow_tf32: bool | None = None,
    check: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[str], None] = synchronize,
    hardware: HardwareReport | None = None,
) -> Measurement:
    """Time ``fn()`` on ``device`` and return a Measurement.

    ``fn`` must only run the work: create its inputs (and copy them to the
    device) before calling ``measure``, unless the copy is what is measured.

    Args:
        fn: the work, a callable with no arguments.
        name: names the experiment in results and in error messages.
        device: ``cpu``, ``cuda``, ``mps`` or ``xpu``; the clock synchronizes it.
        dtype, shape: recorded with the result.
        flops, bytes_moved: work per call, for GFLOP/s and GB/s (bytes read + written).
        working_set_bytes: memory the call touches, to decide whether the DRAM
            peak applies; defaults to ``bytes_moved``.
        budget_s: target measuring time (default: the profile's).
        min_runs: at least this many timed runs (default: the profile's, 5).
        number_per_run: calls per run; by default chosen so one run lasts about
            budget/20, which amortizes the synchronize. Use 1 to time one call.
        threads: CPU threads; default all the threads torch uses.
        allow_tf32: set TF32 for the measurement (restored afterwards).
        check: False only for methods shown as flawed (the article's).
        clock, sync: injectable for tests; every clock read is preceded by a sync.
        hardware: the report to compare with (default: this machine's).

    Raises:
        ImpossibleResult: the result is faster than physically possible.
    """
    profile = current_profile()
    budget = profile.budget_s if budget_s is None else budget_s
    runs_wanted = profile.min_runs if min_runs is None else min_runs
    n_threads = torch.get_num_threads() if threads is None else threads
    hw = hardware or detect()
    dtype_name = _dtype_name(dtype)

    def synced_clock() -> float:
        sync(device)
        return clock()

    saved_threads = torch.get_num_threads()
    with _TF32(allow_tf32):
        tf32 = bool(torch.backends.cuda.matmul.allow_tf32) if device == "cuda" else False
        timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=n_threads, timer=synced_clock)
        try:
            torch.set_num_threads(n_threads)
            # Warm-up: lazy library loads, allocator growth, cuBLAS handles.
            # The first call is timed only to size the runs.
            first = timer._timeit(1)
            if number_per_run is None:
                second = timer._timeit(1)
                per_call = max(min(first, second), 1e-9)
                number_per_run = max(1, int(budget / 20 / per_call))
            times: list[float] = []
            spent = 0.0
            while len(times) < max_runs and (len(times) < runs_wanted or spent < budget):
                t = timer._timeit(number_per_run)
                times.append(t / number_per_run)
                spent += t
        finally:
            torch.set_num_threads(saved_threads)

    peak_flops, peak_bw, margin = reference_peaks(hw, device, dtype_name, tf32)
    result = Measurement(
        name=name, device=device, dtype=dtype_name, shape=tuple(int(s) for s in shape), threads=n_threads,
        times_s=tuple(times), number_per_run=number_per_run, flops=float(flops), bytes_moved=float(bytes_moved),
        peak_flops=peak_flops, peak_bytes_per_s=peak_bw, hardware=hw,
    )
    if check:
        check_possible(
            name, result.median, flops=flops, bytes_moved=bytes_moved,
            working_set_bytes=bytes_moved if working_set_bytes is None else working_set_bytes,
            peak_flops=peak_flops, peak_bytes_per_s=peak_bw, margin=margin,
            cache=cache_bytes(hw, device), resolution_s=time.get_clock_info("perf_counter").resolution,
        )
    return result


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the out-of-memory errors of every torch backend."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def sweep(
    sizes: Iterable[int],
    point: Callable[[int], Measurement],
    *,
    device: str,
    bytes_needed: Callable[[int], float],
    time_limit_s: float | None = None,
    free_bytes: Callable[[str], int | None] = free_memory_bytes,
) -> Sweep:
    """Measure ``point(size)`` for each size, stopping cleanly when it must.

    A sweep stops (and records why) when a size would not fit in the free
    memory, when the device runs out of memory, or once one call takes longer
    than ``time_limit_s`` (the profile's by default), so a slow machine still
    finishes.
    """
    limit = current_profile().sweep_point_limit_s if time_limit_s is None else time_limit_s
    points: list[Measurement] = []
    for size in sizes:
        free = free_bytes(device)
        need = bytes_needed(size)
        if free is not None and need > FREE_MEMORY_FRACTION * free:
            return Sweep(tuple(points), f"stopped before size {size}: it needs {need / 1e9:.2f} GB, "
                                        f"more than half the {free / 1e9:.2f} GB free")
        try:
            m = point(size)
        except Exception as exc:  # only out-of-memory is handled here; the rest re-raise
            if not is_out_of_memory(exc):
                raise
            if device != "cpu":
                torch.accelerator.empty_cache() if hasattr(torch.accelerator, "empty_cache") else None
            return Sweep(tuple(points), f"stopped at size {size}: out of memory on {device}")
        points.append(m)
        if m.median > limit:
            return Sweep(tuple(points), f"stopped after size {size}: one call took {m.median:.2f} s "
                                        f"(limit {limit:.2f} s in this profile)")
    return Sweep(tuple(points))
