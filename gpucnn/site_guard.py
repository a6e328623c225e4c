"""Checks on the built site: no request leaves it, and nothing from the build machine is in it.

The MkDocs hook runs ``check_site`` after every build and fails the build on
any finding, whichever plugin put the offending text there. The functions that
look at one text are pure, so that tests can feed them a page.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "SHOWS_STDERR_TAG",
    "build_machine_paths",
    "check_site",
    "leaked_paths",
    "notebook_stderr_cells",
    "offsite_urls_in_css",
    "offsite_urls_in_html",
    "offsite_urls_in_js",
    "scripts_in_html",
]

# Namespace names are identifiers that a browser never fetches (SVG, MathML,
# XHTML), so they may appear anywhere: in xmlns attributes, in SVG data URIs, in scripts.
XML_NAMESPACES = frozenset({
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/1998/Math/MathML",
    "http://www.w3.org/XML/1998/namespace",
    "http://www.w3.org/2000/xmlns/",
})

# An absolute URL, or a protocol-relative one: `//` then a dotted host name, and
# not right after a word character, `:` or `/` (so `a // b`, `// comment`, and the
# path of an absolute URL are not one). A URL ends at whitespace, a quote (also
# percent-encoded, as in SVG data URIs), a bracket or a backslash.
_URL = re.compile(
    r"(?:\b(?:https?|wss?|ftp):|(?<![\w:/]))//[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d+)?"
    r"(?:(?!%2[27])[^\s\"'<>()\[\]{}\\`|^])*",
    re.I,
)


def _urls(text: str, site_host: str | None) -> list[str]:
    """Every URL in ``text`` that points off ``site_host`` and is not a namespace name."""
    found = []
    for m in _URL.finditer(text.replace("\\/", "/").replace("\\u002f", "/").replace("\\u002F", "/")):
        url = m.group(0).rstrip(".,;:!?")
        if url in XML_NAMESPACES or url.rstrip("/") in XML_NAMESPACES:
            continue
        host = (urlsplit(url if "://" in url else "http:" + url).hostname or "").lower()
        if site_host and host == site_host.lower():
            continue
        found.append(url)
    return found


def _allowed_attribute(tag: str, name: str, attrs: dict[str, str | None]) -> bool:
    """A link the reader follows, the page's canonical/alternate name, a namespace or RDF name: never fetched."""
    if name == "xmlns" or name.startswith("xmlns:"):
        return True
    # RDF metadata in matplotlib's SVGs (`<dc:type rdf:resource="http://purl.org/...">`)
    # names a concept, as a namespace does; nothing fetches it.
    if name in ("rdf:resource", "rdf:about"):
        return True
    if tag == "a" and name == "href":
        return True
    rel = set((attrs.get("rel") or "").lower().split())
    return tag == "link" and name == "href" and bool(rel & {"canonical", "alternate"})


class _PageScanner(HTMLParser):
    def __init__(self, site_host: str | None) -> None:
        super().__init__(convert_charrefs=True)  # attribute values arrive HTML-unescaped
        self.site_host = site_host
        self.found: list[str] = []
        self._raw: str | None = None  # "script" or "style" while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        mapping = dict(attrs)
        for name, value in attrs:
            if value and not _allowed_attribute(tag, name, mapping):
                if name == "style":
                    self.found += offsite_urls_in_css(value, self.site_host)
                else:
                    self.found += _urls(value, self.site_host)
        # Material loads mermaid from unpkg.com when a page has a mermaid diagram.
        if "mermaid" in (mapping.get("class") or "").split():
            self.found.append("https://unpkg.com/mermaid (Material loads it for a mermaid diagram)")
        if tag in ("script", "style"):
            self._raw = tag

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw == "style":
            self.found += offsite_urls_in_css(data, self.site_host)
        elif self._raw == "script":
            # Inline scripts are the site's own, few and short: any URL in them counts.
            self.found += _urls(data, self.site_host)


