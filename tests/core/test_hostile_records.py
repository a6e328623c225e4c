"""Review B's fault paths and hostile records: each test feeds the fault and checks the escaped output or the
one-line message (the reproductions are the reviewer's)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from gpucnn import render, site_guard, sources
from gpucnn.archive import parse
from tests.fakes import one_line_error as _one_line_error

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "results" / "nvidia-h200-2026-11-26.json"

# Markdown that attr_list, emphasis, links, headings and admonitions would read, in a record's free string.
PAYLOADS = [
    "ran out of memory *x*{: onclick=alert(document.domain) }",
    "aten::mm *x*{: onclick=alert(1) }",
    "_x_{: style=position:fixed;inset:0 }",
    "NVIDIA H999 *em* __u__ #h (x) https://evil.example/n @at",
    "[l](javascript:alert(5)) ![i](x.png) \\*esc\\* {{ 7*7 }}",
]

# What one_line must drop: C0/C1 controls, bidi overrides and isolates, zero-width characters, separators.
INVISIBLE = "\x00\x1b\x07\x9b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f"


@pytest.fixture(scope="module")
def markdown():
    """A converter with the site's own extension list and settings (mkdocs.yml)."""
    import markdown as md
    from mkdocs.config import load_config

    cfg = load_config(config_file=str(ROOT / "mkdocs.yml"))
    return lambda text: md.Markdown(extensions=cfg["markdown_extensions"],
                                    extension_configs=cfg["mdx_configs"]).convert(text)


def _no_markup(html: str) -> None:
    assert site_guard.scripts_in_html(html) == [], html
    assert not re.search(r"\sstyle\s*=\s*\"?[^\"]*position", html), html  # only the tables' own alignment
    assert not re.search(r"<(em|strong|a|img|h\d)\b", html), html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_op_name_from_a_record_in_a_markdown_table_makes_no_markup(markdown, payload: str) -> None:
    html = markdown(render.table(["Op", "Calls"], [[render.code_cell(payload), "3"]]))
    _no_markup(html)
    assert html.count("<td") == 2  # a | in the name did not split the row


@pytest.mark.parametrize("payload", PAYLOADS)
def test_one_line_text_at_the_start_of_a_markdown_line_makes_no_markup(markdown, payload: str) -> None:
    for text in (payload, "# " + payload, "!!! note " + payload, "=== " + payload, "    " + payload):
        _no_markup(markdown(sources.one_line(text)))
        assert "<p>" in markdown(sources.one_line(text))  # a paragraph, not a heading, admonition or code


def test_a_caption_keeps_a_records_blank_line_from_ending_its_html_block(markdown) -> None:
    html = markdown(render.caption("stopped: out of memory\n\n*x*{: onclick=alert(1) }\x1b[31m\u202e"))
    _no_markup(html)
    assert "\x1b" not in html and "\u202e" not in html and html.count("<p") == 1


def test_one_line_drops_invisible_characters_and_caps_the_length() -> None:
    text = sources.one_line(f"a{INVISIBLE}b\nc\td\u2028e\u2029f\x85g")
    assert text == "ab c d e f g"
    long = sources.one_line("L" * 3000 + " ZZEND")
    assert len(long) == sources.MAX_TEXT and long.endswith("\u2026") and "ZZEND" not in long
    assert sources.one_line("x" * sources.MAX_TEXT) == "x" * sources.MAX_TEXT


def test_chart_title_with_backslashes_from_a_record_is_kept_as_text() -> None:
    """A regex replacement template would crash on \\m and copy the <svg> tag for \\1 (review B, H3)."""
    svg = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10pt" height="5pt"><g/></svg>'
    title = r"$\mathbf{PWNED}^{2}$ \1 \g<0>"
    out = render._svg_with_a11y(svg, title, "desc \\n \\1\x1b")
    assert r"\mathbf{PWNED}^{2}$ \1 \g&lt;0&gt;</title>" in out
    assert "desc \\n \\1</desc>" in out and out.count("<svg") == 1


