"""Page "Summary" (and Home's headline figures): every headline figure of this build in
one table, each at a fixed, stated size, reusing the other pages' measurements."""

from __future__ import annotations

import html
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
from gpucnn.experiments.resnet import GPU_WORKLOAD, resnet_train_sweep
from gpucnn.experiments.training import training_throughput
from gpucnn.figures import dram_point, fastest_images, images_per_s, matmul_at, training_point
from gpucnn.pages.tensor_cores import best_point, precision_sweeps
from gpucnn.render import (
    COLORS,
    caption,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    short_bytes,
    style_context,
    table,
)
from gpucnn.sources import Pair, Source, and_list, no_gpu_note, note, one_line, pairs, sibling, sources


@dataclass(frozen=True)
class Headline:
    """One headline figure on one device: a Measurement at a fixed size, or why there is none."""

    what: str
    size: str
    kind: str  # "gflops", "gbps" or "time"
    point: Measurement | None
    missing: str = "none in this source"

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
            return "–"
        if self.kind == "gflops":
            if m.pct_peak_flops is None:
                return "no peak known"
            return f"{fmt(m.pct_peak_flops, 2)} %" + (" of estimate" if device == "cpu" else " of datasheet")
        if m.pct_peak_bandwidth is None:
            return "no datasheet peak" if device == "cpu" else "no peak known"
        return f"{fmt(m.pct_peak_bandwidth, 2)} % of datasheet"


