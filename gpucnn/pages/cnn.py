"""Page "Convolutional neural networks": facts on filters on a digit, conv2d timings and a CNN profile. The
words are in docs/cnn.md."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import matplotlib.pyplot as plt

from gpucnn.bench import Measurement
from gpucnn.datasheets import memory_kind
from gpucnn.experiments.conv import (
    FILTERS,
    cnn_profile,
    conv_batch_sweep,
    conv_channel_sweep,
    digit_filter_outputs,
)
from gpucnn.figures import SAME_SPEED, told_apart
from gpucnn.profiling import stored_kernel_rows
from gpucnn.render import (
    Series,
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
    profile_cells,
    rate,
    reference_note,
    series_table,
    style_context,
    table,
)
from gpucnn.sources import Source, note, one_line, plain_text, sources


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
        caption_text="")
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


def _series(src: Source, x: int) -> Series:
    """GFLOP/s against shape entry ``x`` (0: batch, 1: channels), with the IQR band; colour: the source's."""
    points = src.result.typed.sweep.points
    return Series(src.label, [m.shape[x] for m in points], [m.gflops for m in points],
                  [m.flops / m.p75 / 1e9 for m in points], [m.flops / m.p25 / 1e9 for m in points],
                  style={"marker": "s" if src.is_cpu else "o"}, source=src.origin)


def batch_sources() -> list[Source]:
    """This build's devices, then each archived GPU followed by its own record's host CPU."""
    return sources(conv_batch_sweep, hosts=True)


def channel_sources() -> list[Source]:
    return sources(conv_channel_sweep, hosts=True)


def by_build(found: Sequence[Source]) -> list[list[Source]]:
    """One group per chart: this build's devices, then the archived records (each GPU with its own host CPU)."""
    live = [s for s in found if not s.archived]
    archived = [s for s in found if s.archived]
    return [g for g in (live, archived) if g]


def conv_charts(x: int) -> str:
    """GFLOP/s of conv2d forward + backward against batch size (``x`` 0) or channels (1): one chart for this
    build, one for the archived records."""
    found = batch_sources() if x == 0 else channel_sources()
    note(found)
    out = ""
    for group in by_build(found):
        series = [_series(s, x) for s in group]
        cpu = next((s for s in group if s.is_cpu and not s.archived), None)
        peak = cpu.hardware.cpu.peak_fp32 if cpu else None
        hlines = [(peak.value / 1e9, "CPU FP32 peak (estimate)")] if peak else []
        what = "batch size" if x == 0 else "channels"
        chart = line_chart(
            legible(series), title=f"conv2d against {what} ({'archived records' if group[0].archived else 'this build'})",
            xlabel="batch size N (images)" if x == 0 else "channels (Cin = Cout)",
            ylabel="GFLOP/s (10^9 FLOP per second)", logx=True, logy=True, hlines=hlines, caption_text="",
            results=group)
        out += chart + figures_table(chart, series_table(series, x="N" if x == 0 else "C", y="GFLOP/s"),
                                     reference_note(hlines=hlines, y_text=gflops_text))
    return out


