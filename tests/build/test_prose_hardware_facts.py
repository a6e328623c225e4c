"""Hardware facts the prose states, checked against their sources (issue 19, "Smaller errors" and the CNN page).

The datasheet table (gpucnn.datasheets) and the archived GPU profiles in results/ are the sources: a sentence
that quotes a range or a count from them must agree with them, and the CNN page must not name one convolution
algorithm as cuDNN's path where the recorded profiles show several.
"""

from __future__ import annotations

import json

from gpucnn.datasheets import GPU_MODELS, vector_fp32
from gpucnn.pages.cnn import conv_algorithm
from tests.conftest import ROOT


def _flat(page: str) -> str:
    return " ".join((ROOT / "docs" / page).read_text().split())


def _flop_per_byte(prefixes: tuple[str, ...]) -> list[float]:
    return [vector_fp32(m.label, m.peaks)[0] / m.peaks.bandwidth for m in GPU_MODELS if m.label.startswith(prefixes)]


def test_resident_threads_are_counted_from_the_h100() -> None:
    """parallelism.md: an H100 holds 132 SMs x 2,048 threads (64 warps of 32), hundreds of thousands."""
    text = _flat("parallelism.md")
    h100 = next(m for m in GPU_MODELS if m.label == "H100 SXM 80GB")
    assert f"{h100.units} SMs x {64 * 32:,} threads" in text
    assert 100_000 <= h100.units * 64 * 32 < 1_000_000 and "hundreds of thousands of threads" in text
    assert "tens of thousands" not in text


def test_each_sm_issues_from_four_schedulers() -> None:
    for page in ("gpu.md", "parallelism.md"):
        text = _flat(page)
        assert "four warp schedulers" in text, page
        assert "every cycle, issues an instruction from one that" not in text, page


def test_the_cnn_page_names_the_algorithms_the_recorded_profiles_show() -> None:
    """The archived H100/H200 profiles ran more than one cuDNN algorithm (FFT and implicit GEMM); the page
    names each one they show and calls none of them cuDNN's main path."""
    shown: set[str] = set()
    for path in (ROOT / "results").glob("*.json"):
        for result in json.loads(path.read_text()).get("results", []):
            for row in (result.get("data") or {}).get("kernels") or []:
                if isinstance(row, dict) and isinstance(row.get("op"), str) and conv_algorithm(row["op"]):
                    shown.add(conv_algorithm(row["op"]))
    shown.discard("wgrad")
    assert len(shown) >= 2, shown
    text = _flat("cnn.md")
    names = {"implicit_gemm": "implicit GEMM", "fft": "FFT", "winograd": "Winograd"}
    assert all(names[family] in text for family in shown)
    assert "main convolution path" not in text and "main convolution path" not in _flat("glossary.md")
