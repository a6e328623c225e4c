"""The H100 build of session 17, read by a GPU performance engineer: sentences its numbers contradicted.

Each test feeds the page function synthetic figures shaped like that build's (no measured value is asserted)
and checks that the sentence follows the data.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _forget_noted_sources() -> Iterator[None]:
    """Captions note their sources until a section line prints them: fake ones must not reach the next test."""
    yield
    from gpucnn.sources import take_section

    take_section()


def test_a_relu_faster_than_device_memory_is_said_to_read_from_the_l2(tmp_path) -> None:
    """The H100 record's first ReLU moved more GB/s than HBM allows: the page must say why (the conv before it
    left the tensor in the L2), for each GPU where that happens, and for no other."""
    from gpucnn.experiments.conv import cnn_profile
    from gpucnn.sources import sources
    from tests.conftest import ROOT
    from tests.test_fake_accelerator import cpu_only, fake_build

    with fake_build(cpu_only(), ROOT / "results", tmp_path, ("cnn",)):
        from gpucnn.pages import cnn

        text = cnn.pooling_findings()
        checked = 0
        for src in sources(cnn_profile):
            acc = src.hardware.accelerator
            if src.is_cpu or not acc or not acc.peaks:
                continue
            layers = {row["layer"]: row for row in src.result.data["layers"]}
            relu = cnn._layer_time(layers["relu1"], src.device)
            moved, _ = cnn.relu_pool_bytes(src.result.data["batch"])
            said = f"On {src.label}, the ReLU moved" in text
            assert said is (moved / relu > acc.peaks.bandwidth), src.label
            checked += 1
    assert checked, "the archive has GPU profiles"


@pytest.mark.parametrize(("rates", "spread", "fell"), [
    ([227, 4000, 11207, 7048, 12436], 0.05, ["from 11,207 GFLOP/s at N=4 to 7,048 GFLOP/s at N=8"]),
    ([227, 4000, 11207, 7048, 12436], 0.5, []),  # the IQRs overlap: not a fall the data can show
    ([100, 150, 200], 0.05, []),
    ([100, 90, 80], 0.05, []),  # falls under 15 % each: not named
])
def test_a_conv_sweep_whose_rate_falls_names_the_step(rates: list[float], spread: float, fell: list[str]) -> None:
    """The H100's conv batch sweep fell from N=32 to N=64, under a summary that said the rate grows."""
    from gpucnn.pages.cnn import _dips

    # one second per call at the median; the IQR spans +-spread of it
    pts = [types.SimpleNamespace(gflops=r, flops=r * 1e9, median=1.0, p25=1 - spread, p75=1 + spread, shape=(2**i, 32, 28, 28))
           for i, r in enumerate(rates)]
    text = _dips(pts, types.SimpleNamespace(is_cpu=False), lambda m: f"N={m.shape[0]}")
    assert (text != "") is bool(fell)
    for step in fell:
        assert step in text and "algorithm per shape" in text and "outside both points' IQRs" in text




def _row(op: str, calls: float, host_pct: float, device_pct: float | None) -> dict:
    return {"op": op, "calls": calls, "self_cpu_s": host_pct * 1e-6, "self_cpu_pct": host_pct,
            "self_device_s": None if device_pct is None else device_pct * 1e-7, "self_device_pct": device_pct}


@pytest.mark.parametrize(("rows", "named"), [
    ([_row("aten::addmm", 3, 8.4, 41.8), _row("aten::fill_", 2, 37.8, 1.2)], "aten::fill&#95;"),
    ([_row("aten::addmm", 3, 8.4, 41.8), _row("Activity Buffer Request", 0, 27.0, 2.6)], None),  # the profiler's
    ([_row("aten::addmm", 3, 60.0, 41.8)], None),  # CPU-heavy, but its kernels ran as long: no stall
    ([_row("aten::fill_", 2, 20.0, 1.2)], None),  # under the share that is named
])
@pytest.mark.parametrize("timed_s", [50e-6, 500e-6])
def test_a_cpu_stall_in_the_gpu_profile_is_named_and_weighed_against_the_timed_step(
        rows: list, named: str | None, timed_s: float) -> None:
    """The H100 record's MLP step spent 38 % of its profiled CPU time in two aten::fill_ calls with almost no GPU
    work, in a profiled step longer than the timed one: most likely a cost of profiling."""
    from gpucnn.pages.ann import host_stall

    data = {"profile": rows, "train": types.SimpleNamespace(median=timed_s)}
    gpu = types.SimpleNamespace(is_cpu=False, result=types.SimpleNamespace(data=data))
    text = host_stall(gpu)
    assert (text != "") is (named is not None)
    if named:
        profiled = rows[-1]["self_cpu_s"] / (rows[-1]["self_cpu_pct"] / 100)
        assert f"<code>{named}</code>" in text and "the CPU stalled inside that call" in text
        assert ("most likely a cost of profiling" in text) is (profiled > timed_s)
        assert ("may be that stall" in text) is (profiled <= timed_s)
    assert host_stall(types.SimpleNamespace(is_cpu=True, result=gpu.result)) == ""

def test_a_flat_but_noisy_step_gives_its_range_not_about_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The H100 step moved between 489 and 988 µs over the sweep: "costs about the same" invited a reader to check
    the table and find a 2x spread. The sentence gives the range."""
    from gpucnn.pages import ann
    from gpucnn.render import fmt_time

    times = [489e-6, 612e-6, 661e-6, 988e-6, 694e-6]
    pts = [types.SimpleNamespace(median=t, shape=(4**i, 1)) for i, t in enumerate(times)]
    src = types.SimpleNamespace(label="GPU (test)", is_cpu=False, hardware=types.SimpleNamespace(accelerator=None),
                                result=types.SimpleNamespace(data={"sweep": types.SimpleNamespace(points=pts)}))
    monkeypatch.setattr(ann, "sweep_sources", lambda: [src])
    monkeypatch.setattr(ann, "split_sources", lambda: [])
    text = ann.regime_findings()
    assert f"moves between {fmt_time(min(times))} and {fmt_time(max(times))}" in text
    assert "**overhead-bound**" in text and "about the same" not in text
