"""Notebook page "Train a CNN" (docs/training.py): facts, tables and charts.

The notebook's words are in ``docs/.partials/training.md``, a template over the facts this module returns
(``gpucnn.templating.render_partial``); its charts are inline SVG made by ``gpucnn.render`` like every
other chart of the site, whose text follows the light and the dark palette (mkdocs-jupyter passes a
``text/html`` output through as it is). Every figure that shows an archived GPU shows that record's own
host CPU beside it, never this build's CPU alone: each record is a panel, or rows, of its own.
"""

from __future__ import annotations

import enum
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes

from gpucnn.bench import Measurement
from gpucnn.datasheets import X86_WITHOUT_AVX512
from gpucnn.experiments.training import digits_training, training_combined, training_throughput
from gpucnn.hardware import detect
from gpucnn.models import DIGITS, forward_flops
from gpucnn.profile import current_profile
from gpucnn.render import (
    _SERIES_GID,
    Series,
    archived_style,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    new_figure,
    series_table,
    source_colour,
    style_context,
)
from gpucnn.render import html_table as render_table  # cells as HTML (Source.cell); this page's html_table escapes
from gpucnn.results import Result, run
from gpucnn.sources import Source, no_gpu_state, note, pairs, sibling, sources

TARGET_ACCURACY = 0.97
# The fixed-seed run that the tests hold to TARGET_ACCURACY. It takes seconds, so
# both profiles train it in full; the quick profile shortens the sweeps only.
TRAIN_PARAMS = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "seed": 0}
# A GPU less than this many times as fast as its host CPU on a task gains little.
LITTLE_GAIN = 3.0
# A ratio within 10 % of 1 is "about the same": step times of a loaded CPU vary that much.
SAME = 0.10


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


def digits_with_hosts() -> list[Source]:
    """The digits run on this build's devices, then each archived GPU followed by its own record's CPU."""
    return sources(digits_training, hosts=True, **TRAIN_PARAMS)


def rate(per_s: float) -> str:
    """A rate such as images/s: whole numbers with separators from 100 up."""
    return f"{per_s:,.0f}" if per_s >= 100 else fmt(per_s)


def _median_iqr(m: Measurement) -> str:
    return f"{fmt_time(m.median)} ({fmt_time(m.p25)}–{fmt_time(m.p75)})"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None,
               row_sources: Sequence[str] | None = None) -> str:
    """An HTML table (a notebook output does not go through MkDocs' Markdown); every cell is escaped.

    ``row_sources`` puts each row's source (``live`` or ``archived:<file>``) on its ``<tr>``.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    style = {"l": "left", "r": "right"}

    def cells(tag: str, values: Sequence[object]) -> str:
        return "".join(f'<{tag} style="text-align:{style[a]};padding:.5em .7em">{html.escape(str(v))}</{tag}>'
                       for a, v in zip(align, values, strict=True))

    marks = [f' data-source="{html.escape(s, quote=True)}"' for s in row_sources] if row_sources else [""] * len(rows)
    body = "".join(f"<tr{mark}>{cells('td', r)}</tr>" for r, mark in zip(rows, marks, strict=True))
    # A fixed layout at 100 % wraps the cells instead of widening the output column past the page.
    return (f'<table style="display:table;width:100%;table-layout:fixed;font-size:.68rem">'
            f'<thead><tr>{cells("th", headers)}</tr></thead><tbody>{body}</tbody></table>\n')


def _device(src: Source) -> str:
    """A short name within a record's panel or row group: ``CPU``, ``host CPU``, ``H100``."""
    if src.is_cpu:
        return "host CPU" if src.archived else "CPU"
    return src.model


def _hardware(found: Sequence[Source]) -> tuple[str, ...]:
    """The full names of the devices shown, for a caption that names the hardware."""
    return tuple(dict.fromkeys(s.full_name for s in found))


class Chart:
    """A chart for the notebook: an object with ``_repr_html_``, so that a cell shows it with ``display``."""

    def __init__(self, figure_html_text: str) -> None:
        self.html = figure_html_text

    def _repr_html_(self) -> str:
        return self.html


