"""Notebook page "Train a CNN" (docs/training.py): tables, findings and charts.

The notebook runs in a Jupyter kernel, but its charts are not the kernel's PNGs:
a PNG has one background for both palettes. They are inline SVG made by
``gpucnn.render`` like every other chart of the site, whose text and axes are
``currentColor`` and so follow the light and the dark palette; mkdocs-jupyter
passes a ``text/html`` output through as it is. Tables and notes are HTML
strings for ``IPython.display.HTML``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from gpucnn.bench import Measurement
from gpucnn.datasheets import X86_WITHOUT_AVX512
from gpucnn.experiments.training import digits_training, training_combined, training_throughput
from gpucnn.hardware import detect
from gpucnn.models import DIGITS, forward_flops
from gpucnn.profile import current_profile
from gpucnn.render import _SERIES_GID as SERIES_GID  # the group id figure_html marks with data-source
from gpucnn.render import (
    COLORS,
    DASHES,
    MARKERS,
    Series,
    archived_style,
    caption,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    legible,
    line_chart,
    new_figure,
    origin_style,
    series_table,
    style_context,
)
from gpucnn.render import html_table as render_table  # cells as HTML (Source.cell); this page's html_table escapes
from gpucnn.results import Result, run
from gpucnn.sources import Pair, Source, live_has_accelerator, one_line, pairs, sibling, sources

TARGET_ACCURACY = 0.97
# The test-accuracy point of each device on the accuracy chart: a star, then other large shapes.
TEST_MARKERS = ("*", "P", "X", "h")
# The fixed-seed run that the tests hold to TARGET_ACCURACY. It takes seconds, so
# both profiles train it in full; the quick profile shortens the sweeps only.
TRAIN_PARAMS = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "seed": 0}


def digits(device: str = "cpu") -> Result:
    """The digits run on ``device`` (cached like every experiment)."""
    return run(digits_training, device=device, **TRAIN_PARAMS)


def throughput(device: str = "cpu") -> Result:
    return run(training_throughput, device=device)


def digits_sources() -> list[Source]:
    """The digits run on this build's devices, then on each archived accelerator."""
    return sources(digits_training, **TRAIN_PARAMS)


def throughput_sources() -> list[Source]:
    return sources(training_throughput)


def measure_live() -> None:
    """Measure (or load from the cache) every experiment of this page, on each of this build's devices.

    The MkDocs hook calls this before the notebook's kernel starts. The kernel is a fresh process: its
    first CUDA call and its first torch.compile would pay their start-up again (a CUDA context,
    inductor's compile workers), where the build's process has them warm. Measured here, the
    results are cached, and the kernel reads them. The same functions measure them, so the figures
    mean the same.
    """
    for device in detect().devices:
        digits(device)
        throughput(device)
        run(training_combined, device=device)


def devices() -> list[str]:
    """This build's devices, for the notebook's first line."""
    return [s.device for s in digits_sources() if not s.archived]


def all_results() -> list[Result]:
    return [s.result for s in digits_sources() + throughput_sources() if not s.archived]


def _caption(text: str, found: Sequence[Source]) -> str:
    return caption(text, found)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None,
               row_sources: Sequence[str] | None = None) -> str:
    """An HTML table (a notebook output does not go through MkDocs' Markdown); every cell is escaped.

    ``row_sources`` puts each row's source (``live`` or ``archived:<file>``) on its ``<tr>``.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    style = {"l": "left", "r": "right"}

    def cells(tag: str, values: Sequence[object]) -> str:
        # Tighter cells than Material's default: the notebook's output column is narrow.
        return "".join(f'<{tag} style="text-align:{style[a]};padding:.5em .7em">{html.escape(str(v))}</{tag}>'
                       for a, v in zip(align, values, strict=True))

    marks = [f' data-source="{html.escape(s, quote=True)}"' for s in row_sources] if row_sources else [""] * len(rows)
    body = "".join(f"<tr{mark}>{cells('td', r)}</tr>" for r, mark in zip(rows, marks, strict=True))
    # A fixed layout at 100 % wraps the cells instead of widening the output column past the page.
    return (f'<table style="display:table;width:100%;table-layout:fixed;font-size:.68rem">'
            f'<thead><tr>{cells("th", headers)}</tr></thead><tbody>{body}</tbody></table>\n')


def note(title: str, text: str) -> str:
    """A Material admonition as HTML."""
    return (f'<div class="admonition note"><p class="admonition-title">{html.escape(title)}</p>'
            f"<p>{html.escape(text)}</p></div>\n")


def accelerator_note(what: str) -> str:
    """Printed where an accelerator's figures would stand on a CPU-only build; empty with one."""
    if live_has_accelerator():
        return ""
    if any(s.archived for s in digits_sources() + throughput_sources()):
        return ('<div class="admonition note"><p class="admonition-title">No GPU in this build</p>'
                "<p>The GPU figures shown are archived: recorded on other machines, each labelled with its machine, "
                'torch version, commit and date. See <a href="../results/">Results across hardware</a>; what a '
                'label\'s "code changed since recording" or "older" means is under '
                '<a href="../glossary/#archived-labels">Archived labels</a>.</p></div>\n')
    return note("No GPU in this build",
                f"This build machine has no accelerator, and the archive holds no compatible record, so the {what} "
                "are not shown. Rebuild the site on a GPU machine to fill them in.")


