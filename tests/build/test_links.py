"""The built site has no broken internal links: every <a href> target file and #anchor exists."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.site


class _Page(HTMLParser):
    """The hrefs of a page's <a> elements and every id (and <a name>) it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a":
            if a.get("name"):
                self.ids.add(a["name"])
            if a.get("href") is not None:
                self.hrefs.append(a["href"])


def _prefix(site: Path) -> str:
    sitemap = site / "sitemap.xml"
    locs = [el.text or "" for el in ET.parse(sitemap).iter() if el.tag.endswith("loc")] if sitemap.exists() else []
    return urlsplit(locs[0]).path if locs else "/"


def broken_links(site: Path) -> list[str]:
    """Every internal link of the site whose file or anchor is missing, as 'page: href (why)'."""
    prefix = _prefix(site)
    parsed: dict[Path, _Page] = {}

    def page(path: Path) -> _Page:
        if path not in parsed:
            p = _Page()
            p.feed(path.read_text(errors="replace"))
            parsed[path] = p
        return parsed[path]

    broken = []
    for html in sorted(site.rglob("*.html")):
        rel = html.relative_to(site).as_posix()
        for href in page(html).hrefs:
            url = urlsplit(href)
            if url.scheme or url.netloc or href.startswith(("mailto:", "javascript:")):
                continue  # external: not this test's business
            target_path = unquote(url.path)
            if not target_path:
                target = html
            else:
                if target_path.startswith("/"):  # absolute: under the published prefix (404.html uses these)
                    if not target_path.startswith(prefix):
                        broken.append(f"{rel}: {href} (outside the site's path {prefix})")
                        continue
                    joined = target_path[len(prefix):]
                else:
                    joined = posixpath.join(posixpath.dirname(rel), target_path)
                joined = posixpath.normpath(joined) if joined else "."
                if joined.startswith(".."):
                    broken.append(f"{rel}: {href} (leaves the site)")
                    continue
                target = site / joined
                if target.is_dir():
                    target = target / "index.html"
                if not target.is_file():
                    broken.append(f"{rel}: {href} (no file {target.relative_to(site)})")
                    continue
            if url.fragment and target.suffix == ".html":
                anchor = unquote(url.fragment)
                if anchor not in page(target).ids:
                    broken.append(f"{rel}: {href} (no id {anchor!r} in {target.relative_to(site)})")
    return broken


def test_built_site_has_no_broken_internal_links(built_site: Path) -> None:
    broken = broken_links(built_site)
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<h2 id="top">T</h2><a href="a/">ok</a> <a href="#top">ok</a> <a href="a/#here">ok</a>'
        '<a href="missing/">bad</a> <a href="a/#nowhere">bad</a> <a href="https://example.org/x">external</a>')
    (tmp_path / "a" / "index.html").write_text('<p id="here">x</p><a href="../index.html#top">ok</a>'
                                               '<a href="../../up.html">bad</a>')
    broken = broken_links(tmp_path)
    assert broken == [
        "a/index.html: ../../up.html (leaves the site)",
        "index.html: missing/ (no file missing)",
        "index.html: a/#nowhere (no id 'nowhere' in a/index.html)",
    ]


def test_links_in_printed_markdown_become_page_urls() -> None:
    # markdown-exec renders what a block prints without MkDocs' link rewriting; the hook does it.
    from types import SimpleNamespace

    from mkdocs.structure.files import File, Files

    from gpucnn.build.html import rewrite_printed_links

    files = Files([File(name, "docs", "site", use_directory_urls=True) for name in ("index.md", "gpu.md", "reproduce.md")])
    page = SimpleNamespace(file=files.get_file_from_path("gpu.md"))
    html = ('<a href="reproduce.md">R</a> <a href="reproduce.md#steps">S</a> <a href="missing.md">M</a> '
            '<a href="https://example.org/x.md">E</a> <a href="#top">T</a>')
    assert rewrite_printed_links(html, page, files) == (
        '<a href="../reproduce/">R</a> <a href="../reproduce/#steps">S</a> <a href="missing.md">M</a> '
        '<a href="https://example.org/x.md">E</a> <a href="#top">T</a>')
    home = SimpleNamespace(file=files.get_file_from_path("index.md"))
    assert rewrite_printed_links('<a href="gpu.md">G</a>', home, files) == '<a href="gpu/">G</a>'