# --- data and training ----------------------------------------------------------

def split_table() -> str:
    d = digits("cpu").typed
    sizes = {"train": d.split_sizes.train, "validation": d.split_sizes.val, "test": d.split_sizes.test}
    total = sum(sizes.values())
    rows = [(name, n, f"{100 * n / total:.0f} %", use) for (name, n), use in zip(
        sizes.items(), ("fit the weights", "choose the epoch to keep", "the final score, once"), strict=True)]
    note(digits("cpu"))
    return html_table(["Split", "Images", "Share", "Used to"], rows, align="lrrl")


@dataclass(frozen=True)
class Run:
    """One device's digits run."""

    source: Source
    test_accuracy_pct: float
    best_epoch: int
    epochs: int
    epoch_s: float  # median time per epoch
    epoch_p25_s: float
    epoch_p75_s: float
    epochs_timed: int
    images_per_s: float
    threads: int


def _run(src: Source) -> Run:
    d = src.result.typed
    m = d.epoch_time
    return Run(src, 100 * d.test_accuracy, d.best_epoch, len(d.history), m.median, m.p25, m.p75, m.runs,
               d.train_images / m.median, m.threads)


@dataclass(frozen=True)
class GpuAgainstHost:
    """An epoch on an archived (or this build's) GPU against its own host CPU: one record's ratio."""

    gpu: Run
    cpu: Run
    ratio: float  # CPU epoch time / GPU epoch time
    little_gain: bool  # under LITTLE_GAIN: the step is overhead-bound


@dataclass(frozen=True)
class TrainingFacts:
    runs: tuple[Run, ...]  # this build's devices, then each archived GPU and its host CPU
    cpu: Run  # this build's CPU
    parameters: int
    train_images: int
    test_images: int
    batch: int
    seed: int
    target_pct: float
    meets_target: bool
    run_s: float  # the whole CPU run: median epoch x epochs
    step_mflop: float  # one training step (forward + backward) on one batch
    pairs: tuple[GpuAgainstHost, ...]
    no_gpu: str  # sources.no_gpu_state: "", "archived" or "none"
    hardware: tuple[str, ...]


def training_facts() -> TrainingFacts:
    found = digits_with_hosts()
    note(found)
    runs = tuple(_run(s) for s in found)
    cpu = runs[0]
    d = found[0].result.typed
    got = []
    for p in pairs(digits_training, **TRAIN_PARAMS):
        g, c = _run(p.gpu), _run(p.cpu)
        got.append(GpuAgainstHost(g, c, c.epoch_s / g.epoch_s, c.epoch_s / g.epoch_s < LITTLE_GAIN))
    batch = TRAIN_PARAMS["batch_size"]
    return TrainingFacts(runs, cpu, d.parameters, d.train_images, d.split_sizes.test, batch, TRAIN_PARAMS["seed"],
                         100 * TARGET_ACCURACY, d.test_accuracy >= TARGET_ACCURACY, cpu.epoch_s * cpu.epochs,
                         3 * forward_flops(DIGITS, batch) / 1e6, tuple(got), no_gpu_state(found), _hardware(found))


def training_table() -> str:
    found = digits_with_hosts()
    note(found)
    rows = [(r.source.label, f"{r.test_accuracy_pct:.1f} %", f"{r.best_epoch} of {r.epochs}",
             f"{fmt_time(r.epoch_s)} ({fmt_time(r.epoch_p25_s)}–{fmt_time(r.epoch_p75_s)})",
             rate(r.images_per_s)) for r in map(_run, found)]
    return html_table(["Device", "Test accuracy", "Epoch kept", "Time per epoch: median (IQR)",
                       "Training images/s"], rows, align="lrrrr", row_sources=[s.origin for s in found])


# --- charts: one panel per source (this build, each record) --------------------------

