"""Readers of rendered chart HTML, shared by the chart checks of the built site and of the page builders:
each chart's figures table (``charts_without_table``) and series told apart by colour alone
(``charts_told_apart_by_colour_only``)."""

from __future__ import annotations

import re

from gpucnn.render import FIGURES_TITLE

CHART = re.compile(r'<figure class="gpucnn-chart">.*?</figure>', re.S)
# A figures note (render.figures_table); its attributes in any order, as the notebook page may reorder them.
FIGURES = re.compile(r'<details (?=[^>]*class="note gpucnn-figures")[^>]*?data-figures-of="([^"]*)"[^>]*>'
                     r"<summary>([^<]*)</summary>(.*?)</details>", re.S)
H2 = re.compile(r"<h2[ >]")


def charts_without_table(page: str) -> list[str]:
    """The titles of the charts on ``page`` (HTML) that no figures table names below them, in the same ``h2``
    section, with a table that marks every source the chart draws."""
    sections = [m.start() for m in H2.finditer(page)] + [len(page)]
    tables = [(m.start(), m.group(1).split(), m.group(2), m.group(3)) for m in FIGURES.finditer(page)]
    missing = []
    for chart in CHART.finditer(page):
        uid = re.search(r'aria-labelledby="(c[0-9a-f]+)-t', chart.group(0))
        title = re.search(r"<title[^>]*>(.*?)</title>", chart.group(0), re.S)
        name = title.group(1) if title else chart.group(0)[:80]
        end = next(s for s in sections if s > chart.start())
        drawn = set(re.findall(r'data-source="([^"]*)"', chart.group(0)))
        if uid is None or not any(
            start > chart.end() and start < end and uid.group(1) in ids and summary == FIGURES_TITLE
            and "<table" in body and drawn <= set(re.findall(r'data-source="([^"]*)"', body))
            for start, ids, summary, body in tables
        ):
            missing.append(name)
    return missing


TAG = re.compile(r"<(/?)([a-zA-Z]+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
ATTR = re.compile(r'([\w:-]+)="([^"]*)"')


def series_looks(chart: str) -> list[tuple[str | None, str, bool]]:
    """What tells each series of a rendered chart apart without colour: its marker's shape (the path of the
    marker matplotlib defines), its line's dashes, and whether its markers are hollow. Attribute order free:
    the notebook page writes the same SVG with its attributes reordered."""
    looks: list[tuple[str | None, str, bool]] = []
    current: dict | None = None
    depth, in_defs = 0, False
    # matplotlib defines a marker once and reuses it (same shape and style: a GPU and its host CPU share a
    # colour) with <use xlink:href="#id">: a series may hold only the reference to an earlier definition.
    defined = dict(re.findall(r'<path id="(m[0-9a-f]+)" d="([^"]*)"', chart))
    for tag in TAG.finditer(chart):
        closing, name, attrs = tag.group(1) == "/", tag.group(2), dict(ATTR.findall(tag.group(3)))
        if current is None:
            if name == "g" and not closing and re.search(r"-s\d+$", attrs.get("id", "")) and "data-source" in attrs:
                current, depth = {"shape": None, "line": "none", "hollow": False}, 1
            continue
        if name == "g":
            depth += -1 if closing else (0 if tag.group(3).rstrip().endswith("/") else 1)
            if depth == 0:
                looks.append((current["shape"], current["line"], current["hollow"]))
                current = None
        elif name == "defs":
            in_defs = not closing
        elif name == "path" and not closing:
            style = attrs.get("style", "")
            if in_defs and current["shape"] is None:
                current["shape"] = attrs.get("d")
            elif not in_defs and current["line"] == "none" and "stroke:" in style and "fill: none" in style:
                dash = re.search(r"stroke-dasharray: ([^;]*)", style)
                current["line"] = dash.group(1) if dash else "solid"
        elif name == "use" and not closing:
            if current["shape"] is None:
                current["shape"] = defined.get(attrs.get("xlink:href", "").lstrip("#"))
            if re.search(r"fill-opacity: 0(?![.\d])", attrs.get("style", "")):  # 0, not 0.25
                current["hollow"] = True
    return looks


def series_sources(chart: str) -> list[tuple[str, str]]:
    """Each series' panel (matplotlib's ``axes_N`` group around it) and ``data-source``, in the order
    ``series_looks`` reads them."""
    found, stack = [], []
    for tag in TAG.finditer(chart):
        if tag.group(2) != "g":
            continue
        if tag.group(1) == "/":
            if stack:
                stack.pop()
            continue
        attrs = dict(ATTR.findall(tag.group(3)))
        if re.search(r"-s\d+$", attrs.get("id", "")) and "data-source" in attrs:
            panel = next((g for g in reversed(stack) if re.fullmatch(r"axes_\d+", g)), "")
            found.append((panel, attrs["data-source"]))
        if not tag.group(3).rstrip().endswith("/"):
            stack.append(attrs.get("id", ""))
    return found


def charts_told_apart_by_colour_only(page: str) -> list[str]:
    """The titles of the charts on ``page`` where two sources' series share a marker, dashes and fill: only
    their colour tells them apart within one panel. One source drawn alike in several panels of small
    multiples is one series to a reader, and a panel's title names what it shows. Bar charts, labelled bar
    by bar, are skipped."""
    found = []
    for chart in CHART.finditer(page):
        looks = series_looks(chart.group(0))
        where = series_sources(chart.group(0))
        if len(where) != len(looks):  # series without a source marker: every look must differ
            shared = len(set(looks)) < len(looks)
        else:
            by_look: dict[tuple, set[str]] = {}
            for look, (panel, source) in zip(looks, where, strict=True):
                by_look.setdefault((panel, look), set()).add(source)
            shared = any(len(found_sources) > 1 for found_sources in by_look.values())
        if any(shape for shape, _, _ in looks) and shared:
            title = re.search(r"<title[^>]*>(.*?)</title>", chart.group(0), re.S)
            found.append(title.group(1) if title else chart.group(0)[:80])
    return found
