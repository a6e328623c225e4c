"""Findings of a learner/expert review of the CPU-built site, each checked from the data the page used.

* Measuring: where the article's parts add up to more than its whole, the page says why; the L2 caveat
  uses the launch-free L2 sweep and calls it a floor, and a one-copy-per-call figure is put down to the L2
  only where the call was clearly longer than the smallest copy's.
* Fast memory: an L2 roof drawn from the one-copy-per-call sweep says it is a lower bound.
* CNN: "no kernel times" is said only of a record that has none; the archived labels are defined.
* Tensor cores: the precision chart's colour means the source, its marker the precision.
* What is a GPU: no FP32 matrix-core figure stands as a vector FP32 peak.

No measured value is hard-coded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucnn.measurement import Measurement
from tests.test_fake_accelerator import cpu_only, fake_build

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024**2


def _copy(buffer_bytes: int, seconds: float) -> Measurement:
    return Measurement(name="copy", device="cuda", dtype="float32", shape=(buffer_bytes,), threads=1,
                       times_s=(seconds,) * 5, number_per_run=1, bytes_moved=2.0 * buffer_bytes)


@pytest.fixture
def results_archive(tmp_path: Path):
    """A CPU-only build whose archive is the project's own results/."""
    with fake_build(cpu_only(), ROOT / "results", tmp_path / "cache",
                    ("measuring", "fast_memory", "cnn", "tensor_cores", "gpu")):
        yield


# --- Measuring: the article's GPU time, in parts ---

@pytest.mark.parametrize(("rnd", "art"), [(0.5, 1.0), (0.99, 1.0), (1.0, 1.0), (1.2, 1.0)])
def test_the_input_share_says_when_the_input_alone_took_more_than_the_whole(rnd: float, art: float) -> None:
    from gpucnn.pages.measuring import _randn_share

    text = _randn_share(rnd, art)
    assert f"{100 * rnd / art:.0f} %" in text
    assert ("more than the whole" in text) == (rnd > art)


def test_measuring_findings_explain_every_gpu_whose_parts_exceed_the_whole(results_archive) -> None:
    """The caveat follows the data (review 3, M7), not the input's share: parts > whole, and only then."""
    from gpucnn.experiments.matmul import article_matmul
    from gpucnn.pages.measuring import findings
    from gpucnn.sources import pairs

    text = findings()
    checked = 0
    for p in pairs(article_matmul):
        g = p.gpu.result.data
        parts = g["randn_2000"].median + g["correct_2000"].median
        paragraph = next(line for line in text.splitlines() if line.startswith(f"On {p.gpu.label},"))
        assert ("the two overlap instead of adding up" in paragraph) == (parts > g["article_2000"].median), paragraph
        checked += 1
    assert checked


# --- Measuring: the cache caveat ---

def test_the_l2_caveat_is_a_floor_from_the_launch_free_sweep() -> None:
    from gpucnn.pages.measuring import l2_caveat

    l2 = 64 * MIB
    pts = [_copy(b, 2.0 * b / 8e12 + 1e-6) for b in (MIB, 4 * MIB, 16 * MIB, 64 * MIB)]
    best = max((m for m in pts if 2 * m.shape[0] <= l2), key=lambda m: m.gbps)
    text = l2_caveat("X", pts, peak=3e12, l2_bytes=l2)
    assert "**at least " in text and "floor" in text and "16 MiB per buffer" in text
    from gpucnn.render import fmt

    assert fmt(best.gbps) in text
    assert l2_caveat("X", pts, peak=best.gbps * 1e9 * 2, l2_bytes=l2) == ""  # below the peak: nothing to say


def test_a_call_bound_copy_is_not_put_down_to_the_l2() -> None:
    from gpucnn.pages.measuring import copy_sweep_caveat

    l2 = 64 * MIB
    sizes = (1024, MIB, 16 * MIB)
    call_bound = [_copy(1024, 6e-6), _copy(MIB, 6.5e-6), _copy(16 * MIB, 9e-6)]  # 16 MiB in 1.5x the smallest
    text = copy_sweep_caveat("X", call_bound, peak=3e12, l2_bytes=l2, memory="GDDR")
    assert text and "lower bound" in text and "never went to" not in text
    copy_bound = [_copy(1024, 2e-6), _copy(MIB, 2.5e-6), _copy(16 * MIB, 9e-6)]  # 4.5x the smallest
    text = copy_sweep_caveat("X", copy_bound, peak=3e12, l2_bytes=l2, memory="GDDR")
    assert "never went to GDDR" in text and "3,000 GB/s GDDR peak" in text and "lower bound" in text
    assert "HBM" not in text  # the device's own memory kind, not every GPU's "HBM"
    assert len(sizes) == len(call_bound)


