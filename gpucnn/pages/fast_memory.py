"""Page "Advantage 3: fast memory access": the facts behind docs/fast-memory.md.

Per-core speed and on-chip memory (vendor figures), data reuse measured (matmul against elementwise ops, and the
same product with and without reuse), small-op latency, and a hierarchical roofline of this build's measured ops.
Functions return facts (frozen dataclasses) or draw a chart or table; the page's sentences are in the Markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from matplotlib.ticker import FuncFormatter, NullLocator

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
    MARKERS,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    new_figure,
    outside_legend,
    source_colour,
    style_context,
    table,
)
from gpucnn.results import run
from gpucnn.sources import Source, accelerators, and_list, note, one_line, pairs, sibling, sources

# render.py turns this colour into currentColor: the roof follows light and dark mode.
INK = "#010203"
# Modal GPU glossary, "perf/overhead": kernel launch overhead is "on the order of 10 us" (quoted on the page).
MODAL_LAUNCH_S = 10e-6
KIB, MIB = 1024, 1024**2
# The matmul size the reuse table compares (or the largest below it that a sweep reached).
HEADLINE_N = HEADLINE_MATMUL_N


# --- the roofline's arithmetic ---

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


# render.figure_html gives the SVG group with this gid its data-source (render.mark_sources).
SERIES_GID = "gpucnn-series-"

# How a memory roof was found (short legend words; the page says what each means).
DATASHEET = "datasheet"
MEASURED_COPY = "measured copy"  # the copy far beyond the caches: a device with no datasheet bandwidth
LAUNCH_FREE = "launch-free copy"  # a GPU's L2: many copies per call, launch cost removed (a floor)
PER_CALL = "one copy per call"  # a GPU's L2 from the plain copy sweep: the launch is in the time (a lower bound)
COPY_SWEEP = "copy sweep"  # a CPU's caches: the copy sweep's best point inside the last-level cache


@dataclass(frozen=True)
class Roof:
    """A memory roof (GB/s: a slanted line) or a compute ceiling (GFLOP/s: a flat one), and how it was found.

    ``name``: "DRAM", "HBM", "GDDR", "device memory", "L2" or "cache" for a roof; "FP32", "TF32" or "bf16" for a
    ceiling. ``how``: one of the constants above for a roof, ``DATASHEET`` or "estimate" for a ceiling.
    ``cite``: the datasheet a figure comes from, where one does.
    """

    name: str
    value: float
    how: str
    cite: str | None = None

    @property
    def is_ceiling(self) -> bool:
        return self.name in ("FP32", "TF32", "bf16")

    @property
    def lower_bound(self) -> bool:
        """An L2 roof measured with the launch in every call's time: the L2 is at least this fast."""
        return self.how == PER_CALL

    @property
    def label(self) -> str:
        """The legend entry or axis label."""
        if self.is_ceiling:
            return f"{self.name} peak" + (" (est.)" if self.how == "estimate" else "")
        return f"{self.name} roof {fmt(self.value)} GB/s ({self.how})"


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
        return [Roof(name, p.value / 1e9, "estimate") for name, p in pairs_ if p]
    peaks = hw.accelerator.peaks if hw.accelerator else None
    if peaks is None:
        return []
    return [Roof(name, v / 1e9, DATASHEET, peaks.source)
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


def roof_memories(found: Sequence[Source]) -> list[str]:
    """The names of the lowest memory roofs of ``found``, each once, in order (["DRAM", "HBM"])."""
    return list(dict.fromkeys(roof_memory(s) for s in found))


def dram_roof(src: Source, copy: Source | None) -> Roof | None:
    """The DRAM/device-memory roof: an accelerator's datasheet bandwidth; else (a CPU: no datasheet) the copy
    sweep's point far beyond the caches.

    Never the fastest of copy, add and relu: add and relu are points on the chart, and a roof drawn at one of
    them would put it at 100 % of the roofline by definition, as a compute ceiling drawn at the best matmul
    would.
    """
    peaks = hbm_datasheet(src)
    if peaks is not None:
        return Roof(roof_memory(src), peaks.bandwidth / 1e9, DATASHEET, " ".join(peaks.source.split()))
    d = dram_point(copy.result) if copy is not None else None
    if d is None or not d.gbps:
        return None
    return Roof(roof_memory(src), d.gbps, MEASURED_COPY)


def memory_roofs(src: Source) -> list[Roof]:
    """The DRAM/device-memory roof (``dram_roof``) and, above it, the L2/LLC roof where one was measured.

    The cache roof is an accelerator's best launch-free copy inside its L2 (``l2_copy_bandwidth``), else the
    copy sweep's best point whose source and destination fit in the last-level cache; it is left out when it
    is no faster than the DRAM roof (on a GPU, one copy per call measures the launch there, not the L2).
    """
    cp = sibling(src, copy_bandwidth)
    if cp is None:
        return []
    dram = dram_roof(src, cp)
    if dram is None:
        return []
    roofs = [dram]
    copy = cp.result.typed
    cache = copy.cache_bytes
    l2 = sibling(src, l2_copy_bandwidth) if not src.is_cpu else None
    inside: list[Measurement] = []
    how = COPY_SWEEP if src.is_cpu else PER_CALL
    if l2 is not None:
        inside = [m for m in l2.result.typed.sweep.points if cache and 2 * m.shape[0] <= cache]
        how = LAUNCH_FREE
    if not inside:
        inside = [m for m in copy.sweep.points if cache and 2 * m.shape[0] <= cache]
        how = COPY_SWEEP if src.is_cpu else PER_CALL
    best = max(inside, key=lambda m: m.gbps or 0, default=None)
    if best is not None and best.gbps and best.gbps > dram.value:
        # On a CPU the fastest such copy may sit in L1 or L2: the roof is the caches', not the LLC's alone.
        roofs.append(Roof("cache" if src.is_cpu else "L2", best.gbps, how))
    return roofs


def _precision_sibling(src: Source) -> Source | None:
    """The bf16 matmul sweep of the same device and origin, where one is measured (live) or recorded."""
    if not src.archived and "bfloat16" not in precisions_for(src.device, src.hardware):
        return None
    return sibling(src, precision_matmul_sweep, precision="bfloat16")


def _span(first: int, last: int) -> str:
    return f"{first:,}" + (f" … {last:,}" if last != first else "")


def roofline_groups(src: Source) -> list[tuple[str, list[RooflinePoint]]]:
    """The measured points of one device: fp32 and bf16 matmuls, the CNN's conv layers, add and relu."""
    groups: list[tuple[str, list[RooflinePoint]]] = []
    mm = src.result.typed.sweep.points
    if mm:
        groups.append((f"fp32 matmul, n = {_span(mm[0].shape[0], mm[-1].shape[0])}",
                       roofline_points([(f"n={m.shape[0]}", m) for m in mm])))
    bf = _precision_sibling(src)
    pts = bf.result.typed.sweep.points if bf is not None else ()
    if pts:
        groups.append((f"bf16 matmul, n = {_span(pts[0].shape[0], pts[-1].shape[0])}",
                       roofline_points([(f"n={m.shape[0]}", m) for m in pts])))
    conv = sibling(src, conv_channel_sweep)
    d = conv.result.typed if conv is not None else None
    if d is not None and d.sweep.points:
        layers = [(f"C={m.shape[1]}", replace(m, bytes_moved=conv_min_bytes(d.batch, m.shape[1], d.image, d.kernel)))
                  for m in d.sweep.points]
        groups.append((f"conv2d fwd+bwd, C = {_span(d.sweep.points[0].shape[1], d.sweep.points[-1].shape[1])}",
                       roofline_points(layers)))
    ew = sibling(src, elementwise_bandwidth)
    if ew is not None:
        groups += [("add (x + y)", roofline_points([("add", ew.result.typed.add)])),
                   ("relu", roofline_points([("relu", ew.result.typed.relu)]))]
    return [(label, pts) for label, pts in groups if pts]


# A ceiling label is about this many points tall (10 pt text): closer ceilings share one label.
LABEL_PT = 13.0


def ceiling_ticks(ceilings: Sequence[Roof], y_low: float, y_high: float, axes_pt: float) -> list[tuple[float, str]]:
    """Right-axis ticks labelling the flat ceilings, none on top of another.

    Ceilings closer on the (log) y axis than one label's height share a tick: equal ones one line ("FP32 =
    bf16 peak (est.)"), near ones one line each, highest first, at their geometric mean.
    """
    import math

    per_pt = math.log(y_high / y_low) / axes_pt  # log units per point of height
    groups: list[list[Roof]] = []
    for c in sorted(ceilings, key=lambda c: c.value):
        prev = groups[-1][-1] if groups else None
        if prev is not None and math.log(c.value / prev.value) < LABEL_PT * per_pt * len(groups[-1]):
            groups[-1].append(c)
        else:
            groups.append([c])
    ticks = []
    for g in groups:
        at = math.exp(sum(math.log(c.value) for c in g) / len(g))
        if all(math.isclose(c.value, g[0].value, rel_tol=1e-3) for c in g):
            label = " = ".join(c.name for c in g) + g[0].label[len(g[0].name):]
        else:
            label = "\n".join(c.label for c in reversed(g))
        ticks.append((at, label))
    return ticks


def log_tick(value: float, _pos: object = None) -> str:
    """A log axis' tick as a plain number: 0.01, 1, 1,000, 1,000,000."""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def roofline_sources() -> list[Source]:
    """The devices that get a roofline: this build's, then archived accelerators, each with a memory roof."""
    return [s for s in sources(matmul_sweep) if memory_roofs(s)]


def roofline_chart(src: Source) -> str:
    """One device's hierarchical roofline (memory roofs, compute ceilings, measured ops), with its figures in a
    collapsed table. No caption: the page writes it."""
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
    colour = source_colour(src.origin)
    with style_context():
        fig, ax = new_figure(7.0, 5.6)
        for i, r in enumerate(roofs):
            # Solid: a dash means "archived" site-wide. The cache roof is the thinner, fainter line.
            ax.plot(xs, [min(r.value * x, top) for x in xs], color=INK, linestyle="-", linewidth=1.8 - 0.8 * i,
                    alpha=1.0 - 0.45 * i, label=chart_text(r.label))
        fast = max(r.value for r in roofs)
        for c in ceilings:
            start = c.value / fast  # a ceiling starts where it meets the fastest memory roof
            ax.plot([start, hi_x], [c.value, c.value], color=INK, linestyle=":", linewidth=1.2)
        for i, (name, group) in enumerate(groups):
            # Colour is the source (site-wide); the marker tells the ops apart; hollow marks an archived record.
            style = {"fmt": MARKERS[i % len(MARKERS)], "color": colour, "markersize": 6}
            if src.archived:
                style["markerfacecolor"] = "none"
            eb = ax.errorbar([p.intensity for p in group], [p.gflops for p in group],
                             yerr=[[p.gflops - p.low for p in group], [p.high - p.gflops for p in group]],
                             capsize=2, linestyle="none", label=chart_text(name), **style)
            eb[0].set_gid(f"{SERIES_GID}{i}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo_x, hi_x)
        y_low, y_high = min(p.low for p in pts) / 2, top * 2
        ax.set_ylim(y_low, y_high)
        ax.set_xlabel("arithmetic intensity (FLOP per byte, least traffic)")
        ax.set_ylabel("achieved GFLOP/s")
        ax.set_title(f"Roofline: {label}")
        ax.grid(True, which="major")
        if ceilings:
            # Ceilings are labelled on the right-hand axis, like tick labels: never on the data.
            axes_pt = ax.get_position().height * fig.get_figheight() * 72
            right = ax.secondary_yaxis("right")
            ticks = ceiling_ticks(ceilings, y_low, y_high, axes_pt)
            right.set_ticks([v for v, _ in ticks], [t for _, t in ticks])
            right.yaxis.set_minor_locator(NullLocator())
            right.tick_params(length=0, labelsize=10)
        # Plain numbers, not 10^k: a superscript is drawn at 70 % of the label's size, under 10 px.
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(log_tick))
        ax.tick_params(labelsize=10)
        outside_legend(ax)
    runs = sorted({p.runs for p in pts})
    chart = figure_html(
        fig, title=f"Hierarchical roofline of the measured ops on {label}",
        desc=(f"Log-log roofline. Roofs: {'; '.join(r.label for r in roofs)}. Ceilings: "
              + ("; ".join(f"{c.label} {fmt(c.value)} GFLOP/s" for c in ceilings) or "none") + ". "
              + " ".join(f"{name}: " + ", ".join(f"{p.label} {fmt(p.intensity)}, {fmt(p.gflops)}" for p in group)
                         + "." for name, group in groups)),
        caption_text="", results=[src, *_siblings(src)], sources=[src.origin] * len(groups),
    )
    rows = [(src.cell(), one_line(name), one_line(p.label), fmt(p.intensity), f"{fmt(p.gflops)} ({fmt(p.low)}–"
             f"{fmt(p.high)})") for name, group in groups for p in group]
    body = html_table(["Device", "Op", "Point", "FLOP per byte", "GFLOP/s: median (IQR)"], rows, align="lllrr")
    lines = [r.label for r in roofs] + [f"{c.label} {fmt(c.value)} GFLOP/s" for c in ceilings]
    return chart + figures_table(chart, body, f"Lines: {'; '.join(lines)}. Timed runs: {runs[0]}–{runs[-1]}.")


def _siblings(src: Source) -> list[Source]:
    """The other results one device's roofline stands on, for the section's sources line."""
    found = [sibling(src, fn) for fn in (copy_bandwidth, elementwise_bandwidth, conv_channel_sweep)]
    found += [sibling(src, l2_copy_bandwidth) if not src.is_cpu else None, _precision_sibling(src)]
    return [s for s in found if s is not None]


@dataclass(frozen=True)
class RoofSet:
    """One roofline's roofs and ceilings, for the page's method note."""

    source: Source
    roofs: tuple[Roof, ...]  # DRAM/device memory first, then the L2 or caches where drawn
    ceilings: tuple[Roof, ...]

    @property
    def dram(self) -> Roof:
        return self.roofs[0]

    @property
    def cache(self) -> Roof | None:
        return self.roofs[1] if len(self.roofs) > 1 else None


def roof_sets() -> list[RoofSet]:
    """What draws each roof and ceiling, per device a roofline shows."""
    out = [RoofSet(s, tuple(memory_roofs(s)), tuple(compute_ceilings(s))) for s in roofline_sources()]
    note([r.source for r in out])
    return out


def own_ceiling(group: str, ceilings: Sequence[Roof]) -> Roof | None:
    """The compute ceiling of a roofline group's precision: bf16 for the bf16 matmuls, FP32 for the rest
    (fp32 matmuls and conv layers run with TF32 off; add and relu are fp32)."""
    want = "bf16" if group.startswith("bf16") else "FP32"
    return next((c for c in ceilings if c.name == want), None)


# Below this fraction of its memory roof, an elementwise op's time is more than its traffic.
STREAM_NEAR_ROOF = 0.5


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

    @property
    def is_stream(self) -> bool:
        return self.best.label in ("add", "relu")

    @property
    def below_half(self) -> bool:
        """A stream at less than half its memory roof: its time is more than its traffic."""
        return self.pct_of_roofline < 100 * STREAM_NEAR_ROOF

    @property
    def above_roof(self) -> bool:
        """A stream faster than its memory roof (on a CPU: the copy that sets it)."""
        return self.pct_of_roofline > 100


def roofline_bests() -> list[GroupBest]:
    """For each device the rooflines show and each group of points on it: the fastest point and its ceiling."""
    out = []
    for src in roofline_sources():
        roofs = memory_roofs(src)
        ceilings = compute_ceilings(src)
        for name, group in roofline_groups(src):
            ceiling = own_ceiling(name, ceilings)
            if ceiling is not None and group:
                out.append(GroupBest(src, name, max(group, key=lambda p: p.gflops), ceiling, roofs[0]))
    note([b.source for b in out])
    return out


@dataclass(frozen=True)
class DeviceStreams:
    """add and relu on one device, against its lowest memory roof."""

    source: Source
    streams: tuple[GroupBest, ...]

    @property
    def roof(self) -> Roof:
        return self.streams[0].dram

    @property
    def below_half(self) -> tuple[GroupBest, ...]:
        return tuple(b for b in self.streams if b.below_half)

    @property
    def above_roof(self) -> tuple[GroupBest, ...]:
        return tuple(b for b in self.streams if b.above_roof)


def stream_devices() -> list[DeviceStreams]:
    """Per device a roofline shows: where add and relu sit against its DRAM/device-memory roof."""
    by_device: dict[str, list[GroupBest]] = {}
    for b in roofline_bests():
        if b.is_stream:
            by_device.setdefault(b.source.origin + b.source.device, []).append(b)
    return [DeviceStreams(g[0].source, tuple(g)) for g in by_device.values()]


def roofline_table() -> str:
    """How close each group of points came to its own ceiling, per device (the page writes the caption)."""
    rows = [(b.source.cell(), one_line(b.group), one_line(b.best.label), fmt(b.best.gflops),
             f"{one_line(b.ceiling.label)}: {fmt(b.ceiling.value)}", f"**{fmt(b.pct, 2)} %**",
             f"{fmt(b.pct_of_roofline, 2)} %") for b in roofline_bests()]
    return table(["Device", "Points", "Fastest point", "GFLOP/s (median)", "Its ceiling, GFLOP/s", "% of ceiling",
                  "% of roofline"], rows, align="lllrrrr") if rows else ""


# --- data reuse: matmul against add and relu, on the same device ---

@dataclass(frozen=True)
class ReuseGap:
    """One device's matmul (each element reused n times) against its add (used once)."""

    source: Source
    n: int
    matmul_gflops: float
    add_gflops: float

    @property
    def ratio(self) -> float:
        return self.matmul_gflops / self.add_gflops


def reuse_gaps() -> list[ReuseGap]:
    """Per device of the reuse table (this build's CPU first, archived GPUs and their hosts): the matmul at the
    headline size (or the largest below it) over add."""
    out = []
    for src in sources(matmul_sweep, hosts=True):
        ew = sibling(src, elementwise_bandwidth)
        m = matmul_at(src.result)
        if ew is None or m is None or not ew.result.typed.add.gflops:
            continue
        note([src, ew])
        out.append(ReuseGap(src, m.shape[0], m.gflops, ew.result.typed.add.gflops))
    return out


def reuse_table() -> str:
    """Matmul (reuse) against add and relu (no reuse) on the same device."""
    rows = []
    for src in sources(matmul_sweep, hosts=True):
        ew_src = sibling(src, elementwise_bandwidth)
        if ew_src is None:
            continue
        note([src, ew_src])
        m, ew = matmul_at(src.result), ew_src.result.typed
        label = src.cell()
        for name, x, uses in ((f"matmul n={m.shape[0] if m else '–'}", m, f"{m.shape[0]:,}" if m else "–"),
                              ("add", ew.add, "1"), ("relu", ew.relu, "1")):
            if x is None:  # the sweep stopped before any size up to the headline's
                rows.append((label, name, "–", "–", "–", "–"))
                continue
            rows.append((label, name, uses, fmt(x.flops / x.bytes_moved), fmt(x.gflops),
                         f"{fmt(x.gflops / ew.add.gflops)}x" if ew.add.gflops else "–"))
    return table(["Device", "Op", "Uses of each element", "FLOP per byte", "GFLOP/s (median)", "Against add"], rows,
                 align="lllrrr")


# --- reuse measured directly: a tiled matmul against a broadcast multiply and sum ---

# At or above this fraction of the same device's copy bandwidth, the broadcast's time is its traffic.
BROADCAST_NEAR_COPY = 0.75


@dataclass(frozen=True)
class Broadcast:
    """The largest n of one device: the tiled matmul against the same product without reuse, and the broadcast's
    GB/s against the same device's copy far beyond the caches (None: no copy recorded)."""

    source: Source
    n: int
    matmul_s: float
    broadcast_s: float
    broadcast_bytes: float
    flops: float
    broadcast_gbps: float | None
    copy_gbps: float | None

    @property
    def ratio(self) -> float:
        return self.broadcast_s / self.matmul_s

    @property
    def share(self) -> float | None:
        """The broadcast's GB/s over the copy's."""
        return self.broadcast_gbps / self.copy_gbps if self.broadcast_gbps and self.copy_gbps else None

    @property
    def near_copy(self) -> bool | None:
        """Whether the broadcast ran near the copy's speed (its time is its traffic); None without a copy."""
        return None if self.share is None else self.share >= BROADCAST_NEAR_COPY

    @property
    def traffic_ratio(self) -> float | None:
        """The ratio if the broadcast's time were its traffic alone, at the copy's speed."""
        return None if self.share is None else self.share * self.ratio


def broadcasts() -> list[Broadcast]:
    """Per device with the reuse experiment: its largest n measured both ways."""
    out = []
    for s in sources(reuse_ratio):
        d = s.result.typed
        m_by_n = {m.shape[0]: m for m in d.matmul.points}
        b_by_n = {b.shape[0]: b for b in d.broadcast.points}
        common = sorted(set(m_by_n) & set(b_by_n))
        if not common:
            continue
        m, b = m_by_n[common[-1]], b_by_n[common[-1]]
        cp = sibling(s, copy_bandwidth)
        copy = dram_point(cp.result) if cp is not None else None
        note([s] + ([cp] if cp is not None else []))
        out.append(Broadcast(s, common[-1], m.median, b.median, b.bytes_moved, m.flops, b.gbps,
                             copy.gbps if copy is not None else None))
    return out


def reuse_ratio_table() -> str:
    """Per device and n: the same product as a tiled matmul and as a broadcast (no reuse), and their ratio."""
    found = sources(reuse_ratio)
    note(found)
    rows = []
    for s in found:
        d = s.result.typed
        broadcast = {m.shape[0]: m for m in d.broadcast.points}
        for m in d.matmul.points:
            b = broadcast.get(m.shape[0])
            if b is not None:
                rows.append((s.cell(), f"{m.shape[0]:,}", fmt_time(m.median), fmt_time(b.median),
                             f"**{fmt(b.median / m.median)}x**", fmt(m.gflops), fmt(b.gflops)))
    return table(["Device", "n", "A @ B (tiled)", "Broadcast and sum", "Ratio", "A @ B GFLOP/s", "Broadcast GFLOP/s"],
                 rows, align="lrrrrrr")


def broadcast_table() -> str:
    """The largest n of each device: ratio, the broadcast's GB/s against the copy's, and the ratio traffic alone
    would give."""
    rows = [(b.source.cell(), f"{b.n:,}", f"**{fmt(b.ratio)}x**", fmt(b.broadcast_bytes / 1e6),
             fmt(b.broadcast_gbps) if b.broadcast_gbps else "–", fmt(b.copy_gbps) if b.copy_gbps else "–",
             f"{fmt(100 * b.share, 2)} %" if b.share is not None else "–",
             f"{fmt(b.traffic_ratio)}x" if b.traffic_ratio is not None else "–") for b in broadcasts()]
    return table(["Device", "n", "Ratio", "Products written, MB", "Broadcast GB/s", "Copy GB/s", "Of copy rate",
                  "Ratio from traffic alone"], rows, align="lrrrrrrr")


def reuse_missing() -> list[Source]:
    """GPU records shown elsewhere on the page that predate the reuse experiment (no rows for them)."""
    shown = {s.origin for s in sources(reuse_ratio)}
    return [s for s in sources(matmul_sweep) if not s.is_cpu and s.origin not in shown]


# --- small-op latency ---

@dataclass(frozen=True)
class LatencyPair:
    """A GPU's 2x2 matmul against its own host CPU's."""

    gpu: Source
    cpu: Source
    gpu_single_s: float
    cpu_single_s: float
    gpu_stream_s: float

    @property
    def ratio(self) -> float:
        return self.gpu_single_s / self.cpu_single_s


@dataclass(frozen=True)
class Latency:
    """This build's CPU's 2x2 matmul (one call + synchronize, and back to back), and each GPU beside its host."""

    cpu_single_s: float
    cpu_stream_s: float
    pairs: tuple[LatencyPair, ...]
    launch_s: float = MODAL_LAUNCH_S  # Modal GPU glossary, quoted on the page


def latency() -> Latency:
    r = run(small_op_latency, device="cpu")
    cpu = r.typed
    out = []
    for p in pairs(small_op_latency):
        g, c = p.gpu.result.typed, p.cpu.result.typed
        note([p.gpu, p.cpu])
        out.append(LatencyPair(p.gpu, p.cpu, g.matmul2x2_single.median, c.matmul2x2_single.median,
                               g.matmul2x2_stream.median))
    note(r)
    return Latency(cpu.matmul2x2_single.median, cpu.matmul2x2_stream.median, tuple(out))


def latency_table() -> str:
    """Small-op latency, single call + synchronize against back to back, on each device."""
    rows = []
    found = sources(small_op_latency, hosts=True)
    note(found)
    for s in found:
        d = s.result.typed
        for single, stream, what in ((d.add_single, d.add_stream, "x + x, 1 element"),
                                     (d.matmul2x2_single, d.matmul2x2_stream, "2x2 @ 2x2")):
            rows.append((s.cell(), what, fmt_time(single.median), f"{fmt_time(single.p25)}–{fmt_time(single.p75)}",
                         single.runs, fmt_time(stream.median), stream.runs))
    return table(["Device", "Op", "One call + synchronize (median)", "IQR", "Runs", "Back to back, per call", "Runs"],
                 rows, align="llrrrrr")


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

    label: str  # plain text; a template escapes it
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
    def lane_clock_ghz(self) -> float | None:
        """The boost clock the datasheet FP32 peak implies: one FMA (2 FLOP) per lane per cycle."""
        return self.fp32 / self.lanes / 2 / 1e9 if self.fp32 else None

    @property
    def lane_gflops(self) -> float | None:
        return self.fp32 / self.lanes / 1e9 if self.fp32 else None


def shown_gpus() -> list[ShownGpu]:
    """This build's GPU and each archived one (one per model) whose SM is known; else the H100 SXM example."""
    out = []
    for s in accelerators(matmul_sweep):
        acc = s.hardware.accelerator
        sm = SM_BY_CAPABILITY.get(acc.capability or "") if acc and acc.backend == "CUDA" else None
        if acc is None or sm is None or not acc.multiprocessors:
            continue
        out.append(ShownGpu(s.label, s.cell(), acc.multiprocessors, acc.l2_bytes,
                            acc.peaks.fp32 if acc.peaks else None, sm, s))
    if out:
        note([g.source for g in out])
        return out
    row = gpu_model(EXAMPLE_GPU)
    return [ShownGpu(f"{EXAMPLE_GPU} (datasheet)", f"{EXAMPLE_GPU} (datasheet)", row.units, EXAMPLE_L2_BYTES,
                     row.peaks.fp32, H100_SM, None)]


@dataclass(frozen=True)
class PerCore:
    """One core of this build's CPU (measured, and its estimate) beside one FP32 lane of each GPU shown."""

    cpu_model: str
    clock_ghz: float | None  # the highest clock the system reports
    n: int  # the 1-thread matmul's size
    one_thread_gflops: float
    core_peak_gflops: float | None  # the hardware report's estimate over its cores
    gpus: tuple[ShownGpu, ...]

    @property
    def over_estimate(self) -> float | None:
        """The 1-thread matmul over the core's estimate; above 1: the core ran above the clock reported."""
        return self.one_thread_gflops / self.core_peak_gflops if self.core_peak_gflops else None

    @property
    def sm_sources(self) -> list[str]:
        return sorted({g.sm.source for g in self.gpus})

    @property
    def from_reports(self) -> bool:
        """Whether the SM counts come from GPUs' hardware reports (else gpucnn's datasheet table)."""
        return any(g.source is not None for g in self.gpus)


def per_core() -> PerCore:
    r = run(matmul_threads)
    one = next(m for m in r.typed.points if m.threads == 1)
    cpu = r.hardware.cpu
    core = cpu.peak_fp32.value / (cpu.usable_cores or cpu.logical_cores) / 1e9 if cpu.peak_fp32 else None
    note(r)
    return PerCore(cpu.model, cpu.max_clock_ghz, one.shape[0], one.gflops, core,
                   tuple(g for g in shown_gpus() if g.fp32))


def per_core_table() -> str:
    """Throughput of one CPU core (measured and estimated) against one FP32 lane of each GPU shown (datasheet)."""
    f = per_core()
    rows = [(f"one core of this CPU ({one_line(f.cpu_model)})", f"{fmt(f.clock_ghz)} GHz" if f.clock_ghz else "–",
             f"{fmt(f.one_thread_gflops)} (1 thread, n={f.n})",
             f"{fmt(f.core_peak_gflops)} (est.)" if f.core_peak_gflops else "–")]
    rows += [(f"one FP32 lane of {g.cell}", f"{fmt(g.lane_clock_ghz)} GHz (implied)", "–",
              f"{fmt(g.lane_gflops)} ({g.lanes:,} lanes)") for g in f.gpus]
    return table(["", "Clock", "GFLOP/s measured", "GFLOP/s peak"], rows, align="llrr")


def _size(b: int) -> str:
    return "none" if b == 0 else (f"{b / MIB:,.1f} MiB" if b >= MIB else f"{b / KIB:,.0f} KiB")


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
        row("Shared memory", lambda g: f"up to {_size(g.shared_bytes)}", lambda g, n: _size(g.shared_bytes * n),
            _size(c.shared_bytes)),
        row("L1 data cache", lambda g: f"{_size(g.l1_bytes)} (with shared)", lambda g, n: _size(g.l1_bytes * n),
            _size(c.l1_bytes)),
        row("L1 / shared bytes per clock", lambda g: f"{g.l1_bytes_per_clock}",
            lambda g, n: f"{g.l1_bytes_per_clock * n:,}", f"{c.l1_bytes_per_clock}"),
        row("FP32 FLOP per clock", lambda g: f"{g.fp32_flop_per_clock}", lambda g, n: f"{g.fp32_flop_per_clock * n:,}",
            f"{c.fp32_flop_per_clock}"),
        row("L1 bytes per FP32 FLOP", lambda g: fmt(g.bytes_per_flop, 2), lambda g, n: fmt(g.bytes_per_flop, 2),
            fmt(c.bytes_per_flop, 2)),
    ]
    return table(headers, rows, align="l" + "r" * (len(headers) - 1))


