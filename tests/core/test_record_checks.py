"""Records are untrusted input (issue 12), schema versions and migration (issue 9), and when an
archived result may be drawn. Each test feeds one fault and checks the one-line refusal."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpucnn import archive, codehash
from gpucnn.archive import RecordError, add, migrate, parse, records, status, status_flags, validate
from gpucnn.specs import SPECS, Spec
from tests.conftest import ROOT, build_site

REAL = sorted((ROOT / "results").glob("nvidia-*.json"))
V1_SOURCES = sorted(Path("/work/shared/records").glob("*.json"))


@pytest.fixture(scope="module")
def real_doc() -> dict[str, Any]:
    # The first H100 record, made at commit c1ae338, which the migrate tests name: a record added later
    # (another commit) must not change what they read.
    return json.loads((ROOT / "results" / "nvidia-h100-80gb-hbm3-2026-11-26.json").read_text())


@pytest.fixture
def doc(real_doc: dict[str, Any]) -> dict[str, Any]:
    """A small valid v2 record: the real record's first three results (CPU matmul, copy, elementwise)."""
    small = copy.deepcopy(real_doc)
    small["results"] = small["results"][:3]
    return small


@pytest.fixture
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(folder))
    return folder


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpucnn.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, cwd=ROOT)


def refused(doc: Any, match: str) -> str:
    with pytest.raises(RecordError) as info:
        validate(doc)
    message = str(info.value)
    assert message.startswith(match), message
    assert "\n" not in message
    return message


def test_the_real_records_are_in_the_archive_and_valid() -> None:
    names = {p.name for p in REAL}
    assert {"nvidia-h100-80gb-hbm3-2026-11-26.json", "nvidia-h200-2026-11-26.json"} <= names
    for rec in records(ROOT / "results"):
        assert rec.schema == "gpucnn-results/2"
        assert all(r.version == 1 and r.code_hash for r in rec.results)


# --- names, versions and commits: only the characters real ones need ------------------------

@pytest.mark.parametrize("where", [
    ("hardware", "cpu", "model"), ("hardware", "accelerator", "name"), ("torch",), ("commit",),
    ("hardware", "torch"), ("hardware", "accelerator", "driver"), ("results", 0, "commit"),
    ("results", 0, "hardware", "cpu", "model"),
])
@pytest.mark.parametrize("bad", ["<script>alert(1)</script>", "Xeon\n[x](javascript:alert(1))", 'a"b'])
def test_markup_and_newlines_in_names_versions_and_commits_are_refused(doc: dict, where: tuple, bad: str) -> None:
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = bad
    path = ".".join(str(k) for k in where).replace(".0.", "[0].")
    refused(doc, f"{path}: expected ")


def test_real_names_pass(doc: dict) -> None:
    for name in ["Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", "AMD Ryzen 9 7950X 16-Core Processor",
                 "Apple M2 Max", "NVIDIA GeForce RTX 4090", "AMD Instinct MI300X", "NVIDIA A100-SXM4-80GB"]:
        doc["hardware"]["cpu"]["model"] = name
        validate(doc)


# --- size, depth, numbers --------------------------------------------------------------------

def test_a_record_over_the_size_limit_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    big = tmp_path / "big.json"
    big.write_text("[" + " " * (archive.MAX_BYTES + 10) + "]")

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a file over the size limit")
    monkeypatch.setattr(archive.json, "loads", no_parsing)
    with pytest.raises(RecordError, match=r"big\.json: larger than the 5 MB a record may be$"):
        archive.read(big)
    with pytest.raises(RecordError, match=r"^x: larger than"):
        parse(" " * (archive.MAX_BYTES + 1), "x")


@pytest.mark.parametrize("depth", [50, 1000, 100_000])
def test_deep_nesting_is_one_line_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(RecordError, match=r"^deep\.json: nested more than 32 levels deep$"):
        parse("[" * depth + "]" * depth, "deep.json")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinite_numbers_are_refused(doc: dict, number: str) -> None:
    text = json.dumps(doc).replace('"elapsed_s": ', f'"elapsed_s": {number}, "x": ', 1)
    with pytest.raises(RecordError, match=r"^r\.json: not valid JSON|^r\.json: .* (not a number JSON allows|too large)"):
        parse(text, "r.json")


