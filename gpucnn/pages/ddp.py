"""Page "Beyond one GPU: data parallelism": facts, tables and charts only; every sentence is in
docs/data-parallel.md.

The gloo figures come from ``gloo_ddp`` and ``ddp_single_process`` (this build's CPU). The scaling model
takes each GPU record's measured training step (``training_throughput``) and the datasheet links in
``gpucnn.scaling``; published all-reduce figures (``scaling.PUBLISHED``) are drawn beside it as references.
Encodings (Glossary, "How to read the charts"): a model is a dotted line without markers, a published
measurement a black star; solid lines with markers are measured in this build.

GPU builds add ``gpu_ddp`` (one rank's DDP overhead over NCCL, gloo's host-staged all-reduce of CUDA tensors,
and with two or more GPUs NCCL across them). No machine this project is built on has run it: it is tested
with the fake accelerator only (tests/test_ddp_gpu.py).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt

from gpucnn import scaling
from gpucnn.experiments.ddp import DEFAULT_CAP_MB, ddp_single_process, gloo_ddp, gpu_ddp
from gpucnn.experiments.memory import copy_bandwidth, host_to_device_bandwidth
from gpucnn.experiments.training import training_throughput
from gpucnn.figures import dram_point, told_apart
from gpucnn.measurement import Measurement
from gpucnn.models import SYNTHETIC, forward_flops
from gpucnn.render import (
    Series,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    outside_legend,
    series_table,
    short_bytes,
    source_colour,
    style_context,
)
from gpucnn.results import Result, run
from gpucnn.sources import Source, accelerators, live_has_accelerator, note
from gpucnn.specs import DdpSingleProcessData, GlooDdpData

# A model: dotted, no markers (the overlap case more finely dotted than the no-overlap one). A published
# measurement: a black star ("#000000" becomes the page's text colour). Measured here: solid, with markers.
MODEL_LINE = (0, (1, 2))
MODEL_LINE_SPARSE = (0, (1, 4))  # a second model in one chart: dotted too, further apart
INK = "#000000"
STAR = {"marker": "*", "color": INK, "markersize": 13, "linestyle": "none"}
# At most this many GPU records in the model: one line each per panel.
MODEL_SOURCES = 2
_SERIES = "gpucnn-series-"


class Verdict(enum.Enum):
    """One timing against another, decided once from their IQRs (``figures.told_apart``)."""

    FASTER = "faster"
    SLOWER = "slower"
    EQUAL = "about equal"


def verdict(a: Measurement, b: Measurement) -> Verdict:
    """``a`` against ``b``."""
    if not told_apart(a, b):
        return Verdict.EQUAL
    return Verdict.FASTER if a.median < b.median else Verdict.SLOWER


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


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _draw(ax: plt.Axes, series: Sequence[Series], first: int) -> None:
    """Plot ``series`` with their own styles; their SVG groups are numbered from ``first``."""
    for i, s in enumerate(series, start=first):
        style = {"markersize": 5, "linewidth": 1.6, **s.style}
        ax.plot(s.x, s.y, label=s.label, gid=f"{_SERIES}{i}", **style)
        if s.low is not None and s.high is not None:
            ax.fill_between(s.x, s.low, s.high, color=style.get("color"), alpha=0.25, linewidth=0)


def _log_bytes_axis(ax: plt.Axes, ticks: Sequence[float]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ticks), [short_bytes(t) for t in ticks], rotation=45)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


# --- all-reduce against size ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AllReduceFacts:
    """The gloo sweep on this build's CPU, its alpha-beta fit, and Advantage 1's copy bandwidth beside beta."""

    world_size: int
    threads_per_rank: int
    ring_factor: float
    alpha_s: float
    beta_gbps: float
    smallest_bytes: float
    largest_bytes: float
    largest_algbw_gbps: float
    copy_gbps: float | None  # this build's CPU copy at its largest buffer (Advantage 1)
    beta_over_copy: float | None
    fit: scaling.AlphaBeta


def allreduce_facts() -> AllReduceFacts:
    result, data = _gloo()
    copy_result = run(copy_bandwidth, device="cpu")
    note([result, copy_result])
    pts = data.allreduce.points
    fit = scaling.fit_alpha_beta([m.shape[0] for m in pts], [m.median for m in pts])
    copy = dram_point(copy_result)
    copy_gbps = copy.gbps if copy is not None and copy.gbps else None
    beta = fit.beta_bytes_per_s / 1e9
    return AllReduceFacts(data.world_size, data.threads_per_rank, scaling.ring_factor(data.world_size),
                          fit.alpha_s, beta, pts[0].shape[0], pts[-1].shape[0],
                          scaling.algbw(pts[-1].shape[0], pts[-1].median) / 1e9, copy_gbps,
                          beta / copy_gbps if copy_gbps else None, fit)


def allreduce_chart() -> str:
    """Time per all-reduce against bytes with the alpha-beta fit (left); algbw with beta and the copy (right)."""
    result, data = _gloo()
    f = allreduce_facts()
    pts = data.allreduce.points
    sizes = [float(m.shape[0]) for m in pts]
    colour = source_colour("live")
    measured = Series("all-reduce, measured", sizes, [m.median for m in pts], [m.p25 for m in pts],
                      [m.p75 for m in pts], style={"color": colour, "marker": "o", "linestyle": "-"})
    fitted = Series("α–β fit, model", sizes, [f.fit.time(s) for s in sizes],
                    style={"color": colour, "marker": "none", "linestyle": MODEL_LINE}, source="model:fit")
    alg = Series("algbw, measured", sizes,
                 [scaling.algbw(s, m.median) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 [scaling.algbw(s, m.p75) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 [scaling.algbw(s, m.p25) / 1e9 for s, m in zip(sizes, pts, strict=True)],
                 style={"color": colour, "marker": "D", "linestyle": "-"})
    beta = Series("β of the fit, model", [sizes[0], sizes[-1]], [f.beta_gbps] * 2,
                  style={"color": colour, "marker": "none", "linestyle": MODEL_LINE_SPARSE}, source="model:fit")
    right = [alg, beta]
    if f.copy_gbps:
        right.append(Series("CPU copy (Advantage 1), measured", [sizes[0], sizes[-1]], [f.copy_gbps] * 2,
                            style={"color": colour, "marker": "s", "linestyle": "-", "linewidth": 1.0}))
    with style_context():
        fig, (left_ax, right_ax) = plt.subplots(1, 2, figsize=(9.6, 4.8))
        _draw(left_ax, [measured, fitted], 0)
        _draw(right_ax, right, 2)
        for ax, ylabel, title in ((left_ax, "time per all-reduce (s)", "Time"),
                                  (right_ax, "bandwidth (GB/s)", "Bandwidth")):
            _log_bytes_axis(ax, sizes[::2])
            ax.set_yscale("log")
            ax.set_xlabel("message size (bytes, float32)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(True, which="major")
            outside_legend(ax, columns=1)
            ax.get_legend().set_bbox_to_anchor((0.5, -0.34))
    desc = (f"All-reduce time from {fmt_time(min(measured.y))} to {fmt_time(max(measured.y))}; "
            f"algbw up to {fmt(max(alg.y))} GB/s.")
    copy = run(copy_bandwidth, device="cpu")
    series = [measured, fitted, *right]
    chart = figure_html(fig, title="gloo all-reduce against message size", desc=desc, caption_text="",
                        results=[result, copy], sources=[s.source for s in series])
    time_table = series_table([measured, fitted], x="Bytes", y="Seconds", x_text=short_bytes, y_text=fmt_time)
    bw_table = series_table([alg], x="Bytes", y="GB/s", x_text=short_bytes)
    return chart + figures_table(chart, time_table + bw_table)


# --- a DDP step against one process --------------------------------------------------------------------------

@dataclass(frozen=True)
class StepFacts:
    """Two ranks x one thread (DDP) against one process x two threads, at the same global batch."""

    single_threads: int
    world_size: int
    cnn_verdict: Verdict  # DDP against the one process
    mlp_verdict: Verdict
    cnn_ratio: float  # DDP step / one-process step
    mlp_ratio: float
    replicas_identical: bool  # both models: the ranks' weights equal bit for bit
    within_tolerance: bool  # both models: every weight within rtol/atol of the one-process step
    rtol: float
    atol: float
    mlp_gradient_mb: float
    mlp_buckets_at_default: int
    default_cap_mb: int


def step_facts() -> StepFacts:
    result, d = _gloo()
    single_result, s = _single()
    note([result, single_result])
    default = next(b for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    return StepFacts(s.threads, d.world_size, verdict(d.cnn_ddp_step, s.cnn_step), verdict(default.step, s.mlp_step),
                     d.cnn_ddp_step.median / s.cnn_step.median, default.step.median / s.mlp_step.median,
                     d.cnn_replica_diff == 0 and d.mlp_replica_diff == 0,
                     d.cnn_within_tolerance and d.mlp_within_tolerance, d.rtol, d.atol,
                     4 * d.mlp_parameters / 1e6, default.buckets, DEFAULT_CAP_MB)


def step_table() -> str:
    """Each model: one process x 2 threads against 2 ranks x 1 thread at the same global batch, and parity."""
    result, d = _gloo()
    single_result, s = _single()
    note([result, single_result])
    mlp_ddp = next(b.step for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    rows = []
    for name, params, batch, one, ddp, diff, ok, gap in (
            ("digits CNN", d.cnn_parameters, d.cnn_global_batch, s.cnn_step, d.cnn_ddp_step, d.cnn_max_weight_diff,
             d.cnn_within_tolerance, d.cnn_replica_diff),
            (f"MLP, {d.mlp_layers} x Linear({d.mlp_width}, {d.mlp_width})", d.mlp_parameters, d.mlp_global_batch,
             s.mlp_step, mlp_ddp, d.mlp_max_weight_diff, d.mlp_within_tolerance, d.mlp_replica_diff)):
        rows.append([name, f"{params:,}", _mb(4 * params), str(batch), _time(one), _time(ddp),
                     fmt(ddp.median / one.median, 2), verdict(ddp, one).value, f"{diff:.2g}", _yes(ok),
                     _yes(gap == 0)])
    headers = ["Model", "Parameters", "fp32 gradients", "Global batch",
               f"1 process x {s.threads} threads: median (IQR)",
               f"{d.world_size} ranks x {d.threads_per_rank} thread, DDP: median (IQR)", "DDP ÷ 1 process",
               "DDP is", "Max weight diff.",
               f"Within rtol {d.rtol:g}, atol {d.atol:g}", "Replicas identical"]
    return html_table(headers, rows, align="lrrrrrrlrll")


# --- buckets -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketFacts:
    """The MLP's DDP step against ``bucket_cap_mb``, and how much of the all-reduce hid behind the backward."""

    caps_mb: tuple[int, ...]
    buckets: tuple[int, ...]
    overlaps: tuple[float, ...]  # fraction of the flat all-reduce hidden, per cap
    best_cap_mb: int
    best_overlap: float
    any_negative: bool
    fastest_cap_mb: int
    caps_told_apart: bool  # the fastest and the slowest cap's steps are told apart by their IQRs


