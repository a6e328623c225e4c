"""The measured values themselves: ``Measurement`` and ``Sweep``.

Kept apart from the timing harness (``gpucnn.bench``, which needs torch) so
that the archive, the CLI's ``results`` commands and anything else that only
reads results can load them without importing torch. ``gpucnn.bench``
re-exports both names.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: hardware.py may import torch
    from gpucnn.hardware import HardwareReport

__all__ = ["Measurement", "Sweep"]


@dataclass(frozen=True)
class Measurement:
    """One measured point: raw per-call times and what was measured.

    Times are seconds per call; each raw time is the mean of one run of
    ``number_per_run`` back-to-back calls.
    """

    name: str
    device: str
    dtype: str
    shape: tuple[int, ...]
    threads: int
    times_s: tuple[float, ...]
    number_per_run: int
    flops: float = 0.0
    bytes_moved: float = 0.0
    peak_flops: float | None = None
    peak_bytes_per_s: float | None = None
    hardware: HardwareReport | None = field(default=None, compare=False, repr=False)

    @property
    def runs(self) -> int:
        return len(self.times_s)

    @property
    def median(self) -> float:
        return statistics.median(self.times_s)

    @property
    def p25(self) -> float:
        return _quartiles(self.times_s)[0]

    @property
    def p75(self) -> float:
        return _quartiles(self.times_s)[2]

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    @property
    def best(self) -> float:
        return min(self.times_s)

    @property
    def gflops(self) -> float | None:
        """Achieved GFLOP/s at the median time (10^9 FLOP per second)."""
        return self.flops / self.median / 1e9 if self.flops else None

    @property
    def gbps(self) -> float | None:
        """Achieved GB/s at the median time (10^9 bytes, read + written)."""
        return self.bytes_moved / self.median / 1e9 if self.bytes_moved else None

    @property
    def pct_peak_flops(self) -> float | None:
        return 100 * self.gflops * 1e9 / self.peak_flops if self.gflops and self.peak_flops else None

    @property
    def pct_peak_bandwidth(self) -> float | None:
        return 100 * self.gbps * 1e9 / self.peak_bytes_per_s if self.gbps and self.peak_bytes_per_s else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; derived statistics are included for readers of results.json."""
        return {
            "name": self.name, "device": self.device, "dtype": self.dtype, "shape": list(self.shape),
            "threads": self.threads, "times_s": list(self.times_s), "number_per_run": self.number_per_run,
            "flops": self.flops, "bytes_moved": self.bytes_moved,
            "peak_flops": self.peak_flops, "peak_bytes_per_s": self.peak_bytes_per_s,
            "median_s": self.median, "p25_s": self.p25, "p75_s": self.p75, "runs": self.runs,
            "gflops": self.gflops, "gbps": self.gbps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], hardware: HardwareReport | None = None) -> Measurement:
        return cls(
            name=data["name"], device=data["device"], dtype=data["dtype"], shape=tuple(data["shape"]),
            threads=int(data["threads"]), times_s=tuple(float(t) for t in data["times_s"]),
            number_per_run=int(data["number_per_run"]), flops=float(data["flops"]),
            bytes_moved=float(data["bytes_moved"]), peak_flops=data.get("peak_flops"),
            peak_bytes_per_s=data.get("peak_bytes_per_s"), hardware=hardware,
        )


def _quartiles(times: tuple[float, ...]) -> list[float]:
    if len(times) == 1:
        return [times[0]] * 3
    return statistics.quantiles(times, n=4, method="inclusive")


@dataclass(frozen=True)
class Sweep:
    """The points of a size sweep, and why it stopped early, if it did."""

    points: tuple[Measurement, ...]
    stopped: str | None = None
