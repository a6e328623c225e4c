"""Reference tables: GPU datasheet peaks, and what CPU instruction sets allow per cycle.

Kept apart from ``hardware`` (which detects the machine) so that the figures
and their sources can be read and reviewed on their own. Every GPU row names
its datasheet; a GPU that is not in the table gets no peak, never a neighbour's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Protocol

_TERA = 1e12
_GIB = 1024**3


@dataclass(frozen=True)
class GpuPeaks:
    """Datasheet peaks of one GPU (or of the slice this process sees), dense (no sparsity).

    FLOP/s for fp32 (CUDA cores / vector units, or the fp32 matrix rate where the
    vendor gives one), tf32, bf16 and fp16 (tensor / matrix cores); bytes/s for
    memory bandwidth. None: the GPU has no such unit. ``fp16`` comes last, with
    a default, so that records written before it existed still load.
    """

    fp32: float
    tf32: float | None
    bf16: float | None
    bandwidth: float
    source: str
    fp16: float | None = None


@dataclass(frozen=True)
class GpuModel:
    """One row of the datasheet table.

    ``names`` are the device names drivers report for exactly this part; a name
    matches when its model tokens (see ``model_tokens``) equal one of them.
    ``units`` (SMs or CUs) and ``memory_gib`` describe the whole chip, so that a
    MIG slice or a partition can be scaled to its share. ``memory`` is the kind of
    device memory the row's datasheet names ("HBM3", "GDDR6X"); it is not part of
    ``GpuPeaks``, so no record stores it: pages look it up by name (``memory_kind``).
    """

    label: str
    names: tuple[str, ...]
    units: int
    memory_gib: float
    peaks: GpuPeaks
    memory: str | None = None


def _p(fp32: float, tf32: float | None, bf16: float | None, fp16: float | None, tb_s: float, source: str) -> GpuPeaks:
    """Peaks from datasheet units: TFLOP/s and TB/s."""
    return GpuPeaks(fp32 * _TERA, _times(tf32, _TERA), _times(bf16, _TERA), tb_s * _TERA, source, _times(fp16, _TERA))


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


_H100_SRC = "NVIDIA H100 datasheet (as tabulated in stas00/ml-engineering, compute/accelerator)"
_H200_SRC = "NVIDIA H200 datasheet (as tabulated in stas00/ml-engineering)"
_A100_SRC = "NVIDIA A100 datasheet"
_ADA_SRC = "NVIDIA Ada Lovelace architecture whitepaper (tensor figures with FP32 accumulate, dense)"

# Dense figures: where a datasheet gives "X | 2X*" (with sparsity), X is used.
# memory=: the memory type the same datasheet or whitepaper names for the part.
GPU_MODELS: tuple[GpuModel, ...] = (
    GpuModel("H100 SXM 80GB", ("H100 80GB HBM3", "H100 SXM5 80GB", "H100 SXM"), 132, 80,
             _p(67, 494.5, 989.5, 989.5, 3.35, _H100_SRC), memory="HBM3"),
    GpuModel("H100 PCIe 80GB", ("H100 PCIe", "H100 80GB PCIe"), 114, 80,
             _p(51, 378, 756.5, 756.5, 2.0, _H100_SRC), memory="HBM2e"),
    GpuModel("H100 NVL 94GB", ("H100 NVL",), 132, 94,
             _p(60, 417.5, 835.5, 835.5, 3.9, _H100_SRC), memory="HBM3"),
    GpuModel("H200 SXM 141GB", ("H200",), 132, 141,
             _p(67, 494.5, 989.5, 989.5, 4.8, _H200_SRC), memory="HBM3e"),
    GpuModel("H200 NVL 141GB", ("H200 NVL",), 132, 141,
             _p(60, 417.5, 835.5, 835.5, 4.8, _H200_SRC), memory="HBM3e"),
    GpuModel("A100 SXM 80GB", ("A100-SXM4-80GB", "A100-SXM-80GB"), 108, 80,
             _p(19.5, 156, 312, 312, 2.039, _A100_SRC), memory="HBM2e"),
    GpuModel("A100 SXM 40GB", ("A100-SXM4-40GB",), 108, 40,
             _p(19.5, 156, 312, 312, 1.555, _A100_SRC), memory="HBM2"),
    GpuModel("A100 PCIe 80GB", ("A100 80GB PCIe",), 108, 80,
             _p(19.5, 156, 312, 312, 1.935, _A100_SRC), memory="HBM2e"),
    GpuModel("A100 PCIe 40GB", ("A100-PCIE-40GB",), 108, 40,
             _p(19.5, 156, 312, 312, 1.555, _A100_SRC), memory="HBM2"),
    GpuModel("A10", ("A10",), 72, 24,
             _p(31.2, 62.5, 125, 125, 0.6, "NVIDIA A10 datasheet"), memory="GDDR6"),
    GpuModel("L4", ("L4",), 58, 24,
             _p(30.3, 60, 121, 121, 0.3, "NVIDIA L4 datasheet"), memory="GDDR6"),
    GpuModel("L40", ("L40",), 142, 48,
             _p(90.5, 90.5, 181, 181, 0.864, "NVIDIA L40 datasheet"), memory="GDDR6"),
    GpuModel("L40S", ("L40S",), 142, 48,
             _p(91.6, 183, 362.05, 362.05, 0.864, "NVIDIA L40S datasheet"), memory="GDDR6"),
    GpuModel("T4", ("T4",), 40, 16,
             _p(8.1, None, None, 65, 0.32, "NVIDIA T4 datasheet (Turing: no TF32, no BF16)"), memory="GDDR6"),
    GpuModel("V100 SXM2", ("V100-SXM2-16GB", "V100-SXM2-32GB"), 80, 32,
             _p(15.7, None, None, 125, 0.9, "NVIDIA V100 datasheet (Volta: no TF32, no BF16)"), memory="HBM2"),
    GpuModel("V100 PCIe", ("V100-PCIE-16GB", "V100-PCIE-32GB"), 80, 32,
             _p(14, None, None, 112, 0.9, "NVIDIA V100 datasheet (Volta: no TF32, no BF16)"), memory="HBM2"),
    GpuModel("GeForce RTX 4090", ("RTX 4090",), 128, 24,
             _p(82.6, 82.6, 165.2, 165.2, 1.008, _ADA_SRC), memory="GDDR6X"),
    GpuModel("GeForce RTX 4080", ("RTX 4080",), 76, 16,
             _p(48.7, 48.7, 97.5, 97.5, 0.7168, _ADA_SRC), memory="GDDR6X"),
    GpuModel("GeForce RTX 3090", ("RTX 3090",), 82, 24,
             _p(35.6, 35.6, 71, 71, 0.936, "NVIDIA Ampere GA102 whitepaper (tensor figures with FP32 accumulate)"),
             memory="GDDR6X"),
    GpuModel("Instinct MI300X", ("MI300X",), 304, 192,
             _p(163.4, 653.7, 1307.4, 1307.4, 5.3, "AMD Instinct MI300X datasheet (FP32 matrix)"), memory="HBM3"),
    # One MI250(X) is two dies, and torch sees each as a device with half the
    # CUs and half the memory: the slice scaling below halves the peaks.
    GpuModel("Instinct MI250X", ("MI250X",), 220, 128,
             _p(95.7, None, 383, 383, 3.2, "AMD Instinct MI250X datasheet (FP32 matrix; no TF32)"), memory="HBM2e"),
    GpuModel("Instinct MI250", ("MI250",), 208, 128,
             _p(90.5, None, 362.1, 362.1, 3.2, "AMD Instinct MI250 datasheet (FP32 matrix; no TF32)"), memory="HBM2e"),
)
# AMD rates an Instinct GPU's FP32 twice: "vector" (its SIMD units) and "matrix" (its matrix cores, which an
# fp32 matmul uses there). The rows above keep the matrix figure, the ceiling an fp32 matmul is checked
# against; these are the vector figures, the FP32 rate before any matrix (tensor) core is counted. Values:
# the fp32 column of stas00/ml-engineering's accelerator table, which quotes AMD's vector figures. On the
# MI300X (CDNA 3) AMD gives the same 163.4 TFLOP/s for both; the MI250(X) vector figure is about half its matrix one.
_AMD_VECTOR_SRC = "AMD Instinct datasheets, FP32 vector (as tabulated in stas00/ml-engineering, compute/accelerator)"
VECTOR_FP32: dict[str, tuple[float, str]] = {
    "Instinct MI300X": (163.4 * _TERA, _AMD_VECTOR_SRC),
    "Instinct MI250X": (47.9 * _TERA, _AMD_VECTOR_SRC),
    "Instinct MI250": (45.3 * _TERA, _AMD_VECTOR_SRC),
}


def vector_fp32(label: str, peaks: GpuPeaks) -> tuple[float, str]:
    """(FP32 FLOP/s of the vector / CUDA-core units, its source) of a datasheet row.

    The row's own ``fp32`` where that is a vector figure (every NVIDIA row); the vendor's vector figure
    where the row holds a matrix-core one (``VECTOR_FP32``).
    """
    return VECTOR_FP32.get(label, (peaks.fp32, peaks.source))


# Not in the table on purpose: GH200 (sold with 96 GB HBM3 or 144 GB HBM3e, at
# different bandwidths), A10G (a cloud part without a public NVIDIA datasheet),
# and Apple GPUs (MPS names no chip, and each M chip comes with several GPU core counts).

# Words that name the vendor or the product line, not the model.
_BRAND_WORDS = frozenset({"NVIDIA", "TESLA", "GEFORCE", "AMD", "INSTINCT", "RADEON"})


def model_tokens(name: str) -> frozenset[str]:
    """The tokens that identify a GPU model: "NVIDIA A100-SXM4-80GB" -> {A100, SXM4, 80GB}.

    A MIG suffix (" MIG 1g.10gb") is dropped; brand words are ignored, every
    other token must match, so "L40S" is not "L40" and "H200 NVL" is not "H200".
    """
    base = re.split(r"\bMIG\b", name, maxsplit=1, flags=re.IGNORECASE)[0]
    return frozenset(re.findall(r"[A-Z0-9]+", base.upper())) - _BRAND_WORDS


# FP32 lanes of one SM (32-bit FMA results per clock), by CUDA compute capability: CUDA C++ Programming
# Guide, "Arithmetic Instructions" throughput table, and the architecture whitepapers. Ampere GA10x (8.6)
# and Ada (8.9) doubled Volta's and GA100's 64.
FP32_LANES_PER_SM = {"7.0": 64, "7.5": 64, "8.0": 64, "8.6": 128, "8.7": 128, "8.9": 128, "9.0": 128}


def gpu_model(name: str) -> GpuModel | None:
    """The datasheet row for a device name, or None when no row names exactly this part."""
    tokens = model_tokens(name)
    for row in GPU_MODELS:
        if any(model_tokens(n) == tokens for n in row.names):
            return row
    return None


def gpu_peaks(name: str) -> GpuPeaks | None:
    """Whole-chip datasheet peaks for a device name, or None when it is not in the table."""
    row = gpu_model(name)
    return row.peaks if row else None


def memory_type(name: str) -> str | None:
    """The device memory a GPU's datasheet names ("HBM3", "GDDR6X"), or None when no row names this part."""
    row = gpu_model(name)
    return row.memory if row else None


