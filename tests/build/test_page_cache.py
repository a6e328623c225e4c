"""The page cache (gpucnn.page_cache): an unchanged page is served without running its blocks, and reads as a
page rendered again would; any change, a re-measured result, GPUCNN_FRESH or a damaged entry renders it again."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpucnn import page_cache, results
from gpucnn.render import REUSED_NOTE, as_reused, provenance
from tests.build.sites import _build, _home, _runs, _small_site
from tests.conftest import ROOT
from tests.fakes import counted


@pytest.fixture(autouse=True)
def new_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new build: no results made or asked for in this process yet."""
    monkeypatch.setattr(results, "_BUILD", {})
    monkeypatch.setattr(results, "ASKED", [])
    monkeypatch.setattr(results, "_ENTRY_DIGESTS", {})


# --- unit tier: the pieces -------------------------------------------------------------------------------------


def test_a_measured_provenance_line_reads_as_reused_once_served() -> None:
    measured = results.run(counted, size=3)
    results._BUILD.clear()
    reused = results.run(counted, size=3)
    assert not measured.reused and reused.reused
    page = f"<p>{provenance(measured)}</p><p>Other text; measured 2026-01-01 by hand.</p>"
    assert as_reused(page) == f"<p>{provenance(reused)}</p><p>Other text; measured 2026-01-01 by hand.</p>"
    assert as_reused(as_reused(page)) == as_reused(page), "a reused line is marked twice"
    assert as_reused(page).count(REUSED_NOTE) == 1


def _entry(key: str = "k1") -> page_cache.CachedPage:
    toc = [{"level": 1, "id": "title", "name": "Title", "children": [
        {"level": 2, "id": "part", "name": "Part &amp; more", "children": []}]}]
    return page_cache.CachedPage(key=key, content="<h1 id=\"title\">Title</h1>", toc=toc, title="Title",
                                 anchors=["part", "title"], links_to_anchors={"other.md": {"a": "other.md#a"}},
                                 results=[["counted", "abc", "0" * 64]])


def test_a_saved_page_loads_back_under_its_key_only() -> None:
    page_cache.save("ann.md", _entry())
    assert page_cache.load("ann.md", "k1") == _entry()
    assert page_cache.load("ann.md", "k2") is None, "a page served under another key"
    assert page_cache.load("cnn.md", "k1") is None


def test_a_table_of_contents_round_trips_through_its_tokens() -> None:
    from mkdocs.structure.toc import get_toc

    tokens = _entry().toc
    assert page_cache.toc_tokens(get_toc(tokens)) == tokens


@pytest.mark.parametrize("damage", ["", "{not json", "[1, 2]", '{"key": "k1", "content": 3}', "[" * 100_000,
                                    '{"key": "k1", "content": "", "toc": ' + '[{"level": 1, "id": "a", "name": "a", '
                                    '"children": ' * 3000 + "[]" + "}]" * 3000 + '}',
                                    '{"key": "k1", "content": "", "toc": [{"id": 1}], "title": null, "anchors": [],'
                                    ' "links_to_anchors": null, "results": []}'])
