"""Advantage 3 (fast memory): the facts gpucnn.pages.fast_memory gives docs/fast-memory.md, checked against the
data they come from. Verdicts, numbers and sources, never the page's wording.

Situations: this CPU-only build with the project's results/ archive (H100 and H200 records), a fake live H100
(torch device ``cpu:0``) beside it, and synthetic rows for the branches real data may not reach.
No measured value is asserted.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpucnn.datasheets import memory_kind
from gpucnn.measurement import Measurement
from tests import fakes
from tests.conftest import ROOT
from tests.fakes import cpu_only, fake_build, fake_report

PAGES = ("fast_memory",)
# Fixtures: this build's GPU a fake H200 (live), its record archived, or results/ (see tests/fakes.py).
live_record, where = fakes.live_record, fakes.where
MIB = 1024**2


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One measurement cache per situation, kept for the module: each is measured once."""
    return {name: tmp_path_factory.mktemp(f"{name}-cache") for name in ("results", "live")}


@pytest.fixture(params=["results", "live"])
def build(request, caches: dict[str, Path]) -> Iterator[str]:
    """The page's functions see this CPU-only build (or a live fake H100) and results/. Function-scoped, so
    that a test building its own situation never runs inside this one."""
    report = cpu_only() if request.param == "results" else fake_report()
    with fake_build(report, ROOT / "results", caches[request.param], PAGES):
        yield request.param


@pytest.fixture(autouse=True)
def _forget_noted_sources() -> Iterator[None]:
    """Facts note the sources they stand on until a section line prints them: fake ones must not leak."""
    yield
    from gpucnn.sources import take_section

    take_section()


# --- the memory roof: a GPU's datasheet, else the copy alone (never add or relu) ---

def test_the_dram_roof_is_the_datasheet_on_a_gpu_and_the_copy_alone_on_a_cpu(build) -> None:
    from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
    from gpucnn.figures import dram_point
    from gpucnn.pages import fast_memory as fm
    from gpucnn.sources import sibling

    found = fm.roofline_sources()
    assert any(s.is_cpu for s in found) and any(not s.is_cpu for s in found)
    for s in found:
        dram = fm.memory_roofs(s)[0]
        if s.is_cpu:
            assert (dram.name, dram.how, dram.cite) == ("DRAM", fm.MEASURED_COPY, None)
            assert dram.value == dram_point(sibling(s, copy_bandwidth).result).gbps
        else:
            assert dram.name == memory_kind(s.hardware.accelerator) and dram.how == fm.DATASHEET and dram.cite
            assert dram.value == s.hardware.accelerator.peaks.bandwidth / 1e9
        ew = sibling(s, elementwise_bandwidth).result.typed
        assert dram.value not in (ew.add.gbps, ew.relu.gbps)  # neither stream sets the roof it is scored against


def test_roof_sets_name_what_draws_each_roof_and_ceiling(build) -> None:
    from gpucnn.pages import fast_memory as fm

    sets = fm.roof_sets()
    assert [r.source for r in sets] == fm.roofline_sources()
    for r in sets:
        assert r.dram == fm.memory_roofs(r.source)[0] and list(r.ceilings) == fm.compute_ceilings(r.source)
        assert all(c.how == ("estimate" if r.source.is_cpu else fm.DATASHEET) for c in r.ceilings)
        if r.cache is not None:
            assert r.cache.value > r.dram.value and r.cache.name == ("cache" if r.source.is_cpu else "L2")


def test_the_dram_roof_falls_back_to_the_copy_where_a_gpu_has_no_datasheet_bandwidth(build, monkeypatch) -> None:
    import gpucnn.pages.fast_memory as fm
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.figures import dram_point
    from gpucnn.sources import sibling

    monkeypatch.setattr(fm, "hbm_datasheet", lambda src: None)
    gpus = [s for s in fm.roofline_sources() if not s.is_cpu]
    assert gpus
    for s in gpus:
        dram = fm.memory_roofs(s)[0]
        assert dram.value == dram_point(sibling(s, copy_bandwidth).result).gbps
        assert dram.how == fm.MEASURED_COPY and dram.name == memory_kind(s.hardware.accelerator)


