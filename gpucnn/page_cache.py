"""A cache of rendered Markdown pages: an unchanged page's python blocks do not run again.

markdown-exec has no execution cache, and running the blocks of every page
(importing scikit-learn and matplotlib, a GPU's first CUDA call and cuDNN
load, the live timing snippets) was most of an unchanged rebuild's time.

A page is served from this cache only where everything that decides its
HTML is unchanged; the key covers:

* the page's Markdown and the files it includes, and the list of the site's
  files (what its links may point to);
* every file of the gpucnn package (page code, experiments, harness, these
  hooks) and of ``snippets/``, ``mkdocs.yml``, and how the build makes links
  (directory URLs, which the command line can change);
* the hardware report the pages print (all but the clock the OS reports at
  that moment), Python and every installed distribution's version, what
  decides a chart's drawing (fonts, matplotlib: ``chart_cache``), the
  profile, the archive of records and the build date (which decides which
  records may be drawn);
* each measurement-cache entry the page showed, byte for byte (checked
  when it is served: a re-measured experiment renders its pages again).

A served page is the HTML its python blocks printed in the build that
rendered it, with its provenance lines marked as reused
(``render.as_reused``): its figures are that build's, as a reused
measurement's are. Its live timing snippets show that build's figures too,
made on this machine with this code, as does the CPU clock it reports. A
page that MkDocs warned about while it rendered (a broken link, say) is not
stored, so that a strict build fails on it every time. ``GPUCNN_FRESH``
renders every page again. The notebook page has its own cache
(mkdocs-jupyter's, keyed by the MkDocs hooks).

One entry per page, in ``<cache dir>/pages/``; an unreadable entry is
rendered again and replaced. Delete that folder to render every page again.

The key cannot see what a block reads from outside it (a file, the clock, the
network): DEVELOPERS.md forbids a block to print such a thing, and
``GPUCNN_VERIFY=1`` checks it. Such a build renders every page it would serve,
and fails, naming the page and removing its entry, where the new HTML says
something else than the stored one (``first_difference``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gpucnn.results import atomic_write_text, cache_dir

log = logging.getLogger("mkdocs.plugins.gpucnn")


def _distributions() -> list[tuple[str, str]]:
    """Every installed distribution and its version: any of them (Markdown extensions, Pygments, latex2mathml,
    matplotlib, numpy) can change a page's HTML."""
    return sorted({(d.metadata["Name"] or "", d.version or "") for d in metadata.distributions()})


def _tree_digest(folder: Path) -> str:
    """A digest of every file under ``folder``: names and bytes (compiled Python left out)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def site_material(config_file: Path, *, directory_urls: bool, hardware: dict[str, Any], charts: str, profile: str,
                  archive: str, build_date: str, partials: Path | None = None) -> str:
    """What every page's key shares: code, snippets, configuration, machine, libraries, records and date.

    ``directory_urls`` is the build's, which the command line can set apart from ``mkdocs.yml``: the links
    on a page depend on it. ``hardware`` is the report the pages print (``HardwareReport.to_dict``).
    ``partials`` is the folder of the words templated pages share (``docs/.partials``).
    """
    root = config_file.parent
    cpu = {k: v for k, v in hardware.get("cpu", {}).items() if k != "reported_clock_ghz"}  # changes by the second
    return json.dumps({
        "gpucnn": _tree_digest(Path(__file__).resolve().parent), "snippets": _tree_digest(root / "snippets"),
        "partials": _tree_digest(partials) if partials else "",
        "mkdocs.yml": hashlib.sha256(config_file.read_bytes()).hexdigest(), "directory_urls": directory_urls,
        "hardware": {**hardware, "cpu": cpu}, "python": platform.python_version(),
        "distributions": _distributions(), "charts": charts,
        "profile": profile, "archive": archive, "build_date": build_date,
    }, sort_keys=True, default=str)


def page_key(site: str, src_uri: str, markdown: str, files: list[str]) -> str:
    """One page's key: the site's material, the page and its Markdown, and the files it can link to."""
    material = json.dumps([site, src_uri, markdown, sorted(files)])
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class CachedPage:
    """What MkDocs' ``Page.render`` made of a page, and the measurement-cache entries it showed."""

    key: str
    content: str  # the HTML, before any on_page_content handler
    toc: list[dict[str, Any]]  # Python-Markdown's toc tokens: level, id, name, children
    title: str | None  # the title MkDocs took from the first heading
    anchors: list[str]  # the ids a link may point to
    links_to_anchors: dict[str, dict[str, str]]  # {file linked to: {anchor: link}}, for MkDocs' anchor checks
    results: list[list[str]]  # [experiment, cache key, digest of its cache entry]


