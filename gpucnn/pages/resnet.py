"""Page "ResNet at real scale": facts, tables and charts only; every sentence is in docs/resnet.md.

Each function returns HTML (a table or a chart) built from typed results. Verdicts (which layer types are
compute- or memory-bound, which speed-up is within noise) are decided here as short labels; the page's
Markdown explains them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt

from gpucnn.bench import GPU_PEAK_MARGIN
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.experiments.resnet import (
    CPU_WORKLOAD,
    GPU_WORKLOAD,
    resnet_memory,
    resnet_profile,
    resnet_train_sweep,
    resnet_variants,
    work_by_layer_type,
)
from gpucnn.figures import dram_point, fastest_images, images_per_s, told_apart
from gpucnn.hardware import format_bytes
from gpucnn.measurement import Measurement
from gpucnn.models import RESNETS, build_resnet, layer_macs, parameter_count
from gpucnn.render import (
    Series,
    archived_style,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    series_table,
    source_colour,
    style_context,
)
from gpucnn.results import run
from gpucnn.sources import Source, note, one_line, sibling, sources

# What the model table lists: the two networks at the two image sizes the page measures.
IMAGE_SIZES = (224, 112)


def model_table() -> str:
    """ResNet-18 and -50: parameters and multiply-adds per image, counted from the layers here."""
    rows = []
    for name in RESNETS:
        model = build_resnet(name)
        macs = [sum(layer_macs(model, (1, 3, s, s)).values()) for s in IMAGE_SIZES]
        convs = sum(1 for m in model.modules() if type(m).__name__ == "Conv2d")
        rows.append([name, f"{parameter_count(model):,}", str(convs),
                     *[f"{fmt(m / 1e9)} G" for m in macs], format_bytes(4 * parameter_count(model))])
    headers = ["Model", "Parameters", "Convolutions", *[f"Multiply-adds per image, {s}x{s}" for s in IMAGE_SIZES],
               "Weights, fp32"]
    return html_table(headers, rows)


def this_cpu(fn: Callable[..., Any]) -> Source:
    """This build's CPU on ResNet-18 at 112x112 (a GPU build's GPU measures ResNet-50 instead)."""
    return Source("cpu", run(fn, device="cpu", **CPU_WORKLOAD))


# --- throughput ------------------------------------------------------------------

def _throughput_sources() -> tuple[list[Source], list[Source]]:
    """(ResNet-18 at 112 on every device, GPUs with their own host CPUs; ResNet-50 at 224 on GPUs)."""
    small = sources(resnet_train_sweep, hosts=True, **CPU_WORKLOAD)
    large = sources(resnet_train_sweep, cpu=False, **GPU_WORKLOAD)
    return small, large


def _images_series(src: Source) -> Series:
    pts = src.result.typed.sweep.points
    style = {"color": source_colour(src.origin), "marker": "s" if src.is_cpu else "o",
             "linestyle": "-" if src.is_cpu else "-."}
    return Series(src.label, [m.shape[0] for m in pts], [m.shape[0] / m.median for m in pts],
                  [m.shape[0] / m.p75 for m in pts], [m.shape[0] / m.p25 for m in pts], style=style,
                  source=src.origin)


def _draw(ax: plt.Axes, series: Sequence[Series], title: str) -> None:
    for s in series:
        style = {"markersize": 4, "linewidth": 1.6, **s.style}
        if s.archived:
            style = archived_style(style)
        ax.plot(s.x, s.y, label=s.label, **style)
        ax.fill_between(s.x, s.low, s.high, color=style["color"], alpha=0.12 if s.archived else 0.25, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="major")


def throughput_chart() -> str:
    """Images/s against batch: ResNet-18 at 112x112 on every device (left), ResNet-50 at 224x224 on GPUs."""
    small, large = _throughput_sources()
    panels = [(small, "ResNet-18, 112x112")] + ([(large, "ResNet-50, 224x224")] if large else [])
    with style_context():
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
        all_series = []
        for ax, (found, title) in zip(axes[0], panels, strict=True):
            series = [_images_series(s) for s in found]
            all_series += series
            _draw(ax, series, title)
            ax.set_xlabel("batch size (images)")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=10, ncol=1)
        axes[0][0].set_ylabel("training images per second")
    desc = "Training images per second against batch size. " + " ".join(
        f"{s.label}: {fmt(min(s.y))} to {fmt(max(s.y))} images/s." for s in all_series)
    chart = figure_html(fig, title="ResNet training throughput against batch size", desc=desc, caption_text="",
                        results=small + large, sources=[s.source for s in all_series])
    table = series_table(all_series, x="Batch", y="Images/s")
    return chart + figures_table(chart, table)


def throughput_table() -> str:
    """Each device's fastest point, and a GPU's speed over its own host CPU on the same workload."""
    small, large = _throughput_sources()
    host_of = {s.origin: s for s in small if s.is_cpu}
    rows = []
    for found, workload in ((small, CPU_WORKLOAD), (large, GPU_WORKLOAD)):
        for src in found:
            m = fastest_images(src.result.typed.sweep.points)
            if m is None:
                continue
            host = host_of.get(src.origin) if not src.is_cpu and workload is CPU_WORKLOAD else None
            host_best = fastest_images(host.result.typed.sweep.points) if host else None
            ratio = f"{fmt(images_per_s(m) / images_per_s(host_best), 2)}x" if host_best else fmt(None)
            rows.append([src.cell(), f"{workload['model']}, {workload['image']}x{workload['image']}",
                         str(m.shape[0]), fmt(images_per_s(m)), fmt(m.gflops),
                         f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else fmt(None), ratio])
    return html_table(["Device", "Model, image", "Fastest batch", "Images/s", "GFLOP/s", "% of FP32 peak",
                       "Over its host CPU"], rows)


# --- speed-ups -------------------------------------------------------------------

def _variant_sources() -> list[Source]:
    """The CPU of this build on ResNet-18 at 112, then every GPU on ResNet-50 at 224."""
    return [this_cpu(resnet_variants), *sources(resnet_variants, cpu=False, **GPU_WORKLOAD)]


def variants_table() -> str:
    """Each speed-up against fp32 on the same device and batch, with the step's share of its precision's peak."""
    found = _variant_sources()
    rows = []
    for src in found:
        data = src.result.typed
        base = data.variants.get("fp32")
        for name, m in data.variants.items():
            speedup = base.median / m.median if base else None
            same = base is not None and name != "fp32" and not told_apart(m, base)
            rows.append([src.cell(), f"{one_line(data.model)} {data.image}x{data.image}, batch {data.batch}",
                         html.escape(name), fmt(data.batch / m.median),
                         f"{fmt(speedup, 2)}x" + (" (within noise)" if same else "") if speedup else fmt(None),
                         f"{fmt(m.pct_peak_flops, 2)} % of {_precision(m)}" if m.pct_peak_flops else fmt(None)])
    note(found)
    return html_table(["Device", "Workload", "Variant", "Images/s", "Speed-up over fp32", "% of peak"], rows,
                      align="lllrrr")


def _precision(m: Measurement) -> str:
    if m.dtype == "bfloat16":
        return "bf16"
    return "TF32" if m.peak_flops and m.hardware and m.hardware.accelerator and m.hardware.accelerator.peaks \
        and m.peak_flops == m.hardware.accelerator.peaks.tf32 else "FP32"


def skipped_variants() -> str:
    """Which variant each device skipped, as codes the page explains (a list, one line per device)."""
    items = []
    for src in _variant_sources():
        for name, code in src.result.typed.skipped.items():
            items.append(f"<li>{src.cell()}: {html.escape(name)} <code>{html.escape(code)}</code></li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


# --- memory ----------------------------------------------------------------------

# The batches at which the memory table adds the parts up: a CPU's, and a GPU's.
MEMORY_TABLE_BATCHES = (8, 256)


def _memory_sources() -> list[Source]:
    return [this_cpu(resnet_memory), *sources(resnet_memory, cpu=False, **GPU_WORKLOAD)]


@dataclass(frozen=True)
class MemoryFit:
    """peak = fixed + per_image x batch, fitted to a GPU's measured peaks (least squares)."""

    fixed: float
    per_image: float

    def largest_batch(self, memory_bytes: float) -> int:
        """The largest power-of-two batch whose modelled peak fits ``memory_bytes``."""
        batch = 1
        while self.fixed + self.per_image * batch * 2 <= memory_bytes:
            batch *= 2
        return batch