def test_an_l2_roof_from_the_one_copy_sweep_is_a_lower_bound(build, monkeypatch) -> None:
    import gpucnn.pages.fast_memory as fm
    from gpucnn.experiments.memory import l2_copy_bandwidth

    real = fm.sibling
    monkeypatch.setattr(fm, "sibling", lambda src, fn, **k: None if fn is l2_copy_bandwidth else real(src, fn, **k))
    for s in fm.roofline_sources():
        for r in fm.memory_roofs(s)[1:]:
            assert r.lower_bound == (not s.is_cpu) and r.how == (fm.COPY_SWEEP if s.is_cpu else fm.PER_CALL)


def test_roofline_ceilings_are_datasheet_peaks_not_the_best_matmul() -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.pages.fast_memory import compute_ceilings, memory_roofs
    from gpucnn.sources import accelerators

    found = [s for s in accelerators(matmul_sweep) if s.archived]
    if not found:
        pytest.skip("no archived accelerator record in results/")
    for src in found:
        peaks = src.hardware.accelerator.peaks
        ceilings = {c.name: c.value for c in compute_ceilings(src)}
        assert ceilings["FP32"] == peaks.fp32 / 1e9 and ceilings["bf16"] == peaks.bf16 / 1e9
        assert max(m.gflops for m in src.result.typed.sweep.points) not in ceilings.values()
        roofs = memory_roofs(src)
        assert roofs[0].value == peaks.bandwidth / 1e9
        assert all(r.value > roofs[0].value for r in roofs[1:])


def test_conv_min_bytes_counts_each_tensor_once() -> None:
    from gpucnn.pages.fast_memory import conv_min_bytes

    assert conv_min_bytes(batch=2, channels=3, image=5, kernel=3) == 4.0 * (4 * 2 * 3 * 25 + 2 * 9 * 9)


# --- the chart: one per device, text >= 10 pt, ceilings never on top of each other ---

def test_each_device_gets_its_own_roofline_with_labels_off_the_plot(build) -> None:
    from gpucnn.pages.fast_memory import roofline_chart, roofline_sources

    for src in roofline_sources():
        html = roofline_chart(src)
        assert f"Roofline: {src.label}" in html and f'data-source="{src.origin}"' in html
        assert "data-label-of" not in html  # ceilings on the axis, roofs in the legend
        sizes = [float(x) for x in re.findall(r"font-(?:size:|: *)\s*([\d.]+)px", html)]
        assert sizes and min(sizes) >= 10, sizes


def test_ceiling_ticks_merge_equal_stack_near_and_keep_far_apart() -> None:
    from gpucnn.pages.fast_memory import Roof, ceiling_ticks

    fp32, bf16_same = Roof("FP32", 100.0, "estimate"), Roof("bf16", 100.0, "estimate")
    ticks = ceiling_ticks([fp32, bf16_same], 0.01, 1000.0, 280.0)
    assert ticks == [(pytest.approx(100.0), "FP32 = bf16 peak (est.)")]
    near = ceiling_ticks([fp32, Roof("bf16", 120.0, "estimate")], 0.01, 1000.0, 280.0)
    assert len(near) == 1 and near[0][1] == "bf16 peak (est.)\nFP32 peak (est.)"
    far = ceiling_ticks([Roof("FP32", 67e3, "datasheet"), Roof("bf16", 989e3, "datasheet")], 1e-3, 2e6, 280.0)
    assert [t for _, t in far] == ["FP32 peak", "bf16 peak"]


# --- each group's best point against its own ceiling; add and relu against their memory roof ---

def test_roofline_bests_set_each_group_against_its_own_ceiling(where) -> None:
    from gpucnn.pages.fast_memory import compute_ceilings, own_ceiling, roofline_bests, roofline_groups

    found = roofline_bests()
    assert len({b.source.origin + b.source.device for b in found}) >= 2
    for b in found:
        assert b.best.gflops == max(p.gflops for p in dict(roofline_groups(b.source))[b.group])
        assert b.ceiling == own_ceiling(b.group, compute_ceilings(b.source))
        assert b.ceiling.name == ("bf16" if b.group.startswith("bf16") else "FP32")


def test_own_ceiling_is_none_where_the_precision_has_no_ceiling() -> None:
    from gpucnn.pages.fast_memory import Roof, own_ceiling

    fp32 = Roof("FP32", 1.0, "datasheet")
    assert own_ceiling("bf16 matmul, n = 2 … 4", [fp32]) is None
    assert own_ceiling("conv2d fwd+bwd, C = 1", [fp32]) is fp32


