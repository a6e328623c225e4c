"""Page "What is a GPU": facts about the machines the site shows and the datasheet GPUs, and their tables and chart.

Nothing here is timed by this page: the figures are the hardware reports (this build's, detected; an archived
record's, as recorded), vendors' datasheets (with their sources), and measurements the other pages make (the
CPU's memory copy from Advantage 1, the fp32 matmul sweeps from Advantage 2), reused. The words about them are
in ``docs/gpu.md``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import Enum

from gpucnn.datasheets import FP32_LANES_PER_SM, GPU_MODELS, gpu_model, vector_fp32
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.figures import dram_point
from gpucnn.hardware import AcceleratorInfo, CpuInfo, HardwareReport, detect, format_bytes
from gpucnn.measurement import Measurement
from gpucnn.render import (
    archived_style,
    chart_text,
    describe_hardware,
    figure_html,
    figures_table,
    fmt,
    html_table,
    new_figure,
    outside_legend,
    short_bytes,
    source_colour,
    table,
)
from gpucnn.results import run
from gpucnn.sources import Pair, Source, note, one_line, pairs, sibling, sources

DASH = "–"  # the site's mark for a value that is not known


def build_machine() -> str:
    """This build's machine in a few words: ``CPU: AMD EPYC (2 threads); no accelerator``."""
    return describe_hardware(detect())


# --- FP32 lanes ---------------------------------------------------------------------------------------------

# H100 SXM: 132 SMs of compute capability 9.0 (NVIDIA H100 architecture whitepaper; gpucnn's datasheet row).
H100_SXM_SMS = gpu_model("H100 SXM").units


def cpu_lanes(hw: HardwareReport) -> tuple[int, int] | None:
    """(cores, FP32 FMA lanes per core) behind the CPU's peak estimate, or None when they are not known.

    Cores, not threads: two SMT threads share one core's FMA units. The lanes per core follow from the
    estimate: peak / cores / clock / 2 FLOP per FMA.
    """
    cpu = hw.cpu
    if not cpu.peak_fp32 or not cpu.max_clock_ghz or not cpu.usable_cores:
        return None
    per_core = cpu.peak_fp32.value / cpu.usable_cores / (cpu.max_clock_ghz * 1e9) / 2
    return cpu.usable_cores, round(per_core)


def gpu_lanes(acc: AcceleratorInfo | None) -> int | None:
    """FP32 lanes of a CUDA GPU: SMs x lanes per SM for its compute capability, or None."""
    if acc is None or acc.backend != "CUDA" or not acc.multiprocessors:
        return None
    per_sm = FP32_LANES_PER_SM.get(acc.capability or "")
    return acc.multiprocessors * per_sm if per_sm else None


def boost_clock_ghz(acc: AcceleratorInfo | None) -> float | None:
    """The boost clock a datasheet FP32 peak implies: peak / (2 FLOP per FMA x FP32 lanes), or None.

    torch does not report a GPU's clock; the datasheet peak is lanes x 2 x boost clock, so the clock follows.
    """
    lanes = gpu_lanes(acc)
    return acc.peaks.fp32 / (2 * lanes) / 1e9 if acc and acc.peaks and lanes else None


class Agreement(Enum):
    """How a machine's measured GPU / host-CPU matmul ratio stands against the ratio its peaks predict."""

    CLOSE = "close"  # within CLOSE of the prediction
    MORE = "more"  # the GPU reached a larger share of its peak than the CPU of its own
    LESS = "less"


# A measured ratio within this factor of the peaks' prediction is "close to" it.
CLOSE = 1.1


@dataclass(frozen=True)
class MachineLanes:
    """One machine's GPU against its own host CPU: FP32 lanes, the peak ratio, and the best fp32 matmuls."""

    gpu: Source
    host: Source
    sms: int | None
    lanes_per_sm: int | None
    gpu_lanes: int | None
    cpu_cores: int | None
    cpu_lanes_per_core: int | None
    cpu_lanes: int | None
    lane_ratio: float | None
    gpu_peak_tflops: float | None  # datasheet
    cpu_peak_gflops: float | None  # the host CPU's estimate
    peak_ratio: float | None
    best_gpu_gflops: float | None  # best point of each side's fp32 matmul sweep
    best_cpu_gflops: float | None
    measured_ratio: float | None
    gpu_pct_peak: float | None  # the best point as a share of its own peak
    cpu_pct_peak: float | None
    agreement: Agreement | None  # None: a peak or a measurement is missing


