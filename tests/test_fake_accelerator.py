"""The accelerator code paths, exercised on a CPU-only machine.

No GPU runs these tests, so every ``if acc:`` branch of the pages and every
``device != "cpu"`` branch of the experiments would otherwise never run before
a GPU build. Here:

* ``detect_accelerator`` and ``free_memory_bytes`` read a faked CUDA torch
  (an H100's device properties);
* the harness's accelerator paths (synchronize, peaks, L2, out-of-memory) run
  with a faked H100 report;
* every page builder renders with a fake "NVIDIA H100 80GB HBM3" whose torch
  device is ``cpu:0``: a device string that is not ``"cpu"`` (so the code takes
  its accelerator branches) on which torch really computes. What a CPU cannot do
  is stubbed: ``torch.accelerator.synchronize``/``empty_cache`` (counted),
  ``pin_memory`` and ``torch.compile`` (identity), the device profiler.

Nothing measured is asserted: only that the GPU branches render.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import gpucnn.bench as bench
import gpucnn.experiments.conv as conv_exp
import gpucnn.experiments.memory as memory_exp
import gpucnn.experiments.nn as nn_exp
import gpucnn.hardware as hardware
import gpucnn.results as results
from gpucnn.hardware import AcceleratorInfo, HardwareReport, gpu_peaks

H100 = "NVIDIA H100 80GB HBM3"
L2 = 50 * 1024 * 1024
FAKE_DEVICE = "cpu:0"  # not "cpu", so every accelerator branch is taken; torch computes on it all the same
NO_GPU = "No GPU in this build"


def fake_report(device_type: str = FAKE_DEVICE, name: str = H100) -> HardwareReport:
    real = hardware.detect()
    acc = AcceleratorInfo(
        device_type=device_type, backend="CUDA", name=name, count=1, memory_bytes=80 * 1024**3,
        capability="9.0", multiprocessors=132, l2_bytes=L2, driver="570.124.06 (CUDA 12.8)", runtime="12.8",
        cudnn="91002", tf32_matmul=False, mig="not in use", peaks=gpu_peaks(name),
    )
    return dataclasses.replace(real, accelerator=acc)


# --- detection, against a faked CUDA torch ---------------------------------------

class _Uuid:
    def __str__(self) -> str:  # torch prints a bare UUID, no "GPU-"/"MIG-" prefix
        return "5a4b3c2d-0000-1111-2222-333344445555"


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, name: str = H100) -> None:
    props = types.SimpleNamespace(name=name, total_memory=80 * 1024**3, major=9, minor=0,
                                  multi_processor_count=132, L2_cache_size=L2, uuid=_Uuid())
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *a, **k: torch.device("cuda"))
    monkeypatch.setattr(torch.accelerator, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *_: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *_: (70 * 1024**3, 80 * 1024**3))
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    monkeypatch.setattr(torch._C, "_cuda_getDriverVersion", lambda: 12080, raising=False)
    real_read = hardware._read
    monkeypatch.setattr(hardware, "_read", lambda p: (
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  (dvs-builder@U16)\n"
        if p == "/proc/driver/nvidia/version" else real_read(p)))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # A fresh report cache while faked: a faked CUDA report must not stay cached for the tests that follow.
    monkeypatch.setattr(hardware, "_cached_report", functools.lru_cache(maxsize=1)(hardware._cached_report.__wrapped__))


def test_detect_accelerator_reads_an_h100(monkeypatch) -> None:
    _fake_cuda(monkeypatch)
    acc = hardware.detect_accelerator()
    assert acc is not None and acc.device_type == "cuda" and acc.backend == "CUDA"
    assert acc.capability == "9.0" and acc.multiprocessors == 132 and acc.l2_bytes == L2
    assert acc.peaks == gpu_peaks("H100 SXM") and acc.peaks.fp32 == 67e12
    assert acc.driver == "570.124.06 (CUDA 12.8)"
    assert acc.cudnn == "91002" and acc.mig == "not in use"
    assert hardware.free_memory_bytes("cuda") == 70 * 1024**3
    # the report with it survives JSON and names the GPU
    report = dataclasses.replace(hardware.detect(), accelerator=acc)
    again = HardwareReport.from_dict(report.to_dict())
    assert again.accelerator == acc and again.device_label("cuda") == f"CUDA: {H100}"
    assert report.devices == ["cpu", "cuda"]


def test_a_mig_slice_is_reported_as_one(monkeypatch) -> None:
    _fake_cuda(monkeypatch, name=f"{H100} MIG 1g.10gb")
    assert hardware.detect_accelerator().mig.startswith("enabled")
    _fake_cuda(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-5a4b3c2d-0000-1111-2222-333344445555")
    assert hardware.detect_accelerator().mig.startswith("enabled")


# --- the harness's accelerator paths ---------------------------------------------------

def test_synchronize_waits_for_the_accelerator(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: calls.append(a))
    bench.synchronize("cpu")
    assert calls == []
    bench.synchronize("cuda")
    assert len(calls) == 1


def test_h100_peaks_follow_dtype_and_tf32() -> None:
    hw = fake_report("cuda")
    assert bench.reference_peaks(hw, "cuda", "float32", tf32=False)[:2] == (67e12, 3.35e12)
    assert bench.reference_peaks(hw, "cuda", "float32", tf32=True)[0] == 494.5e12
    assert bench.reference_peaks(hw, "cuda", "bfloat16", tf32=False)[0] == gpu_peaks(H100).bf16
    assert bench.cache_bytes(hw, "cuda") == L2


def _check(median_s: float, flops: float = 0.0, moved: float = 0.0, working_set: float = 0.0,
           tf32: bool = False, dtype: str = "float32") -> None:
    hw = fake_report("cuda")
    peak_flops, peak_bw, margin = bench.reference_peaks(hw, "cuda", dtype, tf32)
    bench.check_possible("h100", median_s, flops=flops, bytes_moved=moved, working_set_bytes=working_set,
                         peak_flops=peak_flops, peak_bytes_per_s=peak_bw, margin=margin,
                         cache=bench.cache_bytes(hw, "cuda"), resolution_s=1e-9)


def test_real_h100_results_are_possible_and_impossible_ones_are_not() -> None:
    n = 8192
    flops = 2.0 * n**3
    _check(flops / 50e12, flops=flops)  # fp32 SGEMM, TF32 off: ~50 TFLOP/s of the 67 peak
    _check(flops / 600e12, flops=flops, dtype="bfloat16")  # bf16 tensor cores
    with pytest.raises(bench.ImpossibleResult, match="h100"):
        _check(flops / 300e12, flops=flops)  # "fp32" at TF32 speed: not FP32
    # a copy that fits in the 50 MiB L2 may beat HBM; one far beyond it may not
    small = 2.0 * 16 * 1024**2
    _check(small / 8e12, moved=small, working_set=small)
    big = 2.0 * 256 * 1024**2
    _check(big / 3.0e12, moved=big, working_set=big)
    with pytest.raises(bench.ImpossibleResult, match="memory peak"):
        _check(big / 5e12, moved=big, working_set=big)
    # a one-call-plus-synchronize latency of ~10 us is far above the timer's resolution
    _check(10e-6, flops=1.0)


def test_out_of_memory_on_the_accelerator_empties_its_cache(monkeypatch) -> None:
    emptied = []
    monkeypatch.setattr(torch.accelerator, "empty_cache", lambda: emptied.append(1))

    def point(size: int):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    result = bench.sweep([1, 2], point, device="cuda", bytes_needed=lambda s: 1.0, free_bytes=lambda d: None)
    assert result.points == () and "out of memory on cuda" in result.stopped
    assert emptied == [1]


# --- every page with a fake H100 ------------------------------------------------------

PAGE_MODULES = ("measuring", "bandwidth", "parallelism", "fast_memory", "ann", "cnn", "summary", "results",
                "gpu", "training", "tensor_cores")


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


def _smoke(mp: pytest.MonkeyPatch) -> None:
    """Smallest sizes and shortest timings: these tests check branches, not figures.

    Measuring every page for real with the quick profile took about 120 s.
    """
    from gpucnn import profile
    from gpucnn.experiments import training as training_exp
    from gpucnn.pages import training as training_page

    mp.setitem(profile.PROFILES, "quick", dataclasses.replace(
        profile.PROFILES["quick"], budget_s=0.002, min_runs=3, max_matmul_n=256, sweep_point_limit_s=0.002,
        max_precision_n_cpu=128, max_precision_n_gpu=256))
    mp.setitem(training_page.TRAIN_PARAMS, "epochs", 2)
    # The fake GPU is the CPU: the GPU's batch sizes (64 images of 3x64x64 per training step) cost seconds each.
    mp.setattr(training_exp, "train_batches", lambda device: [2, 4])
    mp.setattr(training_exp, "deploy_batches", lambda device: [1, 16])
    # One copy inside the fake 50 MiB L2 and one beyond it, a few MiB per timed call: the launch-free sweep's branches.
    mp.setattr(memory_exp, "l2_copy_sizes", lambda l2: [256 * 1024, 32 * 1024 * 1024])
    mp.setattr(memory_exp, "LAUNCH_FREE_BYTES_PER_CALL", 4 * 1024 * 1024)


REAL_DETECT = hardware.detect


def install_fake_gpu(mp: pytest.MonkeyPatch, report: HardwareReport, pages: tuple[str, ...] = PAGE_MODULES,
                     synced: list[int] | None = None) -> None:
    """Make every page see ``report`` as this build's hardware, with what a CPU cannot do stubbed."""
    import importlib
    import sys

    real_profiler = nn_exp.profiler
    mp.setenv("GPUCNN_PROFILE", "quick")
    mp.delenv("GPUCNN_FRESH", raising=False)
    mp.delenv(results.SHARE_ENV, raising=False)
    _smoke(mp)
    for page in pages:  # imported now, so that the loop below patches what they import
        importlib.import_module(f"gpucnn.pages.{page}")
    # Every gpucnn module that took `detect` by name, wherever the pages' code moves to.
    for name, module in list(sys.modules.items()):
        if (name == "gpucnn" or name.startswith("gpucnn.")) and getattr(module, "detect", None) is REAL_DETECT:
            mp.setattr(module, "detect", lambda: report)
    mp.setattr(results, "_BUILD", {})  # keep the fake H100's results out of the other tests
    mp.setattr(torch.accelerator, "synchronize", lambda *a: synced.append(1) if synced is not None else None)
    mp.setattr(torch.accelerator, "empty_cache", lambda: None)
    mp.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    mp.setattr(torch, "compile", lambda model, *a, **k: model)
    # torch.load knows "cuda" but has no deserializer for the tag "cpu:0"
    real_load = torch.load
    mp.setattr(torch, "load", lambda *a, map_location=None, **k: real_load(
        *a, map_location="cpu" if map_location == FAKE_DEVICE else map_location, **k))
    for module in (nn_exp, conv_exp):
        mp.setattr(module, "profiler", lambda device: real_profiler("cpu"))


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


