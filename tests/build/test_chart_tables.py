"""Every chart can be read without colour: its series differ by marker or line style, and its figures stand in a
table right below it ("The figures in a table", issue 11). The checks read rendered HTML (a page builder's, or the
built site's), so they hold for the notebook page too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpucnn import render
from gpucnn.render import (
    Series,
    figures_table,
    legible,
    line_chart,
    origin_style,
    series_table,
)
from tests.build.charts import (
    CHART,
    FIGURES,
    charts_told_apart_by_colour_only,
    charts_without_table,
    series_looks,
)


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
