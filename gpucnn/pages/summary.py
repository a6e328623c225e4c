"""Pages "Summary" and Home: the headline figures of every machine the site shows, each at a fixed, stated size,
reusing the other pages' measurements; the GPU-against-host ratios; and Home's at-a-glance chart.

Facts and figures only: the words about them are in ``docs/summary.md`` and ``docs/index.md``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
from gpucnn.experiments.precision import precision_matmul_sweep
from gpucnn.experiments.resnet import GPU_WORKLOAD, resnet_train_sweep
from gpucnn.experiments.training import training_throughput
from gpucnn.figures import best_point, dram_point, fastest_images, images_per_s, matmul_at, training_point
from gpucnn.hardware import detect
from gpucnn.render import (
    archived_style,
    chart_text,
    describe_hardware,
    distinct_markers,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    short_bytes,
    source_colour,
    style_context,
    table,
)
from gpucnn.sources import Source, accelerators, note, one_line, pairs, sibling, sources

DASH = "–"


def build_machine() -> str:
    """This build's machine in a few words: ``CPU: AMD EPYC (2 threads); no accelerator``."""
    return describe_hardware(detect())


# --- the headline table -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    """One headline figure on one device: a Measurement at a fixed size, or why there is none."""

    what: str
    size: str
    kind: str  # "gflops", "gbps" or "time"
    point: Measurement | None
    missing: str = "none"

    def value(self) -> str:
        m = self.point
        if m is None:
            return self.missing
        if self.kind == "gflops":
            return f"{fmt(m.gflops)} GFLOP/s"
        if self.kind == "gbps":
            return f"{fmt(m.gbps)} GB/s"
        return fmt_time(m.median)

    def pct_of_peak(self, device: str) -> str:
        m = self.point
        if m is None or self.kind == "time":
            return DASH
        if self.kind == "gflops":
            if m.pct_peak_flops is None:
                return "no peak known"
            return f"{fmt(m.pct_peak_flops, 2)} %" + (" of estimate" if device == "cpu" else " of datasheet")
        if m.pct_peak_bandwidth is None:
            return "no datasheet peak" if device == "cpu" else "no peak known"
        return f"{fmt(m.pct_peak_bandwidth, 2)} % of datasheet"


def headlines(src: Source) -> tuple[list[Headline], list[Source]]:
    """The headline figures of one device from one source, from the same experiment runs as the other pages."""
    cp, ew, lat = (sibling(src, fn) for fn in (copy_bandwidth, elementwise_bandwidth, small_op_latency))
    m = matmul_at(src.result)
    copy = dram_point(cp.result) if cp else None
    e = ew.result.typed if ew else None
    t = lat.result.typed if lat else None
    size = short_bytes(e.size_bytes) if e else DASH
    stopped = one_line(src.result.typed.sweep.stopped or "sweep stopped earlier")  # a record's text
    rows = [
        Headline("fp32 matmul throughput", f"n = {m.shape[0]}" if m else DASH, "gflops", m, f"none ({stopped})"),
        Headline("DRAM copy bandwidth", f"{short_bytes(copy.shape[0])} per buffer" if copy else DASH, "gbps", copy),
        Headline("add bandwidth (elementwise)", f"{size} per tensor", "gbps", e.add if e else None),
        Headline("relu bandwidth (elementwise)", f"{size} per tensor", "gbps", e.relu if e else None),
        Headline("one add + synchronize", "1 element", "time", t.add_single if t else None),
        Headline("adds back to back", "1 element", "time", t.add_stream if t else None),
        Headline("2x2 matmul + synchronize", "n = 2", "time", t.matmul2x2_single if t else None),
    ]
    return rows, [s for s in (src, cp, ew, lat) if s is not None]


@dataclass(frozen=True)
class HeadlineFacts:
    """What the headline table's caption states: its sources and the timed runs behind each median."""

    sources: tuple[Source, ...]
    runs_lo: int
    runs_hi: int
    archived: bool  # an archived GPU is shown (beside its own host CPU)


def _headline_sources() -> list[tuple[Source, list[Headline], list[Source]]]:
    return [(s, *headlines(s)) for s in sources(matmul_sweep, hosts=True)]


def headline_facts() -> HeadlineFacts:
    per_source = _headline_sources()
    for _, _, used in per_source:
        note(used)
    runs = sorted({h.point.runs for _, hs, _ in per_source for h in hs if h.point}) or [0]
    found = tuple(s for s, _, _ in per_source)
    return HeadlineFacts(found, runs[0], runs[-1], any(s.archived for s in found))


