"""The words of a page live in its Markdown; this renders them over the facts Python decides.

A page in ``docs/`` is a Jinja template, rendered by gpucnn's hook before markdown-exec runs its blocks:

    {% for c in pages.bandwidth.copy_facts().devices %}
    On {{ c.source.label }}, the largest copy reaches **{{ c.largest_gbps | num }} GB/s**.
    {% endfor %}

- ``pages.<module>`` is ``gpucnn.pages.<module>``, imported when first named. Page modules return facts
  (frozen dataclasses of numbers, verdicts and sources), never sentences.
- Filters format numbers the same way everywhere: ``num``, ``time``, ``bytes``, ``x`` (a ratio), ``pct``.
- ``no_gpu_state(found)`` says whether, and how, the page says "No GPU in this build" here (once a page).
- ``notes.<macro>`` are the macros of ``docs/.partials/notes.md``: words several pages share.
- Strings are HTML-escaped (a record's text is anyone's), and a name that is not defined, a filter of a
  missing value or a raising fact fails the build, naming the page and the line.
- Jinja's comments are ``{## ... ##}``: ``{#`` starts the ``{#anchor}`` of a heading.

Each section (a ``##`` heading) ends with a block that prints its sources line
(``render.section_sources``): the facts the template used in it, and the figures its blocks print.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from markupsafe import Markup

from gpucnn import sources
from gpucnn.render import fmt, fmt_time, short_bytes

PARTIALS = ".partials"  # under docs/: MkDocs skips dot-folders, so these are never pages of their own


class TemplateError(ValueError):
    """A page's template failed: the message names the page and the line."""


class _Pages:
    """``pages.bandwidth`` in a template: ``gpucnn.pages.bandwidth``, imported on first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return importlib.import_module(f"gpucnn.pages.{name}")
        except ModuleNotFoundError as exc:
            raise jinja2.UndefinedError(f"no page module gpucnn.pages.{name}") from exc


def _number(value: Any) -> float:
    if value is None or isinstance(value, jinja2.Undefined):
        raise jinja2.UndefinedError("a number filter was given no value")
    return value


def _num(value: Any, digits: int = 3) -> str:
    return fmt(_number(value), digits)


def _ratio(value: Any, digits: int = 2) -> str:
    """A ratio with an x after it: two significant digits below 100, whole numbers above."""
    v = _number(value)
    return f"{fmt(v, digits) if v < 100 else f'{v:,.0f}'}x"


def _pct(value: Any, digits: int = 2) -> str:
    return f"{fmt(_number(value), digits)} %"


_BLOCK_TAG = re.compile(r"\{%-?.*?-?%\}")


class _KeepLineBreaks(jinja2.ext.Extension):
    """trim_blocks drops the line break after a block tag: right for a line that holds only tags (a loop's
    ``{% for %}``), wrong for a line of words that ends in one (``... the arithmetic{% endif %}``).

    Such a line's break becomes a space, and the line runs on into the next one through a comment that
    holds the break (the template's line numbers stay the page's): whatever the tags between render,
    words never run together, and a line that renders empty (``{% if loop.first %}words{% endif %}`` after
    the first pass) leaves no blank line, which would end a paragraph. Before a blank line the break is
    kept: that paragraph ends there."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        lines = source.split("\n")
        for i in range(len(lines) - 1):
            line = lines[i]  # as the line before may have changed it
            if not (line.rstrip().endswith("%}") and _BLOCK_TAG.sub("", line.removeprefix("##}")).strip()):
                continue
            if lines[i + 1].strip():
                lines[i] = line.rstrip() + '{{ " " }}{##'
                lines[i + 1] = "##}" + lines[i + 1]
            else:
                lines[i] = line.rstrip() + '{{ "" }}'
        return "\n".join(lines)


def environment(docs_dir: str | Path) -> jinja2.Environment:
    env = jinja2.Environment(
        extensions=[_KeepLineBreaks],
        loader=jinja2.FileSystemLoader(str(docs_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters.update(num=_num, time=lambda v: fmt_time(_number(v)), bytes=lambda v: short_bytes(_number(v)),
                       x=_ratio, pct=_pct)
    env.globals["pages"] = _Pages()
    env.globals["no_gpu_state"] = sources.no_gpu_state
    return env


_FENCE = re.compile(r"^(`{3,}|~{3,})")
_SECTION_HEADING = re.compile(r"^## ")


def _with_section_ends(markdown: str) -> str:
    """``markdown`` with a call that closes the section before each ``##`` heading and at the end, on the same
    line as the heading so that the template's line numbers stay the page's."""
    out, fence, section = [], None, 0
    for line in markdown.splitlines(keepends=True):
        m = _FENCE.match(line)
        if m and (fence is None or (m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence))):
            fence = None if fence else m.group(1)
        elif fence is None and _SECTION_HEADING.match(line):
            line = f"{{{{ _end_section({section}) }}}}" + line
            section += 1
        out.append(line)
    if out and not out[-1].endswith("\n"):
        out.append("\n")
    out.append(f"{{{{ _end_section({section}) }}}}")
    return "".join(out)


def _end_section(number: int) -> Markup:
    """Keep what the section's template noted, and end it with the block that prints its sources line."""
    taken = sources.take_section()
    if any(taken):
        sources.PAGE.templated[number] = taken
    return Markup(
        f'\n```python exec="on"\nfrom gpucnn.render import section_sources\n\nprint(section_sources({number}))\n```\n\n')


def render_page(markdown: str, name: str, docs_dir: str | Path) -> str:
    """Render one page's Markdown template. Raises ``TemplateError`` naming the page and the line."""
    env = environment(docs_dir)
    notes_path = Path(docs_dir) / PARTIALS / "notes.md"
    try:
        if notes_path.is_file():
            env.globals["notes"] = env.get_template(f"{PARTIALS}/notes.md").module
        template = env.from_string(_with_section_ends(markdown))
        return template.render(_end_section=_end_section)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.name or name
        raise TemplateError(f"page {name}: {where}, line {exc.lineno}: {exc.message}") from None
    except Exception as exc:  # a fact that raised, or a name that is not defined
        raise TemplateError(f"page {name}, line {_template_line(exc)}: {type(exc).__name__}: {exc}") from None


def _template_line(exc: BaseException) -> str:
    """The template's line where ``exc`` was raised, from Jinja's rewritten traceback."""
    tb, line = exc.__traceback__, "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line


def render_partial(name: str, docs_dir: str | Path | None = None, **facts: Any) -> str:
    """Markdown from the template ``docs/.partials/<name>`` over ``facts``: the words of a page that no hook
    renders (the notebook, docs/training.py, which mkdocs-jupyter reads from disk), shown by
    ``IPython.display.Markdown``. Strict and escaped like a page; ``docs_dir`` defaults to the checkout's docs/."""
    docs = Path(docs_dir) if docs_dir is not None else Path(__file__).resolve().parent.parent / "docs"
    env = environment(docs)
    try:
        return env.get_template(f"{PARTIALS}/{name}").render(**facts)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"partial {name}, line {exc.lineno}: {exc.message}") from None
    except Exception as exc:
        raise TemplateError(f"partial {name}: {type(exc).__name__}: {exc}") from None
