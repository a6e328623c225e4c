"""Issue 23's faults, each fed and its outcome checked: hidden and odd archive entries, a block that raises under
any log level (and the page cache that must not keep it), GPUCNN_VERIFY, future-dated records, the environment
(SOURCE_DATE_EPOCH, a full notebook cache, GPUCNN_RESULTS_DIR) and the Results page's reasons."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpucnn import archive, sources
from tests.build.sites import _build, _home, _runs, _small_site
from tests.conftest import ROOT
from tests.fakes import one_line_error as _one_line_error
from tests.pages.results_words import archive_words, words

H200 = ROOT / "results" / "nvidia-h200-2026-11-26-2.json"


def _cli(args: list[str], folder: Path, timeout: float = 120, env: dict[str, str] | None = None):
    """``gpucnn`` as a user runs it, on the archive ``folder``, with a 2 GB memory limit (/dev/zero read whole
    fails the test, not the machine); a FIFO read would hang until ``timeout`` fails it."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "gpucnn.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "GPUCNN_RESULTS_DIR": str(folder), **(env or {})}, timeout=timeout,
                          cwd=ROOT, preexec_fn=limit)


def _archive_with_record(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / H200.name).write_text(H200.read_text())
    return folder


def _odd_entries(folder: Path, hidden: bool) -> list[str]:
    """A FIFO, a link to /dev/zero and a folder, all named *.json: what a pull request can add."""
    dot = "." if hidden else ""
    os.mkfifo(folder / f"{dot}h.json")
    (folder / f"{dot}z.json").symlink_to("/dev/zero")
    (folder / f"{dot}d.json").mkdir()
    return [f"{dot}h.json", f"{dot}z.json", f"{dot}d.json"]


# --- 1. every entry of results/ goes through the one listing and its checks ----------------------------------------

def test_hidden_entries_are_ignored_by_every_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.build.config import archive_digest

    folder = _archive_with_record(tmp_path)
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(folder))
    before = archive_digest()
    _odd_entries(folder, hidden=True)
    assert [p.name for p in archive.record_files()] == [H200.name]
    assert [r.name for r in archive.records()] == [H200.name]
    assert archive_digest() == before, "a hidden entry changed the pages' cache key"
    sources.reset()
    assert [r.name for r in sources.records_in_archive()] == [H200.name]
    proc = _cli(["results", "list"], folder, timeout=60)  # a FIFO read would hang: the timeout fails the test
    assert proc.returncode == 0 and H200.name in proc.stdout and ".h.json" not in proc.stdout, proc.stderr


@pytest.mark.parametrize(("entry", "words"), [("h.json", "not a regular file"), ("z.json", "symbolic link"),
                                              ("d.json", "is a folder")])
def test_an_odd_entry_fails_every_reader_in_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                entry: str, words: str) -> None:
    from gpucnn.build.config import archive_digest

    folder = _archive_with_record(tmp_path)
    _odd_entries(folder, hidden=False)
    for other in {"h.json", "z.json", "d.json"} - {entry}:  # one fault at a time
        path = folder / other
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(folder))
    with pytest.raises(archive.RecordError, match=re.escape(f"results/{entry}") + ".*" + words):
        archive_digest()
    _one_line_error(_cli(["results", "list"], folder, timeout=60), f"results/{entry}", words)


@pytest.mark.site
def test_a_build_ignores_hidden_entries_and_fails_on_a_fifo_in_one_line(tmp_path: Path) -> None:
    config, _ = _small_site(tmp_path)
    folder = _archive_with_record(tmp_path)
    _odd_entries(folder, hidden=True)
    proc = _build(tmp_path, config, GPUCNN_RESULTS_DIR=str(folder))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 archived record(s)" in proc.stderr
    os.mkfifo(folder / "x.json")
    proc = _build(tmp_path, config, GPUCNN_RESULTS_DIR=str(folder))  # build_site's timeout fails a hang
    assert proc.returncode != 0 and "results/x.json" in proc.stderr and "not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- 2. a block that raises fails every build, whatever the log level; GPUCNN_VERIFY -------------------------------

RAISING_BLOCK = '\n```python exec="on" session="home"\nraise RuntimeError("broken on purpose")\n```\n'


@pytest.mark.site
def test_a_raising_block_fails_every_build_quiet_or_not_from_a_warm_page_cache(tmp_path: Path) -> None:
    config, counter = _small_site(tmp_path)
    assert _build(tmp_path, config).returncode == 0  # the page cache holds the page
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + RAISING_BLOCK)
    for options in (["-q"], [], ["-q"]):
        proc = _build(tmp_path, config, *options)
        assert proc.returncode != 0, (options, proc.stderr[-2000:])
        assert "page index.md" in proc.stderr and "broken on purpose" in proc.stderr, (options, proc.stderr[-2000:])
    assert _runs(counter) == 4, "a page whose block raised was served from the page cache"
    entries = list((tmp_path / "cache" / "pages").glob("*.json"))
    assert entries and not any("broken on purpose" in e.read_text() for e in entries), "the raising page was stored"


