"""CNN page: max pooling is called memory-bound only where the profile shows it (reviews 3 and H).

The first max pool reads the same tensor as the ReLU before it and moves about as many bytes, so its rate of
moving bytes, against the ReLU's, says whether moving data or its own work sets its time. The wording is chosen
from that share.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

BATCH = 64


def _profile(device: str, relu_s: float | None, pool_s: float | None, model: str) -> SimpleNamespace:
    timed = "cpu_total_s" if device == "cpu" else "device_total_s"
    layers = [{"layer": "relu1", "cpu_total_s": 1e-3, "device_total_s": None},
              {"layer": "pool1", "cpu_total_s": 1e-3, "device_total_s": None}]
    layers[0][timed], layers[1][timed] = relu_s, pool_s
    return SimpleNamespace(device=device, model=model, full_name=f"full name of {model}", label=f"{model} (test)",
                           result=SimpleNamespace(data={"layers": layers, "batch": BATCH}),
                           is_cpu=device == "cpu", hardware=SimpleNamespace(accelerator=None),
                           cell=lambda text=None, m=model: text or f"{m} (test)")


def test_the_bytes_come_from_the_profiled_models_shapes() -> None:
    from gpucnn.pages.cnn import relu_pool_bytes

    relu, pool = relu_pool_bytes(BATCH)
    activation = BATCH * 32 * 32 * 32  # conv1: 32 channels, 32x32, padding 1
    assert relu == 2 * 4 * activation
    assert pool == 4 * activation + 12 * activation / 4  # fp32 values and int64 indices of a 2x2 pool
    assert relu_pool_bytes(2 * BATCH) == (2 * relu, 2 * pool)


@pytest.mark.parametrize(("ratio", "verdict"), [(1.0, "alike"), (1.1, "alike"), (2.0, "between"), (2.5, "between"),
                                                (4.0, "slow"), (9.0, "slow")])
def test_the_verdict_follows_the_pools_rate_against_the_relus(monkeypatch, ratio: float, verdict: str) -> None:
    from gpucnn.pages import cnn

    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cpu", 1e-3, ratio * 1e-3, "CPU")])
    text = cnn.pooling_findings()
    relu, pool = cnn.relu_pool_bytes(BATCH)
    share = (pool / ratio) / relu
    assert f"{100 * share:.2g} %" in text or f"{100 * share:.0f} %" in text
    assert ("both are set by moving data" in text) == (verdict == "alike")
    assert ("already shows beside the memory traffic" in text) == (verdict == "between")
    assert ("not the memory, sets its time" in text) == (verdict == "slow")
    assert "full name of CPU" in text  # the caption names the hardware
    assert "CPU (test)" in text  # the row and the sentence carry the source's label


def test_a_gpu_record_without_kernel_times_per_layer_is_named_not_dropped(monkeypatch) -> None:
    from gpucnn.pages import cnn

    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cuda", None, None, "H100")])
    assert cnn.pooling_findings() == ""
    monkeypatch.setattr(cnn, "sources", lambda _exp: [_profile("cuda", 2e-6, 4e-6, "H200"),
                                                      _profile("cuda", None, None, "H100")])
    text = cnn.pooling_findings()
    # On a GPU the host time (the launch) must not stand in for the kernel time: the H100 gets no row, and a word.
    assert "H200 (test)" in text and "No row for H100 (test): its record has no kernel time per layer" in text
