"""MkDocs hooks: wiring only. Each event hands over to gpucnn's build machinery (``gpucnn.build``).

What the machinery does: fresh gpucnn code on every (re)build, each page's template rendered over this build's
facts, the page, chart and notebook caches, site/results.json, and the guards that fail the build on what must
never be published (a warning raised while a page renders, a notebook cell's stderr, a python block that
raised, an off-site request or a build-machine path in the output).

A hooks file, not a plugin class behind an entry point: MkDocs loads it by path from mkdocs.yml, so it is in no
package's import graph, needs no reinstall to take effect, and survives the reload of every gpucnn module that
on_pre_build performs for ``mkdocs serve``. It holds one module-level handle, ``_build``: the
``gpucnn.build.state.Build`` of the build under way (or the last one), made afresh by each on_pre_build. Nothing
else here keeps per-build data.
"""

from __future__ import annotations

import sys
from typing import Any

from mkdocs.plugins import event_priority

# The build under way (gpucnn.build.state.Build), or the last one; None before the first. The only global.
_build: Any = None


def _where() -> tuple[str | None, dict[str, str]]:
    """The page being rendered and its snippet files, for the filter that names pages in markdown-exec's errors."""
    return _build.where() if _build is not None else (None, {})


@event_priority(100)
def on_config(config: Any) -> Any:
    """Before anything is written: the build date checked, paths resolved against mkdocs.yml's folder, and
    markdown-exec's errors made to name their page."""
    from gpucnn.build import config as build_config
    from gpucnn.build.errors import name_pages_in_markdown_exec_errors

    build_config.check_build_date()
    build_config.absolute_snippet_paths(config)
    name_pages_in_markdown_exec_errors(_where)
    return config


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """A record added to the archive while serving changes the Results page and others."""
    from gpucnn.archive import archive_dir

    if archive_dir().is_dir():
        server.watch(str(archive_dir()))
    return server


def on_pre_build(config: Any) -> None:
    global _build
    if _build is not None:  # `mkdocs serve` rebuilds in one process: the last build's leftovers go
        _build.end_render_recorders()
    # Without this, an edit to gpucnn would not take effect under `mkdocs serve`,
    # and old code's results would be cached under the new code's key.
    for name in [m for m in sys.modules if m == "gpucnn" or m.startswith("gpucnn.")]:
        del sys.modules[name]
    from gpucnn.build.state import Build

    _build = None
    _build = Build.start(config)


def on_page_markdown(markdown: str, page: Any, config: Any = None, files: Any = None, **_: Any) -> str:
    return _build.page_markdown(markdown, page, config, files)


@event_priority(100)  # first: the page cache stores the HTML as rendered, before any other handler changes it
def on_page_content(html: str, page: Any, files: Any = None, **_: Any) -> str:
    return _build.page_content(html, page, files)


def on_env(env: Any, config: Any = None, files: Any = None, **_: Any) -> Any:
    """After every page's content is made and before any page is written: fail on the blocks that raised."""
    _build.env()
    return env


@event_priority(-1000)  # after every plugin's own on_post_page
def on_post_page(output: str, page: Any, **_: Any) -> str:
    from gpucnn.build.html import without_cdn_scripts
    from gpucnn.build.state import NOTEBOOK_SUFFIXES

    return without_cdn_scripts(output, page.file.src_uri.endswith(NOTEBOOK_SUFFIXES))


@event_priority(-1000)  # after mkdocs-jupyter's eviction, and last: the guard sees the finished site
def on_post_build(config: Any) -> None:
    _build.post_build(config)


def on_build_error(error: Exception, **_: Any) -> None:
    from gpucnn.build.state import build_error

    build_error(_build)
