"""Advantage 3 (fast memory), review A's H1, M2 and L9, checked against the data the page used.

* H1: the DRAM/HBM roof of the hierarchical roofline is a GPU's datasheet bandwidth, or on a device with none
  (a CPU) the copy sweep's point far beyond the caches: never the fastest of copy, add and relu, which put
  add at 100 % of a roof it set.
* M2: the no-reuse broadcast's GB/s stands beside the same device's copy, and the explanation follows it.
* L9: "a gap of the same kind", with the matmul-over-add range computed from the table's rows.

Two situations: this CPU-only build with the project's results/ archive (H100 and H200 records), and a fake
live H100 (torch device ``cpu:0``) beside the archive. Synthetic rows feed the branches real data may not
reach (a roof set by add, a CPU stream above its copy roof, a broadcast at the copy's speed).
No measured value is asserted.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator

import pytest

from gpucnn.datasheets import memory_kind
from gpucnn.measurement import Measurement
from tests.conftest import ROOT
from tests.test_fake_accelerator import cpu_only, fake_build, fake_report

PAGES = ("fast_memory",)


@pytest.fixture(scope="module", params=["results", "live"])
def build(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fast-memory page's functions see this CPU-only build (or a live fake H100) and results/."""
    report = cpu_only() if request.param == "results" else fake_report()
    with fake_build(report, ROOT / "results", tmp_path_factory.mktemp(f"{request.param}-cache"), PAGES):
        yield request.param


@pytest.fixture(autouse=True)
def _forget_noted_sources() -> Iterator[None]:
    """Captions note the sources they stand on until a section line prints them: the fake rows fed to the
    page's functions here must not reach the next test's sources line (a SimpleNamespace has no date)."""
    yield
    from gpucnn.sources import take_section

    take_section()


def _roofline_sources() -> list:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.pages.fast_memory import memory_roofs
    from gpucnn.sources import sources

    return [s for s in sources(matmul_sweep) if memory_roofs(s)]


# --- H1: the memory roof -----------------------------------------------------------------------------------

def test_the_dram_roof_is_the_datasheet_on_a_gpu_and_the_copy_alone_on_a_cpu(build) -> None:
    from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
    from gpucnn.figures import dram_point
    from gpucnn.pages.fast_memory import memory_roofs
    from gpucnn.sources import sibling

    found = _roofline_sources()
    assert any(s.is_cpu for s in found) and any(not s.is_cpu for s in found)
    for s in found:
        dram = memory_roofs(s)[0]
        if s.is_cpu:
            copy = dram_point(sibling(s, copy_bandwidth).result)
            assert dram.value == copy.gbps
            assert dram.label.startswith("DRAM roof") and "measured" in dram.label and "no datasheet" in dram.label
        else:
            peak = s.hardware.accelerator.peaks.bandwidth
            assert dram.value == peak / 1e9
            assert dram.label.startswith(f"{memory_kind(s.hardware.accelerator)} roof") and "datasheet" in dram.label
        ew = sibling(s, elementwise_bandwidth).result.data
        # neither stream sets it (the CPU's is the copy's, a GPU's its datasheet's)
        assert dram.value not in (ew["add"].gbps, ew["relu"].gbps)


def test_add_is_scored_against_a_roof_it_does_not_set(build) -> None:
    from gpucnn.pages.fast_memory import roofline_bests, roofline_findings

    adds = [b for b in roofline_bests() if b.best.label == "add"]
    assert {b.source.is_cpu for b in adds} == {True, False}
    table = roofline_findings()
    for b in adds:
        # add's intensity is far left of every ridge: its percentage is its GB/s over the roof's
        gbps = b.best.gflops / b.best.intensity
        assert b.pct_of_roofline == pytest.approx(100 * gbps / b.dram.value)
        row = next(line for line in table.splitlines() if b.source.cell() in line and "| add (x + y) |" in line)
        assert row.rstrip(" |").endswith(" %")


