"""The page cache in a build: each Markdown page served from it when its key matches, else stored once rendered.

Storage and keys are ``gpucnn.page_cache``; this is the build's side of it (the notebook page has
mkdocs-jupyter's own cache, ``gpucnn.build.notebook``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.plugins.gpucnn")


class PageCache:
    """One build's page cache: the key material its pages share (None: no page cache), the pages it served,
    and for each page rendered, (its key, where its results start in ``gpucnn.results.ASKED``)."""

    def __init__(self, site: str | None = None, may_serve: bool = True) -> None:
        self.site = site
        self.may_serve = may_serve  # under GPUCNN_FRESH pages are rendered and stored, not served
        self.served: set[str] = set()
        self.rendered: dict[str, tuple[str, int]] = {}
        # GPUCNN_VERIFY: the stored HTML of each page the cache would have served, which this build renders again.
        self.verifying: dict[str, str] = {}

    @classmethod
    def keyed(cls, config: Any, profile: str, archive: str) -> PageCache:
        """This build's page cache: what every page's key shares (no page cache where it cannot be read)."""
        from gpucnn.archive import build_date
        from gpucnn.chart_cache import environment_digest
        from gpucnn.hardware import detect
        from gpucnn.page_cache import site_material
        from gpucnn.results import fresh_requested

        cache = cls(None, may_serve=not fresh_requested())
        if not config.get("config_file_path"):
            return cache
        config_file = Path(config["config_file_path"]).resolve()
        docs_dir = Path(config.get("docs_dir") or config_file.parent / "docs")
        try:
            cache.site = site_material(
                config_file, directory_urls=bool(config.get("use_directory_urls", True)),
                hardware=detect().to_dict(), charts=environment_digest(), profile=profile, archive=archive,
                build_date=build_date().isoformat(), partials=docs_dir / ".partials")
        except OSError as exc:  # what the key is made of cannot be read: every page renders
            log.info("gpucnn: no page cache (%s): every page is rendered", exc)
        return cache

    def serve(self, markdown: str, page: Any, files: Any, snippets: dict[str, str]) -> bool:
        """Serve the page from the cache if its key matches (True), else note it for ``store`` once it renders.

        The key is the Markdown as written, and the included files' text (the snippets folder is in the site's
        material, an include from elsewhere is not); a page the cache serves is not rendered at all.
        """
        from gpucnn import page_cache, results

        src_uri = page.file.src_uri
        if self.site is None or files is None:
            return False
        key = page_cache.page_key(self.site + repr(sorted(snippets.items())), src_uri, markdown,
                                  [f.src_uri for f in files])
        cached = page_cache.load(src_uri, key) if self.may_serve else None
        if cached is not None and all(files.get_file_from_path(uri) for uri in cached.links_to_anchors) and all(
                results.reuse_entry(experiment, result_key, digest)
                for experiment, result_key, digest in cached.results):
            if page_cache.verify_requested():  # rendered, and compared with this copy in ``check_and_store``
                self.verifying[src_uri] = cached.content
                log.info("gpucnn: page %s rendered again to check its page-cache copy (%s)", src_uri,
                         page_cache.VERIFY_ENV)
                return False
            page.render = _served_render(page, cached)
            self.served.add(src_uri)
            log.info("gpucnn: page %s served from the page cache", src_uri)
            return True
        self.rendered[src_uri] = (key, len(results.ASKED))
        return False

    def check_and_store(self, html: str, page: Any, mkdocs_warnings: list[str]) -> None:
        """Under GPUCNN_VERIFY, compare the page with the copy the cache would have served; then store it."""
        stored = self.verifying.pop(page.file.src_uri, None)
        if stored is not None:
            verify(stored, html, page.file.src_uri)
        self.store(html, page, mkdocs_warnings)

    def store(self, html: str, page: Any, mkdocs_warnings: list[str]) -> None:
        """Store a page that rendered cleanly, with the measurement-cache entries it showed.

        Not a page for which MkDocs logged a warning while rendering it (a broken link): strict mode fails the
        build on it, and it would fail every build; a served page logs nothing. Nor a page rendered without
        MkDocs' record of its links to anchors (a verbose build keeps none), which later builds check.
        """
        from gpucnn import page_cache, results
        from gpucnn.render import as_reused

        noted = self.rendered.pop(page.file.src_uri, None)
        if noted is None or mkdocs_warnings or page.links_to_anchors is None:
            return
        key, first = noted
        shown = []
        for result in results.asked_since(first):
            digest = results.entry_digest(result)
            if digest is None:  # no cache entry to check it against later: not cached
                return
            shown.append([result.experiment, result.key, digest])
        links = page.links_to_anchors
        page_cache.save(page.file.src_uri, page_cache.CachedPage(
            key=key, content=as_reused(html), toc=page_cache.toc_tokens(page.toc),
            title=getattr(page, "_title_from_render", None), anchors=sorted(page.present_anchor_ids or ()),
            links_to_anchors={f.src_uri: dict(v) for f, v in links.items()},
            results=shown))


def _served_render(page: Any, cached: Any) -> Any:
    """Stands in for ``page.render``: sets what MkDocs' render sets, from the cache."""
    def render(config: Any, files: Any) -> None:
        from mkdocs.structure.toc import get_toc

        page.content = cached.content
        page.toc = get_toc(cached.toc)
        page._title_from_render = cached.title
        page.present_anchor_ids = set(cached.anchors)
        page.links_to_anchors = {files.get_file_from_path(uri): dict(links)
                                 for uri, links in cached.links_to_anchors.items()}

    return render


def verify(stored: str, html: str, src_uri: str) -> None:
    """GPUCNN_VERIFY: fail where a page rendered again reads otherwise than the copy the cache would have served."""
    from gpucnn import page_cache
    from gpucnn.render import as_reused

    difference = page_cache.first_difference(stored, as_reused(html))
    if difference is not None:
        page_cache.discard(src_uri)  # the next build renders it
        from gpucnn.typed import printable

        raise PluginError(f"page {src_uri}: {page_cache.VERIFY_ENV}: rendered again, it differs from the copy the "
                          "page cache serves, so a block prints something its key does not cover (a file it "
                          f"reads, the clock); the copy was removed. {printable(difference)}")