def test_a_huge_integer_is_refused_not_an_overflow(doc: dict) -> None:
    text = json.dumps(doc).replace('"elapsed_s": ', '"elapsed_s": ' + "9" * 400 + ', "x": ', 1)
    with pytest.raises(RecordError, match=r"^r\.json: .*too large a number"):
        parse(text, "r.json")


# --- dates and file names --------------------------------------------------------------------

@pytest.mark.parametrize("when", ["20240101/0000", "2024-W01-1", "2024-01-01", "2024-01-01T00:00:00",
                                  "2024-02-30T00:00:00+00:00", "yesterday", "2024-01-01T00:00:00+00:00/../x"])
def test_generated_at_must_be_a_full_date_time(doc: dict, when: str) -> None:
    doc["generated_at"] = when
    refused(doc, "generated_at: expected a full ISO 8601 date-time")


def test_the_file_name_is_a_safe_slug(doc: dict, tmp_path: Path, archive_dir: Path) -> None:
    doc["hardware"]["accelerator"]["name"] = "NVIDIA H100/../../etc 80GB"
    doc["generated_at"] = "2026-11-26T23:59:59-05:00"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    stored = add(source)
    assert stored.parent == archive_dir
    assert stored.name == "nvidia-h100-etc-80gb-2026-11-26.json"


# --- absolute paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/tmp/gpucnn-x/cache.json", "/opt/conda/lib", "C:/Users/alice/x",
                                  r"C:\Users\alice", "~/results", "see /home/bob/x", "/tmp", "file:///etc/passwd"])
def test_absolute_paths_are_refused_anywhere(doc: dict, path: str) -> None:
    doc["results"][0]["data"]["sweep"]["__sweep__"]["stopped"] = path
    refused(doc, "results[0].data.sweep.__sweep__.stopped: contains an absolute path")


def test_ordinary_slashes_pass(doc: dict) -> None:
    doc["results"][0]["data"]["sweep"]["__sweep__"]["stopped"] = "stopped at 12 GB/s (see stas00/ml-engineering, 1/9)"
    validate(doc)


# --- valid schema, broken data: refused at add, naming the field -------------------------------

