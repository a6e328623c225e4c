"""The L2 tier with the launch cost removed, and host-to-device copies overlapping compute:
sizes, the harness's cache guard, and both experiments on a fake accelerator (``cpu:0``)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

import gpucnn.bench as bench
import gpucnn.experiments.memory as memory_exp
from gpucnn.hardware import AcceleratorInfo, detect, gpu_peaks
from gpucnn.results import run

KIB, MIB = 1024, 1024**2
FAKE = "cpu:0"  # not "cpu": the accelerator branches run, and torch computes on the CPU


def test_l2_sizes_run_from_well_inside_the_l2_to_far_beyond_it() -> None:
    for l2 in (50 * MIB, 60 * MIB, 4 * MIB, None):
        sizes = memory_exp.l2_copy_sizes(l2)
        known = l2 or 64 * MIB
        assert 2 * sizes[0] <= known / 16  # source + destination well inside
        assert sizes[-1] >= 4 * known and sizes[-1] <= 8 * known  # far beyond: the HBM plateau
        assert all(b == 2 * a for a, b in itertools.pairwise(sizes))


def test_each_call_carries_enough_traffic_to_hide_a_launch() -> None:
    for size in memory_exp.l2_copy_sizes(50 * MIB):
        copies = memory_exp.copies_per_call(size)
        assert 1 <= copies <= memory_exp.MAX_COPIES_PER_CALL
        assert copies == memory_exp.MAX_COPIES_PER_CALL or 2 * size * copies >= memory_exp.LAUNCH_FREE_BYTES_PER_CALL


def test_cuda_graphs_only_where_torch_cuda_runs_the_device() -> None:
    assert not memory_exp.uses_cuda_graphs("cpu")
    assert not memory_exp.uses_cuda_graphs("mps")
    assert memory_exp.uses_cuda_graphs("cuda") == torch.cuda.is_available()


def _h100_with_tiny_hbm() -> object:
    """An H100 report whose HBM peak is absurdly low, with a 1 MiB L2: any copy beyond the L2 is 'impossible'."""
    real = detect()
    peaks = dataclasses.replace(gpu_peaks("NVIDIA H100 80GB HBM3"), bandwidth=1e6)
    acc = AcceleratorInfo(device_type=FAKE, backend="CUDA", name="NVIDIA H100 80GB HBM3", count=1,
                          memory_bytes=80 * 1024**3, capability="9.0", multiprocessors=132, l2_bytes=MIB,
                          driver=None, runtime=None, cudnn=None, tf32_matmul=False, mig=None, peaks=peaks)
    return dataclasses.replace(real, accelerator=acc)


def test_a_copy_inside_the_l2_may_beat_the_hbm_peak_but_one_beyond_it_may_not(monkeypatch) -> None:
    # The harness learns from working_set_bytes (one copy's source + destination) that the copy fits
    # in the L2, though the call moves many times that: the guard must not fire there.
    report = _h100_with_tiny_hbm()
    monkeypatch.setattr(bench, "detect", lambda: report)
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: None)
    monkeypatch.setattr(memory_exp, "LAUNCH_FREE_BYTES_PER_CALL", 4 * MIB)
    m = memory_exp.measure_launch_free_copy(64 * KIB, FAKE)  # 128 KiB working set in a 1 MiB L2
    assert m.bytes_moved == 2.0 * 64 * KIB * memory_exp.copies_per_call(64 * KIB) > 4 * MIB - 1
    assert m.gbps > report.accelerator.peaks.bandwidth / 1e9  # faster than the (tiny) HBM peak, and accepted
    with pytest.raises(bench.ImpossibleResult, match="memory peak"):
        memory_exp.measure_launch_free_copy(4 * MIB, FAKE)  # 8 MiB working set: beyond 4x the L2


def test_l2_and_overlap_need_an_accelerator() -> None:
    for fn in (memory_exp.l2_copy_bandwidth, memory_exp.copy_compute_overlap):
        with pytest.raises(ValueError, match="needs an accelerator"):
            fn("cpu")


def test_both_experiments_run_on_a_fake_accelerator(monkeypatch) -> None:
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    monkeypatch.setattr(memory_exp, "l2_copy_sizes", lambda l2: [64 * KIB, 128 * KIB])
    monkeypatch.setattr(memory_exp, "LAUNCH_FREE_BYTES_PER_CALL", 2 * MIB)
    r = run(memory_exp.l2_copy_bandwidth, device=FAKE)
    assert [m.shape[0] for m in r.data["sweep"].points] == [64 * KIB, 128 * KIB]
    assert r.data["graphs"] is False and list(r.data["copies_per_call"]) == [16, 8]
    o = run(memory_exp.copy_compute_overlap, device=FAKE).data
    assert o["side_stream"] is False and (o["copy_bytes"], o["matmul_n"]) == memory_exp.overlap_sizes()
    for key in ("copy", "compute", "serial", "overlapped"):
        assert o[key].median > 0 and o[key].peak_bytes_per_s is None


# --- on a real CUDA GPU (`pytest -m gpu`): the graph and side-stream paths run, and pass the harness's checks ---

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_l2_sweep_replays_cuda_graphs_from_inside_the_l2_to_beyond_it() -> None:
    r = memory_exp.l2_copy_bandwidth("cuda")  # raises ImpossibleResult if a point beyond the L2 beats HBM
    l2 = r["cache_bytes"]
    sizes = [m.shape[0] for m in r["sweep"].points]
    assert r["graphs"] is True and not r["sweep"].stopped
    assert 2 * sizes[0] <= l2 and sizes[-1] >= 4 * l2
    assert all(m.bytes_moved == 2.0 * m.shape[0] * c for m, c in zip(r["sweep"].points, r["copies_per_call"],
                                                                        strict=True))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_overlap_experiment_uses_a_side_stream() -> None:
    r = memory_exp.copy_compute_overlap("cuda")
    assert r["side_stream"] is True
    assert all(r[k].median > 0 for k in ("copy", "compute", "serial", "overlapped"))
