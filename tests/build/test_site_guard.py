"""The build's last check: no request leaves the site, and no build-machine path is in it."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpucnn.site_guard import (
    SHOWS_STDERR_TAG,
    build_machine_paths,
    check_site,
    leaked_paths,
    notebook_stderr_cells,
    offsite_urls_in_css,
    offsite_urls_in_html,
    offsite_urls_in_js,
)
from tests.conftest import ROOT, build_site

FIXTURES = Path(__file__).parents[1] / "fixtures"
HOST = "gpucnn.github.io"
MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@4.1.3/tex-mml-chtml.js"


def test_mkdocs_jupyter_027_mathjax_loader_is_flagged() -> None:
    # As built on an H200 with Python 3.12: the URL hides in an HTML-escaped data- attribute.
    html = (FIXTURES / "training-mkdocs-jupyter-0.27.html").read_text()
    assert offsite_urls_in_html(html, HOST) == [MATHJAX]


def test_the_hook_removes_the_mathjax_loader_from_every_page() -> None:
    from gpucnn import mkdocs_hooks

    html = (FIXTURES / "training-mkdocs-jupyter-0.27.html").read_text()

    page = SimpleNamespace(file=SimpleNamespace(src_uri="index.md"))
    cleaned = mkdocs_hooks.on_post_page(html, page=page)
    assert offsite_urls_in_html(cleaned, HOST) == []
    assert "data-mkdocs-jupyter-mathjax" not in cleaned
    assert cleaned.rstrip().endswith("</html>")


@pytest.mark.parametrize("snippet", [
    '<script src="https://cdn.example.com/x.js"></script>',
    '<script src="//cdn.example.com/x.js"></script>',
    '<img src="HTTPS://img.example.com/a.png">',
    '<img srcset="a.png 1x, https://img.example.com/b.png 2x">',
    '<div data-config="{&quot;url&quot;: &quot;https://cdn.example.com/m.js&quot;}"></div>',
    '<link rel="stylesheet" href="https://fonts.example.com/css">',
    '<link rel="preconnect" href="//fonts.example.com">',
    '<iframe src="https://www.example.com/embed"></iframe>',
    '<div style="background: url(//img.example.com/bg.png)"></div>',
    '<style>@import "https://cdn.example.com/theme.css";</style>',
    '<style>.a { background: url("https://img.example.com/a.png") }</style>',
    '<script>fetch("https://api.example.com/v1")</script>',
    '<script>var u = "https:\\/\\/cdn.example.com\\/a.js";</script>',
    '<svg><image href="https://img.example.com/a.png"/></svg>',
    '<form action="https://forms.example.com/post"></form>',
    '<pre class="mermaid">graph LR; a-->b</pre>',
])
def test_an_offsite_reference_is_flagged(snippet: str) -> None:
    assert offsite_urls_in_html(f"<html><body>{snippet}</body></html>", HOST), snippet


@pytest.mark.parametrize("snippet", [
    '<a href="https://pytorch.org/docs/">torch</a>',
    '<link rel="canonical" href="https://elsewhere.example.com/gpucnn/">',
    '<link rel="alternate" type="application/rss+xml" href="https://feeds.example.com/rss">',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"></svg>',
    '<math xmlns="http://www.w3.org/1998/Math/MathML"></math>',
    '<dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/>',
    "<style>.i { background: url(\"data:image/svg+xml,%3csvg xmlns='http://www.w3.org/2000/svg'%3e%3c/svg%3e\") }</style>",
    '<script src="https://gpucnn.github.io/gpucnn/assets/x.js"></script>',
    '<script src="../assets/x.js"></script>',
    "<script>// a comment, then a // b\nvar x = a //b\n</script>",
    "<p>Run pip install --index-url https://download.pytorch.org/whl/cpu torch</p>",
    "<!-- https://cdn.example.com/in-a-comment.js -->",
])
def test_links_namespaces_and_own_host_pass(snippet: str) -> None:
    assert offsite_urls_in_html(f"<html><body>{snippet}</body></html>", HOST) == [], snippet


def test_stylesheet_rules() -> None:
    css = ("/* https://fontawesome.com License */ .a{background:url(\"data:image/svg+xml,<svg xmlns='x'>"
           "<!-- https://fontawesome.com --></svg>\")} .b{background:url(/assets/b.png)}")
    assert offsite_urls_in_css(css, HOST) == []
    assert offsite_urls_in_css('@import "https://cdn.example.com/t.css";', HOST) == ["https://cdn.example.com/t.css"]
    assert offsite_urls_in_css(".a{src:url(//fonts.example.com/f.woff2)}", HOST) == ["//fonts.example.com/f.woff2"]


def test_script_file_rules() -> None:
    # A bundle's strings (licence links, loaders for conditions that never hold here) are not requests;
    # a URL handed to a request is.
    assert offsite_urls_in_js('console.warn("see https://bit.ly/x"); var l="http://lunrjs.com";', HOST) == []
    assert offsite_urls_in_js('fetch("https://api.example.com/a")', HOST) == ["https://api.example.com/a"]
    assert offsite_urls_in_js('s.src = "//cdn.example.com/a.js"', HOST) == ["//cdn.example.com/a.js"]
    assert offsite_urls_in_js('import("https://cdn.example.com/m.mjs")', HOST) == ["https://cdn.example.com/m.mjs"]
    assert offsite_urls_in_js("importScripts('https://cdn.example.com/w.js')", HOST) == ["https://cdn.example.com/w.js"]


def test_leaked_paths_match_whole_paths_outside_inline_images() -> None:
    paths = ["/opt/torch/.venv", "/tmp"]
    text = "warning from /opt/torch/.venv/lib/python3.12/site-packages/torch/x.py and /tmpfile, a/tmp"
    assert leaked_paths(text, paths) == ["/opt/torch/.venv"]
    assert leaked_paths("saved to /tmp/x.json", paths) == ["/tmp"]
    png = "iVBORw0KGgo/tmp/A+" + base64.b64encode(b"chart").decode()  # base64 may hold "/tmp" by chance
    assert leaked_paths(f'<img src="data:image/png;base64,{png}">', paths) == []


def test_build_machine_paths_name_the_environment(tmp_path: Path) -> None:
    paths = build_machine_paths(tmp_path)
    assert sys.prefix.rstrip("/") in paths
    assert str(tmp_path) in paths
    assert "/usr/local" in paths
    assert any("site-packages" in p for p in paths)
    assert "/" not in paths


def test_check_site_names_each_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<script src="https://cdn.example.com/x.js"></script>')
    (tmp_path / "results.json").write_text('{"path": "/opt/build/.venv/lib"}')
    (tmp_path / "ok.html").write_text('<a href="https://example.com">x</a>')
    problems = check_site(tmp_path, HOST, ["/opt/build/.venv"])
    assert problems == {
        tmp_path / "a" / "index.html": ["off-site URL https://cdn.example.com/x.js"],
        tmp_path / "results.json": ["build-machine path /opt/build/.venv"],
    }


def _mini_site(tmp_path: Path, page: str) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(page)
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: mini\nsite_url: https://{HOST}/gpucnn/\nstrict: true\n"
                      f"hooks:\n  - {ROOT / 'gpucnn' / 'mkdocs_hooks.py'}\n"
                      "theme:\n  name: material\n  font: false\n"
                      "plugins:\n  - markdown-exec:\n      languages: [python]\nmarkdown_extensions:\n  - md_in_html\n  - pymdownx.superfences\n")
    return config


@pytest.mark.site
def test_an_offsite_script_fails_the_build_naming_page_and_url(tmp_path: Path) -> None:
    config = _mini_site(tmp_path, '# Home\n\n<script src="https://cdn.example.com/tracker.js"></script>\n')
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode != 0
    assert "index.html: off-site URL https://cdn.example.com/tracker.js" in proc.stderr
    assert not (tmp_path / "site" / "index.html").exists(), "the offending page must not stay in site/"


def test_notebook_cells_with_stderr_are_named() -> None:
    # The H200 page: torch.export's "buffer is not writable" and inductor's TF32 advice, each in a cell's stderr.
    html = (FIXTURES / "training-mkdocs-jupyter-0.27.html").read_text()
    assert notebook_stderr_cells(html) == ["code cell 2: display(HTML(page.split_table()))",
                                           "code cell 7: display(page.throughput_chart())"]


def test_a_cell_tagged_to_show_stderr_is_allowed() -> None:
    stderr = '<div class="jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr"><pre>w</pre></div>'
    cell = ('<div class="jp-Cell jp-CodeCell jp-Notebook-cell {tags}"><div class="jp-InputArea jp-Cell-inputArea">'
            "<pre>print(1)</pre></div>" + stderr + "</div>")
    assert notebook_stderr_cells(cell.format(tags=f"celltag_{SHOWS_STDERR_TAG}")) == []
    assert notebook_stderr_cells(cell.format(tags="celltag_other")) == ["code cell 1: print(1)"]


def test_torch_toolkit_guess_is_not_logged() -> None:
    # On a CUDA build of torch without a GPU, importing torch.utils.benchmark logs this through
    # torch.utils.cpp_extension's logger; importing gpucnn drops that one line and nothing else.
    code = ("import logging, gpucnn; log = logging.getLogger('torch.utils.cpp_extension');"
            "log.warning(\"No CUDA runtime is found, using CUDA_HOME='%s'\", '/usr/local');"
            "log.warning('another warning')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CUDA_HOME" not in proc.stderr and "/usr/local" not in proc.stderr
    assert "another warning" in proc.stderr


@pytest.mark.site
def test_a_warning_in_a_block_fails_the_build_naming_the_page(tmp_path: Path) -> None:
    # The warning carries a site-packages path, as torch's did on the H200; it must reach no page.
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    config = _mini_site(tmp_path, '# Home\n\n```python exec="on"\nimport warnings\n'
                                  f'warnings.warn("from {site_packages}/torch/x.py")\nprint("figure")\n```\n')
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode != 0
    assert "page index.md: a warning was raised" in proc.stderr
    assert "UserWarning" in proc.stderr
    _assert_no_build_machine_path(tmp_path / "site", tmp_path)


@pytest.mark.site
def test_a_printed_build_machine_path_fails_the_build(tmp_path: Path) -> None:
    config = _mini_site(tmp_path, '# Home\n\n```python exec="on"\nimport sys\nprint("built with", sys.prefix)\n```\n')
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode != 0
    assert f"index.html: build-machine path {sys.prefix}" in proc.stderr
    _assert_no_build_machine_path(tmp_path / "site", tmp_path)


def _assert_no_build_machine_path(site_dir: Path, checkout: Path) -> None:
    paths = build_machine_paths(checkout)
    for f in site_dir.rglob("*"):
        if f.suffix in (".html", ".json"):
            assert leaked_paths(f.read_text(), paths) == [], f


def test_warnings_and_log_warnings_during_a_page_are_recorded() -> None:
    import logging
    import warnings

    from gpucnn.build.guards import WarningsDuringRender

    with WarningsDuringRender() as recorder:
        warnings.warn("a figure made under a warning", UserWarning, stacklevel=1)
        warnings.warn("an old API", DeprecationWarning, stacklevel=1)   # a library's deprecation: logged only
        logging.getLogger("torch.utils.cpp_extension").warning("something torch says")
        logging.getLogger("nbclient.client").warning("kernel machinery")  # not page code
        logging.getLogger("gpucnn.x").info("only info")
    assert len(recorder.found) == 2
    assert recorder.found[0].startswith("torch.utils.cpp_extension: something torch says")
    assert recorder.found[1].startswith("UserWarning: a figure made under a warning (test_site_guard.py:")
    # and everything is put back
    assert not any(type(h).__name__ == "_Handler" for h in logging.getLogger().handlers)


def test_a_build_that_errors_leaves_no_path_bearing_page(tmp_path: Path) -> None:
    # A page written before the error, with a traceback naming this interpreter's files.
    from gpucnn.build.state import Build, build_error

    site_dir = tmp_path / "site"
    (site_dir / "results").mkdir(parents=True)
    page = site_dir / "results" / "index.html"
    page.write_text(f'<pre>File "{sys.prefix}/lib/python3/x.py", line 1</pre>')
    (site_dir / "index.html").write_text("<p>fine</p>")
    config = {"site_dir": str(site_dir), "config_file_path": str(tmp_path / "mkdocs.yml"),
              "site_url": f"https://{HOST}/gpucnn/"}
    build_error(Build(config))  # a build under way (no caches, no share folder) that fails
    assert not page.exists()
    assert (site_dir / "index.html").exists()
