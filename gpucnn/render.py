"""Tables, charts and captions for pages. Everything returns a string to print.

Charts are inline SVG with real ``<text>`` (so a screen reader and search can
read it), a ``<title>`` and ``<desc>``, and text drawn in ``currentColor`` so it
follows the page's light or dark palette. Colours are the Okabe-Ito
colour-blind-safe set, and each line has its own marker and dash as well.
"""

from __future__ import annotations

import hashlib
import html
import io
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gpucnn import chart_cache
from gpucnn import sources as sources_module
from gpucnn.bench import Measurement, Sweep
from gpucnn.hardware import HardwareReport, format_bytes
from gpucnn.profiling import stored_layer_rows, stored_op_rows
from gpucnn.results import Result
from gpucnn.sources import Source, and_list, note, one_line, plain_text, record_lines, take_section

# Drawn in this colour, then replaced by currentColor in the SVG text.
_INK = "#010203"
# Okabe-Ito, without black (invisible in dark mode) and yellow (invisible in light).
COLORS = ["#56B4E9", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#0072B2"]
MARKERS = ["o", "s", "^", "D", "v", "P"]
DASHES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1))]

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "gpucnn",  # stable ids, so an unchanged chart gives the same SVG
    "text.color": _INK, "axes.labelcolor": _INK, "axes.edgecolor": _INK,
    "xtick.color": _INK, "ytick.color": _INK, "grid.color": _INK, "grid.alpha": 0.18,
    "axes.facecolor": "none", "figure.facecolor": "none", "savefig.transparent": True,
    "legend.frameon": False, "font.size": 11, "axes.titlesize": 12,
    "font.family": "sans-serif",
}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or an en dash for none."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    text = f"{value:,.{digits}g}"
    # "g" writes numbers of 10**digits and up as "3.35e+03" (an H100's GB/s): whole numbers then.
    return f"{value:,.0f}" if "e+" in text else text


def fmt_time(seconds: float | None) -> str:
    """A time in the unit that reads best: ns, µs, ms or s."""
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column, l or r."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def describe_hardware(hw: HardwareReport) -> str:
    """One line naming the build machine, for captions."""
    parts = [hw.device_label("cpu")]
    parts.append(hw.device_label(hw.accelerator.device_type) if hw.accelerator else "no accelerator")
    return "; ".join(parts)


REUSED_NOTE = " (reused from the measurement cache)"


def provenance(results: Result | Sequence[Result]) -> str:
    """Where figures came from: device, torch, date measured, profile, commit."""
    rs = [results] if isinstance(results, Result) else list(results)
    first = rs[0]
    dates = sorted({r.date for r in rs})
    reused = any(r.reused for r in rs)
    commit = f", commit {first.commit}" if first.commit else ""
    return (
        f"Measured in this build on {describe_hardware(first.hardware)}; torch {first.torch}; "
        f"measured {', '.join(dates)}{REUSED_NOTE if reused else ''}; "
        f"profile {first.profile}{commit}."
    )


# The dates of a provenance line whose results this build measured (no REUSED_NOTE after them).
_MEASURED_DATES = re.compile(r"(; measured \d{4}-\d{2}-\d{2}(?:, \d{4}-\d{2}-\d{2})*)(?=; profile )")


def as_reused(html: str) -> str:
    """A page's HTML as a later build shows it, when every result on it is reused.

    The page cache (``gpucnn.page_cache``) serves a page made in the build that measured its results to
    later builds, which measure nothing: each of its provenance lines must then read as a reused one.
    """
    return _MEASURED_DATES.sub(lambda m: m.group(1) + REUSED_NOTE, html)


# What a caption stands on: this build's results, or sources (this build's or archived ones).
Cited = Result | Source | Sequence[Result | Source] | None


def caption(text: str, results: Cited = None, extra_html: str = "") -> str:
    """A figure or table caption: its own text only, short.

    The sources it stands on (``results``) are not repeated under every figure: they are named once per page
    section, in the line ``section_sources`` prints at the section's end. ``extra_html`` is appended as is:
    it must be escaped already.
    """
    note(results)
    extra = f" {extra_html}" if extra_html else ""
    # One line of printable text: a record's string in ``text`` (a sweep's ``stopped``) must not carry a
    # control or bidi character onto the page, nor a blank line, which would end this raw HTML block and
    # let Markdown read the rest.
    return f'<p class="gpucnn-caption">{html.escape(plain_text(text))}{extra}</p>\n'


