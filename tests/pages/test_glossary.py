"""The Glossary: the archived labels every chart and sources line may carry are defined there and linked from
the shared notes. Checked on a CPU-only build over the project's own results/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes import cpu_only, fake_build


@pytest.fixture
def results_archive(tmp_path: Path):
    """A CPU-only build whose archive is the project's own results/."""
    with fake_build(cpu_only(), ROOT / "results", tmp_path / "cache",
                    ("measuring", "fast_memory", "cnn", "tensor_cores", "gpu")):
        yield


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