def test_add_is_scored_against_a_roof_it_does_not_set(build) -> None:
    from gpucnn.pages.fast_memory import roofline_bests, roofline_table
    from gpucnn.render import fmt

    adds = [b for b in roofline_bests() if b.best.label == "add"]
    assert {b.source.is_cpu for b in adds} == {True, False}
    table = roofline_table()
    for b in adds:
        gbps = b.best.gflops / b.best.intensity  # far left of every ridge: its GB/s over the roof's
        assert b.pct_of_roofline == pytest.approx(100 * gbps / b.dram.value)
        assert f"{fmt(b.pct_of_roofline, 2)} %" in table


def test_stream_devices_give_each_device_its_own_roof_and_verdicts(build) -> None:
    from gpucnn.pages.fast_memory import STREAM_NEAR_ROOF, memory_roofs, stream_devices

    devices = stream_devices()
    assert devices
    for d in devices:
        assert {b.best.label for b in d.streams} == {"add", "relu"}
        assert d.roof == memory_roofs(d.source)[0]
        assert d.below_half == tuple(b for b in d.streams if b.pct_of_roofline < 100 * STREAM_NEAR_ROOF)
        assert d.above_roof == tuple(b for b in d.streams if b.pct_of_roofline > 100)


def _fake_source(label: str, is_cpu: bool) -> types.SimpleNamespace:
    return types.SimpleNamespace(label=label, origin=label, device="cpu" if is_cpu else "cuda", is_cpu=is_cpu)


def _best(src, op: str, gbps: float, roof):
    from gpucnn.pages.fast_memory import GroupBest, Roof, RooflinePoint

    intensity = 1 / 12 if op == "add" else 1 / 8
    point = RooflinePoint(op, intensity, gbps * intensity, gbps * intensity, gbps * intensity, 5)
    return GroupBest(src, "add (x + y)" if op == "add" else "relu", point, Roof("FP32", 1e6, "estimate"), roof)


def test_stream_verdicts_for_a_cpu_above_its_copy_and_a_gpu_far_below_its_datasheet(monkeypatch) -> None:
    import gpucnn.pages.fast_memory as fm

    cpu, gpu = _fake_source("CPU X", True), _fake_source("GPU Y", False)
    copy_roof, gddr = fm.Roof("DRAM", 10.0, fm.MEASURED_COPY), fm.Roof("GDDR", 1000.0, fm.DATASHEET)
    monkeypatch.setattr(fm, "roofline_bests", lambda: [
        _best(cpu, "add", 11.0, copy_roof), _best(cpu, "relu", 9.0, copy_roof),
        _best(gpu, "add", 300.0, gddr), _best(gpu, "relu", 900.0, gddr)])
    by_label = {d.source.label: d for d in fm.stream_devices()}
    c, g = by_label["CPU X"], by_label["GPU Y"]
    assert [b.best.label for b in c.above_roof] == ["add"] and not c.below_half
    assert [round(b.pct_of_roofline) for b in c.streams] == [110, 90]
    assert [b.best.label for b in g.below_half] == ["add"] and not g.above_roof and g.roof is gddr


# --- reuse: matmul against add, and the same product with and without reuse ---

def test_reuse_gaps_are_the_tables_matmul_over_add(build) -> None:
    from gpucnn.pages.fast_memory import reuse_gaps, reuse_table
    from gpucnn.render import fmt

    gaps, table = reuse_gaps(), reuse_table()
    assert len(gaps) >= 2 and gaps[0].source.is_cpu and not gaps[0].source.archived
    printed = re.findall(r"\| matmul n=\d+ \|[^\n]*\| ([\d,.]+)x \|", table)
    assert sorted(printed) == sorted(fmt(g.ratio) + "" for g in gaps)