@pytest.mark.parametrize(("page", "found"), [
    ('<p><em onclick="alert(1)">x</em></p>', "event-handler attribute onclick"),
    ('<td><code>a <em\nONMOUSEOVER = "x">b</em></code></td>', "event-handler attribute onmouseover"),
    ('<a href=" JaVa&#x53;cript:alert(1)">x</a>', "javascript: URL"),
    ('<img src="java\tscript:alert(1)">', "javascript: URL"),
])
def test_site_guard_finds_script_in_attributes(page: str, found: str) -> None:
    assert any(found in f for f in site_guard.scripts_in_html(page)), site_guard.scripts_in_html(page)


def test_site_guard_leaves_ordinary_attributes_and_text_alone() -> None:
    page = ('<p data-source="archived:x.json" class="online">the text onclick=1 and javascript:x</p>'
            '<a href="../gpu/">GPU</a><script>document.onload = 1</script>')
    assert site_guard.scripts_in_html(page) == []


# --- H2: only regular files are read, and never more than MAX_BYTES + 1 bytes ----------------------------------

def _cli(args: list[str], archive: Path, timeout: float = 120):
    """``gpucnn`` as a user runs it, with a 2 GB memory limit: a regression reading /dev/zero fails, not the machine."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**os.environ, "GPUCNN_RESULTS_DIR": str(archive)}
    return subprocess.run([sys.executable, "-m", "gpucnn.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT, preexec_fn=limit)


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: Path("/dev/zero"), ["/dev/zero", "not a regular file"]),
    (lambda p: (__import__("os").mkfifo(p / "fifo.json"), p / "fifo.json")[1], ["fifo.json", "not a regular file"]),
    (lambda p: (p / "link.json").symlink_to(H200) or p / "link.json", ["link.json", "symbolic link"]),
    (lambda p: (p / "folder.json").mkdir() or p / "folder.json", ["folder.json", "is a folder"]),
    (lambda p: (p / "bin.json").write_bytes(b"\xff\xfe{}") and p / "bin.json", ["bin.json", "not UTF-8 text"]),
])
def test_results_add_reads_only_a_regular_file(tmp_path: Path, make, words: list[str]) -> None:
    proc = _cli(["results", "add", str(make(tmp_path))], tmp_path / "archive", timeout=60)  # a FIFO must not hang
    _one_line_error(proc, *words)
    assert not (tmp_path / "archive").exists() or not list((tmp_path / "archive").iterdir())


@pytest.mark.parametrize("target", ["/dev/zero", str(H200)])
def test_a_symlink_in_the_archive_is_refused_in_one_line(tmp_path: Path, target: str) -> None:
    archive = tmp_path / "results"
    archive.mkdir()
    (archive / "zero.json").symlink_to(target)
    _one_line_error(_cli(["results", "list"], archive, timeout=60), "results/zero.json", "symbolic link")


def test_a_file_that_grows_past_its_size_is_read_only_to_the_limit(tmp_path: Path, monkeypatch) -> None:
    """st_size is not trusted: the read stops at MAX_BYTES + 1 bytes."""
    from gpucnn import archive

    big = tmp_path / "big.json"
    big.write_text(" " * 100)
    monkeypatch.setattr(archive, "MAX_BYTES", 50)
    real_lstat = Path.lstat
    monkeypatch.setattr(Path, "lstat", lambda self: _stat_saying_empty(real_lstat(self)))
    with pytest.raises(archive.RecordError, match=r"big.json: larger than"):
        archive.read(big)


def _stat_saying_empty(info):
    """An lstat result that says the file is empty (as /dev/zero's does)."""
    import os

    return os.stat_result((info.st_mode, info.st_ino, info.st_dev, info.st_nlink, info.st_uid, info.st_gid, 0,
                           int(info.st_atime), int(info.st_mtime), int(info.st_ctime)))


# --- M1: numbers outside physical bounds are refused with their field path ----------------------------------------

def _first_point(doc: dict) -> dict:
    return next(r for r in doc["results"] if r["experiment"] == "matmul_sweep")["data"]["sweep"]["__sweep__"][
        "points"][0]["__measurement__"]


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: _first_point(d).update(times_s=[5e-324]), ".times_s[0]", "1e-12 to 1e+06 seconds"),
    (lambda d: _first_point(d).update(times_s=[1e-13]), ".times_s[0]", "1e-12 to 1e+06 seconds"),
    (lambda d: _first_point(d).update(times_s=[1e300]), ".times_s[0]", "1e-12 to 1e+06 seconds"),
    (lambda d: _first_point(d).update(flops=1e308), ".flops", "0 to 1e+21"),
    (lambda d: _first_point(d).update(bytes_moved=1e22), ".bytes_moved", "0 to 1e+21"),
    (lambda d: _first_point(d).update(shape=[10**13]), ".shape", "<= 1e+12"),
    (lambda d: _first_point(d).update(threads=10**7), ".threads", "1 to 1e+06"),
    (lambda d: _first_point(d).update(median_s=1e-300), ".median_s", "magnitude from 1e-30 to 1e+30"),
    (lambda d: d["hardware"]["cpu"].update(reported_clock_ghz=1e308), "hardware.cpu.reported_clock_ghz", "<= 100"),
    (lambda d: d["hardware"]["cpu"].update(ram_bytes=10**19), "hardware.cpu.ram_bytes", "<= 1e+18"),
    (lambda d: d["hardware"]["accelerator"].update(multiprocessors=10**19), "hardware.accelerator.multiprocessors",
     "<= 1e+06"),
    (lambda d: d["hardware"]["accelerator"].update(count=10**7), "hardware.accelerator.count", "<= 1e+06"),
    (lambda d: d["hardware"]["accelerator"]["peaks"].update(fp32=0), "hardware.accelerator.peaks.fp32", "> 0"),
    (lambda d: d["hardware"]["accelerator"]["peaks"].update(bandwidth=1e308), "hardware.accelerator.peaks.bandwidth",
     "<= 1e+21"),
])
def test_implausible_numbers_are_refused_with_their_path(change, field: str, words: str) -> None:
    from gpucnn.archive import RecordError

    doc = json.loads(H200.read_text())
    change(doc)
    with pytest.raises(RecordError) as err:
        parse(json.dumps(doc), "bad.json")
    message = str(err.value)
    assert message.startswith("bad.json: ") and field in message and words in message, message
    assert "\n" not in message


