"""Pages as Jinja templates over facts (gpucnn.templating): errors name the page and line, strings are escaped,
sources lines close every section, and a build fails rather than print template syntax."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gpucnn import sources
from gpucnn.templating import TemplateError, render_page
from tests.conftest import ROOT, build_site


@pytest.fixture(autouse=True)
def _no_page_left_begun():
    yield
    sources.begin_page(None)


def _docs(tmp_path: Path, notes: str | None = None) -> Path:
    docs = tmp_path / "docs"
    (docs / ".partials").mkdir(parents=True)
    (docs / ".partials" / "notes.md").write_text(notes or (ROOT / "docs/.partials/notes.md").read_text())
    return docs


@pytest.mark.parametrize("text, line, what", [
    ("# T\n\nok\n\n{{ no_such_fact }}\n", 5, "'no_such_fact' is undefined"),
    ("# T\n\n{{ pages.no_such_page.facts() }}\n", 3, "no page module gpucnn.pages.no_such_page"),
    ("# T\n\n\n{{ None | num }}\n", 4, "a number filter was given no value"),
])
def test_an_undefined_name_or_value_names_the_page_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_page(text, "demo.md", _docs(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"page demo.md, line {line}: UndefinedError: "), message
    assert what in message and "\n" not in message


def test_a_syntax_error_names_the_page_and_line(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"^page demo\.md: .*line 4: "):
        render_page("# T\n\ntext\n{% if %}\n", "demo.md", _docs(tmp_path))


def test_a_raising_fact_names_the_page_line_and_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gpucnn.pages.summary as summary

    def broken() -> None:
        raise RuntimeError("the fact failed")

    monkeypatch.setattr(summary, "broken", broken, raising=False)
    with pytest.raises(TemplateError, match=r"^page demo\.md, line 2: RuntimeError: the fact failed$"):
        render_page("# T\n{{ pages.summary.broken() }}\n", "demo.md", _docs(tmp_path))


def test_strings_are_escaped_and_numbers_use_the_site_filters(tmp_path: Path) -> None:
    out = render_page("{{ label }}: {{ 3350.4 | num }} GB/s, {{ 2.345 | x }}, {{ 0.0071 | x }}, "
                      "{{ 1.5e-6 | time }}, {{ 1048576 | bytes }}\n".replace("{{ label }}", "{{ '<b>x</b> & y' }}"),
                      "demo.md", _docs(tmp_path))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in out and "<b>" not in out
    assert "3,350 GB/s, 2.3x, 0.0071x, 1.5 µs, 1 MiB" in out


def test_heading_anchors_and_jinja_comments(tmp_path: Path) -> None:
    out = render_page("# T\n\n## Timing {#timing}\n\n{## a writer's note ##}text\n", "demo.md", _docs(tmp_path))
    assert "## Timing {#timing}" in out and "writer" not in out and "text" in out


def test_every_section_ends_with_a_sources_block_and_fences_are_not_sections(tmp_path: Path) -> None:
    page = "# T\n\nintro\n\n## One\n\n```python\n## not a heading\n```\n\n## Two\n\nend\n"
    out = render_page(page, "demo.md", _docs(tmp_path))
    blocks = [i for i in range(3) if f"print(section_sources({i}))" in out]
    assert blocks == [0, 1, 2]
    assert out.index("section_sources(1)") < out.index("## Two") < out.index("section_sources(2)")
    assert "## not a heading" in out and "section_sources(3)" not in out


def test_facts_a_template_uses_are_named_in_their_sections_sources_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gpucnn.pages.summary as summary
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.render import section_sources
    from gpucnn.results import run

    result = run(copy_bandwidth, device="cpu")

    def fact() -> int:  # what a page's fact function does: note what it stands on, return the fact
        sources.note(result)
        return 8

    monkeypatch.setattr(summary, "fact", fact, raising=False)
    sources.begin_page("demo.md")
    out = render_page("# T\n\n## One\n\nn = {{ pages.summary.fact() }}\n\n## Two\n", "demo.md", _docs(tmp_path))
    assert "n = 8" in out
    assert section_sources(0) == ""
    line = section_sources(1)
    assert 'data-source="live"' in line and "measured" in line
    assert section_sources(2) == "" and section_sources(1) == "", "a section's sources are printed once"


@pytest.mark.parametrize("state", ["archived", "none"])
def test_the_no_gpu_note_is_said_once_a_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    monkeypatch.setattr(sources, "live_has_accelerator", lambda: False)
    monkeypatch.setattr(sources, "_archive", lambda: ("a record",) if state == "archived" else ())
    sources.begin_page("demo.md")
    out = render_page("# T\n\n{{ notes.no_gpu() }}\n\n## Two\n\n{{ notes.no_gpu() }}\n", "demo.md", _docs(tmp_path))
    assert out.count('!!! note "No GPU in this build"') == 1
    assert ("archived" in out) == (state == "archived")


def _site(tmp_path: Path, page: str) -> Path:
    docs = _docs(tmp_path)
    (docs / "index.md").write_text(page)
    config = {"site_name": "t", "site_url": "https://gpucnn.github.io/gpucnn/", "strict": True,
              "theme": {"name": "material", "font": False}, "nav": ["index.md"],
              "hooks": [str(ROOT / "gpucnn" / "mkdocs_hooks.py")],
              "plugins": [{"markdown-exec": {"languages": ["python"]}}],
              "markdown_extensions": ["admonition", "pymdownx.superfences"]}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    return tmp_path / "mkdocs.yml"


def _build(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return build_site(tmp_path / "site", tmp_path / "cache", config=config,
                      extra_env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})


@pytest.mark.site
def test_a_template_error_fails_the_build_in_one_line_and_publishes_nothing(tmp_path: Path) -> None:
    config = _site(tmp_path, "# Home\n\nFine.\n\n## Broken\n\n{{ missing_fact }}\n")
    proc = _build(tmp_path, config)
    assert proc.returncode != 0
    assert "page index.md, line 7: UndefinedError: 'missing_fact' is undefined" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "site" / "index.html").exists()


@pytest.mark.site
def test_a_templated_page_prints_its_words_and_sources_and_no_template_syntax(tmp_path: Path) -> None:
    config = _site(tmp_path, "# Home\n\n## Numbers\n\n{% for v in [1.5, 2500] %}\n- {{ v | num }} GB/s\n"
                   "{% endfor %}\n")
    proc = _build(tmp_path, config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tmp_path / "site" / "index.html").read_text()
    assert "<li>1.5 GB/s</li>" in html and "<li>2,500 GB/s</li>" in html
    assert "{%" not in html and "{{" not in html and "section_sources" not in html


def test_a_line_of_words_ending_in_a_block_tag_keeps_its_space(tmp_path: Path) -> None:
    """'the arithmetic{% endif %}' then '(H200: ...' on the next line read 'arithmetic(H200:' once; and a
    line of words shown on a loop's first pass only must leave no blank line (a paragraph break) after it."""
    out = render_page("# T\n\nslower than the arithmetic{% if True %}{% endif %}\n(H200: 5x) as many\n"
                      "{% for i in [1, 2] %}\n- item {{ i }}\n{% endfor %}\nend\n\n"
                      "{% for g in ['a', 'b'] %}\n{% if loop.first %}On the GPUs: {% endif %}\n{{ g }}{{ ';' if not loop.last else '.' }}\n{% endfor %}\n",
                      "demo.md", _docs(tmp_path))
    assert "the arithmetic (H200: 5x)" in " ".join(out.split())
    assert "- item 1\n- item 2\nend" in out  # lines of tags alone still leave no line behind
    paragraph = out.split("end\n\n", 1)[1].split("\n\n")[0]
    assert " ".join(paragraph.split()) == "On the GPUs: a; b."
    # words ending in a tag, tag-only lines, then words starting with a tag; and a paragraph that ends there
    docs = tmp_path / "docs"
    out = render_page("# T\n\nit is 2x.{% if True %}{% endif %}\n{% if False %}\nx\n{% endif %}\n"
                      "{% if True %}Far above{% endif %}\n\nwords{% if True %}{% endif %}\n\nNext\n", "demo.md", docs)
    assert "it is 2x. Far above" in out and "words\n\nNext" in out
    # two such lines in a row (macro definitions): both still defined
    out = render_page("{% macro a() %}A{% endmacro %}\n{% macro b() %}B{% endmacro %}\n{{ a() }}{{ b() }}\n",
                      "demo.md", docs)
    assert "AB" in out
    with pytest.raises(TemplateError, match=r"line 4: "):  # line numbers stay the page's
        render_page("# T\n\nwords{% if True %}{% endif %}\n{{ nothing }}\n", "demo.md", docs)


@pytest.mark.parametrize("text, message", [
    ("{{ missing_fact }}\n", r"^partial broken\.md: UndefinedError: 'missing_fact' is undefined$"),
    ("text\n{% if %}\n", r"^partial broken\.md, line 2: "),
])
def test_a_broken_partial_fails_in_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    """The notebook's words (render_partial): its cell raises, so the notebook page fails the build."""
    from gpucnn.templating import render_partial

    docs = _docs(tmp_path)
    (docs / ".partials" / "broken.md").write_text(text)
    with pytest.raises(TemplateError, match=message):
        render_partial("broken.md", docs_dir=docs)
