"""CNN (docs/cnn.md): the facts its template prints, from fakes and from the archived records.

Verdicts, numbers and sources; never the page's wording, except the few contract sentences of the rendered page.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gpucnn.pages import cnn
from gpucnn.pages.cnn import PoolRate, conv_algorithm, relu_pool_bytes
from tests.pages.records import NEGATIVE_TIME, archive_build, assert_escaped, hostile_sources, m, render

BATCH = 64


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    with archive_build(tmp_path_factory.mktemp("cnn"), ("cnn",)):
        text, lines = render("cnn.md")
        yield SimpleNamespace(text=text, lines=lines)


def _profile(device: str, relu_s: float | None, pool_s: float | None, acc=None) -> SimpleNamespace:
    timed = "cpu_total_s" if device == "cpu" else "device_total_s"
    rows = {"relu1": {"cpu_total_s": 1e-3, "device_total_s": None}, "pool1": {"cpu_total_s": 1e-3, "device_total_s": None}}
    rows["relu1"][timed], rows["pool1"][timed] = relu_s, pool_s
    layers = [SimpleNamespace(layer=name, **row) for name, row in rows.items()]
    return SimpleNamespace(device=device, is_cpu=device == "cpu", label=device, hardware=SimpleNamespace(accelerator=acc),
                           result=SimpleNamespace(typed=SimpleNamespace(layers=layers, batch=BATCH)))


# --- ReLU against the max pool (moved from test_pages_review3_cnn) ------------------------------------------

def test_the_bytes_come_from_the_profiled_models_shapes() -> None:
    relu, pool = relu_pool_bytes(BATCH)
    activation = BATCH * 32 * 32 * 32  # conv1: 32 channels, 32x32, padding 1
    assert relu == 2 * 4 * activation
    assert pool == 4 * activation + 12 * activation / 4  # fp32 values and int64 indices of a 2x2 pool
    assert relu_pool_bytes(2 * BATCH) == (2 * relu, 2 * pool)


@pytest.mark.parametrize(("ratio", "verdict"), [(1.0, PoolRate.ALIKE), (1.1, PoolRate.ALIKE), (2.0, PoolRate.BETWEEN),
                                                (2.5, PoolRate.BETWEEN), (4.0, PoolRate.SLOW), (9.0, PoolRate.SLOW)])
def test_the_verdict_follows_the_pools_rate_against_the_relus(monkeypatch, ratio, verdict) -> None:
    monkeypatch.setattr(cnn, "note", lambda cited: None)
    monkeypatch.setattr(cnn, "sources", lambda fn, **k: [_profile("cpu", 1e-3, ratio * 1e-3)])
    (p,) = cnn.poolings()
    relu, pool = relu_pool_bytes(BATCH)
    assert p.share == pytest.approx((pool / ratio) / relu) and p.rate is verdict
    assert p.memory_bps is None and not p.relu_beyond_memory  # a CPU: no datasheet memory to beat


def test_a_gpu_record_without_kernel_times_per_layer_is_named_not_dropped(monkeypatch) -> None:
    """On a GPU the host time (the launch) must not stand in for the kernel time."""
    h200, h100 = _profile("cuda", 2e-6, 4e-6), _profile("cuda", None, None)
    monkeypatch.setattr(cnn, "note", lambda cited: None)
    monkeypatch.setattr(cnn, "sources", lambda fn, **k: [h200, h100])
    assert [p.source for p in cnn.poolings()] == [h200]
    assert cnn.untimed_poolings() == [h100]


def test_a_gddr_gpus_memory_is_called_gddr(monkeypatch) -> None:
    from tests.fakes import fake_report

    acc = fake_report(name="NVIDIA GeForce RTX 4090").accelerator
    monkeypatch.setattr(cnn, "note", lambda cited: None)
    monkeypatch.setattr(cnn, "sources", lambda fn, **k: [_profile("cuda", 1e-6, 2e-6, acc)])
    (p,) = cnn.poolings()
    assert p.memory == "GDDR" and p.l2_bytes == acc.l2_bytes


def test_a_relu_faster_than_device_memory_is_flagged_on_each_gpu_where_it_is(archive) -> None:
    """The H100 record's first ReLU moved more GB/s than HBM allows (its input sat in the L2)."""
    found = [p for p in cnn.poolings() if not p.source.is_cpu]
    assert found, "the archive has GPU profiles"
    for p in found:
        assert p.source.archived
        assert p.relu_beyond_memory is (p.memory_bps is not None and p.relu_bytes / p.relu_s > p.memory_bps)


# --- where a sweep's rate falls (moved from test_pages_review5_h100) -----------------------------------------

@pytest.mark.parametrize(("rates", "spread", "fell"), [
    ([227, 4000, 11207, 7048, 12436], 0.05, [(11207, 7048)]),
    ([227, 4000, 11207, 7048, 12436], 0.5, []),  # the IQRs overlap: not a fall the data can show
    ([100, 150, 200], 0.05, []),
    ([100, 90, 80], 0.05, []),  # falls under SAME_SPEED each: not named
])
def test_a_conv_sweep_whose_rate_falls_names_the_step(monkeypatch, rates, spread, fell) -> None:
    pts = tuple(m(1.0, spread / 2, flops=r * 1e9, shape=(2**i, 32, 28, 28)) for i, r in enumerate(rates))
    src = SimpleNamespace(result=SimpleNamespace(typed=SimpleNamespace(sweep=SimpleNamespace(points=pts))))
    monkeypatch.setattr(cnn, "note", lambda cited: None)
    (e,) = cnn._ends([src])
    assert [(round(f.before.gflops), round(f.after.gflops)) for f in e.falls] == fell
    assert not e.flat


