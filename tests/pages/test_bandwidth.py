"""The Bandwidth page's facts: verdicts, numbers and sources, fed both branches of each verdict.

Synthetic sweeps set each verdict (per-call bound or not, above the datasheet or not, the link's generation, how
much an overlap hid); the archived H100/H200 records check that the page's findings still come out of them.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from gpucnn import sources
from gpucnn.experiments.memory import (
    l2_copy_bandwidth,
)
from gpucnn.measurement import Measurement, Sweep
from gpucnn.pages import bandwidth
from gpucnn.pages.bandwidth import (
    NEAR_CEILING,
    PCIE_GEN4,
    PCIE_GEN5,
    Hidden,
    Link,
    PcieLink,
    copy_facts_of,
    host_to_device_of,
    l2_facts_of,
    link_of,
    overhead_region,
    overlap_of,
)
from gpucnn.results import Result
from tests.conftest import ROOT
from tests.fakes import L2, cpu_only, fake_build, fake_report
from tests.fakes import copy_measurement as _copy

KIB, MIB = 1024, 1024**2
SIZES = [KIB * 4**i for i in range(9)]  # 1 KiB .. 64 MiB per buffer


def _source(experiment: str, data: dict, device: str = "cuda", hw=None) -> bandwidth.Source:
    hw = hw or fake_report()
    result = Result(experiment=experiment, params={"device": device}, data=data, measured_at="2026-01-01T00:00:00Z",
                    profile="quick", torch="2.13.0", commit=None, hardware=hw, key=experiment)
    return bandwidth.Source(device, result)


def _sweep_source(points: list[Measurement], **extra) -> bandwidth.Source:
    return _source("copy_bandwidth", {"sweep": Sweep(tuple(points)), "cache_bytes": L2, **extra})


def _l2_source(points: list[Measurement], graphs: bool = True) -> bandwidth.Source:
    return _source("l2_copy_bandwidth", {"sweep": Sweep(tuple(points)), "cache_bytes": L2, "graphs": graphs,
                                         "copies_per_call": tuple(64 for _ in points)})


def _launch_bound(b: int, floor_s: float = 7e-6, gbps: float = 3e12) -> float:
    """A call's time: the fixed cost for small copies, then proportional to the bytes."""
    return max(floor_s, 2.0 * b / gbps)


# --- copies against size ---

@pytest.mark.parametrize("fastest_gbps, above", [(3.8e12, True), (3.0e12, False)])
def test_a_copy_above_the_datasheet_is_said_to_fit_in_the_l2_only_when_its_whole_iqr_is_above(
        monkeypatch: pytest.MonkeyPatch, fastest_gbps: float, above: bool) -> None:
    peak = fake_report().accelerator.peaks.bandwidth
    pts = [_copy(b, _launch_bound(b, 2 * 16 * MIB / fastest_gbps, 2.9e12)) for b in SIZES]
    pts[7] = _copy(16 * MIB, 2 * 16 * MIB / fastest_gbps, spread=0.01)  # the fastest: 32 MiB moved, fits a 50 MiB L2
    monkeypatch.setattr(bandwidth, "sibling", lambda *a, **k: None)
    f = copy_facts_of(_sweep_source(pts))
    assert f.fastest_buffer_bytes == 16 * MIB and f.memory == "HBM" and f.peak_gbps == peak / 1e9
    low = pts[7].bytes_moved / pts[7].p75
    assert f.fastest_above_peak is (low > peak) is above
    assert f.fastest_fits_l2 is above
    assert f.largest_buffer_bytes == SIZES[-1] and f.largest_gbps == pytest.approx(pts[-1].gbps)


def test_a_call_bound_fastest_copy_is_set_beside_the_launch_free_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pts = [_copy(b, _launch_bound(b, gbps=50e12)) for b in SIZES]  # every size within the call's fixed cost
    free = _l2_source([_copy(b, 2.0 * b / 4.3e12) for b in SIZES])
    monkeypatch.setattr(bandwidth, "sibling", lambda src, fn, **k: free if fn is l2_copy_bandwidth else None)
    f = copy_facts_of(_sweep_source(pts))
    span = overhead_region(pts)
    assert f.fastest_call_bound and span and f.call_bound_to_buffer_bytes == span[1] / 2
    same = next(m for m in free.result.typed.sweep.points if m.shape[0] == f.fastest_buffer_bytes)
    assert f.fastest_launch_free_gbps == pytest.approx(same.gbps)