def bucket_facts() -> BucketFacts:
    result, d = _gloo()
    note(result)
    local, flat = d.mlp_local_step.median, d.mlp_flat_allreduce.median
    overlaps = tuple(scaling.overlap_fraction(local, flat, b.step.median) for b in d.buckets)
    best = max(range(len(overlaps)), key=lambda k: overlaps[k])
    fastest = min(d.buckets, key=lambda b: b.step.median)
    slowest = max(d.buckets, key=lambda b: b.step.median)
    return BucketFacts(tuple(b.bucket_cap_mb for b in d.buckets), tuple(b.buckets for b in d.buckets), overlaps,
                       d.buckets[best].bucket_cap_mb, overlaps[best], any(o < 0 for o in overlaps),
                       fastest.bucket_cap_mb, told_apart(fastest.step, slowest.step))


def bucket_chart() -> str:
    """The MLP's DDP step against bucket_cap_mb, beside the step without DDP and that plus one flat all-reduce."""
    result, d = _gloo()
    caps = [float(b.bucket_cap_mb) for b in d.buckets]
    steps = [b.step for b in d.buckets]
    colour = source_colour("live")
    local = d.mlp_local_step.median
    flat = d.mlp_flat_allreduce.median
    ddp = Series("DDP step", caps, [m.median for m in steps], [m.p25 for m in steps], [m.p75 for m in steps],
                 style={"color": colour, "marker": "o", "linestyle": "-"})
    alone = Series("step without DDP", caps, [local] * len(caps),
                   style={"color": colour, "marker": "s", "linestyle": "-", "linewidth": 1.0})
    plus = Series("no DDP + flat all-reduce", caps, [local + flat] * len(caps),
                  style={"color": colour, "marker": "^", "linestyle": "-", "linewidth": 1.0})
    with style_context():
        fig, ax = plt.subplots(figsize=(7.0, 4.6))
        _draw(ax, [ddp, alone, plus], 0)
        ax.set_xscale("log")
        ax.set_xticks(caps, [f"{int(c)}" for c in caps])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("bucket_cap_mb (MiB)")
        ax.set_ylabel("time per training step (s)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"MLP, {_mb(4 * d.mlp_parameters)} of gradients, 2 ranks")
        ax.grid(True, which="major")
        outside_legend(ax, columns=2)
    chart = figure_html(fig, title="DDP step against bucket size", caption_text="", results=result,
                        desc=f"DDP step from {fmt_time(min(ddp.y))} to {fmt_time(max(ddp.y))}.",
                        sources=[s.source for s in (ddp, alone, plus)])
    table = series_table([ddp], x="bucket_cap_mb", y="Seconds per step", y_text=fmt_time)
    return chart + figures_table(chart, table, f"Step without DDP: {fmt_time(local)}; "
                                               f"flat all-reduce: {fmt_time(flat)}.")


def bucket_table() -> str:
    """Buckets, step time and the share of the all-reduce hidden behind the backward pass, per bucket cap."""
    result, d = _gloo()
    note(result)
    local, flat = d.mlp_local_step, d.mlp_flat_allreduce
    rows = [["no DDP", "–", _time(local), "–"],
            ["flat all-reduce", "1", _time(flat), "–"]]
    for b in d.buckets:
        hidden = scaling.overlap_fraction(local.median, flat.median, b.step.median)
        rows.append([f"DDP, bucket_cap_mb = {b.bucket_cap_mb}", str(b.buckets), _time(b.step), _pct(hidden)])
    return html_table(["Step", "Buckets (all-reduces per step)", "Time: median (IQR)", "Overlap"], rows)


# --- accumulation and compression ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AccumulationFacts:
    """``no_sync`` over ``micro_batches`` micro-batches, and ``bf16_compress_hook``, on the MLP."""

    micro_batches: int
    allreduces_sync: int
    allreduces_no_sync: int
    no_sync_verdict: Verdict  # no_sync against an all-reduce after every micro-batch
    bf16_verdict: Verdict  # bf16 compression against the fp32 all-reduce
    bf16_within_tolerance: bool
    bf16_max_weight_diff: float
    fp32_max_weight_diff: float


def accumulation_facts() -> AccumulationFacts:
    result, d = _gloo()
    note(result)
    default = next(b.step for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    return AccumulationFacts(d.accumulation, d.allreduces_sync, d.allreduces_no_sync,
                             verdict(d.no_sync_step, d.sync_every_step), verdict(d.bf16_step, default),
                             d.bf16_within_tolerance, d.bf16_max_weight_diff, d.mlp_max_weight_diff)


def accumulation_table() -> str:
    """All-reduces and time per optimizer step of ``accumulation`` micro-batches, with and without no_sync; then
    the default fp32 all-reduce against bf16_compress_hook."""
    result, d = _gloo()
    note(result)
    k = d.accumulation
    default = next(b.step for b in d.buckets if b.bucket_cap_mb == DEFAULT_CAP_MB)
    rows = [[f"{k} micro-batches, synced", str(d.allreduces_sync), _time(d.sync_every_step), "–",
             "–"],
            [f"{k} micro-batches, no_sync", str(d.allreduces_no_sync), _time(d.no_sync_step),
             "–", "–"],
            [f"1 batch, fp32 all-reduce ({_mb(4 * d.mlp_parameters)} per rank)", "–", _time(default),
             f"{d.mlp_max_weight_diff:.2g}", _yes(d.mlp_within_tolerance)],
            [f"1 batch, bf16_compress_hook ({_mb(2 * d.mlp_parameters)} per rank)", "–", _time(d.bf16_step),
             f"{d.bf16_max_weight_diff:.2g}", _yes(d.bf16_within_tolerance)]]
    headers = ["Optimizer step (MLP)", "All-reduces per optimizer step", "Time: median (IQR)",
               "Max weight diff.", f"Within rtol {d.rtol:g}, atol {d.atol:g}"]
    return html_table(headers, rows, align="lrrrl")


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


@dataclass(frozen=True)
class LinkFigure:
    """A datasheet link the model uses."""

    name: str
    gbps: float
    largest_gpus: int


@dataclass(frozen=True)
class Lowest:
    """The lowest modelled efficiency without overlap, and where."""

    efficiency: float
    model: str  # the record's GPU, e.g. H200
    link: str
    gpus: int
    batch: int


@dataclass(frozen=True)
class ModelFacts:
    """What the scaling model says for the records it starts from."""

    sources: tuple[Source, ...]
    models: tuple[str, ...]
    links: tuple[LinkFigure, ...]
    gradient_mb: float  # the synthetic CNN's fp32 gradients (the same network in every record)
    backward_share: float
    all_hidden_with_overlap: bool  # with overlap, every modelled case keeps 100 % efficiency
    lowest: Lowest | None


def model_facts() -> ModelFacts:
    inputs = model_inputs()
    note([i.source for i in inputs])
    lowest = None
    hidden = True
    for i in inputs:
        for batch, step in (i.smallest, i.largest):
            for link in scaling.INTERCONNECTS:
                for n in link.gpus:
                    p = scaling.predict(step, i.grad_bytes, n, link)
                    hidden = hidden and p.hidden
                    if lowest is None or p.efficiency_no_overlap < lowest.efficiency:
                        lowest = Lowest(p.efficiency_no_overlap, i.source.model, link.name, n, batch)
    return ModelFacts(tuple(i.source for i in inputs), tuple(i.source.model for i in inputs),
                      tuple(LinkFigure(ln.name, ln.bytes_per_s / 1e9, ln.gpus[-1]) for ln in scaling.INTERCONNECTS),
                      inputs[0].grad_bytes / 1e6 if inputs else 0.0, scaling.BACKWARD_SHARE, hidden and bool(inputs),
                      lowest)


def model_inputs_table() -> str:
    """Every input of the model, and where it comes from."""
    inputs = model_inputs()
    note([i.source for i in inputs])
    rows = []
    for i in inputs:
        where = f"results/{i.source.record.name}" if i.source.record else "this build"
        for batch, step in (i.smallest, i.largest):
            rows.append([i.source.cell(), f"training step, batch {batch} per GPU", fmt_time(step),
                         f"measured: training_throughput, {where}"])
        rows.append([i.source.cell(), "fp32 gradients", _mb(i.grad_bytes),
                     f"training_throughput, {where}"])
        if i.peak_fp32:
            rows.append([i.source.cell(), "FP32 peak", f"{fmt(i.peak_fp32 / 1e12)} TFLOP/s",
                         "datasheet"])
    for link in scaling.INTERCONNECTS:
        rows.append(["all", f"{link.name}, one way per GPU", _gbps(link.bytes_per_s), link.source])
    rows.append(["all", "backward share", fmt(scaling.BACKWARD_SHARE, 3),
                 "assumed"])
    rows.append(["all", "ring latency", "0", "left out"])
    return html_table(["Record", "Input", "Value", "Source"], rows, align="llrl")


def scaling_chart() -> str:
    """Modelled scaling efficiency without overlap against GPU count: one panel per link, one dotted line per
    record, at its smallest measured batch per GPU (where the all-reduce weighs most). Empty without records."""
    inputs = model_inputs()
    if not inputs:
        return ""
    note([i.source for i in inputs])
    lowest = min(100 * scaling.predict(i.smallest[1], i.grad_bytes, link.gpus[-1], link).efficiency_no_overlap
                 for i in inputs for link in scaling.INTERCONNECTS)
    all_series: list[Series] = []
    with style_context():
        fig, axes = plt.subplots(1, len(scaling.INTERCONNECTS), figsize=(9.6, 4.4), sharey=True)
        for ax, link in zip(axes, scaling.INTERCONNECTS, strict=True):
            series = []
            for i in inputs:
                batch, step = i.smallest
                preds = [scaling.predict(step, i.grad_bytes, n, link) for n in link.gpus]
                origin = f"model:{i.source.record.name}" if i.source.record else "model:live"
                series.append(Series(f"{i.source.model}, batch {batch}, model", list(link.gpus),
                                     [100 * p.efficiency_no_overlap for p in preds],
                                     style={"color": source_colour(i.source.origin), "marker": "none",
                                            "linestyle": MODEL_LINE, "linewidth": 2.2}, source=origin))
            _draw(ax, series, len(all_series))
            all_series += [Series(f"{s.label}, {link.name}", s.x, s.y, style=s.style, source=s.source)
                           for s in series]
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(link.gpus), [str(g) for g in link.gpus])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            # One y range for the three panels: a link that costs a few per cent must not look like one that
            # costs half.
            ax.set_ylim(min(lowest, 99.0) - 1, 100.5)
            ax.set_xlabel("GPUs" + (" (8 a node)" if link is scaling.IB_NDR else ""))
            ax.set_title(link.name, fontsize=11)
            ax.grid(True, which="major")
        axes[0].set_ylabel("scaling efficiency, model (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=10, frameon=False)
        fig.subplots_adjust(bottom=0.26, wspace=0.12)
    desc = "Efficiency, model: " + " ".join(
        f"{s.label}: {fmt(min(s.y))} to {fmt(max(s.y))} %." for s in all_series)
    chart = figure_html(fig, title="Data-parallel scaling model", desc=desc, caption_text="",
                        results=[i.source for i in inputs], sources=[s.source for s in all_series])
    table = series_table(all_series, x="GPUs", y="Scaling efficiency without overlap, model (%)")
    return chart + figures_table(chart, table)


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
                                 _pct(p.efficiency_overlap), _yes(p.hidden)])
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
                       if i.peak_fp32 else "–")
            measured = scaling.measured_hiding_batch(i.steps, comm)
            rows.append([i.source.cell(f"{i.source.model} model"), link.name, str(n), fmt_time(comm), at_peak,
                         str(measured) if measured is not None else f"> {i.largest[0]}"])
    headers = ["Record", "Link", "GPUs", "All-reduce (model)", "Hiding batch, at FP32 peak",
               "Hiding batch, measured"]
    return html_table(headers, rows, align="llrrrr")


