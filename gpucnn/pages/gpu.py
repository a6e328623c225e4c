"""Page "What is a GPU": the build machine's CPU and accelerator side by side, and datasheet figures.

Nothing here is timed: the figures are the hardware report's (detected, or
estimated and labelled so) and vendors' datasheets (with their sources).
"""

from __future__ import annotations

import html

from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.hardware import GPU_DATASHEET, AcceleratorInfo, HardwareReport, detect, format_bytes
from gpucnn.render import (
    COLORS,
    caption,
    describe_hardware,
    figure_html,
    figures_table,
    fmt,
    html_table,
    new_figure,
    table,
)
from gpucnn.results import Result
from gpucnn.sources import Source, archived_accelerators, one_line, pairs, short_model

_NONE = "no accelerator in this build"


def _accelerator_column(acc: AcceleratorInfo | None) -> list[str]:
    """One accelerator's cells for the side-by-side table (strings from a record are escaped)."""
    if acc is None:
        return [_NONE] + ["–"] * 6
    if acc.peaks:
        p = acc.peaks
        peak, bw = f"{fmt(p.fp32 / 1e12)} TFLOP/s FP32 (datasheet)", f"{fmt(p.bandwidth / 1e12)} TB/s (datasheet)"
    else:
        peak = bw = "not in gpucnn's datasheet table: no peak shown"
    return [
        one_line(f"{acc.backend}: {acc.name}" + (f" x {acc.count}" if acc.count > 1 else "")),
        f"{acc.multiprocessors} SMs / compute units" if acc.multiprocessors else "not reported",
        "not reported by torch",
        format_bytes(acc.memory_bytes),
        f"L2 {format_bytes(acc.l2_bytes)}",
        peak,
        bw,
    ]


def side_by_side(hw: HardwareReport | None = None) -> str:
    """This build's CPU and accelerator, then each archived accelerator, in columns."""
    hw = hw or detect()
    cpu = hw.cpu
    cpu_peak = (f"{fmt(cpu.peak_fp32.value / 1e9)} GFLOP/s ({cpu.peak_fp32.source})" if cpu.peak_fp32
                else cpu.peak_note)
    cpu_col = [
        cpu.model + (f" ({cpu.family})" if cpu.family else ""),
        f"{cpu.logical_cores} logical cores",
        f"{fmt(cpu.reported_clock_ghz)} GHz reported, {fmt(cpu.max_clock_ghz)} GHz highest known",
        f"{format_bytes(cpu.ram_bytes)} RAM",
        format_bytes(cpu.llc_bytes),
        cpu_peak,
        "not known to gpucnn: measured on [Advantage 1](bandwidth.md)",
    ]
    archived = archived_accelerators(matmul_sweep)
    columns = [("CPU (this build)", "live", cpu_col)]
    if hw.accelerator or not archived:
        label = f"{short_model(hw.accelerator.name)} (this build)" if hw.accelerator else "GPU"
        columns.append((label, "live", _accelerator_column(hw.accelerator)))
    shown = []
    for record, result, flags in archived:
        src = Source(result.params["device"], result, record, flags)
        shown.append(src)
        columns.append((src.label, src.origin, _accelerator_column(src.hardware.accelerator)))
    names = ["Device", "Cores / streaming multiprocessors", "Clock", "Memory", "Last-level cache",
             "Peak FP32", "Peak memory bandwidth"]
    headers = ["", *[f'<span data-source="{one_line(origin)}">{one_line(label)}</span>'
                     for label, origin, _ in columns]]
    rows = [(name, *[col[i] for _, _, col in columns]) for i, name in enumerate(names)]
    out = table(headers, rows, align="l" * len(headers))
    sheets = sorted({a.peaks.source for a in [hw.accelerator] + [r.hardware.accelerator for r, _, _ in archived]
                     if a and a.peaks})
    out += caption(
        f"Detected when this page was built, on {describe_hardware(hw)}. Peaks are not measurements: the CPU "
        "peak is an estimated upper bound (cores x clock x FLOP per cycle), the GPU peaks are datasheet figures"
        + (f" ({'; '.join(sheets)})" if sheets else "") + ". "
        + ("Archived columns: the hardware report of a record in results/, not this build's machine."
           if archived else ""), shown)
    return out


