"""Advantage 2 and Summary after review A (round 3): a tie is no crossover, a CPU bf16 ratio above its peak
ratio is explained by the two efficiencies, and mamf-finder's bf16 figure stands beside the site's own bf16.

Points are synthetic; where the archived records are read, the test checks what the sentences say about
them against the data, never a measured value.
"""

from __future__ import annotations

from gpucnn.bench import Measurement, Sweep
from gpucnn.pages.tensor_cores import PrecisionSweep
from gpucnn.results import Result
from gpucnn.sources import Source


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






# --- L6: no claim that a few cores reach any CPU's DRAM bandwidth ------------------------------------------



# --- the n = 2 GPU time: a fixed cost per call, whose pace-setter the record's own data decide ---------------
