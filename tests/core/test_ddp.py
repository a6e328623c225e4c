"""Data parallelism: the launcher's faults and clean-up, the workers' parity, the fit, busbw and the scaling model.

No timing is asserted: the measured figures are only checked for shape and for what must hold whatever the
machine (parity, counts).
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from gpucnn import scaling
from gpucnn.distributed import WorkerError, launch
from tests.conftest import ROOT

ENV = {"PYTHONPATH": str(ROOT)}  # the workers import tests.ddp_workers


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The launcher's temporary folders go here, so a test can see that none is left."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


# --- the launcher ---------------------------------------------------------------------------------------------

def test_two_ranks_meet_over_loopback_and_leave_nothing(private_tmp: Path) -> None:
    pids: list[int] = []
    out = launch("tests.ddp_workers:echo", {"tag": "a"}, env=ENV, timeout_s=120, on_start=pids.extend)
    assert [r["rank"] for r in out] == [0, 1]
    assert all(r["sum"] == 3.0 and r["tag"] == "a" and r["ifname"] == "lo" for r in out)
    assert all(_gone(p) for p in pids)
    assert list(private_tmp.iterdir()) == []


def test_two_launches_at_once_do_not_collide(private_tmp: Path) -> None:
    results: dict[str, list] = {}
    errors: list[BaseException] = []

    def one(tag: str) -> None:
        try:
            results[tag] = launch("tests.ddp_workers:echo", {"tag": tag}, env=ENV, timeout_s=120)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(tag,)) for tag in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for tag in ("first", "second"):
        assert [r["tag"] for r in results[tag]] == [tag, tag]
        assert [r["sum"] for r in results[tag]] == [3.0, 3.0]
    assert list(private_tmp.iterdir()) == []


def test_a_raising_worker_fails_with_its_error_and_leaves_nothing(private_tmp: Path) -> None:
    pids: list[int] = []
    with pytest.raises(WorkerError) as err:
        launch("tests.ddp_workers:raise_on_rank_1", env=ENV, timeout_s=120, what="the test page's workers",
               on_start=pids.extend)
    text = str(err.value)
    assert "the test page's workers" in text and "rank 1 of 2 failed (exit code 1)" in text
    assert "ValueError: boom on rank 1, on purpose" in text
    assert len(pids) == 2 and all(_gone(p) for p in pids)
    assert list(private_tmp.iterdir()) == []


def test_a_hanging_worker_times_out_and_is_killed(private_tmp: Path) -> None:
    pids: list[int] = []
    with pytest.raises(WorkerError, match=r"timed out after 15 s with rank\(s\) 1 still running") as err:
        launch("tests.ddp_workers:hang_on_rank_1", env=ENV, timeout_s=15, what="hang test", on_start=pids.extend)
    assert "hang test" in str(err.value)
    assert all(_gone(p) for p in pids)
    assert list(private_tmp.iterdir()) == []


def test_a_killed_worker_fails_the_launch_and_the_other_is_killed(private_tmp: Path) -> None:
    pids: list[int] = []

    def kill_rank_1_soon(started: list[int]) -> None:
        pids.extend(started)
        threading.Timer(3.0, os.kill, (started[1], signal.SIGKILL)).start()

    with pytest.raises(WorkerError, match="rank 1 of 2 failed \\(killed by signal SIGKILL\\)"):
        launch("tests.ddp_workers:wait", env=ENV, timeout_s=120, on_start=kill_rank_1_soon)
    assert all(_gone(p) for p in pids)
    assert list(private_tmp.iterdir()) == []


def test_a_rank_whose_collective_broke_blames_the_killed_peer(private_tmp: Path) -> None:
    """Rank 0 fails too (its barrier loses its peer), but the launch names rank 1, the cause."""
    pids: list[int] = []

    def kill_rank_1_soon(started: list[int]) -> None:
        pids.extend(started)
        threading.Timer(4.0, os.kill, (started[1], signal.SIGKILL)).start()

    with pytest.raises(WorkerError, match="rank 1 of 2 failed \\(killed by signal SIGKILL\\)"):
        launch("tests.ddp_workers:rank_0_waits_for_rank_1", env=ENV, timeout_s=120, on_start=kill_rank_1_soon)
    assert all(_gone(p) for p in pids)
    assert list(private_tmp.iterdir()) == []


def test_a_bad_target_names_itself() -> None:
    with pytest.raises(WorkerError, match="no_such_function"):
        launch("tests.ddp_workers:no_such_function", env=ENV, timeout_s=120)


# --- the measurements, on a tiny configuration: parity and counts hold whatever the machine ---------------------

TINY = {"sizes": [4, 4096], "mlp_layers": 3, "mlp_width": 64, "mlp_batch": 8, "cnn_batch": 8, "runs": 2,
        "run_s": 0.001, "caps": [1, 25], "accumulation": 2, "lr": 0.1}


def test_the_workers_measure_with_parity_and_counted_allreduces(private_tmp: Path) -> None:
    from gpucnn.results import decode
    from gpucnn.specs import GlooDdpData
    from gpucnn.typed import read

    rank0, rank1 = launch("gpucnn.experiments.ddp:rank_main", TINY, timeout_s=150)
    assert rank1 == {"rank": 1}
    data = read(GlooDdpData, rank0, "data")  # the shape the spec declares
    decoded = decode(rank0)
    assert decoded["allreduce"].points[0].shape == (4,)
    assert data.world_size == 2 and data.threads_per_rank == 1
    assert [p.shape[0] for p in data.allreduce.points] == [4, 4096]
    assert all(p.runs == 2 and p.threads == 1 for p in data.allreduce.points)
    # parity: DDP's step equals one process's step on the whole batch, and the replicas are identical
    assert data.cnn_within_tolerance and data.mlp_within_tolerance
    assert data.cnn_replica_diff == 0.0 and data.mlp_replica_diff == 0.0
    assert data.cnn_max_weight_diff < 1e-5 and data.mlp_max_weight_diff < 1e-5
    assert data.mlp_parameters == 3 * (64 * 64 + 64)
    # no_sync: one all-reduce of each bucket per optimizer step instead of one per micro-batch
    assert data.allreduces_sync == data.accumulation * data.allreduces_no_sync >= 2
    assert [b.bucket_cap_mb for b in data.buckets] == [1, 25]
    assert all(b.buckets >= 1 for b in data.buckets)
    assert list(private_tmp.iterdir()) == []


def test_parity_compares_elementwise_within_the_stated_tolerance() -> None:
    import torch

    from gpucnn.experiments.ddp import ATOL, RTOL, _parity

    model = torch.nn.Linear(3, 2)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert _parity(model, flat) == (0.0, True)
    off = flat.clone()
    off[0] += 10 * (ATOL + RTOL * abs(float(off[0])))
    diff, ok = _parity(model, off)
    assert not ok and diff > ATOL


def test_the_plan_is_smaller_in_the_quick_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.experiments.ddp import plan

    quick = plan()
    monkeypatch.setenv("GPUCNN_PROFILE", "full")
    full = plan()
    assert full["sizes"][0] == 4 and full["sizes"][-1] == 64 * 2**20
    assert quick["sizes"][-1] < full["sizes"][-1] and quick["mlp_layers"] < full["mlp_layers"]
    # about 100 MB of fp32 gradients in the full profile
    params = full["mlp_layers"] * (full["mlp_width"] ** 2 + full["mlp_width"])
    assert 90e6 < 4 * params < 110e6
    assert full["mlp_batch"] % 2 == 0 and full["cnn_batch"] % 2 == 0


# --- the arithmetic ---------------------------------------------------------------------------------------------

def test_the_fit_recovers_alpha_and_beta() -> None:
    sizes = [4 * 4**k for k in range(13)]
    alpha, beta = 50e-6, 2e9
    fit = scaling.fit_alpha_beta(sizes, [alpha + n / beta for n in sizes])
    assert math.isclose(fit.alpha_s, alpha, rel_tol=1e-9) and math.isclose(fit.beta_bytes_per_s, beta, rel_tol=1e-9)
    assert math.isclose(fit.time(1e6), alpha + 1e6 / beta)


def test_the_fit_weighs_small_and_large_messages_alike() -> None:
    sizes = [4, 4096, 4 * 2**20, 64 * 2**20]
    times = [1e-4 * 1.05, 1.02e-4, 1e-4 + sizes[2] / 1e9, 1e-4 + sizes[3] / 1e9]
    fit = scaling.fit_alpha_beta(sizes, times)
    assert 0.9e-4 < fit.alpha_s < 1.1e-4 and 0.95e9 < fit.beta_bytes_per_s < 1.05e9


def test_a_negative_alpha_is_clipped_to_zero() -> None:
    fit = scaling.fit_alpha_beta([1e3, 1e6, 1e7], [1e-7, 1e-3, 1e-2])
    assert fit.alpha_s == 0.0 and fit.beta_bytes_per_s > 0


@pytest.mark.parametrize(("sizes", "times"), [([4], [1e-5]), ([4, 4], [1e-5, 1e-5]), ([4, 8], [1e-5, 0.0])])
def test_the_fit_refuses_points_that_fix_no_bandwidth(sizes: list[float], times: list[float]) -> None:
    with pytest.raises(ValueError):
        scaling.fit_alpha_beta(sizes, times)


@pytest.mark.parametrize(("n", "factor"), [(1, 0.0), (2, 1.0), (4, 1.5), (8, 1.75), (64, 126 / 64)])
def test_busbw_is_algbw_times_the_ring_factor(n: int, factor: float) -> None:
    assert math.isclose(scaling.ring_factor(n), factor)
    assert math.isclose(scaling.busbw(1e9, 0.5, n), scaling.algbw(1e9, 0.5) * factor)
    assert math.isclose(scaling.algbw(1e9, 0.5), 2e9)


def test_the_model_adds_the_ring_allreduce_with_and_without_overlap() -> None:
    grad = 8e6
    comm = 1.75 * grad / 450e9
    p = scaling.predict(0.01, grad, 8, scaling.NVLINK4)
    assert math.isclose(p.allreduce_s, comm)
    assert math.isclose(p.step_no_overlap_s, 0.01 + comm)
    assert p.step_overlap_s == 0.01 and p.hidden and p.efficiency_overlap == 1.0
    assert math.isclose(p.efficiency_no_overlap, 0.01 / (0.01 + comm))
    one = scaling.predict(0.01, grad, 1, scaling.PCIE5)
    assert one.allreduce_s == 0.0 and one.efficiency_no_overlap == 1.0


def test_overlap_hides_only_up_to_the_backward_pass() -> None:
    step, grad = 1e-4, 8e6
    p = scaling.predict(step, grad, 8, scaling.PCIE5)
    comm = 1.75 * grad / 63e9
    assert not p.hidden
    assert math.isclose(p.step_overlap_s, step + comm - step * 2 / 3)
    assert p.efficiency_no_overlap < p.efficiency_overlap < 1.0


def test_across_nodes_the_ring_runs_at_infiniband_speed() -> None:
    assert scaling.link_bandwidth(scaling.IB_NDR, 8) == scaling.NVLINK4.bytes_per_s
    assert scaling.link_bandwidth(scaling.IB_NDR, 16) == 50e9
    p = scaling.predict(0.01, 8e6, 64, scaling.IB_NDR)
    assert math.isclose(p.allreduce_s, 2 * 63 / 64 * 8e6 / 50e9)


def test_the_hiding_batch_is_the_c_over_w_rule_in_images() -> None:
    grad, flops_per_image, peak = 8e6, 1e9, 60e12
    b = scaling.hiding_batch(grad, 8, scaling.NVLINK4, flops_per_image, peak)
    backward = 2 / 3 * b * flops_per_image / peak
    assert math.isclose(backward, scaling.ring_allreduce_s(grad, 8, 450e9))


def test_the_measured_hiding_batch_needs_every_larger_batch_to_hide() -> None:
    steps = [(1, 3e-3), (4, 2e-3), (16, 3e-3), (64, 9e-3)]
    assert scaling.measured_hiding_batch(steps, 1.5e-3) == 16
    assert scaling.measured_hiding_batch(steps, 1e-3) == 1
    assert scaling.measured_hiding_batch(steps, 1.0) is None


def test_overlap_fraction() -> None:
    assert scaling.overlap_fraction(0.2, 0.1, 0.2) == pytest.approx(1.0)
    assert scaling.overlap_fraction(0.2, 0.1, 0.3) == pytest.approx(0.0)
    assert scaling.overlap_fraction(0.2, 0.1, 0.35) == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        scaling.overlap_fraction(0.2, 0.0, 0.2)