def _by_origin(found: Sequence[Source]) -> list[list[Source]]:
    groups: dict[str, list[Source]] = {}
    for s in found:
        groups.setdefault(s.origin, []).append(s)
    return list(groups.values())


def _panel_title(group: Sequence[Source]) -> str:
    if not group[0].archived:
        return "this build"
    gpu = next((s for s in group if not s.is_cpu), group[0])
    return chart_text(f"{gpu.model} record (archived)")


def _panels(groups: Sequence[Sequence[Source]], draw: Callable[[Axes, Sequence[Source], list[str]], None], *,
            title: str, desc: str, xlabel: str, ylabel: str, log: bool, found: Sequence[Source]) -> str:
    """Small multiples: one panel per source, each drawn by ``draw`` (which appends each series' origin)."""
    columns = 1 if len(groups) == 1 else 2
    rows = math.ceil(len(groups) / columns)
    fig, _ = new_figure(7.0, 3.6 * rows)
    fig.clf()
    origins: list[str] = []
    with style_context():
        axes = fig.subplots(rows, columns, squeeze=False, sharey=True)
        for i, ax in enumerate(axes.flat):
            if i >= len(groups):
                ax.remove()
                continue
            draw(ax, groups[i], origins)
            ax.set_title(_panel_title(groups[i]), fontsize=11)
            if log:
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            if i % columns == 0:
                ax.set_ylabel(ylabel)
            ax.grid(True, which="major")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, fontsize=10, borderaxespad=0.4)
        fig.suptitle(title, fontsize=12)
        fig.subplots_adjust(hspace=1.0 if rows > 1 else 0.2, wspace=0.15)
    return figure_html(fig, title=title, desc=desc, caption_text="", results=list(found), sources=origins)


def _plot(ax: Axes, origins: list[str], src: Source, xs: Sequence[float], ys: Sequence[float], **style: object) -> None:
    style = {"color": source_colour(src.origin), "linestyle": "-", "markersize": 4, "linewidth": 1.6, **style}
    if src.archived:
        style = archived_style(style)
    ax.plot(xs, ys, gid=f"{_SERIES_GID}{len(origins)}", **style)
    origins.append(src.origin)


def loss_chart() -> Chart:
    """Training loss (epoch mean; per batch on this build's CPU) and validation loss per epoch, a panel a source."""
    found = digits_with_hosts()

    def draw(ax: Axes, group: Sequence[Source], origins: list[str]) -> None:
        for s in group:
            d = s.result.typed
            epochs = [h.epoch for h in d.history]
            if s is found[0]:
                steps = [(k + 1) / d.steps_per_epoch for k in range(len(d.step_losses))]
                _plot(ax, origins, s, steps, d.step_losses, alpha=0.4, linewidth=0.8,
                      label=f"{_device(s)}: each batch")
            _plot(ax, origins, s, epochs, [h.train_loss for h in d.history], marker="s" if s.is_cpu else "o",
                  label=f"{_device(s)}: training")
            _plot(ax, origins, s, epochs, [h.val_loss for h in d.history], marker="D" if s.is_cpu else "^",
                  linewidth=1.0, label=f"{_device(s)}: validation")
        ax.set_yscale("log")

    desc = "Loss against epoch, log scale. " + "; ".join(
        f"{s.label}: validation loss from {fmt(max(h.val_loss for h in s.result.typed.history))} to "
        f"{fmt(min(h.val_loss for h in s.result.typed.history))}" for s in found) + "."
    chart = _panels(_by_origin(found), draw, title="Loss while training the digits CNN", desc=desc,
                    xlabel="epoch", ylabel="cross-entropy loss (log)", log=False, found=found)
    rows = [(s.cell(), h.epoch, fmt(h.train_loss), fmt(h.val_loss)) for s in found for h in s.result.typed.history]
    body = render_table(["Device", "Epoch", "Training loss, epoch mean", "Validation loss"], rows)
    return Chart(chart + figures_table(chart, body))


