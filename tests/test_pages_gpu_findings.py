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
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import gpucnn.hardware as hardware
import gpucnn.results as results
from gpucnn.bench import Measurement
from gpucnn.experiments.memory import copy_bandwidth, l2_copy_bandwidth
from gpucnn.render import short_bytes
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

        for fn in (bandwidth.l2_findings, fast_memory.roofline_table, fast_memory.onchip,
                   parallelism.littles_law_table):
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


# --- Bandwidth: the one-copy-per-call sentence follows the overhead region; the L2 figure is a floor ---

def _copy(buffer_bytes: int, seconds: float) -> Measurement:
    return Measurement(name="copy", device="cuda", dtype="float32", shape=(buffer_bytes,), threads=1,
                       times_s=(seconds,) * 5, number_per_run=1, bytes_moved=2.0 * buffer_bytes)


def test_one_copy_per_call_is_call_bound_exactly_inside_the_overhead_region() -> None:
    from gpucnn.pages.bandwidth import one_per_call_note, overhead_region

    # flat for the small sizes (the call's cost), then proportional to the size
    sizes = [1024 * 4**i for i in range(9)]
    plain = [_copy(b, max(7e-6, 2.0 * b / 3e12)) for b in sizes]
    span = overhead_region(plain)
    assert span is not None
    inside = [b for b in sizes if span[0] <= 2.0 * b <= span[1]]
    outside = [b for b in sizes if b not in inside]
    assert inside and outside, "the synthetic sweep must have both regions"
    for b in inside:
        assert "the call's fixed cost, not the L2, set the time" in one_per_call_note(plain, b), short_bytes(b)
    for b in outside:
        assert "the copy itself set the time" in one_per_call_note(plain, b), short_bytes(b)
    assert one_per_call_note(plain, 3) == ""  # a size the sweep lacks: no sentence


def test_l2_findings_agree_with_the_overhead_region_and_call_the_l2_figure_a_floor(where) -> None:
    from gpucnn.datasheets import memory_kind
    from gpucnn.pages.bandwidth import l2_findings, overhead_region
    from gpucnn.sources import accelerators, sibling

    text = l2_findings()
    checked = 0
    for s in accelerators(l2_copy_bandwidth):
        pts, l2 = s.result.data["sweep"].points, s.result.data["cache_bytes"]
        inside = [m for m in pts if l2 and 2 * m.shape[0] <= l2]
        if not inside or len(inside) == len(pts):
            continue
        paragraph = next(p for p in text.split("\n\n") if p.startswith(f"On {s.label},"))
        assert "floor of" in paragraph
        if f"as fast as {memory_kind(s.hardware.accelerator)}." in paragraph:
            assert "**at least " in paragraph
        best = max(inside, key=lambda m: m.gbps or 0)
        plain = sibling(s, copy_bandwidth).result.data["sweep"].points
        same = next((m for m in plain if m.shape[0] == best.shape[0]), None)
        if same is not None:
            span = overhead_region(plain)
            call_bound = bool(span and span[0] <= same.bytes_moved <= span[1])
            assert ("the call's fixed cost, not the L2, set the time" in paragraph) == call_bound
            assert ("the copy itself set the time" in paragraph) == (not call_bound)
            assert "launch was already a small part" not in paragraph
        checked += 1
    if where == "results" and not checked:
        pytest.skip("no archived record in results/ has the launch-free L2 sweep")
    assert checked or where == "results"


# --- Parallelism: one Little's-law row per GPU model; ticks that end on the largest size ---

def _row_models(table: str) -> list[str]:
    rows = [line for line in table.splitlines() if line.startswith("| ") and "TB/s" in line]
    names = [re.sub(r"<[^>]+>", "", row.split("|")[1]).strip() for row in rows]
    return [re.sub(r" \(.*\)$", "", name) for name in names]


def test_littles_law_has_one_row_per_gpu_model(where) -> None:
    from gpucnn.pages.parallelism import littles_law_table

    models = _row_models(littles_law_table())
    assert models and len(models) == len(set(models)), models
    assert "H200" in models


def test_a_live_h100_replaces_the_datasheet_example(tmp_path: Path) -> None:
    from gpucnn.pages.parallelism import littles_law_table

    (tmp_path / "empty").mkdir()
    with situation(fake_report(), tmp_path / "empty", tmp_path / "cache"):
        table = littles_law_table()
    assert _row_models(table) == ["H100"] and "H100 SXM (datasheet)" not in table and "for the example" not in table


def test_matmul_ticks_end_on_the_largest_size_and_skip_neighbours() -> None:
    from gpucnn.pages.parallelism import _ticks

    for count in range(1, 14):
        ns = [2**i for i in range(1, count + 1)]
        ticks = [n for n, _label in _ticks(ns)]
        assert ticks[-1] == ns[-1]
        assert all(ns.index(b) - ns.index(a) == 2 for a, b in itertools.pairwise(ticks))


# --- Tensor cores: every GPU at the smallest factor is named, with the cited reason ---

def test_every_gpu_at_the_smallest_factor_is_named() -> None:
    from gpucnn.pages.tensor_cores import DOUBLED_FP32, at_factor, factor_summary, factors

    text = factor_summary()
    low = min(factors("bf16").values())
    tied = at_factor("bf16", low)
    assert tied and all(label in text for label in tied)
    assert "GeForce card" not in text
    if all(label in DOUBLED_FP32 for label in tied):
        assert "doubled the FP32 datapath" in text


def test_the_reason_is_left_out_where_it_does_not_apply(monkeypatch) -> None:
    from gpucnn.datasheets import GPU_MODELS, GpuModel, GpuPeaks
    from gpucnn.pages import tensor_cores

    odd = GpuModel("Made-up X1", ("X1",), 1, 1, GpuPeaks(100e12, 50e12, 100e12, 1e12, "test", 100e12))
    monkeypatch.setattr(tensor_cores, "GPU_MODELS", (*GPU_MODELS, odd))
    text = tensor_cores.factor_summary()
    assert "doubled the FP32 datapath" not in text
    assert "The smallest BF16 factor is that of the Made-up X1." in text
