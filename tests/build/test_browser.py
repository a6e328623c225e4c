"""The built site in a real browser (headless Debian Chromium via Playwright), as readers use it.

Every page of the built site (found by walking its HTML files, so new pages are
picked up) is loaded once in light mode and once in dark mode, served from
127.0.0.1. Each load records console errors, failed requests and every request
to another host, measures every chart, and computes the WCAG contrast between
each chart's text and the page behind it. The light pass also exercises the
page's interactive parts: the source/result tabs, the copy button and the
dark-mode toggle. Search is checked once, on the home page.

Skipped only where Chromium or Playwright is missing on a developer's machine;
with ``CI`` set, a missing browser fails the suite instead.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import http.server
import importlib
import inspect
import io
import json
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
HOST = "127.0.0.1"

_missing = ("playwright is not installed" if sync_playwright is None
            else None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)")
if _missing and not os.environ.get("CI"):
    pytest.skip(f"browser suite skipped: {_missing}; CI is not set", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.site]

NOTEBOOK_IMAGES = ".jp-RenderedImage img, .jp-OutputArea-output img"
# Material's copy button: .md-clipboard up to 9.6, .md-code__button[data-md-type=copy] from 9.7.
COPY_BUTTONS = "pre button.md-clipboard, pre button[data-md-type=copy]"


# ---------------------------------------------------------------- the site, served


def site_prefix(site: Path) -> str:
    """The URL path the site is published under (from sitemap.xml), e.g. ``/gpucnn/``."""
    sitemap = site / "sitemap.xml"
    if not sitemap.exists():
        return "/"
    locs = [el.text or "" for el in ET.parse(sitemap).iter() if el.tag.endswith("loc")]
    return urlsplit(locs[0]).path if locs else "/"


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the built site, as a path relative to the site root (``measuring/``)."""
    pages = []
    for html in sorted(site.rglob("*.html")):
        rel = html.relative_to(site)
        if rel.parts[0] in ("assets", "search"):
            continue
        pages.append(rel.as_posix().removesuffix("index.html"))
    return pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    prefix = "/"

    def translate_path(self, path: str) -> str:
        # Serve the site under the path it is published at, so 404.html's absolute links resolve.
        path = urlsplit(path).path
        path = "/" + path[len(self.prefix):] if path.startswith(self.prefix) else "/__outside_the_site__"
        return super().translate_path(path)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` with a stdlib HTTP server on 127.0.0.1 in a thread; yields the site's URL."""
    prefix = site_prefix(site)
    handler = type("Handler", (_QuietHandler,), {"prefix": prefix})
    server = http.server.ThreadingHTTPServer((HOST, 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}{prefix}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site, served on 127.0.0.1."""
    with serve(built_site) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session."""
    if _missing:
        pytest.fail(f"{_missing}, and CI is set: the browser suite must run in CI")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


# ---------------------------------------------------------------- colour maths (WCAG 2.x)


def parse_rgba(css: str) -> tuple[float, float, float, float]:
    """``rgb(1, 2, 3)`` / ``rgba(1, 2, 3, 0.5)`` (the browser's computed form) -> (r, g, b, a)."""
    nums = [float(v) for v in re.findall(r"[-\d.]+", css)]
    if css.startswith("color(srgb"):
        nums = [v * 255 for v in nums[:3]] + nums[3:]
    if len(nums) < 3:
        raise ValueError(f"not an rgb colour: {css!r}")
    return nums[0], nums[1], nums[2], nums[3] if len(nums) > 3 else 1.0


def over(fg: tuple[float, ...], bg: tuple[float, ...], alpha: float) -> tuple[float, float, float]:
    """``fg`` composited with opacity ``alpha`` over an opaque ``bg``."""
    return tuple(alpha * f + (1 - alpha) * b for f, b in zip(fg[:3], bg[:3], strict=True))  # type: ignore[return-value]


def luminance(rgb: tuple[float, ...]) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_maths_matches_wcag() -> None:
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)
    assert parse_rgba("rgba(226, 228, 233, 0.82)") == (226, 228, 233, 0.82)
    assert over((255, 255, 255), (0, 0, 0), 0.5) == (127.5, 127.5, 127.5)


# ---------------------------------------------------------------- what one page load records

# Runs in the page: reveal each chart (open its <details>, select its tab), then
# measure it and read the colours of its text and of the page behind it.
_CHARTS_JS = r"""
(notebookSel) => {
  const reveal = (el) => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (a.tagName === 'DETAILS') a.open = true;
      if (a.classList.contains('tabbed-block')) {
        const i = [...a.parentElement.children].indexOf(a);
        const set = a.closest('.tabbed-set');
        const inputs = set.querySelectorAll(':scope > input');
        if (inputs[i]) inputs[i].checked = true;
      }
    }
  };
  const background = (el) => {
    const layers = [];
    for (let a = el; a; a = a.parentElement) {
      const c = getComputedStyle(a).backgroundColor;
      layers.push(c);
      const m = c.match(/[\d.]+/g);
      if (m && (m.length < 4 || parseFloat(m[3]) >= 0.999)) break;
    }
    return layers;
  };
  const opacity = (el, stop) => {
    let o = 1;
    for (let a = el; a && a !== stop.parentElement; a = a.parentElement) o *= parseFloat(getComputedStyle(a).opacity);
    return o;
  };
  // The chart's own filled shapes under a point (bars, bands, a legend box), topmost first.
  const SHAPES = new Set(['path', 'rect', 'use', 'polygon', 'circle', 'ellipse']);
  const fillOf = (el) => {
    const f = getComputedStyle(el).fill;
    const url = f.match(/url\("?#([^")]+)"?\)/);
    if (!url) return f;
    const pattern = document.getElementById(url[1]);  // a hatch: its background rectangle's colour
    const base = pattern && [...pattern.querySelectorAll('rect, path')].find((e) => getComputedStyle(e).fill !== 'none');
    return base ? getComputedStyle(base).fill : 'none';
  };
  const under = (svg, t) => {
    const r = t.getBoundingClientRect();
    const layers = [];
    for (const el of document.elementsFromPoint(r.x + r.width / 2, r.y + r.height / 2)) {
      if (el === svg || !svg.contains(el)) break;
      if (!SHAPES.has(el.tagName.toLowerCase()) || el.closest('text')) continue;
      const fill = fillOf(el);
      if (fill === 'none' || fill.startsWith('url')) continue;
      layers.push({fill, opacity: parseFloat(getComputedStyle(el).fillOpacity) * opacity(el, svg)});
    }
    return layers;
  };
  const out = [];
  document.querySelectorAll('figure.gpucnn-chart svg').forEach((svg, n) => {
    reveal(svg);
    svg.scrollIntoView({block: 'center'});
    const r = svg.getBoundingClientRect();
    const vb = svg.viewBox && svg.viewBox.baseVal;
    const scale = vb && vb.width ? r.width / vb.width : 1;
    const texts = [];
    svg.querySelectorAll('text, tspan').forEach((t) => {
      const own = [...t.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join('').trim();
      if (!own) return;
      const s = getComputedStyle(t);
      texts.push({text: own, fill: s.fill, fillOpacity: parseFloat(s.fillOpacity), opacity: opacity(t, svg),
                  px: parseFloat(s.fontSize) * scale, weight: parseInt(s.fontWeight, 10) || 400,
                  under: under(svg, t)});
    });
    const title = svg.querySelector('title');
    out.push({kind: 'svg', name: (title && title.textContent) || `chart ${n + 1}`, width: r.width, height: r.height,
              texts, background: background(svg.parentElement)});
  });
  document.querySelectorAll(notebookSel).forEach((img, n) => {
    reveal(img);
    const r = img.getBoundingClientRect();
    const item = {kind: 'img', name: img.alt || `notebook image ${n + 1}`, width: r.width, height: r.height,
                  background: background(img.parentElement), texts: []};
    if (img.complete && img.naturalWidth) {
      // The image's own ink: the commonest near-grey opaque colour (axes and text in a
      // matplotlib PNG), and whether its background is transparent (then the page shows through).
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let clear = 0; const counts = new Map();
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] < 20) { clear++; continue; }
        if (d[i + 3] < 200) continue;
        const mx = Math.max(d[i], d[i + 1], d[i + 2]), mn = Math.min(d[i], d[i + 1], d[i + 2]);
        if (mx - mn > 40) continue;
        const key = `${d[i] >> 4},${d[i + 1] >> 4},${d[i + 2] >> 4}`;
        counts.set(key, (counts.get(key) || 0) + 1);
      }
      item.transparent = clear / (d.length / 4);
      const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
      if (top) item.ink = top[0].split(',').map((v) => parseInt(v, 10) * 16 + 8);
    }
    out.push(item);
  });
  return out;
}
"""


# Runs in the page: for each chart, the box of every text and of every label placed on a plot area
# (``data-label-of``, set by gpucnn.render.figure_html), the plot areas' boxes, and points sampled
# along each data series (``data-source`` groups: lines every 2 px, and markers), in page pixels.
_LAYOUT_JS = r"""
() => {
  const reveal = (el) => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (a.tagName === 'DETAILS') a.open = true;
      if (a.classList.contains('tabbed-block')) {
        const i = [...a.parentElement.children].indexOf(a);
        const inputs = a.closest('.tabbed-set').querySelectorAll(':scope > input');
        if (inputs[i]) inputs[i].checked = true;
      }
    }
  };
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
  const out = [];
  document.querySelectorAll('figure.gpucnn-chart svg').forEach((svg, n) => {
    reveal(svg);
    const frame = box(svg);
    if (frame.x1 - frame.x0 < 1) return;
    const title = svg.querySelector('title');
    const areas = {};
    svg.querySelectorAll('[data-plot-area]').forEach((g) => { areas[g.dataset.plotArea] = box(g); });
    const texts = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim())
      .map((t) => ({text: t.textContent.trim(), box: box(t)}));
    const labels = [...svg.querySelectorAll('[data-label-of]')].map((g) => {
      const t = g.querySelector('text');
      return t && t.textContent.trim() ? {text: g.textContent.trim(), area: g.dataset.labelOf, box: box(g)} : null;
    }).filter(Boolean);
    const points = [];
    svg.querySelectorAll('g[data-source]').forEach((g) => {
      g.querySelectorAll('path').forEach((path) => {
        const m = path.getScreenCTM();
        const len = path.getTotalLength();
        for (let l = 0; l <= len; l += 2) {
          const p = new DOMPoint(path.getPointAtLength(l).x, path.getPointAtLength(l).y).matrixTransform(m);
          points.push([p.x, p.y]);
        }
      });
      g.querySelectorAll('use').forEach((u) => { const b = box(u); points.push([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2]); });
    });
    out.push({name: (title && title.textContent) || `chart ${n + 1}`, frame, areas, texts, labels, points});
  });
  return out;
}
"""


@dataclass
class PageReport:
    """What one load of one page, in one colour mode, showed."""

    page: str
    mode: str
    scheme: str = ""
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    tabs: list[str] = field(default_factory=list)  # problems
    tab_sets: int = 0
    copy: list[str] = field(default_factory=list)  # problems
    copied: list[str] = field(default_factory=list)  # texts copied
    toggle: list[str] = field(default_factory=list)  # problems
    layout: list[dict] = field(default_factory=list)  # per chart: where its text and labels sit

    def where(self) -> str:
        return f"{self.page or '(home)'} [{self.mode}]"


def _check_tabs(page, report: PageReport) -> None:
    sets = page.locator(".tabbed-set")
    report.tab_sets = sets.count()
    for i in range(report.tab_sets):
        tabset = sets.nth(i)
        labels = tabset.locator(":scope > .tabbed-labels > label")
        blocks = tabset.locator(":scope > .tabbed-content > .tabbed-block")
        if labels.count() < 2 or blocks.count() < 2:
            report.tabs.append(f"tab set {i + 1} has {labels.count()} labels and {blocks.count()} blocks")
            continue
        tabset.scroll_into_view_if_needed()
        labels.nth(0).click()
        first_visible = blocks.nth(0).is_visible() and not blocks.nth(1).is_visible()
        labels.nth(1).click()
        with contextlib.suppress(Exception):
            blocks.nth(1).wait_for(state="visible", timeout=2000)
        second_visible = blocks.nth(1).is_visible() and not blocks.nth(0).is_visible()
        labels.nth(0).click()
        if not (first_visible and second_visible):
            report.tabs.append(f"tab set {i + 1} ({labels.nth(0).inner_text()!r}/{labels.nth(1).inner_text()!r}) "
                               f"does not switch: first shown alone {first_visible}, second shown alone "
                               f"{second_visible}")


def _check_copy(page, report: PageReport) -> None:
    buttons = page.locator(COPY_BUTTONS)
    if buttons.count() == 0:
        return
    # Prefer a snippet (a tabbed source block), else the page's first code block.
    snippet = page.locator(f".tabbed-set :is({COPY_BUTTONS})")
    button = snippet.first if snippet.count() else buttons.first
    target = button.get_attribute("data-clipboard-target")
    code = page.locator(target) if target else button.locator("xpath=ancestor::pre[1]").locator("code")
    expected = code.inner_text()
    page.evaluate("navigator.clipboard.writeText('')")
    button.scroll_into_view_if_needed()
    button.hover()
    button.click()
    with contextlib.suppress(Exception):
        page.wait_for_function("async () => (await navigator.clipboard.readText()).length > 0", timeout=3000)
    copied = page.evaluate("navigator.clipboard.readText()")
    report.copied.append(copied)
    if copied.strip() != expected.strip():
        report.copy.append(f"copy button copied {copied[:80]!r}..., the code block shows {expected[:80]!r}...")


def _check_toggle(page, report: PageReport) -> None:
    scheme = lambda: page.evaluate("document.body.getAttribute('data-md-color-scheme')")  # noqa: E731
    bg = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
    toggle = page.locator("form[data-md-component=palette] label:visible")
    start, start_bg = scheme(), bg()
    seen = [start]
    for _ in range(2):
        if toggle.count() != 1:
            report.toggle.append(f"{toggle.count()} visible palette toggles")
            return
        toggle.first.click()
        with contextlib.suppress(Exception):
            page.wait_for_function("s => document.body.getAttribute('data-md-color-scheme') !== s", arg=seen[-1],
                                   timeout=2000)
        seen.append(scheme())
    if seen != ["default", "slate", "default"]:
        report.toggle.append(f"palette schemes after two clicks: {seen}")
    page.locator("form[data-md-component=palette] label:visible").first.click()
    dark_bg = bg()
    page.locator("form[data-md-component=palette] label:visible").first.click()
    if dark_bg == start_bg:
        report.toggle.append(f"the page background stays {start_bg} in dark mode")


def _load(context, url: str, report: PageReport, interact: bool) -> PageReport:
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and report.console_errors.append(m.text))
    page.on("pageerror", lambda e: report.console_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: HOST in r.url and report.failed_requests.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and report.failed_requests.append(f"{r.url}: HTTP {r.status}"))
    context.current_report = report
    try:
        page.goto(url, wait_until="networkidle")
        report.scheme = page.evaluate("document.body.getAttribute('data-md-color-scheme')")
        report.charts = page.evaluate(_CHARTS_JS, NOTEBOOK_IMAGES)
        if interact:  # geometry is the same in both modes: measured once, in the light pass
            report.layout = page.evaluate(_LAYOUT_JS)
        if interact:
            _check_tabs(page, report)
            _check_copy(page, report)
            _check_toggle(page, report)
    finally:
        page.close()
    return report


def _new_context(browser, base: str, mode: str):
    context = browser.new_context(color_scheme=mode, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.split("/", 3)[0] + "//" +
                              base.split("/", 3)[2])
    context.current_report = None

    def on_request(request) -> None:  # every request, workers' included, as the browser sends it
        host = urlsplit(request.url).hostname
        if request.url.startswith(("data:", "blob:", "about:")) or host == HOST:
            return
        if context.current_report is not None:
            context.current_report.foreign_requests.append(request.url)

    context.on("request", on_request)
    # Nothing may leave the machine anyway: answer any other host at once instead of waiting on DNS.
    context.route(re.compile(r"^(?!(http://127\.0\.0\.1[:/]|data:|blob:)).*"), lambda route: route.abort())
    return context


@pytest.fixture(scope="session")
def reports(browser, site_url: str, built_site: Path) -> list[PageReport]:
    """Every page, loaded once in light mode (with its interactions) and once in dark mode."""
    pages = site_pages(built_site)
    assert pages, f"no HTML pages found in {built_site}"
    out = []
    for mode in ("light", "dark"):
        context = _new_context(browser, site_url, mode)
        try:
            for rel in pages:
                out.append(_load(context, site_url + rel, PageReport(rel, mode), interact=mode == "light"))
        finally:
            context.close()
    return out


def _failures(reports: list[PageReport], attr: str) -> str:
    return "\n".join(f"{r.where()}: {item}" for r in reports for item in getattr(r, attr))


# ---------------------------------------------------------------- the checks


def test_pages_are_found_by_walking_the_site(built_site: Path) -> None:
    pages = site_pages(built_site)
    assert "" in pages and "measuring/" in pages
    # The sitemap and the walk agree: every page the sitemap lists is served.
    prefix = site_prefix(built_site)
    for el in ET.parse(built_site / "sitemap.xml").iter():
        if el.tag.endswith("loc"):
            rel = urlsplit(el.text or "").path.removeprefix(prefix)
            assert rel in pages, f"sitemap lists {el.text}, which is not a page of the built site"


def test_every_page_loads_without_console_errors(reports: list[PageReport]) -> None:
    assert not _failures(reports, "console_errors"), "console errors:\n" + _failures(reports, "console_errors")
    assert not _failures(reports, "failed_requests"), "failed requests:\n" + _failures(reports, "failed_requests")


def test_no_request_leaves_the_site(reports: list[PageReport]) -> None:
    assert not _failures(reports, "foreign_requests"), (
        "requests to other hosts (CDN, web fonts, ...):\n" + _failures(reports, "foreign_requests"))


def test_pages_load_in_the_colour_mode_asked_for(reports: list[PageReport]) -> None:
    wrong = [f"{r.where()}: scheme {r.scheme!r}" for r in reports
             if r.scheme != {"light": "default", "dark": "slate"}[r.mode]]
    assert not wrong, "\n".join(wrong)


def test_every_chart_has_a_size_in_both_modes(reports: list[PageReport]) -> None:
    charts = [(r, c) for r in reports for c in r.charts]
    assert any(c["kind"] == "svg" for _, c in charts), "no gpucnn chart found on any page"
    flat = [f"{r.where()}: {c['name']!r} is {c['width']:.0f}x{c['height']:.0f} px"
            for r, c in charts if c["width"] < 1 or c["height"] < 1]
    assert not flat, "charts with no size:\n" + "\n".join(flat)


def _chart_contrast_problems(report: PageReport, chart: dict) -> Iterator[str]:
    layers = [parse_rgba(c) for c in reversed(chart["background"])]
    bg: tuple[float, ...] = (255.0, 255.0, 255.0)  # the canvas, if nothing on the page is opaque
    for layer in layers:
        bg = over(layer, bg, layer[3])
    if chart["kind"] == "img":
        # An opaque PNG carries its own background; a transparent one shows the page through.
        if chart.get("ink") and chart.get("transparent", 0) > 0.3:
            ratio = contrast(chart["ink"], bg)
            if ratio < 4.5:
                yield (f"{report.where()}: {chart['name']!r}: its ink {chart['ink']} on the page's "
                       f"{tuple(round(v) for v in bg)} has contrast {ratio:.2f} (< 4.5)")
        return
    if not chart["texts"]:
        yield f"{report.where()}: {chart['name']!r} has no <text>: a screen reader and search cannot read it"
    for t in chart["texts"]:
        behind = bg  # the page, then the chart's own shapes under the text (a bar, a band, a legend box)
        for layer in reversed(t.get("under", [])):
            colour = parse_rgba(layer["fill"])
            behind = over(colour, behind, colour[3] * layer["opacity"])
        fill = parse_rgba(t["fill"])
        ink = over(fill, behind, fill[3] * t["fillOpacity"] * t["opacity"])
        ratio = contrast(ink, behind)
        large = t["px"] >= 24 or (t["px"] >= 18.66 and t["weight"] >= 700)
        need = 3.0 if large else 4.5
        if ratio < need:
            yield (f"{report.where()}: {chart['name']!r}: text {t['text']!r} in {t['fill']} on "
                   f"{tuple(round(v) for v in behind)} has contrast {ratio:.2f} (< {need})")


def test_chart_text_is_legible_in_both_modes(reports: list[PageReport]) -> None:
    problems = [p for r in reports for c in r.charts for p in _chart_contrast_problems(r, c)]
    assert not problems, "illegible chart text:\n" + "\n".join(problems)


MIN_CHART_TEXT_PX = 10  # at 1x, as the page lays the chart out in its column


def test_chart_text_is_at_least_10_px(reports: list[PageReport]) -> None:
    small = sorted({f"{r.where()}: {c['name']!r}: {t['text']!r} at {t['px']:.1f} px" for r in reports
                    for c in r.charts for t in c["texts"] if t["text"].strip() and t["px"] < MIN_CHART_TEXT_PX - 0.05})
    assert not small, f"chart text under {MIN_CHART_TEXT_PX} px:\n" + "\n".join(small[:40])


def _inside(inner: dict, outer: dict, tol: float = 1.0) -> bool:
    return (inner["x0"] >= outer["x0"] - tol and inner["y0"] >= outer["y0"] - tol
            and inner["x1"] <= outer["x1"] + tol and inner["y1"] <= outer["y1"] + tol)


def _overlap(a: dict, b: dict, tol: float = 1.0) -> bool:
    return (min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > tol
            and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > tol)


def _layout_problems(report: PageReport, chart: dict) -> Iterator[str]:
    """Text outside the chart, a label outside its plot area, on a data series, or on other text."""
    where = f"{report.where()}: {chart['name']!r}"
    for t in chart["texts"]:
        if not _inside(t["box"], chart["frame"]):
            yield f"{where}: text {t['text']!r} runs outside the chart"
    for label in chart["labels"]:
        b, area = label["box"], chart["areas"].get(label["area"])
        if area is not None and not _inside(b, area):
            yield f"{where}: label {label['text']!r} runs outside its plot area"
        hits = sum(1 for x, y in chart["points"] if b["x0"] + 1 < x < b["x1"] - 1 and b["y0"] + 1 < y < b["y1"] - 1)
        if hits:
            yield f"{where}: label {label['text']!r} sits on a data series ({hits} sampled points under it)"
        for t in chart["texts"]:
            if t["text"] != label["text"] and _overlap(b, t["box"]):
                yield f"{where}: label {label['text']!r} overlaps the text {t['text']!r}"


def test_chart_labels_stay_inside_the_plot_area_and_off_the_data(reports: list[PageReport]) -> None:
    """Issue 11: every chart text inside the chart; peak, crossover and cache labels inside their
    plot area, off the lines and markers, and off other text."""
    laid_out = [(r, c) for r in reports for c in r.layout]
    assert any(c["labels"] for _, c in laid_out), "no chart has a label on its plot area: the check proves nothing"
    problems = [p for r, c in laid_out for p in _layout_problems(r, c)]
    assert not problems, "chart labels out of place:\n" + "\n".join(problems)


def test_dark_mode_toggle_switches_the_palette(reports: list[PageReport]) -> None:
    assert not _failures(reports, "toggle"), _failures(reports, "toggle")


def test_source_and_result_tabs_switch(reports: list[PageReport]) -> None:
    assert any(r.tab_sets for r in reports), "no source/result tabs on any page"
    assert not _failures(reports, "tabs"), _failures(reports, "tabs")


def test_copy_button_copies_the_snippet(reports: list[PageReport]) -> None:
    assert not _failures(reports, "copy"), _failures(reports, "copy")
    copied = [c.strip() for r in reports for c in r.copied]
    assert copied, "no page has a code block with a copy button"
    snippets = {p.read_text().strip() for p in (ROOT / "snippets").glob("*.py")}
    assert snippets & set(copied), "no copy button copied a snippet file exactly"


@pytest.mark.parametrize("word", ["bandwidth", "convolution"])
def test_search_finds(word: str, browser, site_url: str) -> None:
    context = _new_context(browser, site_url, "light")
    try:
        page = context.new_page()
        page.goto(site_url, wait_until="networkidle")
        query = page.locator("input.md-search__input")
        query.click()
        query.press_sequentially(word, delay=20)  # Material searches on key events
        results = page.locator(".md-search-result__item")
        results.first.wait_for(state="attached", timeout=15000)
        texts = results.all_inner_texts()
        assert any(word in t.lower() for t in texts), f"search results for {word!r} do not mention it: {texts}"
    finally:
        context.close()


# ---------------------------------------------------------------- the checks can fail


def _transparent_png(ink: str) -> str:
    """A small matplotlib chart with a transparent background, as a data: URI."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [1, 4, 9], color=ink)
    ax.set_xlabel("size (elements)", color=ink)
    ax.tick_params(colors=ink)
    for spine in ax.spines.values():
        spine.set_color(ink)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True, dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_checks_catch_a_bad_page(browser, tmp_path: Path) -> None:
    """A page that breaks every rule: each problem is reported, naming what is wrong."""
    (tmp_path / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<script src="https://cdn.example.org/mathjax.js"></script></head>
<body style="background: rgb(30, 33, 41); color: #eee">
<figure class="gpucnn-chart"><svg viewBox="0 0 100 20" width="150"><title>Black on dark</title>
<text x="2" y="15" style="font-size: 10px">1.5 ms</text></svg></figure>
<figure class="gpucnn-chart"><svg viewBox="0 0 100 20" style="display: none; color: #eee"><title>Hidden</title>
<text x="2" y="15" fill="currentColor">hidden</text></svg></figure>
<figure class="gpucnn-chart"><svg viewBox="0 0 100 20" width="300" style="color: #eee"><title>Light ink</title>
<text x="2" y="15" fill="currentColor" style="font-size: 10px">fine</text>
<path d="M 50 2 L 98 2 L 98 18 L 50 18 z" style="fill: #ffffff; opacity: 0.8"/>
<text x="52" y="15" fill="currentColor" style="font-size: 10px">in a white box</text></svg></figure>
<div class="jp-RenderedImage"><img alt="black png" src="{_transparent_png('black')}"></div>
<div class="jp-RenderedImage"><img alt="white png" src="{_transparent_png('white')}"></div>
<script>console.error("broken on purpose")</script></body></html>""")
    with serve(tmp_path) as url:
        context = _new_context(browser, url, "dark")
        try:
            report = _load(context, url, PageReport("", "dark"), interact=False)
        finally:
            context.close()
    assert report.foreign_requests == ["https://cdn.example.org/mathjax.js"]
    assert any("broken on purpose" in e for e in report.console_errors)
    sizes = {c["name"]: (c["width"], c["height"]) for c in report.charts}
    assert sizes["Hidden"] == (0, 0) and sizes["Black on dark"][0] > 0
    problems = [p for c in report.charts for p in _chart_contrast_problems(report, c)]
    assert len(problems) == 3, problems
    assert "Black on dark" in problems[0] and "'1.5 ms'" in problems[0] and "(< 4.5)" in problems[0]
    assert "Light ink" in problems[1] and "'in a white box'" in problems[1]
    assert "black png" in problems[2]


# ---------------------------------------------------------------- records are untrusted (issue 12)

# One payload per string field a record carries, each a different attack, so a
# leak names its field. Validation refuses all of them (test_record_checks); the
# pages must be safe even if one got past it, so the Record here is built directly.
_SCRIPT = "<script>alert(1)</script>"
HOSTILE = {
    ("hardware", "cpu", "model"): f"Xeon {_SCRIPT}\n| a | b |",
    ("hardware", "accelerator", "name"): "NVIDIA Z9000 <img src=x onerror=alert(2)> [click](javascript:alert(3))",
    ("hardware", "accelerator", "driver"): "[x](javascript:alert(4)) `code`",
    ("hardware", "accelerator", "peaks", "source"): "datasheet <script>alert(5)</script>",
    ("hardware", "cpu", "peak_note"): "note <iframe src=javascript:alert(6)>",
    ("hardware", "os"): "Linux <b onmouseover=alert(7)>x</b>",
    ("hardware", "torch"): "2.11.0 $x$ $y <script>alert(8)</script>",
    ("torch",): "2.11.0 $x$ $y <script>alert(8)</script>",
    ("commit",): "c1ae338\n<script>alert(9)</script> | x",
    ("profile",): "full | <svg onload=alert(10)>",
}
HOSTILE_FILE = "z9000-\"'><svg onload=alert(11)>.json"
# Strings inside a result's data: op, kernel and layer names (real kernel names hold < and >, so
# validation cannot refuse markup there; only escaping keeps them text) and measurement names.
# No newline: reading a result (Result.from_dict) refuses any non-printable character in its data.
HOSTILE_DATA = {"op": " <script>alert(12)</script> | x | *y*{: onclick=alert(15) }",
                "layer": " <img src=x onerror=alert(13)>",
                "name": " [m](javascript:alert(14)) | y"}
_BENIGN_FILE = "z9000-2026-11-26.json"
# The page builders that print record strings, as the pages call them.
RECORD_PAGES = ("results", "summary", "bandwidth", "cnn", "ann")


def _set(doc: dict, where: tuple[str, ...], value: str) -> None:
    for key in where[:-1]:
        doc = doc[key]
    doc[where[-1]] = value


def _append_to_data_strings(value: object) -> None:
    """Append HOSTILE_DATA's payload to every data string under its key (op, layer, name)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in HOSTILE_DATA and isinstance(item, str):
                value[key] = item + HOSTILE_DATA[key]
            else:
                _append_to_data_strings(item)
    elif isinstance(value, list):
        for item in value:
            _append_to_data_strings(item)


def _z9000_record(hostile: bool):
    """The real H200 record as an unknown "Z9000" (never a live model), with or without the payloads."""
    from gpucnn.archive import Record
    from gpucnn.hardware import HardwareReport
    from gpucnn.results import Result

    doc = json.loads((ROOT / "results" / "nvidia-h200-2026-11-26.json").read_text())
    doc = copy.deepcopy(doc)
    for hw in [doc["hardware"], *(r["hardware"] for r in doc["results"])]:
        hw["accelerator"]["name"] = "NVIDIA Z9000"
    if hostile:
        for where, value in HOSTILE.items():
            _set(doc, where, value)
            for r in doc["results"]:  # each result carries its own hardware, torch and commit
                if where[0] in ("hardware", "torch", "commit"):
                    _set(r, where, value)
        for r in doc["results"]:
            _append_to_data_strings(r["data"])
    results = tuple(Result.from_dict(r) for r in doc["results"])
    return Record(HOSTILE_FILE if hostile else _BENIGN_FILE, doc, HardwareReport.from_dict(doc["hardware"]), results)


def _pages_html(record) -> str:
    """Every zero-argument builder of RECORD_PAGES with ``record`` as the whole archive, through the
    site's Markdown extensions (as markdown-exec renders a fence's output), in one HTML page."""
    import markdown
    from mkdocs.config import load_config

    import gpucnn.sources as sources
    from gpucnn.render import section_sources

    config = load_config(str(ROOT / "mkdocs.yml"))
    parts = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "_archive", lambda: (record,))
        for name in RECORD_PAGES:
            module = importlib.import_module(f"gpucnn.pages.{name}")
            for fname, fn in inspect.getmembers(module, inspect.isfunction):
                params = inspect.signature(fn).parameters.values()
                if fn.__module__ != module.__name__ or fname.startswith("_") or any(
                        p.default is inspect.Parameter.empty for p in params):
                    continue
                value = fn()
                if isinstance(value, str):
                    # and the sources line its section ends with, which names the record (commit included)
                    value += section_sources()
                    md = markdown.Markdown(extensions=config["markdown_extensions"],
                                           extension_configs=config["mdx_configs"])
                    parts.append(f'<section data-builder="{name}.{fname}">{md.convert(value)}</section>')
    return ('<!doctype html><html><head><meta charset="utf-8"><title>records</title></head><body>'
            + "\n".join(parts) + "</body></html>")


# Runs in the page: what a hostile string could have turned into, and every table's shape.
_INJECTION_JS = r"""
() => {
  const handlers = [];
  for (const el of document.querySelectorAll('*'))
    for (const a of el.attributes)
      if (a.name.toLowerCase().startsWith('on')) handlers.push(`<${el.tagName.toLowerCase()} ${a.name}>`);
  const links = [...document.querySelectorAll('a[href], [*|href]')]
    .map((a) => (a.getAttribute('href') || a.getAttribute('xlink:href') || '').trim())
    .filter((h) => /^javascript:/i.test(h));
  const tables = [...document.querySelectorAll('table')].map((t) => ({
    builder: t.closest('section').dataset.builder,
    rows: [...t.rows].map((r) => r.cells.length),
  }));
  return {scripts: document.querySelectorAll('script').length,
          elements: [...document.querySelectorAll('img, iframe, b')].map((e) => e.outerHTML.slice(0, 80)),
          handlers, links, tables, text: document.body.innerText};
}
"""


def _open(browser, page_html: str, folder: Path) -> tuple[dict, list[str]]:
    """Load the page in Chromium; return what it holds and every dialog that opened."""
    folder.mkdir()
    (folder / "index.html").write_text(page_html, encoding="utf-8")
    dialogs: list[str] = []
    with serve(folder) as url:
        context = _new_context(browser, url, "light")
        try:
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url, wait_until="networkidle")
            page.wait_for_timeout(300)  # an onload/onerror handler would have fired by now
            page.mouse.move(5, 5)
            found = page.evaluate(_INJECTION_JS)
        finally:
            context.close()
    return found, dialogs


def test_hostile_record_strings_stay_text_in_chromium(browser, tmp_path: Path) -> None:
    """Issue 12: with markup, newlines, pipes, javascript: links and $ in every string of a record,
    no script runs, nothing becomes an element, and every table has the shape a benign record gives."""
    benign, _ = _open(browser, _pages_html(_z9000_record(hostile=False)), tmp_path / "benign")
    hostile, dialogs = _open(browser, _pages_html(_z9000_record(hostile=True)), tmp_path / "hostile")
    assert not dialogs, f"a record string ran script: dialogs {dialogs}"
    assert hostile["scripts"] == 0, f"{hostile['scripts']} <script> elements came from record strings"
    assert not hostile["handlers"], f"event handlers came from record strings: {hostile['handlers']}"
    assert not hostile["links"], f"javascript: links came from record strings: {hostile['links']}"
    assert not hostile["elements"], f"elements came from record strings: {hostile['elements']}"
    assert benign["tables"], "the builders printed no table: the test would prove nothing"
    assert hostile["tables"] == benign["tables"], (
        "a record string changed a table's shape:\n" + "\n".join(
            f"{b['builder']}: rows {b['rows']} -> {h['builder']}: rows {h['rows']}"
            for b, h in zip(benign["tables"], hostile["tables"], strict=False) if b != h)
        + f"\n({len(benign['tables'])} tables with a benign record, {len(hostile['tables'])} with a hostile one)")
    # The payloads are shown, as text: escaped, not dropped.
    for shown in (_SCRIPT, "alert(9)", "alert(12)"):
        assert shown in hostile["text"], f"record string {shown!r} vanished from the page"


def test_the_layout_check_catches_misplaced_labels(browser, tmp_path: Path) -> None:
    """A chart with a label past its plot area, one on its line, and one in a clear corner: only the
    first two are reported."""
    from gpucnn import render

    fig, ax = render.new_figure()
    ax.plot([1, 2, 3], [1, 2, 3], gid=f"{render._SERIES_GID}0")
    ax.annotate("past the frame", xy=(1.0, 0.5), xycoords="axes fraction", ha="left")
    ax.annotate("on the line", xy=(2, 2), ha="center", va="center")
    ax.annotate("in the clear", xy=(0.02, 0.95), xycoords="axes fraction", va="top")
    (tmp_path / "index.html").write_text("<!doctype html><html><body style='width: 800px'>" + render.figure_html(
        fig, title="Misplaced", desc="labels", caption_text="c", sources=["live"]) + "</body></html>")
    with serve(tmp_path) as url:
        context = _new_context(browser, url, "light")
        try:
            page = context.new_page()
            page.goto(url, wait_until="networkidle")
            layout = page.evaluate(_LAYOUT_JS)
        finally:
            context.close()
    report = PageReport("", "light", layout=layout)
    problems = [p for c in layout for p in _layout_problems(report, c)]
    assert len(problems) == 2, problems
    assert "'past the frame' runs outside its plot area" in problems[0]
    assert "'on the line' sits on a data series" in problems[1]