@pytest.mark.site
def test_verify_renders_served_pages_again_and_fails_on_a_difference(tmp_path: Path) -> None:
    config, counter = _small_site(tmp_path)
    state = tmp_path / "state.txt"  # outside state that the page cache's key does not cover
    state.write_text("alpha state")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + f'\n```python exec="on" session="home"\nprint(open({str(state)!r}).read())\n'
                                         "```\n")
    assert _build(tmp_path, config).returncode == 0
    same = _build(tmp_path, config, GPUCNN_VERIFY="1")
    assert same.returncode == 0, same.stderr[-3000:]
    assert _runs(counter) == 2, "GPUCNN_VERIFY served the page instead of rendering it again"
    state.write_text("beta state")
    served = _build(tmp_path, config)
    assert served.returncode == 0 and "alpha state" in _home(tmp_path)  # what the check is for
    checked = _build(tmp_path, config, GPUCNN_VERIFY="1")
    assert checked.returncode != 0 and "page index.md" in checked.stderr and "GPUCNN_VERIFY" in checked.stderr
    after = _build(tmp_path, config)  # the stale copy was removed
    assert after.returncode == 0 and "beta state" in _home(tmp_path)


def test_first_difference_ignores_digits_only() -> None:
    from gpucnn import page_cache

    assert page_cache.first_difference("<p>took 1.25 ms</p>\n<p>a</p>", "<p>took 3.5 ms</p>\n<p>a</p>") is None
    assert "line 2" in (page_cache.first_difference("<p>x</p>\n<p>alpha</p>", "<p>x</p>\n<p>beta</p>") or "")
    assert page_cache.first_difference("<p>x</p>", "<p>x</p>\n<p>more</p>") is not None


# --- 3. dates from the future ---------------------------------------------------------------------------------------

def _dated(tmp_path: Path, name: str, generated: str | None = None, measured: str | None = None) -> Path:
    doc = json.loads(H200.read_text())
    if generated:
        doc["generated_at"] = generated
    if measured:
        doc["results"][1]["measured_at"] = measured
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("generated", "measured", "field"), [
    ("2100-01-01T00:00:00+00:00", None, "generated_at"),
    ("9999-12-31T23:59:59+00:00", None, "generated_at"),
    (None, "2100-01-01T00:00:00+00:00", "results[1].measured_at"),
])
def test_a_future_dated_record_is_refused_at_add_and_in_the_build(tmp_path: Path, generated, measured,
                                                                  field: str) -> None:
    record = _dated(tmp_path, "future.json", generated, measured)
    folder = tmp_path / "results"
    folder.mkdir()
    proc = _cli(["results", "add", str(record)], folder)
    _one_line_error(proc, "future.json", field, "after the build date")
    assert list(folder.iterdir()) == [], "a future-dated record was stored"
    (folder / "future.json").write_text(record.read_text())  # as a pull request would add it
    with pytest.raises(archive.RecordError, match=re.escape(f"results/future.json: {field}")):
        archive.records(folder)


def test_a_day_is_allowed_for_clocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc).timestamp())))
    assert archive.read(_dated(tmp_path, "ahead.json", "2026-11-26T20:00:00-02:00"))  # 22:00 UTC: within a day
    with pytest.raises(archive.RecordError, match=r"late\.json: generated_at"):
        archive.read(_dated(tmp_path, "late.json", "2026-11-27T00:00:01+00:00"))


def test_newest_is_the_records_instant_then_its_file_name(tmp_path: Path) -> None:
    # 10:00+05:00 is 05:00 UTC, earlier than 06:00 UTC though its text sorts after it
    east = archive.read(_dated(tmp_path, "b-east.json", "2026-11-26T10:00:00+05:00"))
    utc = archive.read(_dated(tmp_path, "a-utc.json", "2026-11-26T06:00:00+00:00"))
    tie = archive.read(_dated(tmp_path, "c-tie.json", "2026-11-26T06:00:00+00:00"))
    assert [r.name for r in archive.newest_first([east, utc, tie])] == ["c-tie.json", "a-utc.json", "b-east.json"]


# --- 4. the environment --------------------------------------------------------------------------------------------

@pytest.mark.site
@pytest.mark.parametrize("epoch", ["1000000000000", "abc", "-5", ""])
def test_a_bad_source_date_epoch_fails_in_one_line_before_anything_is_written(tmp_path: Path, epoch: str) -> None:
    config, _ = _small_site(tmp_path)
    proc = _build(tmp_path, config, SOURCE_DATE_EPOCH=epoch)
    assert proc.returncode != 0
    assert "SOURCE_DATE_EPOCH" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "site").exists(), "a partial site was written"
    _one_line_error(_cli(["results", "add", str(H200)], tmp_path / "results", env={"SOURCE_DATE_EPOCH": epoch}),
                    "SOURCE_DATE_EPOCH")


