"""Tensor cores and reduced precision on Advantage 2: this build's (and the records') matmul sweeps in fp32,
bf16, fp16 and TF32, every point set against its own precision's peak. The datasheet factors and ridge points
are What is a GPU's (``pages.gpu``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from gpucnn.bench import Measurement
from gpucnn.datasheets import X86_WITHOUT_AVX512
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.precision import LABELS, precision_matmul_sweep, precisions_for
from gpucnn.figures import SAME_SPEED
from gpucnn.pages.common import devices
from gpucnn.panels import Panel, small_multiples
from gpucnn.render import (
    Series,
    figures_table,
    fmt,
    series_table,
    sweep_series,
    table,
)
from gpucnn.results import Result, run
from gpucnn.sources import Source, archived_accelerators, note, sibling, sources


@dataclass(frozen=True)
class PrecisionSweep:
    """One device's matmul sweep in one precision ("float32" is the TF32-off fp32 sweep), from one source."""

    source: Source
    precision: str

    @property
    def device(self) -> str:
        return self.source.device

    @property
    def result(self) -> Result:
        return self.source.result

    @property
    def points(self) -> tuple[Measurement, ...]:
        return self.result.typed.sweep.points

    @property
    def label(self) -> str:
        """``CPU (this build) bf16``, ``H200 (archived) TF32``: the source's label, then the precision."""
        return f"{self.source.label} {LABELS[self.precision]}"

    def same_origin(self, other: PrecisionSweep) -> bool:
        """Measured on the same device in the same build: the only pairs a ratio may compare."""
        return self.source.origin == other.source.origin and self.device == other.device


def precision_sweeps() -> list[PrecisionSweep]:
    """The fp32 sweeps (TF32 off), then each reduced precision, for this build's devices and archived GPUs.

    Each archived GPU's fp32 sweep is followed by its own host CPU's, so that a chart showing the GPU shows its
    host too. A precision is measured live only on a device that supports it (``precisions_for``).
    """
    fp32 = sources(matmul_sweep, hosts=True)
    hosts = {s.origin: s for s in fp32 if s.archived and s.is_cpu}
    out = [PrecisionSweep(src, "float32") for src in fp32]
    for p in ("bfloat16", "float16", "tf32"):
        out += [PrecisionSweep(Source(d, run(precision_matmul_sweep, device=d, precision=p)), p)
                for d in devices() if p in precisions_for(d)]
        for record, result, status in archived_accelerators(precision_matmul_sweep, precision=p):
            gpu = Source(result.params["device"], result, record, status)
            out.append(PrecisionSweep(gpu, p))
            # The record's host CPU in the same precision, where it has one (bf16): drawn beside its GPU.
            host = sibling(hosts[gpu.origin], precision_matmul_sweep, precision=p) if gpu.origin in hosts else None
            if host is not None:
                out.append(PrecisionSweep(host, p))
    # Group by machine (this build first, then each record), CPU before GPU, fp32 first within each.
    origins = list(dict.fromkeys(s.source.origin for s in out))
    return sorted(out, key=lambda s: (origins.index(s.source.origin), not s.source.is_cpu))


def _by_n(points: Sequence[Measurement]) -> dict[int, Measurement]:
    return {m.shape[0]: m for m in points}


def speedup_over_fp32(sweeps: Sequence[PrecisionSweep], s: PrecisionSweep) -> tuple[int, float] | None:
    """(n, fp32 time / this time) at the largest n both sweeps measured on the same device, or None."""
    fp32 = next((f for f in sweeps if f.precision == "float32" and f.same_origin(s)), None)
    if fp32 is None:
        return None
    a, b = _by_n(fp32.points), _by_n(s.points)
    common = sorted(set(a) & set(b))
    if not common:
        return None
    n = common[-1]
    return n, a[n].median / b[n].median


def best_point(points: Sequence[Measurement], min_n: int = 0) -> Measurement | None:
    """The point with the highest FLOP/s among sizes >= ``min_n``."""
    cands = [m for m in points if m.shape[0] >= min_n and m.gflops]
    return max(cands, key=lambda m: m.gflops) if cands else None


def precision_panels(sweeps: Sequence[PrecisionSweep]) -> list[Panel]:
    """One panel per precision, each source in its colour (a GPU and its own host CPU share one; squares CPUs).

    A panel with more than five series (a GPU build beside several records) keeps the GPUs only: a GPU is
    then never drawn beside a CPU that is not its own host.
    """
    panels = []
    for precision in LABELS:
        found = [s for s in sweeps if s.precision == precision and s.points]
        if len(found) > 5:
            found = [s for s in found if not s.source.is_cpu]
        series = tuple(Series(**{**sweep_series(s.source.label, s.points, source=s.source.origin).__dict__,
                                 "style": {"marker": "s" if s.source.is_cpu else "o"}}) for s in found)
        panels.append(Panel(LABELS[precision], series))
    return panels