def accuracy_chart() -> Chart:
    """Validation accuracy per epoch, and the test accuracy of the epoch kept, a panel a source."""
    found = digits_with_hosts()
    target = 100 * TARGET_ACCURACY

    def draw(ax: Axes, group: Sequence[Source], origins: list[str]) -> None:
        for s in group:
            d = s.result.typed
            _plot(ax, origins, s, [h.epoch for h in d.history], [100 * h.val_accuracy for h in d.history],
                  marker="s" if s.is_cpu else "o", label=f"{_device(s)}: validation")
            _plot(ax, origins, s, [d.best_epoch], [100 * d.test_accuracy], linestyle="none",
                  marker="P" if s.is_cpu else "*", markersize=12, label=f"{_device(s)}: test, epoch kept")
        ax.axhline(target, color="#000000", linewidth=0.8, alpha=0.6, label=f"target {target:.0f} %")

    tests = "; ".join(f"{s.label}: test accuracy {100 * s.result.typed.test_accuracy:.1f} % at epoch "
                      f"{s.result.typed.best_epoch}" for s in found)
    chart = _panels(_by_origin(found), draw, title="Accuracy on the digits", desc=f"Validation accuracy "
                    f"against epoch. {tests}.", xlabel="epoch", ylabel="accuracy (%)", log=False, found=found)
    rows = [(s.cell(), h.epoch, f"{100 * h.val_accuracy:.1f} %") for s in found for h in s.result.typed.history]
    body = render_table(["Device", "Epoch", "Validation accuracy"], rows)
    return Chart(chart + figures_table(chart, body))


# --- throughput and deployment: images/s against batch --------------------------

def _rate_series(src: Source, points: Sequence[Measurement]) -> Series:
    xs = [m.shape[0] for m in points]
    return Series(f"{src.label}", xs, [b / m.median for b, m in zip(xs, points, strict=True)],
                  [b / m.p75 for b, m in zip(xs, points, strict=True)],
                  [b / m.p25 for b, m in zip(xs, points, strict=True)], source=src.origin)


def _rate_chart(found: Sequence[Source], points: Callable[[Source], Sequence[Measurement]], *, title: str,
                xlabel: str) -> Chart:
    found = [s for s in found if points(s)]
    series = {id(s): _rate_series(s, points(s)) for s in found}

    def draw(ax: Axes, group: Sequence[Source], origins: list[str]) -> None:
        for s in group:
            line = series[id(s)]
            _plot(ax, origins, s, line.x, line.y, marker="s" if s.is_cpu else "o", label=_device(s))
            ax.fill_between(line.x, line.low, line.high, color=source_colour(s.origin),
                            alpha=0.12 if s.archived else 0.25, linewidth=0)

    desc = f"{title}. " + "; ".join(f"{s.label}: from {rate(min(series[id(s)].y))} to {rate(max(series[id(s)].y))} "
                                    "images/s" for s in found) + "."
    chart = _panels(_by_origin(found), draw, title=title, desc=desc, xlabel=xlabel, ylabel="images/s (log)",
                    log=True, found=found)
    return Chart(chart + figures_table(chart, series_table(list(series.values()), x="Batch", y="Images/s",
                                                            y_text=rate)))


def throughput_chart() -> Chart:
    """Training images/s against batch size, synthetic 3x64x64 images, with IQR bands."""
    return _rate_chart(sources(training_throughput, hosts=True), lambda s: s.result.typed.sweep.points,
                       title="Training throughput, 3x64x64 images", xlabel="batch size")


@dataclass(frozen=True)
class SweepFacts:
    """What a caption says about a sweep: runs per point and where a sweep stopped early."""

    hardware: tuple[str, ...]
    min_runs: int
    stops: tuple[tuple[str, str], ...]  # (label, why it stopped: the record's own words)


def _sweep_facts(found: Sequence[Source], sweep: Callable[[Source], object]) -> SweepFacts:
    note(found)
    runs = [m.runs for s in found for m in sweep(s).points]
    return SweepFacts(_hardware(found), min(runs or [0]),
                      tuple((s.label, sweep(s).stopped) for s in found if sweep(s).stopped))


