"""Page "Advantage 3: fast memory access": data reuse (matmul against elementwise ops),
small-op latency, per-core speed, and a roofline of this build's measured ops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from matplotlib.ticker import NullLocator

from gpucnn.bench import Measurement
from gpucnn.datasheets import FP32_LANES_PER_SM, GpuPeaks, gpu_model, memory_kind
from gpucnn.experiments.conv import conv_channel_sweep
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep, matmul_threads
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth, l2_copy_bandwidth
from gpucnn.experiments.precision import precision_matmul_sweep, precisions_for
from gpucnn.experiments.reuse import reuse_ratio
from gpucnn.figures import HEADLINE_MATMUL_N, dram_point, matmul_at
from gpucnn.render import (
    COLORS,
    MARKERS,
    caption,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    new_figure,
    short_bytes,
    style_context,
    table,
)
from gpucnn.results import Result, run
from gpucnn.sources import Source, accelerators, and_list, no_gpu_note, one_line, pairs, sibling, sources

# render.py turns this colour into currentColor: the roof follows light and dark mode.
INK = "#010203"
# Modal GPU glossary, "perf/overhead": kernel launch overhead is "on the order of 10 us".
MODAL_LAUNCH_S = 10e-6


@dataclass(frozen=True)
class RooflinePoint:
    """One measured op on a roofline: FLOP per byte and achieved GFLOP/s (with its IQR)."""

    label: str
    intensity: float  # FLOP per byte counted
    gflops: float
    low: float
    high: float
    runs: int


def roofline_points(items: Sequence[tuple[str, Measurement]]) -> list[RooflinePoint]:
    """Points for the ops that do arithmetic and move bytes; a pure copy (0 FLOP) has none.

    A matmul's bytes are its minimum traffic (read A and B, write C once), so its
    intensity is the best it can reach: n/6 FLOP per byte in fp32.
    """
    out = []
    for label, m in items:
        if m.flops > 0 and m.bytes_moved > 0:
            out.append(RooflinePoint(label, m.flops / m.bytes_moved, m.flops / m.median / 1e9,
                                     m.flops / m.p75 / 1e9, m.flops / m.p25 / 1e9, m.runs))
    return out


def roof(intensity: float, bandwidth_gbps: float, compute_gflops: float) -> float:
    """The roofline bound in GFLOP/s: min(compute roof, bandwidth x intensity)."""
    return min(compute_gflops, bandwidth_gbps * intensity)


# --- the hierarchical roofline: measured memory roofs, datasheet or estimated compute ceilings ---

# render.figure_html gives the SVG group with this gid its data-source (render.mark_sources).
SERIES_GID = "gpucnn-series-"


@dataclass(frozen=True)
class Roof:
    """A memory roof (GB/s: a slanted line) or a compute ceiling (GFLOP/s: a flat one), with how it was found."""

    label: str
    value: float


def conv_min_bytes(batch: int, channels: int, image: int, kernel: int) -> float:
    """The least traffic of one conv2d forward+backward (Cin = Cout): each tensor read or written once, fp32.

    Input, output, output gradient and input gradient (batch x channels x image^2 each), and the
    filters and their gradient (channels^2 x kernel^2 each). Any real kernel moves more: the point's
    intensity is the highest it could have.
    """
    return 4.0 * (4 * batch * channels * image * image + 2 * channels * channels * kernel * kernel)


def compute_ceilings(src: Source) -> list[Roof]:
    """FP32, TF32 and bf16 peaks: datasheet figures for a GPU, the hardware report's estimates for a CPU."""
    hw = src.hardware
    if src.is_cpu:
        pairs_ = (("FP32", hw.cpu.peak_fp32), ("bf16", hw.cpu.peak_bf16))
        return [Roof(f"{name} peak (est.)", p.value / 1e9) for name, p in pairs_ if p]
    peaks = hw.accelerator.peaks if hw.accelerator else None
    if peaks is None:
        return []
    return [Roof(f"{name} peak", v / 1e9)
            for name, v in (("FP32", peaks.fp32), ("TF32", peaks.tf32), ("bf16", peaks.bf16)) if v]


def hbm_datasheet(src: Source) -> GpuPeaks | None:
    """An accelerator's datasheet peaks where they give its memory bandwidth; None for a CPU."""
    acc = src.hardware.accelerator
    if src.is_cpu or acc is None or acc.peaks is None or not acc.peaks.bandwidth:
        return None
    return acc.peaks


def roof_memory(src: Source) -> str:
    """What a device's lowest memory roof is called: DRAM on a CPU, else the family of its device memory
    ("HBM", "GDDR", or "device memory" for a GPU that no datasheet row names)."""
    return "DRAM" if src.is_cpu else memory_kind(src.hardware.accelerator)


