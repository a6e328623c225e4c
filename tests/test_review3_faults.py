"""Review B's fault paths and hostile records: each test feeds the fault and checks the escaped output or the
one-line message (the reproductions are the reviewer's)."""

from __future__ import annotations

import html as html_mod
import json
import re
from pathlib import Path

import pytest

from gpucnn import render, site_guard, sources
from gpucnn.archive import parse

ROOT = Path(__file__).resolve().parent.parent
H200 = ROOT / "results" / "nvidia-h200-2026-11-26.json"

# Markdown that attr_list, emphasis, links, headings and admonitions would read, in a record's free string.
PAYLOADS = [
    "ran out of memory *x*{: onclick=alert(document.domain) }",
    "aten::mm *x*{: onclick=alert(1) }",
    "_x_{: style=position:fixed;inset:0 }",
    "NVIDIA H999 *em* __u__ #h (x) https://evil.example/n @at",
    "[l](javascript:alert(5)) ![i](x.png) \\*esc\\* {{ 7*7 }}",
]

# What one_line must drop: C0/C1 controls, bidi overrides and isolates, zero-width characters, separators.
INVISIBLE = "\x00\x1b\x07\x9b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f"


@pytest.fixture(scope="module")
def markdown():
    """A converter with the site's own extension list and settings (mkdocs.yml)."""
    import markdown as md
    from mkdocs.config import load_config

    cfg = load_config(config_file=str(ROOT / "mkdocs.yml"))
    return lambda text: md.Markdown(extensions=cfg["markdown_extensions"],
                                    extension_configs=cfg["mdx_configs"]).convert(text)


def _no_markup(html: str) -> None:
    assert site_guard.scripts_in_html(html) == [], html
    assert not re.search(r"\sstyle\s*=\s*\"?[^\"]*position", html), html  # only the tables' own alignment
    assert not re.search(r"<(em|strong|a|img|h\d)\b", html), html


def _record_with_stopped(stopped: str):
    doc = json.loads(H200.read_text())
    for r in doc["results"]:
        if r["experiment"] == "mlp_batch_sweep" and r["params"].get("device") == "cuda":
            r["data"]["sweep"]["__sweep__"]["stopped"] = stopped
    return parse(json.dumps(doc), "hostile.json")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_sweeps_stopped_reason_from_a_record_makes_no_markup(markdown, payload: str) -> None:
    record = _record_with_stopped(payload)
    result = record.find("mlp_batch_sweep", device="cuda")
    note = render.source_sweep_notes([sources.Source("cuda", result, record)])
    html = markdown(note)
    _no_markup(html)
    # and it reads as written
    text = re.sub(r"<[^>]+>", "", html)
    assert sources.plain_text(payload) in html_mod.unescape(text)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_op_name_from_a_record_in_a_markdown_table_makes_no_markup(markdown, payload: str) -> None:
    html = markdown(render.table(["Op", "Calls"], [[render.code_cell(payload), "3"]]))
    _no_markup(html)
    assert html.count("<td") == 2  # a | in the name did not split the row


@pytest.mark.parametrize("payload", PAYLOADS)
def test_one_line_text_at_the_start_of_a_markdown_line_makes_no_markup(markdown, payload: str) -> None:
    for text in (payload, "# " + payload, "!!! note " + payload, "=== " + payload, "    " + payload):
        _no_markup(markdown(sources.one_line(text)))
        assert "<p>" in markdown(sources.one_line(text))  # a paragraph, not a heading, admonition or code


def test_a_caption_keeps_a_records_blank_line_from_ending_its_html_block(markdown) -> None:
    html = markdown(render.caption("stopped: out of memory\n\n*x*{: onclick=alert(1) }\x1b[31m\u202e"))
    _no_markup(html)
    assert "\x1b" not in html and "\u202e" not in html and html.count("<p") == 1


def test_one_line_drops_invisible_characters_and_caps_the_length() -> None:
    text = sources.one_line(f"a{INVISIBLE}b\nc\td\u2028e\u2029f\x85g")
    assert text == "ab c d e f g"
    long = sources.one_line("L" * 3000 + " ZZEND")
    assert len(long) == sources.MAX_TEXT and long.endswith("\u2026") and "ZZEND" not in long
    assert sources.one_line("x" * sources.MAX_TEXT) == "x" * sources.MAX_TEXT


def test_chart_title_with_backslashes_from_a_record_is_kept_as_text() -> None:
    """A regex replacement template would crash on \\m and copy the <svg> tag for \\1 (review B, H3)."""
    svg = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10pt" height="5pt"><g/></svg>'
    title = r"$\mathbf{PWNED}^{2}$ \1 \g<0>"
    out = render._svg_with_a11y(svg, title, "desc \\n \\1\x1b")
    assert r"\mathbf{PWNED}^{2}$ \1 \g&lt;0&gt;</title>" in out
    assert "desc \\n \\1</desc>" in out and out.count("<svg") == 1


@pytest.mark.parametrize(("page", "found"), [
    ('<p><em onclick="alert(1)">x</em></p>', "event-handler attribute onclick"),
    ('<td><code>a <em\nONMOUSEOVER = "x">b</em></code></td>', "event-handler attribute onmouseover"),
    ('<a href=" JaVa&#x53;cript:alert(1)">x</a>', "javascript: URL"),
    ('<img src="java\tscript:alert(1)">', "javascript: URL"),
])
def test_site_guard_finds_script_in_attributes(page: str, found: str) -> None:
    assert any(found in f for f in site_guard.scripts_in_html(page)), site_guard.scripts_in_html(page)


def test_site_guard_leaves_ordinary_attributes_and_text_alone() -> None:
    page = ('<p data-source="archived:x.json" class="online">the text onclick=1 and javascript:x</p>'
            '<a href="../gpu/">GPU</a><script>document.onload = 1</script>')
    assert site_guard.scripts_in_html(page) == []
