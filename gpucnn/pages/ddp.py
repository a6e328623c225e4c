"""Page "Beyond one GPU: data parallelism": facts, tables and charts only; every sentence is in
docs/data-parallel.md.

The gloo figures come from ``gloo_ddp`` and ``ddp_single_process`` (this build's CPU). The scaling model
takes each GPU record's measured training step (``training_throughput``) and the datasheet links in
``gpucnn.scaling``; every model series is labelled "model" and drawn in the model's own encoding (thin
crosses, dotted or dash-dot-dot lines: never the dashed, hollow look of an archived measurement).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt

from gpucnn import scaling
from gpucnn.experiments.ddp import DEFAULT_CAP_MB, ddp_single_process, gloo_ddp
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.experiments.training import training_throughput
from gpucnn.figures import dram_point, told_apart
from gpucnn.measurement import Measurement
from gpucnn.models import SYNTHETIC, forward_flops
from gpucnn.render import (
    COLORS,
    Series,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    series_table,
    short_bytes,
    source_colour,
    style_context,
)
from gpucnn.results import Result, run
from gpucnn.sources import Source, accelerators, no_gpu_note, note
from gpucnn.specs import DdpSingleProcessData, GlooDdpData

# The model's own look: thin crosses, dotted (overlap) or dash-dot-dot (no overlap) lines.
MODEL_MARKERS = ("x", "+", "1")
OVERLAP_LINE = (0, (1, 1.5))
NO_OVERLAP_LINE = (0, (5, 1.5, 1, 1.5, 1, 1.5))
# At most this many GPU records in the model: two lines each per panel, within five series.
MODEL_SOURCES = 2
_SERIES = "gpucnn-series-"


def _gloo() -> tuple[Result, GlooDdpData]:
    result = run(gloo_ddp)
    return result, result.typed


def _single() -> tuple[Result, DdpSingleProcessData]:
    result = run(ddp_single_process)
    return result, result.typed


def _time(m: Measurement) -> str:
    """Median (IQR) of a timed call."""
    return f"{fmt_time(m.median)} ({fmt_time(m.p25)}–{fmt_time(m.p75)})"


def _pct(x: float) -> str:
    return f"{fmt(100 * x, 3)} %"


def _gbps(bytes_per_s: float) -> str:
    return f"{fmt(bytes_per_s / 1e9)} GB/s"


def _mb(nbytes: float) -> str:
    return f"{fmt(nbytes / 1e6)} MB"


def _draw(ax: plt.Axes, series: Sequence[Series], first: int) -> None:
    """Plot ``series`` with their own styles; their SVG groups are numbered from ``first``."""
    for i, s in enumerate(series, start=first):
        style = {"markersize": 5, "linewidth": 1.6, **s.style}
        ax.plot(s.x, s.y, label=s.label, gid=f"{_SERIES}{i}", **style)
        if s.low is not None and s.high is not None:
            ax.fill_between(s.x, s.low, s.high, color=style.get("color"), alpha=0.25, linewidth=0)


# --- all-reduce against size ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AllReduceFacts:
    """The sweep's fit and what it is compared with."""

    world_size: int
    ring_factor: float
    fit: scaling.AlphaBeta
    largest: Measurement
    copy: Measurement | None  # this build's CPU copy at its largest buffer (Advantage 1)


def allreduce_facts() -> AllReduceFacts:
    _, data = _gloo()
    pts = data.allreduce.points
    fit = scaling.fit_alpha_beta([m.shape[0] for m in pts], [m.median for m in pts])
    copy = dram_point(run(copy_bandwidth, device="cpu"))
    return AllReduceFacts(data.world_size, scaling.ring_factor(data.world_size), fit, pts[-1], copy)