def roof_memories(found: Sequence[Source]) -> str:
    """The names of the lowest memory roofs of ``found``, each once, in order: "DRAM or HBM"."""
    names = list(dict.fromkeys(roof_memory(s) for s in found)) or ["memory"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def dram_roof(src: Source, copy: Result | None) -> Roof | None:
    """The DRAM/device-memory roof: an accelerator's datasheet bandwidth; else (a CPU: no datasheet) the copy sweep's point
    far beyond the caches.

    Never the fastest of copy, add and relu: add and relu are points on the chart, and a roof drawn at one of
    them would put it at 100 % of the roofline by definition, as a compute ceiling drawn at the best matmul
    would.
    """
    peaks = hbm_datasheet(src)
    if peaks is not None:
        return Roof(f"{roof_memory(src)} roof: {fmt(peaks.bandwidth / 1e9)} GB/s, datasheet", peaks.bandwidth / 1e9)
    d = dram_point(copy) if copy is not None else None
    if d is None or not d.gbps:
        return None
    return Roof(f"{roof_memory(src)} roof: {fmt(d.gbps)} GB/s, copy far beyond the caches (measured; no datasheet figure)",
                d.gbps)


def memory_roofs(src: Source) -> list[Roof]:
    """The DRAM/device-memory roof (``dram_roof``) and, above it, the L2/LLC roof where one was measured.

    The cache roof is an accelerator's best launch-free copy inside its L2 (``l2_copy_bandwidth``), else the
    copy sweep's best point whose source and destination fit in the last-level cache; it is left out when it
    is no faster than the DRAM roof (on a GPU, one copy per call measures the launch there, not the L2).
    """
    cp = sibling(src, copy_bandwidth)
    if cp is None:
        return []
    dram = dram_roof(src, cp.result)
    if dram is None:
        return []
    roofs = [dram]
    cache = cp.result.data["cache_bytes"]
    l2 = sibling(src, l2_copy_bandwidth) if not src.is_cpu else None
    inside: list[Measurement] = []
    how = "copy sweep"
    if l2 is not None:
        inside = [m for m in l2.result.data["sweep"].points if cache and 2 * m.shape[0] <= cache]
        how = "copies, launch cost removed: a floor"
    if not inside:
        inside = [m for m in cp.result.data["sweep"].points if cache and 2 * m.shape[0] <= cache]
        how = "copy sweep"
    best = max(inside, key=lambda m: m.gbps or 0, default=None)
    if best is not None and best.gbps and best.gbps > dram.value:
        # On a CPU the fastest such copy may sit in L1 or L2: the roof is the caches', not the LLC's alone.
        where = "cache roof: {}, best copy inside the last-level cache" if src.is_cpu else "L2 roof: {}, best copy inside it"
        if how == "copy sweep" and not src.is_cpu:
            # One copy per call on a GPU: the call's fixed cost is in the time, so the roof is a lower bound.
            how = "one copy per call: a lower bound"
        roofs.append(Roof(where.format(f"{fmt(best.gbps)} GB/s") + f" ({how})", best.gbps))
    return roofs


def _precision_sibling(src: Source) -> Source | None:
    """The bf16 matmul sweep of the same device and origin, where one is measured (live) or recorded."""
    if not src.archived and "bfloat16" not in precisions_for(src.device, src.hardware):
        return None
    return sibling(src, precision_matmul_sweep, precision="bfloat16")


def roofline_groups(src: Source) -> list[tuple[str, list[RooflinePoint]]]:
    """The measured points of one device: fp32 and bf16 matmuls, the CNN's conv layers, add and relu."""
    groups: list[tuple[str, list[RooflinePoint]]] = []
    mm = src.result.data["sweep"].points
    if mm:
        groups.append((f"fp32 matmul, n = {mm[0].shape[0]} … {mm[-1].shape[0]:,}",
                       roofline_points([(f"n={m.shape[0]}", m) for m in mm])))
    bf = _precision_sibling(src)
    if bf is not None and bf.result.data["sweep"].points:
        pts = bf.result.data["sweep"].points
        groups.append((f"bf16 matmul, n = {pts[0].shape[0]} … {pts[-1].shape[0]:,}",
                       roofline_points([(f"n={m.shape[0]}", m) for m in pts])))
    conv = sibling(src, conv_channel_sweep)
    if conv is not None and conv.result.data["sweep"].points:
        d = conv.result.data
        layers = [(f"C={m.shape[1]}", replace(m, bytes_moved=conv_min_bytes(d["batch"], m.shape[1], d["image"],
                                                                           d["kernel"])))
                  for m in d["sweep"].points]
        span = layers[0][0][2:] + (f" … {layers[-1][0][2:]}" if len(layers) > 1 else "")
        groups.append((f"conv2d layer fwd+bwd, C = {span}, batch {d['batch']}",
                       roofline_points(layers)))
    ew = sibling(src, elementwise_bandwidth)
    if ew is not None:
        groups += [("add (x + y)", roofline_points([("add", ew.result.data["add"])])),
                   ("relu", roofline_points([("relu", ew.result.data["relu"])]))]
    return [(label, pts) for label, pts in groups if pts]


def roofline_chart(src: Source) -> str:
    """One device's hierarchical roofline: measured memory roofs, compute ceilings, measured ops."""
    roofs, ceilings, groups = memory_roofs(src), compute_ceilings(src), roofline_groups(src)
    if not roofs or not groups:
        return ""
    label = chart_text(src.label)
    pts = [p for _, g in groups for p in g]
    top = max([c.value for c in ceilings] + [p.high for p in pts])
    ridge = max(top / r.value for r in roofs)  # where the slowest roof meets the highest ceiling
    lo_x = min(p.intensity for p in pts) / 2
    hi_x = max(max(p.intensity for p in pts), ridge) * 4
    xs = [lo_x * (hi_x / lo_x) ** (i / 200) for i in range(201)]
    sources_ = []
    with style_context():
        fig, ax = new_figure(7.0, 5.0)
        for i, (r, dash) in enumerate(zip(roofs, ("-", "--"), strict=False)):
            ax.plot(xs, [min(r.value * x, top) for x in xs], color=INK, linestyle=dash, linewidth=1.6 - 0.4 * i,
                    label=chart_text(r.label))
        fast = max(r.value for r in roofs)
        for c in ceilings:
            start = c.value / fast  # a ceiling starts where it meets the fastest memory roof
            ax.plot([start, hi_x], [c.value, c.value], color=INK, linestyle=":", linewidth=1.2)
        for i, (name, group) in enumerate(groups):
            style = {"fmt": MARKERS[i % len(MARKERS)], "color": COLORS[i % len(COLORS)], "markersize": 5}
            if src.archived:
                style["markerfacecolor"] = "none"
            eb = ax.errorbar([p.intensity for p in group], [p.gflops for p in group],
                             yerr=[[p.gflops - p.low for p in group], [p.high - p.gflops for p in group]],
                             capsize=2, linestyle="none", label=chart_text(name), **style)
            eb[0].set_gid(f"{SERIES_GID}{i}")
            sources_.append(src.origin)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(min(p.low for p in pts) / 2, top * 2)
        ax.set_xlabel("arithmetic intensity (FLOP per byte, least possible traffic)")
        ax.set_ylabel("achieved GFLOP/s")
        ax.set_title(f"Roofline: {label}")
        ax.grid(True, which="major")
        if ceilings:
            # Ceilings are labelled on the right-hand axis, like tick labels: never on the data.
            right = ax.secondary_yaxis("right")
            right.set_ticks([c.value for c in ceilings], [c.label for c in ceilings])
            right.yaxis.set_minor_locator(NullLocator())
            right.tick_params(length=0, labelsize=8)
        # Below the axes: inside, it would cover points wherever they fall on a given machine.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    runs = sorted({p.runs for p in pts})
    kind = "estimates from the hardware report (clock x cores x FLOP per cycle), not measurements" if src.is_cpu \
        else "datasheet figures"
    chart = figure_html(
        fig, title=f"Hierarchical roofline of the measured ops on {label}",
        desc=(f"Log-log roofline. Memory roofs: {'; '.join(r.label for r in roofs)}. Compute ceilings: "
              + ("; ".join(f"{c.label} {fmt(c.value)} GFLOP/s" for c in ceilings) or "none known") + ". "
              + " ".join(f"{name}: " + ", ".join(f"{p.label} at {fmt(p.intensity)} FLOP/byte, {fmt(p.gflops)} "
                                                 "GFLOP/s" for p in group) + "." for name, group in groups)),
        caption_text=(f"Points: median GFLOP/s; error bars: IQR ({runs[0]}–{runs[-1]} timed runs each). Slanted "
                      f"roofs: bandwidth x intensity, for {_dram_roof_text(src)}, and for the fastest copy inside "
                      "the " + ("last-level cache" if src.is_cpu else "L2") + ", measured in this figure's source, "
                      "where it beats that. Flat ceilings, dotted: "
                      f"peak FP32, TF32 and bf16 rates (those the device has), {kind}; none is a measured matmul. Intensity uses each op's "
                      "least traffic: a matmul reads A and B and writes C once (3 n^2 elements); a conv layer's "
                      "forward+backward reads and writes each activation, gradient and filter tensor once; add "
                      "moves 12 bytes per FLOP, relu 8. A plain copy does no arithmetic: it is never a point."),
        results=[src, *_siblings(src)], sources=sources_,
    )
    rows = [(src.cell(), one_line(name), one_line(p.label), fmt(p.intensity), f"{fmt(p.gflops)} ({fmt(p.low)}–"
             f"{fmt(p.high)})") for name, group in groups for p in group]
    body = html_table(["Device", "Op", "Point", "FLOP per byte", "GFLOP/s: median (IQR)"], rows, align="lllrr")
    lines = [r.label for r in roofs] + [f"{c.label} {fmt(c.value)} GFLOP/s" for c in ceilings]
    return chart + figures_table(chart, body, "Drawn as lines: " + "; ".join(lines) + ".")


def _dram_roof_text(src: Source) -> str:
    """One device's DRAM/device-memory roof in words, for its chart's caption (plain text: the caption escapes it)."""
    peaks = hbm_datasheet(src)
    if peaks is not None:
        return (f"the datasheet {roof_memory(src)} bandwidth ({' '.join(peaks.source.split())}), not a measurement: add and relu "
                "show how close a stream came to it")
    return ("the copy far beyond the caches, measured in this figure's source (no datasheet memory bandwidth is "
            "known for this device): the copy alone, so that add and relu are points scored against a roof they do not set")


def _siblings(src: Source) -> list[Source]:
    """The other results one device's roofline stands on, for the section's sources line."""
    found = [sibling(src, fn) for fn in (copy_bandwidth, elementwise_bandwidth, conv_channel_sweep)]
    found += [sibling(src, l2_copy_bandwidth) if not src.is_cpu else None, _precision_sibling(src)]
    return [s for s in found if s is not None]


def roofline_roofs() -> str:
    """The page's list of what draws each roof and ceiling, chosen from the devices the charts show."""
    found = [s for s in sources(matmul_sweep) if memory_roofs(s)]
    kinds = _dram_roof_kinds(found, one_line, lambda s: s.cell()) if found else "none drawn"
    return (f"- **memory roofs:** the {roof_memories(found)} roof: " + kinds + " (see [Advantage 1](bandwidth.md)). A roof "
            "drawn at the fastest of copy, `add` and `relu` would put that op at 100 % of the roofline by "
            "definition. Above it, a GPU's L2 or a CPU's caches: the fastest copy that fits in the L2 or last-level "
            "cache, measured, with the launch cost removed on a GPU where that was measured. An op whose data stay "
            "in the L2 may climb above the DRAM roof;\n"
            "- **compute ceilings, not measured:** the FP32, TF32 and bf16 peaks of a GPU's datasheet, or the "
            "estimates from this CPU's clock, cores and vector or matrix units (see [What is a GPU](gpu.md)). A "
            "measured matmul is a point under them, never a roof: a roof drawn at the best matmul would say that "
            "matmul is as fast as the hardware by definition.\n")


def roofline_charts() -> str:
    """One hierarchical roofline per device shown (this build's, then archived accelerators)."""
    found = sources(matmul_sweep)
    return "\n".join(roofline_chart(s) for s in found) + no_gpu_note(
        found, "GPU rooflines (their device-memory and L2 roofs and tensor-core ceilings sit far higher)")


def own_ceiling(group: str, ceilings: Sequence[Roof]) -> Roof | None:
    """The compute ceiling of a roofline group's precision: bf16 for the bf16 matmuls, FP32 for the rest
    (fp32 matmuls and conv layers run with TF32 off; add and relu are fp32)."""
    want = "bf16" if group.startswith("bf16") else "FP32"
    return next((c for c in ceilings if c.label.startswith(want)), None)


@dataclass(frozen=True)
class GroupBest:
    """A roofline group's fastest point on one device, against its precision's ceiling."""

    source: Source
    group: str
    best: RooflinePoint
    ceiling: Roof
    dram: Roof  # the lowest memory roof: DRAM or device memory

    @property
    def pct(self) -> float:
        return 100 * self.best.gflops / self.ceiling.value

    @property
    def pct_of_roofline(self) -> float:
        """Against the roofline under the point: the ceiling, or the DRAM/device-memory roof at its intensity if
        lower. No point sets that roof (a datasheet figure, or the copy, which is never a point), so none scores
        100 % by definition."""
        return 100 * self.best.gflops / roof(self.best.intensity, self.dram.value, self.ceiling.value)


def roofline_bests() -> list[GroupBest]:
    """For each device the rooflines show and each group of points on it: the fastest point and its ceiling."""
    out = []
    for src in sources(matmul_sweep):
        roofs = memory_roofs(src)
        if not roofs:  # no roofline drawn for it
            continue
        ceilings = compute_ceilings(src)
        for name, group in roofline_groups(src):
            ceiling = own_ceiling(name, ceilings)
            if ceiling is not None and group:
                out.append(GroupBest(src, name, max(group, key=lambda p: p.gflops), ceiling, roofs[0]))
    return out


def _dram_roof_kinds(found: Sequence[Source], escape: Callable[[str], str] = str,
                     name: Callable[[Source], str] = lambda s: s.label) -> str:
    """What the DRAM/device-memory roof of each device in ``found`` is: a datasheet figure or a measured copy.

    Plain text, for a caption (which escapes it); ``escape`` is applied to the record's datasheet citations
    (``one_line`` for Markdown). Labels are safe as they are; in Markdown, ``name`` gives each device its
    table cell, which carries the source marker that ties an archived figure to its record.
    """
    datasheet = [s for s in found if hbm_datasheet(s) is not None]
    measured = [s for s in found if hbm_datasheet(s) is None]
    parts = []
    for memory in dict.fromkeys(roof_memory(s) for s in datasheet):  # HBM, GDDR: each kind its own clause
        same = [s for s in datasheet if roof_memory(s) == memory]
        cites = sorted({escape(" ".join(hbm_datasheet(s).source.split())) for s in same})
        parts.append(f"for {and_list([name(s) for s in same])}, the datasheet {memory} bandwidth ("
                     + "; ".join(cites) + ")")
    if measured:
        parts.append(f"for {and_list([name(s) for s in measured])}, which "
                     + ("has" if len(measured) == 1 else "have")
                     + " no datasheet memory bandwidth, the copy far beyond the caches, measured: the copy alone, never "
                     "add or relu")
    return "; ".join(parts)


# Below this fraction of its memory roof, an elementwise op's time is more than its traffic.
STREAM_NEAR_ROOF = 0.5


def _stream_bests(found: Sequence[GroupBest]) -> list[GroupBest]:
    """The add and relu rows: the points far left of every ridge."""
    return [b for b in found if b.best.label in ("add", "relu")]


def stream_findings() -> str:
    """Where add and relu sit against the DRAM/device-memory roof of their device, in words chosen from the data."""
    streams = _stream_bests(roofline_bests())
    if not streams:
        return ""
    devices: dict[str, list[GroupBest]] = {}
    for b in streams:
        devices.setdefault(b.source.origin + b.source.device, []).append(b)
    parts = []
    for group in devices.values():
        src = group[0].source
        roof_name = f"its datasheet {roof_memory(src)} bandwidth" if hbm_datasheet(src) is not None else "its measured copy"
        parts.append(f"on {src.label}, " + and_list([f"`{b.best.label}` at **{fmt(b.pct_of_roofline, 2)} %**"
                                                     for b in group]) + f" of {roof_name}")
    shown = [group[0].source for group in devices.values()]
    text = (f"`add` and `relu` sit at the far left, against the {roof_memories(shown)} roof under them: " + "; ".join(parts)
            + ". ")
    low = [b for b in streams if b.pct_of_roofline < 100 * STREAM_NEAR_ROOF]
    if low:
        text += ("Memory bounds them, but " + and_list([f"`{b.best.label}` on {b.source.label}" for b in low])
                 + " reached less than half of that roof: "
                 + ("its time is more than its traffic. " if len(low) == 1 else "their time is more than their traffic. "))
    else:
        text += "Their speed is the memory's: only more bandwidth would make them faster. "
    over = [b for b in streams if b.pct_of_roofline > 100]
    if over:
        text += (and_list([f"`{b.best.label}` on {b.source.label}" for b in over]) + " passed the measured copy "
                 "that sets the roof there. ")
    cpu_over = {b.best.label for b in over if b.source.is_cpu}
    if cpu_over:
        text += ("A CPU reads each cache line it is about to write (write-allocate), traffic that no op's byte "
                 "count includes: it adds half to the bytes a copy or relu counts (one read, one write) and a third "
                 "to add's (two reads, one write)"
                 + (", so add can count more GB/s than the copy for the same traffic" if "add" in cpu_over else "")
                 + (". relu moves its bytes as a copy does, so a relu above the copy is the difference between two "
                    "separate runs" if "relu" in cpu_over else "") + ". ")
    if any(not b.source.is_cpu for b in over):
        text += "On a GPU, the cause is not measured here. "
    return text.rstrip() + "\n"


def roofline_findings() -> str:
    """How close each group of points came to its own ceiling, per device: a table computed from the data."""
    found = roofline_bests()
    if not found:
        return ""
    rows = [(b.source.cell(), one_line(b.group), one_line(b.best.label), fmt(b.best.gflops),
             f"{one_line(b.ceiling.label)}: {fmt(b.ceiling.value)}", f"**{fmt(b.pct, 2)} %**",
             f"{fmt(b.pct_of_roofline, 2)} %") for b in found]
    out = table(["Device", "Points", "Fastest point", "GFLOP/s (median)", "Its ceiling, GFLOP/s", "% of ceiling",
                 "% of the roofline at its intensity"], rows, align="lllrrrr")
    devices = list({b.source.origin + b.source.device: b.source for b in found}.values())
    text = ("Each group's fastest point on each roofline above, against the compute ceiling of its precision: bf16 "
            "for bf16 matmuls, FP32 for the fp32 matmuls, conv layers (TF32 off), add and relu. Ceilings: datasheet "
            "peaks for a GPU, estimates for a CPU. Last column: against the lower of that ceiling and the "
            f"{roof_memories(devices)} roof at the point's intensity. The {roof_memories(devices)} roof: "
            f"{_dram_roof_kinds(devices)}. A point whose "
            "data stayed in a cache can pass 100 %.")
    return out + caption(text, [b.source for b in found])


def reuse_table() -> str:
    """Matmul (reuse) against add and relu (no reuse) on the same device."""
    rows = []
    shown: list[Source] = []
    gaps: list[float] = []  # matmul GFLOP/s over add's, per device
    n = None
    for src in sources(matmul_sweep, hosts=True):
        ew_src = sibling(src, elementwise_bandwidth)
        if ew_src is None:
            continue
        shown += [src, ew_src]
        mm, ew = src.result, ew_src.result
        label = src.cell()
        m = matmul_at(mm)
        n = m.shape[0] if m else n
        add = ew.data["add"]
        for name, x, reuse in ((f"matmul n={m.shape[0] if m else '–'}", m,
                                f"each input element used {m.shape[0] if m else '–'} times"),
                               ("add", add, "each element used once"),
                               ("relu", ew.data["relu"], "each element used once")):
            if x is None:  # the sweep stopped before any size up to the headline's
                rows.append((label, name, "–", "–", "–", "–"))
                continue
            rows.append((label, name, reuse, fmt(x.flops / x.bytes_moved), fmt(x.gflops),
                         f"{fmt(x.gflops / add.gflops)}x" if add.gflops else "–"))
            if x is m and add.gflops:
                gaps.append(m.gflops / add.gflops)
    out = table(["Device", "Op", "Data reuse", "FLOP per byte", "GFLOP/s (median)", "Against add"], rows,
                align="lllrrr")
    gap_text = ("A gap of the same kind appears on every device"
                + (f" (the matmul {fmt(min(gaps))}x to {fmt(max(gaps))}x as fast as add)" if len(gaps) > 1 else "")
                + ": its size is set by the two ops' arithmetic intensities and by each device's own peak rate "
                "and memory bandwidth, not by whether the device is a GPU.")
    out += caption(f"fp32. Matmul at n = {HEADLINE_MATMUL_N}, or the largest size below it that a sweep reached "
                   "(the row names n); add and relu on tensors far beyond the last-level cache. " + gap_text, shown)
    return out + no_gpu_note(shown, "GPU rows of this table")


def reuse_findings() -> str:
    mm, ew = run(matmul_sweep, device="cpu"), run(elementwise_bandwidth, device="cpu")
    m, add = matmul_at(mm), ew.data["add"]
    if m is None:
        return ""
    n = m.shape[0]
    return (f"On the same CPU and the same memory, the n={n} matmul computes **{fmt(m.gflops)} GFLOP/s** and `add` "
            f"**{fmt(add.gflops, 2)} GFLOP/s**, {m.gflops / add.gflops:,.0f} times less. Both run on the same cores; "
            f"the difference is that the matmul's data, once in registers and cache, is used {n} times.\n")


def latency_table() -> str:
    """Small-op latency, single call + synchronize against back to back, on each device."""
    rows = []
    found = sources(small_op_latency, hosts=True)
    for s in found:
        r = s.result
        label = s.cell()
        for op, what in (("add", "x + x, 1 element"), ("matmul2x2", "2x2 @ 2x2")):
            single, stream = r.data[f"{op}_single"], r.data[f"{op}_stream"]
            rows.append((label, what, fmt_time(single.median), f"{fmt_time(single.p25)}–{fmt_time(single.p75)}",
                         single.runs, fmt_time(stream.median), stream.runs))
    out = table(["Device", "Op", "One call + synchronize (median)", "IQR", "Runs", "Back to back, per call", "Runs"],
                rows, align="llrrrrr")
    out += caption("Single: each timed run is one call followed by a synchronize. Back to back: many calls, "
                   "one synchronize at the end, time divided by the calls.", found)
    return out + no_gpu_note(found, "GPU rows (where one call + synchronize costs a kernel launch and a round trip)")


def latency_findings() -> str:
    cpu = run(small_op_latency, device="cpu").data
    one, stream = cpu["matmul2x2_single"], cpu["matmul2x2_stream"]
    text = (f"On this build's CPU, a 2x2 matmul costs **{fmt_time(one.median)}** when you wait for each one, and "
            f"**{fmt_time(stream.median)}** per call back to back. Its 16 FLOP take a few nanoseconds; the rest is "
            f"the price of a call through Python and torch's dispatcher. ")
    found = pairs(small_op_latency)
    if not found:
        return text + ("A GPU adds to that a kernel launch and, when you wait for the result, a round trip to the "
                       "device: \"on the order of 10 µs\" per launch (Modal GPU glossary). This build has no GPU "
                       "to measure it on, and the archive holds no compatible record.\n")
    text += "\n"
    for p in found:
        g, c = p.gpu.result.data, p.cpu.result.data
        gs, cs = g["matmul2x2_single"].median, c["matmul2x2_single"].median
        text += (f"\n- On {p.gpu.label}, the same op costs **{fmt_time(gs)}** with a synchronize, "
                 + (f"**{gs / cs:.1f}x** as long as on {p.cpu.label} ({fmt_time(cs)})" if gs > cs else
                    f"less than on {p.cpu.label} ({fmt_time(cs)})")
                 + f", and **{fmt_time(g['matmul2x2_stream'].median)}** per call back to back, where launches "
                 "overlap with execution.")
    return text + "\n"


# --- one GPU lane and one SM beside one CPU core: vendor figures, for each GPU this page shows ---

@dataclass(frozen=True)
class OnChip:
    """On-chip storage and L1 bandwidth of one SM or one core, from vendor documents."""

    name: str
    registers_bytes: int  # architectural register file for data
    shared_bytes: int  # programmer-managed on-chip memory (0: none)
    l1_bytes: int  # L1 data cache (on a GPU, combined with shared memory)
    l1_bytes_per_clock: int  # bytes the L1 / shared memory delivers per cycle
    fp32_flop_per_clock: int
    source: str

    @property
    def bytes_per_flop(self) -> float:
        """Bytes the L1 can deliver per FP32 FLOP the unit can do."""
        return self.l1_bytes_per_clock / self.fp32_flop_per_clock


KIB, MIB = 1024, 1024**2


def _sm(arch: str, capability: str, l1_kib: int, shared_kib: int, fp32_lanes: int, paper: str) -> OnChip:
    return OnChip(f"{arch} SM", 65_536 * 4, shared_kib * KIB, l1_kib * KIB, 128, fp32_lanes * 2,
                  f"CUDA C++ Programming Guide (compute capability {capability}); {paper}")


# One SM, by CUDA compute capability. CUDA C++ Programming Guide, "Technical Specifications per Compute
# Capability": 65,536 32-bit registers per SM; the unified L1 / shared memory per SM and the most of it that
# can be shared memory; shared memory has 32 banks of 4 bytes per clock, so 128 bytes per clock per SM. FP32
# lanes per SM (one FMA, 2 FLOP, each per clock): the guide's "Arithmetic Instructions" throughput table and
# the architecture whitepapers. A GPU whose capability is not here is left out of the comparison.
SM_BY_CAPABILITY = {
    "8.0": _sm("Ampere GA100", "8.0", 192, 164, FP32_LANES_PER_SM["8.0"],
               "NVIDIA A100 Tensor Core GPU Architecture whitepaper"),
    "8.6": _sm("Ampere GA10x", "8.6", 128, 100, FP32_LANES_PER_SM["8.6"],
               "NVIDIA Ampere GA102 GPU Architecture whitepaper"),
    "8.9": _sm("Ada Lovelace", "8.9", 128, 100, FP32_LANES_PER_SM["8.9"],
               "NVIDIA Ada GPU Architecture whitepaper"),
    "9.0": _sm("Hopper", "9.0", 256, 228, FP32_LANES_PER_SM["9.0"],
               "NVIDIA H100 Tensor Core GPU Architecture whitepaper"),
}
H100_SM = SM_BY_CAPABILITY["9.0"]
# Intel 64 and IA-32 Architectures Optimization Reference Manual, Golden Cove / Sapphire Rapids server core:
# 48 KiB L1 data cache, two 64-byte loads per cycle, two 512-bit FMA units (2 x 16 lanes x 2 FLOP); AVX-512
# has 32 architectural 64-byte zmm registers.
XEON_CORE = OnChip("Xeon (Sapphire Rapids): one core", 32 * 64, 0, 48 * KIB, 2 * 64, 2 * 16 * 2,
                   "Intel 64 and IA-32 Architectures Optimization Reference Manual")
# An FMA reads two 4-byte operands (the accumulator stays in a register) for 2 FLOP.
FMA_BYTES_PER_FLOP = 8 / 2
# The GPU described when no GPU is shown (none in this build, none archived): an H100 SXM, with its SM count
# from gpucnn's datasheet table and its L2 as NVIDIA's H100 whitepaper gives it ("50 MB").
EXAMPLE_GPU = "H100 SXM"
EXAMPLE_L2_BYTES = 50 * 10**6


@dataclass(frozen=True)
class ShownGpu:
    """A GPU the on-chip comparison describes: SMs and L2 from its hardware report, per-SM figures cited."""

    label: str  # escaped: a sentence's name for it ("the H200 (this build)")
    cell: str  # escaped, with the source marker: a table's
    sms: int
    l2_bytes: int | None
    fp32: float | None  # datasheet FP32 peak, FLOP/s
    sm: OnChip
    source: Source | None  # whose hardware report gave sms and l2_bytes; None: the datasheet example

    @property
    def lanes(self) -> int:
        """FP32 lanes ("CUDA cores"): SMs x lanes per SM."""
        return self.sms * self.sm.fp32_flop_per_clock // 2

    @property
    def sm_bytes(self) -> int:
        """Registers and L1 / shared memory of all its SMs."""
        return (self.sm.registers_bytes + self.sm.l1_bytes) * self.sms

    @property
    def on_chip_bytes(self) -> int:
        """Registers, L1 / shared memory and L2: what the chip holds without going to its memory."""
        return self.sm_bytes + (self.l2_bytes or 0)

    @property
    def l2_text(self) -> str:
        if self.l2_bytes is None:
            return "an L2 of unknown size"
        if self.source is None:  # the whitepaper's decimal figure, and the same in MiB like every other size here
            return f"the {self.l2_bytes / 10**6:.0f} MB ({self.l2_bytes / MIB:,.1f} MiB) L2 of NVIDIA's whitepaper"
        return f"its {short_bytes(self.l2_bytes)} L2"


def shown_gpus() -> list[ShownGpu]:
    """This build's GPU and each archived one (one per model) whose SM is known; else the H100 SXM example."""
    out = []
    for s in accelerators(matmul_sweep):
        acc = s.hardware.accelerator
        sm = SM_BY_CAPABILITY.get(acc.capability or "") if acc and acc.backend == "CUDA" else None
        if acc is None or sm is None or not acc.multiprocessors:
            continue
        out.append(ShownGpu(f"the {one_line(s.label)}", s.cell(), acc.multiprocessors, acc.l2_bytes,
                            acc.peaks.fp32 if acc.peaks else None, sm, s))
    if out:
        return out
    row = gpu_model(EXAMPLE_GPU)
    return [ShownGpu(f"an {EXAMPLE_GPU} (datasheet)", f"{EXAMPLE_GPU} (datasheet)", row.units, EXAMPLE_L2_BYTES,
                     row.peaks.fp32, H100_SM, None)]


def _gpu_sources(gpus: Sequence[ShownGpu]) -> list[Source]:
    return [g.source for g in gpus if g.source is not None]


def _sm_counts(gpus: Sequence[ShownGpu]) -> str:
    """Where the SM counts came from, for a caption."""
    return "each GPU's hardware report" if _gpu_sources(gpus) else "gpucnn's datasheet table (no GPU is shown)"


def per_core_table() -> str:
    """Throughput of one CPU core (measured and estimated) against one FP32 lane of each GPU shown (datasheet)."""
    r = run(matmul_threads)
    one = next(m for m in r.data["points"] if m.threads == 1)
    hw = r.hardware
    cpu_core = hw.cpu.peak_fp32.value / (hw.cpu.usable_cores or hw.cpu.logical_cores) if hw.cpu.peak_fp32 else None
    rows = [
        (f"one core of this CPU ({one_line(hw.cpu.model)})", fmt(hw.cpu.max_clock_ghz) + " GHz (highest known)",
         f"{fmt(one.gflops)} (measured, 1-thread matmul n={one.shape[0]})",
         f"{fmt(cpu_core / 1e9)} (estimate)" if cpu_core else "no estimate for this CPU"),
    ]
    gpus = [g for g in shown_gpus() if g.fp32]
    for g in gpus:
        rows.append((f"one FP32 lane (\"CUDA core\") of {g.cell}",
                     f"{fmt(g.fp32 / g.lanes / 2 / 1e9)} GHz (boost clock the datasheet peak implies: 1 FMA per "
                     "cycle)", "–",
                     f"{fmt(g.fp32 / g.lanes / 1e9)} (datasheet {fmt(g.fp32 / 1e12)} TFLOP/s / {g.lanes:,} lanes)"))
    out = table(["", "Clock", "GFLOP/s measured", "GFLOP/s peak"], rows, align="llrr")
    papers = sorted({g.sm.source for g in gpus})
    # The estimate takes the highest clock the OS reports; a core that turbos above it beats the estimate.
    above = (f"This CPU's one core ran {fmt(one.gflops * 1e9 / cpu_core, 2)}x its estimate: the estimate assumes the "
             f"highest clock the system reports ({fmt(hw.cpu.max_clock_ghz)} GHz), and this core ran faster (a "
             "turbo clock the system does not report), so for this CPU the estimate is a floor, not a peak. "
             if cpu_core and one.gflops * 1e9 > cpu_core else "")
    out += caption(above + "A GPU lane is not faster than a CPU core: it is slower, and there are many thousands of them. "
                   f"GPU lanes = SMs (from {_sm_counts(gpus)}) x FP32 lanes per SM (" + "; ".join(papers) + "); peaks: gpucnn's datasheet table.",
                   [r, *_gpu_sources(gpus)])
    return out


def _size(b: int) -> str:
    return "none: caches only, managed by the hardware" if b == 0 else (
        f"{b / MIB:,.1f} MiB" if b >= MIB else f"{b / KIB:,.0f} KiB")


def onchip_table() -> str:
    """Registers, shared memory, L1 and L1 bandwidth per FLOP: one SM of each GPU shown (and all of its SMs)
    against a Xeon core."""
    gpus = shown_gpus()
    c = XEON_CORE
    # One column per SM design, and one per SM count of it: an H200 and an H100 share both.
    columns: dict[tuple[OnChip, int], list[ShownGpu]] = {}
    for g in gpus:
        columns.setdefault((g.sm, g.sms), []).append(g)
    sms = list(dict.fromkeys(g.sm for g in gpus))
    headers = ([""] + [f"{sm.name}: one" for sm in sms]
               + [f"{and_list([g.cell for g in group])}: all {n} SMs" for (_sm_, n), group in columns.items()]
               + [c.name])

    def row(name: str, one: Callable[[OnChip], str], total: Callable[[OnChip, int], str], cpu: str) -> list[str]:
        return [name] + [one(sm) for sm in sms] + [total(sm, n) for sm, n in columns] + [cpu]

    rows = [
        row("Registers (data)", lambda g: _size(g.registers_bytes), lambda g, n: _size(g.registers_bytes * n),
            _size(c.registers_bytes)),
        row("Programmer-managed memory", lambda g: f"up to {_size(g.shared_bytes)} shared memory",
            lambda g, n: _size(g.shared_bytes * n), _size(c.shared_bytes)),
        row("L1 data cache", lambda g: f"{_size(g.l1_bytes)} (with shared memory)", lambda g, n: _size(g.l1_bytes * n),
            _size(c.l1_bytes)),
        row("L1 / shared memory bytes per clock", lambda g: f"{g.l1_bytes_per_clock}",
            lambda g, n: f"{g.l1_bytes_per_clock * n:,}", f"{c.l1_bytes_per_clock}"),
        row("FP32 FLOP per clock", lambda g: f"{g.fp32_flop_per_clock}", lambda g, n: f"{g.fp32_flop_per_clock * n:,}",
            f"{c.fp32_flop_per_clock}"),
        row("L1 bytes per FP32 FLOP", lambda g: fmt(g.bytes_per_flop, 2), lambda g, n: fmt(g.bytes_per_flop, 2),
            fmt(c.bytes_per_flop, 2)),
    ]
    out = table(headers, rows, align="l" + "r" * (len(headers) - 1))
    out += caption(f"Vendor figures, not measured in this build; the SM counts come from {_sm_counts(gpus)}. "
                   + " ".join(f"{sm.name}: {sm.source}." for sm in sms) + " Xeon: " + c.source
                   + ". Bytes per FLOP = L1 bytes per clock / FP32 FLOP per clock.", _gpu_sources(gpus))
    return out


def onchip_findings() -> str:
    """What the on-chip table and this build's (and archived hosts') caches say, computed per GPU shown."""
    gpus = shown_gpus()
    text = "Added up, " + "; ".join(
        f"{g.label} holds about **{g.on_chip_bytes / MIB:,.0f} MiB** on chip: registers and L1 / shared memory of "
        f"its {g.sms} SMs ({g.sm_bytes / MIB:,.0f} MiB) and {g.l2_text}" for g in gpus) + "."
    hosts = {}
    for s in sources(copy_bandwidth, hosts=True):
        if s.is_cpu and s.hardware.cpu.llc_bytes:
            hosts[one_line("this build's CPU" if not s.archived else s.label)] = s.hardware.cpu.llc_bytes
    biggest = max(g.on_chip_bytes for g in gpus)
    bigger = {k: v for k, v in hosts.items() if v >= biggest}
    if hosts:
        text += " The last-level cache the operating system reports: " + "; ".join(
            f"{k}, {v / MIB:,.0f} MiB" for k, v in hosts.items()) + "."
    if bigger:
        text += (" So the GPU's advantage is **not more on-chip memory in total**: a server CPU's last-level "
                 "cache (shared by all the cores of its socket, and in a cloud VM with other tenants) can hold "
                 "more.")
    first = gpus[0]
    g, c = first.sm, XEON_CORE
    text += (f" The differences are elsewhere. Each {g.name} has a {g.registers_bytes // KIB} KiB register file and "
             f"up to {g.shared_bytes // KIB} KiB of shared memory that the kernel itself fills and reads, where a CPU "
             f"core has {c.registers_bytes // KIB} KiB of vector registers and caches it does not control. And the "
             f"GPU has far more on-chip bandwidth in all ({g.l1_bytes_per_clock * first.sms:,} bytes per clock "
             f"across the {first.sms} SMs of {first.label}) but **less per FLOP**: {fmt(g.bytes_per_flop, 2)} byte "
             f"per FP32 FLOP from L1 against {fmt(c.bytes_per_flop, 2)} on the Xeon core. An FMA needs "
             f"{fmt(FMA_BYTES_PER_FLOP, 2)} bytes of operands per FLOP, so on the GPU each value loaded from shared "
             f"memory must be reused from registers at least {fmt(FMA_BYTES_PER_FLOP / g.bytes_per_flop, 2)} times "
             f"({fmt(FMA_BYTES_PER_FLOP / c.bytes_per_flop, 2)} on the CPU core). That is why GPU kernels tile: a "
             "block of threads copies a tile of each input into shared memory, and each thread keeps a small block "
             "of the output in registers.\n")
    return text


# --- reuse measured directly: a tiled matmul against a broadcast multiply and sum ---

def reuse_ratio_table() -> str:
    """Per device and n: the same product as a tiled matmul and as a broadcast (no reuse), and their ratio."""
    found = sources(reuse_ratio)
    rows = []
    for s in found:
        broadcast = {m.shape[0]: m for m in s.result.data["broadcast"].points}
        for m in s.result.data["matmul"].points:
            b = broadcast.get(m.shape[0])
            if b is None:
                continue
            rows.append((s.cell(), f"{m.shape[0]:,}", fmt_time(m.median), fmt_time(b.median),
                         f"**{fmt(b.median / m.median)}x**", fmt(m.gflops), fmt(b.gflops)))
    out = table(["Device", "n", "A @ B (tiled)", "Broadcast and sum (no reuse)", "Ratio",
                 "A @ B GFLOP/s", "Broadcast GFLOP/s"], rows, align="lrrrrrr")
    # A record made before this experiment existed has no rows: say so, rather than let a GPU vanish.
    shown = {s.origin for s in found}
    older = [s for s in sources(matmul_sweep) if not s.is_cpu and s.origin not in shown]
    out += caption("The same n x n x n product, 2n^3 FLOP, fp32, computed two ways: torch's matmul (a tiled BLAS "
                   "or cuBLAS kernel), and (A[:, :, None] * B[None, :, :]).sum(1), which writes all n^3 products "
                   "to memory and reads them back. Ratio: broadcast median time / matmul median time."
                   + (" No rows for " + and_list([s.label for s in older])
                      + (": that record predates" if len(older) == 1 else ": those records predate")
                      + " this experiment." if older else ""), found)
    return out + no_gpu_note(found, "GPU rows of this table")


# At or above this fraction of the same device's copy bandwidth, the broadcast's time is its traffic.
BROADCAST_NEAR_COPY = 0.75


def reuse_ratio_findings() -> str:
    """The largest n of each device: how many times the tiled matmul beat the no-reuse version, and whether the
    broadcast's time is its traffic (its GB/s against the same device's copy far beyond the caches)."""
    text = ""
    for s in sources(reuse_ratio):
        m_pts, b_pts = s.result.data["matmul"].points, s.result.data["broadcast"].points
        common = sorted({m.shape[0] for m in m_pts} & {b.shape[0] for b in b_pts})
        if not common:
            continue
        n = common[-1]
        m = next(p for p in m_pts if p.shape[0] == n)
        b = next(p for p in b_pts if p.shape[0] == n)
        text += (f"On {s.label}, at n = {n}, the tiled matmul was **{fmt(b.median / m.median)}x** faster than "
                 f"the same arithmetic without reuse, which moved {fmt(b.bytes_moved / 1e6)} MB of products "
                 f"through memory for {fmt(m.flops / 1e6)} MFLOP: **{fmt(b.gbps)} GB/s**")
        cp = sibling(s, copy_bandwidth)
        copy = dram_point(cp.result) if cp is not None else None
        if copy is None or not copy.gbps or not b.gbps:
            text += ".\n\n"
            continue
        text += f", against {fmt(copy.gbps)} GB/s for a plain copy far beyond the caches on the same device. "
        if b.gbps >= BROADCAST_NEAR_COPY * copy.gbps:
            text += ("The broadcast runs near the copy's speed: its time is that traffic, and the ratio is what "
                     "giving up reuse costs here.\n\n")
        else:
            share = b.gbps / copy.gbps
            ratio = b.median / m.median
            text += (f"The broadcast moved its bytes at {fmt(100 * share, 2)} % of the copy's rate: at the copy's "
                     f"speed, its traffic would take about {fmt(100 * share, 2)} % of its time, and traffic alone "
                     f"would make the ratio about {fmt(share * ratio)}x, not {fmt(ratio)}x. The rest is other work: "
                     "each call makes a fresh n^3 temporary for the products and sums it across a strided axis (the "
                     "middle one), so the ratio overstates what reuse alone buys.\n\n")
    return text
