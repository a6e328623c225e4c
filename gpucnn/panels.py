"""Small multiples: one figure of several panels, each at most ``render.MAX_SERIES`` series.

A chart whose series would merge into one band (ten precision sweeps, a GPU and its host beside this build's
CPU) is split by precision or by source into panels that share the site's encodings (``render``: colour =
source, dashed and hollow = archived, squares CPUs and circles GPUs) and one legend under them all, off the
data. Captions live in the Markdown page beside the call, so the figure has none of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt

from gpucnn import render
from gpucnn.render import Series, archived_style, chart_text, figure_html, fmt, source_colour


@dataclass(frozen=True)
class Panel:
    """One panel: a short title (a precision, a source) and its series."""

    title: str
    series: tuple[Series, ...]


def _style(s: Series) -> dict:
    style = {"color": source_colour(s.source), "marker": "o", "linestyle": "-", "markersize": 4,
             "linewidth": 1.6, **s.style}
    return archived_style(style) if s.archived else style


def small_multiples(panels: Sequence[Panel], *, title: str, xlabel: str, ylabel: str, logx: bool = True,
                    logy: bool = True, columns: int = 2, ticks_every: int = 3, desc: str | None = None) -> str:
    """The panels in a grid of ``columns``, sharing the y axis, with one legend (each label once) underneath."""
    panels = [p for p in panels if p.series]
    if not panels:
        return ""
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    drawn: list[Series] = []
    with render.style_context():
        fig, axes = plt.subplots(rows, columns, figsize=(7.0, 0.6 + 2.7 * rows), sharey=True, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        shapes = render.distinct_markers([(s.source, str(s.style.get("marker", "o"))) for p in panels
                                          for s in p.series])
        for ax, panel in zip(axes.flat, panels, strict=False):
            for s in panel.series:
                style = {**_style(s), "marker": shapes[(s.source, str(s.style.get("marker", "o")))]}
                ax.plot(s.x, s.y, label=chart_text(s.label), gid=f"{render._SERIES_GID}{len(drawn)}", **style)
                if s.low is not None and s.high is not None:
                    ax.fill_between(s.x, s.low, s.high, color=style["color"], alpha=0.12 if s.archived else 0.25,
                                    linewidth=0)
                drawn.append(s)
            if logx:
                ax.set_xscale("log", base=2)
            if logy:
                ax.set_yscale("log")
            ns = sorted({v for s in panel.series for v in s.x})
            if ns and logx:
                shown = ns[::-ticks_every][::-1]
                ax.set_xticks(shown, [f"{int(n):,}" if float(n).is_integer() else fmt(n) for n in shown])
                ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.tick_params(labelsize=10)
            ax.set_title(chart_text(panel.title), fontsize=11)
            ax.grid(True, which="major")
        for ax in axes[-1]:
            ax.set_xlabel(xlabel, fontsize=10)
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel, fontsize=10)
        # One legend for all panels: a source drawn in several panels is named once.
        seen: dict[str, matplotlib.lines.Line2D] = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(label, handle)
        fig.suptitle(title, fontsize=12)
        spare = list(axes.flat[len(panels):])
        if spare:  # an empty cell of the grid holds the legend
            fig.tight_layout(rect=(0, 0, 1, 0.97))
            spare[0].set_visible(True)
            spare[0].axis("off")
            spare[0].legend(list(seen.values()), list(seen.keys()), loc="center", fontsize=10)
        else:
            fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=2, fontsize=10,
                       bbox_to_anchor=(0.5, 0.0), borderaxespad=0.2)
            fig.tight_layout(rect=(0, 0.045 * math.ceil(len(seen) / 2) + 0.02, 1, 0.97))
    default_desc = f"{title}. " + " ".join(
        f"{p.title}, {s.label}: {len(s.x)} points, from {fmt(min(s.y))} to {fmt(max(s.y))} {ylabel}."
        for p in panels for s in p.series if s.y)
    return figure_html(fig, title=title, desc=desc or default_desc, caption_text="",
                       sources=[s.source for s in drawn])