def allreduce_chart() -> str:
    """Time per all-reduce against bytes with the alpha-beta fit (left); algbw and busbw (right)."""
    result, data = _gloo()
    facts = allreduce_facts()
    pts = data.allreduce.points
    sizes = [float(m.shape[0]) for m in pts]
    n = data.world_size
    measured = Series("gloo all-reduce, 2 ranks (this build)", sizes, [m.median for m in pts],
                      [m.p25 for m in pts], [m.p75 for m in pts],
                      style={"color": COLORS[0], "marker": "o", "linestyle": "-"})
    fitted = Series("α–β fit (model)", sizes, [facts.fit.time(s) for s in sizes],
                    style={"color": COLORS[3], "marker": "x", "linestyle": OVERLAP_LINE}, source="model:fit")
    alg = Series("algbw (this build)", sizes, [scaling.algbw(s, m.median) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 [scaling.algbw(s, m.p75) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 [scaling.algbw(s, m.p25) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 style={"color": COLORS[0], "marker": "D", "linestyle": "-"})
    bus = Series(f"busbw = algbw x {fmt(scaling.ring_factor(n))} (this build)", sizes,
                 [scaling.busbw(s, m.median, n) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 style={"color": COLORS[1], "marker": "^", "linestyle": "-."})
    with style_context():
        fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 4.4))
        _draw(left, [measured, fitted], 0)
        _draw(right, [alg, bus], 2)
        right.axhline(facts.fit.beta_bytes_per_s / 1e9, color=COLORS[3], linestyle=OVERLAP_LINE, linewidth=1)
        if facts.copy is not None and facts.copy.gbps:
            right.axhline(facts.copy.gbps, color=COLORS[2], linestyle=":", linewidth=1)
        for ax, ylabel, title in ((left, "time per all-reduce (s)", "Time"),
                                  (right, "bandwidth (GB/s)", "Bandwidth")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("message size (bytes, float32)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(True, which="major")
            ticks = sizes[::2]
            ax.set_xticks(ticks, [short_bytes(t) for t in ticks], rotation=45)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), fontsize=9)
        handles = [matplotlib.lines.Line2D([], [], color=COLORS[3], linestyle=OVERLAP_LINE, label="β of the fit (model)")]
        if facts.copy is not None and facts.copy.gbps:
            handles.append(matplotlib.lines.Line2D([], [], color=COLORS[2], linestyle=":",
                                                   label="CPU copy, largest buffer (Advantage 1)"))
        right.legend(handles=[*right.get_legend_handles_labels()[0], *handles], loc="upper center",
                     bbox_to_anchor=(0.5, -0.32), fontsize=9)
    series = [measured, fitted, alg, bus]
    desc = (f"All-reduce time from {fmt_time(min(measured.y))} to {fmt_time(max(measured.y))}; "
            f"algbw up to {fmt(max(alg.y))} GB/s.")
    copy = run(copy_bandwidth, device="cpu")
    chart = figure_html(fig, title="gloo all-reduce against message size", desc=desc, caption_text="",
                        results=[result, copy], sources=[s.source for s in series])
    time_table = series_table([measured, fitted], x="Bytes", y="Seconds", x_text=lambda v: short_bytes(v),
                              y_text=fmt_time)
    bw_table = series_table([alg, bus], x="Bytes", y="GB/s", x_text=lambda v: short_bytes(v))
    return chart + figures_table(chart, time_table + bw_table)


def allreduce_table() -> str:
    """The fit's alpha and beta, the ring factor, and this machine's copy bandwidth beside beta."""
    f = allreduce_facts()
    rows = [
        ["ranks x threads", f"{f.world_size} x 1", "this build"],
        ["α: latency per all-reduce", fmt_time(f.fit.alpha_s), "fit (model) of the sweep"],
        ["β: bytes per second, large messages", _gbps(f.fit.beta_bytes_per_s), "fit (model) of the sweep"],
        ["busbw factor 2(n−1)/n", fmt(f.ring_factor), f"n = {f.world_size}"],
        [f"algbw at {short_bytes(f.largest.shape[0])}", _gbps(scaling.algbw(f.largest.shape[0], f.largest.median)),
         "measured, this build"],
    ]
    if f.copy is not None and f.copy.gbps:
        rows.append([f"CPU copy, {short_bytes(f.copy.shape[0])} buffer (read + written)", _gbps(f.copy.gbps * 1e9),
                     "measured, this build (Advantage 1)"])
        rows.append(["β ÷ copy bandwidth", fmt(f.fit.beta_bytes_per_s / (f.copy.gbps * 1e9), 2), "ratio"])
    return html_table(["Quantity", "Value", "From"], rows, align="lrl")


# --- a DDP step against one process --------------------------------------------------------------------------

def _versus(ddp: Measurement, single: Measurement) -> str:
    if not told_apart(ddp, single):
        return "about equal"
    return "DDP faster" if ddp.median < single.median else "DDP slower"


def step_table() -> str:
    """Each model: one process x 2 threads against 2 ranks x 1 thread at the same global batch, and parity."""
    result, d = _gloo()
    single_result, s = _single()
    note([result, single_result])
    mlp_ddp = next(b.step for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    rows = [
        ["digits CNN", f"{d.cnn_parameters:,}", _mb(4 * d.cnn_parameters), str(d.cnn_global_batch),
         _time(s.cnn_step), _time(d.cnn_ddp_step), fmt(d.cnn_ddp_step.median / s.cnn_step.median, 2),
         _versus(d.cnn_ddp_step, s.cnn_step), f"{d.cnn_max_weight_diff:.2g}",
         "yes" if d.cnn_within_tolerance else "no", "yes" if d.cnn_replica_diff == 0 else "no"],
        [f"MLP, {d.mlp_layers} x Linear({d.mlp_width}, {d.mlp_width})", f"{d.mlp_parameters:,}",
         _mb(4 * d.mlp_parameters), str(d.mlp_global_batch), _time(s.mlp_step), _time(mlp_ddp),
         fmt(mlp_ddp.median / s.mlp_step.median, 2), _versus(mlp_ddp, s.mlp_step), f"{d.mlp_max_weight_diff:.2g}",
         "yes" if d.mlp_within_tolerance else "no", "yes" if d.mlp_replica_diff == 0 else "no"],
    ]
    headers = ["Model", "Parameters", "fp32 gradients", "Global batch",
               f"1 process x {s.threads} threads: median (IQR)",
               f"{d.world_size} ranks x {d.threads_per_rank} thread, DDP: median (IQR)", "DDP ÷ 1 process",
               "Verdict", "Largest weight difference after one step",
               f"Within rtol {d.rtol:g}, atol {d.atol:g}", "Replicas identical"]
    return html_table(headers, rows, align="lrrrrrrlrll")


# --- buckets -------------------------------------------------------------------------------------------------

def bucket_chart() -> str:
    """The MLP's DDP step against bucket_cap_mb, beside the step without DDP and that plus one flat all-reduce."""
    result, d = _gloo()
    caps = [float(b.bucket_cap_mb) for b in d.buckets]
    steps = [b.step for b in d.buckets]
    ddp = Series("DDP step, 2 ranks (this build)", caps, [m.median for m in steps], [m.p25 for m in steps],
                 [m.p75 for m in steps], style={"color": COLORS[0], "marker": "o", "linestyle": "-"})
    local = d.mlp_local_step.median
    flat = d.mlp_flat_allreduce.median
    with style_context():
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        _draw(ax, [ddp], 0)
        ax.axhline(local, color=COLORS[2], linestyle=":", linewidth=1.2, label="step without DDP (this build)")
        ax.axhline(local + flat, color=COLORS[1], linestyle="-.", linewidth=1.2,
                   label="without DDP + one flat all-reduce (this build)")
        ax.set_xscale("log")
        ax.set_xticks(caps, [f"{int(c)}" for c in caps])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("bucket_cap_mb (MiB)")
        ax.set_ylabel("time per training step (s)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"MLP, {_mb(4 * d.mlp_parameters)} of gradients")
        ax.grid(True, which="major")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=9)
    chart = figure_html(fig, title="DDP step against bucket size", caption_text="", results=result,
                        desc=f"DDP step from {fmt_time(min(ddp.y))} to {fmt_time(max(ddp.y))}.",
                        sources=[ddp.source])
    table = series_table([ddp], x="bucket_cap_mb", y="Seconds per step", y_text=fmt_time)
    return chart + figures_table(chart, table, f"Step without DDP: {fmt_time(local)}; "
                                               f"one flat all-reduce of every gradient: {fmt_time(flat)}.")


def bucket_table() -> str:
    """Buckets, step time and the share of the all-reduce hidden behind the backward pass, per bucket cap."""
    result, d = _gloo()
    note(result)
    local, flat = d.mlp_local_step, d.mlp_flat_allreduce
    rows = [["no DDP", "–", _time(local), "–"],
            ["one flat all-reduce of all gradients", "1", _time(flat), "–"]]
    for b in d.buckets:
        hidden = scaling.overlap_fraction(local.median, flat.median, b.step.median)
        rows.append([f"DDP, bucket_cap_mb = {b.bucket_cap_mb}", str(b.buckets), _time(b.step), _pct(hidden)])
    return html_table(["Step", "Buckets (all-reduces per step)", "Time: median (IQR)", "Overlap"], rows)


# --- accumulation and compression ----------------------------------------------------------------------------

def accumulation_table() -> str:
    """All-reduces and time per optimizer step of ``accumulation`` micro-batches, with and without no_sync."""
    result, d = _gloo()
    note(result)
    k = d.accumulation
    verdict = ("no_sync faster" if d.no_sync_step.median < d.sync_every_step.median else "no_sync slower") \
        if told_apart(d.no_sync_step, d.sync_every_step) else "about equal"
    rows = [[f"all-reduce after each of the {k} micro-batches", str(d.allreduces_sync), _time(d.sync_every_step), ""],
            [f"no_sync on all but the last of the {k}", str(d.allreduces_no_sync),
             _time(d.no_sync_step), verdict]]
    return html_table(["Optimizer step", "All-reduces per optimizer step", "Time: median (IQR)", "Verdict"], rows,
                      align="lrrl")


def compression_table() -> str:
    """The default fp32 all-reduce against bf16_compress_hook: bytes sent, step time, and parity."""
    result, d = _gloo()
    note(result)
    default = next(b.step for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    verdict = ("bf16 faster" if d.bf16_step.median < default.median else "bf16 slower") \
        if told_apart(d.bf16_step, default) else "about equal"
    rows = [["fp32 (DDP's default)", _mb(4 * d.mlp_parameters), _time(default), f"{d.mlp_max_weight_diff:.2g}",
             "yes" if d.mlp_within_tolerance else "no", ""],
            ["bf16_compress_hook", _mb(2 * d.mlp_parameters), _time(d.bf16_step), f"{d.bf16_max_weight_diff:.2g}",
             "yes" if d.bf16_within_tolerance else "no", verdict]]
    headers = ["All-reduce", "Bytes per rank per step", f"Step at bucket_cap_mb = {DEFAULT_CAP_MB}: median (IQR)",
               "Largest weight difference from one process", f"Within rtol {d.rtol:g}, atol {d.atol:g}", "Verdict"]
    return html_table(headers, rows, align="lrrrll")


# --- the scaling model ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelInput:
    """One GPU record's measured inputs to the model."""

    source: Source
    steps: tuple[tuple[int, float], ...]  # (per-GPU batch, median step seconds), every measured batch
    grad_bytes: float
    peak_fp32: float | None
    flops_per_image: float

    @property
    def largest(self) -> tuple[int, float]:
        return self.steps[-1]

    @property
    def smallest(self) -> tuple[int, float]:
        return self.steps[0]


def model_inputs() -> list[ModelInput]:
    """The GPU records (this build's GPU first, if any) whose synthetic-CNN step the model starts from."""
    found = []
    for src in accelerators(training_throughput)[:MODEL_SOURCES]:
        data = src.result.typed
        pts = data.sweep.points
        if not pts:
            continue
        acc = src.hardware.accelerator
        peak = acc.peaks.fp32 if acc is not None and acc.peaks is not None else None
        found.append(ModelInput(src, tuple((m.shape[0], m.median) for m in pts), 4.0 * data.parameters, peak,
                                3 * forward_flops(SYNTHETIC, 1)))
    return found


def _where(src: Source) -> str:
    return f"results/{src.record.name}" if src.record else "this build"


def model_inputs_table() -> str:
    """Every input of the model, and where it comes from."""
    inputs = model_inputs()
    note([i.source for i in inputs])
    rows = []
    for i in inputs:
        where = html.escape(_where(i.source))
        for batch, step in (i.smallest, i.largest):
            rows.append([i.source.cell(), f"training step, batch {batch} per GPU", fmt_time(step),
                         f"measured: training_throughput, {where}"])
        rows.append([i.source.cell(), "fp32 gradients (parameters x 4 bytes)", _mb(i.grad_bytes),
                     f"training_throughput, {where}"])
        if i.peak_fp32:
            rows.append([i.source.cell(), "FP32 peak", f"{fmt(i.peak_fp32 / 1e12)} TFLOP/s",
                         "datasheet, in the record's hardware report"])
    for link in scaling.INTERCONNECTS:
        rows.append(["all", f"{link.name}, one way per GPU", _gbps(link.bytes_per_s), link.source])
    rows.append(["all", "backward share of a step", fmt(scaling.BACKWARD_SHARE, 3),
                 "assumption: backward FLOPs = 2 x forward"])
    rows.append(["all", "latency per ring step", "0", "left out: times are lower bounds"])
    return html_table(["Record", "Input", "Value", "Source"], rows, align="llrl")


def _model_series(i: ModelInput, k: int, link: scaling.Interconnect, batch_step: tuple[int, float]) -> list[Series]:
    batch, step = batch_step
    preds = [scaling.predict(step, i.grad_bytes, n, link) for n in link.gpus]
    colour = source_colour(i.source.origin)
    marker = MODEL_MARKERS[k % len(MODEL_MARKERS)]
    origin = f"model:{i.source.record.name}" if i.source.record else "model:live"
    name = f"{i.source.model} model, {link.name}, batch {batch}"
    return [
        Series(f"{name}, no overlap", list(link.gpus), [100 * p.efficiency_no_overlap for p in preds],
               style={"color": colour, "marker": marker, "linestyle": NO_OVERLAP_LINE}, source=origin),
        Series(f"{name}, overlap", list(link.gpus), [100 * p.efficiency_overlap for p in preds],
               style={"color": colour, "marker": marker, "linestyle": OVERLAP_LINE, "markersize": 7}, source=origin),
    ]


def scaling_chart() -> str:
    """Modelled scaling efficiency against GPU count, one chart per link, at each record's smallest measured batch
    (where the all-reduce weighs most), with and without overlap; one table of their figures below them."""
    inputs = model_inputs()
    if not inputs:
        return no_gpu_note(None, "GPU records the model starts from")
    charts = ""
    all_series: list[Series] = []
    lowest = min(100 * scaling.predict(i.smallest[1], i.grad_bytes, link.gpus[-1], link).efficiency_no_overlap
                 for i in inputs for link in scaling.INTERCONNECTS)
    for link in scaling.INTERCONNECTS:
        series = [s for k, i in enumerate(inputs) for s in _model_series(i, k, link, i.smallest)]
        all_series += series
        with style_context():
            fig, ax = plt.subplots(figsize=(7.0, 3.6))
            _draw(ax, series, 0)
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(link.gpus), [str(g) for g in link.gpus])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            # One y range for the three charts: a link that costs a few per cent must not look like one that
            # costs half.
            ax.set_ylim(min(lowest, 99.0) - 1, 100.5)
            ax.set_xlabel("GPUs" + (" (nodes of 8 from 16 on)" if link is scaling.IB_NDR else ""))
            ax.set_ylabel("scaling efficiency, model (%)")
            ax.set_title(f"{link.name}: model", fontsize=11)
            ax.grid(True, which="major")
            ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9)
        desc = f"Modelled scaling efficiency over {link.name}. " + " ".join(
            f"{s.label}: {fmt(min(s.y))} to {fmt(max(s.y))} %." for s in series)
        charts += figure_html(fig, title=f"Data-parallel scaling model, {link.name}", desc=desc, caption_text="",
                              results=[i.source for i in inputs], sources=[s.source for s in series])
    table = series_table(all_series, x="GPUs", y="Scaling efficiency, model (%)")
    return charts + figures_table(charts, table) + no_gpu_note([i.source for i in inputs], "GPU records")


def scaling_table() -> str:
    """The model's step time and efficiency at the smallest and largest batch, per link and GPU count, with and
    without overlap."""
    inputs = model_inputs()
    note([i.source for i in inputs])
    rows = []
    for i in inputs:
        for batch, step in (i.smallest, i.largest):
            for link in scaling.INTERCONNECTS:
                for n in link.gpus[1:]:
                    p = scaling.predict(step, i.grad_bytes, n, link)
                    rows.append([i.source.cell(f"{i.source.model} model"), str(batch), link.name, str(n),
                                 fmt_time(p.allreduce_s), fmt_time(p.step_no_overlap_s),
                                 _pct(p.efficiency_no_overlap), fmt_time(p.step_overlap_s),
                                 _pct(p.efficiency_overlap), "yes" if p.hidden else "no"])
    headers = ["Record", "Batch per GPU", "Link", "GPUs", "All-reduce (model)", "Step, no overlap",
               "Efficiency, no overlap", "Step, overlap", "Efficiency, overlap", "Hidden by backward"]
    return html_table(headers, rows, align="lrlrrrrrrl")


def hiding_table() -> str:
    """Per record and link, at its largest GPU count: the per-GPU batch from which the backward pass outlasts
    the all-reduce, at the FP32 peak (the C/W rule) and in the record's measured steps."""
    inputs = model_inputs()
    note([i.source for i in inputs])
    rows = []
    for i in inputs:
        for link in scaling.INTERCONNECTS:
            n = link.gpus[-1]
            comm = scaling.ring_allreduce_s(i.grad_bytes, n, scaling.link_bandwidth(link, n))
            at_peak = (fmt(scaling.hiding_batch(i.grad_bytes, n, link, i.flops_per_image, i.peak_fp32), 3)
                       if i.peak_fp32 else "no peak in the record")
            measured = scaling.measured_hiding_batch(i.steps, comm)
            rows.append([i.source.cell(f"{i.source.model} model"), link.name, str(n), fmt_time(comm), at_peak,
                         str(measured) if measured is not None else f"above {i.largest[0]}"])
    headers = ["Record", "Link", "GPUs", "All-reduce (model)", "Batch per GPU that hides it at FP32 peak",
               "Smallest measured batch that hides it"]
    return html_table(headers, rows, align="llrrrr")