def offsite_urls_in_html(html: str, site_host: str | None) -> list[str]:
    """URLs in a page that would make the browser fetch from a host other than ``site_host``.

    Looks in every attribute value (unescaped: mkdocs-jupyter 0.27 hides its
    MathJax URL in an escaped ``data-`` attribute), in inline scripts and
    styles. Allowed: ``<a href>``, ``<link rel="canonical|alternate">`` and XML
    namespaces. Text a reader reads (a URL in prose or a code block) is not a request.
    """
    scanner = _PageScanner(site_host)
    scanner.feed(html)
    scanner.close()
    return list(dict.fromkeys(scanner.found))


class _ScriptScanner(HTMLParser):
    """Attributes that run script: ``on...=`` event handlers and ``javascript:``/``vbscript:`` URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # attribute values arrive HTML-unescaped, as a browser reads them
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:  # names arrive lower-cased
            if name.startswith("on"):
                self.found.append(f"event-handler attribute {name} on <{tag}>")
            # A browser ignores whitespace and controls in a URL's scheme: "java\tscript:" runs too.
            scheme = "".join(c for c in (value or "") if c.isprintable() and not c.isspace()).lower()
            if scheme.startswith(("javascript:", "vbscript:")):
                self.found.append(f"{scheme.split(':')[0]}: URL in {name} on <{tag}>")

    handle_startendtag = handle_starttag


def scripts_in_html(html: str) -> list[str]:
    """Attributes of a page that would run script: the site's own templates use none, so any is a record's
    string that escaped its escaping (an ``attr_list`` ``{: onclick=...}``) or a plugin's doing."""
    scanner = _ScriptScanner()
    scanner.feed(html)
    scanner.close()
    return list(dict.fromkeys(scanner.found))


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_DATA_URL = re.compile(r"url\(\s*([\"']?)data:.*?\1\s*\)", re.S | re.I)


def offsite_urls_in_css(css: str, site_host: str | None) -> list[str]:
    """Off-site URLs in a stylesheet, leaving out comments and ``data:`` images.

    An SVG in a ``data:`` URL is an image, which browsers never let fetch
    anything; Material's icons carry Font Awesome's licence URL in one.
    """
    return _urls(_CSS_DATA_URL.sub("", _CSS_COMMENT.sub("", css)), site_host)


# A bundled script holds URLs that it never requests here: Material's bundle
# has its GitHub-facts API (only with repo_url), a ResizeObserver polyfill
# (only in browsers without one) and mermaid (flagged on the page that would
# load it), and lunr's licence links. So in a .js file, only a URL passed
# straight to a request is counted: import(), importScripts(), fetch(),
# new Worker / EventSource / WebSocket, XMLHttpRequest.open, or assigned to
# .src / .href. Inline scripts, which the site writes itself, get the strict rule.
_JS_REQUEST = re.compile(
    r"(?:\bimport\s*\(|\bimportScripts\s*\(|\bfetch\s*\(|\bnew\s+(?:Worker|SharedWorker|EventSource|WebSocket)\s*\("
    r"|\.open\s*\(\s*[\"'`]\w+[\"'`]\s*,|\.(?:src|href)\s*=|\bfrom)\s*[\"'`]([^\"'`]*)[\"'`]"
)


def offsite_urls_in_js(js: str, site_host: str | None) -> list[str]:
    """Off-site URLs that a script file passes straight to a request (see ``_JS_REQUEST``)."""
    js = js.replace("\\/", "/")
    return [url for m in _JS_REQUEST.finditer(js) for url in _urls(m.group(1), site_host)]


# A notebook cell tagged with this (jupytext: `# %% tags=["shows-stderr"]`) shows its stderr on purpose.
SHOWS_STDERR_TAG = "shows-stderr"
_CELL = re.compile(r'<div\b[^>]*\bclass="jp-Cell jp-(Code|Markdown)Cell\b([^"]*)"')
_STDERR = re.compile(r'data-mime-type="application/vnd\.jupyter\.stderr"')
_INPUT = re.compile(r'<div class="jp-InputArea jp-Cell-inputArea">(.*?)</textarea>|<pre>(.*?)</pre>', re.S)