def test_a_full_disk_under_the_notebook_cache_costs_speed_not_the_build(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from gpucnn.build.notebook import render_despite_an_unwritable_cache

    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    page = SimpleNamespace(content=None)

    def jupyter_render(config: object, files: object) -> None:  # what mkdocs-jupyter's render does, in order
        page.content = "<p>the notebook</p>"
        Path("/dev/full").write_text("{}")  # its cache entry, on a full disk: ENOSPC

    page.render = jupyter_render
    render_despite_an_unwritable_cache(page)
    page.render({}, None)
    assert page.content == "<p>the notebook</p>"
    assert "not cached" in caplog.text and "No space left" in caplog.text

    def failing_render(config: object, files: object) -> None:  # the page itself cannot be made: still an error
        raise OSError(2, "No such file or directory")

    page.render = failing_render
    render_despite_an_unwritable_cache(page)
    with pytest.raises(OSError):
        page.render({}, None)


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_results_dir_that_is_no_folder_is_said_in_one_line(tmp_path: Path, make: str) -> None:
    target = tmp_path / "elsewhere"
    if make == "file":
        target.write_text("")
    _one_line_error(_cli(["results", "list"], target), str(target))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUCNN_RESULTS_DIR", str(target))
        with pytest.raises(archive.RecordError, match=re.escape(str(target))):
            archive.records()


@pytest.mark.site
def test_a_build_with_a_missing_results_dir_fails_in_one_line(tmp_path: Path) -> None:
    config, _ = _small_site(tmp_path)
    proc = _build(tmp_path, config, GPUCNN_RESULTS_DIR=str(tmp_path / "nowhere"))
    assert proc.returncode != 0 and "GPUCNN_RESULTS_DIR" in proc.stderr and "nowhere" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_empty_or_absent_default_archive_is_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUCNN_RESULTS_DIR", raising=False)
    (tmp_path / "results").mkdir()
    assert archive.records(tmp_path / "results") == []
    assert archive.records(tmp_path / "absent") == []  # a fork that removed results/


# --- 5. the Results page gives each record its real reason ---------------------------------------------------------

MODELS = ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "NVIDIA L40S", "NVIDIA H200"]  # newest first


def _four_models(folder: Path) -> list[str]:
    doc = json.loads(H200.read_text())
    names = []
    for i, model in enumerate(MODELS):
        record = json.loads(json.dumps(doc).replace('"NVIDIA H200"', json.dumps(model)))
        record["generated_at"] = f"2026-11-{26 - i:02d}T00:00:00+00:00"
        name = f"{i}-{archive.slug(model)}.json"
        (folder / name).write_text(json.dumps(record))
        names.append(name)
    return names


@pytest.mark.parametrize("live", [None, "NVIDIA GeForce RTX 4090"])
def test_a_record_left_out_by_the_cap_says_so_and_names_who_took_the_places(tmp_path: Path, live) -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.pages import results as page
    from tests.fakes import cpu_only, fake_build, fake_report

    folder = tmp_path / "results"
    folder.mkdir()
    names = _four_models(folder)
    places = 3 if live is None else 2
    report = cpu_only() if live is None else fake_report(name=live)
    with fake_build(report, folder, tmp_path / "cache", ("results",)):
        picks = {c.record.name: c for c in sources.choices(matmul_sweep)}
        reasons = {r.name: page.record_reasons(r) for r in sources.records_in_archive()}
        summary = archive_words()
    for name in names[:places]:
        assert picks[name].reason == sources.DRAWN and reasons[name][0].what == "drawn", reasons[name]
    for name in names[places:]:
        assert picks[name].reason == "cap", picks[name]
        took = (("this build",) if live else ()) + tuple(names[:places])
        assert picks[name].by == took and reasons[name][0].by == took
        row = next(line for line in summary.splitlines() if f"archived:{name}" in line)
        assert all(f"results/{n}" in row.split("</span>", 1)[1] for n in names[:places]), row
    assert "newer record" not in summary, "a record left out by the cap is said to be replaced by its own model"


def test_every_reason_the_page_can_give_has_a_sentence_in_the_docs() -> None:
    from gpucnn.pages.results import Reason

    possible = {sources.DRAWN, *sources.NOT_DRAWN, "cpu-only", "superseded-results", "code-changed", "older"}
    for what in possible:
        said = str(words().reason(Reason(what, by=("x.json",), experiments=("matmul_sweep",))))
        assert said.strip() and not said.startswith(what + ":") and said.strip() != what, (what, said)  # words
        if what in ("newer-record", "cap"):  # a sentence names the records it is about
            assert "results/x.json" in said, what

def test_a_superseded_newest_record_gives_way_to_the_older_one_and_says_why(tmp_path: Path) -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from tests.fakes import cpu_only, fake_build

    folder = tmp_path / "results"
    folder.mkdir()
    doc = json.loads(H200.read_text())
    newer = copy.deepcopy(doc)
    for r in newer["results"]:
        if r["experiment"] == "matmul_sweep":
            r["version"] = 999
    (folder / "new.json").write_text(json.dumps(newer))
    older = copy.deepcopy(doc)
    older["generated_at"] = "2026-11-25T00:00:00+00:00"
    (folder / "old.json").write_text(json.dumps(older))
    with fake_build(cpu_only(), folder, tmp_path / "cache", ("results",)):
        picks = {c.record.name: c.reason for c in sources.choices(matmul_sweep)}
    assert picks == {"new.json": "superseded", "old.json": sources.DRAWN}