def throughput_facts() -> SweepFacts:
    return _sweep_facts(sources(training_throughput, hosts=True), lambda s: s.result.typed.sweep)


# --- the standard speedups -----------------------------------------

class Verdict(enum.Enum):
    FASTER = "faster"
    SAME = "same"
    SLOWER = "slower"


def verdict(ratio: float) -> Verdict:
    if ratio >= 1 + SAME:
        return Verdict.FASTER
    return Verdict.SLOWER if ratio <= 1 / (1 + SAME) else Verdict.SAME


class Together(enum.Enum):
    """How a combination's gain compares with its parts'."""

    NO_GAIN = "no-gain"  # none gains alone, nor together
    BEYOND_PRODUCT = "beyond-product"  # more than the product of the single gains
    ADD_UP = "add-up"  # about their product
    OVERLAP = "overlap"  # more than the best alone, less than the product
    LIKE_BEST = "like-best"  # about the best alone
    BELOW_BEST = "below-best"  # less than the best alone


@dataclass(frozen=True)
class Gain:
    name: str
    ratio: float  # plain step time / variant step time
    verdict: Verdict


@dataclass(frozen=True)
class Combined:
    names: tuple[str, ...]
    ratio: float
    product: float  # the single gains multiplied
    best: Gain  # the best single gain among them
    how: Together
    compiled: bool  # torch.compile is one of them: inductor compiles the whole program


class CpuBf16(enum.Enum):
    UNITS = "units"  # bf16 units with more than the FP32 peak
    NO_UNITS = "no-units"  # bf16 peak = FP32 peak
    NO_UNITS_NO_AVX512 = "fallback"  # and no AVX-512: PyTorch runs ATen's reference kernels, not oneDNN
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SourceSpeedups:
    """Each speedup within one source (this build, or one record's GPU or host CPU)."""

    source: Source
    batch: int
    channels_last: Gain | None
    bf16: Gain | None
    compile: Gain | None
    tf32: Gain | None
    together: tuple[Combined, ...]
    cpu_bf16: CpuBf16 | None  # None on a GPU
    cpu_bf16_x: float | None  # the CPU's estimated bf16 peak over its FP32 peak
    bf16_gap: bool  # faster, but far less than the peaks differ
    peak_bf16_x: float | None  # a GPU's datasheet bf16 peak over its FP32 peak
    peak_tf32_x: float | None


@dataclass(frozen=True)
class SpeedupFacts:
    found: tuple[SourceSpeedups, ...]
    hardware: tuple[str, ...]
    min_runs: int
    same_pct: float
    skipped: tuple[tuple[str, str, str], ...]  # this build's: (variant, label, why: the experiment's own words)


def _combined(src: Source, batch: int) -> Source | None:
    """``training_combined`` from the same origin and device as ``src``, if it ran at the same batch."""
    found = sibling(src, training_combined)
    return found if found is not None and found.result.typed.batch == batch else None


def _peak_x(fast: Measurement, plain: Measurement) -> float | None:
    return fast.peak_flops / plain.peak_flops if fast.peak_flops and plain.peak_flops else None


def _together(names: tuple[str, ...], ratio: float, alone: dict[str, Gain]) -> Combined:
    product = math.prod(alone[n].ratio for n in names)
    best = max((alone[n] for n in names), key=lambda g: g.ratio)
    if verdict(ratio) is not Verdict.FASTER and best.ratio < 1 + SAME:
        how = Together.NO_GAIN
    elif ratio > (1 + SAME) * product:
        how = Together.BEYOND_PRODUCT
    elif ratio >= (1 - SAME) * product:
        how = Together.ADD_UP
    elif ratio > (1 + SAME) * best.ratio:
        how = Together.OVERLAP
    elif ratio >= (1 - SAME) * best.ratio:
        how = Together.LIKE_BEST
    else:
        how = Together.BELOW_BEST
    return Combined(names, ratio, product, best, how, any("compile" in n for n in names))