def section_sources(section: int | None = None) -> str:
    """One line naming this build's labels, machine, torch, dates, profile and commit, then one line per
    archived record (labels, machine, torch, commit, date, file), for the figures shown since the last call;
    empty if none.

    ``gpucnn.templating`` ends each section (``##``) of a Markdown page with a block that prints it, passing
    the section's number so that the facts its template used are named too. The notebook prints it by hand;
    the build fails on a page whose last figures' sources were never printed (``sources.pending_sources``).
    """
    live, labels, archived = take_section()
    if section is not None:
        t_live, t_labels, t_archived = sources_module.PAGE.templated.pop(section, ([], [], []))
        live = [*t_live, *(r for r in live if all(r is not t for t in t_live))]
        labels = list(dict.fromkeys([*t_labels, *labels]))
        archived = [*t_archived, *(a for a in archived
                                   if all(a.origin != t.origin or a.label != t.label for t in t_archived))]
    lines = []
    if live:
        # Labels first, as in the archived lines: the legend entry or row a reader looks at, then where it ran.
        labelled = f"{and_list(labels)}: " if labels else ""
        lines.append(f'<span data-source="live">{html.escape(labelled + provenance(live))}</span>')
    if archived:
        lines.append(record_lines(archived))
    if not lines:
        return ""
    return '<p class="gpucnn-sources">Sources: ' + "<br>".join(lines) + "</p>\n"