def datasheet_table() -> str:
    """Common GPUs' datasheet peaks, and the FLOP per byte they need to stay busy."""
    sources: list[str] = []
    rows = []
    for _needles, label, p in GPU_DATASHEET:
        if p.source not in sources:
            sources.append(p.source)
        rows.append((
            label, fmt(p.fp32 / 1e12, 4), fmt(p.tf32 / 1e12, 4) if p.tf32 else "none",
            fmt(p.bf16 / 1e12, 4) if p.bf16 else "none", fmt(p.bandwidth / 1e12, 4),
            fmt(p.fp32 / p.bandwidth), f"[{sources.index(p.source) + 1}]",
        ))
    out = table(
        ["GPU", "FP32 TFLOP/s", "TF32 TFLOP/s", "BF16 TFLOP/s", "Memory TB/s", "FP32 FLOP per byte", "Source"],
        rows, align="lrrrrrr",
    )
    out += caption(
        "Datasheet figures, not measured in this build: dense peaks (no sparsity) at boost clock; TB/s means "
        "10^12 bytes per second. 'FP32 FLOP per byte' is the FP32 peak divided by the memory bandwidth: the work "
        "a kernel must do per byte it loads to keep the FP32 units busy. Sources: "
        + "; ".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) + ".")
    return out


