"""No measured number in prose or constants (issue 10, section 5).

Every figure a page shows from the build machine is computed when the site is
built; a figure from elsewhere names its source. This scans the pages
(docs/*.md, the training notebook docs/training.py) and the snippets they include as text and every gpucnn
module's string literals (docstrings included: they become captions and help
texts, and are where a stale figure hides) for a number with a unit of time,
rate or speed-up ("21 s", "300 GFLOP/s", "55 GB/s", "2.1 µs", "1.8x"). Each
hit must be in ALLOWED, with the source that makes it citable, or the reason it
is not a measurement (a FLOP-count factor, a profile's time limit).

A sentence that states a measured figure belongs in a page function that
computes it, not in ALLOWED.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

_NUM = r"(?<![\w.,])\d[\d,]*(?:\.\d+)?"
_UNIT = (r"(?:[mµμun]?s|seconds?|milliseconds?|microseconds?|nanoseconds?"
         r"|(?:[kKMGTP]i?B|[kMGTP]?FLOP|bytes|samples|images|tokens|steps|it)/s|[kMGTP]?FLOPS)")
# A figure with a unit ("21 s", "55 GB/s"), or a speed-up written without a space ("1.8x", "2×").
# "2 x 256-bit" (a product) and "3x3" (a shape) are not speed-ups.
FIGURE = re.compile(rf"{_NUM}[ \u00a0\u2009\u202f]?{_UNIT}(?![\w/])|{_NUM}[x×](?![\w\d])")

# (file, figure as written) -> where it comes from, or why it is no measurement.
ALLOWED: dict[tuple[str, str], str] = {
    # FLOP-count arithmetic: the backward pass costs two forward-sized matmuls.
    ("docs/cnn.md", "3x"): "FLOP count: forward + backward = 3 convolutions of the forward's size",
    ("gpucnn/experiments/conv.py", "3x"): "FLOP count, as above",
    ("gpucnn/experiments/nn.py", "3x"): "FLOP count, as above",
    ("gpucnn/pages/ann.py", "3x"): "FLOP count, as above",
    ("gpucnn/pages/ann.py", "2x"): "FLOP count: the backward pass is two matmuls per layer",
    ("docs/ann.md", "1.5x"): "a threshold the regime sentence tests the data against (ann.flat_until)",
    ("gpucnn/experiments/memory.py", "8x"): "a sweep parameter: buffers up to 8x the last-level cache",
    ("gpucnn/experiments/training.py", "0.05 s"): "the quick profile's time limit per point (gpucnn.profile)",
    ("gpucnn/typed.py", "0 seconds"): "a check's bound: a time must be positive",
    # Datasheets and vendor documents.
    ("docs/bandwidth.md", "3.35 TB/s"): "NVIDIA H100 datasheet, HBM3 bandwidth (SXM)",
    ("docs/bandwidth.md", "4.8 TB/s"): "NVIDIA H200 datasheet, HBM3e bandwidth",
    ("docs/bandwidth.md", "128 GB/s"): "NVIDIA H100 datasheet, PCIe Gen5 both directions",
    ("docs/bandwidth.md", "63 GB/s"): "PCI Express Base Specification 5.0: 32 GT/s x 16 lanes, 128b/130b, one way",
    ("docs/bandwidth.md", "32 GB/s"): "PCI Express Base Specification 4.0: half the Gen5 rate, one way",
    ("docs/glossary.md", "3.35 TB/s"): "NVIDIA H100 datasheet, HBM3 bandwidth (SXM)",
    ("docs/gpu.md", "66.9 TFLOP/s"): "arithmetic from the H100 datasheet's SM count and boost clock",
    ("docs/gpu.md", "67 TFLOP/s"): "NVIDIA H100 datasheet, FP32",
    ("docs/gpu.md", "100 ns"): "Jeff Dean, 'Latency numbers every programmer should know': main memory reference",
    ("docs/resnet.md", "4x"): "architecture: a bottleneck's last 1x1 convolution widens the channels 4 times",
    ("gpucnn/datasheets.py", "2x"): "Intel: AVX512_BF16 dot products run at twice the FP32 rate",
    ("gpucnn/datasheets.py", "4x"): "Arm: BFMMLA at four times the FP32 rate",
    # Cited measurements made elsewhere, each named where it is quoted.
    ("docs/fast-memory.md", "4.31 µs"): "the article's own figure (Google Colab CPU), named as such",
    ("docs/fast-memory.md", "59.8 µs"): "the article's own figure (Google Colab GPU), named as such",
    ("docs/measuring.md", "4.31 µs"): "the article's own figure, named as such",
    ("docs/measuring.md", "198 ms"): "the article's own figure, named as such",
    ("docs/measuring.md", "59.8 µs"): "the article's own figure, named as such",
    ("docs/measuring.md", "26.8 ms"): "the article's own figure, named as such",
    ("docs/measuring.md", "2775 µs"): "PyTorch's benchmark recipe (torch.utils.benchmark tutorial), named as such",
    ("docs/measuring.md", "22 µs"): "PyTorch's benchmark recipe, named as such",
    ("docs/fast-memory.md", "10 µs"): "Modal GPU glossary, quoted: launch cost 'on the order of 10 µs'",
    ("docs/glossary.md", "10 µs"): "Modal GPU glossary, quoted",
    ("docs/parallelism.md", "500 ns"): "a round DRAM latency assumed for a Little's-law example, said so",
}


def figures(text: str) -> Iterator[str]:
    """Every number-with-unit figure in ``text``, as written."""
    for m in FIGURE.finditer(text):
        yield m.group(0)


def _string_literals(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def scanned() -> Iterator[tuple[str, int, str]]:
    """(file, line, figure) for the pages' and snippets' text and every gpucnn module's string literals."""
    pages = [*sorted(ROOT.glob("docs/*.md")), ROOT / "docs" / "training.py", *sorted(ROOT.glob("snippets/*.py"))]
    for path in pages:
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for fig in figures(line):
                yield rel, n, fig
    for path in sorted((ROOT / "gpucnn").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for n, text in _string_literals(path):
            for fig in figures(" ".join(text.split())):  # a figure may wrap across a docstring's lines
                yield rel, n, fig


@pytest.mark.parametrize("text", ["a cold compile takes about 21 s here", "reaches 300 GFLOP/s", "1.8x faster",
                                  "55 GB/s one way", "2.1 µs per call", "2,147 GFLOP/s", "0.8 ms", "5.2 TB/s",
                                  "a 3.5× speed-up", "1,412 samples/s", "12 us"])
def test_the_pattern_finds_a_figure(text: str) -> None:
    assert list(figures(text)), text


@pytest.mark.parametrize("text", ["a 3x3 kernel", "a 2x2 matmul", "28x28 images", "2 x batch x in", "n = 4096",
                                  "256 MiB buffers", "fp32", "sm80_xmma", "H100s", "10^9 bytes", "97 %"])
def test_the_pattern_leaves_shapes_sizes_and_names(text: str) -> None:
    assert not list(figures(text)), text


def test_no_measured_number_in_prose_or_constants() -> None:
    found = list(scanned())
    assert found, "the scan found nothing at all: it would pass whatever the pages say"
    bad = [f"{f}:{n}: {fig!r}" for f, n, fig in found if (f, fig) not in ALLOWED]
    assert not bad, ("numbers with units in prose or string constants: compute them in a page function at build "
                     "time, or, for a datasheet or a cited figure, add them to ALLOWED with their source:\n"
                     + "\n".join(bad))


def test_every_allowed_figure_is_still_there_and_has_a_source() -> None:
    present = {(f, fig) for f, _, fig in scanned()}
    stale = [f"{key}" for key in ALLOWED if key not in present]
    assert not stale, "ALLOWED entries no longer found (remove them):\n" + "\n".join(stale)
    assert all(source.strip() for source in ALLOWED.values())
