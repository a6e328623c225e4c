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
