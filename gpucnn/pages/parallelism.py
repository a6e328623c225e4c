"""Page "Advantage 2: parallelization": facts on matmul throughput against size, the size where
the GPU starts to win, CPU thread scaling, the CPU peaks' basis, and how much work a GPU needs in flight.

The words are docs/parallelism.md's; this module returns numbers, verdicts and the sources they stand on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.datasheets import gpu_model, gpu_peaks
from gpucnn.experiments.matmul import matmul_sweep, matmul_threads
from gpucnn.figures import SAME_SPEED as SAME_SPEED  # the template says what "about equal" means
from gpucnn.figures import told_apart
from gpucnn.panels import Panel, small_multiples
from gpucnn.render import Series, figures_table, series_table, sweep_series
from gpucnn.results import run
from gpucnn.sources import Pair, Source, accelerators, note, pairs, short_model, sources


def sweep_sources(hosts: bool = False) -> list[Source]:
    """fp32 matmul sweeps: this build's CPU and accelerator, then archived accelerators (and their host CPUs)."""
    return sources(matmul_sweep, hosts=hosts)


def with_copy_sources() -> list[Source]:
    """Each accelerator's sweep with the host-to-device copy of both inputs inside every call."""
    return accelerators(matmul_sweep, with_copy=True)


def judge(cpu: Measurement, other: Measurement) -> str:
    """"other" or "cpu" where that one is clearly faster at one size, "equal" where the two cannot be told apart.

    They cannot where their IQRs overlap or their medians are within SAME_SPEED of each other (run-to-run
    noise): a 0.6 % lead inside overlapping IQRs is a tie, not a win.
    """
    if not told_apart(cpu, other):
        return "equal"
    return "other" if cpu.median > other.median else "cpu"


@dataclass(frozen=True)
class Overtake:
    """Where ``other`` overtakes the CPU for good, and the sizes where the two are about equal.

    ``faster_from``: the smallest n from which ``other`` is clearly faster at every larger common n (None when
    it is not clearly faster at the largest). ``equal``: the common sizes just below ``faster_from`` (or, with
    no win, at the largest sizes) where the two are about equal, smallest first.
    """

    faster_from: int | None
    equal: tuple[int, ...] = ()


def overtake(cpu: Sequence[Measurement], other: Sequence[Measurement]) -> Overtake:
    """Walk down from the largest size both measured: first the sizes ``other`` clearly wins, then the ties."""
    cpu_at = {m.shape[0]: m for m in cpu}
    pairs_ = [(n, cpu_at[n], m) for m in other if (n := m.shape[0]) in cpu_at]
    pairs_.sort(key=lambda x: x[0], reverse=True)
    i, found = 0, None
    while i < len(pairs_) and judge(pairs_[i][1], pairs_[i][2]) == "other":
        found = pairs_[i][0]
        i += 1
    equal = []
    while i < len(pairs_) and judge(pairs_[i][1], pairs_[i][2]) == "equal":
        equal.append(pairs_[i][0])
        i += 1
    return Overtake(found, tuple(reversed(equal)))


def crossover(cpu: Sequence[Measurement], other: Sequence[Measurement]) -> int | None:
    """The smallest n from which ``other`` is clearly faster than the CPU at every larger measured n.

    Only sizes measured on both are compared; a size where the two are about equal (``judge``) is no win.
    None when ``other`` never wins, or does not win at the largest common size.
    """
    return overtake(cpu, other).faster_from


def _points(src: Source) -> Sequence[Measurement]:
    return src.result.typed.sweep.points


@dataclass(frozen=True)
class Tie:
    """Sizes where a GPU and its CPU are about equal: the GPU's speed as a multiple of the CPU's, and why
    that is no win (``iqrs_overlap``: True at every size, False at none, None at some)."""

    ns: tuple[int, ...]
    low_x: float
    high_x: float
    iqrs_overlap: bool | None


def tie(cpu: Sequence[Measurement], other: Sequence[Measurement], ns: Sequence[int]) -> Tie | None:
    if not ns:
        return None
    at_cpu, at_other = {m.shape[0]: m for m in cpu}, {m.shape[0]: m for m in other}
    ratios = [at_cpu[n].median / at_other[n].median for n in ns]
    overlaps = {at_other[n].p25 <= at_cpu[n].p75 and at_cpu[n].p25 <= at_other[n].p75 for n in ns}
    return Tie(tuple(ns), min(ratios), max(ratios), overlaps.pop() if len(overlaps) == 1 else None)


@dataclass(frozen=True)
class Crossover:
    """Where one accelerator overtakes the CPU of the same machine, within one source."""

    pair: Pair
    inputs_on_gpu: Overtake
    with_copy: Overtake | None  # None: the source has no sweep with the copy
    tie: Tie | None = None  # the sizes just below ``inputs_on_gpu.faster_from`` where the two are about equal
    slower_at_n: int | None = None  # the GPU's smallest size, where the CPU is clearly faster; None if it is not
    slower_at_s: float | None = None  # the GPU's time per call there
    largest_n: int | None = None  # the largest size both measured
    largest_x: float | None = None  # the GPU's speed-up over its CPU there


