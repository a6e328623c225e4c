"""Charts for every reader: accessible name, colour-blind-safe lines, text that follows the palette."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import matplotlib.colors as mcolors
import numpy as np
import pytest

from gpucnn import render

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


def test_lines_differ_by_colour_marker_and_dash() -> None:
    n = len(render.COLORS)
    lines = _data_lines(_svg_root(_chart(n)))
    assert len(lines) >= n, f"found {len(lines)} data lines for {n} series"
    lines = lines[:n]
    colours = [_style(g.find(f"{SVG}path"))["stroke"].strip().lower() for g in lines]
    dashes = [_style(g.find(f"{SVG}path")).get("stroke-dasharray", "solid").strip() for g in lines]
    markers = [g.find(f".//{SVG}use").get(XLINK) for g in lines]
    assert len(set(colours)) == n, f"colours repeat: {colours}"
    assert len(set(dashes)) == n, f"dash patterns repeat: {dashes}"
    assert len(set(markers)) == n, f"markers repeat: {markers}"


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