def notebook_stderr_cells(html: str) -> list[str]:
    """The code cells of an nbconvert page that show stderr output, each as "code cell N: <first line>".

    A cell whose tags include ``SHOWS_STDERR_TAG`` is left out.
    """
    from html import unescape

    found = []
    starts = list(_CELL.finditer(html))
    code_cells = 0
    for i, m in enumerate(starts):
        if m.group(1) != "Code":
            continue
        # mkdocs-jupyter 0.26 wraps each code cell in a second div of the same class: count the inner one.
        if i + 1 < len(starts) and not html[html.find(">", m.end()) + 1:starts[i + 1].start()].strip():
            continue
        code_cells += 1
        body = html[m.start():starts[i + 1].start() if i + 1 < len(starts) else len(html)]
        if not _STDERR.search(body) or f"celltag_{SHOWS_STDERR_TAG}" in m.group(2).split():
            continue
        source = _INPUT.search(body)
        text = unescape(re.sub(r"<[^>]+>", "", next(g for g in source.groups() if g is not None))) if source else ""
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        found.append(f"code cell {code_cells}: {first[:80]}")
    return found


def build_machine_paths(checkout: Path | None = None) -> list[str]:
    """Folders whose names say where and by whom the site was built; none may reach a page.

    The interpreter's prefixes, site-packages, the checkout, $HOME, the temp
    folder and CUDA_HOME (torch guesses /usr/local when it is unset).
    """
    paths: list[str | None] = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.environ.get("HOME"),
                               tempfile.gettempdir(), os.environ.get("TMPDIR"),
                               os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local",
                               sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    paths += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    paths.append(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    if checkout is not None:
        paths.append(str(checkout))
    clean = set()
    for p in paths:
        if not p:
            continue
        p = p.rstrip("/\\")
        # "/" or "/root" could be anyone's; a short name would match ordinary text.
        if len(p) >= 4:
            clean.add(p)
            real = os.path.realpath(p)
            if len(real) >= 4:
                clean.add(real)
    # Longest first; ties by name, so that the list is the same in every process (a set's order is not, and the
    # hook's memory of clean files is keyed by this list).
    return sorted(clean, key=lambda p: (-len(p), p))


# Base64 (images inlined in pages) is made of letters and `/`: leave it out,
# or "/tmp" would turn up by chance in a large PNG.
_DATA_URL = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def leaked_paths(text: str, paths: Iterable[str]) -> list[str]:
    """Which of ``paths`` appear in ``text`` as a whole path (``/tmp/x`` counts, ``/tmpfile`` and ``a/tmp`` do not)."""
    text = _DATA_URL.sub("", text)
    found = []
    # Longest first, each removed once found: a site-packages path is not reported again as the checkout.
    for p in sorted(paths, key=len, reverse=True):
        pattern = re.compile(r"(?<![\w.~-])" + re.escape(p) + r"(?![\w.~-])")
        if pattern.search(text):
            found.append(p)
            text = pattern.sub("", text)
    return found


def check_site(site_dir: Path, site_host: str | None, paths: Iterable[str],
               known_clean: Callable[[Path, str], bool] | None = None) -> dict[Path, list[str]]:
    """Problems per built file: off-site URLs in pages, styles and scripts; script in page attributes
    (``scripts_in_html``); build-machine paths in pages and JSON.

    ``known_clean(file, text)`` may say that a file's text passed these checks before (the build's hook
    remembers clean files by content, so that an unchanged rebuild does not scan them again).
    """
    paths = list(paths)
    problems: dict[Path, list[str]] = {}
    for f in sorted(site_dir.rglob("*")):
        if not f.is_file() or f.suffix not in (".html", ".css", ".js", ".json"):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        if known_clean is not None and known_clean(f, text):
            continue
        found: list[str] = []
        if f.suffix == ".html":
            found += [f"off-site URL {u}" for u in offsite_urls_in_html(text, site_host)]
            found += scripts_in_html(text)
        elif f.suffix == ".css":
            found += [f"off-site URL {u}" for u in offsite_urls_in_css(text, site_host)]
        elif f.suffix == ".js":
            found += [f"off-site URL {u}" for u in offsite_urls_in_js(text, site_host)]
        # Pages, results.json and the search index (which holds every page's text).
        if f.suffix in (".html", ".json"):
            found += [f"build-machine path {p}" for p in leaked_paths(text, paths)]
        if found:
            problems[f] = found
    return problems