def precision_chart() -> str:
    """GFLOP/s against n, small multiples: one panel per precision, each source in its own colour."""
    sweeps = precision_sweeps()
    note([s.source for s in sweeps])
    panels = precision_panels(sweeps)
    chart = small_multiples(panels, title="Matmul throughput by precision", xlabel="n (matrix size, n x n)",
                            ylabel="GFLOP/s")
    shown = [replace_label(line, f"{line.label} {p.title}") for p in panels for line in p.series]
    return chart + figures_table(chart, series_table(shown, x="n", y="GFLOP/s"))


def replace_label(s: Series, label: str) -> Series:
    return Series(**{**s.__dict__, "label": label})


def _peak_kind(s: PrecisionSweep) -> str:
    return "estimate" if s.device == "cpu" else "datasheet"


def precision_table() -> str:
    """Per device and precision: the largest size, the best point and its % of that precision's peak."""
    sweeps = precision_sweeps()
    rows = []
    for s in sweeps:
        if not s.points:
            continue
        last, best = s.points[-1], best_point(s.points)
        speed = speedup_over_fp32(sweeps, s) if s.precision != "float32" else None
        pct = (f"{fmt(best.pct_peak_flops, 3)} % of {fmt(best.peak_flops / 1e9)} ({_peak_kind(s)})"
               if best and best.pct_peak_flops else "no peak known")
        rows.append((s.source.cell(), LABELS[s.precision], f"{last.shape[0]:,}",
                     fmt(last.gflops), f"{fmt(best.gflops)} (n = {best.shape[0]:,})" if best else "–", pct,
                     f"{fmt(speed[1], 3)}x (n = {speed[0]:,})" if speed else "–"))
    note([s.source for s in sweeps])
    return table(["Device", "Precision", "Largest n", "GFLOP/s at largest n", "Best GFLOP/s", "Best, as % of its "
                  "precision's peak (GFLOP/s)", "Speed-up over fp32"], rows, align="llrrrrr")


class Speed(Enum):
    """bf16 against fp32 on one device: told apart by ``SAME_SPEED``."""

    FASTER = "faster"
    SAME = "same"
    SLOWER = "slower"


def speed(ratio: float) -> Speed:
    return Speed.FASTER if ratio >= SAME_SPEED else Speed.SAME if ratio > 1 / SAME_SPEED else Speed.SLOWER


class Bf16Unit(Enum):
    """What a CPU has for bf16, and, without a unit, which kernel torch ran."""

    CONVERTED = "converted"  # no bf16 unit; oneDNN converts to fp32 and runs its fp32 kernels: about fp32's speed
    FALLBACK = "fallback"  # no bf16 unit and no AVX-512: ATen's reference loops, far slower than fp32
    NONE = "none"  # no bf16 unit; which kernel ran is not known (Arm, an ISA the record does not name)
    DOT_PRODUCTS = "dot products"  # AVX512_BF16: bf16 pairs into fp32, at most a few times fp32
    AMX = "amx"  # AMX tiles: a matrix unit
    UNKNOWN = "unknown"  # no bf16 peak in the record


# A CPU whose bf16 peak is at least this multiple of its fp32 one has matrix tiles (AMX), not dot products.
AMX_FACTOR = 8


def bf16_unit(bound: float | None, ratio: float, isa: str | None) -> Bf16Unit:
    """The CPU's bf16 unit from its bf16 / fp32 peak ratio, and without one, the kernel torch ran.

    torch passes a bf16 matmul to oneDNN only where ``mkldnn_bf16_device_check`` holds (ATen's
    native/mkldnn/Utils.h: AVX-512 BW/VL/DQ, or AVX-NE-CONVERT). There oneDNN converts to fp32 and
    multiplies with its fp32 kernels ("gemm:jit:bf16" under ONEDNN_VERBOSE=1 with ONEDNN_MAX_CPU_ISA=
    AVX512_CORE): about fp32's speed. Elsewhere (an AVX2 CPU such as Zen 3) no oneDNN primitive runs:
    cpublas::gemm falls through to ATen's reference loops (BlasKernel.cpp), with none of the cache
    blocking of the MKL kernel that runs fp32, many times slower (checked with ONEDNN_MAX_CPU_ISA=AVX2).
    AVX-NE-CONVERT is not in the record, so a CPU without AVX-512 that did not run slower is read as
    converting. An Arm CPU, or one whose ISA the record does not name, gets no cause.
    """
    if bound is None:
        return Bf16Unit.UNKNOWN
    if bound >= AMX_FACTOR:
        return Bf16Unit.AMX
    if bound > 1:
        return Bf16Unit.DOT_PRODUCTS
    if isa == "AVX-512" or ratio > 1 / SAME_SPEED:
        return Bf16Unit.CONVERTED
    return Bf16Unit.FALLBACK if isa in X86_WITHOUT_AVX512 else Bf16Unit.NONE