@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.clear(), "results[0].data.sweep: missing"),
    (lambda d: d.update(sweeps=d.pop("sweep")), "results[0].data.sweep: missing"),
    (lambda d: d["sweep"]["__sweep__"]["points"].__setitem__(0, {"x": 1}),
     'results[0].data.sweep.points[0]: expected an object {"__measurement__": ...}'),
    (lambda d: d["sweep"]["__sweep__"]["points"][2]["__measurement__"].update(shape=[]),
     "results[0].data.sweep.points[2].shape: expected at least 1 item"),
])
def test_broken_data_is_refused_at_add_in_one_line(doc: dict, tmp_path: Path, archive_dir: Path, change: Any,
                                                   message: str) -> None:
    change(doc["results"][0]["data"])
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    proc = cli("results", "add", str(source), env={"GPUCNN_RESULTS_DIR": str(archive_dir)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"gpucnn: error: {source}: {message}" or message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not archive_dir.exists() or not list(archive_dir.glob("*.json"))


def test_broken_data_already_in_the_archive_names_the_file(doc: dict, archive_dir: Path) -> None:
    archive_dir.mkdir()
    doc["results"][1]["data"] = {}
    (archive_dir / "some-gpu-2026-01-01.json").write_text(json.dumps(doc))
    with pytest.raises(RecordError, match=r"^results/some-gpu-2026-01-01\.json: results\[1\]\.data\.sweep: missing$"):
        records()


@pytest.mark.parametrize(("fault", "message"), [
    ("data", "results[1].data.sweep: missing"),
    ("script", "hardware.cpu.model: expected a hardware name"),
    ("deep", "nested more than 32 levels deep"),
])
def test_a_bad_record_in_the_archive_fails_the_build_naming_it(doc: dict, tmp_path: Path, fault: str,
                                                                message: str) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    text = "[" * 40 + "]" * 40
    if fault == "data":
        doc["results"][1]["data"] = {}
    elif fault == "script":
        doc["hardware"]["cpu"]["model"] = "<script>alert(1)</script>"
    if fault != "deep":
        text = json.dumps(doc)
    (folder / "some-gpu-2026-01-01.json").write_text(text)
    proc = build_site(tmp_path / "site", tmp_path / "cache", extra_env={"GPUCNN_RESULTS_DIR": str(folder)})
    assert proc.returncode != 0
    assert f"results archive: results/some-gpu-2026-01-01.json: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "site" / "index.html").exists()


def test_an_unknown_experiment_is_refused_at_add(doc: dict, tmp_path: Path, archive_dir: Path) -> None:
    doc["results"][0]["experiment"] = "mystery"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    with pytest.raises(RecordError, match=r"results\[0\]\.experiment: unknown experiment 'mystery'"):
        add(source)


# --- duplicates ---------------------------------------------------------------------------------

def test_an_exact_duplicate_is_refused_unless_forced(doc: dict, tmp_path: Path, archive_dir: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    env = {"GPUCNN_RESULTS_DIR": str(archive_dir)}
    assert cli("results", "add", str(source), env=env).returncode == 0
    again = cli("results", "add", str(source), env=env)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "already holds this record" in again.stderr and "--force" in again.stderr
    assert len(list(archive_dir.glob("*.json"))) == 1
    forced = cli("results", "add", "--force", str(source), env=env)
    assert forced.returncode == 0, forced.stderr
    assert len(list(archive_dir.glob("*.json"))) == 2


# --- schema versions and migration ----------------------------------------------------------------

def _as_v1(doc: dict) -> dict:
    old = copy.deepcopy(doc)
    old["schema"] = "gpucnn-results/1"
    for r in old["results"]:
        del r["version"], r["code_hash"]
    return old


def test_a_v1_record_still_loads_as_version_1_with_an_unknown_hash(doc: dict) -> None:
    rec = parse(json.dumps(_as_v1(doc)), "old.json")
    assert all(r.version == 1 and r.code_hash is None for r in rec.results)
    assert {status(rec, r) for r in rec.results} == {"code-changed"}


def test_a_v2_record_needs_versions_and_hashes(doc: dict) -> None:
    del doc["results"][1]["code_hash"]
    refused(doc, "results[1].code_hash: missing")


@pytest.mark.skipif(not V1_SOURCES, reason="the original v1 records are not on this machine")
def test_migrating_the_real_v1_records_reproduces_the_archived_ones(tmp_path: Path) -> None:
    for source in V1_SOURCES:
        out = tmp_path / source.name
        proc = cli("results", "migrate", str(source), "--commit", "c1ae338", "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        original, migrated = json.loads(source.read_text()), json.loads(out.read_text())
        assert migrated["schema"] == "gpucnn-results/2"
        for before, after in zip(original["results"], migrated["results"], strict=True):
            assert {k: v for k, v in after.items() if k not in ("version", "code_hash")} == before  # no figure edited
        archived = [json.loads(p.read_text()) for p in REAL]
        assert migrated in archived


def test_migrate_computes_hashes_from_the_commit(doc: dict, tmp_path: Path) -> None:
    source = tmp_path / "old.json"
    source.write_text(json.dumps(_as_v1(doc)))
    out = migrate(source, "c1ae338")
    assert out == tmp_path / "old.v2.json"
    new = json.loads(out.read_text())
    assert [r["code_hash"] for r in new["results"]] == [
        codehash.code_hash_at(r["experiment"], "c1ae338") for r in doc["results"]]
    assert [r["version"] for r in new["results"]] == [1, 1, 1]
    assert [r["data"] for r in new["results"]] == [r["data"] for r in doc["results"]]


@pytest.mark.parametrize(("args", "message"), [
    (["--commit", "e9be924"], "commit: the record says it was made at c1ae338, not e9be924"),
    (["--output", "{src}"], "already exists"),
])
def test_migrate_refusals_are_one_line(doc: dict, tmp_path: Path, args: list[str], message: str) -> None:
    source = tmp_path / "old.json"
    source.write_text(json.dumps(_as_v1(doc)))
    proc = cli("results", "migrate", str(source), *[a.replace("{src}", str(source)) for a in args])
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_migrate_refuses_a_v2_record_and_an_unknown_commit(doc: dict, tmp_path: Path) -> None:
    source = tmp_path / "new.json"
    source.write_text(json.dumps(doc))
    with pytest.raises(RecordError, match="already gpucnn-results/2"):
        migrate(source)
    old = _as_v1(doc)
    old["commit"] = None
    for r in old["results"]:
        r["commit"] = None
    source.write_text(json.dumps(old))
    with pytest.raises(RecordError, match=r"git show 0123456:.* failed"):
        migrate(source, "0123456")


# --- status: may an archived result be drawn? ------------------------------------------------------

def test_status_of_the_real_records_follows_the_code() -> None:
    for rec in records(ROOT / "results"):
        today = dt.date.fromisoformat(rec.generated_at[:10])
        for r in rec.results:
            same = r.code_hash == codehash.current_code_hash(r.experiment)
            assert status(rec, r, today) == ("ok" if same else "code-changed")


def test_status_superseded_when_the_version_differs(doc: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = parse(json.dumps(doc), "r.json")
    r = rec.results[0]
    today = dt.date.fromisoformat(rec.generated_at[:10])
    spec = SPECS[r.experiment]
    monkeypatch.setitem(SPECS, r.experiment, Spec(spec.module, spec.version + 1, spec.data))
    assert status(rec, r, today) == "superseded"


def test_a_superseded_result_with_another_data_shape_still_loads(doc: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record of an old version is listed, not refused, even if its data no longer fits today's class."""
    name = doc["results"][0]["experiment"]
    spec = SPECS[name]
    monkeypatch.setitem(SPECS, name, Spec(spec.module, 2, spec.data))
    doc["results"][0]["data"]["renamed"] = doc["results"][0]["data"].pop("sweep")
    rec = parse(json.dumps(doc), "r.json")
    assert status(rec, rec.results[0]) == "superseded"


def test_status_code_changed_when_the_hash_differs(doc: dict) -> None:
    doc["results"][0]["code_hash"] = "0" * 16
    rec = parse(json.dumps(doc), "r.json")
    today = dt.date.fromisoformat(rec.generated_at[:10])
    assert status(rec, rec.results[0], today) == "code-changed"
    assert status(rec, rec.results[1], today) == "ok"


def test_status_older_after_a_year_from_source_date_epoch(doc: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = parse(json.dumps(doc), "r.json")
    made = dt.datetime.fromisoformat(rec.generated_at)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int((made + dt.timedelta(days=365)).timestamp())))
    assert status(rec, rec.results[0]) == "ok"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int((made + dt.timedelta(days=367)).timestamp())))
    assert status(rec, rec.results[0]) == "older"
    doc["results"][0]["code_hash"] = "0" * 16
    rec = parse(json.dumps(doc), "r.json")
    assert status_flags(rec, rec.results[0]) == {"older", "code-changed"}


# --- torch-free -------------------------------------------------------------------------------------

def test_results_commands_never_import_torch(doc: dict, tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_as_v1(doc)))
    code = (
        "import sys; from gpucnn.cli import main\n"
        f"codes = [main(['results', 'migrate', {str(source)!r}]), main(['results', 'add', {str(source)!r}]),\n"
        "         main(['results', 'list'])]\n"
        "import gpucnn.archive, gpucnn.results\n"
        "print(codes, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "GPUCNN_RESULTS_DIR": str(tmp_path / "results")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0, 0] False"