# --- the algorithms cuDNN chose, named by the profile ---------------------------------------------------------

@pytest.mark.parametrize(("name", "family"), [
    ("sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32", "wgrad"),
    ("sm90_xmma_fprop_implicit_gemm_f32f32", "implicit_gemm"),
    ("void fft2d_r2c_32x32<float>", "fft"),
    ("sm80_xmma_gemm_cf32cf32_f32", "fft"),
    ("winograd_nonfused_fprop", "winograd"),
    ("void at::native::max_pool_forward_nchw", None),
])
def test_a_kernel_name_tells_its_algorithm(name, family) -> None:
    assert conv_algorithm(name) == family


def test_the_profile_names_the_algorithms_each_gpu_ran(archive) -> None:
    found = cnn.kernel_names()
    assert found, "no archived GPU profile with kernels"
    for k in found:
        assert not k.source.is_cpu and k.source.archived
        assert all(a.kernels >= 1 and 0 <= a.share_pct <= 100 for a in k.algorithms)
    # The H100/H200 records: FFT kernels take more kernel time than implicit GEMM (issue 19's correction).
    shares = {a.family: a.share_pct for k in found for a in k.algorithms}
    assert "fft" in shares


# --- sources and tables ------------------------------------------------------------------------------------------

def test_no_chart_sets_this_builds_cpu_beside_an_archived_gpu(archive) -> None:
    for found in (cnn.batch_sources(), cnn.channel_sources()):
        groups = cnn.by_build(found)
        assert len(groups) == 2
        for g in groups:
            assert len({s.archived for s in g}) == 1
        for i, s in enumerate(groups[1]):
            if not s.is_cpu:
                assert groups[1][i + 1].is_cpu and groups[1][i + 1].origin == s.origin
    assert (cnn.conv_charts(0) + cnn.conv_charts(1)).count("<svg") == 4


def test_a_records_strings_are_escaped_in_every_table(monkeypatch) -> None:
    from gpucnn.experiments.conv import cnn_profile, conv_batch_sweep, conv_channel_sweep

    batch, channel = hostile_sources(conv_batch_sweep.__name__), hostile_sources(conv_channel_sweep.__name__)
    profile = hostile_sources(cnn_profile.__name__)
    assert batch and channel and profile
    monkeypatch.setattr(cnn, "note", lambda cited: None)
    monkeypatch.setattr(cnn, "batch_sources", lambda: batch)
    monkeypatch.setattr(cnn, "channel_sources", lambda: channel)
    monkeypatch.setattr(cnn, "sources", lambda fn, **k: profile)
    for html in (cnn.conv_table(), cnn.ends_table(), cnn.profile_tables(), cnn.pooling_table(),
                 cnn.algorithm_table()):
        assert_escaped(html)


def test_the_rendered_page_names_each_figures_source(archive) -> None:
    text, lines = archive.text, archive.lines
    assert text.count('!!! note "No GPU in this build"') == 1
    assert not NEGATIVE_TIME.search(text)
    shown = "\n".join(lines.values())
    assert "recorded on" in shown and "this build" in shown


def test_conv_kernels_are_sorted_into_cudnns_algorithm_families() -> None:
    from gpucnn.pages.cnn import conv_algorithm

    assert conv_algorithm("sm80_xmma_fprop_implicit_gemm_f32f32_f32f32_f32_nchwkcrs_nchw_tilesize32x32x8") \
        == "implicit_gemm"
    assert conv_algorithm("void implicit_convolve_sgemm<float, float, 1024, 5, 5, 3, 3, 3, 1, false>") == "implicit_gemm"
    assert conv_algorithm("void fft2d_r2c_32x32<float, false, 1u, false>(float2*, float const*)") == "fft"
    assert conv_algorithm("sm80_xmma_gemm_cf32cf32_f32f32_cf32_tn_n_tilesize32x32x8") == "fft"
    assert conv_algorithm("void wgrad_alg0_engine<float, 128, 5, 5, 3, 3, 3, false, 512>") == "wgrad"
    assert conv_algorithm("winograd_nonfused_fprop") == "winograd"
    # a weight gradient computed by implicit GEMM is a gradient kernel, as is a data gradient
    assert conv_algorithm("sm80_xmma_wgrad_implicit_gemm_indexed_f32f32_tilesize64x64x8") == "wgrad"
    assert conv_algorithm("sm80_xmma_dgrad_implicit_gemm_f32f32_tilesize64x32x8") == "wgrad"
    # a real-valued GEMM and a pooling kernel are not convolution algorithms
    assert conv_algorithm("sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize32x32x8") is None
    assert conv_algorithm("void at::native::max_pool_backward_nchw<float, float>") is None
