"""Page "What is a GPU": the build machine's CPU and accelerator side by side, and datasheet figures.

Nothing here is timed by this page: the figures are the hardware report's
(detected, or estimated and labelled so), vendors' datasheets (with their
sources), and measurements the other pages make (the CPU's memory copy from
Advantage 1, the matmul sweeps from Advantage 2), reused.
"""

from __future__ import annotations

import html

from gpucnn.datasheets import FP32_LANES_PER_SM, gpu_model, vector_fp32
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.figures import dram_point
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
    short_bytes,
    table,
)
from gpucnn.results import Result, run
from gpucnn.sources import Pair, Source, archived_accelerators, note, one_line, pairs, short_model

_NONE = "no accelerator in this build"


def boost_clock_ghz(acc: AcceleratorInfo | None) -> float | None:
    """The boost clock a datasheet FP32 peak implies: peak / (2 FLOP per FMA x FP32 lanes), or None.

    torch does not report a GPU's clock; the datasheet peak is lanes x 2 x boost clock, so the clock
    follows from it.
    """
    lanes = gpu_lanes(acc)
    return acc.peaks.fp32 / (2 * lanes) / 1e9 if acc and acc.peaks and lanes else None


def _accelerator_column(acc: AcceleratorInfo | None) -> list[str]:
    """One accelerator's cells for the side-by-side table (strings from a record are escaped).

    A dash: the value is not known (not in gpucnn's datasheet table, or not reported); the caption says so.
    """
    if acc is None:
        return [_NONE] + ["–"] * 6
    if acc.peaks:
        p = acc.peaks
        peak, bw = f"{fmt(p.fp32 / 1e12)} TFLOP/s FP32 (datasheet)", f"{fmt(p.bandwidth / 1e12)} TB/s peak (datasheet)"
    else:
        peak = bw = "–"
    clock = boost_clock_ghz(acc)
    return [
        one_line(f"{acc.backend}: {acc.name}" + (f" x {acc.count}" if acc.count > 1 else "")),
        f"{acc.multiprocessors} SMs / compute units" if acc.multiprocessors else "–",
        (f"{clock:.2f} GHz boost, from the datasheet: {fmt(acc.peaks.fp32 / 1e12)} TFLOP/s FP32 / "
         f"(2 FLOP x {gpu_lanes(acc):,} FP32 lanes)") if clock and acc.peaks else "–",
        format_bytes(acc.memory_bytes),
        f"L2 {format_bytes(acc.l2_bytes)}",
        peak,
        bw,
    ]


def _cpu_bandwidth() -> tuple[str, Source | None]:
    """This build's CPU's memory bandwidth: the DRAM copy that Advantage 1 measures (no CPU has a datasheet row)."""
    src = Source("cpu", run(copy_bandwidth, device="cpu"))
    m = dram_point(src.result)
    if m is None or not m.gbps:
        return "–", None
    return (f"{fmt(m.gbps)} GB/s measured: copy of {short_bytes(m.shape[0])} buffers "
            "([Advantage 1](bandwidth.md)); no datasheet peak", src)


def side_by_side(hw: HardwareReport | None = None) -> str:
    """This build's CPU and accelerator, then each archived accelerator, in columns."""
    hw = hw or detect()
    cpu = hw.cpu
    cpu_peak = f"{fmt(cpu.peak_fp32.value / 1e9)} GFLOP/s ({cpu.peak_fp32.source})" if cpu.peak_fp32 else "–"
    cpu_bw, copy_src = _cpu_bandwidth()
    cpu_col = [
        cpu.model + (f" ({cpu.family})" if cpu.family else ""),
        f"{cpu.logical_cores} logical cores",
        f"{fmt(cpu.reported_clock_ghz)} GHz reported, {fmt(cpu.max_clock_ghz)} GHz highest known",
        f"{format_bytes(cpu.ram_bytes)} RAM",
        format_bytes(cpu.llc_bytes),
        cpu_peak,
        cpu_bw,
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
             "Peak FP32", "Memory bandwidth"]
    headers = ["", *[f'<span data-source="{one_line(origin)}">{one_line(label)}</span>'
                     for label, origin, _ in columns]]
    rows = [(name, *[col[i] for _, _, col in columns]) for i, name in enumerate(names)]
    out = table(headers, rows, align="l" * len(headers))
    sheets = sorted({a.peaks.source for a in [hw.accelerator] + [r.hardware.accelerator for r, _, _ in archived]
                     if a and a.peaks})
    out += caption(
        f"Detected when this page was built, on {describe_hardware(hw)}. Peaks are not measurements: the CPU "
        "peak is an estimate at its highest known clock (cores x clock x FLOP per cycle; a virtual machine may "
        "report a lower clock than its cores run at), the GPU peaks are datasheet figures"
        + (f" ({'; '.join(sheets)})" if sheets else "") + ", and a GPU's boost clock is the one its datasheet "
        "FP32 peak implies. The CPU's memory bandwidth is measured (the DRAM copy of Advantage 1: bytes read + "
        "written, GB = 10^9 bytes). Memory sizes are in binary units (1 GiB = 2^30 bytes), as the device reports "
        "them; the GB in a model's name (H200 141GB) is the vendor's nominal size, not a count of 10^9 bytes. "
        "A dash: not reported, or the GPU is not in gpucnn's datasheet table"
        + ("" if cpu.peak_fp32 else f"; the CPU has no peak ({cpu.peak_note})") + ". "
        + ("Archived columns: the hardware report of a record in results/, not this build's machine."
           if archived else ""), shown + ([copy_src] if copy_src else []))
    return out