def cpu_bf16(s: Source) -> tuple[CpuBf16, float | None]:
    """What a CPU's bf16 arithmetic is, from the source's own report, and its bf16 peak over its FP32 peak."""
    cpu = s.hardware.cpu
    x = None
    if cpu.peak_bf16 is not None and cpu.peak_fp32 is not None and cpu.peak_fp32.value:
        x = cpu.peak_bf16.value / cpu.peak_fp32.value
    if x is None:
        return CpuBf16.UNKNOWN, None
    if x > 1.01:
        return CpuBf16.UNITS, x
    if cpu.isa in X86_WITHOUT_AVX512:
        # Without AVX-512 (or AVX-NE-CONVERT) torch's mkldnn_bf16_device_check fails: a bf16 convolution
        # runs aten::_slow_conv2d_forward and a bf16 matmul ATen's reference gemm loops, not oneDNN
        # (seen with torch.profiler under ONEDNN_MAX_CPU_ISA=AVX2). See tensor_cores._no_bf16_unit_why.
        return CpuBf16.NO_UNITS_NO_AVX512, x
    return CpuBf16.NO_UNITS, x


def _source_speedups(s: Source) -> SourceSpeedups:
    d = s.result.typed
    plain = d.speedups["plain fp32"]
    alone = {n: Gain(n, plain.median / m.median, verdict(plain.median / m.median))
             for n, m in d.speedups.items() if n != "plain fp32"}
    tf32, together = None, []
    more = _combined(s, d.speedup_batch)
    if more is not None:
        for name, m in more.result.typed.variants.items():
            r = plain.median / m.median
            if name == "TF32":
                tf32 = (Gain(name, r, verdict(r)), _peak_x(m, plain))
                continue
            names = tuple(n.strip() for n in name.split("+"))
            if all(n in alone for n in names):
                together.append(_together(names, r, alone))
    bf16 = alone.get("bf16 autocast")
    cpu_mode, cpu_x, gap = None, None, False
    if s.is_cpu:
        cpu_mode, cpu_x = cpu_bf16(s)
        gap = bool(bf16 and bf16.verdict is Verdict.FASTER and cpu_x and bf16.ratio * 1.5 < cpu_x)
    peak_bf16 = _peak_x(d.speedups["bf16 autocast"], plain) if "bf16 autocast" in d.speedups else None
    return SourceSpeedups(s, d.speedup_batch, alone.get("channels_last"), bf16, alone.get("torch.compile"),
                          tf32[0] if tf32 else None, tuple(together), cpu_mode, cpu_x, gap,
                          None if s.is_cpu else peak_bf16, tf32[1] if tf32 else None)


def speedup_facts() -> SpeedupFacts:
    found = sources(training_throughput, hosts=True)
    note(found)
    skipped: list[tuple[str, str, str]] = []
    runs: list[int] = []
    for s in found:
        d = s.result.typed
        runs += [m.runs for m in d.speedups.values()]
        if s.archived:
            continue
        why = dict(d.skipped)
        more = _combined(s, d.speedup_batch)
        if more is not None:
            why.update(more.result.typed.skipped)
        seen: set[str] = set()
        for name, text in why.items():
            if text not in seen:  # torch.compile alone and with the others: one reason, said once
                seen.add(text)
                skipped.append((name, s.label, text.rstrip(".")))
    return SpeedupFacts(tuple(_source_speedups(s) for s in found), _hardware(found), min(runs or [0]),
                        100 * SAME, tuple(skipped))


def speedup_table() -> str:
    """Each speedup alone, then together (and TF32 on CUDA), against the plain fp32 step of the same source."""
    rows, marks = [], []
    found = sources(training_throughput, hosts=True)
    note(found)
    for s in found:
        d = s.result.typed
        steps = dict(d.speedups)
        together = _combined(s, d.speedup_batch)
        if together is not None:
            steps.update(together.result.typed.variants)
        base = steps["plain fp32"].median
        for name, m in steps.items():
            rows.append((s.label, f"{name} (batch {d.speedup_batch})" if name == "plain fp32" else name,
                         _median_iqr(m), rate(d.speedup_batch / m.median), f"{base / m.median:.2f}x"))
            marks.append(s.origin)
    return html_table(["Device", "Variant", "Step time: median (IQR)", "Images/s", "Speedup over plain"],
                      rows, align="llrrr", row_sources=marks)


