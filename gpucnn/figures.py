"""Which point of an experiment's result is "the" figure for a quantity, defined once.

Several pages quote the same quantity (the DRAM copy bandwidth, the headline
matmul throughput, the cost of one tiny op); each takes it from here, so one
quantity has one number across the site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gpucnn.measurement import Measurement
from gpucnn.profiling import stored_op_rows
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


# --- the article's loop against its two parts, each timed alone ---------------------------------------------

class PartsVerdict(Enum):
    """How the article's whole compares with its two parts timed alone, judged by the three IQRs."""

    REST = "rest"  # the whole is more than the parts, beyond the spreads: a rest that is in neither part
    EXCEED = "exceed"  # the parts add up to more than the whole, beyond the spreads
    WITHIN = "within"  # whole and sum of parts agree within the spreads


@dataclass(frozen=True)
class ArticleParts:
    """The article's method (``whole``: ``randn`` then a matmul, in one loop) and its two parts, each timed
    alone in its own measurement: ``randn`` (with the copy, on a GPU) and the matmul on ready inputs."""

    whole: Measurement
    randn: Measurement
    matmul: Measurement

    @property
    def parts(self) -> float:
        return self.randn.median + self.matmul.median

    @property
    def rest(self) -> float:
        """The whole's median less the parts' (s): negative where the parts add up to more than the whole."""
        return self.whole.median - self.parts

    @property
    def verdict(self) -> PartsVerdict:
        # The sum's range is taken wide (both lower quartiles, both upper ones): a rest is called only where
        # the whole's IQR clears it.
        if self.whole.p25 > self.randn.p75 + self.matmul.p75:
            return PartsVerdict.REST
        if self.whole.p75 < self.randn.p25 + self.matmul.p25:
            return PartsVerdict.EXCEED
        return PartsVerdict.WITHIN


def article_parts(data: dict[str, Any], n: int = 2000) -> ArticleParts:
    """The parts of ``article_matmul``'s result at size ``n``: the matmul is the all-threads one."""
    return ArticleParts(data[f"article_{n}"], data[f"randn_{n}"], data[f"correct_{n}"])


# --- what a tiny GPU call costs back to back, and who pays it ------------------------------------------------

class Pace(Enum):
    """Which side sets a GPU's time per tiny call back to back, within one record."""

    HOST = "host"  # the GPU's kernels fill less than half of each call: it waits for the host to issue the next
    GPU = "gpu"  # they fill half of it or more
    UNKNOWN = "unknown"  # the record has no profile with kernel times


@dataclass(frozen=True)
class CallCost:
    """A tiny op back to back on one GPU and on the host CPU of the same record.

    ``host_add``: a one-number add on the host CPU (Python, torch's dispatcher, the add). ``gpu_add`` and
    ``gpu_matmul``: a one-number add and a 2x2 matmul on the GPU. ``kernel``: the shortest time per call that
    the GPU spent running any op's kernels in the record's MLP profile (s), None without one: at most what a
    small op keeps the GPU itself busy.
    """

    host_add: Measurement
    gpu_add: Measurement
    gpu_matmul: Measurement
    kernel: float | None

    @property
    def cuda_path(self) -> float:
        """What the same add costs more on the GPU than on the host CPU (s)."""
        return self.gpu_add.median - self.host_add.median

    @property
    def matmul_extra(self) -> float:
        """What a 2x2 matmul costs more than an add on the GPU (s): cuBLAS's work per call, or its kernel."""
        return self.gpu_matmul.median - self.gpu_add.median

    @property
    def pace(self) -> Pace:
        if self.kernel is None:
            return Pace.UNKNOWN
        return Pace.HOST if self.kernel < self.gpu_add.median / 2 else Pace.GPU


def shortest_kernel(profile_rows: Sequence[Any]) -> float | None:
    """The shortest device time per call of any operator in a stored profile (s); None without device times."""
    times = [r["self_device_s"] / r["calls"] for r in stored_op_rows(profile_rows)
             if r["self_device_s"] and r["calls"] and r["calls"] >= 1]
    return min(times, default=None)


def call_cost(gpu_latency: dict[str, Any], host_latency: dict[str, Any],
              profile_rows: Sequence[Any] | None = None) -> CallCost:
    """From ``small_op_latency``'s data on a GPU and on its host CPU, and the GPU's ``mlp_time_split`` profile."""
    return CallCost(host_latency["add_stream"], gpu_latency["add_stream"], gpu_latency["matmul2x2_stream"],
                    shortest_kernel(profile_rows) if profile_rows else None)


class HostOrder(Enum):
    """Two machines with the same GPU chip: do the GPU's times follow the host CPU's?"""

    FOLLOWS = "follows"  # the slower host's machine is slower on the GPU too: the tiny add and the batch-1 step
    NOT_FOLLOWING = "not following"  # the hosts differ, the GPU times do not follow
    SAME_HOST = "same host"  # the hosts' calls cannot be told apart


def host_order(a: CallCost, a_step: Measurement, b: CallCost, b_step: Measurement) -> HostOrder:
    """Whether, of two machines with the same GPU chip, the one with the slower host call is also slower at the
    GPU's tiny add and at a small training step on the GPU (``*_step``): each told apart (``told_apart``)."""
    if not told_apart(a.host_add, b.host_add):
        return HostOrder.SAME_HOST
    slow, fast = (a, b) if a.host_add.median > b.host_add.median else (b, a)
    slow_step, fast_step = (a_step, b_step) if slow is a else (b_step, a_step)
    follows = (told_apart(slow.gpu_add, fast.gpu_add) and slow.gpu_add.median > fast.gpu_add.median
               and told_apart(slow_step, fast_step) and slow_step.median > fast_step.median)
    return HostOrder.FOLLOWS if follows else HostOrder.NOT_FOLLOWING


def fastest_images(points: Sequence[Measurement]) -> Measurement | None:
    """The point of a training sweep with the most images per second (batch / median time), or None."""
    return max(points, key=lambda m: m.shape[0] / m.median) if points else None


def images_per_s(m: Measurement) -> float:
    """A training step's images per second at its median time."""
    return m.shape[0] / m.median


def best_point(points: Sequence[Measurement], min_n: int = 0) -> Measurement | None:
    """The point of a sweep with the highest FLOP/s among sizes >= ``min_n``, or None."""
    cands = [m for m in points if m.shape[0] >= min_n and m.gflops]
    return max(cands, key=lambda m: m.gflops) if cands else None