def fit_memory(points: Sequence[Sequence[int]]) -> MemoryFit | None:
    """A straight line through (batch, peak bytes) points; None with fewer than two batches."""
    if len({b for b, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(b for b, _ in points) / n
    my = sum(p for _, p in points) / n
    slope = sum((b - mx) * (p - my) for b, p in points) / sum((b - mx) ** 2 for b, _ in points)
    return MemoryFit(my - slope * mx, slope)


def memory_table() -> str:
    """Weights, gradients, momentum and saved activations per image, counted on each device."""
    rows = []
    found = _memory_sources()
    for src in found:
        d = src.result.typed
        per_image = d.activation_bytes_batch2 - d.activation_bytes_batch1
        fixed = d.weight_bytes + d.gradient_bytes + d.optimizer_bytes
        rows.append([src.cell(), f"{one_line(d.model)}, {d.image}x{d.image}", format_bytes(d.weight_bytes),
                     format_bytes(d.gradient_bytes), format_bytes(d.optimizer_bytes), format_bytes(per_image),
                     *[format_bytes(fixed + b * per_image) for b in MEMORY_TABLE_BATCHES]])
    note(found)
    return html_table(["Device", "Model, image", "Weights", "Gradients", "SGD momentum", "Activations per image",
                       *[f"Total, batch {b}" for b in MEMORY_TABLE_BATCHES]], rows)


def _gpu_memory_sources() -> list[Source]:
    return [s for s in _memory_sources() if not s.is_cpu and s.result.typed.peak_bytes]


def largest_batch_table() -> str:
    """The largest batch that fit each GPU (measured), and for GPU models without that measurement, a model.

    A model is drawn from a measured GPU's fit (fixed + per-image bytes) and the other GPU's memory size,
    for archived records of the same workload that lack the memory sweep.
    """
    measured = _gpu_memory_sources()
    rows = []
    for src in measured:
        d = src.result.typed
        fit = fit_memory(d.peak_bytes)
        rows.append([src.cell(), format_bytes(d.device_memory_bytes), str(d.largest_batch or ""), "measured",
                     format_bytes(fit.per_image) if fit else ""])
    if measured:
        basis = measured[0]
        fit = fit_memory(basis.result.typed.peak_bytes)
        have = {s.model for s in measured}
        # Every GPU the site shows (each has the headline matmul sweep), not only those with ResNet figures.
        for src in sources(matmul_sweep, cpu=False):
            memory = src.hardware.accelerator.memory_bytes if src.hardware.accelerator else None
            if src.model in have or not memory or fit is None:
                continue
            rows.append([src.cell(), format_bytes(memory), str(fit.largest_batch(memory)),
                         html.escape(f"model, from {basis.model}'s fit"), format_bytes(fit.per_image)])
            note([basis, src])  # the fit's record, and the record that gives this GPU's memory size
    note(measured)
    return html_table(["GPU", "Memory", "Largest batch (power of 2)", "How it is known", "Peak per image"], rows)


def memory_chart() -> str:
    """Peak memory of a step against batch, measured on each GPU, beside the count from saved tensors."""
    found = _gpu_memory_sources()
    if not found:
        return ""
    series = []
    for src in found:
        d = src.result.typed
        batches = [b for b, _ in d.peak_bytes]
        colour = source_colour(src.origin)
        series.append(Series(src.label, batches, [p / 1e9 for _, p in d.peak_bytes],
                             style={"color": colour, "marker": "o", "linestyle": "-."}, source=src.origin))
        per_image = d.activation_bytes_batch2 - d.activation_bytes_batch1
        fixed = d.weight_bytes + d.gradient_bytes + d.optimizer_bytes
        # The count, not a measurement: drawn thin and dotted without markers, the site's encoding of a model.
        series.append(Series(f"{src.model}: count of saved tensors (model)", batches,
                             [(fixed + per_image * b) / 1e9 for b in batches],
                             style={"color": colour, "marker": "", "linestyle": ":", "linewidth": 1.2},
                             source=src.origin))
    with style_context():
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for s in series:
            style = {"markersize": 4, "linewidth": 1.6, **s.style}
            if s.archived and style.get("marker"):
                style = archived_style(style)
            ax.plot(s.x, s.y, label=s.label, **style)
        for src in found:
            if src.result.typed.device_memory_bytes:
                ax.axhline(src.result.typed.device_memory_bytes / 1e9, color=source_colour(src.origin),
                           linestyle="--", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size (images)")
        ax.set_ylabel("peak memory of one step (GB)")
        ax.set_title("ResNet-50 224x224 fp32 training step: peak memory")
        ax.grid(True, which="major")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=10)
    desc = "Peak memory against batch. " + " ".join(f"{s.label}: {fmt(min(s.y))} to {fmt(max(s.y))} GB."
                                                    for s in series)
    chart = figure_html(fig, title="Peak memory of a ResNet-50 training step", desc=desc, caption_text="",
                        results=found, sources=[s.source for s in series])
    return chart + figures_table(chart, series_table(series, x="Batch", y="GB"))


# --- where the time goes -----------------------------------------------------------

COMPUTE_BOUND = "compute-bound"
MEMORY_BOUND = "memory-bound"
NEAR_RIDGE = "near the ridge"
# An estimated intensity within this factor of the ridge point is called neither bound: the byte counts are
# estimates, and a layer type there is held back by both ceilings.
RIDGE_FACTOR = 2.0


def roofline_verdict(intensity: float, ridge_point: float) -> str:
    """Which roof bounds a layer type: compute above the ridge, memory below, neither within RIDGE_FACTOR."""
    if intensity >= RIDGE_FACTOR * ridge_point:
        return COMPUTE_BOUND
    if intensity <= ridge_point / RIDGE_FACTOR:
        return MEMORY_BOUND
    return NEAR_RIDGE


def _profile_sources() -> list[Source]:
    return [this_cpu(resnet_profile), *sources(resnet_profile, cpu=False, **GPU_WORKLOAD)]


def ridge(src: Source, precision: str) -> float | None:
    """FLOP per byte where the roofline bends: the peak of ``precision`` over the memory bandwidth.

    A GPU's from its datasheet; a CPU's from its peak estimate and the copy bandwidth measured beyond its
    caches by the same build or record (a CPU has no datasheet bandwidth here).
    """
    hw = src.hardware
    if src.is_cpu:
        peak = hw.cpu.peak_bf16 if precision == "bf16" else hw.cpu.peak_fp32
        copy = sibling(src, copy_bandwidth)
        dram = dram_point(copy.result) if copy else None
        if peak is None or dram is None or not dram.gbps:
            return None
        return peak.value / (dram.gbps * 1e9)
    peaks = hw.accelerator.peaks if hw.accelerator else None
    if peaks is None:
        return None
    flops = peaks.bf16 if precision == "bf16" else peaks.fp32
    return flops / peaks.bandwidth if flops else None


OVER_PEAK = "above the datasheet bandwidth (bytes overestimated)"


def _bandwidth(src: Source) -> float | None:
    """A GPU's datasheet memory bandwidth in bytes/s; None for a CPU (its caches have no datasheet figure)."""
    acc = src.hardware.accelerator
    return acc.peaks.bandwidth if not src.is_cpu and acc and acc.peaks else None


def profile_table() -> str:
    """Time per layer type, its estimated arithmetic intensity, the rate it reached, and the roofline's verdict."""
    rows = []
    found = _profile_sources()
    for src in found:
        d = src.result.typed
        total = sum(r.seconds for r in d.rows) or 1.0
        # The work is an estimate from the layers' shapes, made here rather than read from the result: a
        # record keeps the estimate of the code that made it, and a better count applies to old records too.
        params = src.result.params
        shape = (d.batch, 3, params["image"], params["image"])
        work = {k: w for k, w in work_by_layer_type(build_resnet(params["model"]), shape,
                                                    2 if d.precision == "bf16" else 4).items()}
        bend = ridge(src, d.precision)
        for r in d.rows:
            w = work.get(r.layer_type)
            intensity = w["flops"] / w["bytes"] if w and w["bytes"] else None
            verdict = roofline_verdict(intensity, bend) if intensity is not None and bend is not None else None
            rates = []
            if w and r.seconds > 0 and verdict in (COMPUTE_BOUND, NEAR_RIDGE):
                rates.append(f"{fmt(w['flops'] / r.seconds / 1e9)} GFLOP/s")
            if w and r.seconds > 0 and verdict in (MEMORY_BOUND, NEAR_RIDGE):
                ceiling = _bandwidth(src)
                reached = w["bytes"] / r.seconds
                # Faster than the memory can be: the byte count overestimates this layer type's traffic (its
                # data stayed in a cache, or a kernel did fewer passes), so no rate is printed for it.
                rates.append(OVER_PEAK if ceiling and reached > GPU_PEAK_MARGIN * ceiling
                             else f"{fmt(reached / 1e9)} GB/s")
            rows.append([src.cell(), html.escape(r.layer_type),
                         f"{fmt(100 * r.seconds / total, 2)} %", fmt_time(r.seconds),
                         fmt(intensity), verdict or fmt(None), ", ".join(rates) or fmt(None)])
    note(found)
    return html_table(["Device", "Layer type", "Share of step", "Time per step", "FLOP per byte (estimate)",
                       "Roofline", "Reached"], rows, align="llrrrll")


def profile_setup_table() -> str:
    """How each profiled step ran: model, batch, precision and memory format."""
    rows = []
    for src in _profile_sources():
        d = src.result.typed
        model = GPU_WORKLOAD if not src.is_cpu else CPU_WORKLOAD
        rows.append([src.cell(), f"{model['model']}, {model['image']}x{model['image']}", str(d.batch), one_line(d.precision),
                     "channels_last" if d.channels_last else "contiguous",
                     "kernel time" if d.device_time else "self CPU time", fmt(ridge(src, d.precision))])
    return html_table(["Device", "Model, image", "Batch", "Precision", "Memory format", "Time counted",
                       "Ridge point (FLOP per byte)"], rows)