# --- published references ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """One published all-reduce measurement, set against the model's link bandwidth."""

    label: str
    gpus: int
    gpu: str
    largest_bytes: float
    largest_busbw_gbps: float
    of_link: float  # largest_busbw / the model's NVLink figure
    in_switch_reduction: bool
    where: str
    url: str


@dataclass(frozen=True)
class ReferenceFacts:
    """The published figures beside the model, and what they say at the CNN's gradient size."""

    references: tuple[Reference, ...]
    link_gbps: float  # the model's NVLink 4 figure
    gradient_bytes: float
    busbw_at_gradient_gbps: float  # the 8x H200 sweep, interpolated at the gradient size
    at_gradient_of_link: float
    allreduce_model_s: float  # 8 GPUs, ring, the model's link, no latency
    allreduce_published_s: float  # the same with the published busbw at that size
    sweep_label: str


@functools.cache
def _synthetic_gradient_bytes() -> float:
    """The synthetic CNN's fp32 gradients, where no record gives its parameter count."""
    from gpucnn.models import build_model, parameter_count

    return 4.0 * parameter_count(build_model(SYNTHETIC))


def reference_facts() -> ReferenceFacts:
    inputs = model_inputs()
    note([i.source for i in inputs])
    link = scaling.NVLINK4.bytes_per_s
    refs = tuple(Reference(p.label, p.gpus, p.gpu, p.largest[0], p.largest[1] / 1e9, p.largest[1] / link,
                           p.in_switch_reduction, p.where, p.url) for p in scaling.PUBLISHED)
    sweep = scaling.ML_ENGINEERING_8XH200
    grad = inputs[0].grad_bytes if inputs else _synthetic_gradient_bytes()
    at = sweep.busbw_at(grad)
    return ReferenceFacts(refs, link / 1e9, grad, at / 1e9, at / link,
                          scaling.ring_allreduce_s(grad, sweep.gpus, link),
                          scaling.ring_allreduce_s(grad, sweep.gpus, at), sweep.label)