def test_the_caveat_uses_each_sources_l2_sweep_where_it_has_one(results_archive) -> None:
    from gpucnn.experiments.memory import copy_bandwidth, l2_copy_bandwidth
    from gpucnn.pages.measuring import cache_caveat
    from gpucnn.render import fmt
    from gpucnn.sources import accelerators, sibling

    text = cache_caveat()
    with_l2 = 0
    for s in accelerators(copy_bandwidth):
        paragraph = next((p for p in text.split("\n\n") if p.startswith(f"On {s.label},")), "")
        l2 = sibling(s, l2_copy_bandwidth)
        if l2 is None:
            assert "launch cost removed" not in paragraph and "many copies per call" not in paragraph
            if paragraph and "never went to" in paragraph:
                pts = [m for m in s.result.data["sweep"].points if m.gbps]
                best = max((m for m in pts if 2 * m.shape[0] <= s.hardware.accelerator.l2_bytes),
                           key=lambda m: m.gbps)
                assert best.median > 2 * min(pts, key=lambda m: m.shape[0]).median
            continue
        cache = s.hardware.accelerator.l2_bytes
        best = max((m for m in l2.result.data["sweep"].points if m.gbps and 2 * m.shape[0] <= cache),
                   key=lambda m: m.gbps)
        if best.gbps * 1e9 > s.hardware.accelerator.peaks.bandwidth:
            assert f"**at least {fmt(best.gbps)} GB/s**" in paragraph and "floor" in paragraph
            how = "host's launch cost removed (CUDA-graph replay)" if l2.result.data.get("graphs") \
                else "launch cost shared by many copies per call"
            assert how in paragraph, paragraph
            with_l2 += 1
    if not with_l2:
        pytest.skip("no record in results/ has an L2 sweep above its device-memory peak")


# --- CNN: kernel times; archived labels ---

def test_no_kernel_times_only_where_the_record_has_none() -> None:
    from gpucnn.pages.cnn import _missing_layer_times

    assert "no kernel times" in _missing_layer_times(False)
    assert "no kernel times" not in _missing_layer_times(True)
    assert "per layer" in _missing_layer_times(True)


def test_cnn_says_no_kernel_times_only_of_a_record_without_them(results_archive) -> None:
    from gpucnn.experiments.conv import cnn_profile
    from gpucnn.pages.cnn import profile_tables
    from gpucnn.profiling import stored_kernel_rows, stored_op_rows
    from gpucnn.sources import sources

    text = profile_tables()
    checked = 0
    for s in sources(cnn_profile):
        if s.is_cpu:
            continue
        d = s.result.data
        timed = bool(stored_kernel_rows(d["ops"], d.get("kernels") or ())) or any(
            r["self_device_s"] for r in stored_op_rows(d["ops"]))
        layer_caption = text.split(f"{s.label}: the forward pass of each layer")[1].split("the top ops")[0]
        assert ("no kernel times" in layer_caption) == (not timed and "kernel time is the time" not in layer_caption)
        checked += 1
    assert checked


def test_the_archived_labels_are_defined_and_linked(results_archive) -> None:
    from gpucnn.experiments.matmul import article_matmul
    from gpucnn.sources import begin_page, no_gpu_note, sources

    glossary = (ROOT / "docs" / "glossary.md").read_text()
    assert "{#archived-labels}" in glossary
    section = " ".join(glossary.split("{#archived-labels}")[1].split("\n## ")[0].split())
    assert "code changed since recording" in section and "older" in section
    assert "H100 (archived)" in section and "H100 (archived, code changed since recording)" in section
    begin_page(None)
    note = no_gpu_note(sources(article_matmul))
    assert "glossary.md#archived-labels" in note


# --- Tensor cores: the precision chart's colour is the source, its marker the precision ---



# --- What is a GPU: vector FP32, not AMD's matrix-core FP32, before the tensor cores are counted ---

def test_every_matrix_fp32_row_has_a_vector_figure() -> None:
    from gpucnn.datasheets import GPU_MODELS, vector_fp32

    for m in GPU_MODELS:
        value, source = vector_fp32(m.label, m.peaks)
        if "matrix" in m.peaks.source.lower():
            assert source != m.peaks.source and "vector" in source.lower(), m.label
            assert value <= m.peaks.fp32  # a vector rate never beats the matrix cores' rate
        else:
            assert (value, source) == (m.peaks.fp32, m.peaks.source), m.label


# --- Tensor cores: the smallest factor's reason stands on the datasheet rows and their notes ---