@dataclass(frozen=True)
class Series:
    """One line on a chart: y against x, with an optional IQR band.

    ``source`` is ``live`` (measured in this build) or ``archived:<file>``; an
    archived series is drawn dashed with hollow markers, and the SVG group of
    every series carries its source as ``data-source`` for tests and readers.
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    style: dict = field(default_factory=dict)
    source: str = "live"

    @property
    def archived(self) -> bool:
        return self.source != "live"


def chart_text(text: object) -> str:
    """A string (maybe from a record) safe as chart text: one line, no mathtext (``$``)."""
    return " ".join(str(text).split()).replace("$", r"\$")


def source_colour(origin: str) -> str:
    """One colour per source across a build: this build's the first, each archived record one of the others.

    ``origin`` is ``Source.origin`` (``live`` or ``archived:<file>``). A record keeps its colour on every
    chart of a build whatever else the chart shows, so a reader can follow an H100 from chart to chart.
    The newest records, the ones drawn, take the colours furthest from this build's (the list's end is a
    second blue).
    """
    from gpucnn.sources import records_in_archive

    if origin == "live":
        return COLORS[0]
    newest_first = [r.name for r in sorted(records_in_archive(), key=lambda r: (r.generated_at, r.name),
                                           reverse=True)]
    name = origin.split(":", 1)[-1]
    index = newest_first.index(name) if name in newest_first else len(newest_first)
    return COLORS[1 + index % (len(COLORS) - 1)]


def archived_style(style: dict) -> dict:
    """How an archived series differs from a live one: dashed, hollow markers."""
    return {**style, "linestyle": "--", "markerfacecolor": "none", "markeredgewidth": 1.2}


def origin_style(origin: str | int, is_cpu: bool) -> dict:
    """Colour per source (``Source.origin``: this build, each record; see ``source_colour``), marker per device
    kind: a GPU and its host CPU match. Solid: ``archived_style`` dashes what is archived, and nothing else is.
    An int (a position among a chart's origins) is read as before, for callers not yet passing the origin."""
    color = source_colour(origin) if isinstance(origin, str) else COLORS[origin % len(COLORS)]
    return {"color": color, "marker": "s" if is_cpu else "o", "linestyle": "-"}


_SERIES_GID = "gpucnn-series-"
_AREA_GID = "gpucnn-area-"
_LABEL_GID = "gpucnn-label-"


def mark_sources(svg: str, sources: Sequence[str], uid: str) -> str:
    """Give each series group (``gid`` ``gpucnn-series-<i>``) a unique id and its ``data-source``."""
    for i, source in enumerate(sources):
        svg = svg.replace(f'id="{_SERIES_GID}{i}"',
                          f'id="{uid}-s{i}" data-source="{html.escape(source, quote=True)}"')
    return svg


def sweep_series(label: str, sweep: Sweep | Sequence[Measurement], x: str = "n", y: str = "gflops",
                 source: str = "live") -> Series:
    """A Series from measured points; the band is the IQR (p25..p75 of the times).

    ``x``: ``n`` (first shape entry) or ``bytes`` (bytes moved); ``y``: ``gflops``,
    ``gbps`` or ``time`` (median seconds).
    """
    points = sweep.points if isinstance(sweep, Sweep) else tuple(sweep)
    xs = [m.shape[0] if x == "n" else m.bytes_moved for m in points]
    work = {"gflops": lambda m: m.flops / 1e9, "gbps": lambda m: m.bytes_moved / 1e9}.get(y)
    if work is None:  # time: smaller is better, band is p25..p75
        return Series(label, xs, [m.median for m in points], [m.p25 for m in points], [m.p75 for m in points],
                      source=source)
    return Series(
        label, xs, [work(m) / m.median for m in points],
        [work(m) / m.p75 for m in points], [work(m) / m.p25 for m in points], source=source,
    )


def _svg_with_a11y(svg: str, title: str, desc: str, sources: Sequence[str] = ()) -> str:
    uid = "c" + hashlib.sha1((title + desc).encode()).hexdigest()[:10]
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype
    svg = mark_sources(svg, sources, uid)
    svg = re.sub(rf'id="{_AREA_GID}(\d+)"', rf'id="{uid}-a\1" data-plot-area="\1"', svg)
    svg = re.sub(rf'id="{_LABEL_GID}(\d+)-(\d+)"', rf'id="{uid}-l\1-\2" data-label-of="\1"', svg)
    svg = re.sub(r'<svg ', f'<svg role="img" aria-labelledby="{uid}-t {uid}-d" class="gpucnn-svg" ', svg, count=1)
    # A function, not a template: the title and description hold record text, whose backslashes a
    # template would read as group references or escapes.
    head = (f'<title id="{uid}-t">{html.escape(plain_text(title))}</title>'
            f'<desc id="{uid}-d">{html.escape(plain_text(desc))}</desc>')
    svg = re.sub(r'(<svg[^>]*>)', lambda m: m.group(1) + head, svg, count=1)
    # Text and axes follow the page palette (light or dark).
    svg = svg.replace(_INK, "currentColor")
    # Pure black (matplotlib's default for artists made outside style_context) is
    # unreadable in dark mode: strokes say #000000, black fills and text omit fill
    # and inherit it, so the root's fill="currentColor" covers those.
    svg = re.sub(r"#000000\b", "currentColor", svg)
    svg = svg.replace("<svg ", '<svg fill="currentColor" ', 1)
    # Let the chart scale with the column.
    svg = re.sub(r'(<svg[^>]*?) width="[^"]+" height="[^"]+"', r"\1", svg, count=1)
    return svg


def _save_svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plain_number(x: float) -> str:
    """A log axis's tick label in the page's own text size: ``0.01``, ``1,000``, ``10⁹``."""
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:  # wider labels run into each other on a narrow panel
        return f"{x:,.6g}"
    exponent = round(math.log10(abs(x)))
    if math.isclose(abs(x), 10.0**exponent, rel_tol=1e-9):
        return ("-" if x < 0 else "") + "10" + str(exponent).translate(_SUPERSCRIPT)
    return f"{x:.0e}"


class _PlainLogFormatter(matplotlib.ticker.LogFormatter):
    """matplotlib's log-axis labels (which ticks, major and minor), written as plain numbers: its default
    writes 10^k in mathtext, whose superscripts are drawn at 70 % of the text size, under 10 px on the page."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return plain_number(x)


def _plain_log_ticks(fig: plt.Figure) -> None:
    for ax in [*fig.axes, *(child for parent in fig.axes for child in parent.child_axes)]:
        for axis in (ax.xaxis, ax.yaxis):
            for get, put in ((axis.get_major_formatter, axis.set_major_formatter),
                             (axis.get_minor_formatter, axis.set_minor_formatter)):
                f = get()
                if isinstance(f, matplotlib.ticker.LogFormatterMathtext):
                    put(_PlainLogFormatter(base=f._base, labelOnlyBase=f.labelOnlyBase,
                                           minor_thresholds=f.minor_thresholds, linthresh=getattr(f, "_linthresh", None)))


MAX_SERIES = 5  # a panel with more merges into a band no reader can follow: split it into small multiples


class ChartRuleError(ValueError):
    """A chart breaks the site's chart rules (series per panel, bars on a log axis)."""


def check_chart_rules(fig: plt.Figure, title: str) -> None:
    """At most ``MAX_SERIES`` data series a panel, and no bars on a log axis (a bar's length from an
    arbitrary baseline misstates every ratio). Raises ``ChartRuleError`` naming the chart."""
    for ax in fig.axes:
        handles, _ = ax.get_legend_handles_labels()
        series = [h for h in handles if isinstance(h, (matplotlib.lines.Line2D, matplotlib.container.BarContainer))]
        bars = [c for c in ax.containers if isinstance(c, matplotlib.container.BarContainer)]
        if not handles:  # no legend: count the drawn lines and bar groups
            series = [ln for ln in ax.get_lines() if str(ln.get_gid() or "").startswith(_SERIES_GID)]
            series += bars
        if len(series) > MAX_SERIES:
            raise ChartRuleError(f"chart {title!r}: {len(series)} series in one panel, at most {MAX_SERIES}: "
                                 "split it into small multiples")
        if bars:
            horizontal = any(getattr(c, "orientation", "vertical") == "horizontal" for c in bars)
            scale = ax.get_xscale() if horizontal else ax.get_yscale()
            if scale != "linear":
                raise ChartRuleError(f"chart {title!r}: bars on a {scale} axis; use dots on a log axis, or "
                                     "linear bars")


def figure_html(fig: plt.Figure, *, title: str, desc: str, caption_text: str,
                results: Cited = None, sources: Sequence[str] = (),
                caption_html: str = "") -> str:
    """Render a matplotlib figure as accessible inline SVG with a caption.

    An unchanged figure is not drawn again: its SVG comes from the chart cache (``gpucnn.chart_cache``).
    """
    check_chart_rules(fig, title)
    _plain_log_ticks(fig)
    # A legend box filled white (the default outside style_context) hides the
    # currentColor legend text in dark mode: let the page show through.
    for legend in [ax.get_legend() for ax in fig.axes] + list(fig.legends):
        if legend is not None and legend.get_frame() is not None:
            legend.get_frame().set_facecolor("none")
    # Mark each plot area and the labels placed on it (ax.text/annotate: peaks, crossovers, cache
    # sizes), so a browser test can check that every label stays inside its plot area.
    for i, ax in enumerate(fig.axes):
        ax.patch.set_gid(f"{_AREA_GID}{i}")
        for j, text in enumerate(ax.texts):
            text.set_gid(f"{_LABEL_GID}{i}-{j}")
    # svg.fonttype/hashsalt/transparent are read at save time: without the style
    # here, text would be saved as paths (no <text> for screen readers or search).
    with plt.rc_context(_RC):
        drawn = chart_cache.svg_of(fig, lambda: _save_svg(fig))
    plt.close(fig)
    svg = _svg_with_a11y(drawn, title, desc, sources)
    cap = caption(caption_text, results, caption_html)
    # A chart whose caption the page writes in its Markdown (under the block) has no figcaption here.
    figcaption = f"<figcaption>{cap}</figcaption>" if caption_text or caption_html else ""
    # One line per element: Markdown must not treat the SVG as an indented block.
    return f'<figure class="gpucnn-chart">{svg.replace(chr(10), " ")}{figcaption}</figure>\n'


def outside_legend(ax: plt.Axes, columns: int = 2) -> None:
    """The legend under the plot area, off the data, in text as large as the axes' ticks."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, fontsize=10, borderaxespad=0.4)


def new_figure(width: float = 7.0, height: float = 4.2) -> tuple[plt.Figure, plt.Axes]:
    """A figure with gpucnn's chart style (currentColor text, transparent background)."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def style_context():
    """Use as ``with style_context():`` around custom figures."""
    return plt.rc_context(_RC)


def _reference_labels(ax: plt.Axes, side: str, lines: Sequence[tuple[float, str]]) -> list[str]:
    """Label reference lines on a secondary axis (``right`` or ``top``): one tick label per line, no marks.

    Labels are wrapped short: a wide label would widen the SVG, and the whole chart, text included,
    would then be drawn smaller to fit the column. Top labels break before a parenthesis, so that
    neighbouring cache sizes do not run into each other; right ones before a closing figure and unit.
    """
    secondary = ax.secondary_yaxis("right") if side == "right" else ax.secondary_xaxis("top")
    axis = secondary.yaxis if side == "right" else secondary.xaxis
    labels = []
    for _, label in lines:
        text = chart_text(label)
        text = text.replace(" (", "\n(") if side == "top" else re.sub(r" (?=[\d.,]+ \S+$)", "\n", text)
        labels.append("\n".join(textwrap.fill(part, 22) for part in text.split("\n")))
    secondary.set_ticks([v for v, _ in lines], labels)
    axis.set_minor_locator(matplotlib.ticker.NullLocator())
    secondary.tick_params(length=0, labelsize=9)
    return labels


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    caption_text: str,
    results: Cited = None,
    logx: bool = False,
    logy: bool = False,
    desc: str | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    vlines: Sequence[tuple[float, str]] = (),
    spans: Sequence[tuple[float, float, str]] = (),
    xticks: Sequence[tuple[float, str]] = (),
    caption_html: str = "",
) -> str:
    """A line chart of one or more Series, with IQR bands, as accessible SVG.

    ``hlines``/``vlines`` draw labelled reference lines (a peak, a cache size);
    ``spans`` shade labelled x ranges (e.g. where per-call overhead dominates);
    ``xticks`` replaces the x tick marks with (value, label) pairs.
    """
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        for i, s in enumerate(series):
            # Colour says the source (one per record, site-wide), the marker tells a source's series apart,
            # and a dash says "archived" (archived_style) and nothing else.
            style = {"color": source_colour(s.source), "marker": MARKERS[i % len(MARKERS)],
                     "linestyle": "-", "markersize": 4, "linewidth": 1.6, **s.style}
            if s.archived:
                style = archived_style(style)
            ax.plot(s.x, s.y, label=chart_text(s.label), gid=f"{_SERIES_GID}{i}", **style)
            if s.low is not None and s.high is not None:
                ax.fill_between(s.x, s.low, s.high, color=style["color"], alpha=0.12 if s.archived else 0.25,
                                linewidth=0)
        # Reference lines are labelled on the axis opposite their own (peaks on the right, cache sizes
        # on top), like tick labels, and shaded ranges in the legend: wherever the data run, no label
        # sits on a line or a marker.
        for value, _ in hlines:
            ax.axhline(value, color=_INK, linestyle=":", linewidth=1)
        for value, _ in vlines:
            ax.axvline(value, color=_INK, linestyle="--", linewidth=0.8, alpha=0.6)
        for lo, hi, label in spans:
            ax.axvspan(lo, hi, color=_INK, alpha=0.07, linewidth=0, label=chart_text(label))
        if logx:
            ax.set_xscale("log", base=2 if all(float(v).is_integer() for s in series for v in s.x) else 10)
        if logy:
            ax.set_yscale("log")
        if xticks:  # (value, label) pairs, e.g. sizes written as "4 KiB"
            ax.set_xticks([v for v, _ in xticks], [label for _, label in xticks])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="major")
        if hlines:
            right = _reference_labels(ax, "right", hlines)
            # The labels widen the saved SVG, which the page scales to its column: narrow the figure by
            # about their width (9 pt text), so this chart's text is drawn as large as its neighbours'.
            widest = max(len(line) for label in right for line in label.split("\n"))
            fig.set_size_inches(7.0 - 0.07 * widest, 4.2)
        if vlines:
            _reference_labels(ax, "top", vlines)
        if len(series) > 0:
            outside_legend(ax)
    default_desc = f"{title}. " + " ".join(
        f"{s.label}: {len(s.x)} points, from {fmt(min(s.y))} to {fmt(max(s.y))} {ylabel}." for s in series if s.y
    )
    return figure_html(fig, title=title, desc=desc or default_desc, caption_text=caption_text, results=results,
                       sources=[s.source for s in series], caption_html=caption_html)