def rate(per_s: float) -> str:
    """A rate such as images/s: whole numbers with separators from 100 up."""
    return f"{per_s:,.0f}" if per_s >= 100 else fmt(per_s)


def _threads(n: int) -> str:
    return "one CPU thread" if n == 1 else f"{n} CPU threads"


def _iqr(m: Measurement) -> str:
    return f"{fmt_time(m.p25)}–{fmt_time(m.p75)}"


def _median_iqr(m: Measurement) -> str:
    return f"{fmt_time(m.median)} ({_iqr(m)})"


# --- data and training ----------------------------------------------------------

def split_table() -> str:
    r = digits("cpu")
    sizes = r.data["split_sizes"]
    rows = [(name, n, f"{100 * n / sum(sizes.values()):.0f} %", use) for (name, n), use in zip(
        sizes.items(), ("fit the weights", "choose the epoch to keep", "the final score, once"), strict=True)]
    return html_table(["Split", "Images", "Share", "Used to"], rows, align="lrrl")


def training_table() -> str:
    rows = []
    found = digits_sources()
    for s in found:
        r = s.result
        m = r.data["epoch_time"]
        rows.append((s.label, f"{100 * r.data['test_accuracy']:.1f} %",
                     f"{r.data['best_epoch']} of {len(r.data['history'])}", _median_iqr(m),
                     rate(r.data["train_images"] / m.median)))
    out = html_table(["Device", "Test accuracy", "Epoch kept", "Time per epoch: median (IQR)",
                      "Training images/s"], rows, align="lrrrr", row_sources=[s.origin for s in found])
    timed = "; ".join(f"{s.label}: {s.result.data['epoch_time'].runs} epochs timed, "
                      f"{_threads(s.result.data['epoch_time'].threads)}" for s in found)
    first = digits("cpu")
    out += _caption(
        f"One real training run per device: {first.params['epochs']} epochs of {first.data['train_images']} "
        f"images in batches of {first.params['batch_size']}, seed {first.params['seed']}. Epoch 1 is the "
        "harness's untimed warm-up; each later epoch is one timed run (shuffle, optimizer steps and the "
        f"validation pass) ({timed}). Images/s = training images / median epoch time.", found)
    return out


def training_findings() -> str:
    r = digits("cpu")
    d = r.data
    m = d["epoch_time"]
    total = m.median * len(d["history"])
    verdict = "meets" if d["test_accuracy"] >= TARGET_ACCURACY else "misses"
    return (
        f"The CNN ({d['parameters']:,} weights) scores {100 * d['test_accuracy']:.1f} % on the "
        f"{d['split_sizes']['test']} test images, which {verdict} the {100 * TARGET_ACCURACY:.0f} % target. "
        f"The weights kept are those of epoch {d['best_epoch']}, the best on the validation images; the test "
        f"images were used once, for this score. On the CPU an epoch takes {fmt_time(m.median)} (median of "
        f"{m.runs} epochs), about {fmt_time(total)} for the whole run, or "
        f"{rate(d['train_images'] / m.median)} training images per second on "
        f"{_threads(m.threads)} (8x8 images make ops too small to share out)."
    ) + "".join(f"\n\n{gpu_training_sentence(p)}" for p in pairs(digits_training, **TRAIN_PARAMS))


# A GPU less than this many times as fast as its host CPU on a task is said to gain little.
LITTLE_GAIN = 3.0