def crossovers() -> list[Crossover]:
    """One per accelerator shown: this build's, and each archived one against its own record's CPU."""
    copies = {s.origin: s for s in with_copy_sources()}
    out = []
    for p in pairs(matmul_sweep):
        copy = copies.get(p.gpu.origin)
        cpu, gpu = _points(p.cpu), _points(p.gpu)
        on_gpu = overtake(cpu, gpu)
        at_cpu = {m.shape[0]: m for m in cpu}
        common = [m for m in gpu if m.shape[0] in at_cpu]
        smallest = gpu[0] if gpu else None
        slower = smallest is not None and smallest.shape[0] in at_cpu \
            and judge(at_cpu[smallest.shape[0]], smallest) == "cpu"
        out.append(Crossover(
            p, on_gpu, overtake(cpu, _points(copy)) if copy else None, tie(cpu, gpu, on_gpu.equal),
            smallest.shape[0] if slower else None, smallest.median if slower else None,
            common[-1].shape[0] if common else None,
            at_cpu[common[-1].shape[0]].median / common[-1].median if common else None))
        note([p.gpu, p.cpu, *([copy] if copy else [])])
    return out


@dataclass(frozen=True)
class CpuEnds:
    """This build's CPU at the smallest and the largest size of its fp32 sweep."""

    source: Source
    small_n: int
    small_s: float
    small_gflops: float
    big_n: int
    big_gflops: float
    big_pct_peak: float | None


def cpu_ends() -> CpuEnds | None:
    src = next((s for s in sweep_sources() if s.is_cpu and not s.archived), None)
    pts = _points(src) if src else ()
    if not pts:
        return None
    note(src)
    small, big = pts[0], pts[-1]
    return CpuEnds(src, small.shape[0], small.median, small.gflops, big.shape[0], big.gflops, big.pct_peak_flops)


@dataclass(frozen=True)
class CpuPeakBasis:
    """How one CPU's FP32 peak is estimated: cores x clock x FLOP per cycle, the same basis for every CPU.

    The clock is the highest the OS reports (``hardware.detect_cpu``); ``core_word`` is ``vCPU`` where the
    cores are a virtual machine's.
    """

    source: Source
    cores: int
    core_word: str
    clock_ghz: float
    flop_per_cycle: float
    peak_gflops: float


def cpu_peak_bases() -> list[CpuPeakBasis]:
    """This build's CPU and each archived host CPU whose record has an FP32 peak."""
    out = []
    for s in sweep_sources(hosts=True):
        cpu = s.hardware.cpu
        if not s.is_cpu or not cpu.peak_fp32 or not cpu.usable_cores or not cpu.max_clock_ghz:
            continue
        per_cycle = cpu.peak_fp32.value / cpu.usable_cores / (cpu.max_clock_ghz * 1e9)
        out.append(CpuPeakBasis(s, cpu.usable_cores, cpu.core_word, cpu.max_clock_ghz, per_cycle,
                                cpu.peak_fp32.value / 1e9))
        note(s)
    return out


def _panel(title: str, members: Sequence[tuple[Source, str, str]]) -> Panel:
    """(source, legend label, marker) per series: squares CPUs, circles GPUs, triangles a GPU with the copy."""
    return Panel(title, tuple(
        Series(**{**sweep_series(label, _points(src), source=src.origin).__dict__, "style": {"marker": marker}})
        for src, label, marker in members if _points(src)))


def throughput_panels() -> list[Panel]:
    """One panel per source: this build's CPU (and GPU), and each archived GPU with its own host CPU."""
    found = sweep_sources(hosts=True)
    copies = {s.origin: s for s in with_copy_sources()}
    origins = list(dict.fromkeys(s.origin for s in found))
    panels = []
    for origin in origins:
        group = [s for s in found if s.origin == origin]
        gpu = next((s for s in group if not s.is_cpu), None)
        members = [(s, s.label, "s" if s.is_cpu else "o") for s in group]
        if gpu is not None and origin in copies:
            members.append((copies[origin], f"{gpu.label}, inputs copied each call", "^"))
        title = "This build" if origin == "live" else (gpu.label if gpu else group[0].label)
        panels.append(_panel(title, members))
    return panels


def gflops_chart() -> str:
    """GFLOP/s against n, small multiples by source: a GPU is drawn only beside the CPU of its own machine."""
    note(sweep_sources(hosts=True) + with_copy_sources())
    panels = throughput_panels()
    chart = small_multiples(panels, title="Matmul throughput against size", xlabel="n (matrix size, n x n)",
                            ylabel="GFLOP/s", columns=1 if len(panels) == 1 else 2)
    shown = [s for p in panels for s in p.series]
    return chart + figures_table(chart, series_table(shown, x="n", y="GFLOP/s"))


