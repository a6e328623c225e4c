"""HTML rewriting: links printed by executed blocks, and dependencies' scripts that would load from a CDN."""

from __future__ import annotations

import posixpath
import re
from typing import Any

# Markdown printed by an executed block is rendered by markdown-exec, which does
# not turn `[x](other.md#a)` into a page URL as MkDocs does: do it here. A target
# that is not a page is left as is, for tests/test_links.py to report.
_MD_HREF = re.compile(r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)([^"#?]+\.md)(#[^"]*)?"')

# nbconvert's page template loads MathJax and mermaid from a CDN. No request
# may leave the site, and the notebook has neither math nor diagrams.
_NOTEBOOK_CDN_SCRIPTS = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->"
    r"|<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>",
    re.S,
)

# mkdocs-jupyter 0.27 (what Python >= 3.12 resolves) adds, in its own
# on_post_page, a MathJax loader to every page, with a CDN URL in an escaped
# data- attribute; 0.26 has none. No page here has math for MathJax (gpucnn
# renders it to MathML at build time), so the loader goes. The hooks'
# on_post_page runs after every plugin's (lowest priority), wherever a plugin
# puts its own.
_JUPYTER_MATHJAX_LOADER = re.compile(r"<script\b[^>]*\bdata-mkdocs-jupyter-mathjax\b[^>]*>.*?</script>\s*", re.S)


def rewrite_printed_links(html: str, page: Any, files: Any) -> str:
    def fix(m: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), m.group(1)))
        target = files.get_file_from_path(path)
        if target is None:
            return m.group(0)
        return f'href="{target.url_relative_to(page.file)}{m.group(2) or ""}"'

    return _MD_HREF.sub(fix, html)


def without_cdn_scripts(output: str, is_notebook: bool) -> str:
    if is_notebook:
        output = _NOTEBOOK_CDN_SCRIPTS.sub("", output)
    return _JUPYTER_MATHJAX_LOADER.sub("", output)
