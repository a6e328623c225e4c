"""Helpers that several pages share."""

from __future__ import annotations

from gpucnn.hardware import HardwareReport, detect


def devices() -> list[str]:
    """The devices this build measures: the CPU, then the accelerator if present."""
    return detect().devices


def accelerator(hw: HardwareReport | None = None) -> str | None:
    """The accelerator's torch device type, or None on a CPU-only build."""
    hw = hw or detect()
    return hw.accelerator.device_type if hw.accelerator else None
