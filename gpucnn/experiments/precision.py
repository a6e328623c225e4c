"""Matrix multiply in reduced precision: bf16, fp16 and TF32 beside the fp32 sweep.

``matmul_sweep`` stays what it was (fp32 inputs, TF32 off), so archived fp32
series keep their meaning. These sweeps are separate experiments, one per
precision, because each runs on different hardware units: TF32, bf16 and fp16
matmuls run on an NVIDIA GPU's tensor cores, bf16 on a CPU on AMX tiles or
AVX512_BF16 dot products where the CPU has them.
"""

from __future__ import annotations

from typing import Any

import torch

from gpucnn.bench import Measurement, measure, sweep
from gpucnn.experiments.matmul import matmul_sizes
from gpucnn.hardware import HardwareReport, detect
from gpucnn.profile import current_profile
from gpucnn.results import experiment

# name -> (storage dtype, TF32 allowed). "tf32" is fp32 storage with TF32
# tensor-core math allowed: the inputs and output stay fp32, the multiplies
# round to a 10-bit mantissa.
PRECISIONS: dict[str, tuple[torch.dtype, bool]] = {
    "bfloat16": (torch.bfloat16, False),
    "float16": (torch.float16, False),
    "tf32": (torch.float32, True),
}
# Short names for tables and legends.
LABELS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "tf32": "TF32"}


def precisions_for(device: str, hw: HardwareReport | None = None) -> list[str]:
    """The reduced precisions worth sweeping on ``device``.

    * CPU: bf16 only. TF32 is a GPU tensor-core mode (the setting does nothing
      on a CPU), and without AVX512-FP16 or AMX-FP16 torch runs fp16 matmuls
      through a slow fallback (seconds per call at n = 1024).
    * CUDA: fp16 always; bf16 and TF32 from Ampere (compute capability 8.0)
      on, where tensor cores support them. ROCm: bf16 and fp16 (TF32 is
      NVIDIA's).
    * MPS and XPU: bf16 and fp16.
    """
    hw = hw or detect()
    if device == "cpu":
        return ["bfloat16"]
    acc = hw.accelerator
    if device == "cuda" and acc is not None:
        if acc.backend == "ROCm":
            return ["bfloat16", "float16"]
        major = int(acc.capability.split(".")[0]) if acc.capability and acc.capability[0].isdigit() else 0
        return ["bfloat16", "float16", "tf32"] if major >= 8 else ["float16"]
    return ["bfloat16", "float16"]


def precision_max_n(device: str) -> int:
    """The largest n of a precision sweep on ``device`` in this profile."""
    profile = current_profile()
    return profile.max_precision_n_cpu if device == "cpu" else profile.max_precision_n_gpu


def bytes_needed(n: int, precision: str) -> float:
    """Device memory one point needs: two inputs and the output, plus the fp32 random draw."""
    elem = torch.finfo(PRECISIONS[precision][0]).bits // 8
    return (3 * elem + 4) * float(n) * n


def measure_precision_matmul(n: int, device: str, precision: str) -> Measurement:
    """Time one n x n x n matmul in ``precision`` on ``device``.

    Inputs are random normal (zeros run faster on tensor cores: fewer bits
    toggle) and are drawn on the device itself, so that a 16384 x 16384 input
    costs no host-side generation and copy.
    """
    dt, tf32 = PRECISIONS[precision]
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=gen, device=device).to(dt)
    b = torch.randn(n, n, generator=gen, device=device).to(dt)

    def fn() -> torch.Tensor:
        return a @ b

    elem = torch.finfo(dt).bits // 8
    return measure(
        fn, name=f"{LABELS[precision]} matmul n={n}", device=device, dtype=dt, shape=(n, n, n),
        flops=2.0 * n**3, bytes_moved=3.0 * n * n * elem,
        # A third of the profile's time per point: a GPU sweeps three precisions, and a cold build
        # has a time budget. Every point still gets at least the profile's minimum number of runs.
        budget_s=current_profile().budget_s / 3,
        # A matmul reuses each input n times: only its FLOP/s is compared with a peak.
        working_set_bytes=0,
        # TF32 only for the TF32 sweep; measure restores the global setting afterwards.
        allow_tf32=tf32,
    )


@experiment
def precision_matmul_sweep(device: str, precision: str) -> dict[str, Any]:
    """GFLOP/s of a square matmul in bf16, fp16 or TF32, n = 2, 4, ... up to the profile's size for the device."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    result = sweep(
        matmul_sizes(precision_max_n(device)),
        lambda n: measure_precision_matmul(n, device, precision),
        device=device,
        bytes_needed=lambda n: bytes_needed(n, precision),
    )
    return {"sweep": result}
