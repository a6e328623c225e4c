"""Every chart can be read without colour: its series differ by marker or line style, and its figures stand in a
table right below it ("The figures in a table", issue 11). The checks read rendered HTML (a page builder's, or the
built site's), so they hold for the notebook page too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpucnn import render
from gpucnn.render import (
    FIGURES_TITLE,
    Series,
    figures_table,
    legible,
    line_chart,
    origin_style,
    series_table,
)

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


def series_sources(chart: str) -> list[str]:
    """Each series' ``data-source``, in the order ``series_looks`` reads them."""
    found = []
    for tag in TAG.finditer(chart):
        attrs = dict(ATTR.findall(tag.group(3)))
        if tag.group(2) == "g" and tag.group(1) != "/" and re.search(r"-s\d+$", attrs.get("id", "")) \
                and "data-source" in attrs:
            found.append(attrs["data-source"])
    return found


def charts_told_apart_by_colour_only(page: str) -> list[str]:
    """The titles of the charts on ``page`` where two sources' series share a marker, dashes and fill: only
    their colour tells them apart. One source drawn alike in several panels of small multiples is one series
    to a reader. Bar charts, labelled bar by bar, are skipped."""
    found = []
    for chart in CHART.finditer(page):
        looks = series_looks(chart.group(0))
        origins = series_sources(chart.group(0))
        pairs = set(zip(looks, origins, strict=False)) if len(origins) == len(looks) else set(enumerate(looks))
        shared = len({look for look, _ in pairs}) < len(pairs)
        if any(shape for shape, _, _ in looks) and shared:
            title = re.search(r"<title[^>]*>(.*?)</title>", chart.group(0), re.S)
            found.append(title.group(1) if title else chart.group(0)[:80])
    return found


def _chart(series: list[Series], title: str = "A chart") -> str:
    return line_chart(series, title=title, xlabel="n", ylabel="GFLOP/s", caption_text="Test chart.")


def _series(label: str, source: str = "live", style: dict | None = None) -> Series:
    return Series(label, [1, 2, 4], [1.0, 2.0, 3.0], [0.9, 1.8, 2.7], [1.1, 2.2, 3.3], style=style or {},
                  source=source)


def _effective(series: list[Series]) -> list[tuple[str, str, bool]]:
    """What tells each series apart without colour, as ``line_chart`` draws it: marker, line style, fill."""
    return [(str(s.style.get("marker", render.MARKERS[i % len(render.MARKERS)])),
             "--" if s.archived else str(s.style.get("linestyle", render.DASHES[i % len(render.DASHES)])), s.archived)
            for i, s in enumerate(series)]


# --- the checker itself -----------------------------------------------------------------------------------

def test_a_chart_with_its_table_passes_and_without_it_fails() -> None:
    series = [_series("CPU (this build)"), _series("H100 (archived)", "archived:h100.json")]
    chart = _chart(series)
    table = figures_table(chart, series_table(series, x="n", y="GFLOP/s"))
    assert charts_without_table(chart + table) == []
    assert charts_without_table(chart) == ["A chart"]
    # a table above the chart, or in the next section, is not the chart's
    assert charts_without_table(table + chart) == ["A chart"]
    assert charts_without_table(chart + '<h2 id="next">Next</h2>' + table) == ["A chart"]


def test_a_table_must_name_its_chart_and_carry_every_source() -> None:
    series = [_series("CPU (this build)"), _series("H100 (archived)", "archived:h100.json")]
    chart, other = _chart(series), _chart(series[:1], "Another chart")
    assert charts_without_table(chart + figures_table(other, series_table(series, x="n", y="GFLOP/s"))) \
        == ["A chart"]
    # the archived series is drawn, but the table leaves it out
    assert charts_without_table(chart + figures_table(chart, series_table(series[:1], x="n", y="GFLOP/s"))) \
        == ["A chart"]


def test_one_table_may_follow_a_pair_of_charts() -> None:
    first, second = _chart([_series("CPU (this build)")], "First"), _chart([_series("CPU (this build)")], "Second")
    body = series_table([_series("CPU (this build)")], x="n", y="GFLOP/s")
    assert charts_without_table(first + second + figures_table(first + second, body)) == []
    assert charts_without_table(first + second + figures_table(second, body)) == ["First"]


