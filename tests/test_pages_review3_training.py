"""Notebook page: a combination of speedups gets a reason that fits it (review 3, finding M6).

channels_last + bf16 autocast runs bf16 kernels for channels-last data; a combination with torch.compile is one
program that inductor compiles into its own kernels. Before, both got the first reason.
"""

from __future__ import annotations

import pytest

from gpucnn.pages.training import _together_sentence

ALONE = {"channels_last": 1.1, "bf16 autocast": 1.3, "torch.compile": 1.2}


@pytest.mark.parametrize("ratio", [3.0, 0.9])  # above the product of the single gains, and below the best alone
def test_the_reason_for_a_combination_names_what_it_runs(ratio: float) -> None:
    plain = _together_sentence(["channels_last", "bf16 autocast"], ratio, ALONE)
    compiled = _together_sentence(["channels_last", "bf16 autocast", "torch.compile"], ratio, ALONE)
    assert "bf16 kernels for channels-last data" in plain and "inductor" not in plain
    assert "inductor compiles" in compiled and "bf16 kernels for channels-last data" not in compiled
    for text in (plain, compiled):
        assert "a likely reason, not timed here" in text  # a cause this page does not measure is not asserted
        assert ("more than that product" in text) == (ratio > 1)
        assert ("and slower ones" in text) == (ratio < 1)


@pytest.mark.parametrize(("ratio", "factor", "gap"), [(1.8, 16.0, True), (1.8, 2.0, False), (1.3, 1.5, False)])
def test_a_cpu_bf16_gain_far_below_its_peak_factor_says_why(monkeypatch, ratio: float, factor: float,
                                                             gap: bool) -> None:
    from types import SimpleNamespace

    from gpucnn.pages import training
    from gpucnn.render import fmt

    monkeypatch.setattr(training, "_cpu_bf16_factor", lambda _src: factor)
    text = training._bf16_reason(SimpleNamespace(is_cpu=True), ratio, None, None)
    assert f"{fmt(factor, 2)}x its FP32 peak" in text and ".00x" not in text
    assert ("only the convolutions and matmuls use those units" in text) == gap