def hardware_table(hw: HardwareReport) -> str:
    """The build machine as a Markdown table: CPU, accelerator and software."""
    cpu = hw.cpu
    rows = [
        ("CPU", cpu.model + (f" ({cpu.family})" if cpu.family else "")),
        ("Logical cores / threads torch uses", f"{cpu.logical_cores} / {cpu.torch_threads}"),
        ("Clock (reported / highest known)", f"{fmt(cpu.reported_clock_ghz)} GHz / {fmt(cpu.max_clock_ghz)} GHz"),
        ("Last-level cache", format_bytes(cpu.llc_bytes)),
        ("RAM", format_bytes(cpu.ram_bytes)),
        ("CPU peak FP32", f"{fmt(cpu.peak_fp32.value / 1e9)} GFLOP/s ({cpu.peak_fp32.source})" if cpu.peak_fp32 else cpu.peak_note),
        *([("CPU peak bf16", f"{fmt(cpu.peak_bf16.value / 1e9)} GFLOP/s ({cpu.peak_bf16.source})")]
          if cpu.peak_bf16 else []),
        ("OS / Python", f"{hw.os} / {hw.python}"),
        ("torch / BLAS", f"{hw.torch} / {hw.blas}"),
    ]
    acc = hw.accelerator
    if acc is None:
        rows.append(("Accelerator", "none: this build machine has no CUDA, ROCm, MPS or XPU device"))
    else:
        rows += [
            ("Accelerator", f"{acc.backend}: {acc.name} x {acc.count}"),
            ("Accelerator memory", format_bytes(acc.memory_bytes)),
            ("Compute capability / architecture", acc.capability or "unknown"),
            ("SMs / compute units", acc.multiprocessors or "unknown"),
            ("L2 cache", format_bytes(acc.l2_bytes)),
            ("Driver / runtime / cuDNN", f"{acc.driver or '–'} / {acc.runtime or '–'} / {acc.cudnn or '–'}"),
            ("TF32 for fp32 matmul", {True: "allowed", False: "off (full FP32)", None: "n/a"}[acc.tf32_matmul]),
            ("MIG", acc.mig or "n/a"),
        ]
        if acc.peaks:
            p = acc.peaks
            rows.append(("Datasheet peaks", f"FP32 {fmt(p.fp32 / 1e12)} / TF32 {fmt(p.tf32 / 1e12 if p.tf32 else None)} / "
                                            f"BF16 {fmt(p.bf16 / 1e12 if p.bf16 else None)} TFLOP/s, "
                                            f"{fmt(p.bandwidth / 1e12)} TB/s ({p.source})"))
        else:
            rows.append(("Datasheet peaks", "not in gpucnn's table: no peak shown"))
    return table(["", "This build machine"], rows, align="ll")


