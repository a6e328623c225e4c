"""What an unchanged rebuild skips: the site guard's scan of files it found clean before (gpucnn.build.site_check.CleanFiles).

A file is skipped only where its exact text passed the same checks: a changed file, a file with a problem,
another site host or other build-machine paths are scanned again; a damaged memory scans everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucnn import site_guard
from gpucnn.build import notebook, site_check
from gpucnn.results import cache_dir

HOST = "gpucnn.github.io"


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the guard scans (reads for URLs), in order."""
    names: list[str] = []
    html_check, json_check = site_guard.offsite_urls_in_html, site_guard.leaked_paths

    def html(text: str, host: str | None) -> list[str]:
        names.append(text.split("<title>")[1].split("</title>")[0] if "<title>" in text else "?")
        return html_check(text, host)

    monkeypatch.setattr(site_guard, "offsite_urls_in_html", html)
    monkeypatch.setattr(site_guard, "leaked_paths", json_check)
    return names


def _site(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_text("<title>a</title><p>fine</p>")
    (site / "b.html").write_text("<title>b</title><p>fine too</p>")
    config = {"site_dir": str(site), "config_file_path": str(tmp_path / "mkdocs.yml"),
              "site_url": f"https://{HOST}/gpucnn/"}
    return site, config


def test_an_unchanged_file_is_not_scanned_again_and_a_changed_one_is(tmp_path: Path, scanned: list[str]) -> None:
    site, config = _site(tmp_path)
    assert site_check.remove_unpublishable(config) == []
    assert scanned == ["a", "b"]
    assert site_check.remove_unpublishable(config) == []
    assert scanned == ["a", "b"], "an unchanged file was scanned again"
    (site / "b.html").write_text('<title>b</title><script src="https://cdn.example.com/x.js"></script>')
    assert site_check.remove_unpublishable(config) == ["b.html: off-site URL https://cdn.example.com/x.js"]
    assert scanned == ["a", "b", "b"]
    assert not (site / "b.html").exists()


def test_a_file_with_a_problem_is_found_in_every_build(tmp_path: Path, scanned: list[str]) -> None:
    import sys

    site, config = _site(tmp_path)
    leak = f'<title>c</title><pre>File "{sys.prefix}/lib/x.py"</pre>'
    for _ in range(2):
        (site / "c.html").write_text(leak)
        lines = site_check.remove_unpublishable(config)
        assert lines and lines[0].startswith("c.html: build-machine path ")
        assert not (site / "c.html").exists()
    assert scanned.count("c") == 2


def test_another_host_or_other_paths_scan_everything_again(tmp_path: Path, scanned: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, config = _site(tmp_path)
    site_check.remove_unpublishable(config)
    site_check.remove_unpublishable({**config, "site_url": "https://example.org/"})
    assert scanned == ["a", "b"] * 2
    monkeypatch.setattr(site_guard, "build_machine_paths", lambda checkout: ["/somewhere/else"])
    site_check.remove_unpublishable(config)
    assert scanned == ["a", "b"] * 3


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"a": 1}', b"\xff\xfe"])
def test_a_damaged_memory_scans_everything(tmp_path: Path, scanned: list[str], damage: bytes) -> None:
    _, config = _site(tmp_path)
    site_check.remove_unpublishable(config)
    (cache_dir() / "site-guard.json").write_bytes(damage)
    assert site_check.remove_unpublishable(config) == []
    assert scanned == ["a", "b"] * 2
    assert site_check.remove_unpublishable(config) == []  # and it was written again
    assert scanned == ["a", "b"] * 2


def test_an_unwritable_cache_scans_every_time(tmp_path: Path, scanned: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(blocker))
    _, config = _site(tmp_path)
    for _ in range(2):
        assert site_check.remove_unpublishable(config) == []
    assert scanned == ["a", "b"] * 2


# --- archive: a record's text that passed the schema and path checks is not checked again ---


@pytest.fixture
def schema_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the schema checks (each record checked runs one), leaving them as they are."""
    from gpucnn import archive

    counted: list[int] = []
    real = archive._validator()

    class Counting:
        def iter_errors(self, doc: object) -> object:
            counted.append(1)
            return real.iter_errors(doc)

    monkeypatch.setattr(archive, "_validator", lambda: Counting())
    return counted


def _a_record() -> str:
    (path,) = sorted((Path(__file__).resolve().parents[2] / "results").glob("nvidia-h100*.json"))[:1]
    return path.read_text(encoding="utf-8")


def test_a_record_that_passed_is_not_checked_again_and_reads_the_same(schema_checks: list[int]) -> None:
    from gpucnn import archive

    cache_dir().mkdir(parents=True)
    text = _a_record()
    first = archive.parse(text, "results/x.json")
    again = archive.parse(text, "results/x.json")
    assert len(schema_checks) == 1
    assert again == first  # the typed data is read every time, the same
    archive.parse(text.replace('"generated_at": "', '"generated_at":  "', 1), "results/x.json")
    assert len(schema_checks) == 2, "a changed text must be checked again"


def test_a_bad_record_is_checked_every_time(schema_checks: list[int]) -> None:
    from gpucnn import archive

    cache_dir().mkdir(parents=True)
    bad = _a_record().replace('"generated_at": "', '"generated_at": "yesterday, ', 1)
    for _ in range(2):
        with pytest.raises(archive.RecordError, match=r"^results/x\.json: generated_at: expected a full ISO"):
            archive.parse(bad, "results/x.json")
    assert len(schema_checks) == 2


def test_other_checks_or_a_damaged_memory_check_again(schema_checks: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn import archive

    cache_dir().mkdir(parents=True)
    text = _a_record()
    archive.parse(text, "results/x.json")
    (cache_dir() / archive._PASSED_FILE).write_bytes(b"{damaged")
    archive.parse(text, "results/x.json")
    archive.parse(text, "results/x.json")
    assert len(schema_checks) == 2
    monkeypatch.setattr(archive, "_checks_salt", lambda: b"another schema or another archive.py")
    archive.parse(text, "results/x.json")
    assert len(schema_checks) == 3


def test_reading_records_outside_a_checkout_leaves_no_cache_folder(schema_checks: list[int]) -> None:
    from gpucnn import archive

    archive.parse(_a_record(), "results/x.json")
    archive.parse(_a_record(), "results/x.json")
    assert not cache_dir().exists()
    assert len(schema_checks) == 2


def test_an_unchanged_cache_file_is_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn import results

    writes: list[Path] = []
    write = results.atomic_write_text
    monkeypatch.setattr(results, "atomic_write_text", lambda path, text: (writes.append(path), write(path, text)))
    entry = tmp_path / "entry.json"
    notebook.write_if_changed(entry, '{"a": 1}')
    notebook.write_if_changed(entry, '{"a": 1}')
    assert writes == [entry]
    notebook.write_if_changed(entry, '{"a": 2}')
    entry.write_bytes(b"\xff")  # unreadable as UTF-8: written again
    notebook.write_if_changed(entry, '{"a": 2}')
    assert writes == [entry] * 3 and entry.read_text() == '{"a": 2}'


@pytest.mark.parametrize(("kept_files", "cache_on", "measured"), [
    (0, True, True),    # the notebook will run: measure here, where CUDA and torch.compile are warm
    (1, True, False),   # its page and results were kept: it is reused, a new measurement would not be shown
    (0, False, False),  # no notebook cache (GPUCNN_FRESH): the kernel measures again anyway
])
def test_the_notebook_experiments_run_before_its_kernel_only_when_it_will_use_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept_files: int, cache_on: bool, measured: bool) -> None:
    from gpucnn.pages import training

    calls: list[int] = []
    monkeypatch.setattr(training, "measure_live", lambda: calls.append(1))
    kept = tmp_path / "results"
    kept.mkdir()
    for i in range(kept_files):
        (kept / f"{i}.json").write_text("{}")
    cache = notebook.NotebookCache(folder=kept.parent, work=tmp_path / "work") if cache_on else None
    notebook.measure_before_kernel(cache)
    assert calls == ([1] if measured else [])


def test_the_paths_looked_for_are_listed_alike_in_every_process(tmp_path: Path) -> None:
    # The memory of clean files is keyed by this list: listed in a set's order, which changes with each process's
    # hash seed, two paths of the same length made every build on the H100 host scan the whole site again.
    import os
    import subprocess
    import sys

    code = "from gpucnn.site_guard import build_machine_paths; print(build_machine_paths())"
    env = {**os.environ, "HOME": "/home/aaaa", "TMPDIR": "/home/bbbb", "CUDA_HOME": "/home/cccc"}
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**env, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(6)}
    assert len(outputs) == 1, outputs
