"""The site's budgets (issue 19): words a reader meets, words left in Python, and how page code is built.

Words on pages are counted on the built site (``tests.build.prose``): prose and captions shown by default.
Words in Python are counted in string literals of four words or more, docstrings and HTML tags left out,
an f-string's constant parts counted together, so a sentence cut around its values still counts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.build.prose import prose_words
from tests.conftest import ROOT

# The core path answers "why do GPUs train CNNs fast?" in at most 30 minutes of reading.
CORE_PATH = ["index.html", "gpu/index.html", "bandwidth/index.html", "parallelism/index.html",
             "fast-memory/index.html"]
CORE_PATH_WORDS = 7_000
# The 11 main pages (the Glossary, Reproduce, and pages added by later issues have budgets of their own).
MAIN_PAGES = [*CORE_PATH, "ann/index.html", "cnn/index.html", "training/index.html", "measuring/index.html",
              "summary/index.html", "results/index.html"]
MAIN_PAGES_WORDS = 12_000
OWN_BUDGETS = {"data-parallel/index.html": 2_500}

PAGE_LITERAL_WORDS = 1_500  # under gpucnn/pages/
PACKAGE_LITERAL_WORDS = 4_000  # all of gpucnn/: CLI and error messages stay in Python


def _words(site: Path, pages: list[str]) -> dict[str, int]:
    return {page: prose_words((site / page).read_text(encoding="utf-8")) for page in pages}


@pytest.mark.site
def test_the_core_path_and_the_main_pages_fit_their_word_budgets(built_site: Path) -> None:
    core = _words(built_site, CORE_PATH)
    main = _words(built_site, MAIN_PAGES)
    assert sum(core.values()) <= CORE_PATH_WORDS, f"core path: {sum(core.values())} words: {core}"
    assert sum(main.values()) <= MAIN_PAGES_WORDS, f"main pages: {sum(main.values())} words: {main}"
    for page, budget in OWN_BUDGETS.items():
        words = prose_words((built_site / page).read_text(encoding="utf-8"))
        assert words <= budget, f"{page}: {words} words, budget {budget}"


def test_the_word_count_leaves_out_code_tables_charts_and_collapsed_blocks() -> None:
    html = ("<article><h1>Title words here</h1><p>One two three.</p><pre>code code code</pre>"
            "<table><tr><td>cell cell</td></tr></table><svg><text>tick</text></svg>"
            "<details><summary>Method</summary><p>hidden hidden</p></details>"
            "<details open><summary>Shown</summary><p>four five</p></details>"
            '<p class="gpucnn-sources">Sources: a b c</p><li>six</li></article>')
    assert prose_words(html) == 6


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def literal_words(path: Path) -> int:
    """Words in string literals of four words or more (docstrings and HTML tags left out; an f-string's
    constant parts count together, so a sentence split around its numbers still counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstring_nodes(tree)
    inside_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    total = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            # its words are its constant parts joined: the values between them are numbers and names
            text = " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                and id(node) not in inside_fstring:
            text = node.value
        else:
            continue
        words = len(re.findall(r"[A-Za-z][A-Za-z'-]*", re.sub(r"<[^>]*>", " ", text)))  # markup is not words
        if words >= 4:
            total += words
    return total


def test_words_left_in_python_string_literals_fit_their_budgets() -> None:
    pages = {p.name: literal_words(p) for p in sorted((ROOT / "gpucnn" / "pages").glob("*.py"))}
    package = sum(literal_words(p) for p in (ROOT / "gpucnn").rglob("*.py"))
    biggest = sorted(pages.items(), key=lambda kv: -kv[1])[:5]
    assert sum(pages.values()) <= PAGE_LITERAL_WORDS, f"gpucnn/pages: {sum(pages.values())} words: {biggest}"
    assert package <= PACKAGE_LITERAL_WORDS, f"gpucnn: {package} words in string literals"


def test_literal_words_counts_fstrings_and_skips_docstrings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('"""A module docstring of many words here."""\n'
                      'def f(x):\n    """A function docstring of many words."""\n'
                      '    a = "short one"\n    b = "four words are here"\n'
                      '    return f"the copy runs at {x} GB/s"\n')
    assert literal_words(source) == 4 + 6  # the copy runs at GB s


# Not pages: the package's own file, and the helpers every page shares.
NOT_PAGES = {"__init__.py", "common.py"}


def _page_modules() -> list[Path]:
    return [p for p in sorted((ROOT / "gpucnn" / "pages").glob("*.py")) if p.name not in NOT_PAGES]


def test_page_code_never_reads_result_data() -> None:
    """Pages read typed results (``Result.typed``), converted at the result boundary, never ``.data[...]``."""
    found = []
    for path in _page_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "data":
                found.append(f"{path.name}:{node.lineno}")
    assert not found, "page code reads .data: " + ", ".join(found)


def test_no_page_imports_another_page() -> None:
    found = []
    for path in _page_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [a.name for a in node.names]
                if module in ("gpucnn.pages.common", "common") or ("common" in names and module == "gpucnn.pages"):
                    continue
                if node.level or module.startswith("gpucnn.pages") or (module == "gpucnn" and "pages" in names):
                    found.append(f"{path.name}:{node.lineno} imports {'.' * node.level}{module} {names}")
            elif isinstance(node, ast.Import):
                found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name.startswith("gpucnn.pages")]
    assert not found, "\n".join(found)