def suite_table(results: Sequence[Result]) -> str:
    """The CLI's summary of the standard suite: one row per headline figure."""
    rows = []
    for r in results:
        device = r.params.get("device", "cpu")
        label = r.hardware.device_label(device)
        if r.experiment == "matmul_sweep":
            pts = r.data["sweep"].points
            if pts:
                m = pts[-1]
                rows.append((label, f"fp32 matmul n={m.shape[0]}", f"{fmt(m.gflops)} GFLOP/s",
                             fmt(m.pct_peak_flops, 2) + " %" if m.pct_peak_flops else "no peak", m.runs))
        elif r.experiment == "copy_bandwidth":
            pts = r.data["sweep"].points
            if pts:
                m = pts[-1]
                best = max(pts, key=lambda p: p.gbps or 0)
                rows.append((label, f"copy {format_bytes(m.shape[0])} (beyond cache)", f"{fmt(m.gbps)} GB/s",
                             fmt(m.pct_peak_bandwidth, 2) + " %" if m.pct_peak_bandwidth else "no peak", m.runs))
                rows.append((label, f"copy {format_bytes(best.shape[0])} (fastest size)", f"{fmt(best.gbps)} GB/s",
                             "in cache", best.runs))
        elif r.experiment == "small_op_latency":
            for key in ("add_single", "add_stream"):
                m = r.data[key]
                rows.append((label, m.name, fmt_time(m.median), "", m.runs))
    return table(["Device", "What", "Median", "% of peak", "Runs"], rows, align="llrrr")


