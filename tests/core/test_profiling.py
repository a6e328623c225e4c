"""Profiler summaries from synthetic key_averages() rows shaped like torch's, and from archived rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gpucnn.profiling import (
    kernel_rows,
    layer_rows,
    op_rows,
    stored_kernel_rows,
    stored_layer_rows,
    stored_op_rows,
)
from gpucnn.render import kernel_cells, layer_cells, profile_cells


def event(key: str, *, device_type: str = "DeviceType.CPU", label: bool = False, count: int = 1,
          self_cpu: float = 0.0, cpu_total: float = 0.0, self_dev: float = 0.0, dev_total: float = 0.0
          ) -> SimpleNamespace:
    """One row of ``prof.key_averages()``, times in µs, with the attributes torch 2.x gives it."""
    return SimpleNamespace(key=key, device_type=device_type, is_user_annotation=label, count=count,
                           self_cpu_time_total=self_cpu, cpu_time_total=cpu_total,
                           self_device_time_total=self_dev, device_time_total=dev_total)


CUDA = "DeviceType.CUDA"


def gpu_profile() -> list[SimpleNamespace]:
    """Two ops, each with its kernel, under one label, as a CUDA profile lists them."""
    return [
        event("layer conv1", label=True, self_cpu=50, cpu_total=400, dev_total=40),  # the label's host span
        event("layer conv1", device_type=CUDA, label=True, self_dev=55, dev_total=55),  # its device span
        event("aten::cudnn_convolution", count=2, self_cpu=200, cpu_total=200, self_dev=30, dev_total=30),
        event("aten::relu", count=2, self_cpu=150, cpu_total=150, self_dev=10, dev_total=10),
        event("sm80_xmma_fprop_implicit_gemm", device_type=CUDA, count=2, self_dev=30, dev_total=30),
        event("void at::native::vectorized_elementwise_kernel", device_type=CUDA, count=2, self_dev=10, dev_total=10),
    ]


def test_gpu_ops_are_operators_only_and_shares_are_of_kernel_time() -> None:
    rows = op_rows(gpu_profile(), steps=2, top=10, device="cuda")
    assert [r["op"] for r in rows] == ["aten::cudnn_convolution", "aten::relu"]  # no kernel, no label
    conv = rows[0]
    assert conv["calls"] == 1 and conv["self_device_s"] == pytest.approx(15e-6)
    # 30 of the 40 µs of kernel time: neither the kernels nor the label's device span are counted again
    assert conv["self_device_pct"] == pytest.approx(75)
    assert sum(r["self_device_pct"] for r in rows) == pytest.approx(100)
    assert conv["self_cpu_pct"] == pytest.approx(100 * 200 / 350)  # shares of the operators' CPU time


def test_labels_without_the_annotation_flag_are_known_by_their_prefix() -> None:
    events = [SimpleNamespace(**{**vars(e), "is_user_annotation": False}) for e in gpu_profile()]
    rows = op_rows(events, steps=1, top=10, device="cuda", skip_prefix="layer ")
    assert [r["op"] for r in rows] == ["aten::cudnn_convolution", "aten::relu"]
    assert rows[0]["self_device_pct"] == pytest.approx(75)


def test_cpu_ops_have_no_device_columns() -> None:
    events = [event("aten::mm", self_cpu=300, cpu_total=300), event("aten::add", self_cpu=100, cpu_total=100),
              event("layer fc", label=True, self_cpu=10, cpu_total=410)]
    rows = op_rows(events, steps=1, top=10, device="cpu")
    assert [r["op"] for r in rows] == ["aten::mm", "aten::add"]
    assert rows[0]["self_device_s"] is None and rows[0]["self_cpu_pct"] == pytest.approx(75)


def test_mps_profile_without_device_times_has_no_device_columns() -> None:
    events = [event("aten::mm", self_cpu=300, cpu_total=300), event("aten::add", self_cpu=100, cpu_total=100)]
    rows = op_rows(events, steps=1, top=10, device="mps")
    assert all(r["self_device_s"] is None and r["self_device_pct"] is None for r in rows)
    headers, _cells = profile_cells(rows, "mps")
    assert not any("MPS" in h for h in headers)


def test_each_layer_is_one_row_with_host_and_kernel_time() -> None:
    layers = layer_rows(gpu_profile(), steps=2, prefix="layer ", order=["conv1"], device="cuda")
    assert layers == [{"layer": "conv1", "cpu_total_s": pytest.approx(200e-6), "device_total_s": pytest.approx(20e-6)}]


def test_layers_on_the_cpu_have_no_device_time_and_keep_the_model_order() -> None:
    events = [event("layer fc", label=True, cpu_total=10), event("layer conv1", label=True, cpu_total=30)]
    layers = layer_rows(events, steps=1, prefix="layer ", order=["conv1", "fc"], device="cpu")
    assert [x["layer"] for x in layers] == ["conv1", "fc"] and all(x["device_total_s"] is None for x in layers)


# Rows as the H100 record of 2026-11 holds them (cnn_profile on cuda): operators and their kernels
# side by side, shares of a total that counted each kernel twice, and each layer twice.
ARCHIVED_OPS = [
    {"op": "aten::max_pool2d_with_indices_backward", "calls": 2.0, "self_cpu_s": 3.755e-05, "self_cpu_pct": 1.8,
     "self_device_s": 3.39e-05, "self_device_pct": 4.04},
    {"op": "void at::native::(anonymous namespace)::max_pool_backward_nchw<float, float, in…", "calls": 2.0,
     "self_cpu_s": 0.0, "self_cpu_pct": 0.0, "self_device_s": 3.39e-05, "self_device_pct": 4.04},
    {"op": "aten::addmm", "calls": 1.0, "self_cpu_s": 6.52e-05, "self_cpu_pct": 3.1, "self_device_s": 2.68e-05,
     "self_device_pct": 3.19},
]
ARCHIVED_LAYERS = [{"layer": "conv1", "cpu_total_s": 2.78e-04}, {"layer": "conv1", "cpu_total_s": 0.0},
                   {"layer": "fc", "cpu_total_s": 1.15e-04}, {"layer": "fc", "cpu_total_s": 0.0}]


def test_archived_gpu_ops_lose_their_kernel_rows_and_wrong_shares() -> None:
    rows = stored_op_rows(ARCHIVED_OPS)
    assert [r["op"] for r in rows] == ["aten::max_pool2d_with_indices_backward", "aten::addmm"]
    assert all(r["self_device_pct"] is None for r in rows)
    headers, cells = profile_cells(ARCHIVED_OPS, "cuda")
    assert "Self CUDA time per step" in headers and "Share of CUDA time" not in headers
    assert len(cells) == 2 and all(len(c) == len(headers) for c in cells)


def test_new_rows_keep_their_device_shares() -> None:
    rows = op_rows(gpu_profile(), steps=1, top=10, device="cuda")
    assert stored_op_rows(rows) == rows
    headers, _cells = profile_cells(rows, "cuda")
    assert "Share of CUDA time" in headers


def test_archived_layers_are_listed_once() -> None:
    rows = stored_layer_rows(ARCHIVED_LAYERS)
    assert [r["layer"] for r in rows] == ["conv1", "fc"] and rows[0]["cpu_total_s"] == pytest.approx(2.78e-04)
    headers, cells = layer_cells(ARCHIVED_LAYERS, "cuda")
    assert len(cells) == 2 and not any("kernel" in h for h in headers)


def test_layer_table_shows_kernel_time_where_measured() -> None:
    layers = layer_rows(gpu_profile(), steps=1, prefix="layer ", order=["conv1"], device="cuda")
    headers, cells = layer_cells(layers, "cuda")
    assert "CUDA kernel time per step" in headers and cells[0][-1] == "100 %"


def test_kernels_are_a_table_of_their_own_with_shares_of_kernel_time() -> None:
    rows = kernel_rows(gpu_profile(), steps=2, top=10, skip_prefix="layer ")
    assert [r["op"] for r in rows] == ["sm80_xmma_fprop_implicit_gemm", "void at::native::vectorized_elementwise_kernel"]
    assert rows[0]["self_device_s"] == pytest.approx(15e-6) and rows[0]["self_device_pct"] == pytest.approx(75)
    assert kernel_rows([event("aten::mm", self_cpu=10, cpu_total=10)], steps=1, top=10) == []  # a CPU profile
    assert stored_kernel_rows([], rows) == rows
    headers, _cells = kernel_cells(rows, "cuda")
    assert headers[-1] == "Share of kernel time"


def test_archived_kernel_rows_come_from_the_mixed_ops_list() -> None:
    rows = stored_kernel_rows(ARCHIVED_OPS)
    assert [r["op"] for r in rows] == [ARCHIVED_OPS[1]["op"]]
    assert rows[0]["self_device_pct"] is None
    headers, cells = kernel_cells(rows, "cuda")
    assert "Share of kernel time" not in headers and len(cells[0]) == len(headers)