def test_the_real_records_are_inside_the_bounds() -> None:
    from gpucnn.archive import records

    assert len(records(ROOT / "results")) >= 3


# --- M2: an error names a record's key or a file name in one printable line ---------------------------------------

@pytest.mark.parametrize("key", ["\x1b[2J\x1b[31mEVIL\nsecond line", "\x1b]0;pwned\x07\nX"])
def test_an_error_about_a_hostile_key_is_one_printable_line(tmp_path: Path, key: str) -> None:
    doc = json.loads(H200.read_text())
    _first_point(doc)[key] = 5
    source = tmp_path / "esckey.json"
    source.write_text(json.dumps(doc))
    proc = _cli(["results", "add", str(source)], tmp_path / "archive")
    _one_line_error(proc, "unknown field")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_a_hostile_file_name_is_printed_in_one_printable_line(tmp_path: Path) -> None:
    archive = tmp_path / "results"
    archive.mkdir()
    (archive / "x\x1b[31mred\nline.json").write_text("{not json")
    proc = _cli(["results", "list"], archive)
    _one_line_error(proc, "not valid JSON")
    assert "\x1b" not in proc.stderr
    bad = tmp_path / "bad\nline<b>.json"
    bad.write_text("[]")
    _one_line_error(_cli(["results", "add", str(bad)], archive), "line<b>.json")


# --- L4: --commit is a commit hash, never an option to git ----------------------------------------------------------

@pytest.mark.parametrize("commit", ["--output=PWN", "-p", "HEAD~1", "c1ae338:gpucnn"])
def test_migrate_commit_must_be_a_hex_commit(tmp_path: Path, commit: str) -> None:
    doc = json.loads(H200.read_text())
    doc["schema"] = "gpucnn-results/1"
    doc["commit"] = None
    for r in doc["results"]:
        r["commit"] = None
        r.pop("version", None)
        r.pop("code_hash", None)
    source = tmp_path / "v1.json"
    source.write_text(json.dumps(doc))
    proc = _cli(["results", "migrate", str(source), f"--commit={commit}", "-o", str(tmp_path / "out.json")],
                tmp_path / "archive")
    _one_line_error(proc, "--commit: expected a commit hash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.json"]  # git wrote nothing, nor did migrate


