"""ResNet at real scale: the experiments' helpers, and the page's facts from a real archived GPU record.

The page is rendered against the H200 record in results/ with this build's CPU results stood in by that
record's own host CPU results (no measuring here): what is checked is which sources each table shows,
the verdicts it decides and the arithmetic of its models, never a measured value.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import gpucnn.pages.resnet as page
import gpucnn.sources as sources_mod
from gpucnn.archive import records
from gpucnn.experiments import resnet as exp
from gpucnn.models import build_resnet, layer_macs, parameter_count
from gpucnn.sources import find
from tests.conftest import ROOT

RESULTS = ROOT / "results"


# --- experiments' helpers --------------------------------------------------------------

def test_tf32_is_skipped_off_cuda_with_its_code() -> None:
    assert exp.skip_reason(exp.Variant("TF32", tf32=True), "cpu") == exp.SKIP_TF32_CUDA_ONLY
    assert exp.skip_reason(exp.FP32, "cpu") is None


@pytest.mark.parametrize("has_unit, expected", [(False, exp.SKIP_NO_BF16_UNIT), (True, None)])
def test_bf16_on_a_cpu_depends_on_its_bf16_unit(monkeypatch, has_unit: bool, expected: str | None) -> None:
    monkeypatch.setattr(exp, "cpu_has_bf16_unit", lambda: has_unit)
    bf16 = exp.Variant("bf16 autocast", amp=True)
    assert exp.skip_reason(bf16, "cpu") == expected
    # the three together: TF32 does not exist on a CPU, yet the variant runs where bf16 does
    assert exp.skip_reason(exp.RESNET_VARIANTS[-1], "cpu") == expected


@pytest.mark.parametrize("op, layer", [
    ("aten::cudnn_convolution", "convolution"), ("aten::convolution_backward", "convolution"),
    ("aten::mkldnn_convolution", "convolution"), ("aten::native_batch_norm_backward", "batch norm"),
    ("aten::cudnn_batch_norm", "batch norm"), ("aten::relu_", "ReLU"), ("aten::threshold_backward", "ReLU"),
    ("aten::max_pool2d_with_indices", "pooling"), ("aten::_foreach_add_", "optimizer"),
    ("aten::addmm", "classifier and loss"), ("aten::nll_loss_forward", "classifier and loss"),
    ("aten::add_", "residual add"), ("aten::_to_copy", "casts and copies"), ("aten::mean", "other"),
])
def test_each_operator_counts_for_its_layer_type(op: str, layer: str) -> None:
    assert exp.layer_type(op) == layer


def test_work_estimate_counts_convolutions_from_the_layers_and_the_optimizer_per_weight() -> None:
    model = build_resnet("resnet18")
    shape = (4, 3, 64, 64)
    work = exp.work_by_layer_type(model, shape, element_bytes=2)
    assert work["convolution"]["flops"] == pytest.approx(6 * layer_macs(model, shape)["conv"])
    # the optimizer's bytes are fp32 weights, whatever the activations' precision and batch
    assert work["optimizer"]["bytes"] == 8 * 4 * parameter_count(model)
    double = exp.work_by_layer_type(model, (8, 3, 64, 64), element_bytes=2)
    for layer in ("batch norm", "ReLU", "residual add", "pooling"):
        assert work[layer]["bytes"] > 0
        assert double[layer]["bytes"] == pytest.approx(2 * work[layer]["bytes"])
    # memory-bound layer types do about one FLOP per byte or less; convolutions far more
    assert work["convolution"]["flops"] / work["convolution"]["bytes"] > 20
    assert all(work[k]["flops"] / work[k]["bytes"] <= 1 for k in ("batch norm", "ReLU", "residual add"))


def test_saved_activations_exclude_the_weights_and_count_the_input() -> None:
    layer = nn.Linear(64, 4, bias=False)
    x = torch.randn(3, 64)
    # A linear layer keeps its input for the weight gradient (the loss keeps its few small tensors too); its
    # weight, 4x the input's size here, is counted as weights, not here.
    saved = exp.saved_activation_bytes(layer, x, torch.zeros(3, dtype=torch.long))
    assert x.nbytes <= saved < x.nbytes + layer.weight.nbytes / 2


def test_saved_activations_grow_linearly_with_the_batch() -> None:
    model = build_resnet("resnet18").train()
    one, two, four = (exp.saved_activation_bytes(model, *exp.synthetic_images(b, 64, "cpu")) for b in (1, 2, 4))
    # a straight line: each image adds the same bytes (batch norm's per-channel statistics are the fixed part)
    assert two - one > 0
    assert four - two == pytest.approx(2 * (two - one), rel=0.01)


def test_train_flops_are_six_per_multiply_add_per_image() -> None:
    macs = sum(layer_macs(build_resnet("resnet50"), (1, 3, 224, 224)).values())
    assert exp.train_flops("resnet50", 224, 4) == 6 * macs * 4


def test_cudnn_benchmark_is_restored_after_the_experiments(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with exp.cudnn_benchmark("cuda"):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(RuntimeError), exp.cudnn_benchmark("cuda"):
        raise RuntimeError("a failing step")
    assert torch.backends.cudnn.benchmark is False


# --- the page's models and verdicts ----------------------------------------------------

def test_memory_fit_is_a_least_squares_line_and_the_largest_batch_a_power_of_two() -> None:
    fit = page.fit_memory([(1, 1_100), (2, 1_200), (4, 1_400)])
    assert fit.fixed == pytest.approx(1_000) and fit.per_image == pytest.approx(100)
    assert fit.largest_batch(1_000 + 100 * 700) == 512  # 1024 images would need 103,400
    assert page.fit_memory([(8, 5)]) is None


@pytest.mark.parametrize("intensity, verdict", [
    (400.0, page.COMPUTE_BOUND), (150.0, page.NEAR_RIDGE), (60.0, page.NEAR_RIDGE), (40.0, page.MEMORY_BOUND),
])
def test_roofline_verdict_leaves_a_band_around_the_ridge(intensity: float, verdict: str) -> None:
    assert page.roofline_verdict(intensity, 100.0) == verdict


# --- the page against the real H200 record ----------------------------------------------

def _resnet_record():
    found = [r for r in records(RESULTS) if any(x.experiment == "resnet_train_sweep" for x in r.results)]
    if not found:
        pytest.skip("no archived record has the ResNet experiments")
    return max(found, key=lambda r: (r.generated_at, r.name))


@pytest.fixture()
def cpu_build_with_archive(monkeypatch, tmp_path: Path):
    """A CPU-only build over results/, whose own CPU results are the newest ResNet record's host CPU ones."""
    record = _resnet_record()

    def host_result(fn, device: str = "cpu", **params):
        if device != "cpu":
            raise AssertionError(f"a CPU-only build measured {fn.__name__} on {device}")
        result = find(record, fn, device="cpu", **params)
        if result is None:
            pytest.skip(f"the record has no host CPU result of {fn.__name__}")
        return result

    from tests.fakes import cpu_only

    monkeypatch.setattr(sources_mod.hardware, "detect", lambda *a, **k: cpu_only())
    monkeypatch.setattr(sources_mod, "run", host_result)
    monkeypatch.setattr(page, "run", host_result)
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(RESULTS))
    sources_mod.reset()
    yield record
    sources_mod.reset()