@dataclass(frozen=True)
class CpuBf16:
    """bf16 against fp32 on this build's CPU, at the largest size both sweeps measured."""

    source: Source
    n: int
    ratio: float  # fp32 time / bf16 time
    bound: float | None  # the CPU's bf16 peak / fp32 peak, from the units its flags show
    unit: Bf16Unit
    fp32_pct_peak: float | None  # the % of its own peak each reached at n
    bf16_pct_peak: float | None

    @property
    def speed(self) -> Speed:
        return speed(self.ratio)

    @property
    def beats_bound(self) -> bool:
        """Faster than the peak ratio allows, by more than the page's rounding shows."""
        return (self.bound is not None and self.fp32_pct_peak is not None and self.bf16_pct_peak is not None
                and self.ratio > self.bound and fmt(self.ratio, 2) != fmt(self.bound, 2))

    @property
    def efficiency_quotient(self) -> float | None:
        """bf16's share of its peak over fp32's: ratio = bound x this."""
        if self.fp32_pct_peak and self.bf16_pct_peak:
            return self.bf16_pct_peak / self.fp32_pct_peak
        return None

    @property
    def bytes_may_explain(self) -> bool:
        """Half-size elements can at most double what memory traffic allows: no reason for more."""
        q = self.efficiency_quotient
        return q is not None and q <= 2


@dataclass(frozen=True)
class GpuBest:
    """A GPU's best point in one reduced precision, at n >= ``BEST_FROM_N``, against its dense datasheet peak."""

    source: Source
    precision: str  # the label: bf16, fp16, TF32
    tflops: float
    n: int
    pct_peak: float
    speedup: float | None  # over fp32 with TF32 off, at ``speedup_n``
    speedup_n: int | None


BEST_FROM_N = 4096


@dataclass(frozen=True)
class PrecisionFacts:
    cpu_bf16: CpuBf16 | None
    gpus: tuple[GpuBest, ...]


def _efficiencies(sweeps: Sequence[PrecisionSweep], s: PrecisionSweep, n: int) -> tuple[float | None, float | None]:
    """(% of the fp32 peak the fp32 sweep reached, % of its own peak ``s`` reached), both at size ``n``."""
    fp32 = next((f for f in sweeps if f.precision == "float32" and f.same_origin(s)), None)
    a, b = (_by_n(fp32.points).get(n) if fp32 else None), _by_n(s.points).get(n)
    return (a.pct_peak_flops if a else None), (b.pct_peak_flops if b else None)


def precision_facts() -> PrecisionFacts:
    """Did bf16 beat fp32 on this build's CPU, and why; how close each GPU came to each precision's peak."""
    sweeps = precision_sweeps()
    cpu = None
    cpu_bf16 = next((s for s in sweeps if s.device == "cpu" and s.precision == "bfloat16"
                     and not s.source.archived), None)
    sp = speedup_over_fp32(sweeps, cpu_bf16) if cpu_bf16 else None
    if cpu_bf16 and sp:
        info = cpu_bf16.result.hardware.cpu
        bound = info.peak_bf16.value / info.peak_fp32.value if info.peak_bf16 and info.peak_fp32 else None
        fp32_pct, bf16_pct = _efficiencies(sweeps, cpu_bf16, sp[0])
        cpu = CpuBf16(cpu_bf16.source, sp[0], sp[1], bound, bf16_unit(bound, sp[1], info.isa), fp32_pct, bf16_pct)
        note(cpu_bf16.source)
    gpus = []
    for s in sweeps:
        if s.device == "cpu" or s.precision == "float32":
            continue
        best = best_point(s.points, min_n=BEST_FROM_N)
        if best and best.pct_peak_flops:
            up = speedup_over_fp32(sweeps, s)
            gpus.append(GpuBest(s.source, LABELS[s.precision], best.gflops / 1e3, best.shape[0], best.pct_peak_flops,
                                up[1] if up else None, up[0] if up else None))
            note(s.source)
    return PrecisionFacts(cpu, tuple(gpus))