def test_a_copy_past_the_call_cost_has_no_launch_free_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    pts = [_copy(b, 7e-6 + 2.0 * b / 3e12) for b in SIZES]  # a fixed cost plus the bytes: the largest is fastest
    monkeypatch.setattr(bandwidth, "sibling", lambda *a, **k: pytest.fail("no launch-free copy is needed"))
    f = copy_facts_of(_sweep_source(pts))
    assert not f.fastest_call_bound and f.fastest_launch_free_gbps is None
    assert copy_facts_of(_sweep_source([])) is None


# --- the L2, launch-free ---

def _l2_sweep(inside_gbps: float, beyond_gbps: float) -> list[Measurement]:
    """Launch-free copies: a fixed cost per copy, then ``inside_gbps`` up to the L2, ``beyond_gbps`` past it."""
    return [_copy(b, 2e-9 + (2.0 * b / inside_gbps if 2 * b <= L2 else 2.0 * b / beyond_gbps)) for b in
            [KIB * 2**i for i in range(17)]]


@pytest.mark.parametrize("inside, beyond, faster, above", [
    (4.5e12, 3.0e12, True, True), (3.2e12, 3.0e12, False, False), (3.3e12, 2.0e12, True, False)])
def test_the_l2_verdicts_follow_the_data(inside: float, beyond: float, faster: bool, above: bool) -> None:
    f = l2_facts_of(_l2_source(_l2_sweep(inside, beyond)), None)
    assert 2 * f.inside_buffer_bytes <= L2 < 2 * f.beyond_buffer_bytes
    assert f.l2_over_memory == pytest.approx(f.inside_gbps / f.beyond_gbps)
    assert f.l2_faster is faster and f.above_peak is above
    assert f.climbs_to_the_end  # the fixed cost per copy weighs less at each larger size
    assert f.one_per_call_gbps is None and f.one_per_call_bound is None


def test_an_l2_sweep_without_both_regions_gives_no_facts() -> None:
    assert l2_facts_of(_l2_source([_copy(b, 2.0 * b / 4e12) for b in (KIB, 2 * KIB)]), None) is None


def test_one_copy_per_call_is_call_bound_exactly_inside_the_overhead_region() -> None:
    """(From test_pages_gpu_findings.) The same-size copy, one per call, is called call-bound exactly where the copy
    chart shades the per-call region."""
    l2 = _l2_source(_l2_sweep(4.5e12, 3.0e12))
    best = l2_facts_of(l2, None).inside_buffer_bytes
    for floor_s, bound in ((1e-3, True), (1e-9, False)):
        plain_pts = [_copy(b, _launch_bound(b, floor_s)) for b in [KIB * 2**i for i in range(17)]]
        f = l2_facts_of(l2, _sweep_source(plain_pts))
        span = overhead_region(plain_pts)
        same = next(m for m in plain_pts if m.shape[0] == best)
        assert f.one_per_call_bound is bool(span and span[0] <= same.bytes_moved <= span[1]) is bound
        assert f.one_per_call_gbps == pytest.approx(same.gbps) and f.one_per_call_s == pytest.approx(same.median)


@pytest.mark.parametrize("at_4mib, same", [(6.0e-6, True), (7.5e-6, True), (9.0e-6, False)])
def test_a_copy_as_fast_as_the_smallest_is_about_the_same(at_4mib: float, same: bool) -> None:
    """(From test_pages_review5_h100.) On the H100 an 8 MiB copy took less time than the 1 KiB one."""
    sizes = [KIB * 2**i for i in range(17)]
    plain = [_copy(b, at_4mib if b == 4 * MIB else _launch_bound(b)) for b in sizes]
    inside = [_copy(b, 2.0 * b / (9e12 if b == 4 * MIB else 3e12)) for b in sizes]  # the L2's best: 4 MiB
    f = l2_facts_of(_l2_source(inside), _sweep_source(plain))
    assert f.inside_buffer_bytes == 4 * MIB
    assert f.fastest_small_call_s == pytest.approx(min(m.median for m in plain[:3]))
    assert f.one_per_call_same_as_smallest is same


