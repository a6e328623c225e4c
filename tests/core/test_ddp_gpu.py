"""gpu_ddp, the GPU build's data-parallel measurements, run with the fake accelerator: torch device "cpu:0" (not
"cpu", so the GPU branches run) and gloo in place of NCCL. No GPU has run it (the session that wrote it had none);
nothing measured is asserted, only that one launch returns every field and the page's GPU facts read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucnn import results, sources
from gpucnn.experiments import ddp as experiment
from tests.conftest import ROOT


@pytest.fixture
def gloo_for_nccl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(experiment, "GPU_BACKEND", "gloo")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setattr(experiment, "gpu_topology", lambda: ["GPU0 X", "(faked)"])
    results._BUILD.clear()
    yield
    results._BUILD.clear()


def test_gpu_ddp_runs_in_one_launch_on_the_fake_accelerator(gloo_for_nccl: None, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    launches = []
    real = experiment.launch

    def counted(*args, **kw):
        launches.append(kw["world_size"])
        return real(*args, **kw)

    monkeypatch.setattr(experiment, "launch", counted)
    result = results.run(experiment.gpu_ddp, device="cpu:0", fresh=True)
    d = result.typed
    assert launches == [2]  # one launch: two ranks share the one (fake) GPU
    assert d.gpus == 1 and d.backend == "gloo" and d.topology == ("GPU0 X", "(faked)")
    assert d.plain_step.median > 0 and d.one_rank_ddp_step.median > 0
    assert [m.shape[0] for m in d.gloo_allreduce.points] == experiment.gpu_plan()["sizes"]
    assert d.nccl_allreduce is None and d.nccl_ddp_step is None  # one GPU: no NCCL across GPUs


def test_gpu_ddp_refuses_the_cpu() -> None:
    with pytest.raises(ValueError, match="accelerator"):
        experiment.gpu_ddp.__wrapped__("cpu") if hasattr(experiment.gpu_ddp, "__wrapped__") \
            else results.run(experiment.gpu_ddp, device="cpu", fresh=True)


def test_the_page_reads_the_gpu_figures(gloo_for_nccl: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.pages import ddp as page

    gpu = results.run(experiment.gpu_ddp, device="cpu:0", fresh=True)
    src = sources.Source("cpu:0", gpu)
    monkeypatch.setattr(page, "live_has_accelerator", lambda: True)
    monkeypatch.setattr(page, "accelerators", lambda fn, **kw: [src])
    monkeypatch.setattr(page, "run", lambda fn, **kw: _h2d(gpu) if fn is page.host_to_device_bandwidth
                        else results.run(fn, **kw))
    g = page.gpu_facts()
    assert g.state is page.GpuState.ONE and g.gpus == 1
    assert g.pinned_h2d_gbps == pytest.approx(20.0) and g.gloo_over_h2d == pytest.approx(g.gloo_beta_gbps / 20.0)
    assert "<table" in page.gpu_table()


def _h2d(like: results.Result) -> results.Result:
    """A made-up pinned host-to-device sweep at 20 GB/s, read through the real spec."""
    import dataclasses

    from gpucnn.measurement import Measurement, Sweep

    m = Measurement(name="h2d", device="cpu:0", dtype="float32", shape=(2**20,), threads=1,
                    times_s=(2**20 / 20e9,) * 3, number_per_run=1, bytes_moved=2**20)
    return dataclasses.replace(like, experiment="host_to_device_bandwidth",
                               data={"pageable": Sweep((m,)), "pinned": Sweep((m,))})