def test_git_show_refuses_what_git_would_read_as_an_option() -> None:
    from gpucnn import codehash

    with pytest.raises(codehash.CodeHashError, match="not a commit hash"):
        codehash.git_show("--output=/tmp/x", "gpucnn/bench.py")


# --- L2: one record, one result per experiment and params ------------------------------------------------------------

def test_a_repeated_experiment_in_a_record_is_refused_in_one_line(tmp_path: Path) -> None:
    doc = json.loads(H200.read_text())
    doc["results"].append(doc["results"][0])
    source = tmp_path / "dupexp.json"
    source.write_text(json.dumps(doc))
    first = doc["results"][0]
    proc = _cli(["results", "add", str(source)], tmp_path / "archive")
    _one_line_error(proc, f"results[{len(doc['results']) - 1}]: repeats results[0] ({first['experiment']}, device=")
    assert not (tmp_path / "archive").exists() or not list((tmp_path / "archive").iterdir())


# --- M4: record strings are printable text ------------------------------------------------------------------------

@pytest.mark.parametrize("char", ["\x1b", "\x00", "\x85", "\x9b", "\u202e", "\u2066", "\u200b", "\u2028", "\ufeff"])
def test_invisible_characters_in_record_strings_are_refused(char: str) -> None:
    from gpucnn.archive import RecordError

    for change, field in [
        (lambda d: _first_point(d).update(name=f"copy {char}x"), ".name: expected printable text"),
        (lambda d: d["hardware"]["accelerator"]["peaks"].update(source=f"datasheet {char}x"),
         "hardware.accelerator.peaks.source: expected one line of printable text"),
    ]:
        doc = json.loads(H200.read_text())
        change(doc)
        with pytest.raises(RecordError, match=re.escape(field)):
            parse(json.dumps(doc), "bad.json")


def test_a_control_character_in_a_data_key_is_refused_with_a_printable_path() -> None:
    from gpucnn.archive import RecordError

    doc = json.loads(H200.read_text())
    r = next(r for r in doc["results"] if isinstance(r["data"].get("skipped"), dict))
    r["data"]["skipped"]["\x1b[2J\x1b[31mEVIL\nsecond line"] = "x"
    with pytest.raises(RecordError, match=r"skipped key '\\x1b\[2J.*expected printable text") as err:
        parse(json.dumps(doc), "bad.json")
    assert str(err.value).isprintable()


def test_an_overlong_data_string_is_refused() -> None:
    from gpucnn.archive import RecordError

    doc = json.loads(H200.read_text())
    _first_point(doc)["name"] = "L" * 3000
    with pytest.raises(RecordError, match=r"\.name: longer than 1000 characters"):
        parse(json.dumps(doc), "bad.json")


# --- L3: messages in words, naming the field or the folder -----------------------------------------------------------

@pytest.mark.parametrize(("raw", "field", "words"), [
    ('"reported_clock_ghz": NaN', "hardware.cpu.reported_clock_ghz: ", "NaN is not a number"),
    ('"reported_clock_ghz": Infinity', "hardware.cpu.reported_clock_ghz: ", "Infinity is not a number"),
    ('"reported_clock_ghz": 1e999', "hardware.cpu.reported_clock_ghz: ", "too large a number"),
    ('"reported_clock_ghz": 100000000000000000000000', "hardware.cpu.reported_clock_ghz: ", "too large a number"),
])
def test_a_number_json_cannot_hold_is_named_by_its_field(raw: str, field: str, words: str) -> None:
    from gpucnn.archive import RecordError

    doc = json.loads(H200.read_text())
    doc["hardware"]["cpu"]["reported_clock_ghz"] = 12345.5
    text = json.dumps(doc).replace('"reported_clock_ghz": 12345.5', raw, 1)
    with pytest.raises(RecordError) as err:
        parse(text, "bad.json")
    assert str(err.value).startswith(f"bad.json: {field}") and words in str(err.value), str(err.value)