def conv_table() -> str:
    """Every conv2d point of both sweeps."""
    rows = []
    shown = batch_sources() + channel_sources()
    note(shown)
    for s in shown:
        for m in s.result.typed.sweep.points:
            n, c = m.shape[0], m.shape[1]
            rows.append((s.cell(), n, c, fmt(m.flops / 1e9), fmt_time(m.median), fmt_time(m.iqr),
                         rate(n / m.median), fmt(m.gflops),
                         f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    return table(["Device", "N", "C", "GFLOP per step", "Median", "IQR", "Images/s", "GFLOP/s", "% of FP32 peak",
                  "Runs"], rows, align="lrrrrrrrrr")


@dataclass(frozen=True)
class Fall:
    """A step of a sweep where the FLOP rate fell by more than the site's noise (``figures.told_apart``)."""

    before: Measurement
    after: Measurement


@dataclass(frozen=True)
class SweepEnds:
    """One device's sweep: its first and last point, whether the rate stayed about the same, and its falls."""

    source: Source
    first: Measurement
    last: Measurement
    flat: bool  # the fastest point within SAME_SPEED of the slowest
    falls: tuple[Fall, ...]


def _ends(found: Sequence[Source]) -> list[SweepEnds]:
    out = []
    for s in found:
        pts = s.result.typed.sweep.points
        if len(pts) < 2:
            continue
        note(s)
        falls = tuple(Fall(p, q) for p, q in itertools.pairwise(pts)
                      if p.gflops and q.gflops and q.gflops < p.gflops and told_apart(p, q))
        out.append(SweepEnds(s, pts[0], pts[-1],
                             max(m.gflops for m in pts) < SAME_SPEED * min(m.gflops for m in pts), falls))
    return out


def channel_ends() -> list[SweepEnds]:
    return _ends(channel_sources())


def batch_ends() -> list[SweepEnds]:
    return _ends(batch_sources())


def ends_table() -> str:
    """Per device: the channel sweep's ends and the batch sweep's, GFLOP/s."""
    by_label = {e.source.label: e for e in batch_ends()}
    rows = []
    for e in channel_ends():
        b = by_label.get(e.source.label)
        rows.append((e.source.cell(), f"{fmt(e.first.gflops)} (C={e.first.shape[1]})",
                     f"{fmt(e.last.gflops)} (C={e.last.shape[1]})"
                     + (f", {fmt(e.last.pct_peak_flops, 2)} % of peak" if e.last.pct_peak_flops else ""),
                     f"{fmt(b.first.gflops)} (N={b.first.shape[0]})" if b else "–",
                     f"{fmt(b.last.gflops)} (N={b.last.shape[0]})" if b else "–"))
    return table(["Device", "Fewest channels", "Most channels", "Batch 1", "Largest batch"], rows, align="lrrrr")


def profile_tables() -> str:
    """torch.profiler's view of the small CNN's training step, per device: per layer (forward), top ops, and on
    a GPU its top kernels. Each table is headed by its device and what it lists (short labels)."""
    out = ""
    found = sources(cnn_profile, hosts=True)
    note(found)
    for src in found:
        t = src.result.typed
        label = html.escape(one_line(src.label))
        headers, rows = layer_cells(t.layers, src.device)
        out += f"\n**{label}**: forward pass per layer, batch {t.batch}, mean of {t.steps} steps\n\n"
        out += table(headers, rows, align="l" + "r" * (len(headers) - 1))
        op_headers, op_rows = profile_cells(t.ops, src.device)
        out += f"\n**{label}**: top ops of the whole step\n\n"
        out += table(op_headers, op_rows, align="l" + "r" * (len(op_headers) - 1))
        kernels = stored_kernel_rows(t.ops, t.kernels)
        if kernels:
            headers, rows = kernel_cells(kernels, src.device)
            out += f"\n**{label}**: top kernels of the same steps\n\n"
            out += table(headers, rows, align="l" + "r" * (len(headers) - 1))
    return out


# The max pool's rate of moving bytes against the ReLU's, on one device: at or above this share, both stream
# their data alike; below LOW, the pool's own work (a maximum over each window), not memory, sets its time.
POOL_RATE_ALIKE = 0.75
POOL_RATE_LOW = 1 / 3


def _layer_time(layer: object, device: str) -> float | None:
    """A profiled layer's forward time: on the device where its kernels were timed, else on the host (a CPU)."""
    if device in ("cpu", "mps"):
        return layer.cpu_total_s
    return layer.device_total_s or None


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


class PoolRate(Enum):
    """The max pool's rate of moving bytes against the ReLU's before it, on one device."""

    ALIKE = "alike"  # at least POOL_RATE_ALIKE: both set by moving data
    BETWEEN = "between"
    SLOW = "slow"  # under POOL_RATE_LOW: the pool's own work sets its time


@dataclass(frozen=True)
class Pooling:
    """The first ReLU and the max pool after it, in one device's profile: time, bytes, rate."""

    source: Source
    relu_s: float
    pool_s: float
    relu_bytes: float
    pool_bytes: float
    memory_bps: float | None  # the GPU's datasheet memory bandwidth
    memory: str  # what that memory is called (HBM, GDDR, device memory)
    l2_bytes: int | None

    @property
    def relu_bps(self) -> float:
        return self.relu_bytes / self.relu_s

    @property
    def pool_bps(self) -> float:
        return self.pool_bytes / self.pool_s

    @property
    def share(self) -> float:
        return self.pool_bps / self.relu_bps

    @property
    def rate(self) -> PoolRate:
        return (PoolRate.ALIKE if self.share >= POOL_RATE_ALIKE else
                PoolRate.SLOW if self.share < POOL_RATE_LOW else PoolRate.BETWEEN)

    @property
    def relu_beyond_memory(self) -> bool:
        """The ReLU moved bytes faster than the device memory's datasheet allows (its input sat in the L2)."""
        return self.memory_bps is not None and self.relu_bps > self.memory_bps

    @property
    def input_fits_l2(self) -> bool:
        return self.l2_bytes is not None and self.relu_bytes / 2 <= self.l2_bytes


_LAYER_NAME = re.compile(r"[A-Za-z0-9_.]*")


def poolings() -> list[Pooling]:
    """Per profiled device with both layers timed (kernel time on a GPU, host time on a CPU)."""
    out = []
    for src in sources(cnn_profile, hosts=True):
        # By the module name the record's layer starts with: text after it (anyone's record) changes no row.
        layers = {_LAYER_NAME.match(row.layer).group(0): row for row in src.result.typed.layers}
        relu = _layer_time(layers["relu1"], src.device) if "relu1" in layers else None
        pool = _layer_time(layers["pool1"], src.device) if "pool1" in layers else None
        if not relu or not pool:
            continue
        note(src)
        relu_bytes, pool_bytes = relu_pool_bytes(src.result.typed.batch)
        acc = src.hardware.accelerator if not src.is_cpu else None
        out.append(Pooling(src, relu, pool, relu_bytes, pool_bytes, acc.peaks.bandwidth if acc and acc.peaks else None,
                           memory_kind(acc) if acc else "memory", acc.l2_bytes if acc else None))
    return out


def untimed_poolings() -> list[Source]:
    """Profiled devices whose record has no kernel time per layer."""
    timed = {id(p.source.result) for p in poolings()}
    return [s for s in sources(cnn_profile, hosts=True) if id(s.result) not in timed]


def pooling_table() -> str:
    rows = [[p.source.cell(), fmt_time(p.relu_s), fmt_time(p.pool_s), fmt(p.relu_bps / 1e9), fmt(p.pool_bps / 1e9),
             f"{fmt(100 * p.share, 2)} %"] for p in poolings()]
    if not rows:
        return ""
    return table(["Device", "ReLU (first)", "max pool (first)", "ReLU GB/s", "max pool GB/s",
                  "pool's rate, % of ReLU's"], rows)


# --- what the GPU kernel names in the profile say ---

# Convolution algorithm families, known by cuDNN's kernel names. FFT convolution transforms the inputs
# (fft2d_r2c/c2r), multiplies in the frequency domain with complex GEMMs (cf32), and transforms back.
CONV_ALGORITHMS = {
    "implicit_gemm": "implicit GEMM",
    "fft": "FFT (transforms and cf32 GEMMs)",
    "winograd": "Winograd",
    "wgrad": "gradient kernels",
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

@dataclass(frozen=True)
class Algorithm:
    """One convolution algorithm family in a GPU's profiled kernels."""

    family: str  # a key of CONV_ALGORITHMS
    kernels: int
    share_pct: float  # of the kernel time; 0 where the record has no shares
    example: str  # the first kernel's name, up to its tile size

    @property
    def name(self) -> str:
        return CONV_ALGORITHMS[self.family]


@dataclass(frozen=True)
class KernelNames:
    """What one GPU's profiled kernel names show: the algorithms cuDNN chose, and ``sm80_`` kernels."""

    source: Source
    algorithms: tuple[Algorithm, ...]
    sm80: int
    capability: str


def kernel_names() -> list[KernelNames]:
    """Per GPU profile. Kernel names come from records: the template escapes them."""
    out = []
    for src in sources(cnn_profile):
        acc = src.hardware.accelerator
        if src.is_cpu or acc is None:
            continue
        rows = stored_kernel_rows(src.result.typed.ops, src.result.typed.kernels)
        algos = []
        for family in CONV_ALGORITHMS:
            ks = [r for r in rows if conv_algorithm(r["op"]) == family]
            if ks:
                algos.append(Algorithm(family, len(ks), sum(r["self_device_pct"] or 0.0 for r in ks),
                                       plain_text(ks[0]["op"].split("_tilesize")[0])))
        sm80 = sum(1 for r in rows if r["op"].startswith("sm80_"))
        if algos or sm80:
            note(src)
            out.append(KernelNames(src, tuple(algos), sm80, plain_text(acc.capability or "unknown")))
    return out


def algorithm_table() -> str:
    rows = [(k.source.cell(), a.name, a.kernels, f"{a.share_pct:.0f} %" if a.share_pct else "–",
             f"<code>{one_line(a.example)}</code>") for k in kernel_names() for a in k.algorithms]
    if not rows:
        return ""
    return html_table(["GPU", "Algorithm", "Kernels", "Share of kernel time", "First kernel"], rows, align="llrrl")
