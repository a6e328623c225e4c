"""Memory and matmul experiments, and the logic of the bandwidth, parallelism,
fast-memory and summary page builders, on synthetic measurements."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from gpucnn.bench import Measurement
from gpucnn.experiments.matmul import matmul_sizes
from gpucnn.experiments.memory import (
    copy_sizes,
    elementwise_size,
    host_to_device_bandwidth,
    measure_elementwise,
    random_normal,
    transfer_sizes,
)
from gpucnn.figures import HEADLINE_MATMUL_N
from gpucnn.hardware import CacheLevel, cpu_caches, detect
from gpucnn.pages.bandwidth import cache_tiers, overhead_region
from gpucnn.pages.fast_memory import roof, roofline_points
from gpucnn.pages.parallelism import H100_SXM, crossover
from gpucnn.render import short_bytes, size_ticks

KIB, MIB = 1024, 1024**2


def point(n: int, seconds: float | tuple[float, ...], *, flops: float = 0.0, bytes_moved: float = 0.0,
          device: str = "cpu") -> Measurement:
    times = seconds if isinstance(seconds, tuple) else (seconds,) * 5
    return Measurement(name=f"p{n}", device=device, dtype="float32", shape=(n,), threads=1, times_s=times,
                       number_per_run=1, flops=flops, bytes_moved=bytes_moved)


# --- experiments ---

def test_copy_sizes_reach_four_times_the_cache_from_1_kib() -> None:
    for cache in (32 * MIB, 50 * MIB, 256 * MIB, None):
        sizes = copy_sizes(cache)
        assert sizes[0] == KIB
        assert all(b == 2 * a for a, b in itertools.pairwise(sizes))
        assert sizes[-1] >= 4 * (cache or 0)
        assert sizes[-1] >= 256 * MIB


def test_elementwise_size_is_beyond_cache_and_shrinks_to_fit_memory() -> None:
    assert elementwise_size(32 * MIB, None) == copy_sizes(32 * MIB)[-1]
    assert elementwise_size(32 * MIB, None) >= 4 * 32 * MIB
    small = elementwise_size(32 * MIB, free=600 * MIB)
    assert 3 * small <= 0.5 * 600 * MIB


def test_elementwise_ops_count_their_traffic_and_flops() -> None:
    size = 64 * KIB
    add, relu = measure_elementwise("add", size, "cpu"), measure_elementwise("relu", size, "cpu")
    assert add.bytes_moved == 3 * size and relu.bytes_moved == 2 * size
    assert add.flops == relu.flops == size // 4
    assert add.shape == (size,)


def test_random_normal_repeats_one_random_block_to_any_length() -> None:
    gen = torch.Generator().manual_seed(0)
    x = random_normal(10, gen, block=4)
    assert x.shape == (10,) and x.dtype == torch.float32 and x.is_contiguous()
    assert torch.equal(x[:4], x[4:8]) and torch.equal(x[:2], x[8:])
    assert len(set(x[:4].tolist())) == 4  # random values, not a constant fill
    # The next tensor (add's second operand) continues the generator: other values.
    assert not torch.equal(random_normal(10, gen, block=4), x)
    assert random_normal(3, gen, block=4).shape == (3,)


def test_unknown_elementwise_op_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown elementwise op 'gelu'"):
        measure_elementwise("gelu", 4 * KIB, "cpu")


def test_host_to_device_needs_an_accelerator() -> None:
    with pytest.raises(ValueError, match="needs an accelerator"):
        host_to_device_bandwidth("cpu")


def test_transfer_sizes_are_powers_of_four() -> None:
    sizes = transfer_sizes()
    assert sizes[0] == 4 * KIB and sizes[-1] == 256 * MIB
    assert all(b == 4 * a for a, b in itertools.pairwise(sizes))


def test_headline_matmul_size_is_in_the_full_sweep() -> None:
    from gpucnn.profile import PROFILES

    assert HEADLINE_MATMUL_N in matmul_sizes(PROFILES["full"].max_matmul_n)


# --- hardware: cache tiers from sysfs ---

def _fake_cache(base: Path, index: int, level: int, kind: str, size: str, shared: str) -> None:
    d = base / f"index{index}"
    d.mkdir(parents=True)
    for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
        (d / name).write_text(f"{value}\n")


def test_cpu_caches_reads_data_and_unified_levels(tmp_path: Path) -> None:
    _fake_cache(tmp_path, 0, 1, "Data", "48K", "0")
    _fake_cache(tmp_path, 1, 1, "Instruction", "32K", "0")
    _fake_cache(tmp_path, 2, 2, "Unified", "2048K", "0,64")
    _fake_cache(tmp_path, 3, 3, "Unified", "105M", "0-31,64-95")
    assert cpu_caches(tmp_path) == [
        CacheLevel(1, 48 * KIB, 1), CacheLevel(2, 2 * MIB, 2), CacheLevel(3, 105 * MIB, 64),
    ]


def test_cpu_caches_without_sysfs_is_empty(tmp_path: Path) -> None:
    assert cpu_caches(tmp_path / "absent") == []


def test_cache_tiers_of_the_cpu_are_ordered_and_labelled() -> None:
    tiers = cache_tiers(detect(), "cpu")
    sizes = [s for s, _ in tiers]
    assert sizes == sorted(sizes)
    assert all(label.startswith(("L", "last-level")) for _, label in tiers)


# --- page logic on synthetic measurements ---

def test_overhead_region_ends_where_time_doubles() -> None:
    pts = [point(s, t, bytes_moved=2 * s) for s, t in ((1024, 1e-6), (2048, 1.1e-6), (4096, 1.6e-6),
                                                        (8192, 2.5e-6), (16384, 1.5e-6))]
    assert overhead_region(pts) == (2048, 8192)


def test_overhead_region_is_none_when_time_grows_at_once() -> None:
    pts = [point(1024, 1e-6, bytes_moved=2048), point(2048, 3e-6, bytes_moved=4096)]
    assert overhead_region(pts) is None
    assert overhead_region(pts[:1]) is None


def test_crossover_is_where_the_gpu_wins_for_good() -> None:
    cpu = [point(n, t) for n, t in ((2, 1e-6), (64, 1e-5), (256, 1e-3), (1024, 5e-2), (4096, 3.0))]
    gpu = [point(n, t, device="cuda") for n, t in ((2, 1e-5), (64, 5e-6), (256, 2e-3), (1024, 1e-3), (4096, 2e-2))]
    # faster at 64, slower again at 256: the crossover is 1024
    assert crossover(cpu, gpu) == 1024


def test_crossover_none_when_the_gpu_never_wins_or_loses_at_the_end() -> None:
    cpu = [point(n, 1e-6) for n in (2, 4, 8)]
    assert crossover(cpu, [point(n, 1e-5) for n in (2, 4, 8)]) is None
    assert crossover(cpu, [point(2, 1e-7), point(4, 1e-7), point(8, 1e-5)]) is None
    assert crossover(cpu, []) is None


def test_crossover_compares_only_common_sizes() -> None:
    cpu = [point(n, 1.0) for n in (2, 4, 8)]  # the CPU sweep stopped at 8
    gpu = [point(n, 0.5) for n in (2, 4, 8, 16, 32)]
    assert crossover(cpu, gpu) == 2


def test_roofline_points_skip_copies_and_use_flop_per_byte() -> None:
    n = 1024
    mm = point(n, (1.0, 2.0, 2.0, 2.0, 4.0), flops=2.0 * n**3, bytes_moved=3.0 * n * n * 4)
    copy = point(n, 1.0, bytes_moved=8.0 * n)
    add = point(n, 1.0, flops=n, bytes_moved=12.0 * n)
    pts = roofline_points([("matmul", mm), ("copy", copy), ("add", add)])
    assert [p.label for p in pts] == ["matmul", "add"]
    assert pts[0].intensity == pytest.approx(n / 6)
    assert pts[1].intensity == pytest.approx(1 / 12)
    assert pts[0].low <= pts[0].gflops <= pts[0].high
    assert pts[0].gflops == pytest.approx(2.0 * n**3 / 2.0 / 1e9)


def test_roof_is_the_lower_of_bandwidth_and_compute() -> None:
    assert roof(0.1, bandwidth_gbps=50, compute_gflops=200) == pytest.approx(5)
    assert roof(100, bandwidth_gbps=50, compute_gflops=200) == 200


def test_littles_law_example_from_datasheet_figures() -> None:
    assert H100_SXM.bytes_in_flight == pytest.approx(H100_SXM.bandwidth * H100_SXM.latency_s)
    assert H100_SXM.resident_warps == 132 * 64
    assert H100_SXM.loads_per_warp(128) == pytest.approx(4 * H100_SXM.loads_per_warp(512))


def test_size_labels_and_ticks() -> None:
    assert short_bytes(512) == "512 B" and short_bytes(4 * KIB) == "4 KiB" and short_bytes(32 * MIB) == "32 MiB"
    ticks = size_ticks(2 * KIB, 512 * MIB)
    assert ticks[0] == (8 * KIB, "8 KiB") and ticks[-1] == (256 * MIB, "256 MiB")
    assert all(2 * KIB <= v <= 512 * MIB for v, _ in ticks)


# --- the built pages ---

@pytest.mark.site
@pytest.mark.parametrize("page, needs", [
    ("bandwidth", ["Copy bandwidth against size", "per-call cost", "10^9 bytes per second", "% of copy", "<svg",
                   'id="gpu-l2"']),
    ("parallelism", ["Matmul throughput against size", "Matmul throughput by precision", "Parallel efficiency",
                     "Bytes in flight"]),
    ("fast-memory", ["Roofline", "One call + synchronize", "Against add", "FP32 lane"]),
    ("summary", ["fp32 matmul throughput", "DRAM copy bandwidth", "% of peak"]),
])
def test_advantage_pages_have_their_tables_and_charts(built_site: Path, page: str, needs: list[str]) -> None:
    html = (built_site / page / "index.html").read_text()
    for text in needs:
        assert text in html, f"{page}: missing {text!r}"
    assert "<table" in html
    if detect().accelerator is None:
        assert "No GPU in this build" in html


@pytest.mark.site
def test_the_headline_table_is_on_the_summary_and_home_links_to_it(built_site: Path) -> None:
    """Said once: the headline figures are the Summary's; Home links there instead of repeating them."""
    home = (built_site / "index.html").read_text()
    summary = (built_site / "summary" / "index.html").read_text()
    assert '<h2 id="headline-figures">Headline figures' in summary and "fp32 matmul throughput" in summary
    assert "fp32 matmul throughput" not in home and 'href="summary/#headline-figures"' in home


@pytest.mark.site
def test_glossary_anchors_exist_for_every_link_from_the_advantage_pages(built_site: Path) -> None:
    import re

    glossary = (built_site / "glossary" / "index.html").read_text()
    for page in ("bandwidth", "parallelism", "fast-memory", "summary"):
        html = (built_site / page / "index.html").read_text()
        for anchor in set(re.findall(r'href="\.\./glossary/#([\w-]+)"', html)):
            assert f'id="{anchor}"' in glossary, f"{page} links to a missing glossary entry #{anchor}"


def test_overhead_region_survives_one_slow_smallest_point() -> None:
    times = (4e-6, 1e-6, 1.2e-6, 1.5e-6, 5e-6)  # the 1 KiB point was disturbed
    pts = [point(1024 * 2**i, t, bytes_moved=2048 * 2**i) for i, t in enumerate(times)]
    assert overhead_region(pts) == (2048, 2048 * 8)
