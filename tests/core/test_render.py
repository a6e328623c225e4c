"""Charts for every reader: accessible name, colour-blind-safe lines, text that follows the palette."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import matplotlib.colors as mcolors
import numpy as np
import pytest

from gpucnn import render
from tests.fakes import archived_sources as _archived
from tests.fakes import fake_result as _result

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"


def _chart(n_series: int = 3, **kwargs: object) -> str:
    series = [render.Series(f"line {i}", [1, 2, 4, 8], [i + 1.0, i + 2.0, i + 3.0, i + 5.0],
                            [i + 0.5] * 4, [i + 6.0] * 4) for i in range(n_series)]
    return render.line_chart(series, title="Time against size", xlabel="size (elements)", ylabel="time (ms)",
                             caption_text="Median of 5 runs; band: IQR.", logx=True, **kwargs)


def _svg_root(html: str) -> ET.Element:
    svg = re.search(r"<svg.*</svg>", html, re.S)
    assert svg, "no <svg> in the chart"
    return ET.fromstring(svg.group(0))


def _style(el: ET.Element) -> dict[str, str]:
    return dict(kv.split(":", 1) for kv in (s.strip() for s in el.get("style", "").split(";")) if ":" in kv) | {
        k: v for k, v in el.attrib.items() if k in ("fill", "stroke", "stroke-dasharray")}


def _data_lines(root: ET.Element) -> list[ET.Element]:
    """The <g id="line2d_N"> groups that draw a data line (coloured path plus markers)."""
    colours = {c.lower() for c in render.COLORS}
    out = []
    for g in root.iter(f"{SVG}g"):
        if not (g.get("id") or "").startswith("line2d_"):
            continue
        path = g.find(f"{SVG}path")
        if path is not None and _style(path).get("stroke", "").strip().lower() in colours and g.find(
                f".//{SVG}use") is not None:
            out.append(g)
    return out


def test_chart_has_an_accessible_name_and_description() -> None:
    root = _svg_root(_chart())
    assert root.get("role") == "img"
    ids = root.get("aria-labelledby", "").split()
    assert len(ids) == 2, "aria-labelledby must name the title and the description"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None, "the <svg> needs a <title> and a <desc> child"
    assert [title.get("id"), desc.get("id")] == ids
    assert title.text == "Time against size"
    # The default description says what each line shows, in words a screen reader can announce.
    assert "line 0" in desc.text and "line 2" in desc.text and "time (ms)" in desc.text
    # Title and description come first, so assistive technology finds them.
    assert [child.tag for child in root][:2] == [f"{SVG}title", f"{SVG}desc"]


def test_explicit_description_is_used_and_escaped() -> None:
    root = _svg_root(_chart(1, desc='CPU & GPU "compared" <here>'))
    assert root.find(f"{SVG}desc").text == 'CPU & GPU "compared" <here>'


def test_chart_text_is_real_text_in_currentcolor() -> None:
    html = _chart()
    root = _svg_root(html)
    texts = [t for t in root.iter() if t.tag in (f"{SVG}text", f"{SVG}tspan") and (t.text or "").strip()]
    words = " ".join(t.text for t in texts)
    assert "size (elements)" in words and "time (ms)" in words and "Time against size" in words
    assert "line 1" in words  # the legend
    # Nothing is drawn in black or in the private ink colour: both are unreadable in dark mode.
    assert "#000000" not in html and render._INK not in html
    for t in texts:
        fill = _style(t).get("fill", "").strip()
        assert fill in ("", "currentColor"), f"text {t.text!r} has a fixed colour {fill}"
    # Text without a fill of its own inherits the root's, which follows the page palette.
    assert root.get("fill") == "currentColor"


def test_black_drawn_outside_the_style_follows_the_palette() -> None:
    fig, ax = render.new_figure()
    ax.bar([0, 1], [1, 2], yerr=[0.1, 0.2], color=render.COLORS[:2], ecolor="black")
    ax.annotate("a label", (0, 1), color="black")
    ax.legend(["bars"], frameon=True)  # matplotlib's default: a white box, which hides light text in dark mode
    html = render.figure_html(fig, title="t", desc="d", caption_text="c")
    assert "#000000" not in html
    assert "fill: #ffffff" not in html, "a white legend box would hide the legend text in dark mode"
    root = _svg_root(html)
    assert root.get("fill") == "currentColor"
    assert any(t.text == "a label" for t in root.iter(f"{SVG}text"))


def test_colour_says_the_source_marker_the_series_and_a_dash_only_archived(monkeypatch) -> None:
    monkeypatch.setattr(render, "source_colour", lambda origin: "#56b4e9" if origin == "live" else "#e69f00")
    series = [render.Series(f"line {i}", [1, 2, 4], [i + 1.0, i + 2.0, i + 3.0]) for i in range(3)]
    series.append(render.Series("archived line", [1, 2, 4], [5.0, 6.0, 7.0], source="archived:h100.json"))
    lines = _data_lines(_svg_root(render.line_chart(series, title="t", xlabel="x (n)", ylabel="y (ms)",
                                                    caption_text="")))[:4]
    colours = [_style(g.find(f"{SVG}path"))["stroke"].strip().lower() for g in lines]
    dashes = [_style(g.find(f"{SVG}path")).get("stroke-dasharray", "solid").strip() for g in lines]
    markers = [g.find(f".//{SVG}use").get(XLINK) for g in lines]
    assert colours == ["#56b4e9"] * 3 + ["#e69f00"], "one colour per source"
    assert dashes[:3] == ["solid"] * 3 and dashes[3] != "solid", "dashed means archived, and nothing else"
    assert len(set(markers)) == 4, f"markers repeat: {markers}"


def test_a_chart_with_too_many_series_or_bars_on_a_log_axis_is_refused() -> None:
    with pytest.raises(render.ChartRuleError, match=r"chart 'Time against size': 6 series in one panel, at most 5"):
        _chart(6)
    assert "<svg" in _chart(5)
    fig, ax = render.new_figure()
    ax.bar([0, 1], [133, 51906])
    ax.set_yscale("log")
    with pytest.raises(render.ChartRuleError, match=r"chart 'Peaks': bars on a log axis"):
        render.figure_html(fig, title="Peaks", desc="d", caption_text="")
    fig, ax = render.new_figure()
    ax.barh([0, 1], [133, 51906], label="GFLOP/s")
    ax.set_xscale("log")
    with pytest.raises(render.ChartRuleError, match="bars on a log axis"):
        render.figure_html(fig, title="Peaks", desc="d", caption_text="")


def _lab(hex_colour: str, cvd: np.ndarray) -> np.ndarray:
    """CIELAB of a colour as seen with a colour-vision deficiency (a matrix on linear RGB)."""
    rgb = np.array(mcolors.to_rgb(hex_colour))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    lin = np.clip(cvd @ lin, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira & Fernandes (2009), severity 1.0: full dichromacy.
CVD = {
    "typical vision": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


@pytest.mark.parametrize("vision", list(CVD))
def test_palette_colours_stay_distinct_for_colour_blind_readers(vision: str) -> None:
    labs = {c: _lab(c, CVD[vision]) for c in render.COLORS}
    for a, b in itertools.combinations(render.COLORS, 2):
        delta = float(np.linalg.norm(labs[a] - labs[b]))
        assert delta > 10, f"{a} and {b} look alike with {vision} (ΔE {delta:.1f})"


def test_palette_avoids_black_and_yellow() -> None:
    # Black vanishes on the dark palette, yellow on the light one.
    for c in render.COLORS:
        r, g, b = mcolors.to_rgb(c)
        assert max(r, g, b) > 0.2, f"{c} is nearly black"
        assert not (r > 0.8 and g > 0.8 and b < 0.4), f"{c} is yellow"


# --- captions are short; each page section names its sources once (render.section_sources) ---


@pytest.fixture
def fresh_section() -> None:
    render.section_sources()  # forget what an earlier test left


def test_a_caption_is_its_text_only(fresh_section: None) -> None:
    from gpucnn.hardware import detect

    live = _result(detect())
    cap = render.caption("fp32 matmul.", [live, *_archived()])
    assert cap == '<p class="gpucnn-caption">fp32 matmul.</p>\n'


def test_a_section_names_this_build_once_then_each_record_once(fresh_section: None) -> None:
    from gpucnn.hardware import detect
    from gpucnn.sources import Source

    live = _result(detect())
    archived = _archived()
    render.caption("first chart", [Source("cpu", live), *archived])
    render.caption("second chart", [live, archived[0]])
    line = render.section_sources()
    assert line.startswith('<p class="gpucnn-sources">') and line.count("<p") == 1
    assert line.count("Measured in this build") == 1 and line.count("recorded on") == 1
    this_build = re.search(r'<span data-source="live">(.*?)</span>', line).group(1)
    assert this_build.startswith("CPU (this build): Measured in this build on")
    assert detect().cpu.model in this_build and "2026-01-02" in this_build and "profile quick" in this_build
    record = re.search(r'<span data-source="archived:nvidia-h100-2026-01-02.json">(.*?)</span>', line).group(1)
    # both of the record's labels, its full machine name, torch, commit, date and file; never "this build"
    assert "H100 (archived)" in record and "H100 host CPU (archived)" in record
    for part in ("recorded on NVIDIA H100 80GB HBM3", "torch 2.11.0", "abc1234", "2026-01-02",
                 "results/nvidia-h100-2026-01-02.json"):
        assert part in record, part
    assert "this build" not in record
    assert render.section_sources() == ""  # the next section starts empty


def test_a_section_with_only_archived_figures_has_no_this_build_line(fresh_section: None) -> None:
    render.caption("a chart", _archived("a.json", "NVIDIA H100 80GB HBM3") + _archived("b.json", "NVIDIA H200"))
    line = render.section_sources()
    assert 'data-source="live"' not in line and "Measured in this build" not in line
    assert line.count('data-source="archived:') == 2 and "<br>" in line


def test_a_record_string_in_the_sources_line_is_escaped(fresh_section: None) -> None:
    render.caption("a chart", _archived("x.json", "H100 <script>alert(1)</script>\n| x |"))
    line = render.section_sources()
    assert "<script>" not in line and "| x |" not in line and "\n" not in line.rstrip("\n")


def test_sources_left_unprinted_at_a_page_end_are_reported_and_a_new_page_starts_clean(fresh_section: None) -> None:
    from gpucnn import sources

    assert not sources.pending_sources()
    render.caption("a chart", _archived())
    assert sources.pending_sources()  # the build's hook fails the page on this
    sources.begin_page("next.md")
    assert not sources.pending_sources()
    sources.begin_page(None)


def test_the_build_fails_on_a_page_whose_last_figures_have_no_sources_line(fresh_section: None) -> None:
    from types import SimpleNamespace

    from mkdocs.exceptions import PluginError

    from gpucnn.build.state import Build

    page = SimpleNamespace(file=SimpleNamespace(src_uri="ann.md"))
    render.caption("a chart", _archived())
    with pytest.raises(PluginError, match=r"^page ann\.md: figures at its end have no sources line"):
        Build().page_content("<p>page</p>", page, None)
    render.section_sources()
    assert Build().page_content("<p>page</p>", page, None) == "<p>page</p>"


def test_reference_note_repeats_a_value_unless_the_label_gives_it_whole() -> None:
    from gpucnn.render import reference_note

    assert reference_note(hlines=[(4.0, "GeForce RTX 4090 peak")]).endswith("RTX 4090 peak at 4.")
    assert reference_note(hlines=[(100, "A100 FP32 peak")]).endswith("A100 FP32 peak at 100.")
    assert reference_note(hlines=[(2150, "CPU peak 2,150 GFLOP/s")]) == "Marked on the chart: CPU peak 2,150 GFLOP/s."
    assert reference_note() == ""


def test_log_axes_are_labelled_in_plain_numbers_not_small_superscripts() -> None:
    """matplotlib writes 10^k in mathtext, its exponent at 70 % of the text size: under 10 px on the page."""
    series = [render.Series("a", [0.5, 1e3, 1e6], [1.0, 2.0, 3.0])]  # not all whole: base 10
    html = render.line_chart(series, title="t", xlabel="n", ylabel="y (ms)", caption_text="", logx=True)
    assert "1,000" in html and "10⁶" in html
    assert "mathdefault" not in html and "baseline-shift" not in html
    assert render.plain_number(0.01) == "0.01" and render.plain_number(1e9) == "10⁹"


def test_each_source_keeps_one_marker_and_two_sources_of_a_kind_never_share_one() -> None:
    keys = [("live", "s"), ("live", "o"), ("archived:a", "s"), ("archived:a", "o"), ("archived:b", "o"),
            ("live", "o"), ("archived:a", "o")]  # the same sources again, in a second panel
    shapes = render.distinct_markers(keys)
    assert shapes[("live", "s")] == "s" and shapes[("live", "o")] == "o"  # the first of each kind: the base shape
    gpus = [shapes[(src, "o")] for src in ("live", "archived:a", "archived:b")]
    cpus = [shapes[(src, "s")] for src in ("live", "archived:a")]
    assert len(set(gpus)) == 3 and len(set(cpus)) == 2 and not set(gpus) & set(cpus)