def test_the_captions_and_the_list_say_what_sets_each_roof(build) -> None:
    from gpucnn.pages.fast_memory import roofline_charts, roofline_findings, roofline_roofs

    found = _roofline_sources()
    roofs, table, charts = roofline_roofs(), roofline_findings(), roofline_charts()
    for text in (roofs, table):
        for s in found:
            assert s.label in text
        for s in found:
            if not s.is_cpu:
                assert f"the datasheet {memory_kind(s.hardware.accelerator)} bandwidth" in text
        assert "no datasheet memory bandwidth" in text
        assert "the copy alone, never" in text
    assert "fastest stream far beyond the caches (copy, add or relu)" not in charts
    assert "the datasheet HBM bandwidth" in charts and "the copy far beyond the caches, measured" in charts
    assert "a roof drawn at the best matmul" in roofs and "by definition" in roofs
    assert "\u2026" not in roofs  # escaped piece by piece, never cut as one long record string


def test_a_records_datasheet_citation_is_escaped_in_markdown() -> None:
    from gpucnn.pages.fast_memory import _dram_roof_kinds
    from gpucnn.sources import one_line

    gpu = _fake_source("GPU Y", is_cpu=False, bandwidth=1e12, source="<script>x</script> [a](b) *c*")
    text = _dram_roof_kinds([gpu], one_line)
    assert "<script>" not in text and "[a](b)" not in text and "*c*" not in text
    assert "GPU Y" in text and "datasheet HBM bandwidth" in text
    assert "<script>" in _dram_roof_kinds([gpu])  # plain text for a caption, which escapes it itself


def test_stream_findings_give_each_device_its_own_roof(build) -> None:
    from gpucnn.pages.fast_memory import STREAM_NEAR_ROOF, roofline_bests, stream_findings
    from gpucnn.render import fmt

    text = stream_findings()
    streams = [b for b in roofline_bests() if b.best.label in ("add", "relu")]
    assert streams
    for b in streams:
        assert f"`{b.best.label}` at **{fmt(b.pct_of_roofline, 2)} %**" in text
        part = text[text.index(f"on {b.source.label}, "):]
        roof = ("its measured copy" if b.source.is_cpu
                else f"its datasheet {memory_kind(b.source.hardware.accelerator)} bandwidth")
        assert part.split(";")[0].split(". ")[0].endswith(roof)
    low = any(b.pct_of_roofline < 100 * STREAM_NEAR_ROOF for b in streams)
    assert ("less than half of that roof" in text) == low
    assert ("Their speed is the memory's" in text) == (not low)
    over = [b for b in streams if b.pct_of_roofline > 100]
    assert ("passed the measured copy" in text) == bool(over)
    assert ("write-allocate" in text) == any(b.source.is_cpu for b in over)


def test_the_dram_roof_falls_back_to_the_copy_where_a_gpu_has_no_datasheet_bandwidth(build, monkeypatch) -> None:
    import gpucnn.pages.fast_memory as page
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.figures import dram_point
    from gpucnn.sources import sibling

    monkeypatch.setattr(page, "hbm_datasheet", lambda src: None)
    for s in [s for s in _roofline_sources() if not s.is_cpu]:
        dram = page.memory_roofs(s)[0]
        assert dram.value == dram_point(sibling(s, copy_bandwidth).result).gbps
        assert dram.label.startswith(f"{memory_kind(s.hardware.accelerator)} roof") and "no datasheet" in dram.label
    assert not any(f"datasheet {kind} bandwidth" in page.roofline_roofs() for kind in ("HBM", "GDDR", "device memory"))


def _fake_source(label: str, is_cpu: bool, bandwidth: float | None = None,
                 source: str = "a datasheet", name: str = "NVIDIA H100 80GB HBM3") -> types.SimpleNamespace:
    peaks = types.SimpleNamespace(bandwidth=bandwidth, source=source) if bandwidth else None
    acc = None if is_cpu else types.SimpleNamespace(name=name, peaks=peaks)
    return types.SimpleNamespace(label=label, origin=label, device="cpu" if is_cpu else "cuda", is_cpu=is_cpu,
                                 hardware=types.SimpleNamespace(accelerator=acc),
                                 cell=lambda text=None: f"<span>{label}</span>")


