"""Every page builder with a fake H100 (tests/fakes.py): the ``if acc:`` branches of the pages render.

Nothing measured is asserted: only that the GPU branches render.
"""


from __future__ import annotations

import inspect

import pytest

from tests.fakes import NO_GPU, PAGE_MODULES, fake_report, install_fake_gpu

# The facts (not HTML) the last _render_all returned, by module.function: pages return facts for their words.
FACTS: dict[str, object] = {}


def _render_all() -> dict[str, str]:
    """Every zero-argument builder of every page module, rendered: {module.function: output}. The facts the
    others return (dataclasses, lists of them) are kept in ``FACTS``."""
    import importlib

    out: dict[str, str] = {}
    FACTS.clear()
    for name in PAGE_MODULES:
        module = importlib.import_module(f"gpucnn.pages.{name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or fname.startswith("_"):
                continue
            params = inspect.signature(fn).parameters.values()
            if any(p.default is inspect.Parameter.empty for p in params):
                continue
            value = fn()
            if isinstance(value, str):
                out[f"{name}.{fname}"] = value
            elif hasattr(value, "_repr_html_"):
                out[f"{name}.{fname}"] = value._repr_html_()
            else:
                FACTS[f"{name}.{fname}"] = value
    return out



@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    synced: list[int] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUCNN_CACHE_DIR", str(tmp_path_factory.mktemp("fake-gpu-cache")))
        install_fake_gpu(mp, fake_report(), synced=synced)
        rendered = _render_all()
        assert synced, "the accelerator's measurements never synchronized it"
    return rendered


def _joined(pages: dict[str, str], module: str) -> str:
    return "\n".join(v for k, v in pages.items() if k.startswith(f"{module}."))


def test_no_page_says_there_is_no_gpu(pages) -> None:
    said = [k for k, v in pages.items() if NO_GPU in v or "This build has no GPU" in v or "no GPU was measured" in v]
    assert said == []


def test_gpu_columns_and_rows_name_the_gpu(pages) -> None:
    label = "H100 (this build)"
    for key in ("summary.headline_table", "measuring.comparison_table", "bandwidth.dram_table",
                "bandwidth.elementwise_table", "fast_memory.latency_table", "fast_memory.reuse_table",
                "ann.batch_table", "cnn.conv_table", "results.comparison_table", "gpu.machines_table",
                "training.training_table", "training.speedup_table", "training.deploy_table"):
        assert label in pages[key], key
    # the summary's GPU column has figures, and its % of peak is against the datasheet
    headline = pages["summary.headline_table"]
    assert "% of datasheet" in headline
    # the DRAM table compares the GPU with its datasheet HBM bandwidth
    assert "3,350 GB/s" in pages["bandwidth.dram_table"] and "Datasheet peak" in pages["bandwidth.dram_table"]


def test_the_live_gpu_replaces_archived_records_of_its_model(pages) -> None:
    """results/ holds an H100 record: with a live H100, only the live one is drawn (other models may stand beside)."""
    for key, html in pages.items():
        if key.startswith("results."):
            continue  # the Results page lists every record, drawn or not
        assert "H100 (archived" not in html, key


def test_gpu_charts_and_sentences_render(pages) -> None:
    label = "H100 (this build)"
    assert f"{label}, inputs copied each call" in pages["parallelism.gflops_chart"]
    assert f"Copy bandwidth against size: {label}" in pages["bandwidth.copy_charts"]
    copy = pages["bandwidth.copy_charts"]
    assert "L2 50 MiB" in copy and "datasheet peak" in copy and "3,350 GB/s" in copy
    assert f"{label}, pinned" in pages["bandwidth.host_to_device_charts"]
    assert label in pages["bandwidth.host_to_device_table"]
    assert f"L2 and HBM, launch cost removed: {label}" in pages["bandwidth.l2_copy_charts"]
    assert label in pages["bandwidth.l2_table"]
    assert label in pages["bandwidth.overlap_table"] and "Overlapped" in pages["bandwidth.overlap_table"]
    assert any(a.source.label == label for a in FACTS["measuring.articles"])
    # torch.compile is measured on an accelerator, not skipped with the CPU's note
    speed = pages["training.speedup_table"]
    assert speed.count("torch.compile") >= 2 and "torch.compile failed" not in speed
    # on an NVIDIA GPU, TF32 and the three speedups together are rows of the GPU's own table
    assert ">TF32<" in speed and ">channels_last + bf16 autocast + torch.compile<" in speed
    gpu = next(s for s in FACTS["training.speedup_facts"].found if s.source.label == label)
    assert gpu.compile is not None and gpu.tf32 is not None and gpu.together and gpu.cpu_bf16 is None
    assert label in pages["training.loss_chart"] and label in pages["training.deploy_chart"]



def test_gpu_charts_have_their_tables_and_read_without_colour(pages) -> None:
    """What the built-site check asks of a CPU build, asked of the pages as a GPU build renders them."""
    from tests.build.charts import CHART, charts_told_apart_by_colour_only, charts_without_table

    drawn = {key: html for key, html in pages.items() if CHART.search(html)}
    assert len(drawn) >= 10
    assert {key: charts_without_table(html) for key, html in drawn.items() if charts_without_table(html)} == {}
    assert {key: c for key, html in drawn.items() if (c := charts_told_apart_by_colour_only(html))} == {}