def test_charts_whose_series_differ_by_colour_alone_are_found() -> None:
    gpus = [_series("H100 (archived)", "archived:a.json", origin_style(1, False)),
            _series("H200 (archived)", "archived:b.json", origin_style(2, False))]
    assert charts_told_apart_by_colour_only(_chart(gpus)) == ["A chart"]
    assert charts_told_apart_by_colour_only(_chart(legible(gpus))) == []
    # a live and an archived series of the same shape differ by their dashes and hollow markers
    assert charts_told_apart_by_colour_only(_chart([_series("CPU (this build)", style=origin_style(0, False)),
                                                    gpus[0]])) == []
    assert series_looks(_chart(gpus))[0][1:] == ("5.92,2.56", True)


# --- the helpers --------------------------------------------------------------------------------------------

def test_legible_gives_series_that_differ_only_by_colour_their_own_marker() -> None:
    # origin_style: colour per source, circle for every GPU; archived ones are all dashed and hollow
    series = [
        _series("CPU (this build)", style=origin_style(0, True)),
        _series("H100 (archived)", "archived:a.json", origin_style(1, False)),
        _series("H100 host CPU (archived)", "archived:a.json", origin_style(1, True)),
        _series("H200 (archived)", "archived:b.json", origin_style(2, False)),
        _series("H200 host CPU (archived)", "archived:b.json", origin_style(2, True)),
    ]
    assert len(set(_effective(series))) < len(series)  # what the chart drew before
    fixed = legible(series)
    assert len(set(_effective(fixed))) == len(fixed)
    # styles that already told series apart are kept, colours too
    assert [s.style.get("marker") for s in fixed[:3]] == ["s", "o", "s"]
    assert [s.style["color"] for s in fixed] == [s.style["color"] for s in series]
    assert [(s.label, s.x, s.y) for s in fixed] == [(s.label, s.x, s.y) for s in series]


def test_legible_separates_a_long_list_of_default_styled_series() -> None:
    series = [_series(f"series {i}", "archived:x.json" if i % 2 else "live") for i in range(12)]
    assert len(set(_effective(legible(series)))) == 12


def test_series_table_escapes_record_strings_and_marks_sources() -> None:
    series = [_series("CPU (this build)"), _series("<b>GPU</b> | x", "archived:h<1>.json")]
    body = series_table(series, x="n", y="GFLOP/s")
    assert "<b>GPU" not in body and "&lt;b&gt;GPU&lt;/b&gt;" in body and "&#124;" in body
    assert 'data-source="archived:h&lt;1&gt;.json"' in body and 'data-source="live"' in body
    # one row per x, one column per series, the IQR beside each median
    assert body.count("<tr>") == 1 + 3 and "3 (2.7–3.3)" in body


def test_series_table_lists_points_when_the_series_have_different_sizes() -> None:
    short = Series("CPU (this build)", [1, 2], [1.0, 2.0])
    body = series_table([short, _series("H200 (archived)", "archived:h.json")], x="n", y="GFLOP/s")
    assert body.count("<tr>") == 1 + 2 + 3
    assert "<td" in body and not re.search(r"<td[^>]*></td>", body)  # no empty cell


# --- real pages -------------------------------------------------------------------------------------------

def test_page_builders_print_a_table_below_each_chart() -> None:
    from gpucnn.pages import cnn, gpu

    for html in (gpu.peaks_chart(), cnn.digit_figure()):
        assert "<svg" in html
        assert charts_without_table(html) == []
        assert charts_told_apart_by_colour_only(html) == []


def _site_pages(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in sorted(site.rglob("index.html"))
            if "assets" not in p.parts}


@pytest.mark.site
def test_every_chart_of_the_built_site_has_its_table(built_site: Path) -> None:
    pages = _site_pages(built_site)
    with_charts = {name: html for name, html in pages.items() if CHART.search(html)}
    assert len(with_charts) >= 5  # the check below ran on the pages that draw charts
    missing = {name: charts_without_table(html) for name, html in with_charts.items()}
    assert {k: v for k, v in missing.items() if v} == {}
    by_colour = {name: charts_told_apart_by_colour_only(html) for name, html in with_charts.items()}
    assert {k: v for k, v in by_colour.items() if v} == {}
    # every table is some chart's only one: take any away and the check fails
    for name, html in with_charts.items():
        for block in FIGURES.finditer(html):
            assert charts_without_table(html[:block.start()] + html[block.end():]) != [], (name, block.group(1))