def _best(points: tuple[Measurement, ...]) -> float | None:
    rates = [m.gflops for m in points if m.gflops]
    return max(rates) if rates else None


def machine_lanes(pair: Pair) -> MachineLanes:
    """The lane and matmul facts of one machine (this build's, or an archived record's)."""
    acc, host = pair.gpu.hardware.accelerator, pair.cpu.hardware
    g_lanes, mine = gpu_lanes(acc), cpu_lanes(host)
    cores, per_core = mine if mine else (None, None)
    c_lanes = cores * per_core if mine else None
    g_peak = acc.peaks.fp32 if acc and acc.peaks else None
    c_peak = host.cpu.peak_fp32.value if host.cpu.peak_fp32 else None
    g_best, c_best = _best(pair.gpu.result.typed.sweep.points), _best(pair.cpu.result.typed.sweep.points)
    measured = g_best / c_best if g_best and c_best else None
    predicted = g_peak / c_peak if g_peak and c_peak else None
    g_pct = g_best * 1e9 / g_peak * 100 if g_best and g_peak else None
    c_pct = c_best * 1e9 / c_peak * 100 if c_best and c_peak else None
    agreement = None
    if measured and predicted:
        agreement = (Agreement.CLOSE if max(measured, predicted) / min(measured, predicted) <= CLOSE
                     else Agreement.MORE if measured > predicted else Agreement.LESS)
    return MachineLanes(
        gpu=pair.gpu, host=pair.cpu, sms=acc.multiprocessors if acc else None,
        lanes_per_sm=g_lanes // acc.multiprocessors if g_lanes and acc else None, gpu_lanes=g_lanes,
        cpu_cores=cores, cpu_lanes_per_core=per_core, cpu_lanes=c_lanes,
        lane_ratio=g_lanes / c_lanes if g_lanes and c_lanes else None,
        gpu_peak_tflops=g_peak / 1e12 if g_peak else None, cpu_peak_gflops=c_peak / 1e9 if c_peak else None,
        peak_ratio=predicted, best_gpu_gflops=g_best, best_cpu_gflops=c_best, measured_ratio=measured,
        gpu_pct_peak=g_pct, cpu_pct_peak=c_pct, agreement=agreement)


@dataclass(frozen=True)
class LanesFindings:
    """Every machine with a GPU and its host CPU, and what they share."""

    machines: tuple[MachineLanes, ...]
    agreement: Agreement | None  # the one every measured machine shows; None when none, or when they differ
    measured_lo: float | None
    measured_hi: float | None
    this_cpu: tuple[int, int] | None  # (cores, lanes per core) of this build's CPU
    h100_sms: int
    h100_lanes_per_sm: int


def lanes_findings(hw: HardwareReport | None = None) -> LanesFindings:
    """The lane facts of every machine the site shows (cited in the section's sources line)."""
    hw = hw or detect()
    machines = tuple(machine_lanes(p) for p in pairs(matmul_sweep))
    for m in machines:
        note([m.gpu, m.host])
    measured = [m.measured_ratio for m in machines if m.measured_ratio]
    verdicts = {m.agreement for m in machines if m.agreement}
    return LanesFindings(
        machines=machines, agreement=verdicts.pop() if len(verdicts) == 1 else None,
        measured_lo=min(measured) if measured else None, measured_hi=max(measured) if measured else None,
        this_cpu=cpu_lanes(hw), h100_sms=H100_SXM_SMS, h100_lanes_per_sm=FP32_LANES_PER_SM["9.0"])


def _n(value: float | None, digits: int = 3) -> str:
    return fmt(value, digits) if value else DASH


