"""Page "Convolutional neural networks": filters on a digit, conv2d timings, a CNN profile."""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence

import matplotlib.pyplot as plt

from gpucnn.datasheets import memory_kind
from gpucnn.experiments.conv import (
    FILTERS,
    IMAGE,
    KERNEL,
    cnn_profile,
    conv_batch_sweep,
    conv_channel_sweep,
    digit_filter_outputs,
)
from gpucnn.figures import SAME_SPEED, told_apart
from gpucnn.hardware import format_bytes
from gpucnn.profiling import stored_kernel_rows
from gpucnn.render import (
    Series,
    caption,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    gflops_text,
    html_table,
    kernel_cells,
    layer_cells,
    legible,
    line_chart,
    origin_style,
    profile_cells,
    rate,
    reference_note,
    runs_text,
    series_table,
    source_sweep_notes,
    style_context,
    table,
)
from gpucnn.sources import Source, and_list, no_gpu_note, one_line, sources

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
    chart = figure_html(
        fig, title=f"Filter outputs on a handwritten {d['label']}", desc=desc,
        caption_text="Computed with torch.nn.functional.conv2d (padding 1, so each output is 8x8 like the input). "
                     "Input: scikit-learn's digits data set (8x8 images, 17 grey levels, shown as 0 to 1). "
                     "Outputs: red positive, blue negative, white zero; each has its own colour scale. "
                     "No timing: these are values, not measurements.")
    # Red and blue look alike without colour: the table gives each pixel's value, with its sign.
    body = "".join(f"<p>{html.escape(name)}</p>"
                   + html_table([""] + [f"col {c + 1}" for c in range(img.shape[1])],
                                [[f"row {r + 1}"] + [fmt(float(v), 2) for v in row] for r, row in enumerate(img)])
                   for name, img, _ in panels)
    return chart + figures_table(chart, body)


def filters_table() -> str:
    """The four filters' weights."""
    rows = []
    for name, k in FILTERS.items():
        rows.append((name, "`" + " / ".join(" ".join(f"{v:.2g}" for v in row) for row in k) + "`"))
    return table(["Filter", "3x3 weights, row by row (top / middle / bottom)"], rows, align="ll")


def _series(src: Source, origin_index: int, x: int) -> Series:
    """GFLOP/s against shape entry ``x`` (0: batch, 1: channels), with the IQR band."""
    points = src.result.data["sweep"].points
    return Series(src.label, [m.shape[x] for m in points], [m.gflops for m in points],
                  [m.flops / m.p75 / 1e9 for m in points], [m.flops / m.p25 / 1e9 for m in points],
                  style=origin_style(origin_index, src.is_cpu), source=src.origin)


def batch_sources() -> list[Source]:
    return sources(conv_batch_sweep)


def channel_sources() -> list[Source]:
    return sources(conv_channel_sweep)


def _peak_lines(found: Sequence[Source]) -> list[tuple[float, str]]:
    peak = found[0].hardware.cpu.peak_fp32
    return [(peak.value / 1e9, "this build's CPU FP32 peak (estimate)")] if peak else []


def conv_charts() -> str:
    """GFLOP/s of conv2d forward+backward against batch size, and against channels."""
    brs, crs = batch_sources(), channel_sources()
    out = ""
    for found, x, xlabel, fixed in (
        (brs, 0, "batch size N (images)", f"Cin = Cout = {brs[0].result.data['channels']}"),
        (crs, 1, "channels (Cin = Cout)", f"batch N = {crs[0].result.data['batch']}"),
    ):
        pts = [m for s in found for m in s.result.data["sweep"].points]
        origins = list(dict.fromkeys(s.origin for s in found))  # a GPU and its host CPU share a colour
        series = [_series(s, origins.index(s.origin), x) for s in found]
        what = "batch size" if x == 0 else "channels"
        chart = line_chart(
            legible(series), title=f"conv2d {KERNEL}x{KERNEL} forward + backward against {what} ({fixed})",
            xlabel=xlabel, ylabel="GFLOP/s (10^9 FLOP per second)", logx=True, logy=True, hlines=_peak_lines(found),
            caption_text=(f"{IMAGE}x{IMAGE} images, {KERNEL}x{KERNEL} filters, stride 1, padding 1, fp32, TF32 off; "
                          f"{fixed}. Line: median; band: interquartile range of the timed runs "
                          f"({runs_text(pts)} per point). {FLOP_NOTE}"),
            results=found)
        out += chart + figures_table(chart, series_table(series, x="N" if x == 0 else "C", y="GFLOP/s"),
                                     reference_note(hlines=_peak_lines(found), y_text=gflops_text))
    out += source_sweep_notes(brs + crs) + no_gpu_note(brs, "GPU lines of these charts")
    return out


