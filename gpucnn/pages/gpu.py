"""Page "What is a GPU": the build machine's CPU and accelerator side by side, and datasheet figures.

Nothing here is timed: the figures are the hardware report's (detected, or
estimated and labelled so) and vendors' datasheets (with their sources).
"""

from __future__ import annotations

from gpucnn.hardware import GPU_DATASHEET, HardwareReport, detect, format_bytes
from gpucnn.render import COLORS, caption, describe_hardware, figure_html, fmt, new_figure, table

_NONE = "no accelerator in this build"


def side_by_side(hw: HardwareReport | None = None) -> str:
    """The build machine's CPU and accelerator in two columns."""
    hw = hw or detect()
    cpu, acc = hw.cpu, hw.accelerator
    if cpu.peak_fp32:
        cpu_peak = f"{fmt(cpu.peak_fp32.value / 1e9)} GFLOP/s ({cpu.peak_fp32.source})"
    else:
        cpu_peak = cpu.peak_note

    def gpu(value: str) -> str:
        return value if acc else "–"

    if acc and acc.peaks:
        p = acc.peaks
        gpu_peak = f"{fmt(p.fp32 / 1e12)} TFLOP/s FP32 (datasheet: {p.source})"
        gpu_bw = f"{fmt(p.bandwidth / 1e12)} TB/s (datasheet: {p.source})"
    else:
        gpu_peak = gpu_bw = "not in gpucnn's datasheet table: no peak shown"
    rows = [
        ("Device", cpu.model + (f" ({cpu.family})" if cpu.family else ""),
         f"{acc.backend}: {acc.name}" + (f" x {acc.count}" if acc.count > 1 else "") if acc else _NONE),
        ("Cores / streaming multiprocessors", f"{cpu.logical_cores} logical cores",
         gpu(f"{acc.multiprocessors} SMs / compute units" if acc and acc.multiprocessors else "not reported")),
        ("Clock", f"{fmt(cpu.reported_clock_ghz)} GHz reported, {fmt(cpu.max_clock_ghz)} GHz highest known",
         gpu("not reported by torch")),
        ("Memory", f"{format_bytes(cpu.ram_bytes)} RAM", gpu(format_bytes(acc.memory_bytes) if acc else "")),
        ("Last-level cache", format_bytes(cpu.llc_bytes), gpu(f"L2 {format_bytes(acc.l2_bytes)}" if acc else "")),
        ("Peak FP32", cpu_peak, gpu(gpu_peak)),
        ("Peak memory bandwidth", "not known to gpucnn: measured on [Advantage 1](bandwidth.md)", gpu(gpu_bw)),
    ]
    out = table(["", "CPU", "Accelerator (GPU)"], rows, align="lll")
    out += caption(
        f"Detected when this page was built, on {describe_hardware(hw)}. Peaks are not measurements: the CPU "
        "peak is an estimate (cores x clock x FLOP per cycle), the GPU peaks are datasheet figures.")
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
        names.append(f"this build's CPU ({hw.cpu.logical_cores} cores)")
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
    return figure_html(
        fig, title="FP32 peak throughput, datasheet GPUs and this build's CPU", desc=desc,
        caption_text="Peaks, not measurements, so there is no spread to show. GPU bars: datasheet figures "
                     "(sources in the table above)." + cpu_note + f" Build machine: {describe_hardware(hw)}.")


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
