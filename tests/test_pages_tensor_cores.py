"""The tensor-core page builders: datasheet factors and ridge points, and sentences chosen from data."""

from __future__ import annotations

import pytest

from gpucnn.bench import Measurement
from gpucnn.datasheets import GPU_MODELS
from gpucnn.hardware import detect
from gpucnn.pages import tensor_cores
from gpucnn.pages.tensor_cores import (
    PrecisionSweep,
    best_point,
    cpu_bf16_sentence,
    factor_range,
    speedup_over_fp32,
)
from gpucnn.results import Result
from gpucnn.sources import Source


def point(n: int, seconds: float, dtype: str = "float32") -> Measurement:
    return Measurement(name=f"p{n}", device="cpu", dtype=dtype, shape=(n, n, n), threads=1, times_s=(seconds,) * 5,
                       number_per_run=1, flops=2.0 * n**3)


def sweep_source(points: list[Measurement], precision: str, device: str = "cpu") -> PrecisionSweep:
    from gpucnn.bench import Sweep

    result = Result(experiment="x", params={"device": device}, data={"sweep": Sweep(tuple(points))},
                    measured_at="2026-01-01T00:00:00+00:00", profile="quick", torch="t", commit=None,
                    hardware=detect(), key="k")
    return PrecisionSweep(Source(device, result), precision)


def test_factor_range_is_computed_from_the_datasheet_rows() -> None:
    r = factor_range("bf16")
    ratios = [m.peaks.bf16 / m.peaks.fp32 for m in GPU_MODELS if m.peaks.bf16 and "Instinct" not in m.label]
    assert r.low == min(ratios) and r.high == max(ratios)
    assert r.low < r.high


def test_factor_table_shows_each_gpus_ratio() -> None:
    h100 = next(m for m in GPU_MODELS if m.label == "H100 SXM 80GB")
    out = tensor_cores.factor_table()
    assert f"({tensor_cores.fmt(h100.peaks.bf16 / h100.peaks.fp32, 2)}x)" in out
    assert "[1]" in out and "Sources:" in out


def test_ridge_table_divides_peak_by_bandwidth() -> None:
    h200 = next(m for m in GPU_MODELS if m.label == "H200 SXM 141GB")
    out = tensor_cores.ridge_table()
    row = next(line for line in out.splitlines() if line.startswith("| H200 SXM 141GB"))
    assert tensor_cores.fmt(h200.peaks.bf16 / h200.peaks.bandwidth, 3) in row
    assert tensor_cores.fmt(h200.peaks.fp32 / h200.peaks.bandwidth, 3) in row


def test_ridge_findings_name_the_elementwise_intensity() -> None:
    text = tensor_cores.ridge_findings()
    assert "memory-bound" in text and tensor_cores.fmt(1 / 12, 2) in text


def test_speedup_is_taken_at_the_largest_common_size_within_one_origin() -> None:
    fp32 = sweep_source([point(64, 1.0), point(128, 8.0), point(256, 64.0)], "float32")
    bf16 = sweep_source([point(64, 1.0), point(128, 2.0)], "bfloat16")
    assert speedup_over_fp32([fp32, bf16], bf16) == (128, 4.0)
    assert speedup_over_fp32([bf16], bf16) is None  # no fp32 sweep from the same origin


def test_best_point_respects_the_minimum_size() -> None:
    pts = [point(1024, 1.0), point(4096, 100.0), point(8192, 400.0)]
    assert best_point(pts).shape[0] == 8192  # 2*8192^3/400 > 2*4096^3/100 > 2*1024^3/1
    assert best_point(pts, min_n=16384) is None


@pytest.mark.parametrize(("ratio", "expected"), [
    (2.0, "**2x as fast**"), (1.05, "**about as fast**"), (0.5, "**slower**"),
])
def test_cpu_sentence_is_chosen_from_the_ratio(ratio: float, expected: str) -> None:
    assert expected in cpu_bf16_sentence(1024, ratio, 2.0)


def test_cpu_sentence_explains_the_unit_the_flags_show() -> None:
    assert "no bf16 unit" in cpu_bf16_sentence(1024, 1.0, 1.0)
    assert "dot-product" in cpu_bf16_sentence(1024, 2.0, 2.0)
    assert "AMX tiles, small matrix units" in cpu_bf16_sentence(1024, 5.0, 16.0)
    assert "flags" not in cpu_bf16_sentence(1024, 2.0, None)


@pytest.mark.parametrize(("ratio", "isa", "cause"), [
    (1.0, "AVX-512", "convert"),  # oneDNN converts to fp32 and runs its fp32 kernels: about fp32's speed
    (0.5, "AVX-512", "convert"),
    (0.0071, "AVX2+FMA", "fallback"),  # issue 19: a Zen 3 VM, 140x slower: ATen's reference loops, not oneDNN
    (1.0, "AVX2+FMA", "convert"),  # not slower: oneDNN ran (AVX-NE-CONVERT, not in the record)
    (0.5, "NEON", None),  # Arm: torch's x86 rule says nothing there
    (0.5, None, None),  # the record names no ISA
])
def test_a_cpu_without_a_bf16_unit_names_the_kernel_torch_ran(ratio: float, isa: str | None,
                                                              cause: str | None) -> None:
    """torch passes a bf16 matmul to oneDNN only with AVX-512 (or AVX-NE-CONVERT); elsewhere it falls back to
    ATen's reference gemm, far slower than fp32 (issue 19). Conversion alone predicts about fp32's speed."""
    text = cpu_bf16_sentence(1024, ratio, 1.0, isa=isa)
    assert "no bf16 unit" in text
    assert ("reference matmul loops" in text and "not the conversion" in text) == (cause == "fallback")
    assert ("oneDNN converts bf16 to fp32" in text) == (cause == "convert")


def test_the_precision_chart_marks_each_series_with_its_own_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record's series is drawn as archived (data-source names its file), never as this build's."""
    import re

    from gpucnn import archive

    live = sweep_source([point(2, 1e-6), point(4, 2e-6)], "float32")
    record = archive.records()[0]
    old = Source("cuda", live.result, record)
    monkeypatch.setattr(tensor_cores, "precision_sweeps",
                        lambda: [live, PrecisionSweep(old, "float32"), PrecisionSweep(old, "bfloat16")])
    svg = tensor_cores.precision_chart().split("<svg", 1)[1].split("</svg>", 1)[0]  # the chart, not its table
    assert re.findall(r'data-source="([^"]*)"', svg) == ["live", f"archived:{record.name}", f"archived:{record.name}"]