def conv_table() -> str:
    """Every conv2d point of both sweeps."""
    rows = []
    shown = batch_sources() + channel_sources()
    for s in shown:
        label = s.cell()
        for m in s.result.data["sweep"].points:
            n, c = m.shape[0], m.shape[1]
            rows.append((label, n, c, fmt(m.flops / 1e9), fmt_time(m.median), fmt_time(m.iqr),
                         rate(n / m.median), fmt(m.gflops),
                         f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    out = table(["Device", "N", "C", "GFLOP per step", "Median", "IQR", "Images/s", "GFLOP/s", "% of FP32 peak",
                 "Runs"], rows, align="lrrrrrrrrr")
    out += caption(f"conv2d forward + backward, {IMAGE}x{IMAGE}, {KERNEL}x{KERNEL}, fp32, TF32 off. The first rows "
                   f"are the batch sweep, then the channel sweep. {FLOP_NOTE}", shown)
    return out


def conv_findings() -> str:
    """Sentences quoting the ends of the two sweeps."""
    text = ""
    for s in channel_sources():
        pts = s.result.data["sweep"].points
        if len(pts) >= 2:
            a, b = pts[0], pts[-1]
            text += (
                f"On {s.label}, a conv2d with {a.shape[1]} "
                f"channel{'s' if a.shape[1] > 1 else ''} "
                f"reaches **{fmt(a.gflops)} GFLOP/s**; with {b.shape[1]} channels, **{fmt(b.gflops)} GFLOP/s**"
                + (f" ({fmt(b.pct_peak_flops, 2)} % of the FP32 peak)" if b.pct_peak_flops else "")
                + "." + _dips(pts, s, lambda m: f"{m.shape[1]} channels") + "\n\n"
            )
    for s in batch_sources():
        pts = s.result.data["sweep"].points
        if len(pts) >= 2:
            a, b = pts[0], pts[-1]
            text += (
                f"Against batch size, at {s.result.data['channels']} channels: **{fmt(a.gflops)} GFLOP/s** for one "
                f"image, **{fmt(b.gflops)} GFLOP/s** for {b.shape[0]} on {s.label}"
                + (": about the same, so one image already gives this device as much work per call as it can use "
                   "at this size" if max(m.gflops for m in pts) < SAME_SPEED * min(m.gflops for m in pts) else "")
                + "." + _dips(pts, s, lambda m: f"N={m.shape[0]}") + "\n\n"
            )
    return text


def _dips(pts: Sequence, src: Source, at) -> str:
    """The steps of a sweep where the FLOP rate fell by more than the site's noise (``figures.told_apart``): the
    rate does not rise at every step."""
    falls = [(p, q) for p, q in itertools.pairwise(pts)
             if p.gflops and q.gflops and q.gflops < p.gflops and told_apart(p, q)]
    if not falls:
        return ""
    steps = and_list([f"from {fmt(p.gflops)} GFLOP/s at {at(p)} to {fmt(q.gflops)} GFLOP/s at {at(q)}" for p, q in falls])
    why = ("the convolution library (cuDNN on an NVIDIA GPU) picks an algorithm per shape, and a larger shape can get "
           "a slower one" if not src.is_cpu else "the larger call's tensors no longer fit in a cache that held the "
           "smaller one's, or another program took the CPU while that point ran")
    return f" The rate does not rise at every step: it fell {steps}, outside both points' IQRs; {why} (likely " \
           "reasons, not checked here)."


def _missing_layer_times(device_timed: bool) -> str:
    """What a GPU record without per-layer kernel times lacks: only that split where its ops or kernels were timed
    on the device.

    Records made before the per-layer device spans were kept still hold the ops' and kernels' device times,
    shown in the tables below this one.
    """
    if device_timed:
        return ("; this record has no kernel time per layer (its kernels' times are in the op and kernel tables "
                "below).")
    return "; this record has no kernel times."


def profile_tables() -> str:
    """torch.profiler's view of the small CNN's training step: per layer (forward), and top ops."""
    out = ""
    found = sources(cnn_profile)
    for src in found:
        r = src.result
        headers, rows = layer_cells(r.data["layers"], src.device)
        out += table(headers, rows, align="l" + "r" * (len(headers) - 1))
        kernels = stored_kernel_rows(r.data["ops"], r.data.get("kernels") or ())
        op_headers, op_rows = profile_cells(r.data["ops"], src.device)
        on_gpu = (" Host time is the time to launch the layer's kernels; kernel time is the time they ran on the "
                  "device." if len(headers) == 4 else
                  " On a GPU, host time is the time to launch the layer's kernels, not to run them"
                  + (_missing_layer_times(bool(kernels) or len(op_headers) > 4)
                     if src.device not in ("cpu", "mps") else "."))
        out += caption(f"{src.label}: the forward pass of each layer of the small CNN (batch {r.data['batch']}), "
                       f"mean of {r.data['steps']} profiled training steps, from torch.profiler labels.{on_gpu}",
                       [src])
        out += "\n" + table(op_headers, op_rows, align="l" + "r" * (len(op_headers) - 1))
        out += caption(f"{src.label}: the top ops of a whole training step (forward, backward, SGD update) by self "
                       f"time, mean of {r.data['steps']} profiled steps after a warm-up step. A profile slows what "
                       "it records: use it to rank ops, not as a timing.", [src])
        if kernels:
            headers, rows = kernel_cells(kernels, src.device)
            out += "\n" + table(headers, rows, align="l" + "r" * (len(headers) - 1))
            out += caption(f"{src.label}: the top kernels of the same steps, by time on the device. Their time is "
                           "already in the ops above, which launched them: the two tables are two views of one "
                           "time, not parts of a sum.", [src])
        out += "\n"
    return out + no_gpu_note(found, "GPU kernel times of this profile")



# The max pool's rate of moving bytes against the ReLU's, on one device: at or above this share, both stream
# their data alike; below LOW, the pool's own work (a maximum over each window), not memory, sets its time.
POOL_RATE_ALIKE = 0.75
POOL_RATE_LOW = 1 / 3


def _layer_time(layer: dict, device: str) -> float | None:
    """A profiled layer's forward time: on the device where its kernels were timed, else on the host (a CPU)."""
    if device in ("cpu", "mps"):
        return layer.get("cpu_total_s")
    return layer.get("device_total_s") or None


def relu_pool_bytes(batch: int) -> tuple[float, float]:
    """Bytes the profiled CNN's first ReLU and first max pool move in a training forward pass, fp32.

    The shapes come from the profiled model itself (``SmallCNN`` on a batch of 1x32x32 images), run on the meta
    device (shapes only, no arithmetic). ReLU reads and writes its tensor. The max pool reads it, and writes a
    quarter as many values plus their int64 indices, which the backward pass needs.
    """
    import torch

    from gpucnn.experiments.conv import SmallCNN

    model = SmallCNN().to("meta")
    x = model.layers["conv1"](torch.empty(batch, 1, 32, 32, device="meta"))
    out = model.layers["pool1"](x)
    return 2.0 * 4 * x.numel(), 4.0 * x.numel() + (4 + 8) * out.numel()


def pooling_findings() -> str:
    """The first max pool against the ReLU before it, per profiled device: is pooling set by moving data?

    Both read the same activation tensor and move about as many bytes; where the pool moves them far more slowly,
    its kernel's own work, not memory, sets its time. Devices whose profile has no kernel time per layer are
    named, not dropped silently.
    """
    rows, alike, between, slow, untimed, beyond = [], [], [], [], [], []
    for src in sources(cnn_profile):
        layers = {row["layer"]: row for row in src.result.data["layers"]}
        relu = _layer_time(layers["relu1"], src.device) if "relu1" in layers else None
        pool = _layer_time(layers["pool1"], src.device) if "pool1" in layers else None
        if not relu or not pool:
            untimed.append(src)
            continue
        relu_bytes, pool_bytes = relu_pool_bytes(src.result.data["batch"])
        share = (pool_bytes / pool) / (relu_bytes / relu)
        rows.append([src.cell(), fmt_time(relu), fmt_time(pool), fmt(relu_bytes / relu / 1e9),
                     fmt(pool_bytes / pool / 1e9), f"{fmt(100 * share, 2)} %"])
        (alike if share >= POOL_RATE_ALIKE else slow if share < POOL_RATE_LOW else between).append((src, share))
        acc = src.hardware.accelerator if not src.is_cpu else None
        if acc and acc.peaks and relu_bytes / relu > acc.peaks.bandwidth:
            beyond.append((src, relu_bytes / relu, relu_bytes))
    if not rows:
        return ""
    shown = [s for s, _ in alike + between + slow]
    out = table(["Device", "ReLU (first)", "max pool (first)", "ReLU GB/s", "max pool GB/s",
                 "pool's rate, % of ReLU's"], rows)
    out += caption("The forward time of the first ReLU and of the max pool after it, which reads the ReLU's "
                   "output, from the profile above (kernel time on a GPU, host time on a CPU; a profile adds a "
                   "little to each op). Bytes read + written, fp32, from the model's shapes; the pool writes its "
                   "int64 indices too. GB = 10^9 bytes. "
                   + "; ".join(f"{s.model}: {s.full_name}" for s in shown) + "."
                   + (" No row for " + and_list([s.label for s in untimed]) + ": its record has no kernel time "
                      "per layer." if untimed else ""), shown)

    def names(group: list) -> str:
        return one_line(and_list([s.label for s, _ in group]))

    if alike:
        out += (f"\nOn {names(alike)}, the pool moved its bytes at least {fmt(100 * POOL_RATE_ALIKE, 2)} % as fast "
                "as the ReLU: both are set by moving data, far below what their arithmetic would allow.\n")
    if between:
        out += (f"\nOn {names(between)}, the pool moved its bytes at "
                + and_list([f"{fmt(100 * share, 2)} %" for _, share in between])
                + " of the ReLU's rate: still far from its arithmetic limit, but its own work (a maximum over "
                "each window) already shows beside the memory traffic.\n")
    for src, speed, moved in beyond:
        # Measured faster than device memory allows: the conv just wrote this tensor, most likely still in the L2.
        acc = src.hardware.accelerator
        kind = memory_kind(acc)
        in_l2 = acc.l2_bytes is not None and moved / 2 <= acc.l2_bytes
        out += (f"\nOn {one_line(src.label)}, the ReLU moved {fmt(speed / 1e9)} GB/s, more than the "
                f"{fmt(acc.peaks.bandwidth / 1e9)} GB/s of its {kind} datasheet: "
                + (f"its input ({format_bytes(moved / 2)}) fits in the {format_bytes(acc.l2_bytes)} L2 cache, where "
                   f"the conv just before it wrote it, so it is most likely read from there, not from {kind}.\n"
                   if in_l2 else "part of its data most likely still sat in the L2 cache, where the conv before "
                   "it wrote it.\n"))
    if slow:
        out += (f"\nOn {names(slow)}, the pool moved its bytes at less than a third of the ReLU's rate: there its "
                "kernel's own work (a maximum over each window, in this tensor layout), not the memory, sets its "
                "time. A few operations per value make an op cheap in arithmetic, not necessarily bound by "
                "memory.\n")
    return out

# --- what the GPU kernel names in the profile say ---

# Convolution algorithm families, known by cuDNN's kernel names. FFT convolution transforms the inputs
# (fft2d_r2c/c2r), multiplies in the frequency domain with complex GEMMs (cf32), and transforms back.
CONV_ALGORITHMS = {
    "implicit_gemm": "implicit GEMM",
    "fft": "FFT convolution (transforms, and complex <code>cf32</code> GEMMs between them)",
    "winograd": "Winograd",
    "wgrad": "gradient kernels (weight and data gradients)",
}


def conv_algorithm(name: str) -> str | None:
    """The convolution algorithm family a cuDNN kernel name shows, or None (pooling, reductions, ...)."""
    low = name.lower()
    # Weight- and data-gradient kernels first: cuDNN's sm80_xmma_wgrad_implicit_gemm_* computes a weight
    # gradient by implicit GEMM, and is counted with the gradients.
    if "wgrad" in low or "dgrad" in low:
        return "wgrad"
    if "implicit_gemm" in low or "implicit_convolve" in low:
        return "implicit_gemm"
    if "fft" in low or "gemm_cf32" in low:
        return "fft"
    if "winograd" in low:
        return "winograd"
    return None

def kernel_name_findings() -> str:
    """Sentences on the accelerators' profiled kernels: implicit GEMM, and the sm80_ prefix on newer GPUs.

    Kernel names come from records and are escaped before they are printed.
    """
    text = ""
    for src in sources(cnn_profile):
        acc = src.hardware.accelerator
        if src.is_cpu or acc is None:
            continue
        rows = stored_kernel_rows(src.result.typed.ops, src.result.typed.kernels)
        names = [row["op"] for row in rows]
        families = {family: [r for r in rows if conv_algorithm(r["op"]) == family] for family in CONV_ALGORITHMS}
        found = {family: ks for family, ks in families.items() if ks}
        sm80 = [n for n in names if n.startswith("sm80_")]
        if not found and not sm80:
            continue
        text += f"In the {one_line(src.label)} profile above, "
        if found:
            parts = []
            for family, ks in found.items():
                share = sum(r["self_device_pct"] or 0.0 for r in ks)
                parts.append(f"{CONV_ALGORITHMS[family]}: {len(ks)} kernel{'s' if len(ks) > 1 else ''}"
                             + (f", {share:.0f} % of the kernel time" if share else "")
                             + f" (<code>{one_line(ks[0]['op'].split('_tilesize')[0])}</code>)")
            text += ("the top kernels show which convolution algorithms cuDNN chose for these layers: "
                     + "; ".join(parts))
        if sm80:
            cap = acc.capability or "unknown"
            text += (". Also, " if found else "") + (
                f"{len(sm80)} kernel name{'s start' if len(sm80) > 1 else ' starts'} with <code>sm80_</code> on a device of "
                f"compute capability {one_line(cap)}")
        text += ".\n\n"
    return text
