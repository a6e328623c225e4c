from __future__ import annotations

import json

import torch

from gpucnn import hardware
from gpucnn.hardware import HardwareReport, cpu_family, detect, gpu_peaks


def test_report_has_the_cpu_fields() -> None:
    hw = detect()
    assert hw.cpu.model
    assert hw.cpu.logical_cores >= 1
    assert hw.cpu.torch_threads == torch.get_num_threads()
    assert hw.torch == torch.__version__
    assert hw.python.count(".") == 2
    assert hw.blas
    assert hw.devices[0] == "cpu"


def test_report_round_trips_through_json() -> None:
    hw = detect()
    again = HardwareReport.from_dict(json.loads(json.dumps(hw.to_dict())))
    assert again == hw
    assert again.fingerprint() == hw.fingerprint()


def test_report_names_no_host_user_or_path() -> None:
    import getpass
    import os
    import socket

    text = json.dumps(detect().to_dict())
    assert socket.gethostname() not in text
    assert f'"{getpass.getuser()}"' not in text
    assert os.path.expanduser("~") not in text
    assert "/home/" not in text and "/root" not in text


def test_zen4_is_two_256_bit_fma_not_avx512() -> None:
    row = cpu_family("AuthenticAMD", 0x19, 0x11)
    assert row is not None and row.name == "AMD Zen 4"
    assert row.flop_per_cycle == 32


def test_unknown_cpu_has_no_peak(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_cpuinfo_fields",
                        lambda: {"model name": "Mystery CPU", "vendor_id": "Unknown", "cpu family": "1", "model": "1"})
    cpu = hardware.detect_cpu()
    assert cpu.peak_fp32 is None
    assert "not in" in cpu.peak_note


def test_cpu_peak_is_labelled_an_estimate_and_uses_the_highest_clock(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_cpuinfo_fields", lambda: {
        "model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "cpu MHz": "2596.0"})
    cpu = hardware.detect_cpu()
    assert cpu.peak_fp32 is not None and cpu.peak_fp32.estimate
    assert "estimate" in cpu.peak_fp32.source
    # The VM reports 2.6 GHz; Zen 4 EPYC boosts to 3.7 GHz: the peak must use the higher.
    assert cpu.max_clock_ghz == 3.7
    assert cpu.peak_fp32.value == cpu.logical_cores * 3.7e9 * 32


def test_gpu_datasheet_lookup() -> None:
    sxm = gpu_peaks("NVIDIA H100 80GB HBM3")
    pcie = gpu_peaks("NVIDIA H100 PCIe")
    assert sxm and pcie and sxm.bandwidth > pcie.bandwidth
    assert gpu_peaks("NVIDIA H200").bandwidth == 4.8e12
    assert gpu_peaks("Tesla T4").tf32 is None  # Turing has no TF32
    for name in ("NVIDIA A100-SXM4-80GB", "NVIDIA L4", "NVIDIA GeForce RTX 4090"):
        assert gpu_peaks(name) is not None and gpu_peaks(name).source
    assert gpu_peaks("Some Future GPU") is None


def test_fingerprint_changes_with_threads(monkeypatch) -> None:
    hw = detect()
    other = HardwareReport(hw.os, hw.python, hw.torch, hw.blas,
                           hardware.CpuInfo(**{**hw.cpu.__dict__, "torch_threads": hw.cpu.torch_threads + 1}),
                           hw.accelerator)
    assert other.fingerprint() != hw.fingerprint()