def reference_chart() -> str:
    """busbw against message size: the model's NVLink figure (dotted, no markers) and the published
    measurements (black stars), with the CNN's gradient size marked."""
    f = reference_facts()
    link_series = Series(f"NVLink 4 datasheet, model ({fmt(f.link_gbps)} GB/s)",
                         [2.0**15, 2.0**35], [f.link_gbps] * 2,
                         style={"color": INK, "marker": "none", "linestyle": MODEL_LINE}, source="model:datasheet")
    pubs = [Series(p.label, list(p.sizes_bytes), [b / 1e9 for b in p.busbw_bytes_per_s],
                   style={**STAR, "markersize": 9 if len(p.sizes_bytes) > 1 else 15}, source=f"published:{k}")
            for k, p in enumerate(scaling.PUBLISHED)]
    with style_context():
        fig, ax = plt.subplots(figsize=(7.0, 4.6))
        _draw(ax, [link_series, *pubs], 0)
        ax.axvline(f.gradient_bytes, color=INK, linewidth=0.8, alpha=0.5)
        ax.text(f.gradient_bytes * 1.15, f.link_gbps * 0.08, "CNN's gradients", fontsize=10)
        _log_bytes_axis(ax, [2.0**k for k in range(15, 36, 4)])
        ax.set_ylim(0, 560)
        ax.set_xlabel("message size per GPU (bytes)")
        ax.set_ylabel("busbw (GB/s)")
        ax.set_title("All-reduce over NVLink 4, 8 GPUs")
        ax.grid(True, which="major")
        outside_legend(ax, columns=1)
        ax.get_legend().set_bbox_to_anchor((0.5, -0.26))
    chart = figure_html(fig, title="Published all-reduce busbw", caption_text="",
                        desc=f"Published busbw up to {fmt(max(r.largest_busbw_gbps for r in f.references))}"
                             f" GB/s; model link {fmt(f.link_gbps)} GB/s.",
                        sources=[s.source for s in (link_series, *pubs)])
    table = series_table([link_series, *pubs], x="Bytes", y="busbw (GB/s)", x_text=short_bytes)
    return chart + figures_table(chart, table)


