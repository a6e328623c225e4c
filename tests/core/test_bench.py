from __future__ import annotations

import dataclasses

import pytest
import torch

from gpucnn import bench
from gpucnn.bench import ImpossibleResult, Measurement, measure, sweep
from gpucnn.hardware import detect


def test_statement_sees_all_threads_and_count_is_restored() -> None:
    seen: list[int] = []
    before = torch.get_num_threads()
    measure(lambda: seen.append(torch.get_num_threads()), name="threads", min_runs=5, budget_s=0.001)
    assert seen and set(seen) == {before}
    assert torch.get_num_threads() == before


def test_explicit_thread_count_is_used_then_restored() -> None:
    seen: list[int] = []
    before = torch.get_num_threads()
    m = measure(lambda: seen.append(torch.get_num_threads()), name="one thread", threads=1, budget_s=0.001)
    assert set(seen) == {1} and m.threads == 1
    assert torch.get_num_threads() == before


def test_thread_count_restored_when_the_work_raises() -> None:
    before = torch.get_num_threads()

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        measure(boom, name="raises", threads=1)
    assert torch.get_num_threads() == before


def test_tf32_setting_is_restored() -> None:
    before = torch.backends.cuda.matmul.allow_tf32
    measure(lambda: None, name="tf32", allow_tf32=not before, budget_s=0.001, check=False)
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_every_clock_read_follows_a_synchronize() -> None:
    events: list[str] = []
    t = [0.0]

    def fake_sync(device: str) -> None:
        events.append("sync")

    def fake_clock() -> float:
        assert events and events[-1] == "sync", "clock read without a synchronize before it"
        events.append("read")
        t[0] += 0.001
        return t[0]

    m = measure(lambda: None, name="fake", device="cuda", clock=fake_clock, sync=fake_sync,
                budget_s=0.01, check=False)
    assert events.count("read") >= 2 * m.runs
    assert m.runs >= 5


def test_at_least_five_runs_even_when_one_call_exceeds_the_budget() -> None:
    m = measure(lambda: torch.ones(10).sum(), name="tiny budget", budget_s=1e-9)
    assert m.runs >= 5
    assert m.p25 <= m.median <= m.p75
    assert m.iqr >= 0


def test_too_fast_result_raises_through_measure_and_names_the_experiment() -> None:
    # A fake clock that advances 1 ns per read: a 2048^3 matmul "in 1 ns" beats any peak.
    t = [0.0]

    def fast_clock() -> float:
        t[0] += 1e-9
        return t[0]

    # A known peak, so the check runs on any CPU (one not in the table has none).
    hw = detect()
    hw = dataclasses.replace(hw, cpu=dataclasses.replace(hw.cpu, peak_fp32=_fake_peak()))
    with pytest.raises(ImpossibleResult, match="matmul-too-fast"):
        measure(lambda: None, name="matmul-too-fast", flops=2 * 2048**3, clock=fast_clock, hardware=hw,
                number_per_run=1, budget_s=0)


def _fake_peak():
    from gpucnn.hardware import Peak

    return Peak(1e11, "FLOP/s", "test", estimate=True)


def test_result_at_timer_resolution_raises() -> None:
    with pytest.raises(ImpossibleResult, match="resolution"):
        measure(lambda: None, name="frozen clock", clock=lambda: 0.0, number_per_run=1, budget_s=0)


def test_memory_check_only_beyond_cache() -> None:
    common = dict(flops=0, bytes_moved=1e9, peak_flops=None, peak_bytes_per_s=1e9, margin=1.5, resolution_s=1e-9)
    # 10 GB/s on a 1 MB working set with a 32 MB cache: in cache, allowed.
    bench.check_possible("in-cache copy", 0.1, working_set_bytes=1e6, cache=32 * 2**20, **common)
    with pytest.raises(ImpossibleResult, match="big copy"):
        bench.check_possible("big copy", 0.1, working_set_bytes=1e9, cache=32 * 2**20, **common)


def test_flawed_method_is_not_checked() -> None:
    m = measure(lambda: None, name="article", clock=lambda: 0.0, number_per_run=1, budget_s=0, check=False)
    assert m.runs >= 5


def test_measurement_derives_rates_and_round_trips() -> None:
    m = Measurement("x", "cpu", "float32", (2,), 2, (1.0, 2.0, 3.0, 4.0, 5.0), 1, flops=6e9, bytes_moved=3e9,
                    peak_flops=6e9)
    assert m.median == 3.0 and m.gflops == 2.0 and m.gbps == 1.0
    assert m.pct_peak_flops == pytest.approx(100 / 3)
    assert Measurement.from_dict(m.to_dict()) == m


def test_injected_out_of_memory_ends_the_sweep_cleanly() -> None:
    def point(n: int) -> Measurement:
        if n >= 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return measure(lambda: None, name=f"n={n}", budget_s=0.001, check=False)

    result = sweep([1, 2, 3, 4], point, device="cpu", bytes_needed=lambda n: 0, time_limit_s=10)
    assert [m.name for m in result.points] == ["n=1", "n=2"]
    assert "out of memory" in result.stopped


def test_other_errors_are_not_swallowed_by_a_sweep() -> None:
    def point(n: int) -> Measurement:
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        sweep([1], point, device="cpu", bytes_needed=lambda n: 0)


def test_sweep_stays_within_free_memory() -> None:
    calls: list[int] = []

    def point(n: int) -> Measurement:
        calls.append(n)
        return measure(lambda: None, name=f"n={n}", budget_s=0.001, check=False)

    result = sweep([1, 2, 3], point, device="cpu", bytes_needed=lambda n: n * 1e9, free_bytes=lambda d: 5e9)
    assert calls == [1, 2]
    assert "needs 3.00 GB" in result.stopped


def test_sweep_stops_once_a_call_exceeds_its_time_limit() -> None:
    def point(n: int) -> Measurement:
        return Measurement(f"n={n}", "cpu", "float32", (n,), 1, (float(n),) * 5, 1)

    result = sweep([1, 2, 3, 4], point, device="cpu", bytes_needed=lambda n: 0, time_limit_s=2.5)
    assert len(result.points) == 3
    assert "one call took" in result.stopped
