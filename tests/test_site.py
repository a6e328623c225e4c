"""The strict build is a test: every page builds, has its figures, and no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, build_site

pytestmark = pytest.mark.site

EXEC_FENCE = re.compile(r'^```python exec="on"', re.M)


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("index.html") if "assets" not in p.parts)


def test_every_page_is_free_of_tracebacks(built_site: Path) -> None:
    for page in pages(built_site):
        text = page.read_text()
        assert "Traceback" not in text, f"{page} shows a traceback"


def test_home_shows_the_hardware_report(built_site: Path) -> None:
    html = (built_site / "index.html").read_text()
    assert "This build machine" in html
    assert "Logical cores" in html


def test_measuring_page_has_table_chart_and_snippet_output(built_site: Path) -> None:
    html = (built_site / "measuring" / "index.html").read_text()
    assert "Article&#39;s method, here" in html or "Article's method, here" in html
    assert "<svg" in html and "<title" in html
    assert "article's way" in html  # the snippet's printed output


def test_each_executed_block_prints_something(built_site: Path) -> None:
    # Count executed fences in the Markdown, and check that none rendered empty:
    # markdown-exec leaves nothing behind for a block that prints nothing.
    for md in sorted((ROOT / "docs").glob("*.md")):
        fences = len(EXEC_FENCE.findall(md.read_text()))
        if not fences:
            continue
        html_path = built_site / ("index.html" if md.stem == "index" else f"{md.stem}/index.html")
        html = html_path.read_text()
        assert "<pre" in html or "<table" in html or "<svg" in html or "<p" in html, md


def test_results_json_is_written(built_site: Path) -> None:
    doc = json.loads((built_site / "results.json").read_text())
    assert doc["results"], "results.json has no experiments"
    assert all("measured_at" in r and "hardware" in r for r in doc["results"])


def test_a_raising_block_fails_the_strict_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text('# Broken\n\n```python exec="on"\nraise RuntimeError("snippet failed on purpose")\n```\n')
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: broken\nstrict: true\nplugins:\n  - markdown-exec\n"
                      "markdown_extensions:\n  - pymdownx.superfences\n")
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode != 0
    assert "snippet failed on purpose" in proc.stderr
