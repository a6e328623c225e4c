"""The H100 build of session 17, read by a GPU performance engineer: sentences its numbers contradicted.

Each test feeds the page function synthetic figures shaped like that build's (no measured value is asserted)
and checks that the sentence follows the data.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from gpucnn.hardware import detect


@pytest.fixture(autouse=True)
def _forget_noted_sources() -> Iterator[None]:
    """Captions note their sources until a section line prints them: fake ones must not reach the next test."""
    yield
    from gpucnn.sources import take_section

    take_section()


def _threads_result(gflops_one_thread: float) -> types.SimpleNamespace:
    hw = detect()
    point = types.SimpleNamespace(threads=1, gflops=gflops_one_thread, shape=(1024, 1024))
    return types.SimpleNamespace(data={"points": [point]}, hardware=hw)


@pytest.mark.parametrize("above", [True, False])
def test_a_core_faster_than_its_estimate_is_explained_as_an_unreported_turbo(
        above: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.pages import fast_memory

    hw = detect()
    if hw.cpu.peak_fp32 is None:
        pytest.skip("no CPU peak estimate on this machine")
    per_core = hw.cpu.peak_fp32.value / (hw.cpu.usable_cores or hw.cpu.logical_cores) / 1e9
    monkeypatch.setattr(fast_memory, "run", lambda fn: _threads_result(per_core * (1.1 if above else 0.5)))
    monkeypatch.setattr(fast_memory, "shown_gpus", lambda: [])
    text = fast_memory.per_core_table()
    assert ("the estimate is a floor, not a peak" in text) is above
    assert ("1.1x its estimate" in text) is above


def test_a_copy_as_fast_as_the_smallest_is_not_called_less_than_twice_as_slow() -> None:
    """On the H100, an 8 MiB copy took less time than the 1 KiB one: "less than twice" read oddly; on the H200 one
    took 6.94 µs against 6.91 µs."""
    from gpucnn.measurement import Measurement
    from gpucnn.pages.bandwidth import one_per_call_note

    def copy(b: int, seconds: float) -> Measurement:
        return Measurement(name="copy", device="cuda", dtype="float32", shape=(b,), threads=1,
                           times_s=(seconds,) * 5, number_per_run=1, bytes_moved=2.0 * b)

    sizes = [1024 * 4**i for i in range(9)]
    for at_4mib, phrase in ((6.0e-6, "about the same as"), (7.5e-6, "about the same as"), (9.0e-6, "less than twice")):
        plain = [copy(b, at_4mib if b == 4 * 2**20 else max(7e-6, 2.0 * b / 3e12)) for b in sizes]
        assert phrase in one_per_call_note(plain, 4 * 2**20)


def test_the_fastest_copy_above_device_memory_is_explained_by_the_l2(tmp_path) -> None:
    """The H100 and H200 records' fastest copies beat their HBM datasheet: the sentence says the buffers fit in
    the L2, for each device where that happens, and never "took no longer than the call's fixed cost"."""
    from gpucnn.pages import bandwidth
    from tests.conftest import ROOT
    from tests.test_fake_accelerator import cpu_only, fake_build

    with fake_build(cpu_only(), ROOT / "results", tmp_path, ("bandwidth",)):
        text = bandwidth.copy_findings()
        checked = 0
        for s in bandwidth.copy_sources():
            acc = s.hardware.accelerator
            if s.is_cpu or not acc or not acc.peaks:
                continue
            best = max(s.result.data["sweep"].points, key=lambda m: m.gbps or 0)
            paragraph = next(p for p in text.split("\n\n") if p.startswith(f"On {s.label},"))
            # claimed only where the whole IQR is above the datasheet (the H200's median is, its IQR is not)
            assert ("of the HBM datasheet" in paragraph) is (best.bytes_moved / best.p75 > acc.peaks.bandwidth), s.label
            # a call-bound fastest copy is set beside the same copy with the launch removed, where that was measured
            span = bandwidth.overhead_region(s.result.data["sweep"].points)
            free = bandwidth._launch_free(s, best.shape[0])
            if span and best.bytes_moved <= span[1] and free is not None:
                assert f"the same copy runs at **{bandwidth.fmt(free[1].gbps)} GB/s**" in paragraph, s.label
            checked += 1
    assert checked
    assert "took no longer than the call's fixed cost" not in text


@pytest.mark.parametrize(("speedups", "weak"), [
    ([1.0, 1.9, 3.66, 3.84, 8.45], "from 4 to 8 threads gained only 1.05x with 2x the threads"),  # a plateau
    ([1.0, 1.9, 3.66, 2.5, 7.9], "from 4 to 8 threads made it slower: 0.68x the speed with 2x the threads"),
    ([1.0, 1.98], None),
    ([1.0, 2.09], None),  # above 100 % efficiency: said, with its likely reasons
])
def test_the_thread_scaling_sentence_follows_the_measured_curve(
        speedups: list[float], weak: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page said "a machine with a few cores scales to a few times one core" on a 16-thread host at 8.45x."""
    from gpucnn.pages import parallelism

    pts = [types.SimpleNamespace(threads=2**i, median=1.0 / s) for i, s in enumerate(speedups)]
    monkeypatch.setattr(parallelism, "run", lambda fn: types.SimpleNamespace(data={"points": pts}))
    text = parallelism.threads_findings()
    assert f"With {pts[-1].threads} threads" in text and f"**{speedups[-1]:.2f}x**" in text
    assert (weak is not None) is ("Going from" in text)
    assert ("Above 100 %" in text) is (speedups[-1] > pts[-1].threads)
    if weak:
        assert weak in text


def _row(op: str, calls: float, host_pct: float, device_pct: float | None) -> dict:
    return {"op": op, "calls": calls, "self_cpu_s": host_pct * 1e-6, "self_cpu_pct": host_pct,
            "self_device_s": None if device_pct is None else device_pct * 1e-7, "self_device_pct": device_pct}