# --- host to device ---

@pytest.mark.parametrize("share_of_gen5, link", [
    (0.95, Link.GEN5_NEAR_CEILING), (NEAR_CEILING - 0.05, Link.GEN5), (0.45, Link.EITHER)])
def test_the_link_verdict(share_of_gen5: float, link: Link) -> None:
    gbps = share_of_gen5 * PCIE_GEN5.one_way_gbps
    assert (gbps > PCIE_GEN4.one_way_gbps) is (link != Link.EITHER)
    assert link_of(gbps) is link


def test_pcie_limits_follow_the_specification() -> None:
    assert PCIE_GEN5.one_way_gbps == pytest.approx(32 * 16 * 128 / 130 / 8)
    assert PCIE_GEN4.one_way_gbps == pytest.approx(PCIE_GEN5.one_way_gbps / 2)


def test_host_to_device_facts_set_the_pinned_copy_against_the_devices_own() -> None:
    def h2d(b: int, gbps: float) -> Measurement:
        return dataclasses.replace(_copy(b, b / gbps), bytes_moved=float(b))

    sizes = [64 * KIB * 4**i for i in range(5)]
    src = _source("host_to_device_bandwidth", {"pageable": Sweep(tuple(h2d(b, 7e9) for b in sizes)),
                                               "pinned": Sweep(tuple(h2d(b, 55e9 - i * 1e9) for i, b in
                                                                     enumerate(sizes)))})
    own = _sweep_source([_copy(b, 2.0 * b / 3e12) for b in SIZES])
    f = host_to_device_of(src, own)
    assert f.pageable_gbps == pytest.approx(7) and f.pinned_gbps == pytest.approx(51)
    assert f.best_pinned_bytes == sizes[0] and f.best_pinned_gbps == pytest.approx(55)  # the best, not the last
    assert f.own_over_pinned == pytest.approx(3000 / 2 / 51)
    assert f.link is link_of(55) and f.pct_of_gen5 == pytest.approx(100 * 55 / PCIE_GEN5.one_way_gbps)
    assert host_to_device_of(src, None).own_over_pinned is None


# --- overlap ---

@pytest.mark.parametrize("overlapped_s, hidden", [(2.7e-3, Hidden.ALMOST_ALL), (3.4e-3, Hidden.PART),
                                                  (3.95e-3, Hidden.NOTHING)])
def test_the_overlap_verdict(overlapped_s: float, hidden: Hidden) -> None:
    def t(s: float) -> Measurement:
        return _copy(MIB, s)

    src = _source("copy_compute_overlap", {"copy": t(1.2e-3), "compute": t(2.7e-3), "serial": t(3.9e-3),
                                           "overlapped": t(overlapped_s), "copy_bytes": 64 * MIB, "matmul_n": 4096,
                                           "side_stream": False})
    f = overlap_of(src)
    assert f.hidden is hidden and f.hidden_fraction == pytest.approx((3.9e-3 - overlapped_s) / 1.2e-3)
    assert f.gain == pytest.approx(3.9e-3 / overlapped_s) and f.best_gain == pytest.approx(3.9 / 2.7)
    assert f.side_stream is False


# --- the archived records: the findings the page printed still come out of them ---

@pytest.fixture
def archived_build(tmp_path: Path):
    with fake_build(cpu_only(), ROOT / "results", tmp_path, ("bandwidth",)):
        yield


