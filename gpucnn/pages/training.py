"""Notebook page "Train a CNN" (docs/training.py): tables, findings and PNG charts.

The notebook runs in a Jupyter kernel, so charts are matplotlib figures that
the kernel turns into PNG. A PNG cannot follow the page's palette, so the
charts carry their own white background and dark text: legible on the light
and the dark page alike. Tables and notes are HTML strings for
``IPython.display.HTML``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gpucnn.bench import Measurement
from gpucnn.experiments.training import digits_training, training_throughput
from gpucnn.profile import current_profile
from gpucnn.render import COLORS, DASHES, MARKERS, caption, chart_text, fmt, fmt_time
from gpucnn.results import Result, run
from gpucnn.sources import Source, live_has_accelerator, sources, sources_caption

TARGET_ACCURACY = 0.97
# The fixed-seed run that the tests hold to TARGET_ACCURACY. It takes seconds, so
# both profiles train it in full; the quick profile shortens the sweeps only.
TRAIN_PARAMS = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "seed": 0}
# A PNG has one background for both palettes: white, with near-black ink.
_INK = "#1f1f1f"
_PNG_RC = {
    "figure.facecolor": "white", "savefig.facecolor": "white", "axes.facecolor": "white",
    "text.color": _INK, "axes.labelcolor": _INK, "axes.edgecolor": _INK,
    "xtick.color": _INK, "ytick.color": _INK, "grid.color": "#b0b0b0", "grid.alpha": 0.6,
    "legend.frameon": False, "font.size": 11, "axes.titlesize": 12, "figure.dpi": 110,
}


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


def devices() -> list[str]:
    """This build's devices, for the notebook's first line."""
    return [s.device for s in digits_sources() if not s.archived]


def all_results() -> list[Result]:
    return [s.result for s in digits_sources() + throughput_sources() if not s.archived]


def _live(found: Sequence[Source]) -> list[Result]:
    return [s.result for s in found if not s.archived]


def _caption(text: str, found: Sequence[Source]) -> str:
    return caption(text, _live(found), sources_caption(found))


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
                'torch version, commit and date. See <a href="../results/">Results across hardware</a>.</p></div>\n')
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
    )


class Chart:
    """A chart for a notebook: a PNG inside an HTML figure, with alt text and a caption.

    Built on ``matplotlib.figure.Figure`` rather than pyplot, so that the
    kernel's inline backend does not show it a second time.
    """

    def __init__(self, fig: Figure, alt: str, caption_html: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", metadata={"Software": None})
        self.png = buf.getvalue()
        self.alt = alt
        self.caption_html = caption_html

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode()
        return (f'<figure class="gpucnn-chart gpucnn-png"><img alt="{html.escape(self.alt)}" '
                f'src="data:image/png;base64,{data}" style="max-width:100%;height:auto">'
                f"<figcaption>{self.caption_html}</figcaption></figure>")


def _png_figure(width: float = 7.0, height: float = 3.8) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=_PNG_RC["figure.dpi"])
    return fig, fig.add_subplot()


def _finish(fig: Figure, ax: Axes, alt: str, caption_html: str) -> Chart:
    ax.grid(True, which="major")
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return Chart(fig, alt, caption_html)


def _series_alt(title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], unit: str) -> str:
    parts = [f"{label}: {len(ys)} points, from {fmt(min(ys))} to {fmt(max(ys))} {unit}" for label, _, ys in series
             if ys]
    return f"{title}. " + "; ".join(parts) + "."


def loss_chart() -> Chart:
    """Training loss per step (faint), per epoch, and validation loss per epoch."""
    series = []
    with plt.rc_context(_PNG_RC):
        fig, ax = _png_figure()
        found = digits_sources()
        for i, s in enumerate(found):
            r = s.result.data
            spe = r["steps_per_epoch"]
            steps = [(k + 1) / spe for k in range(len(r["step_losses"]))]
            epochs = [h["epoch"] for h in r["history"]]
            dev = chart_text(s.label)
            if i == 0:
                ax.plot(steps, r["step_losses"], color=COLORS[0], alpha=0.45, linewidth=0.8,
                        label=f"training loss per batch ({dev})")
            lines = ((f"training loss, epoch mean ({dev})", [h["train_loss"] for h in r["history"]]),
                     (f"validation loss ({dev})", [h["val_loss"] for h in r["history"]]))
            for j, (label, ys) in enumerate(lines):
                k = (1 + j + 2 * i) % len(COLORS)
                ax.plot(epochs, ys, color=COLORS[k], marker=MARKERS[k], markerfacecolor="none" if s.archived else None,
                        linestyle="--" if s.archived else DASHES[k], label=label)
                series.append((label, epochs, ys))
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss (log scale)")
        ax.set_title("Loss while training the digits CNN")
        return _finish(fig, ax, _series_alt("Loss against epoch, log scale", series, ""), _caption(
            "Faint line: the loss of each training batch; markers: the mean training loss of each epoch and "
            "the loss on the validation images after it. One training run per device; dashed lines with hollow "
            "markers: archived.", found))


def accuracy_chart() -> Chart:
    """Validation accuracy per epoch, the epoch kept, the test score and the target."""
    series = []
    with plt.rc_context(_PNG_RC):
        fig, ax = _png_figure()
        found = digits_sources()
        for i, s in enumerate(found):
            r = s.result.data
            label = chart_text(s.label)
            epochs = [h["epoch"] for h in r["history"]]
            ys = [100 * h["val_accuracy"] for h in r["history"]]
            k = i % len(COLORS)
            ax.plot(epochs, ys, color=COLORS[k], marker=MARKERS[k], linestyle="--" if s.archived else DASHES[k],
                    markerfacecolor="none" if s.archived else None, label=f"validation accuracy ({label})")
            ax.plot([r["best_epoch"]], [100 * r["test_accuracy"]], linestyle="none", marker="*", markersize=14,
                    color=COLORS[(3 + i) % len(COLORS)], markerfacecolor="none" if s.archived else None,
                    label=f"test accuracy, epoch kept ({label})")
            series.append((f"validation accuracy ({label})", epochs, ys))
        ax.axhline(100 * TARGET_ACCURACY, color=_INK, linestyle=":", linewidth=1)
        ax.annotate(f"target {100 * TARGET_ACCURACY:.0f} %", xy=(1, 100 * TARGET_ACCURACY),
                    xytext=(0, -12), textcoords="offset points", fontsize=9)
        low = min(min(ys) for _, _, ys in series)
        ax.set_ylim(max(0.0, min(low, 100 * TARGET_ACCURACY) - 2), 100.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Accuracy on the digits")
        tests = "; ".join(f"test accuracy {100 * s.result.data['test_accuracy']:.1f} % at epoch "
                          f"{s.result.data['best_epoch']} ({s.label})" for s in found)
        return _finish(fig, ax, _series_alt("Validation accuracy against epoch", series, "%") + " " + tests + ".",
                       _caption("Line: accuracy on the validation images after each epoch. Star: accuracy on the "
                                "test images of the weights kept (the best validation epoch); dotted: the "
                                f"{100 * TARGET_ACCURACY:.0f} % target. Dashed lines, hollow markers: archived.",
                                found))


# --- throughput and the standard speedups -----------------------------------------

def _rate_lines(ax: Axes, results: Sequence[tuple[Source, Sequence[Measurement]]]) -> list:
    """images/s (median, IQR band) against batch size, one line per source; archived ones dashed and hollow."""
    series = []
    for i, (src, pts) in enumerate(results):
        xs = [m.shape[0] for m in pts]
        ys = [b / m.median for b, m in zip(xs, pts, strict=True)]
        k = i % len(COLORS)
        ax.plot(xs, ys, color=COLORS[k], marker=MARKERS[k], linestyle="--" if src.archived else DASHES[k],
                markerfacecolor="none" if src.archived else None, label=chart_text(src.label))
        ax.fill_between(xs, [b / m.p75 for b, m in zip(xs, pts, strict=True)],
                        [b / m.p25 for b, m in zip(xs, pts, strict=True)], color=COLORS[k],
                        alpha=0.12 if src.archived else 0.25, linewidth=0)
        series.append((src.label, xs, ys))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return series


def throughput_chart() -> Chart:
    """Training images/s against batch size, synthetic 3x64x64 images, with IQR bands."""
    with plt.rc_context(_PNG_RC):
        fig, ax = _png_figure()
        series = _rate_lines(ax, [(s, s.result.data["sweep"].points) for s in throughput_sources()])
        ax.set_xlabel("batch size (images per training step)")
        ax.set_ylabel("training images/s (log scale)")
        ax.set_title("Training throughput against batch size, 3x64x64 images")
        return _finish(fig, ax, _series_alt("Training images per second against batch size", series, "images/s"),
                       throughput_caption())


def throughput_caption() -> str:
    found = throughput_sources()
    runs = "; ".join(f"{s.label}: {min(m.runs for m in s.result.data['sweep'].points)} or more runs per point"
                     for s in found if s.result.data["sweep"].points)
    stops = " ".join(f"{s.label}: {s.result.data['sweep'].stopped}." for s in found if s.result.data["sweep"].stopped)
    return _caption(f"One training step (forward, loss, backward, AdamW update) of the same CNN widened to "
                    f"3x64x64 inputs, on one synthetic batch already in device memory. Line: median; band: "
                    f"IQR ({runs}). Dashed lines, hollow markers: archived. {stops}", found)


def speedup_table() -> str:
    rows, notes, runs, batches, marks = [], [], [], [], []
    found = sources(training_throughput, hosts=True)
    for s in found:
        res = s.result
        sp = res.data["speedups"]
        base = sp["plain fp32"].median
        batch = res.data["speedup_batch"]
        for name, m in sp.items():
            rows.append((s.label, name, _median_iqr(m), rate(batch / m.median), f"{base / m.median:.2f}x"))
            marks.append(s.origin)
            runs.append(m.runs)
        for name, why in (res.data["skipped"].items() if not s.archived else ()):
            # Not a row: a reader should not meet a "not measured" cell. The note says why.
            notes.append(note(f"{name} on {s.label}", why.rstrip(".") + "."))
        batches.append(f"{s.label}: batch {batch}")
    out = html_table(["Device", "Variant", "Step time: median (IQR)", "Images/s", "Speedup over plain"],
                     rows, align="llrrr", row_sources=marks)
    out += _caption(f"One training step on synthetic 3x64x64 images ({'; '.join(batches)}), each variant alone "
                    f"against the plain fp32 step of the same device and source; speedup = plain median / variant "
                    f"median; {min(runs or [0])} or more timed runs per variant.", found)
    return out + "".join(notes)


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
                       "Largest logit difference"], rows, align="lrrrr", row_sources=[s.origin for s in found])


def deploy_chart() -> Chart:
    """Inference images/s of the exported model against batch size, one line per device."""
    with plt.rc_context(_PNG_RC):
        fig, ax = _png_figure()
        found = digits_sources()
        series = _rate_lines(ax, [(s, s.result.data["deploy"].points) for s in found])
        ax.set_xlabel("batch size (images per call)")
        ax.set_ylabel("inference images/s (log scale)")
        ax.set_title("The exported digits CNN: one image at a time against batches")
        runs = "; ".join(f"{s.label}: {min(m.runs for m in s.result.data['deploy'].points)} or more runs per point"
                         for s in found if s.result.data["deploy"].points)
        return _finish(fig, ax, _series_alt("Inference images per second against batch size", series, "images/s"),
                       _caption(f"Exported program (torch.export), batches of test images already in device "
                                f"memory. Line: median; band: IQR ({runs}). Dashed lines, hollow markers: "
                                "archived.", found))


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
            "matrix-matrix product.")