def peaks_chart(hw: HardwareReport | None = None) -> str:
    """Horizontal log-scale bars: datasheet FP32 peaks beside this build's CPU estimate."""
    hw = hw or detect()
    names, values, kinds = [], [], []
    for _needles, label, p in GPU_DATASHEET:
        names.append(label)
        values.append(p.fp32 / 1e12)
        kinds.append("datasheet")
    if hw.cpu.peak_fp32:
        names.append(f"this build's CPU ({hw.cpu.usable_cores or hw.cpu.logical_cores} cores)")
        values.append(hw.cpu.peak_fp32.value / 1e12)
        kinds.append("estimate")
    fig, ax = new_figure(7.0, 0.42 * len(names) + 1.2)
    styles = {"datasheet": (COLORS[0], ""), "estimate": (COLORS[1], "//")}
    for i, (value, kind) in enumerate(zip(values, kinds, strict=True)):
        color, hatch = styles[kind]
        ax.barh(i, value, color=color, hatch=hatch, edgecolor="#010203", linewidth=0.5,
                label=f"{kind} FP32 peak" if kind not in kinds[:i] else None)
        ax.annotate(fmt(value), (value, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 4)
    ax.set_xlabel("peak FP32 throughput (TFLOP/s, log scale)")
    ax.set_title("FP32 peaks: datasheet GPUs against this build's CPU")
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    ax.grid(True, axis="x")
    desc = "Horizontal bars of FP32 peak TFLOP/s: " + "; ".join(
        f"{n}: {fmt(v)} ({k})" for n, v, k in zip(names, values, kinds, strict=True))
    cpu_note = (f" The CPU bar is an estimate: {hw.cpu.peak_fp32.source}." if hw.cpu.peak_fp32 else "")
    chart = figure_html(
        fig, title="FP32 peak throughput, datasheet GPUs and this build's CPU", desc=desc,
        caption_text="Peaks, not measurements, so there is no spread to show. GPU bars: datasheet figures "
                     "(sources in the table above)." + cpu_note + f" Build machine: {describe_hardware(hw)}.")
    rows = [(html.escape(n), fmt(v), k) for n, v, k in zip(names, values, kinds, strict=True)]
    return chart + figures_table(chart, html_table(["Device", "FP32 peak (TFLOP/s)", "Kind"], rows, align="lrl"))


def cpu_gpu_ratio(hw: HardwareReport | None = None) -> str:
    """One sentence comparing this CPU's estimated peak with the datasheet GPUs."""
    hw = hw or detect()
    if not hw.cpu.peak_fp32:
        return "This build's CPU is not in gpucnn's FLOP-per-cycle table, so it has no peak to compare.\n"
    cpu = hw.cpu.peak_fp32.value
    lo = min(p.fp32 for _n, _l, p in GPU_DATASHEET)
    hi = max(p.fp32 for _n, _l, p in GPU_DATASHEET)
    return (
        f"This build's CPU has an estimated FP32 peak of **{fmt(cpu / 1e9)} GFLOP/s**. The GPUs in the table "
        f"have datasheet FP32 peaks from {fmt(lo / 1e12)} to {fmt(hi / 1e12)} TFLOP/s: "
        f"**{fmt(lo / cpu)}x to {fmt(hi / cpu)}x** this CPU, before their tensor cores (TF32, BF16) are counted. "
        f"A server CPU with many more cores narrows the gap, but does not close it.\n"
    )


# --- FP32 lanes: the prediction a lane count makes, against measured matmuls ---

# 32-bit FMA results per clock per SM, by compute capability (CUDA C++ Programming Guide,
# "Arithmetic Instructions" throughput table): the FP32 lanes of one SM.
FP32_LANES_PER_SM = {"7.0": 64, "7.5": 64, "8.0": 64, "8.6": 128, "8.7": 128, "8.9": 128, "9.0": 128}
# H100 SXM: 132 SMs of compute capability 9.0 (NVIDIA H100 architecture whitepaper).
H100_SXM_SMS = 132


def cpu_lanes(hw: HardwareReport) -> tuple[int, int] | None:
    """(physical cores, FP32 FMA lanes per core) behind the CPU's peak, or None when they are not known.

    Physical cores, not threads: two SMT threads share one core's FMA units.
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


def _best_gflops(result: Result) -> float | None:
    pts = [m.gflops for m in result.data["sweep"].points if m.gflops]
    return max(pts) if pts else None


def lanes_findings(hw: HardwareReport | None = None) -> str:
    """FP32 lanes of an H100 against this CPU's, the peak ratio they predict, and measured ratios within one machine."""
    hw = hw or detect()
    mine = cpu_lanes(hw)
    h100 = next(p for _k, label, p in GPU_DATASHEET if label == "H100 SXM 80GB")
    h100_lanes = H100_SXM_SMS * FP32_LANES_PER_SM["9.0"]
    text = ""
    if mine and hw.cpu.peak_fp32:
        cores, per_core = mine
        lanes = cores * per_core
        text += (f"Count FP32 lanes. An H100 SXM has {H100_SXM_SMS} SMs x {FP32_LANES_PER_SM['9.0']} = "
                 f"**{h100_lanes:,}**. This build's CPU has {cores} physical core{'s' if cores > 1 else ''} x "
                 f"{per_core} FMA lanes = **{lanes:,}** (threads do not count: two hyper-threads share one core's "
                 f"FMA units). The H100 has {fmt(h100_lanes / lanes)}x as many. With the clocks, the peaks predict "
                 f"**{fmt(h100.fp32 / hw.cpu.peak_fp32.value)}x** (datasheet {fmt(h100.fp32 / 1e12)} TFLOP/s "
                 f"against the CPU's estimated {fmt(hw.cpu.peak_fp32.value / 1e9)} GFLOP/s).")
    for pair in pairs(matmul_sweep):
        g, c = _best_gflops(pair.gpu.result), _best_gflops(pair.cpu.result)
        if not g or not c:
            continue
        acc = pair.gpu.hardware.accelerator
        host = pair.cpu.hardware
        predicted = (acc.peaks.fp32 / host.cpu.peak_fp32.value
                     if acc and acc.peaks and host.cpu.peak_fp32 else None)
        text += (f" Measured on {one_line(pair.where())} machine, the best fp32 matmul of the "
                 f"{one_line(pair.gpu.model)} ran **{fmt(g / c)}x** as fast as the best on its own host CPU "
                 f"({one_line(host.cpu.model)}, {host.cpu.torch_threads} threads)"
                 + (f", against the {fmt(predicted)}x its peaks predict." if predicted else
                    "; that record has no CPU peak to predict it from."))
    return text + "\n" if text else ""
