"""The ANN page's regime diagnostic ("double the batch; does the time grow?"), on synthetic measurements."""

from __future__ import annotations

from gpucnn.bench import Measurement
from gpucnn.experiments.nn import MLP_WIDTHS
from gpucnn.pages.ann import FLAT, PROPORTIONAL, device_busy_s, doubling_ratios, flat_until, regime, weight_bytes


def step(batch: int, seconds: float) -> Measurement:
    return Measurement(name=f"b{batch}", device="cuda", dtype="float32", shape=(batch, *MLP_WIDTHS), threads=1,
                       times_s=(seconds,) * 5, number_per_run=1, flops=1.0)


def test_weight_bytes_counts_weights_and_biases() -> None:
    assert weight_bytes((3, 4, 2)) == 4 * (3 * 4 + 4 + 4 * 2 + 2)


def test_doubling_ratios_pair_each_batch_with_its_double() -> None:
    pts = [step(1, 1.0), step(2, 1.0), step(4, 2.0), step(16, 8.0)]
    assert doubling_ratios(pts) == [(1, 1.0), (2, 2.0)]  # 4 -> 8 was not measured


def test_flat_until_finds_where_the_time_starts_to_grow() -> None:
    assert flat_until([step(1, 1.0), step(2, 1.1), step(4, 1.4), step(8, 2.0)]) == 4
    assert flat_until([step(1, 1.0), step(2, 1.0)]) == 2
    assert flat_until([]) is None
    # one slow point, then back under 1.5x to the end: flat over the whole sweep, never "grows beyond"
    assert flat_until([step(1, 1.0), step(8, 1.2), step(16, 1.6), step(1024, 1.4)]) == 1024


def test_regime_is_chosen_from_the_ratio_and_the_share_of_peak() -> None:
    assert regime(1.0, None) == "overhead-bound"
    assert regime(FLAT, 90.0) == "between regimes"
    assert regime(PROPORTIONAL, 80.0) == "compute-bound"
    assert regime(2.0, 5.0).startswith("bound by work below the FLOP peak")
    assert regime(2.0, None).startswith("bound by work below the FLOP peak")
    # more than twice the time for twice the work: throughput fell, no regime is claimed
    assert regime(2.6, 90.0).startswith("slower than the work grew")


def op(name: str, cpu_s: float, dev_s: float | None, dev_pct: float | None) -> dict:
    return {"op": name, "calls": 1.0, "self_cpu_s": cpu_s, "self_cpu_pct": 10.0, "self_device_s": dev_s,
            "self_device_pct": dev_pct}


def test_device_busy_time_is_an_ops_kernel_time_over_its_share() -> None:
    rows = [op("aten::mm", 1e-4, 60e-6, 40.0), op("aten::addmm", 1e-4, 30e-6, 20.0)]
    assert abs(device_busy_s(rows) - 150e-6) < 1e-12
    # a CPU profile, and an old record whose kernel rows (no CPU time) made its shares wrong: no busy time
    assert device_busy_s([op("aten::mm", 1e-4, None, None)]) is None
    assert device_busy_s([op("aten::mm", 1e-4, 60e-6, 40.0), op("ampere_sgemm", 0.0, 60e-6, 40.0)]) is None
    # the profiler's own buffer requests are not operators
    assert device_busy_s([op("Activity Buffer Request", 6e-4, 4e-6, 100.0), *rows]) == device_busy_s(rows)
