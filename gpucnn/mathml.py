"""LaTeX to MathML at build time, so math renders with no CDN and no JavaScript.

Used by pymdownx.superfences (```math fences) and pymdownx.inlinehilite
(`#!math ...`) in mkdocs.yml. Browsers render MathML Core natively.
"""

from __future__ import annotations

from typing import Any

from latex2mathml.converter import convert


def fence_format(source: str, language: str, css_class: str, options: dict, md: Any, **kwargs: Any) -> str:
    """A display equation."""
    return f'<div class="gpucnn-math">{convert(source.strip(), display="block")}</div>'


def inline_format(source: str, language: str, css_class: str, md: Any) -> str:
    """An inline equation."""
    return convert(source.strip())
