"""Page "Convolutional neural networks": filters on a digit, conv2d timings, a CNN profile."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from gpucnn.bench import Measurement
from gpucnn.experiments.conv import (
    FILTERS,
    IMAGE,
    KERNEL,
    cnn_profile,
    conv_batch_sweep,
    conv_channel_sweep,
    digit_filter_outputs,
)
from gpucnn.pages.ann import rate, runs_text
from gpucnn.pages.common import accelerator, devices
from gpucnn.render import (
    Series,
    caption,
    figure_html,
    fmt,
    fmt_time,
    line_chart,
    no_accelerator_note,
    style_context,
    sweep_notes,
    table,
)
from gpucnn.results import Result, run

FLOP_NOTE = (
    "FLOPs: 2 x N x Cout x Hout x Wout x Cin x k x k for the forward conv2d (a multiply-add counts as 2), "
    "and 3x that for forward + backward: the backward pass computes the input gradient and the weight gradient, "
    "each as costly as the forward."
)


def digit_figure(index: int = 0) -> str:
    """The digit and its filter outputs, drawn as images with a diverging colormap and colour bars."""
    d = digit_filter_outputs(index)
    panels = [("input digit", d["image"], "Greys")] + [(name, out, "RdBu_r") for name, out in d["outputs"].items()]
    with style_context():
        cols = 3
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6.4, 2.6 * rows))
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        for ax, (name, img, cmap) in zip(axes.flat, panels, strict=False):
            if cmap == "Greys":
                im = ax.imshow(img.numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            else:
                lim = float(img.abs().max()) or 1.0
                im = ax.imshow(img.numpy(), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(name, fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=9)
        fig.suptitle(f"A handwritten {d['label']} (8x8 pixels) and the 3x3 filters above applied to it",
                     fontsize=12)
        fig.tight_layout()
    desc = (f"{len(panels)} 8x8 images: scikit-learn digit {index} (a {d['label']}) in grey, then the outputs of the "
            f"{', '.join(FILTERS)} filters in a blue-white-red colormap, blue negative, red positive.")
    return figure_html(
        fig, title=f"Filter outputs on a handwritten {d['label']}", desc=desc,
        caption_text="Computed with torch.nn.functional.conv2d (padding 1, so each output is 8x8 like the input). "
                     "Input: scikit-learn's digits data set (8x8 images, 17 grey levels, shown as 0 to 1). "
                     "Outputs: red positive, blue negative, white zero; each has its own colour scale. "
                     "No timing: these are values, not measurements.")


def filters_table() -> str:
    """The four filters' weights."""
    rows = []
    for name, k in FILTERS.items():
        rows.append((name, "`" + " / ".join(" ".join(f"{v:.2g}" for v in row) for row in k) + "`"))
    return table(["Filter", "3x3 weights, row by row (top / middle / bottom)"], rows, align="ll")


def _series(label: str, points: Sequence[Measurement], x: int) -> Series:
    """GFLOP/s against shape entry ``x`` (0: batch, 1: channels), with the IQR band."""
    return Series(label, [m.shape[x] for m in points], [m.gflops for m in points],
                  [m.flops / m.p75 / 1e9 for m in points], [m.flops / m.p25 / 1e9 for m in points])


def batch_results() -> list[Result]:
    return [run(conv_batch_sweep, device=d) for d in devices()]


def channel_results() -> list[Result]:
    return [run(conv_channel_sweep, device=d) for d in devices()]


def _peak_lines(rs: Sequence[Result]) -> list[tuple[float, str]]:
    peak = rs[0].hardware.cpu.peak_fp32
    return [(peak.value / 1e9, "CPU FP32 peak (estimate)")] if peak else []


def conv_charts() -> str:
    """GFLOP/s of conv2d forward+backward against batch size, and against channels."""
    brs, crs = batch_results(), channel_results()
    out = ""
    for rs, x, xlabel, fixed in (
        (brs, 0, "batch size N (images)", f"Cin = Cout = {brs[0].data['channels']}"),
        (crs, 1, "channels (Cin = Cout)", f"batch N = {crs[0].data['batch']}"),
    ):
        pts = [m for r in rs for m in r.data["sweep"].points]
        series = [_series(r.hardware.device_label(r.params["device"]), r.data["sweep"].points, x) for r in rs]
        what = "batch size" if x == 0 else "channels"
        out += line_chart(
            series, title=f"conv2d {KERNEL}x{KERNEL} forward + backward against {what} ({fixed})",
            xlabel=xlabel, ylabel="GFLOP/s (10^9 FLOP per second)", logx=True, logy=True, hlines=_peak_lines(rs),
            caption_text=(f"{IMAGE}x{IMAGE} images, {KERNEL}x{KERNEL} filters, stride 1, padding 1, fp32, TF32 off; "
                          f"{fixed}. Line: median; band: interquartile range of the timed runs "
                          f"({runs_text(pts)} per point). {FLOP_NOTE}"),
            results=rs)
    out += sweep_notes(brs + crs, has_accelerator=accelerator() is not None, missing_gpu="GPU lines of these charts")
    return out


