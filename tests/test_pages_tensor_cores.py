"""The tensor-core page builders: datasheet factors and ridge points, and sentences chosen from data."""

from __future__ import annotations

from gpucnn.bench import Measurement
from gpucnn.datasheets import GPU_MODELS
from gpucnn.hardware import detect
from gpucnn.pages import tensor_cores
from gpucnn.pages.tensor_cores import (
    PrecisionSweep,
    best_point,
    factor_range,
)
from gpucnn.results import Result
from gpucnn.sources import Source


def point(n: int, seconds: float, dtype: str = "float32") -> Measurement:
    return Measurement(name=f"p{n}", device="cpu", dtype=dtype, shape=(n, n, n), threads=1, times_s=(seconds,) * 5,
                       number_per_run=1, flops=2.0 * n**3)


def sweep_source(points: list[Measurement], precision: str, device: str = "cpu") -> PrecisionSweep:
    from gpucnn.bench import Sweep

    result = Result(experiment="matmul_sweep", params={"device": device}, data={"sweep": Sweep(tuple(points))},
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




def test_best_point_respects_the_minimum_size() -> None:
    pts = [point(1024, 1.0), point(4096, 100.0), point(8192, 400.0)]
    assert best_point(pts).shape[0] == 8192  # 2*8192^3/400 > 2*4096^3/100 > 2*1024^3/1
    assert best_point(pts, min_n=16384) is None







