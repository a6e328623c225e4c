"""Build profiles: one switch, ``GPUCNN_PROFILE=quick|full``, for the whole project."""

from __future__ import annotations

import os
from dataclasses import dataclass


class ProfileError(ValueError):
    """An unknown profile name."""


@dataclass(frozen=True)
class Profile:
    """How much time and size a build may spend on measurements.

    Attributes:
        name: ``quick`` (tests, previews) or ``full`` (the published site).
        budget_s: target time per measured point; at least ``min_runs`` runs are
            always taken, so a slow point may exceed it. The full profile's budget is
            the ``min_run_time`` that ``torch.utils.benchmark``'s ``blocked_autorange``
            uses by default: with runs of about a twentieth of it, a point has some
            twenty runs for its median and IQR.
        min_runs: the fewest timed runs per point, so that the IQR means something.
        max_matmul_n: the largest square matmul in a size sweep.
        sweep_point_limit_s: a size sweep stops once one call takes longer than this.
        max_precision_n_cpu, max_precision_n_gpu: the largest n of the bf16/fp16/TF32
            matmul sweeps. Smaller than ``max_matmul_n`` on the CPU, where a bf16
            n = 4096 point costs seconds; larger on a GPU, whose tensor cores need
            n in the thousands to approach their peak.
    """

    name: str
    budget_s: float
    min_runs: int
    max_matmul_n: int
    sweep_point_limit_s: float
    max_precision_n_cpu: int = 512
    max_precision_n_gpu: int = 4096


PROFILES = {
    "quick": Profile("quick", budget_s=0.03, min_runs=5, max_matmul_n=1024, sweep_point_limit_s=0.05),
    "full": Profile("full", budget_s=0.2, min_runs=5, max_matmul_n=4096, sweep_point_limit_s=1.5,
                    max_precision_n_cpu=2048, max_precision_n_gpu=16384),
}


def profile_by_name(name: str) -> Profile:
    """Return the named profile or raise ProfileError with the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


def current_profile() -> Profile:
    """The profile named by ``GPUCNN_PROFILE`` (default ``full``)."""
    return profile_by_name(os.environ.get("GPUCNN_PROFILE", "full").strip() or "full")