def lanes_table(hw: HardwareReport | None = None) -> str:
    """One row per machine: lanes, the peak ratio they predict, and the measured matmul ratio."""
    found = lanes_findings(hw)
    rows = [(m.gpu.cell(), f"{m.sms} x {m.lanes_per_sm} = {m.gpu_lanes:,}" if m.gpu_lanes else DASH,
             f"{m.cpu_cores} x {m.cpu_lanes_per_core} = {m.cpu_lanes:,}" if m.cpu_lanes else DASH,
             f"{_n(m.lane_ratio, 2)}x", f"{_n(m.peak_ratio)}x", f"{_n(m.measured_ratio)}x",
             f"{_n(m.gpu_pct_peak, 2)} / {_n(m.cpu_pct_peak, 2)} %")
            for m in found.machines]
    if not rows:
        return ""
    return table(["GPU", "GPU lanes", "Host CPU lanes", "Lane ratio", "Peak ratio", "Measured ratio",
                  "% of peak, GPU / CPU"], rows, align="lrrrrrr")


# --- the machines, side by side -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One device of one machine in the side-by-side table."""

    source: Source | None  # None: this build's missing GPU
    label: str
    cells: tuple[str, ...]


def _cpu_cells(cpu: CpuInfo, ram: int | None, copy: Measurement | None) -> tuple[str, ...]:
    clock = f"{fmt(cpu.reported_clock_ghz)} GHz reported" if cpu.reported_clock_ghz else DASH
    if cpu.max_clock_ghz and cpu.max_clock_ghz != cpu.reported_clock_ghz:
        clock += f", {fmt(cpu.max_clock_ghz)} GHz peak basis"
    return (
        one_line(cpu.model + (f" ({cpu.family})" if cpu.family else "")),
        f"{cpu.logical_cores} logical cores",
        clock,
        f"{format_bytes(ram)} RAM",
        format_bytes(cpu.llc_bytes),
        f"{fmt(cpu.peak_fp32.value / 1e9)} GFLOP/s (estimate)" if cpu.peak_fp32 else DASH,
        f"{fmt(copy.gbps)} GB/s copy, {short_bytes(copy.shape[0])} (measured)" if copy and copy.gbps else DASH,
    )


def _gpu_cells(acc: AcceleratorInfo | None) -> tuple[str, ...]:
    if acc is None:
        return ("none in this build", *[DASH] * 6)
    clock = boost_clock_ghz(acc)
    return (
        one_line(f"{acc.backend}: {acc.name}" + (f" x {acc.count}" if acc.count > 1 else "")),
        f"{acc.multiprocessors} SMs" if acc.multiprocessors else DASH,
        f"{clock:.2f} GHz boost (implied)" if clock else DASH,
        format_bytes(acc.memory_bytes),
        f"L2 {format_bytes(acc.l2_bytes)}",
        f"{fmt(acc.peaks.fp32 / 1e12)} TFLOP/s (datasheet)" if acc.peaks else DASH,
        f"{fmt(acc.peaks.bandwidth / 1e12)} TB/s (datasheet)" if acc.peaks else DASH,
    )


def machine_columns(hw: HardwareReport | None = None) -> list[Column]:
    """This build's CPU (and GPU), then each archived GPU followed by its own host CPU."""
    hw = hw or detect()
    found = sources(matmul_sweep, hosts=True)
    columns = []
    for src in found:
        if src.is_cpu:
            copy = sibling(src, copy_bandwidth) if src.archived else Source("cpu", run(copy_bandwidth, device="cpu"))
            point = dram_point(copy.result) if copy else None
            note([src, copy] if point else src)
            ram = src.hardware.cpu.ram_bytes if src.archived else hw.cpu.ram_bytes
            columns.append(Column(src, src.label, _cpu_cells(src.hardware.cpu, ram, point)))
        else:
            note(src)
            columns.append(Column(src, src.label, _gpu_cells(src.hardware.accelerator)))
    if not any(c.source and not c.source.is_cpu for c in columns):
        columns.insert(1, Column(None, "GPU", _gpu_cells(None)))
    return columns


ROWS = ("Device", "Cores / SMs", "Clock", "Memory", "Last-level cache", "Peak FP32", "Memory bandwidth")


def machines_table(hw: HardwareReport | None = None) -> str:
    """The side-by-side table: one column per device (strings from a record are escaped)."""
    columns = machine_columns(hw)
    headers = ["", *[c.source.cell() if c.source else c.label for c in columns]]
    rows = [(name, *[c.cells[i] for c in columns]) for i, name in enumerate(ROWS)]
    return table(headers, rows, align="l" * len(headers))