@dataclass(frozen=True)
class ThreadRow:
    threads: int
    median_s: float
    gflops: float
    gflops_low: float  # at the 75th-percentile time
    gflops_high: float  # at the 25th-percentile time
    speedup: float  # over the first row
    efficiency: float  # speed-up / (threads / first row's threads)
    runs: int


# A step that adds threads and gains less than this share of the ideal speed-up is named.
WEAK_STEP = 0.75


@dataclass(frozen=True)
class Threads:
    """This build's CPU matmul from 1 thread to all, and the step where adding threads gained least."""

    n: int
    rows: tuple[ThreadRow, ...]
    weak_from: int | None = None  # threads before the weakest step, where it gained < WEAK_STEP of the ideal
    weak_to: int | None = None
    weak_gain: float | None = None  # the speed-up of that step
    weak_more: float | None = None  # the threads' ratio of that step

    @property
    def last(self) -> ThreadRow:
        return self.rows[-1]


def threads() -> Threads | None:
    r = run(matmul_threads)
    pts = r.typed.points
    if not pts:
        return None
    note(r)
    base = pts[0]
    rows = tuple(ThreadRow(m.threads, m.median, m.gflops, m.flops / m.p75 / 1e9, m.flops / m.p25 / 1e9,
                           base.median / m.median, base.median / m.median / (m.threads / base.threads), m.runs)
                 for m in pts)
    if len(pts) < 2:
        return Threads(base.shape[0], rows)
    steps = [(p, q, (p.median / q.median) / (q.threads / p.threads)) for p, q in itertools.pairwise(pts)]
    p, q, share = min(steps, key=lambda step: step[2])
    if share >= WEAK_STEP:
        return Threads(base.shape[0], rows)
    return Threads(base.shape[0], rows, p.threads, q.threads, p.median / q.median, q.threads / p.threads)


@dataclass(frozen=True)
class LittleExample:
    """Little's law applied to a GPU's memory system, from datasheet figures."""

    name: str
    bandwidth: float  # bytes/s, datasheet
    sms: int
    warps_per_sm: int
    latency_s: float  # an assumed round figure, labelled as such

    @property
    def bytes_in_flight(self) -> float:
        return self.bandwidth * self.latency_s

    @property
    def resident_warps(self) -> int:
        return self.sms * self.warps_per_sm

    def loads_per_warp(self, bytes_per_load: int) -> float:
        """Independent loads each resident warp must have outstanding to keep memory busy."""
        return self.bytes_in_flight / self.resident_warps / bytes_per_load


# H100 SXM: 132 SMs (NVIDIA H100 Tensor Core GPU Architecture whitepaper); 64 resident warps
# per SM for compute capability 9.0 (CUDA C++ Programming Guide, "Technical Specifications
# per Compute Capability"); 3.35 TB/s HBM3 (datasheet, as in gpucnn.hardware).
ASSUMED_LATENCY_S = 500e-9
# Maximum resident warps per SM by CUDA compute capability (CUDA C++ Programming Guide).
WARPS_PER_SM = {"7.0": 64, "7.5": 32, "8.0": 64, "8.6": 48, "8.7": 48, "8.9": 48, "9.0": 64}
H100_SXM_NAME = "NVIDIA H100 80GB HBM3"
H100_SXM = LittleExample("H100 SXM (datasheet)", gpu_peaks(H100_SXM_NAME).bandwidth, gpu_model(H100_SXM_NAME).units,
                         WARPS_PER_SM["9.0"], ASSUMED_LATENCY_S)


@dataclass(frozen=True)
class LittlesLaw:
    """The examples, in order; ``h100_example``: the H100 SXM datasheet row was added (no H100 SXM shown)."""

    examples: tuple[LittleExample, ...]
    h100_example: bool
    from_reports: bool  # some rows take their SM count from a GPU's hardware report


def littles_law() -> LittlesLaw:
    """Bytes in flight and loads per warp: one row per GPU model shown, and the H100 SXM example unless an
    H100 SXM is among them."""
    examples = []
    used = []  # the hardware reports used (this build's, archived ones), for the section's sources line
    # This build's GPU and each archived one (one per model): their SM counts come from the hardware report.
    for src in accelerators(matmul_sweep):
        acc = src.hardware.accelerator
        warps = WARPS_PER_SM.get(acc.capability or "") if acc and acc.backend == "CUDA" else None
        if acc and acc.peaks and acc.multiprocessors and warps:
            # A short label: the section's sources line names the full hardware.
            examples.append(LittleExample(src.label, acc.peaks.bandwidth, acc.multiprocessors, warps,
                                          ASSUMED_LATENCY_S))
            used.append(src)
    if all(src.model != short_model(H100_SXM_NAME) for src in used):
        examples.insert(0, H100_SXM)
    note(used)
    return LittlesLaw(tuple(examples), H100_SXM in examples, bool(used))
