"""One build's state, in one object, and what each of MkDocs' events does with it.

``gpucnn/mkdocs_hooks.py`` makes a ``Build`` in on_pre_build (after dropping the gpucnn modules, so that
``mkdocs serve`` runs fresh code) and holds it in its one module-level handle until the next build; nothing
else keeps per-build data. Each job is a module of ``gpucnn.build``; this class calls them in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpucnn.build import config as build_config
from gpucnn.build import errors, guards, html, log_noise, notebook, report, site_check
from gpucnn.build.cached_pages import PageCache

log = logging.getLogger("mkdocs.plugins.gpucnn")

NOTEBOOK_SUFFIXES = (".py", ".ipynb")


class Build:
    """What one build knows: its config and profile, the page being rendered, the caches, the guards' findings."""

    def __init__(self, config: Any = None) -> None:
        """A build with no caches and no share folder (what tests drive page by page); ``start`` sets one up."""
        self.config = config
        self.profile = ""
        # The page being rendered, and the snippet files it includes, for error messages.
        self.page: str | None = None
        self.snippets: dict[str, str] = {}
        self.recorders: dict[str, guards.WarningsDuringRender] = {}
        self.started: dict[str, float] = {}
        self.page_times: dict[str, float] = {}  # seconds each page spent in Markdown rendering (its blocks)
        self.failed: list[str] = []  # pages whose python blocks raised
        self.share: Path | None = None
        self.restore_env: Callable[[], None] = lambda: None
        self.notebook: notebook.NotebookCache | None = None
        self.pages = PageCache()
        self.setup_s = 0.0

    @classmethod
    def start(cls, config: Any) -> Build:
        """on_pre_build: check the profile and the archive, make the share folder, key the caches."""
        from gpucnn.hardware import detect
        from gpucnn.results import MEASURED_ENV, SHARE_ENV

        started = time.perf_counter()
        build = cls(config)
        build.profile = build_config.checked_profile()
        log.info("gpucnn: building with the %s profile", build.profile)
        count, folder = build_config.checked_archive()
        log.info("gpucnn: %d archived record(s) in %s/", count, folder)
        # The notebook page runs in a Jupyter kernel (it inherits this environment):
        # it shares its results through this folder, so results.json lists them too.
        build.share = Path(notebook.share_folder())
        os.environ[SHARE_ENV] = str(build.share)
        os.environ.pop(MEASURED_ENV, None)  # `mkdocs serve`: the previous build's measurements are this one's reuses
        try:
            build.restore_env = log_noise.kernel_over_ipc(build.share)
            log_noise.quiet_profiler_without_device(has_accelerator=detect().accelerator is not None)
            archive = build_config.archive_digest()
            build.notebook = notebook.NotebookCache.keyed(config, build.profile, archive)
            build.pages = PageCache.keyed(config, build.profile, archive)
        except BaseException:  # no Build is handed over: on_build_error could not clean up after it
            build.build_error()
            raise
        build.setup_s = time.perf_counter() - started  # imports, hardware, archive, cache keys
        return build

    def where(self) -> tuple[str | None, dict[str, str]]:
        return self.page, self.snippets

    def page_markdown(self, markdown: str, page: Any, config: Any, files: Any) -> str:
        """Markdown rendering (markdown-exec's blocks, mkdocs-jupyter's execution) runs after this, before
        ``page_content``: start watching it, then serve the page from the cache or render its template."""
        from gpucnn.sources import begin_page

        src_uri = page.file.src_uri
        errors.block_raises().clear()
        self.started[src_uri] = time.perf_counter()
        self.recorders[src_uri] = guards.WarningsDuringRender().__enter__()
        self.page = src_uri
        begin_page(src_uri)  # the page's "No GPU in this build" note is printed once
        # markdown-exec numbers the ids of every block's output across the whole build: a page served from the
        # page cache would shift the ids of every page rendered after it. Numbered per page, a page reads the same
        # whichever pages before it were served (ids need only be unique within their page).
        with contextlib.suppress(ImportError):
            from markdown_exec import MarkdownConverter

            MarkdownConverter.counter = 0
        snippets = ((config.get("mdx_configs") if config else None) or {}).get("pymdownx.snippets") or {}
        self.snippets = errors.included_snippets(markdown, snippets.get("base_path", []))
        if src_uri.endswith(NOTEBOOK_SUFFIXES):  # the notebook has mkdocs-jupyter's cache
            notebook.measure_before_kernel(self.notebook)
            notebook.render_despite_an_unwritable_cache(page)
            return markdown
        if self.pages.serve(markdown, page, files, self.snippets):
            return markdown
        return render_template(markdown, page, config)

    def page_content(self, content: str, page: Any, files: Any) -> str:
        """The page's HTML is made: fail on what it must not show, store it in the page cache, fix its links."""
        src_uri = page.file.src_uri
        start = self.started.pop(src_uri, None)
        if start is not None:
            self.page_times[src_uri] = time.perf_counter() - start
        self.page = None
        # Every block that raised since this page's page_markdown: pages render one at a time.
        raised = errors.block_raises()
        failed = list(raised)
        raised.clear()
        # Stop recording before any failure is raised: its handler must not stay on the root logger.
        recorder = self.recorders.pop(src_uri, None)
        if recorder is not None:
            recorder.__exit__(None, None, None)
        if failed:
            # Every page's content is made before any page is written: ``env`` fails the build in between,
            # naming every page whose block raised, so that no traceback page is published.
            self.failed.append(f"page {src_uri}: a python block raised ({failed[0]})")
        if recorder is not None:
            guards.fail_on_warnings(recorder, src_uri)
        if src_uri.endswith(NOTEBOOK_SUFFIXES):
            guards.fail_on_notebook_stderr(content, src_uri)
        guards.fail_on_figures_without_sources(src_uri)
        if not failed:
            self.pages.check_and_store(content, page, recorder.mkdocs_warnings if recorder is not None else [])
        return html.rewrite_printed_links(content, page, files) if files is not None else content

    def env(self) -> None:
        failed, self.failed = self.failed, []
        guards.fail_on_raised_blocks(failed)

    def post_build(self, config: Any) -> None:
        """results.json, the caches committed, the statistics, the site guard."""
        from gpucnn.results import SHARE_ENV

        started = time.perf_counter()
        report.notebook_results()
        if self.notebook is not None and self.share is not None:
            self.notebook.keep_results(self.share)
            self.notebook.commit()
        report.results_json(Path(config["site_dir"]) / "results.json")
        self._remove_share(SHARE_ENV)
        rendered = sum(1 for uri in self.page_times if uri not in self.pages.served
                       and not uri.endswith(NOTEBOOK_SUFFIXES))
        report.statistics(len(self.pages.served), rendered, self.page_times)
        site_check.guard_site(config)
        report.time_spent(self.setup_s, self.page_times, time.perf_counter() - started)

    def _remove_share(self, env: str) -> None:
        if self.share is not None:
            if os.environ.get(env) == str(self.share):
                os.environ.pop(env, None)
            shutil.rmtree(self.share, ignore_errors=True)
            self.share = None
        self.restore_env()
        self.restore_env = lambda: None

    def end_render_recorders(self) -> None:
        """A page that raised never reached page_content: put warnings and logging back as they were."""
        while self.recorders:
            self.recorders.popitem()[1].__exit__(None, None, None)

    def build_error(self) -> None:
        """Pages written before the error may hold a traceback with this machine's paths; the notebook cache
        keeps what it had; the share folder and the environment go."""
        from gpucnn.results import SHARE_ENV

        self.end_render_recorders()
        if self.config:
            with contextlib.suppress(OSError):
                site_check.remove_unpublishable(self.config)
        self._remove_share(SHARE_ENV)
        if self.notebook is not None:
            self.notebook.discard()
            self.notebook = None


def build_error(build: Build | None) -> None:
    """on_build_error: the build's clean-up, or, where the build failed before its state was made, the share
    folder it may have left in the environment."""
    if build is not None:
        build.build_error()
        return
    from gpucnn.results import SHARE_ENV

    share = os.environ.pop(SHARE_ENV, "")
    if share:
        shutil.rmtree(share, ignore_errors=True)


def render_template(markdown: str, page: Any, config: Any) -> str:
    """The page's words over this build's facts (gpucnn.templating), or a one-line error naming page and line."""
    from mkdocs.exceptions import PluginError

    from gpucnn.templating import TemplateError, render_page

    docs_dir = (config.get("docs_dir") if config else None) or "docs"
    try:
        return render_page(markdown, page.file.src_uri, docs_dir)
    except TemplateError as exc:
        raise PluginError(str(exc)) from None
