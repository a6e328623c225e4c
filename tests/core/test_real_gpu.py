"""Checks that need a real CUDA GPU: run where one is present (`pytest -m gpu`), skipped elsewhere.

They check the harness against what only real hardware can tell: CUDA-event
timing, whether TF32 really is off, and a real out-of-memory.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from gpucnn.bench import measure, sweep

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _event_seconds_per_call(fn, calls: int = 20, repeats: int = 15) -> float:
    """Median time per call from CUDA events around ``calls`` back-to-back calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        per_call.append(start.elapsed_time(end) / 1e3 / calls)
    return statistics.median(per_call)


def test_the_harness_agrees_with_cuda_events_within_10_percent() -> None:
    n = 4096
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")

    def matmul() -> torch.Tensor:
        return torch.mm(a, b)

    saved = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        events = _event_seconds_per_call(matmul)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    harness = measure(matmul, name="gpu test: fp32 matmul", device="cuda", flops=2 * n**3, allow_tf32=False,
                      budget_s=1.0)
    assert abs(harness.median - events) / events < 0.10, (harness.median, events)


def test_tf32_off_is_honoured_in_the_measured_call() -> None:
    n = 2048
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", generator=gen)
    b = torch.randn(n, n, device="cuda", generator=gen)
    exact = (a.double() @ b.double())
    seen: dict[str, object] = {}

    def matmul() -> None:
        seen["flag"] = torch.backends.cuda.matmul.allow_tf32
        seen["out"] = torch.mm(a, b)

    def error() -> float:
        out = seen["out"]
        assert isinstance(out, torch.Tensor)
        return float((out.double() - exact).abs().max() / exact.abs().max())

    before = torch.backends.cuda.matmul.allow_tf32
    measure(matmul, name="gpu test: tf32 off", device="cuda", flops=2 * n**3, allow_tf32=False, budget_s=0.2)
    assert seen["flag"] is False
    fp32_error = error()
    assert torch.backends.cuda.matmul.allow_tf32 == before, "the TF32 setting must be restored"
    # FP32 keeps ~7 significant digits over a 2048-term sum; TF32's 10-bit mantissa does not.
    assert fp32_error < 1e-4, fp32_error
    if torch.cuda.get_device_capability() >= (8, 0):
        measure(matmul, name="gpu test: tf32 on", device="cuda", flops=2 * n**3, allow_tf32=True, budget_s=0.2,
                check=False)
        assert seen["flag"] is True
        assert error() > 10 * fp32_error, "with TF32 on the result should be visibly less exact"


def test_a_sweep_stops_cleanly_at_a_real_out_of_memory() -> None:
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    # About 1 GiB for this process: a 16384^2 fp32 matmul (3 x 1 GiB) cannot fit.
    torch.cuda.set_per_process_memory_fraction(min(1.0, 2**30 / total))
    try:
        def point(n: int):
            a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
            return measure(lambda: torch.mm(a, b), name=f"gpu test: oom sweep {n}", device="cuda", shape=(n, n),
                           flops=2 * n**3, allow_tf32=False, budget_s=0.05)

        # No free-memory pre-check: the point is to reach the real allocator error.
        result = sweep([256, 1024, 16384, 32768], point, device="cuda", bytes_needed=lambda n: 0.0,
                       free_bytes=lambda device: None, time_limit_s=60.0)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert result.stopped is not None and "out of memory" in result.stopped, result.stopped
    assert [p.shape for p in result.points] == [(256, 256), (1024, 1024)]
    # The device is usable afterwards.
    assert float(torch.ones(1024, device="cuda").sum()) == 1024.0