@pytest.mark.parametrize("ratio", [1.26, 1.45, 0.8])
def test_the_against_add_column_keeps_a_ratio_near_one_readable(build, monkeypatch, ratio: float) -> None:
    """Issue 19: relu at 1.26x and 1.45x add's rate printed as "1x" (a whole-number format)."""
    import gpucnn.pages.fast_memory as fm
    from gpucnn.render import fmt

    real = fm.sibling

    def sibling(src, fn, **k):  # relu at ``ratio`` times add's GFLOP/s, every device
        ew = real(src, fn, **k)
        if ew is None:
            return None
        add = ew.result.typed.add
        relu = dataclasses.replace(add, name="relu", times_s=tuple(t / ratio for t in add.times_s))
        result = types.SimpleNamespace(typed=dataclasses.replace(ew.result.typed, relu=relu))
        return types.SimpleNamespace(result=result, archived=ew.archived, origin=ew.origin, label=ew.label)

    monkeypatch.setattr(fm, "sibling", sibling)
    monkeypatch.setattr(fm, "note", lambda cited: None)
    cells = re.findall(r"\| relu \|[^\n]*\| ([^|]+) \|\n", fm.reuse_table())
    assert cells and all(c.strip() == f"{fmt(ratio)}x" for c in cells), cells
    assert f"{fmt(ratio)}x" != "1x"


def test_the_broadcast_stands_beside_the_copy_and_the_verdict_follows_it(build) -> None:
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.experiments.reuse import reuse_ratio
    from gpucnn.figures import dram_point
    from gpucnn.pages.fast_memory import BROADCAST_NEAR_COPY, broadcasts
    from gpucnn.sources import sibling, sources

    found = broadcasts()
    assert len(found) >= 2  # this build's CPU and a GPU (live or archived)
    assert {b.source.label for b in found} <= {s.label for s in sources(reuse_ratio)}
    for b in found:
        d = b.source.result.typed
        n = max({m.shape[0] for m in d.matmul.points} & {m.shape[0] for m in d.broadcast.points})
        m = next(p for p in d.matmul.points if p.shape[0] == n)
        bc = next(p for p in d.broadcast.points if p.shape[0] == n)
        assert (b.n, b.ratio, b.broadcast_gbps) == (n, bc.median / m.median, bc.gbps)
        assert b.copy_gbps == dram_point(sibling(b.source, copy_bandwidth).result).gbps
        assert b.near_copy == (bc.gbps >= BROADCAST_NEAR_COPY * b.copy_gbps)
        assert b.traffic_ratio == pytest.approx(bc.gbps / b.copy_gbps * b.ratio)


@pytest.mark.parametrize(("scale", "near"), [(1.1, True), (10.0, False)])
def test_the_broadcast_verdict_turns_on_the_copy_bandwidth(build, monkeypatch, scale: float, near: bool) -> None:
    import gpucnn.pages.fast_memory as fm

    first = fm.broadcasts()[0]
    copy = Measurement(name="copy", device=first.source.device, dtype="float32", shape=(1,), threads=1,
                       times_s=(1.0,) * 5, number_per_run=1, bytes_moved=scale * first.broadcast_gbps * 1e9)
    monkeypatch.setattr(fm, "dram_point", lambda result: copy)
    assert fm.broadcasts()[0].near_copy is near


def test_no_copy_record_leaves_the_broadcast_without_a_verdict(build, monkeypatch) -> None:
    import gpucnn.pages.fast_memory as fm

    monkeypatch.setattr(fm, "sibling", lambda src, fn, **k: None)
    found = fm.broadcasts()
    assert found and all(b.copy_gbps is None and b.near_copy is None and b.traffic_ratio is None for b in found)
    assert "| – |" in fm.broadcast_table()


# --- small ops: each GPU beside its own host CPU ---

def test_latency_pairs_each_gpu_with_its_own_host(build) -> None:
    from gpucnn.experiments.latency import small_op_latency
    from gpucnn.pages.fast_memory import latency
    from gpucnn.results import run
    from gpucnn.sources import pairs

    lat = latency()
    cpu = run(small_op_latency, device="cpu").typed
    assert (lat.cpu_single_s, lat.cpu_stream_s) == (cpu.matmul2x2_single.median, cpu.matmul2x2_stream.median)
    assert [(p.gpu.label, p.cpu.label) for p in lat.pairs] == [(p.gpu.label, p.cpu.label)
                                                               for p in pairs(small_op_latency)]
    assert lat.pairs and all(p.gpu.origin == p.cpu.origin for p in lat.pairs)
    for p in lat.pairs:
        assert p.ratio == p.gpu_single_s / p.cpu_single_s
    if build == "live":
        assert any(not p.gpu.archived for p in lat.pairs)