@dataclass(frozen=True)
class CpuPeakBasis:
    """How one CPU's peak estimate was made, for the page's method note."""

    label: str
    basis: str  # the hardware report's own account (record text: the template escapes it)


def cpu_peak_bases() -> list[CpuPeakBasis]:
    """Each CPU column's peak basis, as its hardware report states it."""
    return [CpuPeakBasis(c.label, c.source.hardware.cpu.peak_fp32.source) for c in machine_columns()
            if c.source and c.source.is_cpu and c.source.hardware.cpu.peak_fp32]


# --- datasheets ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixFp32:
    label: str
    tflops: float

    @property
    def text(self) -> str:
        return f"{self.label} {fmt(self.tflops, 4)}"


@dataclass(frozen=True)
class Sheet:
    """The datasheet table's facts."""

    sources: tuple[str, ...]  # numbered from 1 in the table's Source column
    matrix_fp32: tuple[MatrixFp32, ...]  # rows whose datasheet FP32 is a matrix-core figure
    fp32_lo_tflops: float  # vector FP32, over every row
    fp32_hi_tflops: float
    hbm_families: tuple[str, ...]  # NVIDIA parts with HBM: A100, H100, ...
    hbm_flop_per_byte_lo: float
    hbm_flop_per_byte_hi: float
    gddr_flop_per_byte_hi: float


def _family(label: str) -> str:
    return label.split()[0]


def datasheet() -> Sheet:
    srcs: list[str] = []
    matrix = []
    for row in GPU_MODELS:
        fp32, fp32_source = vector_fp32(row.label, row.peaks)
        for s in (fp32_source, row.peaks.source):
            if s not in srcs:
                srcs.append(s)
        if fp32 != row.peaks.fp32:
            matrix.append(MatrixFp32(row.label, row.peaks.fp32 / 1e12))
    vector = [vector_fp32(r.label, r.peaks)[0] for r in GPU_MODELS]
    nvidia = [r for r in GPU_MODELS if r.peaks.source.startswith("NVIDIA") and r.memory]
    hbm = [r for r in nvidia if r.memory.startswith("HBM")]
    gddr = [r for r in nvidia if r.memory.startswith("GDDR")]
    ratio = [r.peaks.fp32 / r.peaks.bandwidth for r in hbm]
    return Sheet(
        sources=tuple(srcs), matrix_fp32=tuple(matrix),
        fp32_lo_tflops=min(vector) / 1e12, fp32_hi_tflops=max(vector) / 1e12,
        hbm_families=tuple(sorted(dict.fromkeys(_family(r.label) for r in hbm))),
        hbm_flop_per_byte_lo=min(ratio), hbm_flop_per_byte_hi=max(ratio),
        gddr_flop_per_byte_hi=max(r.peaks.fp32 / r.peaks.bandwidth for r in gddr))


def datasheet_table() -> str:
    """Common GPUs' datasheet peaks, and the FP32 FLOP per byte they need to stay busy."""
    srcs = datasheet().sources
    rows = []
    for row in GPU_MODELS:
        p = row.peaks
        fp32, fp32_source = vector_fp32(row.label, p)
        cited = sorted({srcs.index(fp32_source) + 1, srcs.index(p.source) + 1})
        rows.append((row.label, fmt(fp32 / 1e12, 4), fmt(p.tf32 / 1e12, 4) if p.tf32 else "none",
                     fmt(p.bf16 / 1e12, 4) if p.bf16 else "none", fmt(p.bandwidth / 1e12, 4),
                     fmt(fp32 / p.bandwidth), " ".join(f"[{i}]" for i in cited)))
    return table(["GPU", "FP32 TFLOP/s", "TF32 TFLOP/s", "BF16 TFLOP/s", "Memory TB/s", "FP32 FLOP per byte",
                  "Source"], rows, align="lrrrrrr")


@dataclass(frozen=True)
class PaperCpu:
    """This build's CPU's estimated FP32 peak against the datasheet GPUs' vector FP32 peaks."""

    model: str
    peak_gflops: float
    lo_x: float
    hi_x: float