def gpu_training_sentence(pair: Pair) -> str:
    """The digits run on an accelerator against its own host CPU (one record), and why the gap is what it is."""
    g, c = pair.gpu.result.data["epoch_time"], pair.cpu.result.data["epoch_time"]
    ratio = c.median / g.median
    text = (f"On {one_line(pair.gpu.label)}, an epoch takes {fmt_time(g.median)}, against {fmt_time(c.median)} on "
            f"{one_line(pair.cpu.label)}: **{fmt(ratio, 2)}x** {'as fast' if ratio >= 1 else 'the speed'}.")
    if ratio < LITTLE_GAIN:
        batch = TRAIN_PARAMS["batch_size"]
        flops = 3 * forward_flops(DIGITS, batch)  # forward + backward
        text += (f" A training step on a batch of {batch} images of 8x8 pixels is about {fmt(flops / 1e6, 2)} "
                 f"MFLOP, split over dozens of kernels: microseconds of work for a GPU, less than the cost of "
                 "launching them. The step is overhead-bound (launches, Python, the optimizer's many small "
                 "updates), so the GPU's throughput hardly matters here.")
    return text


class Chart:
    """A chart for the notebook: inline SVG whose text and axes follow the page's light or dark palette.

    Rendered by ``gpucnn.render.figure_html`` like every other chart of the site; an object with
    ``_repr_html_`` so that a cell shows it with ``display(chart)``.
    """

    def __init__(self, figure_html_text: str) -> None:
        self.html = figure_html_text

    def _repr_html_(self) -> str:
        return self.html


def _series_alt(title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], unit: str) -> str:
    parts = [f"{label}: {len(ys)} points, from {fmt(min(ys))} to {fmt(max(ys))} {unit}".rstrip()
             for label, _, ys in series if ys]
    return f"{title}. " + "; ".join(parts) + "."


class _Lines:
    """Lines drawn on one axes, each in its own SVG group that carries its source (``data-source``)."""

    def __init__(self, ax: Axes) -> None:
        self.ax = ax
        self.sources: list[str] = []

    def plot(self, xs: Sequence[float], ys: Sequence[float], source: str, **style: object) -> None:
        if source != "live":
            style = archived_style(style)
        self.ax.plot(xs, ys, gid=f"{SERIES_GID}{len(self.sources)}", **style)
        self.sources.append(source)


def _finish(fig: Figure, ax: Axes, lines: _Lines, title: str, desc: str, text: str, found: Sequence[Source]) -> Chart:
    ax.set_title(title)
    ax.grid(True, which="major")
    # Below the axes: up to seven entries, with long archived labels, would cover the lines inside them.
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=9, borderaxespad=0.0)
    return Chart(figure_html(fig, title=title, desc=desc, caption_text=text, results=found,
                             sources=lines.sources))


def loss_chart() -> Chart:
    """Training loss per step (faint), per epoch, and validation loss per epoch."""
    series = []
    found = digits_sources()
    fig, ax = new_figure()
    with style_context():
        lines = _Lines(ax)
        for i, s in enumerate(found):
            r = s.result.data
            spe = r["steps_per_epoch"]
            steps = [(k + 1) / spe for k in range(len(r["step_losses"]))]
            epochs = [h["epoch"] for h in r["history"]]
            dev = chart_text(s.label)
            if i == 0:
                lines.plot(steps, r["step_losses"], s.origin, color=COLORS[0], alpha=0.45, linewidth=0.8,
                           label=f"training loss per batch ({dev})")
            pairs = ((f"training loss, epoch mean ({dev})", [h["train_loss"] for h in r["history"]]),
                     (f"validation loss ({dev})", [h["val_loss"] for h in r["history"]]))
            for j, (label, ys) in enumerate(pairs):
                k = (1 + j + 2 * i) % len(COLORS)
                lines.plot(epochs, ys, s.origin, color=COLORS[k], marker=MARKERS[k], linestyle=DASHES[k],
                           markersize=4, linewidth=1.6, label=label)
                series.append((label, epochs, ys))
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss (log scale)")
        chart = _finish(fig, ax, lines, "Loss while training the digits CNN",
                        _series_alt("Loss against epoch, log scale", series, ""),
                        "Faint line: the loss of each training batch; markers: the mean training loss of each epoch "
                        "and the loss on the validation images after it. One training run per device; dashed lines "
                        "with hollow markers: archived.", found)
    rows = [(s.cell(), h["epoch"], fmt(h["train_loss"]), fmt(h["val_loss"]))
            for s in found for h in s.result.data["history"]]
    first = found[0].result.data["step_losses"]
    body = render_table(["Device", "Epoch", "Training loss, epoch mean", "Validation loss"], rows)
    faint = (f"The faint line's {len(first)} per-batch losses ({found[0].label}) run from {fmt(max(first))} down "
             f"to {fmt(min(first))}; the table gives their mean per epoch." if first else "")
    return Chart(chart.html + figures_table(chart.html, body, faint))