def conv_table() -> str:
    """Every conv2d point of both sweeps."""
    rows = []
    for rs in (batch_results(), channel_results()):
        for r in rs:
            label = r.hardware.device_label(r.params["device"])
            for m in r.data["sweep"].points:
                n, c = m.shape[0], m.shape[1]
                rows.append((label, n, c, fmt(m.flops / 1e9), fmt_time(m.median), fmt_time(m.iqr),
                             rate(n / m.median), fmt(m.gflops),
                             f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    out = table(["Device", "N", "C", "GFLOP per step", "Median", "IQR", "Images/s", "GFLOP/s", "% of FP32 peak",
                 "Runs"], rows, align="lrrrrrrrrr")
    out += caption(f"conv2d forward + backward, {IMAGE}x{IMAGE}, {KERNEL}x{KERNEL}, fp32, TF32 off. The first rows "
                   f"are the batch sweep, then the channel sweep. {FLOP_NOTE}", batch_results() + channel_results())
    return out


def conv_findings() -> str:
    """Sentences quoting the ends of the two sweeps."""
    text = ""
    for r in channel_results():
        pts = r.data["sweep"].points
        if len(pts) >= 2:
            a, b = pts[0], pts[-1]
            text += (
                f"On the {r.hardware.device_label(r.params['device'])}, a conv2d with {a.shape[1]} "
                f"channel{'s' if a.shape[1] > 1 else ''} "
                f"reaches **{fmt(a.gflops)} GFLOP/s**; with {b.shape[1]} channels, **{fmt(b.gflops)} GFLOP/s**"
                + (f" ({fmt(b.pct_peak_flops, 2)} % of the FP32 peak)" if b.pct_peak_flops else "")
                + ".\n\n"
            )
    for r in batch_results():
        pts = r.data["sweep"].points
        if len(pts) >= 2:
            a, b = pts[0], pts[-1]
            text += (
                f"Against batch size, at {r.data['channels']} channels: **{fmt(a.gflops)} GFLOP/s** for one image, "
                f"**{fmt(b.gflops)} GFLOP/s** for {b.shape[0]} on the "
                f"{r.hardware.device_label(r.params['device'])}.\n\n"
            )
    return text


def profile_tables() -> str:
    """torch.profiler's view of the small CNN's training step: per layer (forward), and top ops."""
    out = ""
    for r in [run(cnn_profile, device=d) for d in devices()]:
        dev = r.params["device"]
        label = r.hardware.device_label(dev)
        layers = r.data["layers"]
        total = sum(x["cpu_total_s"] for x in layers) or 1.0
        out += table(["Layer (forward)", "CPU time per step", "Share of forward"],
                     [(f"`{x['layer']}`", fmt_time(x["cpu_total_s"]), f"{fmt(100 * x['cpu_total_s'] / total, 2)} %")
                      for x in layers])
        out += caption(f"{label}: the forward pass of each layer of the small CNN (batch {r.data['batch']}), "
                       f"mean of {r.data['steps']} profiled training steps, from torch.profiler labels. On a GPU "
                       "this is the time to launch the layer's kernels, not to run them.", r)
        gpu = dev != "cpu"
        headers = ["Op", "Calls per step", "Self CPU time per step", "Share of CPU time"]
        if gpu:
            headers += [f"Self {dev.upper()} time per step", f"Share of {dev.upper()} time"]
        rows = []
        for row in r.data["ops"]:
            cells = [f"`{row['op']}`", fmt(row["calls"]), fmt_time(row["self_cpu_s"]), f"{fmt(row['self_cpu_pct'], 2)} %"]
            if gpu:
                cells += [fmt_time(row["self_device_s"]), f"{fmt(row['self_device_pct'], 2)} %"]
            rows.append(cells)
        out += "\n" + table(headers, rows, align="l" + "r" * (len(headers) - 1))
        out += caption(f"{label}: the top ops of a whole training step (forward, backward, SGD update) by self "
                       f"time, mean of {r.data['steps']} profiled steps after a warm-up step. A profile slows what "
                       "it records: use it to rank ops, not as a timing.", r)
        out += "\n"
    if accelerator() is None:
        out += no_accelerator_note("GPU kernel times of this profile")
    return out
