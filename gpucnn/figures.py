"""Which point of an experiment's result is "the" figure for a quantity, defined once.

Several pages quote the same quantity (the DRAM copy bandwidth, the headline
matmul throughput, the cost of one tiny op); each takes it from here, so one
quantity has one number across the site.
"""

from __future__ import annotations

from gpucnn.measurement import Measurement
from gpucnn.results import Result

# The matmul size quoted as "the" matmul throughput on Home, Summary, Fast memory and
# Results: large enough to fill a data-centre GPU. The quick profile (tests) stops
# below it, and then its largest size stands in, with its n shown.
HEADLINE_MATMUL_N = 4096

# Closer than this to 1x counts as "about as fast": run-to-run noise on a shared machine.
SAME_SPEED = 1.15


def told_apart(a: Measurement, b: Measurement) -> bool:
    """Whether two measurements' rates (FLOP per second, or calls per second where they count no FLOPs) can be
    told apart: their IQRs do not overlap, and their medians differ by more than SAME_SPEED. Pages call a
    faster or slower result only where this holds, and "about equal" otherwise."""
    def rates(m: Measurement) -> tuple[float, float, float]:
        work = m.flops or 1.0
        return work / m.p75, work / m.median, work / m.p25

    (a_low, a_mid, a_high), (b_low, b_mid, b_high) = rates(a), rates(b)
    overlap = a_low <= b_high and b_low <= a_high
    return not overlap and not 1 / SAME_SPEED < a_mid / b_mid < SAME_SPEED


def dram_point(result: Result) -> Measurement | None:
    """The copy at the largest buffer of a copy sweep: the one that measures DRAM (or HBM), not a cache."""
    pts = result.data["sweep"].points
    return pts[-1] if pts else None


def matmul_at(result: Result, n: int | None = None) -> Measurement | None:
    """The point of a matmul sweep at size ``n``, or None when the sweep did not reach it.

    Without ``n``: the headline point, at ``HEADLINE_MATMUL_N``, else the largest size below it.
    """
    points = result.data["sweep"].points
    if n is not None:
        return next((m for m in points if m.shape[0] == n), None)
    below = [m for m in points if m.shape[0] <= HEADLINE_MATMUL_N]
    return below[-1] if below else None


def training_point(result: Result) -> Measurement | None:
    """The training-step sweep's largest batch: the images/s a device reaches when it is given enough work."""
    pts = result.data["sweep"].points
    return pts[-1] if pts else None