@dataclass(frozen=True)
class HostCache:
    """A CPU's last-level cache as its operating system reports it."""

    source: Source
    llc_bytes: int


@dataclass(frozen=True)
class OnChipFacts:
    """The on-chip totals of each GPU shown, the last-level caches of this build's CPU and the archived hosts,
    and one SM's bandwidth per FLOP against a Xeon core's."""

    gpus: tuple[ShownGpu, ...]
    hosts: tuple[HostCache, ...]
    cpu_core: OnChip
    fma_bytes_per_flop: float

    @property
    def first(self) -> ShownGpu:
        return self.gpus[0]

    @property
    def sms(self) -> tuple[OnChip, ...]:
        return tuple(dict.fromkeys(g.sm for g in self.gpus))

    @property
    def cpu_holds_more(self) -> bool:
        """Whether a CPU's last-level cache holds at least as much as the biggest GPU's chip."""
        return any(h.llc_bytes >= max(g.on_chip_bytes for g in self.gpus) for h in self.hosts)

    @property
    def gpu_reuse(self) -> float:
        """How many times a value loaded from shared memory must be reused to feed the FMAs of the first SM."""
        return self.fma_bytes_per_flop / self.first.sm.bytes_per_flop

    @property
    def cpu_reuse(self) -> float:
        return self.fma_bytes_per_flop / self.cpu_core.bytes_per_flop


def onchip() -> OnChipFacts:
    hosts = [HostCache(s, s.hardware.cpu.llc_bytes) for s in sources(copy_bandwidth, hosts=True)
             if s.is_cpu and s.hardware.cpu.llc_bytes]
    note([h.source for h in hosts])
    return OnChipFacts(tuple(shown_gpus()), tuple(hosts), XEON_CORE, FMA_BYTES_PER_FLOP)