def test_the_archived_gpus_l2_beats_their_hbm_peak_and_the_h100s_one_per_call_copy_too(archived_build) -> None:
    l2 = bandwidth.l2_facts()
    assert {d.source.model for d in l2.devices} >= {"H100", "H200"}
    for d in l2.devices:
        assert d.graphs and d.l2_faster and d.above_peak, d.source.label
        assert d.one_per_call_bound and d.one_per_call_same_as_smallest, d.source.label
    copies = bandwidth.copy_facts()
    assert [c.source.model for c in copies.above_peak] == ["H100"]  # the H200's median is above, its IQR is not
    h100 = copies.above_peak[0]
    assert h100.fastest_fits_l2 and h100.fastest_call_bound and h100.fastest_launch_free_gbps > h100.fastest_gbps
    assert copies.cpu is not None and copies.cpu.memory == "DRAM"


def test_archived_host_links_overlap_and_host_ratios(archived_build) -> None:
    links = bandwidth.host_to_device_facts()
    assert {d.source.model for d in links.devices} >= {"H100", "H200"}
    for d in links.devices:
        assert d.link is Link.GEN5_NEAR_CEILING and d.own_over_pinned > 10, d.source.label
    assert bandwidth.overlap_facts().all_almost_all
    ratios = bandwidth.dram_facts().ratios
    assert ratios and all(r.cpu.origin == r.gpu.origin and r.cpu.is_cpu for r in ratios)  # within one record
    assert sources.no_gpu_state(bandwidth.copy_facts().found) == "archived"


def test_every_archived_gpu_row_has_its_host_cpu_beside_it(archived_build) -> None:
    ew = bandwidth.elementwise_facts()
    gpus = {d.source.origin for d in ew.devices if not d.source.is_cpu}
    hosts = {d.source.origin for d in ew.devices if d.source.is_cpu and d.source.archived}
    assert gpus and gpus <= hosts
    assert ew.cpu is not None and ew.cpu.copy_gbps


def test_an_empty_archive_says_no_gpu_figure_is_shown(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with fake_build(cpu_only(), tmp_path / "empty", tmp_path / "cache", ("bandwidth",)):
        assert sources.no_gpu_state(bandwidth.copy_facts().found) == "none"
        assert not bandwidth.l2_facts().devices and not bandwidth.host_to_device_facts().devices
        assert bandwidth.overlap_table() == ""


def test_the_page_renders_over_the_archive(archived_build) -> None:
    """The template uses only facts that exist, and says the L2 story under #gpu-l2."""
    from gpucnn.templating import render_page

    sources.begin_page("bandwidth.md")
    try:
        out = render_page((ROOT / "docs/bandwidth.md").read_text(), "bandwidth.md", ROOT / "docs")
    finally:
        sources.begin_page(None)
    assert "{#gpu-l2}" in out and "{{" not in out and "{%" not in out
    for d in bandwidth.l2_facts().above_peak:
        assert f"{bandwidth.fmt(d.inside_gbps)} GB/s on the {d.source.model}" in out


def test_a_live_accelerator_without_cuda_queues_copies_and_shares_one_stream(tmp_path: Path) -> None:
    """A fake live H100 (torch device cpu:0): no CUDA graph and no side stream, said by the facts."""
    (tmp_path / "empty").mkdir()
    with fake_build(fake_report(), tmp_path / "empty", tmp_path / "cache", ("bandwidth",)):
        l2 = bandwidth.l2_facts()
        overlap = bandwidth.overlap_facts()
        assert sources.no_gpu_state(bandwidth.copy_facts().found) == ""
    assert l2.devices and not l2.all_graphs and not l2.devices[0].source.archived
    assert overlap.devices and overlap.devices[0].side_stream is False


# --- (from the explanations' tests) the PCIe limit ---

def test_pcie_one_way_limit_applies_the_line_encoding() -> None:
    link = PcieLink(5, 32.0)
    assert math.isclose(link.one_way_bytes_per_s, 32e9 * 16 * 128 / 130 / 8)
    assert math.isclose(PCIE_GEN5.one_way_bytes_per_s, 2 * PCIE_GEN4.one_way_bytes_per_s)
    assert math.isclose(PcieLink(5, 32.0, lanes=8).one_way_bytes_per_s, link.one_way_bytes_per_s / 2)
