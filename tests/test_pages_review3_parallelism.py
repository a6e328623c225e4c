"""Advantage 2 and Summary after review A (round 3): a tie is no crossover, a CPU bf16 ratio above its peak
ratio is explained by the two efficiencies, and mamf-finder's bf16 figure stands beside the site's own bf16.

Points are synthetic; where the archived records are read, the test checks what the sentences say about
them against the data, never a measured value.
"""

from __future__ import annotations

import pytest

from gpucnn.bench import Measurement, Sweep
from gpucnn.hardware import detect
from gpucnn.pages import summary, tensor_cores
from gpucnn.pages.tensor_cores import PrecisionSweep
from gpucnn.render import fmt
from gpucnn.results import Result
from gpucnn.sources import Source
from tests.conftest import ROOT


def pt(n: int, times: tuple[float, ...], device: str = "cpu", peak: float | None = None) -> Measurement:
    return Measurement(name=f"p{n}", device=device, dtype="float32", shape=(n, n, n), threads=1, times_s=times,
                       number_per_run=1, flops=2.0 * n**3, peak_flops=peak)


def spread(t: float, rel: float) -> tuple[float, ...]:
    """Five times around ``t``, with quartiles at t x (1 -/+ rel/2)."""
    return (t * (1 - rel), t * (1 - rel / 2), t, t * (1 + rel / 2), t * (1 + rel))


# --- H4: a size where CPU and GPU cannot be told apart is no win -------------------------------------------



















# --- M1: a CPU bf16 ratio above the peak ratio names both efficiencies -------------------------------------







def _sweep(points: list[Measurement], precision: str, device: str, hw) -> PrecisionSweep:
    result = Result(experiment="matmul_sweep", params={"device": device}, data={"sweep": Sweep(tuple(points))},
                    measured_at="2026-01-01T00:00:00+00:00", profile="quick", torch="t", commit=None,
                    hardware=hw, key="k")
    return PrecisionSweep(Source(device, result), precision)






# --- L3: mamf-finder's bf16 figure beside the site's own bf16 ---------------------------------------------

def test_bf16_fractions_name_each_gpu_bf16_sweep_and_skip_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    hw = detect()
    peak = 1e15
    gpu = _sweep([pt(4096, (2.0 * 4096**3 / (0.4 * peak),) * 5, "cuda", peak),
                  pt(8192, (2.0 * 8192**3 / (0.7 * peak),) * 5, "cuda", peak)], "bfloat16", "cuda", hw)
    cpu = _sweep([pt(1024, (1.0,) * 5, peak=1e12)], "bfloat16", "cpu", hw)
    fp32 = _sweep([pt(8192, (1.0,) * 5, "cuda", peak)], "float32", "cuda", hw)
    monkeypatch.setattr(summary, "precision_sweeps", lambda: [cpu, fp32, gpu])
    monkeypatch.setattr(summary, "note", lambda *a: None)
    text = summary.bf16_fractions()
    assert f"{gpu.source.label} **{fmt(70.0, 3)} %** of its dense datasheet bf16 peak (n = 8,192)" in text
    assert text.count("%**") == 1, text  # neither the CPU's bf16 nor the GPU's fp32
    monkeypatch.setattr(summary, "precision_sweeps", lambda: [cpu, fp32])
    assert summary.bf16_fractions() == ""


def test_the_archived_bf16_sweeps_are_set_beside_mamf_finder() -> None:
    """Every GPU bf16 sweep with a peak, this build's or archived, appears with its best point's share."""
    sweeps = [s for s in tensor_cores.precision_sweeps()
              if not s.source.is_cpu and s.precision == "bfloat16" and tensor_cores.best_point(s.points)]
    text = summary.bf16_fractions()
    for s in sweeps:
        best = tensor_cores.best_point(s.points)
        if best.pct_peak_flops:
            assert f"**{fmt(best.pct_peak_flops, 3)} %** of its dense datasheet bf16 peak" in text, text
    page = (ROOT / "docs" / "summary.md").read_text()
    assert "summary.bf16_fractions()" in page
    cited = page[page.index("mamf-finder"):page.index("summary.bf16_fractions()")]
    assert "bf16" in cited and "fp32" in cited  # the cited figure is named bf16, set apart from the fp32 ones


# --- L6: no claim that a few cores reach any CPU's DRAM bandwidth ------------------------------------------



# --- the n = 2 GPU time: a fixed cost per call, whose pace-setter the record's own data decide ---------------
