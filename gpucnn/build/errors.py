"""Errors that name the page: markdown-exec's log lines, and the python blocks that raised."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

# A page's line that includes a snippet file with pymdownx.snippets.
SNIPPET_INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)

# What the filter asks for: (the page being rendered or None, {snippet file: its text}).
Where = Callable[[], tuple[str | None, dict[str, str]]]


def included_snippets(markdown: str, base_paths: list[str]) -> dict[str, str]:
    """The text of each snippet file the page includes, by its name in the page."""
    found: dict[str, str] = {}
    for base in base_paths:
        for name in SNIPPET_INCLUDE.findall(markdown):
            path = Path(base) / name
            if path.is_file() and name not in found:
                found[name] = path.read_text(encoding="utf-8", errors="replace")
    return found


def _normalized(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


class NamePage(logging.Filter):
    """markdown-exec's error names only "session ann; n2": add the Markdown page and the snippet file."""

    def __init__(self, where: Where) -> None:
        super().__init__()
        self.where = where

    def filter(self, record: logging.LogRecord) -> bool:
        page, snippets = self.where()
        message = record.getMessage()
        head, sep, rest = message.partition("Execution of ")
        if page and sep and len(head) < 40:
            code = _normalized(message)
            files = [name for name, text in snippets.items() if text and _normalized(text) in code]
            at = f"page {page}" + (f", snippet {', '.join(files)}" if files else "")
            record.msg, record.args = f"{head}{at}: {sep}{rest}", None
        return True


def name_pages_in_markdown_exec_errors(where: Where) -> None:
    """Filter each of markdown-exec's loggers (one per module; a logger's filters see only its own records).

    A filter of an earlier build (``mkdocs serve`` loads the hooks again) is replaced by one that asks ``where``.
    """
    try:
        import markdown_exec  # noqa: F401 - its loggers exist once it is imported
    except ImportError:
        return
    names = [n for n in logging.root.manager.loggerDict if n.startswith("mkdocs.plugins.markdown_exec")]
    for logger in map(logging.getLogger, names):
        for old in [f for f in logger.filters if type(f).__name__ == NamePage.__name__]:
            logger.removeFilter(old)
        logger.addFilter(NamePage(where))


def block_raises() -> list[str]:
    """The python blocks that raised since the list was last cleared, each as its error's last line.

    markdown-exec catches a block's exception, renders the traceback into the page and says so only in a log
    warning, which ``mkdocs build -q`` silences. So this reads its result instead: its python formatter runs each
    block through its module's ``_run_python`` (looked up at each call), which raises ``ExecutionError`` from the
    block's own exception. That function is wrapped once per process, to note the error and raise it on as before;
    the list lives on the wrapper, so that ``mkdocs serve``'s reload of gpucnn finds the same one.
    """
    try:
        from markdown_exec._internal.formatters import python as formatter
        from markdown_exec._internal.formatters.base import ExecutionError
    except ImportError:
        try:
            import markdown_exec  # noqa: F401
        except ImportError:  # no markdown-exec: no python block runs
            return []
        raise PluginError("markdown-exec's python runner moved (a new markdown-exec?): gpucnn could not tell a "
                          "block that raises; update block_raises in gpucnn/build/errors.py") from None
    original = formatter._run_python
    if hasattr(original, "gpucnn_raised"):
        return original.gpucnn_raised
    raised: list[str] = []

    def observed(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except ExecutionError as error:
            raised.append(error_line(error))
            raise

    observed.gpucnn_raised = raised  # type: ignore[attr-defined]
    formatter._run_python = observed
    return raised


def error_line(error: BaseException) -> str:
    """The block's error as one short printable line (``ValueError: ...``)."""
    from gpucnn.typed import printable

    cause = error.__cause__
    if cause is not None:
        line = f"{type(cause).__name__}: {cause}".strip()
    else:  # the last line of the traceback markdown-exec made, without its code fence
        lines = [t.strip() for t in str(error).splitlines() if t.strip() and not t.strip().startswith("```")]
        line = lines[-1] if lines else "no output"
    line = printable(line)
    return line if len(line) <= 200 else line[:199] + "\u2026"