def reference_table() -> str:
    """The published references with their exact citations."""
    rows = [[r.label, f"{r.gpus}x {r.gpu}", short_bytes(r.largest_bytes), f"{fmt(r.largest_busbw_gbps)} GB/s",
             _yes(r.in_switch_reduction), f'<a href="{r.url}">{r.where}</a>'] for r in reference_facts().references]
    return html_table(["Reference", "GPUs", "Largest message", "busbw there", "Reduced in the switch",
                       "Citation"], rows, align="llrrll")


# --- a GPU build ----------------------------------------------------------------------------------------------

class GpuState(enum.Enum):
    """What this build measured of data parallelism on its GPUs."""

    NONE = "none"  # no GPU in this build
    ONE = "one"  # one GPU: DDP's overhead on one NCCL rank, gloo's host-staged all-reduce of CUDA tensors
    SEVERAL = "several"  # NCCL across the GPUs as well


@dataclass(frozen=True)
class GpuFacts:
    """``gpu_ddp`` on this build's GPU(s), against the pinned host-to-device copy of Advantage 1."""

    state: GpuState
    gpu: str = ""
    gpus: int = 0
    topology: tuple[str, ...] | None = None  # nvidia-smi topo -m, line by line
    ddp_overhead_s: float = 0.0  # DDP step on one NCCL rank minus the plain step (MLP)
    ddp_overhead_ratio: float = 1.0
    overhead_verdict: Verdict = Verdict.EQUAL  # the one-rank DDP step against the plain step
    gloo_beta_gbps: float = 0.0  # host-staged gloo all-reduce of CUDA tensors, two ranks on the one GPU
    pinned_h2d_gbps: float | None = None
    gloo_over_h2d: float | None = None
    nccl_beta_gbps: float | None = None  # two or more GPUs
    nccl_busbw_gbps: float | None = None  # at the largest message
    nccl_ddp_verdict: Verdict | None = None  # the DDP step across the GPUs against one GPU's plain step