def datasheet_table() -> str:
    """Common GPUs' datasheet peaks, and the FLOP per byte they need to stay busy."""
    sources: list[str] = []
    rows = []
    matrix = []  # rows whose datasheet FP32 is a matrix-core figure: (label, that figure)
    for _needles, label, p in GPU_DATASHEET:
        fp32, fp32_source = vector_fp32(label, p)
        for src in (fp32_source, p.source):
            if src not in sources:
                sources.append(src)
        cited = sorted({sources.index(fp32_source) + 1, sources.index(p.source) + 1})
        if fp32 != p.fp32 or fp32_source != p.source:
            matrix.append((label, p.fp32))
        rows.append((
            label, fmt(fp32 / 1e12, 4), fmt(p.tf32 / 1e12, 4) if p.tf32 else "none",
            fmt(p.bf16 / 1e12, 4) if p.bf16 else "none", fmt(p.bandwidth / 1e12, 4),
            fmt(fp32 / p.bandwidth), " ".join(f"[{i}]" for i in cited),
        ))
    out = table(
        ["GPU", "FP32 TFLOP/s", "TF32 TFLOP/s", "BF16 TFLOP/s", "Memory TB/s", "FP32 FLOP per byte", "Source"],
        rows, align="lrrrrrr",
    )
    amd = ("" if not matrix else
           " FP32 is the vector rate, before any tensor or matrix core is counted; AMD also rates its matrix cores "
           "at FP32, the rate an fp32 matmul can reach there: "
           + ", ".join(f"{label} {fmt(value / 1e12, 4)}" for label, value in matrix) + " TFLOP/s.")
    out += caption(
        "Datasheet figures, not measured in this build: dense peaks (no sparsity) at boost clock; TB/s means "
        "10^12 bytes per second. 'FP32 FLOP per byte' is the FP32 peak divided by the memory bandwidth: the work "
        "a kernel must do per byte it loads to keep the FP32 units busy." + amd + " Sources: "
        + "; ".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) + ".")
    return out


def peaks_chart(hw: HardwareReport | None = None) -> str:
    """Horizontal log-scale bars: datasheet FP32 peaks beside this build's CPU estimate."""
    hw = hw or detect()
    names, values, kinds = [], [], []
    for _needles, label, p in GPU_DATASHEET:
        names.append(label)
        values.append(vector_fp32(label, p)[0] / 1e12)
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
    vector = [vector_fp32(label, p)[0] for _n, label, p in GPU_DATASHEET]
    lo, hi = min(vector), max(vector)
    return (
        f"This build's CPU has an estimated FP32 peak of **{fmt(cpu / 1e9)} GFLOP/s**. The GPUs in the table "
        f"have datasheet FP32 vector peaks from {fmt(lo / 1e12)} to {fmt(hi / 1e12)} TFLOP/s: "
        f"**{fmt(lo / cpu)}x to {fmt(hi / cpu)}x** this CPU, before their tensor or matrix cores (TF32, BF16) "
        "are counted. "
        f"A server CPU with many more cores narrows the gap, but does not close it.\n"
    )


# --- FP32 lanes: the prediction a lane count makes, against measured matmuls ---

# H100 SXM: 132 SMs of compute capability 9.0 (NVIDIA H100 architecture whitepaper; gpucnn's datasheet row).
H100_SXM_SMS = gpu_model("H100 SXM").units


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


# A measured GPU/CPU ratio within this factor of the peaks' prediction is "close to" it; beyond, the
# sentence names the two efficiencies that make up the difference.
_CLOSE = 1.1