def short_bytes(n: float) -> str:
    """A power-of-two size the short way: ``512 B``, ``4 KiB``, ``32 MiB``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if float(n).is_integer() else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"


def size_ticks(lo: float, hi: float, step: int = 8) -> list[tuple[float, str]]:
    """Tick marks at powers of ``step`` x 1 KiB between ``lo`` and ``hi``, labelled in KiB/MiB."""
    ticks, v = [], 1024.0
    while v > lo:
        v /= step
    while v <= hi:
        if v >= lo:
            ticks.append((v, short_bytes(v)))
        v *= step
    return ticks


def rate(value: float) -> str:
    """A rate such as samples/s: whole numbers with thousands separators from 100 up."""
    return f"{value:,.0f}" if value >= 100 else fmt(value)


def code_cell(text: object) -> str:
    """An identifier from a result (an op or layer name, maybe from an archived record) as inline code, escaped."""
    return f"<code>{one_line(text)}</code>"


def profile_cells(rows: Sequence[Any], device: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a profiler top-ops table. Device columns only where the profiler times the device:
    on MPS it records CPU-side events only, so a device column would be all zeros. Rows archived before
    ``gpucnn.profiling`` lose their kernel rows and device shares (``stored_op_rows``)."""
    rows = stored_op_rows(rows)
    timed_device = device not in ("cpu", "mps") and any(row["self_device_s"] for row in rows)
    shares = timed_device and all(row["self_device_pct"] is not None for row in rows)
    headers = ["Op", "Calls per step", "Self CPU time per step", "Share of CPU time"]
    if timed_device:
        headers += [f"Self {device.upper()} time per step"] + ([f"Share of {device.upper()} time"] if shares else [])
    cells = []
    for row in rows:
        c = [code_cell(row["op"]), fmt(row["calls"]), fmt_time(row["self_cpu_s"]), f"{fmt(row['self_cpu_pct'], 2)} %"]
        if timed_device:
            c += [fmt_time(row["self_device_s"])] + ([f"{fmt(row['self_device_pct'], 2)} %"] if shares else [])
        cells.append(c)
    return headers, cells


