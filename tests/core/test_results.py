"""The measurement cache, provenance, results.json, and the mkdocs hook's reload."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from gpucnn import results
from gpucnn.bench import Measurement
from gpucnn.render import provenance
from gpucnn.results import atomic_write_text, cache_dir, code_hash, code_modules, run
from gpucnn.specs import SPECS, Spec
from tests.conftest import ROOT
from tests.fakes import CALLS, counted


@pytest.fixture(autouse=True)
def new_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new build: no results made in this process yet."""
    monkeypatch.setattr(results, "_BUILD", {})
    CALLS.clear()


def next_build() -> None:
    """What a second `mkdocs build` starts with: only the disk cache."""
    results._BUILD.clear()


def test_a_second_build_reuses_the_result_and_its_date(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    first = run(counted, size=4)
    next_build()
    second = run(counted, size=4)
    assert len(CALLS) == 1
    assert not first.reused and second.reused
    assert second.measured_at == first.measured_at
    assert isinstance(second.data["sum"], Measurement)
    assert second.data["sum"].times_s == first.data["sum"].times_s
    assert "counted(size=4) measured in" in caplog.text
    assert "counted(size=4) reused (measured" in caplog.text


def test_the_notebooks_kernel_calls_what_this_build_measured_for_it_measured_not_reused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The build measures the notebook's experiments before its kernel starts; the kernel (another process,
    which inherits the environment) reads them from the cache and must say "measured in this build"."""
    monkeypatch.setenv(results.SHARE_ENV, str(tmp_path))
    monkeypatch.setenv(results.MEASURED_ENV, "")  # and restored after the test: run() below sets it
    first = run(counted, size=4)
    next_build()  # the kernel: only the disk cache and the inherited environment
    in_kernel = run(counted, size=4)
    assert len(CALLS) == 1 and not first.reused and not in_kernel.reused
    assert "reused" not in provenance(in_kernel)
    os.environ[results.MEASURED_ENV] = ""  # the next build: the same entry is a reuse
    next_build()
    assert run(counted, size=4).reused


def test_one_build_measures_once_even_when_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUCNN_FRESH", "1")
    run(counted, size=4)
    run(counted, size=4)  # a second page asking for the same figure
    assert len(CALLS) == 1


@pytest.mark.parametrize(
    "change",
    ["code", "fingerprint", "torch", "profile", "params"],
)
def test_a_change_measures_again(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run(counted, size=4, fingerprint="machine-a")
    next_build()
    params: dict[str, Any] = {"size": 4, "fingerprint": "machine-a"}
    if change == "code":
        original = code_hash

        def changed(name: str) -> str:
            return original(name) + "-edited"
        monkeypatch.setattr(results, "code_hash", changed)
    elif change == "fingerprint":
        params["fingerprint"] = "machine-b"
    elif change == "torch":
        monkeypatch.setattr(torch, "__version__", "99.0.0")
    elif change == "profile":
        monkeypatch.setenv("GPUCNN_PROFILE", "full")
    else:
        params["size"] = 8
    again = run(counted, **params)
    assert len(CALLS) == 2 and not again.reused
    if change == "torch":
        assert again.torch == "99.0.0"


def test_the_code_hash_covers_the_harness() -> None:
    modules = code_modules("gpucnn.experiments.matmul")
    assert {"gpucnn.bench", "gpucnn.results", "gpucnn.hardware", "gpucnn.profile", "gpucnn"} <= modules
    assert "gpucnn.render" not in modules  # drawing a chart does not change a measurement


def test_an_edit_to_the_harness_changes_the_key(tmp_path: Path) -> None:
    # A copy of the package, so that its harness can be edited.
    shutil.copytree(ROOT / "gpucnn", tmp_path / "gpucnn", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import sys; from pathlib import Path\n"
        "from gpucnn.results import code_hash\n"
        "before = code_hash('gpucnn.experiments.matmul')\n"
        "Path(sys.argv[1], 'gpucnn', 'render.py').write_text('# edited\\n', 'utf-8')\n"
        "code_hash.cache_clear(); unrelated = code_hash('gpucnn.experiments.matmul')\n"
        "with open(Path(sys.argv[1], 'gpucnn', 'bench.py'), 'a') as f: f.write('\\n# edited\\n')\n"
        "code_hash.cache_clear(); after = code_hash('gpucnn.experiments.matmul')\n"
        "print(before == unrelated, before != after)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("how", ["env", "argument"])
def test_fresh_measures_again(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(counted, size=4)
    next_build()
    if how == "env":
        monkeypatch.setenv("GPUCNN_FRESH", "1")
        again = run(counted, size=4)
    else:
        again = run(counted, size=4, fresh=True)
    assert len(CALLS) == 2 and not again.reused
    assert again.key == first.key
    next_build()
    monkeypatch.delenv("GPUCNN_FRESH", raising=False)
    # the fresh result replaced the cached one
    assert run(counted, size=4).data["sum"].times_s == again.data["sum"].times_s


@pytest.mark.parametrize(
    "content",
    ["{ not json", "", "[]", '{"experiment": "counted"}', "\udcff"],
    ids=["invalid-json", "empty", "a-list", "fields-missing", "undecodable"],
)
def test_a_corrupt_cache_entry_is_measured_again_and_logged_at_info(
    content: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mkdocs.plugins.gpucnn")
    first = run(counted, size=4)
    entry = cache_dir() / f"counted-{first.key}.json"
    if content == "\udcff":
        entry.write_bytes(b"\xff\xfe\x00garbage")
    else:
        entry.write_text(content)
    next_build()
    again = run(counted, size=4)
    assert len(CALLS) == 2 and not again.reused
    unreadable = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert unreadable and all(r.levelno == logging.INFO for r in unreadable)
    assert "measuring again" in unreadable[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    json.loads(entry.read_text())  # replaced by a good entry


@pytest.mark.parametrize("fault", ["impossible-times", "empty-data", "renamed-key", "no-shape"])
def test_a_reused_entry_is_checked_like_a_new_one(fault: str, caplog: pytest.LogCaptureFixture) -> None:
    """A cache entry whose figures beat the hardware, or whose data lost its shape, is measured again."""
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    first = run(counted, size=4)
    entry = cache_dir() / f"counted-{first.key}.json"
    doc = json.loads(entry.read_text())
    point = doc["data"]["sum"]["__measurement__"]
    if fault == "impossible-times":
        point["times_s"] = [1e-12] * len(point["times_s"])  # 2-core CPU at 10^12 calls per second
    elif fault == "empty-data":
        doc["data"] = {}
    elif fault == "renamed-key":
        doc["data"]["total"] = doc["data"].pop("sum")
    else:
        point["shape"] = []
    entry.write_text(json.dumps(doc))
    next_build()
    again = run(counted, size=4)
    assert len(CALLS) == 2 and not again.reused
    assert again.data["sum"].median > 1e-9
    [line] = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert entry.name in line and "measuring again" in line
    expected = {"impossible-times": "resolution", "empty-data": "data.sum: missing",
                "renamed-key": "data.sum: missing", "no-shape": "data.sum.shape: expected at least 1 item"}[fault]
    assert expected in line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert json.loads(entry.read_text())["data"]["sum"]["__measurement__"]["times_s"][0] > 1e-9  # healed


def test_a_reused_figure_beyond_the_peak_is_measured_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    first = run(counted, size=4)
    entry = cache_dir() / f"counted-{first.key}.json"
    doc = json.loads(entry.read_text())
    point = doc["data"]["sum"]["__measurement__"]
    point["flops"], point["peak_flops"] = 1e12, 1e9  # 1000x a 1 GFLOP/s peak
    entry.write_text(json.dumps(doc))
    next_build()
    assert not run(counted, size=4).reused
    assert "exceeds" in caplog.text and entry.name in caplog.text


def test_a_new_result_that_does_not_fit_its_data_class_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Other:
        total: Measurement

    monkeypatch.setitem(SPECS, "counted", Spec("tests.fakes", 1, Other))
    with pytest.raises(results.RecordError, match=r"counted\(size=4\) returned data that does not fit Other.*"
                                                   r"data\.total: missing"):
        run(counted, size=4)


def test_a_result_records_its_experiment_version_and_code_hash() -> None:
    from gpucnn import codehash

    r = run(counted, size=4).to_dict()
    assert r["version"] == 1
    assert r["code_hash"] == codehash.code_hash((ROOT / "tests" / "fakes.py").read_text(), "counted",
                                                (ROOT / "gpucnn" / "bench.py").read_text())
    assert results.results_document([run(counted, size=4)])["schema"] == "gpucnn-results/2"


def test_an_entry_under_the_wrong_key_is_not_shown_as_fresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.gpucnn")
    first = run(counted, size=4)
    entry = cache_dir() / f"counted-{first.key}.json"
    doc = json.loads(entry.read_text())
    doc["key"] = "0" * 20  # e.g. copied from another machine's cache
    entry.write_text(json.dumps(doc))
    next_build()
    again = run(counted, size=4)
    assert not again.reused and len(CALLS) == 2
    assert "does not match" in caplog.text


def test_an_unwritable_cache_costs_speed_not_the_result(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(blocker / "cache"))
    assert run(counted, size=4).data["size"] == 4


def test_atomic_write_keeps_the_old_content_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_atomic_write_gives_a_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.json"
    atomic_write_text(target, "{}")
    assert target.read_text() == "{}"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_provenance_names_device_torch_date_profile_and_commit() -> None:
    first = run(counted, size=4)
    next_build()
    reused = run(counted, size=4)
    text = provenance(reused)
    assert first.hardware.device_label("cpu") in text
    assert f"torch {torch.__version__}" in text
    assert first.date in text and "reused from the measurement cache" in text
    assert "profile quick" in text
    if first.commit:
        assert f"commit {first.commit}" in text


def test_a_reused_result_keeps_its_own_date() -> None:
    first = run(counted, size=4)
    entry = cache_dir() / f"counted-{first.key}.json"
    doc = json.loads(entry.read_text())
    doc["measured_at"] = "2024-02-03T04:05:06+00:00"
    entry.write_text(json.dumps(doc))
    next_build()
    reused = run(counted, size=4)
    assert reused.date == "2024-02-03"
    assert "measured 2024-02-03 (reused" in provenance(reused)
    document = results.results_document([reused])
    assert document["results"][0]["measured_at"].startswith("2024-02-03")


def _private_strings() -> list[str]:
    found = ["/root/", "/home/", "/work/", str(Path.home()), str(ROOT)]
    host = socket.gethostname()
    if len(host) >= 4:  # a very short name such as "vm" is also an ordinary word
        found.append(host)
    return found


@pytest.mark.site
def test_nothing_published_names_the_host_user_or_a_local_path(built_site: Path) -> None:
    for path in [built_site / "results.json", *sorted(built_site.rglob("*.html"))]:
        text = path.read_text(errors="replace")
        for private in _private_strings():
            assert private not in text, f"{path.relative_to(built_site)} contains {private!r}"


@pytest.mark.site
def test_results_json_has_provenance_for_every_experiment(built_site: Path) -> None:
    doc = json.loads((built_site / "results.json").read_text())
    assert doc["schema"] == results.SCHEMA
    names = {r["experiment"] for r in doc["results"]}
    assert {"matmul_sweep", "copy_bandwidth", "small_op_latency"} <= names
    for r in doc["results"]:
        assert r["torch"] and r["profile"] == "quick" and r["measured_at"][:4].isdigit()
        assert r["hardware"]["cpu"]["model"]


def test_the_hook_reloads_gpucnn_so_an_edit_takes_effect(tmp_path: Path) -> None:
    """What `mkdocs serve` relies on: after on_pre_build, gpucnn is imported afresh."""
    shutil.copytree(ROOT / "gpucnn", tmp_path / "gpucnn", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "results").mkdir()
    script = (
        "import importlib.util, sys; from pathlib import Path\n"
        "root = Path(sys.argv[1])\n"
        "spec = importlib.util.spec_from_file_location('gpucnn/mkdocs_hooks', root / 'gpucnn/mkdocs_hooks.py')\n"
        "hooks = importlib.util.module_from_spec(spec); spec.loader.exec_module(hooks)\n"
        "import gpucnn.profile, gpucnn.results\n"
        "before = gpucnn.profile.PROFILES['quick'].min_runs\n"
        "old_results = sys.modules['gpucnn.results']\n"
        "p = root / 'gpucnn/profile.py'\n"
        "p.write_text(p.read_text().replace('min_runs=5, max_matmul_n=1024', 'min_runs=7, max_matmul_n=1024'))\n"
        "hooks.on_pre_build({'config_file_path': str(root / 'mkdocs.yml')})\n"
        "import gpucnn.profile, gpucnn.results\n"
        "print(before, gpucnn.profile.PROFILES['quick'].min_runs, sys.modules['gpucnn.results'] is not old_results)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
           "GPUCNN_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5", "7", "True"]


def test_the_default_cache_is_the_checkouts_whatever_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GPUCNN_CACHE_DIR")
    monkeypatch.chdir(tmp_path)  # e.g. the notebook's kernel, which runs in docs/
    assert cache_dir() == ROOT / ".cache" / "gpucnn"


def test_a_reused_l2_sweep_is_held_to_the_working_set_of_one_copy() -> None:
    """An L2 sweep's call repeats one copy many times in the same two buffers: its bytes moved
    exceed the L2 many times over, but one copy's source and destination fit, so a point beyond the
    HBM peak is the L2's speed (as when it was measured), not an impossible figure. The same point
    with buffers four times the L2 is impossible, and the re-check says so."""
    import dataclasses

    from gpucnn import archive
    from gpucnn.results import ImpossibleResultError, check_reused

    found = [(rec, r) for rec in archive.records() for r in rec.results if r.experiment == "l2_copy_bandwidth"]
    assert found, "the archive holds a GPU record with an L2 sweep (results/)"
    record, result = found[0]
    check_reused(result, record.hardware)  # as recorded: accepted

    doc = result.to_dict()
    points = doc["data"]["sweep"]["__sweep__"]["points"]
    fastest = max(points, key=lambda p: p["__measurement__"]["bytes_moved"] / min(p["__measurement__"]["times_s"]))
    m = fastest["__measurement__"]
    peak = m["peak_bytes_per_s"]
    big = 4 * record.hardware.accelerator.l2_bytes  # one copy's buffers: twice this, beyond the cache
    m["shape"] = [big]
    m["bytes_moved"] = 2.0 * big
    m["times_s"] = [2.0 * big / (2 * peak)] * len(m["times_s"])  # twice the HBM peak
    with pytest.raises(ImpossibleResultError, match=r"exceeds .* the memory peak"):
        check_reused(dataclasses.replace(result, data=results.Result.from_dict(doc).data), record.hardware)
