"""Archived GPU series: the same figures as a live GPU, labelled and compared within their own record.

The pages are rendered through their builders (not a whole site build), in
these situations:

* ``live``: a fake accelerator X (an H100 whose torch device is ``cpu:0``) is
  this build's, the archive is empty. Its results become a record of X;
* ``archived``: a CPU-only build whose archive holds only that record;
* variants of the record: a superseded experiment, another CPU, an empty
  archive, and a live X beside an archived X.

What is checked is the machine-readable marker of each figure's source
(``data-source="live"`` or ``"archived:<file>"``) and the short labels that
``gpucnn.sources.Source`` gives, never a measured value.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from pathlib import Path

import pytest

import gpucnn.hardware as hardware
import gpucnn.results as results
import gpucnn.sources as sources
from gpucnn.archive import read
from tests.fakes import as_cuda, cpu_only, fake_build, fake_report, write_record
from tests.pages.results_words import archive_words

MODEL = "H100"
RECORD = "fake-h100.json"
MARK = f'data-source="archived:{RECORD}"'
# Every page that shows a GPU series on a GPU build.
GPU_PAGES = ("summary", "gpu", "ann", "cnn", "training", "bandwidth", "parallelism", "fast_memory", "measuring",
             "results", "tensor_cores")


def _render(modules: tuple[str, ...] = GPU_PAGES) -> dict[str, str]:
    """Every zero-argument builder of the page modules: {module.function: output}, each output followed by
    the sources line its section would end with (``render.section_sources``)."""
    from gpucnn.render import section_sources

    section_sources()
    out: dict[str, str] = {}
    for name in modules:
        module = importlib.import_module(f"gpucnn.pages.{name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or fname.startswith("_"):
                continue
            if any(p.default is inspect.Parameter.empty for p in inspect.signature(fn).parameters.values()):
                continue
            value = fn()
            if isinstance(value, str):
                out[f"{name}.{fname}"] = value + section_sources()
            elif hasattr(value, "_repr_html_"):
                out[f"{name}.{fname}"] = value._repr_html_() + section_sources()
            else:
                section_sources()
    return out


def situation(report: hardware.HardwareReport, archive: Path, cache: Path):
    """Pages see ``report`` as this build's hardware and ``archive`` as results/."""
    return fake_build(report, archive, cache, GPU_PAGES)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict]:
    """Pages with X live and an empty archive, and X's record (its results.json)."""
    base = tmp_path_factory.mktemp("live")
    (base / "empty").mkdir()
    report = fake_report()
    with situation(report, base / "empty", base / "cache"):
        pages = _render()
        document = results.results_document(list(results._BUILD.values()), hardware=report)
    return pages, as_cuda(document)