def kernel_cells(rows: Sequence[Any], device: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a profiler top-kernels table (rows from ``gpucnn.profiling.stored_kernel_rows``);
    the share column only where the record's shares are of all kernel time."""
    shares = all(r["self_device_pct"] is not None for r in rows)
    headers = ["Kernel", "Launches per step", f"{device.upper()} time per step"] + (
        ["Share of kernel time"] if shares else [])
    cells = [[code_cell(r["op"]), fmt(r["calls"]), fmt_time(r["self_device_s"])]
             + ([f"{fmt(r['self_device_pct'], 2)} %"] if shares else []) for r in rows]
    return headers, cells


def layer_cells(rows: Sequence[Any], device: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a per-layer profile table: host time, and the device time of each layer's
    kernels where the profile has it (one row per layer, also for records made before it had)."""
    rows = stored_layer_rows(rows)
    timed = device not in ("cpu", "mps") and any(r["device_total_s"] for r in rows)
    key = "device_total_s" if timed else "cpu_total_s"
    total = sum(r[key] or 0.0 for r in rows) or 1.0
    headers = ["Layer (forward)", "Host (CPU) time per step"]
    headers += [f"{device.upper()} kernel time per step", "Share of forward (kernel time)"] if timed else [
        "Share of forward"]
    cells = []
    for r in rows:
        c = [code_cell(r["layer"]), fmt_time(r["cpu_total_s"])]
        if timed:
            c.append(fmt_time(r["device_total_s"] or 0.0))
        c.append(f"{fmt(100 * (r[key] or 0.0) / total, 2)} %")
        cells.append(c)
    return headers, cells


# --- legible without colour: distinct markers, and each chart's figures in a table ---------------------------

# Marker shapes a chart may fall back on when two of its series would otherwise differ by colour alone.
# Squares come last: they mean "CPU" on the device charts (origin_style), so a GPU should not get one.
_LEGIBLE_MARKERS = ["o", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*", "d", "H", "s"]

# Shapes a kind of device's marker may take, the first for the first source drawn: squares for CPUs, circles
# for GPUs, then shapes of their own for each further source, so that no two sources differ by colour alone.
_SHAPES = {"s": ["s", "P", "X", "p", "*"], "o": ["o", "^", "D", "v", "h"]}


def distinct_markers(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """For each (source, kind's marker) in drawing order, the marker it is drawn with: the same for a source
    wherever it appears (across small multiples), different between sources of one kind."""
    out: dict[tuple[str, str], str] = {}
    used: dict[str, int] = {}
    for source, marker in keys:
        if (source, marker) not in out:
            shapes = _SHAPES.get(marker, [marker, *_LEGIBLE_MARKERS])
            out[(source, marker)] = shapes[used.get(marker, 0) % len(shapes)]
            used[marker] = used.get(marker, 0) + 1
    return out


FIGURES_TITLE = "The figures in a table"


def legible(series: Sequence[Series]) -> list[Series]:
    """The series, each told apart from the others by marker shape or line style, not by colour alone.

    ``line_chart`` draws a series with its own style, else with ``MARKERS`` by index and a solid line, and every
    archived one dashed and hollow; so two archived GPUs styled by ``origin_style`` (circles), or the 7th
    series of a long list, would differ only in colour. A series whose marker, line and fill repeat an
    earlier one's gets the first marker shape not yet used with that line and fill; the others keep theirs,
    so a style that means something (squares: CPU) stays where it already tells series apart.
    """
    used: set[tuple[str, str, bool]] = set()
    out = []
    for i, s in enumerate(series):
        marker = str(s.style.get("marker", MARKERS[i % len(MARKERS)]))
        line = "--" if s.archived else str(s.style.get("linestyle", "-"))
        if (marker, line, s.archived) in used:
            marker = next((m for m in _LEGIBLE_MARKERS if (m, line, s.archived) not in used), marker)
            s = Series(**{**s.__dict__, "style": {**s.style, "marker": marker}})
        used.add((marker, line, s.archived))
        out.append(s)
    return out


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """An HTML table, on one line (so Markdown leaves it alone, and a notebook output shows it as is).

    Headers and cells are HTML: a caller escapes what it did not write itself (``Source.cell``, ``one_line``).
    ``align`` is one character per column, l or r.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    side = {"l": "left", "r": "right"}

    def cells(tag: str, values: Sequence[object]) -> str:
        return "".join(f'<{tag} style="text-align:{side[a]}">{v}</{tag}>' for a, v in zip(align, values, strict=True))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', headers)}</tr></thead><tbody>{body}</tbody></table>"


def chart_ids(charts: str) -> list[str]:
    """The ids of the charts in ``charts`` (rendered by ``figure_html``), in order."""
    return re.findall(r'<svg [^>]*aria-labelledby="(c[0-9a-f]+)-t', charts)


def figures_table(charts: str, body: str, note_text: str = "") -> str:
    """``body`` (tables from ``html_table``) in a collapsed note titled "The figures in a table", for the
    chart or charts rendered in ``charts``: printed right below them, it names them in ``data-figures-of``
    (what the site tests check), and ``note_text`` (plain text) says what the table leaves out or adds.

    The note is the HTML that Material's ``??? note`` writes, so it looks the same on a Markdown page and in
    the notebook, where no Markdown is read.
    """
    ids = " ".join(chart_ids(charts))
    extra = f"<p>{html.escape(note_text)}</p>" if note_text else ""
    return (f'<details class="note gpucnn-figures" data-figures-of="{ids}"><summary>{FIGURES_TITLE}</summary>'
            f"{body}{extra}</details>\n")


def series_cell(s: Series) -> str:
    """A series' label as a table cell marked with its source, the markup of ``Source.cell``."""
    return f'<span data-source="{one_line(s.source)}">{one_line(s.label)}</span>'


def series_table(series: Sequence[Series], *, x: str, y: str, x_text: Callable[[float], str] = fmt,
                 y_text: Callable[[float], str] = fmt) -> str:
    """A chart's Series as an HTML table, for ``figures_table``: each point's x and y, with its band (IQR).

    When every series has the same x values, one row per x and one column per series; otherwise one row per
    point, the series named in the first column (no cell is left empty). ``x`` and ``y`` name the columns.
    """
    def value(s: Series, k: int) -> str:
        if s.low is None or s.high is None:
            return y_text(s.y[k])
        return f"{y_text(s.y[k])} ({y_text(s.low[k])}–{y_text(s.high[k])})"

    with_band = any(s.low is not None and s.high is not None for s in series)
    y_head = html.escape(y + (": median (IQR)" if with_band else ""))
    xs = [list(s.x) for s in series]
    if series and all(v == xs[0] for v in xs):
        headers = [html.escape(x)] + [series_cell(s) for s in series]
        rows = [[x_text(xv)] + [value(s, k) for s in series] for k, xv in enumerate(xs[0])]
        return f"<p>{y_head}</p>" + html_table(headers, rows)
    rows = [[series_cell(s), x_text(xv), value(s, k)] for s in series for k, xv in enumerate(s.x)]
    return html_table(["Series", html.escape(x), y_head], rows, align="lrr")


def reference_note(*, hlines: Sequence[tuple[float, str]] = (), vlines: Sequence[tuple[float, str]] = (),
                   spans: Sequence[tuple[float, float, str]] = (), x_text: Callable[[float], str] = fmt,
                   y_text: Callable[[float], str] = fmt) -> str:
    """A line chart's reference lines and shaded ranges (``line_chart``'s arguments) in words, for the note
    under its table: plain text, as ``figures_table`` wants it."""
    def flat(label: str) -> str:
        return " ".join(label.split())

    def at(label: str, value: str) -> str:  # a label that already says its value (a peak) is not repeated
        # The value as a whole number in the label: "4" is not in "RTX 4090", nor "100" in "A100".
        said = re.search(rf"(?<![\w.,]){re.escape(value)}(?![\w.,]|\d)", label)
        return flat(label) if said else f"{flat(label)} at {value}"

    parts = [at(label, y_text(value)) for value, label in hlines]
    parts += [at(label, x_text(value)) for value, label in vlines]
    parts += [f"{flat(label)} from {x_text(lo)} to {x_text(hi)}" for lo, hi, label in spans]
    return f"Marked on the chart: {'; '.join(parts)}." if parts else ""


def gflops_text(value: float) -> str:
    """A rate in GFLOP/s with its unit, for a sentence: the value formatted by ``fmt``, then " GFLOP/s"."""
    return f"{fmt(value)} GFLOP/s"
