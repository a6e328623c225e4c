"""The ANN and CNN experiments and the pages "What is a GPU", "Artificial neural networks" and "CNNs"."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gpucnn.bench import Measurement, Sweep
from gpucnn.experiments import conv, nn
from gpucnn.pages.common import accelerator
from gpucnn.results import run

NO_GPU = accelerator() is None


# --- the hand-written backward pass, im2col and the FLOP counts -------------------------------

def test_manual_backward_equals_autograd() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)
    y = (torch.rand(7, 3, generator=gen) > 0.5).double()
    manual, auto = nn.manual_layer_grads(x, w, b, y), nn.autograd_layer_grads(x, w, b, y)
    assert set(manual) == set(auto) == {"w", "b", "x"}
    for k in manual:
        assert manual[k].shape == auto[k].shape
        torch.testing.assert_close(manual[k], auto[k])


def test_manual_backward_detects_a_wrong_target() -> None:
    # The check is not vacuous: gradients for other targets differ.
    gen = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(4, 3, generator=gen), torch.randn(2, 3, generator=gen), torch.zeros(2)
    y = torch.ones(4, 2)
    assert not torch.allclose(nn.manual_layer_grads(x, w, b, y)["w"], nn.autograd_layer_grads(x, w, b, 1 - y)["w"])


@pytest.mark.parametrize(("stride", "padding", "size"), [(1, 0, 9), (1, 1, 8), (2, 1, 11), (3, 2, 10)])
def test_im2col_equals_conv2d(stride: int, padding: int, size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size + 1, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)
    ours = conv.im2col_conv2d(x, w, b, stride=stride, padding=padding)
    torch.testing.assert_close(ours, F.conv2d(x, w, b, stride=stride, padding=padding))


@pytest.mark.parametrize(("size", "kernel", "stride", "padding"), [(8, 3, 1, 1), (6, 3, 2, 0), (32, 5, 2, 2), (7, 2, 2, 0)])
def test_output_size_formula_matches_torch(size: int, kernel: int, stride: int, padding: int) -> None:
    x = torch.zeros(1, 1, size, size)
    out = F.conv2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding)
    assert out.shape[-1] == conv.conv_output_size(size, kernel, stride, padding)
    if padding == 0:
        assert F.max_pool2d(x, kernel, stride).shape[-1] == conv.conv_output_size(size, kernel, stride)


def test_mlp_flops_count_each_matmul() -> None:
    f = nn.mlp_flops(batch=2, widths=(3, 4, 5))
    assert f["forward"] == 2 * 2 * (3 * 4 + 4 * 5)
    # weight gradients of both layers + the input gradient of the second layer only
    assert f["backward"] == 2 * 2 * (3 * 4 + 4 * 5) + 2 * 2 * 4 * 5
    assert 2 * f["forward"] < f["train"] < 3 * f["forward"]


def test_conv_flops_are_three_times_the_forward() -> None:
    f = conv.conv_flops(batch=2, cin=3, cout=4, size=5, kernel=3)
    assert f["forward"] == 2 * 2 * 4 * 5 * 5 * 3 * 9
    assert f["train"] == 3 * f["forward"]


def test_mlp_shape_and_layers() -> None:
    model = nn.make_mlp((6, 5, 4, 3))
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert model(torch.zeros(2, 6)).shape == (2, 3)


def test_digit_filter_outputs_keep_the_image_size() -> None:
    d = conv.digit_filter_outputs(0)
    assert d["image"].shape == (8, 8) and d["image"].min() >= 0 and d["image"].max() <= 1
    assert list(d["outputs"]) == list(conv.FILTERS)
    assert all(o.shape == (8, 8) for o in d["outputs"].values())
    assert isinstance(d["label"], int)


def test_small_cnn_output_shape() -> None:
    assert conv.SmallCNN()(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


# --- profile rows from a fake profiler --------------------------------------------------------

def _event(key: str, cpu_us: float, count: int, device_us: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(key=key, self_cpu_time_total=cpu_us, count=count, self_device_time_total=device_us)


def test_profile_rows_rank_by_self_time_and_divide_by_steps() -> None:
    prof = SimpleNamespace(key_averages=lambda: [_event("a", 100, 4), _event("b", 300, 2), _event("idle", 0, 9)])
    rows = nn.profile_rows(prof, steps=2, top=5, device="cpu")
    assert [r["op"] for r in rows] == ["b", "a"]
    assert rows[0]["calls"] == 1 and rows[0]["self_cpu_s"] == pytest.approx(150e-6)
    assert rows[0]["self_cpu_pct"] == pytest.approx(75) and rows[0]["self_device_s"] is None


def test_profile_rows_on_an_accelerator_rank_by_device_time() -> None:
    prof = SimpleNamespace(key_averages=lambda: [_event("launch", 500, 1, 1), _event("kernel", 1, 1, 99)])
    rows = nn.profile_rows(prof, steps=1, top=5, device="cuda")
    assert rows[0]["op"] == "kernel" and rows[0]["self_device_pct"] == pytest.approx(99)


# --- experiments, quick profile ---------------------------------------------------------------

def _check_sweep(s: Sweep, shape_len: int) -> None:
    assert isinstance(s, Sweep) and s.points
    for m in s.points:
        assert isinstance(m, Measurement) and m.runs >= 5 and m.flops > 0 and len(m.shape) == shape_len


def test_mlp_experiments_return_their_keys() -> None:
    s = run(nn.mlp_batch_sweep, device="cpu").data
    _check_sweep(s["sweep"], 1 + len(nn.MLP_WIDTHS))
    assert s["sweep"].points[0].shape[0] == 1
    split = run(nn.mlp_time_split, device="cpu").data
    assert {"forward", "train", "batch", "steps", "profile"} <= set(split)
    assert split["forward"].flops < split["train"].flops
    assert split["profile"] and {"op", "calls", "self_cpu_s", "self_cpu_pct"} <= set(split["profile"][0])
    assert any("mm" in r["op"] for r in split["profile"])


def test_conv_experiments_return_their_keys() -> None:
    b = run(conv.conv_batch_sweep, device="cpu").data
    _check_sweep(b["sweep"], 4)
    assert all(m.shape[1] == b["channels"] for m in b["sweep"].points)
    c = run(conv.conv_channel_sweep, device="cpu").data
    _check_sweep(c["sweep"], 4)
    assert all(m.shape[0] == c["batch"] for m in c["sweep"].points)
    p = run(conv.cnn_profile, device="cpu").data
    assert [r["layer"] for r in p["layers"]] == list(conv.SmallCNN().layers)
    assert p["ops"] and not any(r["op"].startswith("layer ") for r in p["ops"])
    assert any("conv" in r["op"] for r in p["ops"])


# --- page builders ----------------------------------------------------------------------------