class _Named(Protocol):
    name: str


def memory_kind(acc: _Named | None) -> str:
    """The family of an accelerator's device memory, as prose names it: "HBM", "GDDR" or "device memory".

    Looked up by the accelerator's name (a live one or an archived record's), as its datasheet peaks are:
    a GPU that no row names, an Apple GPU (MPS names no chip) and None get the neutral "device memory",
    never a neighbour's kind.
    """
    kind = memory_type(acc.name) if acc is not None else None
    for family in ("HBM", "GDDR"):
        if kind and kind.startswith(family):
            return family
    return "device memory"


def _eighths(share: float) -> float:
    """A share rounded up to whole eighths: MIG and MI250 memory comes in eighths, and a bound must not be low."""
    return min(1.0, math.ceil(share * 8 - 1e-9) / 8)


def slice_peaks(name: str, units: int | None, memory_bytes: int | None, mig: bool) -> GpuPeaks | None:
    """Peaks for the device this process sees, which may be a slice of the chip.

    Compute is scaled by the share of SMs (or CUs) the device has, bandwidth by
    its share of memory slices (from a MIG profile such as "3g.40gb", else from
    its memory size, rounded up to eighths). Returns None when the device is not
    in the table, has more units than the chip (a different part), or is a
    slice whose share cannot be told.
    """
    row = gpu_model(name)
    if row is None:
        return None
    if units is None:
        return None if mig else row.peaks
    if units > row.units:
        return None
    compute = units / row.units
    if not mig and compute == 1:
        return row.peaks
    profile = re.search(r"\bMIG\s+\d+g\.(\d+)gb", name, re.IGNORECASE)
    if profile:
        memory_share = _eighths(int(profile.group(1)) / row.memory_gib)
    elif memory_bytes:
        memory_share = _eighths(memory_bytes / (row.memory_gib * _GIB))
    else:
        return None
    p = row.peaks
    return replace(
        p, fp32=p.fp32 * compute, tf32=_times(p.tf32, compute), bf16=_times(p.bf16, compute),
        fp16=_times(p.fp16, compute),
        bandwidth=p.bandwidth * memory_share,
        source=f"{p.source}, scaled to this slice: {units} of {row.units} SMs/CUs, "
               f"{round(memory_share * 8)}/8 of the memory",
    )