def _rows(table: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", table)


def test_throughput_table_compares_a_gpu_only_with_its_own_host_cpu(cpu_build_with_archive) -> None:
    record = cpu_build_with_archive
    table = page.throughput_table()
    mark = f'data-source="archived:{record.name}"'
    rows = _rows(table)[1:]
    gpu_rows = [r for r in rows if mark in r and "host CPU" not in r]
    assert any("resnet50, 224x224" in r for r in gpu_rows)
    # the ratio column: filled on the archived GPU's ResNet-18 row, and nowhere on this build's CPU row
    ratio = re.compile(r">[\d.,]+x</td></tr>$|>[\d.,]+x</td>$")
    assert any("resnet18" in r and ratio.search(r) for r in gpu_rows)
    assert not any(ratio.search(r) for r in rows if 'data-source="live"' in r)


def test_largest_batch_table_models_a_gpu_without_its_own_sweep(cpu_build_with_archive) -> None:
    table = page.largest_batch_table()
    rows = _rows(table)[1:]
    measured = [r for r in rows if ">measured<" in r]
    modelled = [r for r in rows if "model, from" in r]
    assert measured, table
    assert len({re.search(r'data-source="([^"]+)"', r).group(1) for r in measured}) == len(measured)
    # an archived GPU model without a memory sweep (the H100 records) is modelled, never shown as measured
    assert modelled and not any(">measured<" in r for r in modelled)


def test_variants_table_names_each_precisions_peak(cpu_build_with_archive) -> None:
    table = page.variants_table()
    assert "% of bf16" in table and "% of FP32" in table
    gpu = [r for r in _rows(table) if "archived:" in r]
    if any(">TF32<" in r for r in gpu):
        assert any(">TF32<" in r and "% of TF32" in r for r in gpu)


def test_profile_table_calls_convolutions_arithmetic_and_batch_norm_memory_bound(cpu_build_with_archive) -> None:
    table = page.profile_table()
    for row in _rows(table)[1:]:
        if ">batch norm<" in row or ">ReLU<" in row:
            assert page.MEMORY_BOUND in row
        if ">convolution<" in row and 'data-source="archived:' in row and "host" not in row:
            assert page.MEMORY_BOUND not in row


def test_every_table_escapes_and_marks_its_sources(cpu_build_with_archive) -> None:
    for fn in (page.throughput_table, page.variants_table, page.memory_table, page.largest_batch_table,
               page.profile_table, page.profile_setup_table):
        out = fn()
        assert "<script" not in out
        rows = _rows(out)[1:]
        assert rows and all('data-source="' in r for r in rows), fn.__name__


def test_the_page_keeps_its_words_in_markdown() -> None:
    """docs/resnet.md holds the sentences; the page module returns tables and charts only."""
    import ast

    tree = ast.parse((ROOT / "gpucnn" / "pages" / "resnet.py").read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    long_strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    and id(n) not in docstrings and len(n.value.split()) >= 8]
    assert not long_strings
    assert not re.search(r"\.data\[", (ROOT / "gpucnn" / "pages" / "resnet.py").read_text())


def test_unknown_code_or_a_new_skip_reason_is_explained_on_the_page() -> None:
    text = (ROOT / "docs" / "resnet.md").read_text()
    for code in (exp.SKIP_TF32_CUDA_ONLY, exp.SKIP_NO_BF16_UNIT, exp.SKIP_COMPILE_BUDGET):
        assert f"`{code}`" in text


def test_source_colour_is_one_per_record_whatever_the_chart(monkeypatch) -> None:
    from gpucnn import render

    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(RESULTS))
    sources_mod.reset()
    names = sorted(r.name for r in records(RESULTS))
    colours = [render.source_colour(f"archived:{n}") for n in names]
    assert render.source_colour("live") == render.COLORS[0]
    assert render.COLORS[0] not in colours[: len(render.COLORS) - 1]
    assert render.source_colour(f"archived:{names[-1]}") == colours[-1]
    sources_mod.reset()