def _lanes_sentence(hw: HardwareReport, gpu_name: str, acc: AcceleratorInfo | None, cpu_owner: str) -> str:
    """FP32 lanes of one GPU and of the CPU beside it, and the peak ratio they predict ("" when unknown)."""
    g_lanes, mine = gpu_lanes(acc), cpu_lanes(hw)
    if not g_lanes or acc is None:
        return ""
    per_sm = g_lanes // acc.multiprocessors
    text = f"the {gpu_name} has {acc.multiprocessors} SMs x {per_sm} = **{g_lanes:,}** FP32 lanes."
    if mine and hw.cpu.peak_fp32:
        cores, per_core = mine
        lanes = cores * per_core
        text += (f" {cpu_owner} has {cores} physical core{'s' if cores > 1 else ''} (as its operating system "
                 f"reports them; in a virtual machine they may be the host's hyper-threads) x {per_core} FMA lanes = "
                 f"**{lanes:,}** (threads do not count: two hyper-threads share one core's FMA units). The "
                 f"{gpu_name} has {fmt(g_lanes / lanes)}x as many.")
        if acc.peaks:
            text += (f" With the clocks, the peaks predict **{fmt(acc.peaks.fp32 / hw.cpu.peak_fp32.value)}x** "
                     f"(datasheet {fmt(acc.peaks.fp32 / 1e12)} TFLOP/s against the CPU's estimated "
                     f"{fmt(hw.cpu.peak_fp32.value / 1e9)} GFLOP/s).")
    return text


def _measured_sentence(pair: Pair) -> str:
    """The best fp32 matmul of one machine's GPU against its own host CPU, and why it differs from the peaks."""
    g, c = _best_gflops(pair.gpu.result), _best_gflops(pair.cpu.result)
    if not g or not c:
        return ""
    acc = pair.gpu.hardware.accelerator
    host = pair.cpu.hardware
    gpu_name = one_line(pair.gpu.model)
    text = (f"the best fp32 matmul of the {gpu_name} ran **{fmt(g / c)}x** as fast as the best on its "
            f"own host CPU ({one_line(host.cpu.model)}, {host.cpu.torch_threads} threads)")
    if not (acc and acc.peaks and host.cpu.peak_fp32):
        missing = [what for what, known in ((f"the {gpu_name} has no datasheet row in gpucnn's table",
                                             acc and acc.peaks),
                                            ("that machine's CPU has no peak in its hardware report",
                                             host.cpu.peak_fp32)) if not known]
        return text + f"; {' and '.join(missing)}, so no peak ratio predicts it."
    predicted = acc.peaks.fp32 / host.cpu.peak_fp32.value
    # measured / predicted = (GPU's share of its peak) / (CPU's share of its peak): the two efficiencies.
    g_eff, c_eff = g * 1e9 / acc.peaks.fp32 * 100, c * 1e9 / host.cpu.peak_fp32.value * 100
    effs = (f"the {gpu_name} reached {fmt(g_eff, 2)} % of its datasheet peak and the CPU {fmt(c_eff, 2)} % of "
            "its estimated one")
    measured = g / c
    if max(measured, predicted) / min(measured, predicted) <= _CLOSE:
        return text + f", close to the {fmt(predicted)}x its peaks predict: {effs}."
    side = "more" if measured > predicted else "less"
    return (text + f", {side} than the {fmt(predicted)}x its peaks predict, because {effs} "
            f"(the quotient of the two, {fmt(g_eff / c_eff, 2)}, is the factor between the measured and the "
            "predicted ratio).")


def lanes_findings(hw: HardwareReport | None = None) -> str:
    """For each GPU shown (this build's, or an archived record's), its FP32 lanes against those of the CPU of
    its own machine, the peak ratio they predict, and the measured matmul ratio within that machine."""
    hw = hw or detect()
    paragraphs = []
    for pair in pairs(matmul_sweep):
        host = pair.cpu.hardware
        owner = "This build's CPU" if not pair.archived else "Its host CPU"
        lanes = _lanes_sentence(host, one_line(pair.gpu.model), pair.gpu.hardware.accelerator, owner)
        measured = _measured_sentence(pair)
        if lanes or measured:
            note([pair.gpu, pair.cpu])
            where = "On this build's machine" if not pair.archived else \
                f"On the archived {one_line(pair.gpu.model)} record's machine"
            body = f"{lanes} Measured, {measured}" if lanes and measured else lanes or measured
            paragraphs.append(f"{where}, {body}")
    if not paragraphs and (mine := cpu_lanes(hw)):
        cores, per_core = mine
        paragraphs.append(f"This build's CPU has {cores} physical core{'s' if cores > 1 else ''} x {per_core} FMA "
                          f"lanes = **{cores * per_core:,}** FP32 lanes; an H100 SXM has {H100_SXM_SMS} SMs x "
                          f"{FP32_LANES_PER_SM['9.0']} = **{H100_SXM_SMS * FP32_LANES_PER_SM['9.0']:,}** (NVIDIA "
                          "H100 architecture whitepaper).")
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""