@pytest.fixture(scope="module")
def archived(live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Pages of a CPU-only build whose archive holds X's record."""
    base = tmp_path_factory.mktemp("archived")
    write_record(base / "results", live[1])
    with situation(cpu_only(), base / "results", base / "cache"):
        return _render()


def _shows(pages: dict[str, str], label: str) -> set[str]:
    return {key for key, html in pages.items() if label in html}


def test_every_gpu_figure_of_a_live_build_is_drawn_from_the_archive(live, archived) -> None:
    live_pages, _ = live
    shown_live = _shows(live_pages, f"{MODEL} (this build)")
    shown_archived = _shows(archived, f"{MODEL} (archived")
    assert shown_live, "the live fake accelerator was not drawn at all"
    assert shown_archived == shown_live
    # every GPU-bearing page shows it
    assert {key.split(".")[0] for key in shown_archived} == set(GPU_PAGES)
    # and each such figure (a sentence need not) carries the record's marker, and names where it was recorded
    for key in shown_archived:
        if not key.endswith("findings"):
            assert MARK in archived[key], key
    joined = "\n".join(archived.values())
    assert "recorded on NVIDIA H100 80GB HBM3" in joined


def test_no_archived_figure_is_called_measured_in_this_build(archived) -> None:
    for key, html in archived.items():
        for span in re.findall(rf"<span {MARK}>(.*?)</span>", html):
            assert "measured in this build" not in span and "this build)" not in span, key
        assert f"{MODEL} (this build)" not in html, key


def test_archived_series_are_drawn_differently(archived) -> None:
    chart = archived["parallelism.gflops_chart"]
    group = re.search(rf'<g id="[^"]+" {MARK}>(.*?)</g>', chart, re.S)
    assert group, "the archived line has no marked SVG group"
    assert "stroke-dasharray" in group.group(1)  # dashed
    assert 'fill="none"' in chart or "fill: none" in group.group(1)  # hollow markers


def test_a_live_accelerator_replaces_the_archived_record_of_its_model(live, tmp_path: Path) -> None:
    write_record(tmp_path / "results", live[1])
    with situation(fake_report(), tmp_path / "results", tmp_path / "cache"):
        pages = _render(("parallelism", "bandwidth", "summary"))
    assert all(MARK not in html for html in pages.values())
    assert f"{MODEL} (this build)" in pages["parallelism.gflops_chart"]


def test_a_superseded_experiment_is_not_drawn_and_the_results_page_says_so(live, tmp_path: Path) -> None:
    document = copy.deepcopy(live[1])
    for r in document["results"]:
        if r["experiment"] == "copy_bandwidth":
            r["version"] = 99
    write_record(tmp_path / "results", document)
    with situation(cpu_only(), tmp_path / "results", tmp_path / "cache"):
        pages = _render(("bandwidth", "results", "parallelism"))
        summary = archive_words()
    assert MARK not in pages["bandwidth.copy_charts"]
    assert MARK in pages["parallelism.gflops_chart"]  # the record's other experiments still are
    assert "superseded" in summary and "copy_bandwidth" in summary


def test_a_speed_up_is_taken_within_one_record(live, tmp_path: Path) -> None:
    """Make the record's own CPU 5x slower at copying: the printed GPU/CPU ratio must follow it."""
    document = copy.deepcopy(live[1])
    for r in document["results"]:
        if r["experiment"] == "copy_bandwidth" and r["params"]["device"] == "cpu":
            for point in r["data"]["sweep"]["__sweep__"]["points"]:
                m = point["__measurement__"]
                m["times_s"] = [t * 5 for t in m["times_s"]]
    path = write_record(tmp_path / "results", document)
    record = read(path)
    gpu = next(r for r in record.results if r.experiment == "copy_bandwidth" and r.params["device"] == "cuda")
    cpu = next(r for r in record.results if r.experiment == "copy_bandwidth" and r.params["device"] == "cpu")
    expected = gpu.data["sweep"].points[-1].gbps / cpu.data["sweep"].points[-1].gbps
    from gpucnn.pages import bandwidth

    with situation(cpu_only(), tmp_path / "results", tmp_path / "cache"):
        ratios = bandwidth.dram_facts().ratios
    assert [r.ratio for r in ratios] == [pytest.approx(expected)]
    assert ratios[0].cpu.archived and ratios[0].cpu.origin == ratios[0].gpu.origin


def test_an_empty_archive_builds_without_gpu_series(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    from gpucnn.pages import bandwidth

    with situation(cpu_only(), tmp_path / "empty", tmp_path / "cache"):
        pages = _render(("bandwidth", "results", "summary"))
        assert sources.no_gpu_state(bandwidth.copy_facts().found) == "none"
        from gpucnn.pages import results as results_page

        records = results_page.archive_records()
    assert all("archived:" not in html for html in pages.values())
    assert records == ()


def test_strings_from_a_record_are_escaped_everywhere(live) -> None:
    """A record is untrusted: validation refuses markup in names, and the renderer escapes it regardless."""
    from gpucnn.archive import Record
    from gpucnn.hardware import HardwareReport
    from gpucnn.results import Result

    document = copy.deepcopy(live[1])
    evil = "H100 <script>alert(1)</script>\n| x |"
    document["hardware"]["accelerator"]["name"] = evil
    for r in document["results"]:
        r["hardware"]["accelerator"]["name"] = evil
    hw = HardwareReport.from_dict(document["hardware"])
    record = Record(RECORD, document, hw, tuple(Result.from_dict(r) for r in document["results"]))
    result = next(r for r in record.results if r.experiment == "matmul_sweep" and r.params["device"] == "cuda")
    src = sources.Source("cuda", result, record, frozenset())
    for html in (src.cell(), sources.record_lines([src]), src.cell(src.provenance)):
        assert "<script>" not in html and "\n" not in html and "| x |" not in html