def headlines(src: Source) -> tuple[list[Headline], list[Source]]:
    """The headline figures of one device from one source, from the same experiment runs as the other pages."""
    mm = src
    cp, ew, lat = (sibling(src, fn) for fn in (copy_bandwidth, elementwise_bandwidth, small_op_latency))
    m = matmul_at(mm.result)
    copy = dram_point(cp.result) if cp else None
    size = short_bytes(ew.result.data["size_bytes"]) if ew else "–"
    stopped = one_line(mm.result.data["sweep"].stopped or "the sweep stopped before this size")  # a record's text
    rows = [
        Headline("fp32 matmul throughput", f"n = {m.shape[0]}" if m else "–", "gflops", m, f"none ({stopped})"),
        Headline("DRAM copy bandwidth", f"{short_bytes(copy.shape[0])} per buffer" if copy else "–", "gbps", copy),
        Headline("add bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.result.data["add"] if ew else None),
        Headline("relu bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.result.data["relu"] if ew else None),
        Headline("small-op latency: one add + synchronize", "1 element", "time",
                 lat.result.data["add_single"] if lat else None),
        Headline("small-op dispatch: adds back to back", "1 element", "time",
                 lat.result.data["add_stream"] if lat else None),
        Headline("2x2 matmul + synchronize", "n = 2", "time", lat.result.data["matmul2x2_single"] if lat else None),
    ]
    return rows, [s for s in (mm, cp, ew, lat) if s is not None]


def headline_table() -> str:
    """The one table that Home and Summary both print: one column per device and source."""
    found = sources(matmul_sweep, hosts=True)
    per_source = [(s, *headlines(s)) for s in found]
    shown = [x for _, _, used in per_source for x in used]
    headers = ["Figure", *[s.cell() for s in found]]
    rows = []
    for i, what in enumerate(h.what for h in per_source[0][1]):
        cells = []
        for s, hs, _ in per_source:
            h = hs[i]
            pct = h.pct_of_peak(s.device)
            cells.append(f"{h.value()}<br><small>{h.size}" + (f"; {pct}" if pct != "–" else "") + "</small>")
        rows.append((what, *cells))
    runs = sorted({h.point.runs for _, hs, _ in per_source for h in hs if h.point}) or [0]
    out = table(headers, rows, align="l" + "r" * len(found))
    out += caption(
        f"Each figure is the median at the fixed size shown under it (never the best of a sweep), from "
        f"{runs[0]}–{runs[-1]} timed runs. Bandwidth counts bytes read + written, GB = 10^9 bytes. % of peak: the "
        f"CPU's FLOP/s peak is an estimate at its highest known clock (cores x clock x FLOP per cycle); a GPU's is "
        f"its datasheet "
        f"figure; gpucnn knows no memory-bandwidth peak for CPUs. Compare a GPU only with the CPU of its own "
        f"source.", shown)
    return out + no_gpu_note(found, "GPU figures of this table")


def peak_fractions() -> str:
    """How much of its peak each device's headline matmul reached, as a sentence: the data, not a rule of thumb."""
    parts = []
    for src in sources(matmul_sweep, hosts=True):
        m = matmul_at(src.result)
        if m is None or m.pct_peak_flops is None:
            continue
        note(src)
        of = "its estimated peak" if src.is_cpu else "its datasheet peak"
        parts.append(f"{one_line(src.label)} **{fmt(m.pct_peak_flops, 2)} %** of {of} (n = {m.shape[0]})")
    if not parts:
        return ""
    return f"In the table above, the fp32 matmul reached: {and_list(parts)}.\n"


def bf16_fractions() -> str:
    """The best bf16 matmul of each GPU shown, as a % of its dense datasheet bf16 peak ("" where none has one).

    The page cites mamf-finder's bf16 figure: set beside it the site's own bf16 sweeps, not its fp32 ones.
    """
    parts = []
    for s in precision_sweeps():
        if s.source.is_cpu or s.precision != "bfloat16":
            continue
        best = best_point(s.points)
        if best is None or best.pct_peak_flops is None:
            continue
        note(s.source)
        parts.append(f"{one_line(s.source.label)} **{fmt(best.pct_peak_flops, 3)} %** of its dense datasheet bf16 "
                     f"peak (n = {best.shape[0]:,})")
    if not parts:
        return ""
    return ("At its best, this site's own bf16 matmul (square sizes only: [Advantage 2](parallelism.md#tensor-"
            f"cores-the-same-matmul-in-lower-precision)) reached: {and_list(parts)}.\n")


def _speedups(pair: Pair, copies: dict[str, Pair]) -> str | None:
    """One machine's GPU against its own host CPU, matmul and copy, as a clause (None without both)."""
    g, c = matmul_at(pair.gpu.result), matmul_at(pair.cpu.result)
    if g is None or c is None:
        return None
    n = min(g.shape[0], c.shape[0])  # both sides at one size: the smaller headline size of the two
    g, c = matmul_at(pair.gpu.result, n), matmul_at(pair.cpu.result, n)
    if g is None or c is None or not g.gflops or not c.gflops:
        return None
    text = (f"on {one_line(pair.where())} machine, the {one_line(pair.gpu.model)} ran the fp32 matmul "
            f"(n = {n}) **{fmt(g.gflops / c.gflops, 2)}x** as fast as its own host CPU")
    cp = copies.get(pair.gpu.origin)
    gc, cc = (dram_point(cp.gpu.result), dram_point(cp.cpu.result)) if cp else (None, None)
    if gc and cc and gc.gbps and cc.gbps:
        # The ratio Advantage 1's DRAM table gives: each side's largest copy buffer.
        text += (f", and copied memory **{fmt(gc.gbps / cc.gbps, 2)}x** as fast "
                 f"({fmt(gc.gbps)} against {fmt(cc.gbps)} GB/s, largest buffers of the copy sweep)")
    return text


def faq_speedups() -> str:
    """The FAQ's "far more lanes, far more bandwidth", measured: each GPU against the CPU of its own machine."""
    copies = {p.gpu.origin: p for p in pairs(copy_bandwidth)}
    parts = []
    for pair in pairs(matmul_sweep):
        text = _speedups(pair, copies)
        if text:
            parts.append(text)
            note([pair.gpu, pair.cpu])
            if pair.gpu.origin in copies:
                note([copies[pair.gpu.origin].gpu, copies[pair.gpu.origin].cpu])
    if not parts:
        return ("How many times faster depends on the machine: [Results across hardware](results.md) compares "
                "the machines measured so far.\n")
    return "Measured: " + "; ".join(parts) + ".\n"


@dataclass(frozen=True)
class Panel:
    """One panel of the home chart: one quantity, in its own unit."""

    title: str
    unit: str
    better: str  # "higher" or "lower"
    fn: object  # the experiment
    value: object  # Source -> (value, what was measured) or None
    params: tuple[tuple[str, object], ...] = ()  # the experiment's parameters
    gpus_only: bool = False  # a workload too large for a CPU's budget: no CPU bar, so no ratio is implied


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
    m = s.result.data["add_single"]
    return (m.median * 1e6, "1-element add + sync")


PANELS = (
    Panel("Matrix multiply (fp32)", "GFLOP/s", "higher", matmul_sweep, _matmul),
    Panel("Memory copy", "GB/s (read + written)", "higher", copy_bandwidth, _copy),
    Panel("Training step (CNN, 3x64x64)", "images/s", "higher", training_throughput, _train),
    Panel("One tiny op", "µs per call", "lower", small_op_latency, _tiny),
    # A real CNN at real scale, where a record has it (docs/resnet.md): GPUs only.
    Panel("Training step (ResNet-50, 224x224, fp32)", "images/s", "higher", resnet_train_sweep, _fastest_images,
          params=tuple(GPU_WORKLOAD.items()), gpus_only=True),
)


def _panels_shown(columns: list[list]) -> list[int]:
    """The panels with bars: a GPUs-only panel without any GPU result is left out."""
    return [i for i, (panel, bars) in enumerate(zip(PANELS, columns, strict=True)) if bars or not panel.gpus_only]


def home_chart() -> str:
    """A panel per quantity, each in its own unit: this build's CPU beside each GPU, each archived GPU beside its host CPU; the ResNet-50 panel (GPUs only) where a record has it."""
    columns = []  # per panel: [(source, value, what)]
    for panel in PANELS:
        bars = []
        for src in sources(panel.fn, hosts=not panel.gpus_only, cpu=not panel.gpus_only, **dict(panel.params)):
            got = panel.value(src)
            if got is not None:
                bars.append((src, *got))
        columns.append(bars)
    origins = list(dict.fromkeys(src.origin for bars in columns for src, _, _ in bars))
    height = 1.2 + 0.36 * max(len(b) for b in columns) * 2
    with style_context():
        import matplotlib.pyplot as plt

        plt.rcParams["hatch.color"] = "#010203"
        shown_panels = _panels_shown(columns)
        panels = [PANELS[i] for i in shown_panels]
        columns = [columns[i] for i in shown_panels]
        rows = -(-len(panels) // 2)
        fig, axes = plt.subplots(rows, 2, figsize=(9.0, height * rows / 2))
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        gids = []
        for ax, panel, bars in zip(axes.flat, panels, columns, strict=False):
            for i, (src, value, _what) in enumerate(bars):
                k = origins.index(src.origin) % len(COLORS)
                ax.barh(i, value, color=COLORS[k], edgecolor="#010203", linewidth=0.6,
                        hatch="\\\\" if src.archived else "", alpha=0.55 if src.archived else 1.0,
                        linestyle="--" if src.archived else "-", gid=f"gpucnn-series-{len(gids)}")
                gids.append(src.origin)
                ax.annotate(f"{fmt(value)}", (value, i), xytext=(3, 0), textcoords="offset points", va="center",
                            fontsize=8)
            ax.set_yticks(range(len(bars)), [chart_text(src.label) for src, _, _ in bars], fontsize=8)
            ax.invert_yaxis()
            values = [v for _, v, _ in bars]
            if values:
                ax.set_xscale("log")
                ax.set_xlim(min(values) / 3, max(values) * 12)
            ax.set_xlabel(f"{panel.unit}, log scale ({panel.better} is better)", fontsize=9)
            ax.set_title(panel.title, fontsize=10)
            ax.grid(True, axis="x", which="major")
        fig.tight_layout()
    shown = [src for bars in columns for src, _, _ in bars]
    desc = " ".join(f"{panel.title}: " + "; ".join(f"{src.label} {fmt(v)} {panel.unit} ({what})"
                                                     for src, v, what in bars) + "."
                    for panel, bars in zip(panels, columns, strict=True))
    whats = "; ".join(f"{panel.title}: " + ", ".join(dict.fromkeys(what for _, _, what in bars))
                      for panel, bars in zip(panels, columns, strict=True))
    chart = figure_html(
        fig, title="CPU against GPU at a glance: each quantity in its own unit", desc=desc,
        caption_text=(f"Medians. Sizes: {whats}. Each colour is one source: this build, or one archived record "
                      "(a GPU and the CPU of its own machine share a colour; hatched, dashed-edged bars are archived). Compare a GPU only with the CPU of its own colour: no ratio "
                      "is taken across machines."),
        results=shown, sources=gids)
    rows = [(html.escape(panel.title), src.cell(), fmt(value), html.escape(panel.unit), html.escape(what))
            for panel, bars in zip(panels, columns, strict=True) for src, value, what in bars]
    body = html_table(["Quantity", "Device", "Median", "Unit", "Measured at"], rows, align="llrll")
    return chart + figures_table(chart, body) + no_gpu_note(shown)