def paper_cpu(hw: HardwareReport | None = None) -> PaperCpu | None:
    """None when this build's CPU has no peak estimate (not in gpucnn's FLOP-per-cycle table)."""
    hw = hw or detect()
    if not hw.cpu.peak_fp32:
        return None
    cpu, sheet = hw.cpu.peak_fp32.value, datasheet()
    return PaperCpu(hw.cpu.model, cpu / 1e9, sheet.fp32_lo_tflops * 1e12 / cpu, sheet.fp32_hi_tflops * 1e12 / cpu)


# --- the peaks chart ----------------------------------------------------------------------------------------

_INK = "#010203"  # the page's text colour: the datasheets' dots


def peaks_chart() -> str:
    """Dots on a log axis: datasheet FP32 peaks of the GPUs, and the estimated peak of each CPU the site shows
    (this build's, and each archived record's own host CPU)."""
    rows: list[tuple[str, float, str]] = [(row.label, vector_fp32(row.label, row.peaks)[0] / 1e12, "datasheet")
                                         for row in GPU_MODELS]
    cpus = [s for s in sources(matmul_sweep, hosts=True) if s.is_cpu and s.hardware.cpu.peak_fp32]
    for s in cpus:
        note(s)
        rows.append((s.label, s.hardware.cpu.peak_fp32.value / 1e12, s.origin))
    rows.sort(key=lambda r: -r[1])
    fig, ax = new_figure(7.0, 0.26 * len(rows) + 1.9)
    groups = list(dict.fromkeys(origin for _, _, origin in rows))
    for k, origin in enumerate(groups):
        ys = [i for i, r in enumerate(rows) if r[2] == origin]
        xs = [rows[i][1] for i in ys]
        if origin == "datasheet":
            style = {"color": _INK, "marker": "D", "label": "GPU, datasheet"}
        else:
            src = next(s for s in cpus if s.origin == origin)
            style = {"color": source_colour(origin), "marker": "s^v<>p"[k % 6], "label": f"{chart_text(src.label)}, estimate"}
            if src.archived:
                style = archived_style(style)
        ax.plot(xs, ys, markersize=7, gid=f"gpucnn-series-{k}", **{**style, "linestyle": "none"})
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(fmt(x), (x, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=10)
    ax.set_yticks(range(len(rows)), [chart_text(r[0]) for r in rows], fontsize=10)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = [r[1] for r in rows]
    ax.set_xlim(min(values) / 2, max(values) * 4)
    ax.set_xlabel("FP32 peak (TFLOP/s, log scale)", fontsize=10)
    ax.tick_params(axis="x", labelsize=10)
    ax.grid(True, axis="x")
    outside_legend(ax, columns=1)
    desc = "Dots of FP32 peak TFLOP/s: " + "; ".join(f"{n}: {fmt(v)}" for n, v, _ in rows)
    chart = figure_html(fig, title="FP32 peaks: datasheet GPUs, and each CPU's estimate", desc=desc,
                        caption_text="", sources=groups)
    body = html_table(["Device", "FP32 peak (TFLOP/s)", "Kind"],
                      [(f'<span data-source="{html.escape(o, quote=True)}">{html.escape(n)}</span>', fmt(v),
                        "datasheet" if o == "datasheet" else "estimate") for n, v, o in rows],
                      align="lrl")
    return chart + figures_table(chart, body)


# --- tensor cores: factors over FP32, and ridge points ------------------------------------------------------

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_ELEMENT_BYTES = {"fp32": 4, "bf16": 2}  # what an elementwise op moves per element (TF32 keeps fp32 storage)


def _tensor_models() -> list:
    """NVIDIA datasheet rows (AMD's matrix FP32 figures differ in kind from a tensor-core factor)."""
    return [m for m in GPU_MODELS if "Instinct" not in m.label]


def _cite(models: list) -> list[str]:
    return list(dict.fromkeys(m.peaks.source for m in models))


@dataclass(frozen=True)
class Extreme:
    value: float
    gpus: tuple[str, ...]  # every GPU at this value, as the page rounds it


def _extremes(values: dict[str, float]) -> tuple[Extreme, Extreme]:
    lo, hi = min(values.values()), max(values.values())
    at = lambda v: tuple(k for k, f in values.items() if fmt(f, 2) == fmt(v, 2))  # noqa: E731
    return Extreme(lo, at(lo)), Extreme(hi, at(hi))


@dataclass(frozen=True)
class TensorFacts:
    """What the datasheet table says about tensor cores and ridge points (datasheet figures, not measured)."""

    bf16_lo: Extreme  # BF16 peak / FP32 peak
    bf16_hi: Extreme
    tf32_lo: Extreme
    tf32_hi: Extreme
    add_fp32_flop_per_byte: float  # c = a + b: one FLOP per three elements moved
    add_bf16_flop_per_byte: float
    fp32_ridge_lo: Extreme  # FLOP per byte
    bf16_ridge_lo: Extreme
    bf16_ridge_hi: Extreme
    bf16_matmul_n: float  # the square bf16 matmul that reaches the highest BF16 ridge, with perfect reuse


def tensor_facts() -> TensorFacts:
    models = _tensor_models()
    factor = {p: {m.label: getattr(m.peaks, p) / m.peaks.fp32 for m in models if getattr(m.peaks, p)}
              for p in ("bf16", "tf32")}
    ridge = {p: {m.label: getattr(m.peaks, p) / m.peaks.bandwidth for m in models if getattr(m.peaks, p)}
             for p in ("fp32", "bf16")}
    bf16_lo, bf16_hi = _extremes(factor["bf16"])
    tf32_lo, tf32_hi = _extremes(factor["tf32"])
    ridge_lo, ridge_hi = _extremes(ridge["bf16"])
    # A square n x n x n matmul moves at least 3 n^2 elements for 2 n^3 FLOP: 2n / (3 e) FLOP per byte, so
    # it passes a ridge r once n > r * 3e / 2.
    return TensorFacts(
        bf16_lo=bf16_lo, bf16_hi=bf16_hi, tf32_lo=tf32_lo, tf32_hi=tf32_hi,
        add_fp32_flop_per_byte=1 / (3 * _ELEMENT_BYTES["fp32"]), add_bf16_flop_per_byte=1 / (3 * _ELEMENT_BYTES["bf16"]),
        fp32_ridge_lo=_extremes(ridge["fp32"])[0], bf16_ridge_lo=ridge_lo, bf16_ridge_hi=ridge_hi,
        bf16_matmul_n=ridge_hi.value * 3 * _ELEMENT_BYTES["bf16"] / 2)


def tensor_sources() -> list[str]:
    """The datasheets the factor and ridge tables cite, numbered from 1."""
    return _cite(_tensor_models())


def factor_table() -> str:
    """Per datasheet GPU: each tensor-core precision's dense peak, and its factor over the FP32 peak."""
    models = _tensor_models()
    cited = _cite(models)
    rows = []
    for m in models:
        p = m.peaks
        cells = [m.label, fmt(p.fp32 / 1e12, 3)]
        for prec in PRECISIONS[1:]:
            v = getattr(p, prec)
            cells.append(f"{fmt(v / 1e12, 4)} ({fmt(v / p.fp32, 2)}x)" if v else "none")
        rows.append([*cells, f"[{cited.index(p.source) + 1}]"])
    return table(["GPU", "FP32 TFLOP/s", "TF32 TFLOP/s (x FP32)", "BF16 TFLOP/s (x FP32)", "FP16 TFLOP/s (x FP32)",
                  "Source"], rows, align="lrrrrr")


def ridge_table() -> str:
    """Ridge points (peak FLOP/s / memory bandwidth) per GPU and precision, from the datasheet table."""
    models = _tensor_models()
    cited = _cite(models)
    rows = [[m.label, fmt(m.peaks.bandwidth / 1e12, 3)]
            + [fmt(v / m.peaks.bandwidth, 3) if (v := getattr(m.peaks, p)) else "none" for p in PRECISIONS]
            + [f"[{cited.index(m.peaks.source) + 1}]"] for m in models]
    return table(["GPU", "Memory TB/s", "FP32 ridge", "TF32 ridge", "BF16 ridge", "FP16 ridge", "Source"], rows,
                 align="lrrrrrr")