def headline_table() -> str:
    """The headline table: one column per device and source, each archived GPU beside its own host CPU."""
    per_source = _headline_sources()
    for _, _, used in per_source:
        note(used)
    rows = []
    for i, what in enumerate(h.what for h in per_source[0][1]):
        cells = []
        for s, hs, _ in per_source:
            h = hs[i]
            pct = h.pct_of_peak(s.device)
            cells.append(f"{h.value()}<br><small>{h.size}" + (f"; {pct}" if pct != DASH else "") + "</small>")
        rows.append((what, *cells))
    return table(["Figure", *[s.cell() for s, _, _ in per_source]], rows, align="l" + "r" * len(per_source))


# --- each GPU against the CPU of its own machine ------------------------------------------------------------

@dataclass(frozen=True)
class Speedup:
    """One machine's GPU against its own host CPU: the fp32 matmul at one size, and the largest copy."""

    gpu: Source
    host: Source
    n: int
    matmul_x: float
    copy_x: float | None
    gpu_copy_gbps: float | None
    cpu_copy_gbps: float | None


def speedups() -> list[Speedup]:
    """Each machine with a GPU: how many times its own host CPU's speed the GPU ran (never across machines)."""
    copies = {p.gpu.origin: p for p in pairs(copy_bandwidth)}
    out = []
    for pair in pairs(matmul_sweep):
        g, c = matmul_at(pair.gpu.result), matmul_at(pair.cpu.result)
        if g is None or c is None:
            continue
        n = min(g.shape[0], c.shape[0])  # both sides at one size: the smaller headline size of the two
        g, c = matmul_at(pair.gpu.result, n), matmul_at(pair.cpu.result, n)
        if g is None or c is None or not g.gflops or not c.gflops:
            continue
        note([pair.gpu, pair.cpu])
        cp = copies.get(pair.gpu.origin)
        gc, cc = (dram_point(cp.gpu.result), dram_point(cp.cpu.result)) if cp else (None, None)
        both = bool(gc and cc and gc.gbps and cc.gbps)
        if both:
            note([cp.gpu, cp.cpu])
        out.append(Speedup(pair.gpu, pair.cpu, n, g.gflops / c.gflops, gc.gbps / cc.gbps if both else None,
                           gc.gbps if both else None, cc.gbps if both else None))
    return out


def speedup_table() -> str:
    """One row per machine: the GPU's fp32 matmul and copy as multiples of its own host CPU's."""
    rows = [(s.gpu.cell(s.gpu.model), one_line(s.host.hardware.cpu.model), f"{s.n}", f"{fmt(s.matmul_x, 2)}x",
             f"{fmt(s.copy_x, 2)}x ({fmt(s.gpu_copy_gbps)} / {fmt(s.cpu_copy_gbps)} GB/s)" if s.copy_x else DASH)
            for s in speedups()]
    if not rows:
        return ""
    return table(["GPU", "Its host CPU", "Matmul n", "fp32 matmul, GPU / CPU", "Largest copy, GPU / CPU"], rows,
                 align="llrrr")


@dataclass(frozen=True)
class Bf16Share:
    """A GPU's best bf16 matmul (square sizes) as a share of its dense datasheet bf16 peak."""

    source: Source
    pct_peak: float
    n: int


def bf16_shares() -> list[Bf16Share]:
    out = []
    for s in accelerators(precision_matmul_sweep, precision="bfloat16"):
        best = best_point(s.result.typed.sweep.points)
        if best is not None and best.pct_peak_flops is not None:
            note(s)
            out.append(Bf16Share(s, best.pct_peak_flops, best.shape[0]))
    return out


# --- Home's chart: one panel per quantity, each in its own unit ---------------------------------------------

@dataclass(frozen=True)
class Panel:
    """One panel of the home chart: one quantity, in its own unit."""

    title: str
    unit: str
    better: str  # "higher" or "lower"
    fn: Callable
    value: Callable[[Source], tuple[float, str] | None]  # (value, what was measured)
    params: tuple[tuple[str, object], ...] = ()  # the experiment's parameters
    gpus_only: bool = False  # a workload too large for a CPU's budget: no CPU dot, so no ratio is implied


def _matmul(s: Source) -> tuple[float, str] | None:
    m = matmul_at(s.result)
    return (m.gflops, f"n = {m.shape[0]}") if m and m.gflops else None


def _copy(s: Source) -> tuple[float, str] | None:
    m = dram_point(s.result)
    return (m.gbps, f"{short_bytes(m.shape[0])} buffers") if m and m.gbps else None


def _train(s: Source) -> tuple[float, str] | None:
    m = training_point(s.result)
    return (m.shape[0] / m.median, f"batch {m.shape[0]}") if m else None


