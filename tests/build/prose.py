"""Words of prose and captions a reader sees by default on a built page (the site's word budgets).

Counted: paragraphs, list items, admonitions and captions inside the page's article. Not counted: headings,
code, tables, charts, the sources lines, and collapsed blocks (``<details>`` without ``open``).
Run as a script on built pages to see their counts: ``python -m tests.build.prose site/*/index.html``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

_DROPPED = ["pre", "table", "svg", "script", "style", "h1", "h2", "h3", "h4", "h5", "h6", "nav", "form"]


def prose_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    for tag in article.find_all(_DROPPED):
        tag.decompose()
    for tag in article.find_all("details"):
        if tag.has_attr("open"):
            summary = tag.find("summary")
            if summary:
                summary.decompose()
        else:
            tag.decompose()
    # .clipboard-copy-txt: the notebook keeps a hidden copy of each code cell for its copy button.
    for tag in article.select(".gpucnn-sources, .headerlink, .md-source-file, .jp-InputPrompt, .jp-OutputPrompt, "
                              ".clipboard-copy-txt"):
        tag.decompose()
    return " ".join(article.get_text(" ").split())


def prose_words(html: str) -> int:
    return len(re.findall(r"[A-Za-z0-9][\w'’.,%/×-]*", prose_text(html)))


if __name__ == "__main__":
    total = 0
    for name in sys.argv[1:]:
        n = prose_words(Path(name).read_text(encoding="utf-8"))
        total += n
        print(f"{n:6d}  {name}")
    print(f"{total:6d}  total")
