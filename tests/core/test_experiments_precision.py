"""Reduced-precision matmul sweeps and the peak each precision is checked against."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gpucnn import bench
from gpucnn.experiments.precision import (
    PRECISIONS,
    bytes_needed,
    measure_precision_matmul,
    precision_matmul_sweep,
    precision_max_n,
    precisions_for,
)
from gpucnn.hardware import AcceleratorInfo, HardwareReport, Peak, detect, gpu_peaks
from gpucnn.profile import current_profile

H100 = "NVIDIA H100 80GB HBM3"


def gpu_report(capability: str = "9.0", backend: str = "CUDA", name: str = H100) -> HardwareReport:
    acc = AcceleratorInfo(
        device_type="cuda", backend=backend, name=name, count=1, memory_bytes=80 * 1024**3,
        capability=capability, multiprocessors=132, l2_bytes=50 * 1024**2, driver=None, runtime=None,
        cudnn=None, tf32_matmul=False, mig=None, peaks=gpu_peaks(name),
    )
    return dataclasses.replace(detect(), accelerator=acc)


def cpu_report(fp32: float | None, bf16: float | None) -> HardwareReport:
    hw = detect()
    cpu = dataclasses.replace(hw.cpu, peak_fp32=Peak(fp32, "FLOP/s", "test", True) if fp32 else None,
                              peak_bf16=Peak(bf16, "FLOP/s", "test", True) if bf16 else None)
    return dataclasses.replace(hw, cpu=cpu)


# --- which precisions run where ---

def test_cpu_sweeps_bf16_only_never_tf32() -> None:
    assert precisions_for("cpu") == ["bfloat16"]


@pytest.mark.parametrize(("capability", "backend", "expected"), [
    ("9.0", "CUDA", {"bfloat16", "float16", "tf32"}),
    ("8.0", "CUDA", {"bfloat16", "float16", "tf32"}),
    ("7.5", "CUDA", {"float16"}),  # Turing: fp16 tensor cores, no bf16 or TF32
    ("gfx942", "ROCm", {"bfloat16", "float16"}),  # TF32 is NVIDIA's
])
def test_gpu_precisions_follow_the_architecture(capability: str, backend: str, expected: set[str]) -> None:
    assert set(precisions_for("cuda", gpu_report(capability, backend))) == expected


def test_unknown_precision_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown precision 'int4': choose one of bfloat16, float16, tf32"):
        precision_matmul_sweep("cpu", "int4")


def test_gpu_sweeps_go_beyond_the_fp32_sweep_and_cpu_stays_cheaper() -> None:
    profile = current_profile()
    assert precision_max_n("cuda") >= profile.max_matmul_n
    assert precision_max_n("cpu") <= profile.max_matmul_n


def test_memory_estimate_counts_inputs_output_and_the_fp32_draw() -> None:
    assert bytes_needed(1024, "bfloat16") == (3 * 2 + 4) * 1024**2
    assert bytes_needed(1024, "tf32") == (3 * 4 + 4) * 1024**2


# --- the measurement ---

def test_bf16_point_records_its_dtype_work_and_random_inputs() -> None:
    m = measure_precision_matmul(32, "cpu", "bfloat16")
    assert m.dtype == "bfloat16"
    assert m.shape == (32, 32, 32)
    assert m.flops == 2 * 32**3
    assert m.bytes_moved == 3 * 32 * 32 * 2
    assert m.name == "bf16 matmul n=32"


def test_tf32_setting_is_restored_after_a_tf32_point() -> None:
    before = torch.backends.cuda.matmul.allow_tf32
    m = measure_precision_matmul(8, "cpu", "tf32")
    assert m.dtype == "float32"
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_bf16_cpu_sweep_runs_in_the_quick_profile() -> None:
    data = precision_matmul_sweep("cpu", "bfloat16")
    ns = [m.shape[0] for m in data["sweep"].points]
    assert ns[0] == 2
    assert all(m.dtype == "bfloat16" for m in data["sweep"].points)
    assert set(PRECISIONS) >= {"bfloat16", "float16", "tf32"}


# --- each precision against its own peak ---

def test_cpu_bf16_is_never_checked_against_the_fp32_peak() -> None:
    hw = cpu_report(fp32=100e9, bf16=None)
    flops, _bw, _margin = bench.reference_peaks(hw, "cpu", "bfloat16", tf32=False)
    assert flops is None
    assert bench.reference_peaks(hw, "cpu", "float32", tf32=False)[0] == 100e9


def test_cpu_bf16_uses_the_bf16_bound_so_amx_speed_is_possible() -> None:
    hw = cpu_report(fp32=100e9, bf16=1600e9)
    flops, _bw, margin = bench.reference_peaks(hw, "cpu", "bfloat16", tf32=False)
    assert flops == 1600e9
    common = {"bytes_moved": 0, "working_set_bytes": 0, "peak_bytes_per_s": None, "cache": None,
              "resolution_s": 1e-9, "peak_flops": flops, "margin": margin}
    # 1 TFLOP/s of bf16 is 10x the fp32 peak, and possible with AMX ...
    bench.check_possible("bf16 matmul", 1.0, flops=1e12, **common)
    # ... but twice the bf16 bound is not.
    with pytest.raises(bench.ImpossibleResult, match=r"bf16 matmul: .* exceeds"):
        bench.check_possible("bf16 matmul", 1.0, flops=2 * 1600e9 * margin, **common)


def test_gpu_peaks_follow_precision_and_tf32() -> None:
    hw = gpu_report()
    p = hw.accelerator.peaks
    assert bench.reference_peaks(hw, "cuda", "bfloat16", tf32=False)[0] == p.bf16
    assert bench.reference_peaks(hw, "cuda", "float32", tf32=False)[0] == p.fp32
    assert bench.reference_peaks(hw, "cuda", "float32", tf32=True)[0] == p.tf32
    assert bench.reference_peaks(hw, "cuda", "float16", tf32=False)[0] == p.fp16
    assert p.bf16 > 10 * p.fp32  # the reason the check must not use the fp32 peak for bf16


# --- the tensor-core benchmark script's fault paths ---

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_tensor_core_check_without_a_gpu_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.benchmarks.check_tensor_core_target import main

    assert main([]) == 2
    assert "no CUDA GPU on this machine" in capsys.readouterr().err


def test_tensor_core_check_needs_a_size_of_at_least_4096(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.benchmarks.check_tensor_core_target import main

    assert main(["--sizes", "1024"]) == 2
    assert "no size >= 4096 given" in capsys.readouterr().err


@pytest.mark.parametrize("answer", ["missing", "garbage", "fails"])
def test_tensor_core_check_says_when_clock_and_power_are_unknown(answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.benchmarks.check_tensor_core_target import sm_clock_and_power

    def run(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
        if answer == "missing":
            raise FileNotFoundError("nvidia-smi")
        if answer == "fails":
            raise subprocess.CalledProcessError(9, "nvidia-smi")
        return subprocess.CompletedProcess(args, 0, stdout="[N/A], 1980, 700.12\n", stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    assert sm_clock_and_power() == "clock and power unknown (nvidia-smi did not answer)"


def test_tensor_core_check_reads_clock_and_power(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.benchmarks.check_tensor_core_target import sm_clock_and_power

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout="1440, 1980, 699.87, 700.00\n", stderr=""))
    assert sm_clock_and_power() == "SM 1440 of 1980 MHz, 700 of 700 W"


def test_fp16_on_a_gpu_without_bf16_uses_its_own_fp16_peak() -> None:
    hw = gpu_report("7.5", name="Tesla T4")
    assert hw.accelerator.peaks.bf16 is None
    assert bench.reference_peaks(hw, "cuda", "float16", tf32=False)[0] == hw.accelerator.peaks.fp16
    assert bench.reference_peaks(hw, "cuda", "bfloat16", tf32=False)[0] is None
