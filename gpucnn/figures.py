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