def accuracy_chart() -> Chart:
    """Validation accuracy per epoch, the epoch kept, the test score and the target."""
    series = []
    found = digits_sources()
    fig, ax = new_figure()
    with style_context():
        lines = _Lines(ax)
        for i, s in enumerate(found):
            r = s.result.data
            label = chart_text(s.label)
            epochs = [h["epoch"] for h in r["history"]]
            ys = [100 * h["val_accuracy"] for h in r["history"]]
            k = i % len(COLORS)
            lines.plot(epochs, ys, s.origin, color=COLORS[k], marker=MARKERS[k], linestyle=DASHES[k], markersize=4,
                       linewidth=1.6, label=f"validation accuracy ({label})")
            # A large marker of its own shape per device: two archived stars would differ by colour alone.
            lines.plot([r["best_epoch"]], [100 * r["test_accuracy"]], s.origin, linestyle="none",
                       marker=TEST_MARKERS[i % len(TEST_MARKERS)], markersize=14 if i == 0 else 11,
                       color=COLORS[(3 + i) % len(COLORS)],
                       label=f"test accuracy, epoch kept ({label})")
            series.append((f"validation accuracy ({label})", epochs, ys))
        # Black becomes currentColor in the SVG: the target line follows the palette like the axes.
        ax.axhline(100 * TARGET_ACCURACY, color="#000000", linestyle=":", linewidth=1)
        # Labelled like render.line_chart's reference lines: a tick label on the right axis, so that
        # it never sits on the data, wherever the curves run.
        target = ax.secondary_yaxis("right")
        target.set_ticks([100 * TARGET_ACCURACY], [f"target {100 * TARGET_ACCURACY:.0f} %"])
        target.yaxis.set_minor_locator(NullLocator())
        target.tick_params(length=0, labelsize=9)
        low = min(min(ys) for _, _, ys in series)
        ax.set_ylim(max(0.0, min(low, 100 * TARGET_ACCURACY) - 2), 100.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        tests = "; ".join(f"test accuracy {100 * s.result.data['test_accuracy']:.1f} % at epoch "
                          f"{s.result.data['best_epoch']} ({s.label})" for s in found)
        chart = _finish(fig, ax, lines, "Accuracy on the digits",
                        _series_alt("Validation accuracy against epoch", series, "%") + " " + tests + ".",
                        "Line: accuracy on the validation images after each epoch. Star (plus, cross: further "
                        "devices): accuracy on the test "
                        "images of the weights kept (the best validation epoch); dotted: the "
                        f"{100 * TARGET_ACCURACY:.0f} % target. Dashed lines, hollow markers: archived.", found)
    rows = [(s.cell(), h["epoch"], f"{100 * h['val_accuracy']:.1f} %") for s in found for h in s.result.data["history"]]
    body = render_table(["Device", "Epoch", "Validation accuracy"], rows)
    return Chart(chart.html + figures_table(chart.html, body, f"Large markers: {tests}. Dotted line: the "
                                                              f"{100 * TARGET_ACCURACY:.0f} % target."))


# --- throughput and the standard speedups -----------------------------------------

def _rate_series(found: Sequence[Source], points: Callable[[Source], Sequence[Measurement]]) -> list[Series]:
    """images/s (median, IQR band) against batch size, one Series per source, coloured by origin."""
    origins = list(dict.fromkeys(s.origin for s in found))
    out = []
    for src in found:
        pts = points(src)
        xs = [m.shape[0] for m in pts]
        out.append(Series(src.label, xs, [b / m.median for b, m in zip(xs, pts, strict=True)],
                          [b / m.p75 for b, m in zip(xs, pts, strict=True)],
                          [b / m.p25 for b, m in zip(xs, pts, strict=True)],
                          style=origin_style(origins.index(src.origin), src.is_cpu), source=src.origin))
    return out


def throughput_chart() -> Chart:
    """Training images/s against batch size, synthetic 3x64x64 images, with IQR bands."""
    found = throughput_sources()
    series = _rate_series(found, lambda s: s.result.data["sweep"].points)
    chart = line_chart(legible(series), title="Training throughput against batch size, 3x64x64 images",
                       xlabel="batch size (images per training step)", ylabel="training images/s (log scale)",
                       caption_text=throughput_caption_text(found), results=found, logx=True, logy=True)
    return Chart(chart + figures_table(chart, series_table(series, x="Batch", y="Images/s", y_text=rate)))


def throughput_caption_text(found: Sequence[Source]) -> str:
    runs = "; ".join(f"{s.label}: {min(m.runs for m in s.result.data['sweep'].points)} or more runs per point"
                     for s in found if s.result.data["sweep"].points)
    stops = " ".join(f"{s.label}: {s.result.data['sweep'].stopped}." for s in found if s.result.data["sweep"].stopped)
    return (f"One training step (forward, loss, backward, AdamW update) of the same CNN widened to 3x64x64 inputs, "
            f"on one synthetic batch already in device memory. Line: median; band: IQR ({runs}). Dashed lines, "
            f"hollow markers: archived. {stops}").rstrip()


def _combined(src: Source, batch: int) -> Source | None:
    """``training_combined`` from the same origin and device as ``src``, if it ran at the same batch."""
    found = sibling(src, training_combined)
    return found if found is not None and found.result.data["batch"] == batch else None


def speedup_table() -> str:
    """Each speedup alone, then together (and TF32 on CUDA), against the plain fp32 step of the same source."""
    rows, notes, runs, batches, marks = [], [], [], [], []
    found = sources(training_throughput, hosts=True)
    for s in found:
        res = s.result
        batch = res.data["speedup_batch"]
        steps = dict(res.data["speedups"])
        skipped = dict(res.data["skipped"])
        together = _combined(s, batch)
        if together is not None:
            steps.update(together.result.data["variants"])
            skipped.update(together.result.data["skipped"])
        base = steps["plain fp32"].median
        for name, m in steps.items():
            rows.append((s.label, name, _median_iqr(m), rate(batch / m.median), f"{base / m.median:.2f}x"))
            marks.append(s.origin)
            runs.append(m.runs)
        reasons: list[str] = []
        for name, why in (skipped.items() if not s.archived else ()):
            # Not a row: a reader should not meet a "not measured" cell. The note says why, once per
            # reason (torch.compile alone and with the others are skipped on the CPU for the same one).
            if why not in reasons:
                reasons.append(why)
                notes.append(note(f"{name} on {s.label}", why.rstrip(".") + "."))
        batches.append(f"{s.label}: batch {batch}")
    out = html_table(["Device", "Variant", "Step time: median (IQR)", "Images/s", "Speedup over plain"],
                     rows, align="llrrr", row_sources=marks)
    out += _caption(f"One training step on synthetic 3x64x64 images ({'; '.join(batches)}), each variant "
                    "against the plain fp32 step of the same device and source; speedup = plain median / variant "
                    "median. The first rows of each device time each speedup alone; rows joined with + time them "
                    "together, in a separate run of the same build or record at the same batch. Every fp32 row has "
                    f"TF32 off, except the TF32 row. {min(runs or [0])} or more timed runs per variant.", found)
    return out + "".join(notes)


# --- why each speedup gains what it gains, from one source's figures ---------------

# A ratio within 10 % of 1 is "about the same": step times of a loaded CPU vary that much.
_SAME = 0.10


def _verdict(ratio: float) -> str:
    """``faster``, ``same`` or ``slower`` for a speedup ratio."""
    if ratio >= 1 + _SAME:
        return "faster"
    return "slower" if ratio <= 1 / (1 + _SAME) else "same"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _peak_factor(fast: Measurement, plain: Measurement) -> float | None:
    """The datasheet peak of ``fast``'s precision over the FP32 peak, both recorded with the figures."""
    if fast.peak_flops and plain.peak_flops:
        return fast.peak_flops / plain.peak_flops
    return None


def _cpu_bf16_factor(src: Source) -> float | None:
    """The CPU's estimated bf16 peak over its FP32 peak (1 without bf16 units), from the source's own report."""
    cpu = src.hardware.cpu
    if cpu.peak_bf16 is None or cpu.peak_fp32 is None or not cpu.peak_fp32.value:
        return None
    return cpu.peak_bf16.value / cpu.peak_fp32.value


def _channels_last_reason(src: Source, ratio: float) -> str:
    verdict = _verdict(ratio)
    if src.is_cpu:
        return {
            "faster": "oneDNN's convolution kernels work on channels-last (or blocked) data, so in the default "
                      "NCHW layout each convolution reorders its input and output; channels_last saves those "
                      "copies; and PyTorch's CPU max pooling has a kernel for channels-last data that is "
                      "vectorized across channels",
            "same": "the reorders it saves are a small part of this step on this CPU",
            "slower": "some of this network's layers have slower channels-last kernels on this CPU than NCHW ones",
        }[verdict]
    return {
        "faster": "cuDNN has faster kernels for channels-last data on this GPU even in fp32",
        "same": "in fp32 with TF32 off the tensor cores are idle, and cuDNN's fp32 kernels run about as fast on "
                "either layout; the layout matters to its tensor-core kernels (bf16, fp16, TF32), which want "
                "channels-last data",
        "slower": "cuDNN's fp32 kernels for this network are slower on channels-last data here, or the layout is "
                  "converted back and forth",
    }[verdict]


def _bf16_reason(src: Source, ratio: float, m: Measurement, plain: Measurement) -> str:
    verdict = _verdict(ratio)
    if src.is_cpu:
        factor = _cpu_bf16_factor(src)
        # An estimate from the instruction set: two significant figures, not a measured ratio's two decimals.
        units = (f"this CPU's bf16 units have {fmt(factor, 2)}x its FP32 peak (estimated from its instruction "
                 "set)" if factor and factor > 1.01 else
                 "this CPU has no bf16 arithmetic units (its bf16 peak is its FP32 peak)" if factor else
                 "the record does not say whether this CPU has bf16 arithmetic units")
        if verdict == "faster":
            gap = ("; the step gains far less than the peaks differ, because only the convolutions and matmuls "
                   "use those units" if factor and ratio * 1.5 < factor else "")
            return f"the convolutions and matmuls run in bf16, which halves the bytes they move; {units}{gap}"
        if verdict == "slower" and factor and factor <= 1.01 and src.hardware.cpu.isa in X86_WITHOUT_AVX512:
            # Without AVX-512 (or AVX-NE-CONVERT) torch's mkldnn_bf16_device_check fails: a bf16 convolution
            # runs aten::_slow_conv2d_forward and a bf16 matmul ATen's reference gemm loops, not oneDNN
            # (seen with torch.profiler under ONEDNN_MAX_CPU_ISA=AVX2). See tensor_cores._no_bf16_unit_why.
            return (f"{units} and no AVX-512, so PyTorch does not hand bf16 convolutions and matmuls to oneDNN "
                    "(it does only on a CPU with AVX-512 or AVX-NE-CONVERT): they fall back to ATen's reference "
                    "kernels (im2col and plain matmul loops without cache blocking), slower than the fp32 "
                    "kernels, and that fallback, not the conversion to bf16, is what costs")
        costs = "about what" if verdict == "same" else "more than"
        return f"{units}, and converting activations to bf16 and back costs {costs} bf16 saves at this size"
    factor = _peak_factor(m, plain)
    peak = f", whose dense bf16 peak is {_times(factor)} the FP32 one (datasheet)" if factor else ""
    if verdict == "faster":
        return (f"the convolutions and matmuls move to the tensor cores{peak}; the step gains far less than the "
                "peaks differ, because the rest of it (elementwise ops, pooling, the optimizer, kernel launches) "
                "does not run on tensor cores")
    return (f"the convolutions and matmuls move to the tensor cores{peak}, but at this size the step is not "
            "limited by their arithmetic")


def _compile_reason(ratio: float) -> str:
    if _verdict(ratio) == "faster":
        return ("inductor fuses the network's elementwise work into fewer kernels: fewer launches, and fewer "
                "round trips of the activations through memory")
    return "this small network has little to fuse, and the compiled kernels are no faster than the eager ones"


def _tf32_reason(ratio: float, m: Measurement, plain: Measurement) -> str:
    factor = _peak_factor(m, plain)
    peak = f" (the TF32 peak is {_times(factor)} the FP32 one, datasheet)" if factor else ""
    if _verdict(ratio) == "faster":
        return (f"the fp32 convolutions and matmuls run on the tensor cores with 10-bit mantissas{peak}, with no "
                "change to the code or the stored weights")
    return f"the tensor cores{peak} speed up only the convolutions and matmuls, which do not bound this step"


def _together_sentence(names: Sequence[str], ratio: float, alone: dict[str, float]) -> str:
    product = 1.0
    for name in names:
        product *= alone[name]
    best_name, best = max(((n, alone[n]) for n in names), key=lambda kv: kv[1])
    joined = " + ".join(names)
    if _verdict(ratio) != "faster" and best < 1 + _SAME:
        # No gain alone, none together: "add up" or "overlap" would describe gains that are not there.
        return (f"together, {joined} gives {_times(ratio)}: none of them gains alone here "
                f"(the best, {best_name}, gives {_times(best)}), and together they do not either")
    head = f"together, {joined} gives {_times(ratio)}, against {_times(product)} if the single gains multiplied"
    if ratio > (1 + _SAME) * product:
        return head + f": more than that product (a likely reason, not timed here: {_joint_kernels(names)})"
    if ratio >= (1 - _SAME) * product:
        return head + ": the gains add up, each saving on a different part of the step"
    if ratio > (1 + _SAME) * best:
        return head + ": more than each alone, less than their product, so they overlap, saving on the same work"
    if ratio >= (1 - _SAME) * best:
        return (head + f": about what the best of them gives alone ({best_name}, {_times(best)}), so combining "
                "them adds nothing here")
    return head + f": less than {best_name} alone ({_times(best)}; a likely reason, not timed here: " \
        f"{_joint_kernels(names)}, and slower ones)"


def _joint_kernels(names: Sequence[str]) -> str:
    """Why a combination is not the product of its parts: it runs other kernels. Which ones is not measured here."""
    if any("compile" in name for name in names):
        # Inductor compiles the combined program (bf16 casts, channels-last layout) into kernels of its own.
        return ("together they are one program that inductor compiles into kernels of its own, fusing the casts "
                "and layout changes the others add, which none of them runs alone (this page does not time "
                "those kernels one by one)")
    return "together they run kernels that neither runs alone (such as bf16 kernels for channels-last data)"


def speedup_findings() -> str:
    """One paragraph per source: what each speedup gained there, and why, from that source's figures only."""
    items = []
    for s in sources(training_throughput, hosts=True):
        data = s.result.data
        batch = data["speedup_batch"]
        plain = data["speedups"]["plain fp32"]
        alone = {name: plain.median / m.median for name, m in data["speedups"].items() if name != "plain fp32"}
        parts = []
        if "channels_last" in alone:
            r = alone["channels_last"]
            parts.append(f"channels_last gives {_times(r)}: {_channels_last_reason(s, r)}")
        if "bf16 autocast" in alone:
            r = alone["bf16 autocast"]
            parts.append(f"bf16 autocast gives {_times(r)}: "
                         f"{_bf16_reason(s, r, data['speedups']['bf16 autocast'], plain)}")
        if "torch.compile" in alone:
            r = alone["torch.compile"]
            parts.append(f"torch.compile gives {_times(r)}: {_compile_reason(r)}")
        together = _combined(s, batch)
        if together is not None:
            more = together.result.data["variants"]
            for name, m in more.items():
                r = plain.median / m.median
                if name == "TF32":
                    parts.append(f"TF32 gives {_times(r)}: {_tf32_reason(r, m, plain)}")
                    continue
                names = [n.strip() for n in name.split("+")]
                if all(n in alone for n in names):
                    parts.append(_together_sentence(names, r, alone))
        if not parts:
            continue
        # One line per speedup: a device's findings run to several clauses each.
        lines = "".join(f"<li>{html.escape(part)}.</li>" for part in parts)
        items.append(f'<li data-source="{html.escape(s.origin, quote=True)}"><strong>{html.escape(s.label)}</strong> '
                     f"(batch {batch}):<ul>{lines}</ul></li>")
    if not items:
        return ""
    return ("<p>Each finding below is taken within one source: this build, or one archived record "
            "(a GPU and its own host CPU). Every speedup is the plain fp32 step's time over the variant's; "
            "the combinations and TF32 were timed in a second run of the same step. Two gains within "
            f"{100 * _SAME:.0f} % of each other are called the same.</p><ul>" + "".join(items) + "</ul>\n")


# --- storing and deployment ----------------------------------------------------------

def storing_table() -> str:
    rows = []
    found = digits_sources()
    for s in found:
        r = s.result.data
        same = "/".join("yes" if r[k] else "NO" for k in ("reloaded_identical", "exported_identical"))
        rows.append((s.label, f"{r['checkpoint_bytes'] / 1e3:.0f} kB", f"{r['exported_bytes'] / 1e3:.0f} kB",
                     same, f"{r['max_logit_difference']:.3g}"))
    return html_table(["Trained on", "Checkpoint (.pt)", "Exported (.pt2)", "Same predictions: reloaded/exported",
                       "Largest logit difference"], rows, align="lrrrr", row_sources=[s.origin for s in found]) + _caption(
        "Each row: the model trained on that device, saved with torch.save and exported with torch.export, then "
        "reloaded there and run on every test image. kB = 1,000 bytes.", found)


def deploy_chart() -> Chart:
    """Inference images/s of the exported model against batch size, one line per device."""
    found = digits_sources()
    series = _rate_series(found, lambda s: s.result.data["deploy"].points)
    runs = "; ".join(f"{s.label}: {min(m.runs for m in s.result.data['deploy'].points)} or more runs per point"
                     for s in found if s.result.data["deploy"].points)
    chart = line_chart(legible(series), title="The exported digits CNN: one image at a time against batches",
                       xlabel="batch size (images per call)", ylabel="inference images/s (log scale)",
                       caption_text=f"Exported program (torch.export), batches of test images already in "
                                    f"device memory. Line: median; band: IQR ({runs}). Dashed lines, hollow "
                                    "markers: archived.", results=found, logx=True, logy=True)
    return Chart(chart + figures_table(chart, series_table(series, x="Batch", y="Images/s", y_text=rate)))


def deploy_table() -> str:
    rows, marks = [], []
    found = digits_sources()
    for s in found:
        pts = s.result.data["deploy"].points
        if not pts:
            continue
        one, best = pts[0], max(pts, key=lambda m: m.shape[0] / m.median)
        marks.append(s.origin)
        rows.append((s.label, _median_iqr(one), rate(1 / one.median),
                     f"{rate(best.shape[0] / best.median)} (batch {best.shape[0]})",
                     f"{best.shape[0] / best.median * one.median:.0f}x"))
    out = html_table(["Device", "Batch-1 latency: median (IQR)", "Images/s at batch 1", "Images/s, best batch",
                      "Gain"], rows, align="lrrrr", row_sources=marks)
    stops = " ".join(f"{s.label}: {s.result.data['deploy'].stopped}."
                     for s in found if s.result.data["deploy"].stopped)
    out += _caption("Inference of the exported program (torch.export, reloaded from its .pt2 file) under "
                    "torch.inference_mode, on batches of test images already in device memory; at least "
                    f"{current_profile().min_runs} timed runs per point. {stops}", found)
    return out


def deploy_findings() -> str:
    r = digits("cpu").data
    pts = r["deploy"].points
    one, best = pts[0], max(pts, key=lambda m: m.shape[0] / m.median)
    return (f"One image at a time, the exported model answers in {fmt_time(one.median)} on the CPU: "
            f"{rate(1 / one.median)} images/s. In batches of {best.shape[0]} it classifies "
            f"{rate(best.shape[0] / best.median)} images/s, {best.shape[0] / best.median * one.median:.0f}x more: "
            "each call has a fixed cost, and a batch turns many small matrix-vector products into one "
            "matrix-matrix product.") + "".join(f"\n\n{sentence}" for p in pairs(digits_training, **TRAIN_PARAMS)
                                                if (sentence := gpu_deploy_sentence(p)))


def gpu_deploy_sentence(pair: Pair) -> str:
    """Batch-1 latency and best throughput of the exported model on an accelerator against its host CPU."""
    gp, cp = pair.gpu.result.data["deploy"].points, pair.cpu.result.data["deploy"].points
    if not gp or not cp:
        return ""
    gpu, cpu = one_line(pair.gpu.label), one_line(pair.cpu.label)
    text = ""
    g1 = next((m for m in gp if m.shape[0] == 1), None)
    c1 = next((m for m in cp if m.shape[0] == 1), None)
    if g1 and c1:
        why_one = ("**slower** for a single image, where launches and a synchronize cost more than the arithmetic"
                   if g1.median > c1.median else "**faster** even for a single image")
        text += (f"On {gpu}, one image takes {fmt_time(g1.median)} against {fmt_time(c1.median)} on {cpu}: "
                 f"{why_one}. ")
    gbest = max(gp, key=lambda m: m.shape[0] / m.median)
    cbest = max(cp, key=lambda m: m.shape[0] / m.median)
    ratio = gbest.shape[0] / gbest.median / (cbest.shape[0] / cbest.median)
    text += (f"At its best (batches of {gbest.shape[0]:,}), {gpu} classifies {rate(gbest.shape[0] / gbest.median)} "
             f"images/s, **{fmt(ratio, 2)}x** {cpu}'s best ({rate(cbest.shape[0] / cbest.median)} images/s, batch "
             f"{cbest.shape[0]:,})")
    return text + (": throughput is where the GPU wins." if ratio >= LITTLE_GAIN else ".")