def test_a_damaged_entry_renders_the_page_again_and_says_so(damage: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    page_cache.save("ann.md", _entry())
    path = next((results.cache_dir() / "pages").glob("*.json"))
    path.write_text(damage)
    assert page_cache.load("ann.md", "k1") is None
    if damage not in ("[1, 2]",):
        assert "is unreadable" in caplog.text or "is malformed" in caplog.text
    page_cache.save("ann.md", _entry())  # the next render replaces it
    assert page_cache.load("ann.md", "k1") == _entry()


def test_an_unwritable_cache_costs_speed_only(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", "/proc/nope")
    page_cache.save("ann.md", _entry())
    assert "page ann.md was not cached" in caplog.text
    assert page_cache.load("ann.md", "k1") is None


def test_a_served_page_registers_the_exact_entries_it_showed() -> None:
    shown = results.run(counted, size=5)
    digest = results.entry_digest(shown)
    assert digest is not None
    results._BUILD.clear()  # the next build
    again = results.reuse_entry("counted", shown.key, digest)
    assert again is not None and again.reused and again.measured_at == shown.measured_at
    assert [r.key for r in results.build_results()] == [shown.key], "results.json would miss it"
    results._BUILD.clear()
    path = results.cache_dir() / f"counted-{shown.key}.json"
    path.write_text(path.read_text().replace(shown.measured_at, "2020-01-01T00:00:00+00:00"))
    assert results.reuse_entry("counted", shown.key, digest) is None, "a changed entry served an old page"
    path.unlink()
    assert results.reuse_entry("counted", shown.key, digest) is None


def test_hashing_the_code_imports_nothing() -> None:
    # An unchanged rebuild hashes the code first: finding modules by importing them cost it scikit-learn's import.
    code = ("import sys; from gpucnn.results import code_hash; code_hash('gpucnn.pages.training'); "
            "print(sorted(m for m in ('sklearn', 'gpucnn.experiments', 'gpucnn.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_no_two_pages_share_a_markdown_exec_session() -> None:
    # A served page runs no block: a page that used another page's session would find it empty.
    owners: dict[str, set[str]] = {}
    for page in (ROOT / "docs").glob("*.md"):
        for session in re.findall(r'session="([^"]+)"', page.read_text()):
            owners.setdefault(session, set()).add(page.name)
    assert owners, "no sessions found"
    assert {s: p for s, p in owners.items() if len(p) > 1} == {}


@pytest.mark.site
def test_an_unchanged_page_is_served_and_reads_as_rendered_again(tmp_path: Path) -> None:
    config, counter = _small_site(tmp_path)
    first = _build(tmp_path, config)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _runs(counter) == 1 and "tiny(size=3) measured in" in first.stderr
    rendered = _home(tmp_path)
    assert REUSED_NOTE not in rendered
    second = _build(tmp_path, config)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _runs(counter) == 1, "an unchanged page ran its block again"
    assert "page index.md served from the page cache" in second.stderr
    assert "2 pages served from the page cache, 0 rendered" in second.stderr
    # What a third, rendering build would print: the same page, its provenance line marked as reused.
    served = _home(tmp_path)
    assert served == as_reused(rendered) and REUSED_NOTE in served
    assert 'href="#measured-here"' in served, "the table of contents is lost"
    doc = json.loads((tmp_path / "site" / "results.json").read_text())
    assert [r["experiment"] for r in doc["results"]] == ["tiny"], "results.json lost the served page's result"


@pytest.mark.site
@pytest.mark.parametrize("change", ["page", "snippet", "partial", "fresh", "damaged entry", "re-measured result",
                                    "command-line option"])
def test_a_change_renders_the_page_again(tmp_path: Path, change: str) -> None:
    config, counter = _small_site(tmp_path)
    assert _build(tmp_path, config).returncode == 0
    env, options = {}, []
    if change == "page":
        index = tmp_path / "docs" / "index.md"
        index.write_text(index.read_text() + "\nOne more line.\n")
    elif change == "snippet":
        (tmp_path / "snippets" / "note.md").write_text("A changed note.\n")
    elif change == "partial":  # the words templated pages share
        (tmp_path / "docs" / ".partials" / "notes.md").write_text("{% macro hi() %}Hello{% endmacro %}\n")
    elif change == "fresh":
        env = {"GPUCNN_FRESH": "1"}
    elif change == "damaged entry":
        for entry in (tmp_path / "cache" / "pages").glob("*.json"):
            entry.write_text(entry.read_text()[:50])
    elif change == "command-line option":  # links are made otherwise: mkdocs.yml is unchanged, the config is not
        options = ["--no-directory-urls"]
    else:
        next((tmp_path / "cache").glob("tiny-*.json")).unlink()
    proc = _build(tmp_path, config, *options, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _runs(counter) == 2, f"a {change} served the old page"
    if change == "damaged entry":
        assert "is unreadable" in proc.stderr
    if change == "snippet":
        assert "A changed note." in _home(tmp_path)
    assert _build(tmp_path, config, *options).returncode == 0
    assert _runs(counter) == 2, "the page rendered again was not stored"


@pytest.mark.site
def test_a_served_page_still_has_its_links_checked(tmp_path: Path) -> None:
    config, counter = _small_site(tmp_path)
    assert _build(tmp_path, config).returncode == 0
    (tmp_path / "docs" / "other.md").write_text("# Other\n\nThe section is gone.\n")
    proc = _build(tmp_path, config)
    assert _runs(counter) == 1
    assert proc.returncode != 0
    assert "far-section" in proc.stderr


@pytest.mark.site
@pytest.mark.parametrize(("fault", "said"), [
    ('\n```python exec="on"\nraise RuntimeError("broken on purpose")\n```\n', "broken on purpose"),
    # MkDocs warns of a broken link while the page renders, and strict mode fails the build only at its end:
    # a page stored by that build would be served to the next, which would then pass.
    ("\nSee [a page that is not there](missing.md).\n", "missing.md"),
], ids=["raising block", "broken link"])
def test_a_page_that_fails_the_build_fails_every_build(tmp_path: Path, fault: str, said: str) -> None:
    config, counter = _small_site(tmp_path)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + fault)
    for _ in range(2):
        proc = _build(tmp_path, config)
        assert proc.returncode != 0 and said in proc.stderr
    assert _runs(counter) == 2, "the failed page was served from the cache"


def test_an_entry_names_each_result_with_the_digest_of_the_bytes_the_page_showed() -> None:
    shown = results.run(counted, size=2)
    path = results.cache_dir() / f"counted-{shown.key}.json"
    written = hashlib.sha256(path.read_bytes()).hexdigest()
    assert results.entry_digest(shown) == written
    # Another build (GPUCNN_FRESH, or one running beside this one) replaces the entry before the page is stored:
    # the page still names what it showed, so a later build renders it again instead of pairing it with the new one.
    path.write_text(path.read_text().replace(shown.measured_at, "2020-01-01T00:00:00+00:00"))
    assert results.entry_digest(shown) == written
    results._BUILD.clear()
    assert results.reuse_entry("counted", shown.key, written) is None
    results._BUILD.clear()
    again = results.run(counted, size=2)  # read from the cache: the digest of what was read
    assert again.reused and results.entry_digest(again) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_page_is_not_served_beside_a_result_this_build_measured_again() -> None:
    # A page rendered earlier in this build measured the experiment again (its entry was gone): a page that
    # showed the old figures must render again, not be served beside the new ones in results.json.
    old = results.run(counted, size=6)
    old_digest = results.entry_digest(old)
    assert old_digest is not None
    results._BUILD.clear()
    (results.cache_dir() / f"counted-{old.key}.json").unlink()
    new = results.run(counted, size=6)
    assert not new.reused and results.entry_digest(new) != old_digest
    assert results.reuse_entry("counted", old.key, old_digest) is None
    assert results.reuse_entry("counted", new.key, results.entry_digest(new) or "") is new


def test_a_result_whose_entry_was_not_written_has_no_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUCNN_CACHE_DIR", "/proc/nope")
    assert results.entry_digest(results.run(counted, size=2)) is None  # its page is then not stored


def test_a_config_file_that_cannot_be_read_builds_without_the_page_cache(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gpucnn.build.cached_pages import PageCache

    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    assert PageCache.keyed({"config_file_path": str(tmp_path / "gone.yml")}, "quick", "no archive").site is None
    assert "no page cache" in caplog.text and "gone.yml" in caplog.text


@pytest.mark.site
def test_a_page_rendered_by_a_verbose_build_still_has_its_anchor_links_checked(tmp_path: Path) -> None:
    # A verbose build keeps no record of a page's links to anchors (MkDocs skips it at DEBUG level).
    config, counter = _small_site(tmp_path)
    assert _build(tmp_path, config, "--verbose").returncode == 0
    assert _build(tmp_path, config).returncode == 0
    assert _runs(counter) == 2, "a page rendered by a verbose build was stored"
    (tmp_path / "docs" / "other.md").write_text("# Other\n\nThe section is gone.\n")
    proc = _build(tmp_path, config)
    assert _runs(counter) == 2  # served, and its link to the gone anchor still checked
    assert proc.returncode != 0 and "far-section" in proc.stderr


@pytest.mark.site
def test_a_page_reads_the_same_whichever_pages_before_it_were_served(tmp_path: Path) -> None:
    # markdown-exec numbers the ids in blocks' output across a build; a served page must not shift the next page's.
    config, _ = _small_site(tmp_path)
    other = tmp_path / "docs" / "other.md"
    other.write_text(other.read_text() + '\n```python exec="on" session="other"\nprint("### Printed heading")\n```\n')
    assert _build(tmp_path, config).returncode == 0
    rendered_with_home = (tmp_path / "site" / "other" / "index.html").read_text()
    other.write_text(other.read_text() + "\nOne more line.\n")
    proc = _build(tmp_path, config)
    assert proc.returncode == 0 and "page index.md served from the page cache" in proc.stderr
    rendered_after_served = (tmp_path / "site" / "other" / "index.html").read_text()
    ids = re.compile(r'id="([^"]*printed-heading)"')
    assert ids.findall(rendered_with_home) and ids.findall(rendered_with_home) == ids.findall(rendered_after_served)