def gpu_facts() -> GpuFacts:
    if not live_has_accelerator():
        return GpuFacts(GpuState.NONE)
    src = accelerators(gpu_ddp)[0]
    d = src.result.typed
    h2d_result = run(host_to_device_bandwidth, device=src.device)
    note([src, h2d_result])
    pinned = h2d_result.typed.pinned.points
    pinned_gbps = pinned[-1].gbps if pinned and pinned[-1].gbps else None
    pts = d.gloo_allreduce.points
    gloo = scaling.fit_alpha_beta([m.shape[0] for m in pts], [m.median for m in pts]).beta_bytes_per_s / 1e9
    nccl_beta = nccl_busbw = nccl_verdict = None
    if d.nccl_allreduce is not None and d.nccl_allreduce.points:
        npts = d.nccl_allreduce.points
        nccl_beta = scaling.fit_alpha_beta([m.shape[0] for m in npts], [m.median for m in npts]).beta_bytes_per_s / 1e9
        nccl_busbw = scaling.busbw(npts[-1].shape[0], npts[-1].median, d.gpus) / 1e9
        if d.nccl_ddp_step is not None:
            nccl_verdict = verdict(d.nccl_ddp_step, d.plain_step)
    return GpuFacts(GpuState.SEVERAL if d.gpus > 1 else GpuState.ONE, src.model, d.gpus, d.topology,
                    d.one_rank_ddp_step.median - d.plain_step.median,
                    d.one_rank_ddp_step.median / d.plain_step.median, verdict(d.one_rank_ddp_step, d.plain_step),
                    gloo, pinned_gbps, gloo / pinned_gbps if pinned_gbps else None, nccl_beta, nccl_busbw,
                    nccl_verdict)


def gpu_table() -> str:
    """This build's GPU figures of ``gpu_ddp``, or nothing on a CPU-only build."""
    if not live_has_accelerator():
        return ""
    src = accelerators(gpu_ddp)[0]
    d = src.result.typed
    note(src)
    rows = [["MLP step, no DDP", "1", _time(d.plain_step)],
            ["MLP step, DDP, 1 NCCL rank", "1", _time(d.one_rank_ddp_step)]]
    pts = d.gloo_allreduce.points
    rows.append([f"gloo all-reduce of {short_bytes(pts[-1].shape[0])} CUDA tensors, 2 ranks on 1 GPU", "1",
                 _time(pts[-1])])
    if d.nccl_allreduce is not None and d.nccl_allreduce.points:
        m = d.nccl_allreduce.points[-1]
        rows.append([f"NCCL all-reduce of {short_bytes(m.shape[0])}", str(d.gpus), _time(m)])
    if d.nccl_ddp_step is not None:
        rows.append([f"MLP step, DDP on {d.gpus} NCCL ranks", str(d.gpus), _time(d.nccl_ddp_step)])
    return html_table(["Measured on " + src.cell(), "GPUs", "Time: median (IQR)"], rows, align="lrr")
