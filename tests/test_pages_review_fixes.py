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

# --- Measuring: the cache caveat ---

def test_an_l2_roof_from_the_one_copy_sweep_is_a_lower_bound(results_archive) -> None:
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.experiments.memory import l2_copy_bandwidth
    from gpucnn.pages.fast_memory import memory_roofs
    from gpucnn.sources import accelerators, sibling

    checked = 0
    for s in accelerators(matmul_sweep):
        for roof in memory_roofs(s):
            if roof.label.startswith("L2 roof") and sibling(s, l2_copy_bandwidth) is None:
                assert "lower bound" in roof.label
                checked += 1
    if not checked:
        pytest.skip("every GPU record in results/ has the launch-free L2 sweep")


# --- CNN: kernel times; archived labels ---

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

def test_the_precision_chart_colours_by_source_and_marks_by_precision() -> None:
    from gpucnn import archive
    from gpucnn.experiments.precision import LABELS
    from gpucnn.pages.tensor_cores import PrecisionSweep, precision_series
    from gpucnn.render import origin_style
    from gpucnn.sources import Source
    from tests.test_pages_tensor_cores import point, sweep_source

    cpu32 = sweep_source([point(2, 1e-6), point(4, 2e-6)], "float32")
    cpu16 = sweep_source([point(2, 1e-6), point(4, 2e-6)], "bfloat16")
    gpu = Source("cuda", cpu32.result)  # this build's GPU: same origin as its CPU
    record = archive.records()[0]
    old = Source("cuda", cpu32.result, record)
    sweeps = [cpu32, cpu16, PrecisionSweep(gpu, "float32"), PrecisionSweep(gpu, "bfloat16"),
              PrecisionSweep(old, "float32"), PrecisionSweep(old, "tf32")]
    series = precision_series(sweeps)
    colour = {o: origin_style(i, False)["color"] for i, o in enumerate(dict.fromkeys(s.source.origin for s in sweeps))}
    for sw, line in zip(sweeps, series, strict=True):
        assert line.label == f"{sw.source.label} {LABELS[sw.precision]}"
        assert line.style["color"] == colour[sw.source.origin]
        assert line.style["linestyle"] == ("-" if sw.source.is_cpu else "-.")
    # one marker per precision within each source, the same precision's marker in every source
    by_precision: dict[str, set[str]] = {}
    for sw, line in zip(sweeps, series, strict=True):
        by_precision.setdefault(sw.precision, set()).add(line.style["marker"])
    assert all(len(m) == 1 for m in by_precision.values()), by_precision
    assert len({next(iter(m)) for m in by_precision.values()}) == len(by_precision)
    assert series[0].label == "CPU (this build) fp32" and series[-1].label.endswith("(archived) TF32")


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


def test_the_datasheet_table_divides_the_vector_fp32_peak_by_the_bandwidth() -> None:
    from gpucnn.datasheets import GPU_MODELS, vector_fp32
    from gpucnn.pages.gpu import cpu_gpu_ratio, datasheet_table
    from gpucnn.render import fmt

    text = datasheet_table()
    checked = 0
    for m in GPU_MODELS:
        value, _source = vector_fp32(m.label, m.peaks)
        row = next(line for line in text.splitlines() if line.startswith(f"| {m.label} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == fmt(value / 1e12, 4) and cells[5] == fmt(value / m.peaks.bandwidth), row
        if value != m.peaks.fp32:
            assert f"{m.label} {fmt(m.peaks.fp32 / 1e12, 4)}" in text  # the matrix figure, named as such
            checked += 1
    assert checked
    top = max(vector_fp32(m.label, m.peaks)[0] for m in GPU_MODELS)
    assert f"to {fmt(top / 1e12)} TFLOP/s" in cpu_gpu_ratio() or "no peak to compare" in cpu_gpu_ratio()


# --- Tensor cores: the smallest factor's reason stands on the datasheet rows and their notes ---

def test_the_smallest_factor_reason_cites_the_rows_it_stands_on() -> None:
    import re

    from gpucnn.pages.tensor_cores import _nvidia_models, _sources, factor_summary

    text = factor_summary()
    assert "no faster per SM" not in text and "did not get faster" not in text
    sources = _sources(_nvidia_models())
    rows = {m.label: m for m in _nvidia_models()}
    for sentence in re.split(r"(?<=\.) ", text):
        cited = [sources[int(i) - 1] for i in re.findall(r"\[(\d+)\]", sentence)]
        if "FP32 accumulate" in sentence:
            assert cited and all("FP32 accumulate" in s for s in cited), sentence
        twin = re.search(r"The (.+?), with the same (\d+) SMs as the (.+?) and", sentence)
        if twin:
            a, b = rows[twin.group(1)], rows[twin.group(3)]
            assert a.units == b.units == int(twin.group(2))
            assert {a.peaks.source, b.peaks.source} <= set(cited)


def test_the_training_pages_note_links_the_archived_labels(tmp_path: Path) -> None:
    with fake_build(cpu_only(), ROOT / "results", tmp_path / "cache", ("training",)):
        from gpucnn.pages.training import accelerator_note, digits_sources, throughput_sources

        if not any(s.archived for s in digits_sources() + throughput_sources()):
            pytest.skip("no archived training record in results/")
        assert '<a href="../glossary/#archived-labels">' in accelerator_note("GPU figures")


def test_a_marker_moved_for_legibility_is_named_in_the_caption(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn import archive
    from gpucnn.pages import tensor_cores
    from gpucnn.pages.tensor_cores import PrecisionSweep
    from gpucnn.sources import Source
    from tests.test_pages_tensor_cores import point, sweep_source

    cpu = sweep_source([point(2, 1e-6), point(4, 2e-6)], "float32")
    first, second = archive.records()[:2]
    a, b = (Source("cuda", cpu.result, r) for r in (first, second))
    monkeypatch.setattr(tensor_cores, "precision_sweeps", lambda: [cpu, PrecisionSweep(a, "float32"),
                                                                  PrecisionSweep(b, "float32")])
    html = tensor_cores.precision_chart()
    assert "marker: the precision, except for" in html and b.label.split(" (")[0] in html.split("except for")[1]
    monkeypatch.setattr(tensor_cores, "precision_sweeps", lambda: [cpu, PrecisionSweep(a, "float32")])
    assert "marker: the precision." in tensor_cores.precision_chart()