# --- per core and on chip: vendor figures for each GPU shown ---

def test_bytes_per_flop_divides_l1_bandwidth_by_fp32_rate() -> None:
    from gpucnn.pages.fast_memory import FMA_BYTES_PER_FLOP, H100_SM, XEON_CORE, onchip

    assert H100_SM.bytes_per_flop == H100_SM.l1_bytes_per_clock / H100_SM.fp32_flop_per_clock
    assert H100_SM.bytes_per_flop < XEON_CORE.bytes_per_flop  # the point the page makes, from the cited figures
    facts = onchip()
    assert facts.gpu_reuse == FMA_BYTES_PER_FLOP / facts.first.sm.bytes_per_flop
    assert facts.cpu_reuse == FMA_BYTES_PER_FLOP / XEON_CORE.bytes_per_flop


def test_onchip_totals_come_from_each_shown_gpu(where) -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.pages.fast_memory import SM_BY_CAPABILITY, onchip, onchip_table, per_core, per_core_table
    from gpucnn.sources import accelerators

    facts, table, lanes, core = onchip(), onchip_table(), per_core_table(), per_core()
    shown = [s for s in accelerators(matmul_sweep) if s.hardware.accelerator.capability in SM_BY_CAPABILITY]
    assert shown and [g.source for g in facts.gpus] == shown and core.from_reports
    for g, s in zip(facts.gpus, shown, strict=True):
        acc = s.hardware.accelerator
        sm = SM_BY_CAPABILITY[acc.capability]
        assert g.on_chip_bytes == (sm.registers_bytes + sm.l1_bytes) * acc.multiprocessors + acc.l2_bytes
        assert s.cell() in lanes and f"{acc.multiprocessors * sm.fp32_flop_per_clock // 2:,} lanes" in lanes
        assert f"all {acc.multiprocessors} SMs" in table
    assert facts.cpu_holds_more == any(h.llc_bytes >= max(g.on_chip_bytes for g in facts.gpus) for h in facts.hosts)
    assert "H100 SXM (datasheet)" not in table + lanes


def test_without_a_gpu_the_example_is_the_datasheet_h100(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with fake_build(cpu_only(), tmp_path / "empty", tmp_path / "cache", PAGES):
        from gpucnn.pages.fast_memory import EXAMPLE_L2_BYTES, onchip, per_core

        facts, core = onchip(), per_core()
    assert [g.source for g in facts.gpus] == [None] and facts.gpus[0].l2_bytes == EXAMPLE_L2_BYTES
    assert not core.from_reports


@pytest.mark.parametrize("above", [True, False])
def test_a_core_faster_than_its_estimate_is_flagged(above: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.hardware import detect
    from gpucnn.pages import fast_memory

    hw = detect()
    if hw.cpu.peak_fp32 is None:
        pytest.skip("no CPU peak estimate on this machine")
    per_core = hw.cpu.peak_fp32.value / (hw.cpu.usable_cores or hw.cpu.logical_cores) / 1e9
    point = types.SimpleNamespace(threads=1, gflops=per_core * (1.1 if above else 0.5), shape=(1024, 1024))
    fake = types.SimpleNamespace(typed=types.SimpleNamespace(points=[point]), hardware=hw)
    monkeypatch.setattr(fast_memory, "run", lambda fn: fake)
    monkeypatch.setattr(fast_memory, "note", lambda cited: None)
    monkeypatch.setattr(fast_memory, "shown_gpus", lambda: [])
    facts = fast_memory.per_core()
    assert (facts.over_estimate > 1) is above
    assert facts.over_estimate == pytest.approx(1.1 if above else 0.5)


# --- a GDDR GPU is never called HBM ---

def test_a_live_gddr_gpu_gets_gddr_roofs(tmp_path) -> None:
    report = fake_report(name="NVIDIA GeForce RTX 4090")
    (tmp_path / "results").mkdir()
    with fake_build(report, tmp_path / "results", tmp_path / "cache", PAGES):
        from gpucnn.pages import fast_memory as fm

        sets, html = fm.roof_sets(), "".join(fm.roofline_chart(s) for s in fm.roofline_sources())
    gpu = [r for r in sets if not r.source.is_cpu]
    assert gpu and all(r.dram.name == "GDDR" for r in gpu)
    assert "HBM" not in html and "GDDR roof" in html
