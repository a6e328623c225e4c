"""What the Bandwidth, Fast memory, Parallelism and Tensor cores pages say about a GPU, read from its data.

A real H200 build showed fixed text and self-contradictions: a 16 MiB copy called launch-free while its call
took as long as a 1 KiB one, an H100's on-chip total beside an H200, the H100 twice in one table, "wide conv
layers climb toward the ceiling" where they reach a third of it. Each check here computes what the sentence
must say from the same data the page used, in three situations:

* ``live``: a fake H200 (torch device ``cpu:0``) is this build's GPU, the archive is empty;
* ``archived``: a CPU-only build whose archive holds that H200's record;
* ``results``: a CPU-only build with the project's own results/ archive.

No measured value is hard-coded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import gpucnn.hardware as hardware
import gpucnn.results as results
from tests.test_archived_series import as_cuda, write_record
from tests.test_fake_accelerator import cpu_only, fake_build, fake_report

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("bandwidth", "fast_memory", "parallelism", "tensor_cores")
MIB = 1024**2
H200_L2 = 60 * MIB


def h200() -> hardware.HardwareReport:
    report = fake_report(name="NVIDIA H200")
    return dataclasses.replace(report, accelerator=dataclasses.replace(report.accelerator, l2_bytes=H200_L2))


def situation(report: hardware.HardwareReport, archive: Path, cache: Path):
    return fake_build(report, archive, cache, PAGES)


@pytest.fixture(scope="module")
def live_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The fake H200's results as a record, measured once."""
    base = tmp_path_factory.mktemp("live")
    (base / "empty").mkdir()
    report = h200()
    with situation(report, base / "empty", base / "cache"):
        from gpucnn.pages import bandwidth, fast_memory, parallelism

        for fn in (bandwidth.l2_facts, fast_memory.roofline_table, fast_memory.onchip,
                   parallelism.littles_law):
            fn()
        return as_cuda(results.results_document(list(results._BUILD.values()), hardware=report))


@pytest.fixture(params=["live", "archived", "results"])
def where(request, live_record, tmp_path: Path) -> Iterator[str]:
    """Pages see one of the three situations while the test runs."""
    if request.param == "live":
        (tmp_path / "empty").mkdir()
        with situation(h200(), tmp_path / "empty", tmp_path / "cache"):
            yield "live"
    elif request.param == "archived":
        write_record(tmp_path / "results", live_record, "fake-h200.json")
        with situation(cpu_only(), tmp_path / "results", tmp_path / "cache"):
            yield "archived"
    else:
        with situation(cpu_only(), ROOT / "results", tmp_path / "cache"):
            yield "results"




# --- Parallelism: one Little's-law row per GPU model; ticks that end on the largest size ---

def _models() -> list[str]:
    from gpucnn.pages.parallelism import littles_law

    return [re.sub(r" \(.*\)$", "", e.name) for e in littles_law().examples]


def test_littles_law_has_one_row_per_gpu_model(where) -> None:
    models = _models()
    assert models and len(models) == len(set(models)), models
    assert "H200" in models


def test_a_live_h100_replaces_the_datasheet_example(tmp_path: Path) -> None:
    from gpucnn.pages.parallelism import littles_law

    (tmp_path / "empty").mkdir()
    with situation(fake_report(), tmp_path / "empty", tmp_path / "cache"):
        law = littles_law()
        models = _models()
    assert models == ["H100"] and not law.h100_example



# --- Tensor cores: every GPU at the smallest factor is named, with the cited reason ---



