"""CNN page: max pooling is called memory-bound only where the profile shows it (review 3, finding M3).

The first max pool reads the same tensor as the ReLU before it and writes about as many bytes, so where it takes
many times the ReLU's time, moving data is not what sets its time. The wording is chosen from the profile.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _profile(device: str, relu_s: float | None, pool_s: float | None, model: str) -> SimpleNamespace:
    timed = "cpu_total_s" if device == "cpu" else "device_total_s"
    layers = [{"layer": "relu1", "cpu_total_s": 1e-3, "device_total_s": None},
              {"layer": "pool1", "cpu_total_s": 1e-3, "device_total_s": None}]
    layers[0][timed], layers[1][timed] = relu_s, pool_s
    return SimpleNamespace(device=device, model=model, full_name=f"full name of {model}", label=f"{model} (test)",
                           result=SimpleNamespace(data={"layers": layers}),
                           cell=lambda text=None, m=model: text or m)


@pytest.mark.parametrize(("relu_s", "pool_s", "memory_bound"), [(1e-3, 1.2e-3, True), (1e-3, 2.9e-3, True),
                                                                 (1e-3, 3.1e-3, False), (1e-3, 9e-3, False)])
def test_the_pool_is_called_memory_bound_only_within_the_threshold(monkeypatch, relu_s, pool_s, memory_bound):
    from gpucnn.pages import cnn

    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cpu", relu_s, pool_s, "CPU")])
    text = cnn.pooling_findings()
    assert f"{pool_s / relu_s:.3g}x" in text.replace(" x", "x")
    assert ("speed of moving data" in text) == memory_bound
    assert ("not the memory, sets its time" in text) == (not memory_bound)
    assert "full name of CPU" in text  # the caption names the hardware


def test_a_gpu_record_without_kernel_times_per_layer_is_left_out(monkeypatch) -> None:
    from gpucnn.pages import cnn

    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cuda", None, None, "H100")])
    assert cnn.pooling_findings() == ""
    # On a GPU the host time (the launch) must not stand in for the kernel time.
    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cuda", 2e-6, 4e-6, "H200")])
    text = cnn.pooling_findings()
    assert "2x" in text and "H200 (test)" in text
