"""Summary and Home (gpucnn.pages.summary): headline facts, the GPU-against-host ratios, bf16 shares, the chart."""

from __future__ import annotations

import pytest

from gpucnn.bench import Measurement, Sweep
from gpucnn.hardware import detect
from gpucnn.pages import summary
from gpucnn.results import Result
from gpucnn.sources import Source


def _pt(n: int, seconds: float, device: str, peak: float) -> Measurement:
    return Measurement(name=f"p{n}", device=device, dtype="bfloat16", shape=(n, n, n), threads=1,
                       times_s=(seconds,) * 5, number_per_run=1, flops=2.0 * n**3, peak_flops=peak)


def _source(points: list[Measurement], device: str) -> Source:
    result = Result(experiment="precision_matmul_sweep", params={"device": device, "precision": "bfloat16"},
                    data={"sweep": Sweep(tuple(points))}, measured_at="2026-01-01T00:00:00+00:00",
                    profile="quick", torch="t", commit=None, hardware=detect(), key=device)
    return Source(device, result)


def test_bf16_shares_are_each_gpus_best_point_against_its_bf16_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    peak = 1e15
    gpu = _source([_pt(4096, 2.0 * 4096**3 / (0.4 * peak), "cuda", peak),
                   _pt(8192, 2.0 * 8192**3 / (0.7 * peak), "cuda", peak)], "cuda")
    monkeypatch.setattr(summary, "accelerators", lambda fn, **kw: [gpu])
    monkeypatch.setattr(summary, "note", lambda *a: None)
    [share] = summary.bf16_shares()
    assert share.source is gpu and share.n == 8192 and share.pct_peak == pytest.approx(70.0)
    monkeypatch.setattr(summary, "accelerators", lambda fn, **kw: [])
    assert summary.bf16_shares() == []


def test_the_speedups_compare_each_gpu_with_its_own_host_only() -> None:
    for s in summary.speedups():
        assert s.gpu.origin == s.host.origin and s.host.is_cpu and not s.gpu.is_cpu
        assert s.matmul_x > 0 and (s.copy_x is None or s.copy_x == pytest.approx(s.gpu_copy_gbps / s.cpu_copy_gbps))


def test_the_headline_facts_name_every_column_of_the_table() -> None:
    facts = summary.headline_facts()
    table = summary.headline_table()
    assert facts.sources and facts.runs_lo <= facts.runs_hi
    for s in facts.sources:
        assert s.cell() in table
    assert facts.archived == any(s.archived for s in facts.sources)


def test_the_home_chart_draws_dots_and_each_archived_gpu_with_its_host() -> None:
    html = summary.home_chart()  # figure_html raises ChartRuleError on bars on a log axis
    assert "<svg" in html and "The figures in a table" in html
    for panel, dots in summary.glance():
        gpus = {d.source.origin for d in dots if d.source.archived and not d.source.is_cpu}
        hosts = {d.source.origin for d in dots if d.source.archived and d.source.is_cpu}
        assert panel.gpus_only or gpus <= hosts, panel.title