# --- storing and deployment ----------------------------------------------------------

def storing_table() -> str:
    found = digits_with_hosts()
    note(found)
    rows = []
    for s in found:
        d = s.result.typed
        same = "/".join("yes" if ok else "NO" for ok in (d.reloaded_identical, d.exported_identical))
        rows.append((s.label, f"{d.checkpoint_bytes / 1e3:.0f} kB", f"{d.exported_bytes / 1e3:.0f} kB", same,
                     f"{d.max_logit_difference:.3g}"))
    return html_table(["Trained on", "Checkpoint (.pt)", "Exported (.pt2)", "Same predictions: reloaded/exported",
                       "Largest logit difference"], rows, align="lrrrr", row_sources=[s.origin for s in found])


def deploy_chart() -> Chart:
    """Inference images/s of the exported model against batch size, a panel a source."""
    return _rate_chart(digits_with_hosts(), lambda s: s.result.typed.deploy.points,
                       title="The exported digits CNN: images/s against batch", xlabel="batch size (images per call)")


@dataclass(frozen=True)
class Deploy:
    """The exported model on one device: one image at a time, and its best batch."""

    source: Source
    one_s: float  # batch-1 latency (median)
    one_per_s: float
    best_batch: int
    best_per_s: float
    gain_x: float  # best images/s over batch-1 images/s


@dataclass(frozen=True)
class DeployAgainstHost:
    gpu: Deploy
    cpu: Deploy
    slower_one: bool  # one image takes longer on the GPU than on its host CPU
    ratio: float  # GPU's best images/s over its host CPU's best
    gpu_wins: bool  # ratio >= LITTLE_GAIN


@dataclass(frozen=True)
class DeployFacts:
    cpu: Deploy
    pairs: tuple[DeployAgainstHost, ...]
    sweeps: SweepFacts


def _deploy(s: Source) -> Deploy | None:
    pts = s.result.typed.deploy.points
    if not pts:
        return None
    one = next((m for m in pts if m.shape[0] == 1), pts[0])
    best = max(pts, key=lambda m: m.shape[0] / m.median)
    return Deploy(s, one.median, 1 / one.median, best.shape[0], best.shape[0] / best.median,
                  best.shape[0] / best.median * one.median)


def deploy_facts() -> DeployFacts:
    found = digits_with_hosts()
    got = []
    for p in pairs(digits_training, **TRAIN_PARAMS):
        g, c = _deploy(p.gpu), _deploy(p.cpu)
        if g and c:
            ratio = g.best_per_s / c.best_per_s
            got.append(DeployAgainstHost(g, c, g.one_s > c.one_s, ratio, ratio >= LITTLE_GAIN))
    cpu = _deploy(found[0])
    if cpu is None:
        raise ValueError("the digits run on this build's CPU has no deployment points")
    return DeployFacts(cpu, tuple(got), _sweep_facts(found, lambda s: s.result.typed.deploy))


def deploy_table() -> str:
    rows, marks = [], []
    found = digits_with_hosts()
    note(found)
    for s in found:
        d = _deploy(s)
        if d is None:
            continue
        one = next((m for m in s.result.typed.deploy.points if m.shape[0] == 1), s.result.typed.deploy.points[0])
        marks.append(s.origin)
        rows.append((s.label, _median_iqr(one), rate(d.one_per_s), f"{rate(d.best_per_s)} (batch {d.best_batch})",
                     f"{d.gain_x:.0f}x"))
    return html_table(["Device", "Batch-1 latency: median (IQR)", "Images/s at batch 1", "Images/s, best batch",
                       "Gain"], rows, align="lrrrr", row_sources=marks)


def profile_name() -> str:
    return current_profile().name
