"""The tensor-core page builders: datasheet factors and ridge points, and sentences chosen from data."""

from __future__ import annotations

from gpucnn.bench import Measurement
from gpucnn.hardware import detect
from gpucnn.pages.tensor_cores import (
    PrecisionSweep,
    best_point,
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












def test_best_point_respects_the_minimum_size() -> None:
    pts = [point(1024, 1.0), point(4096, 100.0), point(8192, 400.0)]
    assert best_point(pts).shape[0] == 8192  # 2*8192^3/400 > 2*4096^3/100 > 2*1024^3/1
    assert best_point(pts, min_n=16384) is None