def _best(src, op: str, gbps: float, roof):
    from gpucnn.pages.fast_memory import GroupBest, Roof, RooflinePoint

    intensity = 1 / 12 if op == "add" else 1 / 8
    point = RooflinePoint(op, intensity, gbps * intensity, gbps * intensity, gbps * intensity, 5)
    return GroupBest(src, "add (x + y)" if op == "add" else "relu", point, Roof("FP32 peak", 1e6), roof)


def test_stream_wording_for_a_cpu_above_its_copy_and_a_gpu_far_below_its_datasheet(monkeypatch) -> None:
    import gpucnn.pages.fast_memory as page

    cpu = _fake_source("CPU X", is_cpu=True)
    gpu = _fake_source("GPU Y", is_cpu=False, bandwidth=1e12, name="NVIDIA L4")  # GDDR6, not HBM
    copy_roof = page.Roof("DRAM roof", 10.0)
    hbm = page.Roof("GDDR roof", 1000.0)
    monkeypatch.setattr(page, "roofline_bests", lambda: [
        _best(cpu, "add", 11.0, copy_roof), _best(cpu, "relu", 9.0, copy_roof),
        _best(gpu, "add", 300.0, hbm), _best(gpu, "relu", 900.0, hbm)])
    text = page.stream_findings()
    assert "on CPU X, `add` at **110 %** and `relu` at **90 %** of its measured copy" in text
    assert "on GPU Y, `add` at **30 %** and `relu` at **90 %** of its datasheet GDDR bandwidth" in text
    assert "against the DRAM or GDDR roof under them" in text and "HBM" not in text
    assert "`add` on GPU Y reached less than half of that roof" in text
    assert "Their speed is the memory's" not in text
    assert "`add` on CPU X passed the measured copy" in text and "write-allocate" in text
    assert "so add can count more GB/s than the copy" in text and "relu above the copy" not in text
    assert "On a GPU, the cause is not measured here" not in text


# --- M2: the broadcast's GB/s beside the copy's --------------------------------------------------------------

def _broadcast_paragraphs(text: str) -> dict[str, str]:
    return {p.split(",")[0].removeprefix("On "): p for p in text.split("\n\n") if p.strip()}


def test_the_broadcast_stands_beside_the_copy_and_the_wording_follows_the_ratio(build) -> None:
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.experiments.reuse import reuse_ratio
    from gpucnn.figures import dram_point
    from gpucnn.pages.fast_memory import BROADCAST_NEAR_COPY, reuse_ratio_findings
    from gpucnn.render import fmt
    from gpucnn.sources import sibling, sources

    paragraphs = _broadcast_paragraphs(reuse_ratio_findings())
    checked = 0
    for s in sources(reuse_ratio):
        b_pts = {b.shape[0]: b for b in s.result.data["broadcast"].points}
        common = sorted(set(b_pts) & {m.shape[0] for m in s.result.data["matmul"].points})
        if not common:
            continue
        b = b_pts[common[-1]]
        m = next(p for p in s.result.data["matmul"].points if p.shape[0] == common[-1])
        copy = dram_point(sibling(s, copy_bandwidth).result)
        p = paragraphs[s.label]
        assert f"**{fmt(b.gbps)} GB/s**, against {fmt(copy.gbps)} GB/s for a plain copy" in p
        near = b.gbps >= BROADCAST_NEAR_COPY * copy.gbps
        assert ("its time is that traffic" in p) == near
        assert ("the ratio overstates what reuse alone buys" in p) == (not near)
        if not near:
            share = b.gbps / copy.gbps
            assert f"{fmt(100 * share, 2)} % of the copy's rate" in p
            # what traffic alone would make of the ratio, against the ratio measured
            assert f"about {fmt(share * b.median / m.median)}x, not {fmt(b.median / m.median)}x" in p
            assert "fresh n^3 temporary" in p and "strided axis" in p
        checked += 1
    assert checked >= 2  # this build's CPU and a GPU (live or archived)