@pytest.mark.parametrize(("args", "words"), [
    (["results", "add", ""], "FILE: the path is empty"),
    (["results", "migrate", "x.json", "-o", ""], "--output: the path is empty"),
])
def test_an_empty_path_is_named_as_empty(tmp_path: Path, args: list[str], words: str) -> None:
    _one_line_error(_cli(args, tmp_path / "archive"), words)


def test_an_archive_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "afile"
    archive.write_text("")
    proc = _cli(["results", "add", str(H200)], archive)
    _one_line_error(proc, "the archive folder is a file")
    assert "Errno" not in proc.stderr


def test_an_archive_folder_that_cannot_be_written_is_named_not_its_temporary_file(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    from gpucnn import archive

    def refused(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".add-x.tmp"))

    monkeypatch.setattr(archive, "write_temp_file", refused)
    with pytest.raises(archive.RecordError) as err:
        archive.add(H200, tmp_path, force=True)
    assert str(err.value) == f"{tmp_path}: the archive folder cannot be written (permission denied)"


def test_a_superseded_result_with_broken_data_names_what_is_missing() -> None:
    from gpucnn.archive import RecordError

    doc = json.loads(H200.read_text())
    doc["results"][0]["version"] = 999  # superseded: its data is not read as typed data
    doc["results"][0]["data"] = {"x": {"__measurement__": {}}}
    with pytest.raises(RecordError) as err:
        parse(json.dumps(doc), "bad.json")
    assert str(err.value) == "bad.json: results[0].data: cannot be read: no field 'name'"


# --- a python block that raises fails the build, naming its page, before any page is written -------------------------

def test_a_python_block_that_raises_fails_the_build_naming_its_page_and_error() -> None:
    from types import SimpleNamespace

    import markdown as md
    import markdown_exec
    from mkdocs.exceptions import PluginError

    from gpucnn.build.state import Build

    build = Build()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="ann.md"))
    fences = [{"name": "python", "class": "python", "validator": markdown_exec.validator,
               "format": markdown_exec.formatter}]
    converter = md.Markdown(extensions=["pymdownx.superfences"],
                            extension_configs={"pymdownx.superfences": {"custom_fences": fences}})
    try:
        build.page_markdown("", page, None, None)
        html = converter.convert('```python exec="1"\nprint("ZZBEFORE")\nraise ValueError("ZZRAISE from a snippet")\n'
                                 "```\n")
        assert "ZZRAISE" in html  # markdown-exec put the traceback into the page
        build.page_content(html, page, None)  # noted; the other pages are still made, to name them all
        # the failing page's warning recorder is gone from the root logger
        assert not any(type(h).__name__ == "_Handler" for h in logging.getLogger().handlers)
        # the next page is clean
        other = SimpleNamespace(file=SimpleNamespace(src_uri="cnn.md"))
        build.page_markdown("", other, None, None)
        fine = converter.convert('```python exec="1"\nprint("fine")\n```\n')
        assert build.page_content(fine, other, None) == fine
        # between making the pages and writing them, the build fails naming the page that raised, and only it
        with pytest.raises(PluginError, match=r"page ann\.md: a python block raised "
                                              r"\(ValueError: ZZRAISE from a snippet\)") as err:
            build.env()
        assert "cnn.md" not in str(err.value)
        build.env()  # and the next build starts clean
    finally:
        build.end_render_recorders()


def test_what_the_build_log_gets_about_a_hostile_record_is_printable(tmp_path: Path) -> None:
    """The build fails with the RecordError's text (gpucnn.build): no escape sequence or newline from a record."""
    from gpucnn.archive import RecordError, records

    archive = tmp_path / "results"
    archive.mkdir()
    doc = json.loads(H200.read_text())
    doc["hardware"]["cpu"]["\x1b]0;pwned\x07\nX"] = 1
    (archive / "x\x1b[31mred\nline.json").write_text(json.dumps(doc))
    with pytest.raises(RecordError) as err:
        records(archive)
    assert str(err.value).isprintable(), repr(str(err.value))
    assert "unknown field" in str(err.value) and "x?[31mred?line.json" in str(err.value)
