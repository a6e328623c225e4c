"""The accelerator code paths of the library, exercised on a CPU-only machine.

No GPU runs these tests, so every ``device != "cpu"`` branch would otherwise never run before a GPU build. Here
``detect_accelerator`` and ``free_memory_bytes`` read a faked CUDA torch (an H100's device properties), and the
harness's and experiments' accelerator paths (synchronize, peaks, L2, out-of-memory, compile) run with a faked
H100 report (tests/fakes.py). Nothing measured is asserted.
"""


from __future__ import annotations

import dataclasses
import functools
import types
from pathlib import Path

import pytest
import torch

import gpucnn.bench as bench
import gpucnn.experiments.memory as memory_exp
import gpucnn.hardware as hardware
from gpucnn.hardware import HardwareReport, gpu_peaks
from tests.fakes import FAKE_DEVICE, H100, L2, fake_report


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

