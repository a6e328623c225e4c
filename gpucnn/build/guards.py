"""The build's guards: what must never reach a page fails the build instead, naming the page.

A warning raised while a page renders (the page would silently show a figure made under it), a notebook cell's
stderr, a section with figures but no sources line, a python block that raised. (The site guard, over the
finished site, is ``gpucnn.build.site_check``.)
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.plugins.gpucnn")

# mkdocs' own warnings are counted by strict mode. The Jupyter machinery that
# runs the notebook's kernel is not page code and writes nothing onto a page;
# the kernel's own warnings reach the page as stderr, which fails the build there.
NOT_PAGE_CODE = frozenset({"mkdocs", "traitlets", "jupyter_client", "jupyter_core", "nbclient", "nbconvert",
                           "ipykernel", "zmq", "tornado"})


class WarningsDuringRender:
    """Records the Python warnings and library log warnings raised while one page renders.

    markdown-exec captures only a block's print: a warning from a block or
    from gpucnn's page code goes to the build log, and the page then silently
    shows a figure made under it. Recording them lets the build fail, naming
    the page. mkdocs' own warnings are left to strict mode; they are kept in
    ``mkdocs_warnings``, and keep the page out of the page cache.
    """

    class _Handler(logging.Handler):
        def __init__(self, records: list[str], mkdocs_records: list[str]) -> None:
            super().__init__(logging.WARNING)
            self.records = records
            self.mkdocs_records = mkdocs_records
            self.last: logging.LogRecord | None = None

        def emit(self, record: logging.LogRecord) -> None:
            if record is self.last:  # a torch record that propagates reaches this handler twice
                return
            self.last = record
            if record.name.split(".")[0] == "mkdocs":  # MkDocs prints these and strict mode counts them
                self.mkdocs_records.append(record.getMessage())
                return
            if record.name.split(".")[0] in NOT_PAGE_CODE:
                log.info("gpucnn: %s: %s", record.name, record.getMessage())
            else:
                self.records.append(f"{record.name}: {record.getMessage()}")

    def __init__(self) -> None:
        self.found: list[str] = []
        self.mkdocs_warnings: list[str] = []
        self._catcher = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []
        self._handler = self._Handler(self.found, self.mkdocs_warnings)
        # torch's and MkDocs' loggers do not propagate to the root logger: listen on all three.
        self._loggers = [logging.getLogger(), logging.getLogger("torch"), logging.getLogger("mkdocs")]

    def __enter__(self) -> WarningsDuringRender:
        # The filters in force stay (catch_warnings copies them); only where warnings go changes.
        self._caught = self._catcher.__enter__()
        for logger in self._loggers:
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._catcher.__exit__(*exc)
        for w in self._caught:
            where = f"{Path(w.filename).name}:{w.lineno}"
            if NOT_PAGE_CODE & set(Path(w.filename).parts):
                log.info("gpucnn: %s: %s (%s)", w.category.__name__, w.message, where)
            elif issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                # A library's deprecation is not on the page, and a newer library
                # must not break a reader's build: logged, as mkdocs itself does.
                log.info("gpucnn: %s: %s (%s)", w.category.__name__, w.message, where)
            else:
                self.found.append(f"{w.category.__name__}: {w.message} ({where})")


def fail_on_warnings(recorder: WarningsDuringRender, src_uri: str) -> None:
    if recorder.found:
        raise PluginError(f"page {src_uri}: a warning was raised while it was built "
                          "(remove it at its cause):\n  " + "\n  ".join(recorder.found))


def fail_on_notebook_stderr(html: str, src_uri: str) -> None:
    """A notebook cell's stderr (a warning, a log line) would be published: fail instead, naming the cell."""
    from gpucnn.site_guard import SHOWS_STDERR_TAG, notebook_stderr_cells

    cells = notebook_stderr_cells(html)
    if cells:
        raise PluginError(f"page {src_uri}: these cells wrote to stderr, which the page would show (remove it at "
                          f"its cause, or tag a cell that shows it on purpose with {SHOWS_STDERR_TAG!r}):\n  "
                          + "\n  ".join(cells))


def fail_on_figures_without_sources(src_uri: str) -> None:
    from gpucnn.sources import pending_sources

    if pending_sources():
        raise PluginError(f"page {src_uri}: figures at its end have no sources line: end the notebook's "
                          "last section with a cell that prints gpucnn.render.section_sources()")


def fail_on_raised_blocks(failed: list[str]) -> None:
    """After every page's content is made and before any page is written: no traceback page is published."""
    if failed:
        raise PluginError("python blocks raised (without -q, markdown-exec's warnings above show their code and "
                          "tracebacks):"
                          "\n  " + "\n  ".join(failed))
