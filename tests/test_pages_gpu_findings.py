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

        for fn in (bandwidth.l2_findings, fast_memory.roofline_findings, fast_memory.onchip_findings,
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


# --- Fast memory: on-chip totals of the GPUs shown, in MiB, from their own SM count and L2 ---

def test_onchip_totals_come_from_each_shown_gpu(where) -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.pages.fast_memory import SM_BY_CAPABILITY, onchip_findings, onchip_table, per_core_table
    from gpucnn.sources import accelerators

    text, table, lanes = onchip_findings(), onchip_table(), per_core_table()
    shown = [s for s in accelerators(matmul_sweep) if s.hardware.accelerator.capability in SM_BY_CAPABILITY]
    assert shown
    for s in shown:
        acc = s.hardware.accelerator
        sm = SM_BY_CAPABILITY[acc.capability]
        total = (sm.registers_bytes + sm.l1_bytes) * acc.multiprocessors + acc.l2_bytes
        assert f"{s.label} holds about **{total / MIB:,.0f} MiB**" in text
        assert f"its {short_bytes(acc.l2_bytes)} L2" in text
        assert s.cell() in lanes and f"{acc.multiprocessors * sm.fp32_flop_per_clock // 2:,} lanes" in lanes
        assert f"all {acc.multiprocessors} SMs" in table
    assert "H100 SXM (datasheet)" not in text + table + lanes
    assert not re.search(r"\d MB L2", text)  # sizes in MiB only


def test_without_a_gpu_the_example_is_the_datasheet_h100(tmp_path: Path) -> None:
    from gpucnn.pages.fast_memory import onchip_findings, per_core_table

    (tmp_path / "empty").mkdir()
    with situation(cpu_only(), tmp_path / "empty", tmp_path / "cache"):
        text, lanes = onchip_findings(), per_core_table()
    assert "an H100 SXM (datasheet) holds about" in text and "50 MB (47.7 MiB) L2 of NVIDIA's whitepaper" in text
    assert "H100 SXM (datasheet)" in lanes


# --- Fast memory: each group's best point against its own ceiling, from the data ---

def test_roofline_findings_set_each_group_against_its_own_ceiling(where) -> None:
    from gpucnn.pages.fast_memory import (
        compute_ceilings,
        own_ceiling,
        roofline_bests,
        roofline_findings,
        roofline_groups,
    )
    from gpucnn.render import fmt

    found = roofline_bests()
    text = roofline_findings()
    assert found and text
    devices = {b.source.origin + b.source.device for b in found}
    assert len(devices) >= 2  # this build's CPU and a GPU, live or archived
    for b in found:
        assert b.best.gflops == max(p.gflops for p in dict(roofline_groups(b.source))[b.group])
        assert b.ceiling == own_ceiling(b.group, compute_ceilings(b.source))
        assert b.ceiling.label.startswith("bf16" if b.group.startswith("bf16") else "FP32")
        assert f"**{fmt(100 * b.best.gflops / b.ceiling.value, 2)} %**" in text


def test_own_ceiling_is_none_where_the_precision_has_no_ceiling() -> None:
    from gpucnn.pages.fast_memory import Roof, own_ceiling

    fp32 = Roof("FP32 peak", 1.0)
    assert own_ceiling("bf16 matmul, n = 2 … 4", [fp32]) is None
    assert own_ceiling("conv2d layer fwd+bwd, C = 1", [fp32]) is fp32


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