def _folder() -> Path:
    return cache_dir() / "pages"


def _entry_path(src_uri: str) -> Path:
    return _folder() / (hashlib.sha256(src_uri.encode()).hexdigest()[:16] + ".json")


def _is_toc(tokens: Any) -> bool:
    return isinstance(tokens, list) and all(
        isinstance(t, dict) and isinstance(t.get("level"), int) and isinstance(t.get("id"), str)
        and isinstance(t.get("name"), str) and _is_toc(t.get("children")) for t in tokens)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def load(src_uri: str, key: str) -> CachedPage | None:
    """The cached page for ``key``; None if there is none, it has another key, or it is unreadable (logged)."""
    path = _entry_path(src_uri)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.info("gpucnn: page cache entry %s for %s is unreadable (%s): the page is rendered again",
                 path.name, src_uri, exc)
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    try:
        well_formed = _well_formed(entry)
    except RecursionError:  # a table of contents nested past Python's limit
        well_formed = False
    if not well_formed:
        log.info("gpucnn: page cache entry %s for %s is malformed: the page is rendered again", path.name, src_uri)
        return None
    return CachedPage(**{name: entry[name] for name in CachedPage.__dataclass_fields__})


def _well_formed(entry: dict[str, Any]) -> bool:
    """Every field of ``CachedPage`` is there, with its type."""
    links, results, anchors = entry.get("links_to_anchors"), entry.get("results"), entry.get("anchors")
    return (isinstance(entry.get("content"), str) and _is_toc(entry.get("toc"))
            and (entry.get("title") is None or isinstance(entry.get("title"), str))
            and isinstance(anchors, list) and all(isinstance(a, str) for a in anchors)
            and isinstance(links, dict) and all(_is_str_map(v) for v in links.values())
            and isinstance(results, list)
            and all(isinstance(r, list) and len(r) == 3 and all(isinstance(x, str) for x in r) for r in results))


def save(src_uri: str, page: CachedPage) -> None:
    """Store a page's entry atomically, replacing the one before; an unwritable cache costs speed only."""
    text = json.dumps(asdict(page))
    path = _entry_path(src_uri)
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:
        log.info("gpucnn: page %s was not cached (%s)", src_uri, exc)


def toc_tokens(toc: Any) -> list[dict[str, Any]]:
    """A rendered page's table of contents (MkDocs' AnchorLinks) as the tokens ``get_toc`` reads back."""
    return [{"level": link.level, "id": link.id, "name": link.title, "children": toc_tokens(link.children)}
            for link in toc]


VERIFY_ENV = "GPUCNN_VERIFY"


def verify_requested() -> bool:
    """``GPUCNN_VERIFY=1``: render every page the cache would serve, and fail where it reads otherwise."""
    return os.environ.get(VERIFY_ENV, "").strip() not in ("", "0", "false", "no")


# Digits are left out of the comparison: a live timing snippet (Measuring, Bandwidth) times again whenever its page
# renders, and its figures differ from run to run by design. Words, markup and structure must match.
_DIGITS = re.compile(r"\d+")


def first_difference(stored: str, rendered: str) -> str | None:
    """Where a page rendered again says something other than its stored copy (digits aside): the first two lines
    that differ, shortened; None where they read the same."""
    old, new = (_DIGITS.sub("0", text).splitlines() for text in (stored, rendered))
    for i in range(max(len(old), len(new))):
        a, b = (lines[i] if i < len(lines) else "(nothing)" for lines in (old, new))
        if a != b:
            start = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            start = max(0, start - 20)
            return f"line {i + 1}: stored {a[start:start + 80]!r}, now {b[start:start + 80]!r}"
    return None


def discard(src_uri: str) -> None:
    """Remove a page's entry: the next build renders it."""
    try:
        _entry_path(src_uri).unlink(missing_ok=True)
    except OSError as exc:
        log.info("gpucnn: page cache entry for %s could not be removed (%s)", src_uri, exc)