# --- CPUs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpuFamily:
    """A CPU family whose FP32 FLOP per cycle or top clock is known better than its flags say.

    ``flop_per_cycle`` counts FP32 FLOP per cycle per core from the FMA units the
    core really has (an FMA is 2 FLOP): Zen 4 reports avx512f but executes
    512-bit ops as two 256-bit halves.
    """

    name: str
    flop_per_cycle: int
    max_boost_ghz: float
    source: str


# Keyed on (vendor, family, model range). Sources: the vendors' optimization
# manuals / microarchitecture guides (AMD Software Optimization Guide for
# Zen 2/3/4; Intel 64 and IA-32 Optimization Reference Manual), and the top
# boost clock of the family's server parts from the vendors' product pages.
AMD_FAMILIES: list[tuple[int, range, CpuFamily]] = [
    (0x17, range(0x30, 0x80), CpuFamily("AMD Zen 2", 32, 3.4, "2 x 256-bit FMA pipes (AMD Zen 2 optimization guide)")),
    (0x19, range(0x00, 0x10), CpuFamily("AMD Zen 3", 32, 4.1, "2 x 256-bit FMA pipes (AMD Zen 3 optimization guide)")),
    (0x19, range(0x20, 0x60), CpuFamily("AMD Zen 3", 32, 4.1, "2 x 256-bit FMA pipes (AMD Zen 3 optimization guide)")),
    (0x19, range(0x10, 0x20), CpuFamily("AMD Zen 4", 32, 3.7, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
    (0x19, range(0x60, 0x80), CpuFamily("AMD Zen 4", 32, 5.1, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
    (0x19, range(0xA0, 0xB0), CpuFamily("AMD Zen 4", 32, 3.7, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
]
INTEL_FAMILIES: list[tuple[int, range, CpuFamily]] = [
    (6, range(0x55, 0x56), CpuFamily("Intel Skylake/Cascade Lake SP", 64, 3.9, "2 x 512-bit FMA units (Xeon Gold/Platinum; Intel optimization manual)")),
    (6, range(0x6A, 0x6B), CpuFamily("Intel Ice Lake SP", 64, 3.7, "2 x 512-bit FMA units (Intel optimization manual)")),
    (6, range(0x8F, 0x90), CpuFamily("Intel Sapphire Rapids", 64, 4.0, "2 x 512-bit FMA units (Intel optimization manual)")),
]


def cpu_family(vendor: str, family: int, model: int) -> CpuFamily | None:
    """Look a CPU up in the family table; None when it is not there."""
    table = AMD_FAMILIES if vendor == "AuthenticAMD" else INTEL_FAMILIES if vendor == "GenuineIntel" else []
    for fam, models, row in table:
        if fam == family and model in models:
            return row
    return None


@dataclass(frozen=True)
class IsaBound:
    """Upper bounds per core and cycle that a CPU's instruction-set flags allow.

    Flags cannot show how many FMA units a core has, so two are assumed on
    x86. On Arm, four 128-bit pipes are assumed: Neoverse V1 and V2 have four
    (Arm's software optimization guides for them), as do Apple's performance
    cores, so two would be a bound that real results beat. An upper bound for a
    guard against impossible results, not a spec figure.
    """

    isa: str
    fp32_flop_per_cycle: int
    bf16_flop_per_cycle: int
    bf16_unit: str  # what bounds bf16: AMX tiles, a bf16 dot product, or fp32 (converted)
    note: str


# Intel: a 4th Gen Xeon Scalable (Sapphire Rapids) core performs "2048 INT8 or 1024
# BF16 operations per cycle" on its AMX tile unit (Intel's AMX overview; an
# operation is a multiply or an add, so this counts FLOP).
AMX_BF16_FLOP_PER_CYCLE = 1024


# The ``isa`` names isa_bound gives an x86 CPU without AVX-512. torch hands a bf16 matmul or convolution to
# oneDNN only on a CPU with AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT (ATen's mkldnn_bf16_device_check); on
# these it falls back to ATen's reference kernels unless the CPU has AVX-NE-CONVERT.
X86_WITHOUT_AVX512 = ("AVX2+FMA", "AVX", "SSE2")


def isa_bound(flags: set[str], sve_vector_bits: int | None = None, family: CpuFamily | None = None) -> IsaBound | None:
    """The per-core, per-cycle bound for a set of /proc/cpuinfo flags (x86 ``flags`` or Arm ``Features``).

    A ``family`` row, where the CPU is in the table, replaces the FP32 figure the
    flags suggest (Zen 4: avx512f, but 2 x 256-bit FMA).
    """
    if "avx512f" in flags:
        fp32, isa, note = 2 * 16 * 2, "AVX-512", "2 FMA units x 16 FP32 lanes x 2 FLOP"
    elif "avx2" in flags and "fma" in flags:
        fp32, isa, note = 2 * 8 * 2, "AVX2+FMA", "2 FMA units x 8 FP32 lanes x 2 FLOP"
    elif "avx" in flags:
        fp32, isa, note = 8 + 8, "AVX", "one 8-lane FP32 add and one 8-lane multiply per cycle"
    elif "sse2" in flags:
        fp32, isa, note = 4 + 4, "SSE2", "one 4-lane FP32 add and one 4-lane multiply per cycle"
    elif "asimd" in flags or "sve" in flags:
        neon = 4 * 4 * 2  # four 128-bit FMA pipes x 4 FP32 lanes x 2 FLOP
        sve = 2 * (sve_vector_bits // 32) * 2 if "sve" in flags and sve_vector_bits else 0
        fp32 = max(neon, sve)
        isa = "SVE" if sve > neon else "NEON"
        note = (f"2 SVE FMA pipes x {sve_vector_bits // 32} FP32 lanes x 2 FLOP" if sve > neon
                else "4 x 128-bit FMA pipes x 4 FP32 lanes x 2 FLOP")
    else:
        return None
    if family is not None:
        fp32, note = family.flop_per_cycle, f"{family.name}: {family.source}"
    if "amx_bf16" in flags:
        bf16, unit = AMX_BF16_FLOP_PER_CYCLE, "AMX-BF16 tiles (1024 FLOP/cycle/core, Intel)"
    elif "avx512_bf16" in flags:
        bf16, unit = 2 * fp32, "AVX512_BF16 dot products (2x the FP32 rate)"
    elif "bf16" in flags and isa in ("NEON", "SVE"):
        bf16, unit = 4 * fp32, "Arm BFMMLA matrix multiply-accumulate (4x the FP32 rate)"
    else:
        bf16, unit = fp32, "no bf16 unit: bf16 runs at the FP32 rate"
    return IsaBound(isa, fp32, bf16, unit, note)