@pytest.mark.parametrize(("scale", "near"), [(1.1, True), (10.0, False)])
def test_the_broadcast_wording_turns_on_the_copy_bandwidth(build, monkeypatch, scale: float, near: bool) -> None:
    """The same broadcast beside a copy just above its GB/s (its time is the traffic) or ten times it."""
    import gpucnn.pages.fast_memory as page
    from gpucnn.experiments.reuse import reuse_ratio
    from gpucnn.sources import sources

    s = sources(reuse_ratio)[0]
    b = max(s.result.data["broadcast"].points, key=lambda m: m.shape[0])
    copy = Measurement(name="copy", device=s.device, dtype="float32", shape=(1,), threads=1,
                       times_s=(1.0,) * 5, number_per_run=1, bytes_moved=scale * b.gbps * 1e9)
    monkeypatch.setattr(page, "dram_point", lambda result: copy)
    p = _broadcast_paragraphs(page.reuse_ratio_findings())[s.label]
    assert ("its time is that traffic" in p) == near
    assert ("overstates what reuse alone buys" in p) == (not near)


def test_no_copy_record_leaves_the_sentence_without_a_comparison(build, monkeypatch) -> None:
    import gpucnn.pages.fast_memory as page

    monkeypatch.setattr(page, "sibling", lambda src, fn, **k: None)
    text = page.reuse_ratio_findings()
    assert text and "plain copy" not in text and "traffic" not in text
    assert all(p.rstrip().endswith("GB/s**.") for p in text.split("\n\n") if p.strip())


# --- L9: a gap of the same kind, its range computed ----------------------------------------------------------

def test_the_reuse_table_gives_a_gap_of_the_same_kind_with_its_computed_range(build) -> None:
    from gpucnn.pages.fast_memory import reuse_table

    text = reuse_table()
    assert "The same gap appears on every device" not in text
    assert "A gap of the same kind appears on every device" in text
    printed = re.findall(r"\| matmul n=\d+ \|[^\n]*\| ([\d,.]+)x \|", text)
    assert len(printed) >= 2
    lo, hi = (min(printed, key=_number), max(printed, key=_number))
    assert f"the matmul {lo}x to {hi}x as fast as add" in text
    assert "not measured" not in text


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize("ratio", [1.26, 1.45, 0.8])
def test_the_against_add_column_keeps_a_ratio_near_one_readable(build, monkeypatch, ratio: float) -> None:
    """Issue 19: relu at 1.26x and 1.45x add's rate printed as "1x" (a whole-number format)."""
    import dataclasses

    import gpucnn.pages.fast_memory as page
    from gpucnn.render import fmt

    real = page.sibling

    def sibling(src, fn, **k):  # relu at ``ratio`` times add's GFLOP/s, every device
        ew = real(src, fn, **k)
        if ew is None:
            return None
        add = ew.result.data["add"]
        relu = dataclasses.replace(add, name="relu", times_s=tuple(t / ratio for t in add.times_s))
        result = dataclasses.replace(ew.result, data={**ew.result.data, "relu": relu})
        return dataclasses.replace(ew, result=result)

    monkeypatch.setattr(page, "sibling", sibling)
    cells = re.findall(r"\| relu \|[^\n]*\| ([^|]+) \|\n", page.reuse_table())
    assert cells and all(c.strip() == f"{fmt(ratio)}x" for c in cells), cells
    assert f"{fmt(ratio)}x" != "1x"


def test_the_page_prose_no_longer_claims_the_same_gap_or_a_stream_roof() -> None:
    page = (ROOT / "docs" / "fast-memory.md").read_text()
    flat = " ".join(page.split())
    assert "the CPU shows the same gap" not in flat and "a gap of the same kind" in flat
    assert "the fastest copy, `add` or `relu`" not in flat
    assert "under the memory roof: their speed is the memory's" not in flat
    assert "fast_memory.roofline_roofs()" in page and "fast_memory.stream_findings()" in page