def test_host_to_device_copies_are_not_held_to_the_hbm_peak(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: None)
    m = memory_exp.measure_host_to_device(4096, FAKE_DEVICE, pinned=True)
    assert m.bytes_moved == 4096 and m.peak_bytes_per_s is None and m.pct_peak_bandwidth is None


def test_a_failed_compile_loses_its_row_not_the_page(monkeypatch) -> None:
    from gpucnn.experiments import training as training_exp

    def broken(model, *a, **k):
        def forward(x):
            raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")
        return forward

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: None)
    monkeypatch.setattr(training_exp, "train_batches", lambda device: [2])
    out = training_exp.training_throughput(FAKE_DEVICE)
    assert "torch.compile" not in out["speedups"] and "plain fp32" in out["speedups"]
    assert "C compiler" in out["skipped"]["torch.compile"]
    assert out["speedups"]["bf16 autocast"].dtype == "bfloat16"


def test_the_no_gpu_note_is_empty_on_a_machine_with_a_gpu(monkeypatch) -> None:
    # Why tests/test_site.py's "every block prints" check failed on the H100/H200 builds:
    # a page said "No GPU in this build" where there was one.
    from gpucnn import sources

    report = fake_report()
    monkeypatch.setattr(hardware, "detect", lambda: report)
    assert sources.live_has_accelerator()
    assert sources.no_gpu_state() == ""