def test_record_strings_are_escaped_in_every_table(monkeypatch, tmp_path: Path) -> None:
    """A pull request's record names its model and precision: whatever they hold, no markup reaches the page."""
    import json

    from tests.fakes import cpu_only

    record = _resnet_record()
    doc = json.loads((RESULTS / record.name).read_text())
    payload = "<img src=x onerror=alert(1)>"
    for r in doc["results"]:
        if r["experiment"] in ("resnet_variants", "resnet_memory"):
            r["data"]["model"] = payload
        if r["experiment"] == "resnet_profile":
            r["data"]["precision"] = payload
    archive = tmp_path / "results"
    archive.mkdir()
    (archive / record.name).write_text(json.dumps(doc))
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(archive))
    sources_mod.reset()
    hostile = next(r for r in records(archive) if r.name == record.name)

    def host_result(fn, device: str = "cpu", **params):
        return find(hostile, fn, device="cpu", **params) or pytest.skip("no host CPU result")

    monkeypatch.setattr(sources_mod.hardware, "detect", lambda *a, **k: cpu_only())
    monkeypatch.setattr(sources_mod, "run", host_result)
    monkeypatch.setattr(page, "run", host_result)
    try:
        for fn in (page.variants_table, page.memory_table, page.profile_setup_table):
            out = fn()
            assert "<img" not in out, fn.__name__
            assert "&lt;img" in out or "&#60;img" in out, fn.__name__
    finally:
        sources_mod.reset()
