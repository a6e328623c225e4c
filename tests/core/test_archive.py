"""The results archive: schema validation, `gpucnn results add/list`, no lost or
overwritten records, a bad archive file failing the build, and the page."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpucnn import archive
from gpucnn.archive import RecordError, add, record_name, records, validate
from tests.conftest import ROOT, build_site


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpucnn.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, cwd=ROOT)


@pytest.fixture
def record(bench_run: tuple[Path, Path]) -> dict[str, Any]:
    return json.loads(bench_run[0].read_text())


@pytest.fixture
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(folder))
    return folder


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_results_json_round_trips_through_results_add(record: dict, bench_run: tuple[Path, Path],
                                                      archive_dir: Path) -> None:
    proc = cli("results", "add", str(bench_run[0]), env={"GPUCNN_RESULTS_DIR": str(archive_dir)})
    assert proc.returncode == 0, proc.stderr
    [stored] = archive_dir.glob("*.json")
    assert stored.name == record_name(record)
    assert stored.name.endswith(f"-{record['generated_at'][:10]}.json")
    assert json.loads(stored.read_text()) == record
    [rec] = records()
    assert [r.experiment for r in rec.results] == [r["experiment"] for r in record["results"]]
    assert rec.results[0].data["sweep"].points[0].times_s == tuple(
        record["results"][0]["data"]["sweep"]["__sweep__"]["points"][0]["__measurement__"]["times_s"])
    listed = cli("results", "list", env={"GPUCNN_RESULTS_DIR": str(archive_dir)})
    assert listed.returncode == 0 and stored.name in listed.stdout


def test_list_says_when_the_archive_is_empty(archive_dir: Path) -> None:
    archive_dir.mkdir()
    (archive_dir / "README.md").write_text("not a record")
    proc = cli("results", "list", env={"GPUCNN_RESULTS_DIR": str(archive_dir)})
    assert proc.returncode == 0 and "no archived records" in proc.stdout


def _mutate(doc: dict, path: str, value: Any) -> None:
    """Set (or, for value ..., delete) a dotted path like results.0.measured_at."""
    parts = path.split(".")
    target = doc
    for p in parts[:-1]:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("schema", "gpucnn-results/0", "schema: expected one of gpucnn-results/1"),
        ("generated_at", "last week", "generated_at: expected a full ISO 8601 date-time"),
        ("results.1.measured_at", ..., "results[1].measured_at: missing"),
        ("results", [], "results: expected at least 1 item"),
        ("profile", "medium", "profile: expected one of quick, full"),
        ("hardware.cpu.logical_cores", "two", "hardware.cpu.logical_cores: expected a whole number"),
        ("hardware.cpu.logical_cores", True, "hardware.cpu.logical_cores: expected a whole number"),
        ("hardware.accelerator", {"device_type": "tpu"}, "hardware.accelerator.device_type: expected one of"),
        ("hardware.colour", "blue", "hardware.colour: unknown field"),
        ("results.0.hardware.torch", 2.1, "results[0].hardware.torch: expected a string, got 2.1"),
        ("results.2.data", [], "results[2].data: expected an object"),
        ("results.0.params.device", "/home/alice/gpu", "results[0].params.device: expected one of"),
        ("hardware.cpu.peak_note", "see /home/alice/gpu", "hardware.cpu.peak_note: contains an absolute path"),
    ],
)
def test_a_record_that_does_not_match_the_schema_names_the_field(record: dict, path: str, value: Any,
                                                                  message: str) -> None:
    doc = copy.deepcopy(record)
    _mutate(doc, path, value)
    with pytest.raises(RecordError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        validate(doc)


def test_a_bad_measurement_inside_the_data_names_its_path(record: dict) -> None:
    doc = copy.deepcopy(record)
    point = doc["results"][0]["data"]["sweep"]["__sweep__"]["points"][0]["__measurement__"]
    point["times_s"] = [0.001, -1]
    with pytest.raises(RecordError, match=r"results\[0\]\.data\.sweep\.points\[0\]"
                                          r"\.times_s: every time must be > 0 seconds"):
        validate(doc)


def test_a_valid_record_passes(record: dict) -> None:
    validate(record)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{ nope", "not valid JSON"),
        ('{"schema": "gpucnn-results/1"}', "generated_at: missing"),
    ],
)
def test_results_add_bad_input_is_one_line_and_exit_2(tmp_path: Path, archive_dir: Path,
                                                      content: str | None, message: str) -> None:
    source = tmp_path / "in.json"
    if content is not None:
        source.write_text(content)
    proc = cli("results", "add", str(source), env={"GPUCNN_RESULTS_DIR": str(archive_dir)})
    assert proc.returncode == 2
    assert message in proc.stderr and "in.json" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not archive_dir.exists() or not list(archive_dir.glob("*.json"))


def test_two_records_of_one_machine_and_date_never_overwrite(record: dict, tmp_path: Path,
                                                             archive_dir: Path) -> None:
    first = add(write(tmp_path / "a.json", record))
    other = copy.deepcopy(record)
    other["commit"] = "feedbee"
    second = add(write(tmp_path / "b.json", other))
    third = add(write(tmp_path / "a.json", record), force=True)  # the same record again, on purpose
    assert first.name == record_name(record)
    assert second.name == first.name.replace(".json", "-2.json")
    assert third.name == first.name.replace(".json", "-3.json")
    assert json.loads(first.read_text())["commit"] == record["commit"]
    assert json.loads(second.read_text())["commit"] == "feedbee"
    assert not [p for p in archive_dir.iterdir() if p.name.startswith(".")]  # no temporary file left


def _add_at_once(barrier: Any, source: str, folder: str, out: Any) -> None:
    barrier.wait()
    out.put(add(Path(source), Path(folder)).name)


# fork: the children need nothing but gpucnn.archive, already imported, and start at
# once (spawn would import torch eight times); they never touch torch.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_concurrent_adds_in_separate_processes_lose_nothing(record: dict, tmp_path: Path,
                                                           archive_dir: Path) -> None:
    n = 8
    sources = []
    for i in range(n):
        doc = copy.deepcopy(record)
        doc["commit"] = f"c{i:06d}"  # same machine, same date, different content
        sources.append(str(write(tmp_path / f"in{i}.json", doc)))
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_add_at_once, args=(barrier, s, str(archive_dir), out)) for s in sources]
    for p in procs:
        p.start()
    names = [out.get(timeout=120) for _ in range(n)]
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    assert len(set(names)) == n
    commits = sorted(json.loads((archive_dir / name).read_text())["commit"] for name in names)
    assert commits == [f"c{i:06d}" for i in range(n)]


def test_concurrent_cli_adds_lose_nothing(record: dict, tmp_path: Path, archive_dir: Path) -> None:
    procs = []
    for i in range(3):
        doc = copy.deepcopy(record)
        doc["commit"] = f"d{i:06d}"
        src = write(tmp_path / f"cli{i}.json", doc)
        procs.append(subprocess.Popen([sys.executable, "-m", "gpucnn.cli", "results", "add", str(src)],
                                      env={**os.environ, "GPUCNN_RESULTS_DIR": str(archive_dir)},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT))
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    stored = sorted(json.loads(p.read_text())["commit"] for p in archive_dir.glob("*.json"))
    assert stored == ["d000000", "d000001", "d000002"]


def test_a_corrupt_archive_file_names_itself(record: dict, archive_dir: Path) -> None:
    archive_dir.mkdir()
    write(archive_dir / "good-2026-01-01.json", record)
    (archive_dir / "broken-2026-01-02.json").write_text('{"schema": ')
    with pytest.raises(RecordError, match=r"results/broken-2026-01-02\.json: not valid JSON"):
        records()


@pytest.mark.parametrize(
    ("content", "message"),
    [("{ truncated", "not valid JSON"), ('{"schema": "gpucnn-results/1"}', "generated_at: missing")],
)
def test_a_bad_archive_file_fails_the_build(tmp_path: Path, content: str, message: str) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "some-gpu-2026-01-01.json").write_text(content)
    proc = build_site(tmp_path / "site", tmp_path / "cache", extra_env={"GPUCNN_RESULTS_DIR": str(folder)})
    assert proc.returncode != 0
    assert "some-gpu-2026-01-01.json" in proc.stderr and message in proc.stderr
    assert not (tmp_path / "site" / "index.html").exists()


def test_the_page_labels_archived_rows_and_never_shows_them_as_this_builds(
    record: dict, bench_run: tuple[Path, Path], tmp_path: Path, archive_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gpucnn import results
    from gpucnn.pages import results as page

    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(bench_run[1]))  # this build reuses the bench run's figures
    monkeypatch.setattr(results, "_BUILD", {})  # a new build: nothing measured in this process yet
    other = copy.deepcopy(record)
    other["generated_at"] = "2025-03-04T05:06:07+00:00"
    for r in other["results"]:
        r["measured_at"] = "2025-03-04T05:00:00+00:00"
        # another machine: ten times slower, so its figures differ from this build's
        for p in r["data"].get("sweep", {}).get("__sweep__", {}).get("points", []):
            p["__measurement__"]["times_s"] = [t * 10 for t in p["__measurement__"]["times_s"]]
    other["hardware"]["cpu"]["model"] = "Example CPU 9000"
    for r in other["results"]:
        r["hardware"]["cpu"]["model"] = "Example CPU 9000"
    stored = add(write(tmp_path / "other.json", other))

    rows, recs = page.all_rows()
    own = [h for h in rows if not h.source.archived]
    theirs = [h for h in rows if h.source.archived]
    assert own and theirs and len(recs) == 1
    assert all(h.source.provenance == "measured in this build" for h in own)
    assert all(h.source.provenance.startswith("recorded on Example CPU 9000") for h in theirs)
    assert all(h.source.provenance.endswith("2025-03-04") for h in theirs)
    assert theirs[0].source.record.name == stored.name
    # the record's own numbers (this build reused the very run the record was made from)
    assert theirs[0].matmul.times_s == pytest.approx([t * 10 for t in own[0].matmul.times_s])

    from gpucnn.render import section_sources

    section_sources()  # what earlier pages left
    text = page.comparison_table()
    assert "**measured in this build**" in text
    # the caption is the page's (docs/results.md); the section's sources line names this build, then each
    # archived record in a span marked with its source, once
    line = section_sources()
    assert line.count(f"(results/{stored.name})") == 1
    this_build = line.split('<span data-source="live">')[1].split("</span>")[0]
    assert "Measured in this build" in this_build
    assert "Example CPU 9000" not in this_build and "2025-03-04" not in this_build
    archived = line.split(f'<span data-source="archived:{stored.name}">')[1].split("</span>")[0]
    # "recorded on Example CPU 9000", or on a GPU build "recorded on <its GPU> with Example CPU 9000"
    assert "recorded on " in archived and "Example CPU 9000" in archived and "this build" not in archived
    assert f'<span data-source="archived:{stored.name}">' in text  # the row itself
    assert section_sources() == ""  # printed once: the next section starts empty
    assert any(r.machine == "Example CPU 9000" for r in page.archive_records())
    assert f'data-source="archived:{stored.name}"' in page.comparison_chart()


def test_the_page_says_when_the_archive_is_empty(archive_dir: Path) -> None:
    from gpucnn.pages import results as page

    archive_dir.mkdir()  # an empty folder (one GPUCNN_RESULTS_DIR names but that is missing fails: issue 23)

    assert page.archive_records() == ()


@pytest.mark.site
def test_the_built_pages_exist_and_label_their_rows(built_site: Path) -> None:
    html = (built_site / "results" / "index.html").read_text()
    assert "measured in this build" in html
    assert "<svg" in html
    assert (built_site / "reproduce" / "index.html").exists()


def test_the_schema_doc_names_every_field() -> None:
    doc = (ROOT / "docs" / "reproduce.md").read_text()
    fields = ["schema", "generated_at", "profile", "torch", "commit", "hardware", "results", "experiment", "params",
              "key", "measured_at", "data", "elapsed_s", "times_s", "number_per_run", "bytes_moved",
              "logical_cores", "torch_threads", "device_type", "tf32_matmul", "peaks"]
    for field in fields:
        assert f"`{field}`" in doc, field


def test_the_repository_archive_is_valid() -> None:
    assert (ROOT / "results").is_dir()
    records(ROOT / "results")  # raises on a bad file, naming it


def test_the_default_archive_is_the_repositorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUCNN_RESULTS_DIR", raising=False)
    assert archive.archive_dir() == ROOT / "results"


def test_beside_finds_an_experiment_in_every_record(record: dict, tmp_path: Path, archive_dir: Path) -> None:
    add(write(tmp_path / "a.json", record))
    add(write(tmp_path / "a.json", record), force=True)
    found = archive.beside("copy_bandwidth", device="cpu")
    assert len(found) == 2
    assert all(r.experiment == "copy_bandwidth" and rec.label([r]).startswith("recorded on ") for rec, r in found)
    assert archive.beside("copy_bandwidth", device="cuda") == []


def test_a_cpu_only_bench_from_a_gpu_machine_shows_its_cpu_rows(
    record: dict, bench_run: tuple[Path, Path], tmp_path: Path, archive_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`gpucnn bench --device cpu` on a GPU machine records the GPU in its hardware but measures the CPU alone:
    the page shows its CPU row, as it does a CPU-only machine's (found on an H100, where the bench fixture is one)."""
    from gpucnn import results
    from gpucnn.pages import results as page

    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(bench_run[1]))
    monkeypatch.setattr(results, "_BUILD", {})
    gpu = json.loads((ROOT / "results" / "nvidia-h100-80gb-hbm3-2026-11-26.json").read_text())["hardware"]["accelerator"]
    other = copy.deepcopy(record)
    other["hardware"]["cpu"]["model"] = "Example CPU 9000"
    other["hardware"]["accelerator"] = gpu
    for r in other["results"]:
        r["hardware"]["cpu"]["model"] = "Example CPU 9000"
        r["hardware"]["accelerator"] = gpu
    stored = add(write(tmp_path / "other.json", other))
    assert not records()[0].measured_an_accelerator

    rows, _ = page.all_rows()
    theirs = [h for h in rows if h.source.archived]
    assert [(h.source.device, h.source.record.name) for h in theirs] == [("cpu", stored.name)]
    assert theirs[0].matmul is not None