def test_gpu_charts_have_their_tables_and_read_without_colour(pages) -> None:
    """What the built-site check asks of a CPU build, asked of the pages as a GPU build renders them."""
    from tests.test_pages_tables import CHART, charts_told_apart_by_colour_only, charts_without_table

    drawn = {key: html for key, html in pages.items() if CHART.search(html)}
    assert len(drawn) >= 10
    assert {key: charts_without_table(html) for key, html in drawn.items() if charts_without_table(html)} == {}
    assert {key: c for key, html in drawn.items() if (c := charts_told_apart_by_colour_only(html))} == {}


def cpu_only() -> HardwareReport:
    """This machine's hardware report without its accelerator: a CPU-only build."""
    return dataclasses.replace(REAL_DETECT(), accelerator=None)


@contextmanager
def fake_build(report: HardwareReport, archive: Path, cache: Path, pages: tuple[str, ...] = PAGE_MODULES
               ) -> Iterator[None]:
    """Pages see ``report`` as this build's hardware and ``archive`` as results/."""
    import gpucnn.sources as sources
    from gpucnn import profile

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUCNN_CACHE_DIR", str(cache))
        mp.setenv("GPUCNN_RESULTS_DIR", str(archive))
        install_fake_gpu(mp, report, pages)
        # Sweeps that stop on a time limit would make the set of figures depend on this machine's load:
        # a figure drawn from two points in one run and absent in the next. Small sizes, no early stop.
        mp.setitem(profile.PROFILES, "quick", dataclasses.replace(profile.PROFILES["quick"], sweep_point_limit_s=5.0))
        sources.reset()
        try:
            yield
        finally:
            sources.reset()