def _fastest_images(s: Source) -> tuple[float, str] | None:
    m = fastest_images(s.result.typed.sweep.points)
    return (images_per_s(m), f"batch {m.shape[0]}") if m else None


def _tiny(s: Source) -> tuple[float, str] | None:
    return (s.result.typed.add_single.median * 1e6, "1-element add + sync")


PANELS = (
    Panel("Matrix multiply (fp32)", "GFLOP/s", "higher", matmul_sweep, _matmul),
    Panel("Memory copy", "GB/s", "higher", copy_bandwidth, _copy),
    Panel("Training step (CNN, 3x64x64)", "images/s", "higher", training_throughput, _train),
    Panel("One tiny op", "µs per call", "lower", small_op_latency, _tiny),
    # A real CNN at real scale, where a record has it (docs/resnet.md): GPUs only.
    Panel("ResNet-50 training, fp32", "images/s", "higher", resnet_train_sweep, _fastest_images,
          params=tuple(GPU_WORKLOAD.items()), gpus_only=True),
)


@dataclass(frozen=True)
class Dot:
    source: Source
    value: float
    what: str


def glance() -> list[tuple[Panel, list[Dot]]]:
    """Per panel shown, its dots: this build's devices, each archived GPU with its own host CPU (a GPUs-only
    panel without any GPU result is left out)."""
    out = []
    for panel in PANELS:
        dots = []
        for src in sources(panel.fn, hosts=not panel.gpus_only, cpu=not panel.gpus_only, **dict(panel.params)):
            got = panel.value(src)
            if got is not None:
                dots.append(Dot(src, *got))
        if dots or not panel.gpus_only:
            out.append((panel, dots))
    return out


def _key(src: Source) -> tuple[str, bool]:
    return src.origin, src.is_cpu


def home_chart() -> str:
    """Small multiples, dots on log axes: one panel per quantity, one row per device and source."""
    panels = glance()
    shown = [d.source for _, dots in panels for d in dots]
    note(shown)
    rows: dict[tuple[str, bool], str] = {}
    for s in shown:
        rows.setdefault(_key(s), s.label)
    order = list(rows)
    origins = list(dict.fromkeys(k[0] for k in order))
    with style_context():
        import matplotlib.pyplot as plt

        cols = 2
        nrows = -(-len(panels) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(7.0, (0.3 * len(order) + 0.9) * nrows), sharey=True,
                                 squeeze=False)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        gids: list[str] = []
        shapes = distinct_markers([(origin, "o") for origin in origins])
        for ax, (panel, dots) in zip(axes.flat, panels, strict=False):
            for origin in origins:
                mine = [d for d in dots if d.source.origin == origin]
                if not mine:
                    continue
                style = {"color": source_colour(origin), "marker": shapes[(origin, "o")], "markersize": 7}
                if mine[0].source.archived:
                    style = archived_style(style)
                ax.plot([d.value for d in mine], [order.index(_key(d.source)) for d in mine],
                        gid=f"gpucnn-series-{len(gids)}", **{**style, "linestyle": "none"})
                gids.append(origin)
                for d in mine:
                    ax.annotate(fmt(d.value), (d.value, order.index(_key(d.source))), xytext=(6, 0),
                                textcoords="offset points", va="center", fontsize=10)
            values = [d.value for d in dots]
            ax.set_xscale("log")
            if values:
                ax.set_xlim(min(values) / 3, max(values) * 30)
            ax.set_ylim(len(order) - 0.5, -0.5)
            ax.set_xlabel(f"{panel.unit} ({panel.better} is better)", fontsize=10)
            ax.set_title(panel.title, fontsize=10)
            ax.tick_params(labelsize=10)
            ax.grid(True, axis="x", which="major")
        axes.flat[0].set_yticks(range(len(order)), [chart_text(rows[k]) for k in order], fontsize=10)
        fig.tight_layout()
    desc = " ".join(f"{panel.title}: " + "; ".join(f"{d.source.label} {fmt(d.value)} {panel.unit} ({d.what})"
                                                     for d in dots) + "." for panel, dots in panels)
    chart = figure_html(fig, title="CPU against GPU at a glance: each quantity in its own unit", desc=desc,
                        caption_text="", results=shown, sources=gids)
    body = html_table(["Quantity", "Device", "Median", "Unit", "Measured at"],
                      [(html.escape(panel.title), d.source.cell(), fmt(d.value), html.escape(panel.unit),
                        html.escape(d.what)) for panel, dots in panels for d in dots], align="llrll")
    return chart + figures_table(chart, body)
