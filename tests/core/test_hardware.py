from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpucnn import hardware
from gpucnn.datasheets import GPU_MODELS, gpu_model, isa_bound, slice_peaks
from gpucnn.hardware import HardwareReport, blas_name, cpu_family, detect, gpu_peaks

# The hardware reports of the H100 and H200 records (2026-11), written before usable_cores, peak_bf16 and fp16.
OLD_REPORTS = Path(__file__).resolve().parents[1] / "data" / "hardware_reports_2026-11.json"


def _no_cpufreq(monkeypatch) -> None:
    """Hide this machine's sysfs max clock, so a test sees only the faked /proc/cpuinfo."""
    real = hardware._read
    monkeypatch.setattr(hardware, "_read", lambda path: None if "cpufreq" in path else real(path))


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


ZEN4 = {"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "cpu MHz": "2596.0",
        "flags": "fpu sse2 avx fma avx2 avx512f avx512_bf16"}
ZEN4_REPORTED_GHZ = 2.596


def test_unknown_isa_has_no_peak(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_cpuinfo_fields",
                        lambda: {"model name": "Mystery CPU", "vendor_id": "Unknown", "cpu family": "1", "model": "1",
                                 "cpu MHz": "2000", "flags": "fpu mmx"})
    cpu = hardware.detect_cpu()
    assert cpu.peak_fp32 is None and cpu.peak_bf16 is None
    assert "instruction set is not known" in cpu.peak_note


def test_unknown_clock_has_no_peak(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_cpuinfo_fields", lambda: {"model name": "X", "flags": "sse2 avx2 fma"})
    monkeypatch.setattr(hardware, "_read", lambda path: None)
    cpu = hardware.detect_cpu()
    assert cpu.peak_fp32 is None and "clock is not known" in cpu.peak_note


def test_cpu_peak_is_an_estimate_at_the_highest_clock(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_cpuinfo_fields", lambda: dict(ZEN4))
    _no_cpufreq(monkeypatch)
    monkeypatch.setattr(hardware, "usable_cores", lambda: (3, "3 physical cores"))
    cpu = hardware.detect_cpu()
    assert cpu.peak_fp32 is not None and cpu.peak_fp32.estimate
    # An estimate, not a bound: a VM may report less than its cores run at.
    assert cpu.peak_fp32.source.startswith(hardware.CPU_PEAK_WORDING) and "upper bound" not in cpu.peak_fp32.source
    assert "3 physical cores" in cpu.peak_fp32.source
    # One basis for every CPU: the clock the OS reports (2.6 GHz here), not the family's 3.7 GHz boost, which
    # an archived record of an unknown family could not use.
    assert cpu.max_clock_ghz == pytest.approx(ZEN4_REPORTED_GHZ)
    # Zen 4 has avx512f, but executes it as 2 x 256-bit: 32 FP32 FLOP/cycle, not 64.
    assert cpu.peak_fp32.value == pytest.approx(3 * ZEN4_REPORTED_GHZ * 1e9 * 32)
    assert cpu.peak_bf16 is not None and cpu.peak_bf16.value == pytest.approx(2 * cpu.peak_fp32.value)
    assert cpu.usable_cores == 3 and cpu.isa == "AVX-512"


def test_an_unlisted_intel_xeon_gets_a_peak_from_its_flags(monkeypatch) -> None:
    # The H100/H200 hosts and many clouds show a masked model ("Intel(R) Xeon(R) Processor").
    monkeypatch.setattr(hardware, "_cpuinfo_fields", lambda: {
        "model name": "Intel(R) Xeon(R) Processor", "vendor_id": "GenuineIntel", "cpu family": "6", "model": "167",
        "cpu MHz": "2100.000", "flags": "sse2 avx fma avx2 avx512f avx512_bf16 amx_bf16 amx_tile"})
    monkeypatch.setattr(hardware, "usable_cores", lambda: (16, "16 physical cores"))
    _no_cpufreq(monkeypatch)
    cpu = hardware.detect_cpu()
    assert cpu.family is None and cpu.peak_fp32 is not None
    assert cpu.peak_fp32.value == pytest.approx(16 * 2.1e9 * 64)
    assert cpu.peak_bf16.value == pytest.approx(16 * 2.1e9 * 1024)  # AMX tiles
    assert "AMX" in cpu.peak_bf16.source


@pytest.mark.parametrize(("flags", "sve_bits", "fp32", "bf16"), [
    ({"sse2", "avx", "fma", "avx2", "avx512f"}, None, 64, 64),
    ({"sse2", "avx", "fma", "avx2", "avx512f", "avx512_bf16"}, None, 64, 128),
    ({"sse2", "avx", "fma", "avx2", "avx512f", "avx512_bf16", "amx_bf16"}, None, 64, 1024),
    ({"sse2", "avx", "fma", "avx2"}, None, 32, 32),
    ({"sse2", "avx"}, None, 16, 16),
    ({"sse2"}, None, 8, 8),
    ({"fp", "asimd"}, None, 32, 32),
    ({"fp", "asimd", "bf16"}, None, 32, 128),
    ({"fp", "asimd", "sve"}, 256, 32, 32),
    ({"fp", "asimd", "sve"}, 512, 64, 64),
    ({"fpu", "mmx"}, None, None, None),
])
def test_isa_bounds(flags: set[str], sve_bits: int | None, fp32: int | None, bf16: int | None) -> None:
    bound = isa_bound(flags, sve_bits)
    if fp32 is None:
        assert bound is None
    else:
        assert bound is not None and (bound.fp32_flop_per_cycle, bound.bf16_flop_per_cycle) == (fp32, bf16)


def test_zen4_exception_lowers_the_avx512_bound() -> None:
    flags = {"avx2", "fma", "avx512f", "avx512_bf16"}
    bound = isa_bound(flags, None, cpu_family("AuthenticAMD", 0x19, 0x11))
    assert bound is not None and bound.fp32_flop_per_cycle == 32 and bound.bf16_flop_per_cycle == 64


def _topology(base: Path, siblings: dict[int, str]) -> None:
    for cpu, text in siblings.items():
        (base / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (base / f"cpu{cpu}" / "topology" / "core_cpus_list").write_text(text + "\n")


def test_smt_siblings_count_as_one_core(tmp_path: Path) -> None:
    _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert hardware.physical_cores([0, 1, 2, 3], tmp_path) == 2
    assert hardware.physical_cores([0, 2], tmp_path) == 1  # affinity: one core's two threads
    assert hardware.physical_cores([5], tmp_path) == 1  # no topology: the CPU counts as a core


def test_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")
    assert hardware.cgroup_cpu_limit(tmp_path, "/job") == 1.5
    assert hardware.cgroup_cpu_limit(tmp_path, "/") is None
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # a tighter parent wins
    assert hardware.cgroup_cpu_limit(tmp_path, "/job") == 0.5


def test_usable_cores_takes_the_quota(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "physical_cores", lambda cpus: 8)
    monkeypatch.setattr(hardware, "cgroup_cpu_limit", lambda: 1.5)
    assert hardware.usable_cores()[0] == 2
    monkeypatch.setattr(hardware, "cgroup_cpu_limit", lambda: None)
    assert hardware.usable_cores()[0] == 8


@pytest.mark.parametrize(("config", "mkl", "name"), [
    ("Build settings: BLAS_INFO=mkl, LAPACK_INFO=mkl, USE_MKL=ON, USE_MKLDNN=ON", True, "Intel MKL"),
    ("Build settings: BLAS_INFO=open, LAPACK_INFO=open, USE_MKL=OFF, USE_MKLDNN=ON", False, "OpenBLAS"),
    ("Build settings: BLAS_INFO=accelerate, LAPACK_INFO=accelerate, USE_MKLDNN=ON, Intel(R) MKL-DNN", False,
     "Apple Accelerate"),
    ("USE_MKLDNN=ON, Intel(R) MKL-DNN v3", False, "unknown"),
    ("USE_MKLDNN=ON", True, "Intel MKL"),
])
def test_blas_name_is_read_from_blas_info(config: str, mkl: bool, name: str) -> None:
    assert blas_name(config, mkl) == name


def test_old_records_still_load() -> None:
    reports = json.loads(OLD_REPORTS.read_text())
    assert len(reports) == 2
    for data in reports.values():
        hw = HardwareReport.from_dict(data)
        assert hw.cpu.peak_bf16 is None and hw.cpu.usable_cores is None
        assert hw.accelerator is not None and hw.accelerator.peaks is not None and hw.accelerator.peaks.fp16 is None


def test_this_machine_has_a_cpu_peak_when_its_flags_are_known() -> None:
    cpu = detect().cpu
    flags = hardware._cpu_flags(hardware._cpuinfo_fields())
    if isa_bound(flags) is not None and cpu.max_clock_ghz:
        assert cpu.peak_fp32 is not None and cpu.peak_bf16 is not None
        assert cpu.peak_bf16.value >= cpu.peak_fp32.value
        assert 1 <= cpu.usable_cores <= cpu.logical_cores
    else:
        assert cpu.peak_fp32 is None


# Real driver names, and the datasheet row each must get (None: no peak).
GPU_NAMES = [
    ("NVIDIA L4", "L4"), ("NVIDIA L40", "L40"), ("NVIDIA L40S", "L40S"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"), ("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"), ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
    ("NVIDIA H100 80GB HBM3", "H100 SXM 80GB"), ("NVIDIA H100 PCIe", "H100 PCIe 80GB"),
    ("NVIDIA H100 NVL", "H100 NVL 94GB"), ("NVIDIA H200", "H200 SXM 141GB"), ("NVIDIA H200 NVL", "H200 NVL 141GB"),
    ("NVIDIA GH200 480GB", None), ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
    ("NVIDIA GeForce RTX 4080", "GeForce RTX 4080"), ("NVIDIA GeForce RTX 4080 SUPER", None),
    ("NVIDIA GeForce RTX 3090", "GeForce RTX 3090"), ("NVIDIA GeForce RTX 3090 Ti", None),
    ("NVIDIA A10", "A10"), ("NVIDIA A10G", None), ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"), ("Tesla V100-PCIE-32GB", "V100 PCIe"),
    ("AMD Instinct MI300X", "Instinct MI300X"), ("AMD Instinct MI250X", "Instinct MI250X"),
    ("AMD Instinct MI250", "Instinct MI250"), ("AMD Instinct MI250X/MI250", None), ("AMD Instinct MI210", None),
    ("Apple M2 Max", None), ("Apple GPU (arm64)", None), ("Some Future GPU", None), ("NVIDIA H100", None),
]


@pytest.mark.parametrize(("name", "label"), GPU_NAMES)
def test_each_gpu_name_gets_its_own_row_and_no_neighbours(name: str, label: str | None) -> None:
    row = gpu_model(name)
    assert (row.label if row else None) == label
    assert (gpu_peaks(name) is None) == (label is None)


def test_every_datasheet_row_has_a_source_and_dense_peaks_in_order() -> None:
    for row in GPU_MODELS:
        p = row.peaks
        assert p.source and p.fp32 > 0 and p.bandwidth > 0
        for v in (p.tf32, p.bf16, p.fp16):
            assert v is None or v >= p.fp32 * 0.99  # tensor/matrix units are at least the FP32 rate
        assert row.units > 0 and row.memory_gib > 0


def test_neighbouring_rows_differ() -> None:
    assert gpu_peaks("NVIDIA L40S").bandwidth > gpu_peaks("NVIDIA L4").bandwidth
    assert gpu_peaks("NVIDIA A100 80GB PCIe").bandwidth < gpu_peaks("NVIDIA A100-SXM4-80GB").bandwidth
    assert gpu_peaks("NVIDIA H200 NVL").fp32 < gpu_peaks("NVIDIA H200").fp32
    assert gpu_peaks("NVIDIA H100 80GB HBM3").bandwidth > gpu_peaks("NVIDIA H100 PCIe").bandwidth
    assert gpu_peaks("Tesla T4").tf32 is None  # Turing has no TF32


def test_a_mig_slice_gets_its_share_of_the_peaks() -> None:
    whole = gpu_peaks("NVIDIA H100 80GB HBM3")
    p = slice_peaks("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 16, 10 * 2**30, mig=True)
    assert p is not None
    assert p.fp32 == pytest.approx(whole.fp32 * 16 / 132) and p.bf16 == pytest.approx(whole.bf16 * 16 / 132)
    assert p.bandwidth == pytest.approx(whole.bandwidth / 8)
    assert "scaled to this slice" in p.source
    p3 = slice_peaks("NVIDIA A100-SXM4-80GB MIG 3g.40gb", 42, 40 * 2**30, mig=True)
    assert p3.bandwidth == pytest.approx(gpu_peaks("NVIDIA A100-SXM4-80GB").bandwidth / 2)
    # a slice named without its profile is sized from its memory
    p4 = slice_peaks("NVIDIA H100 80GB HBM3", 32, 19 * 2**30, mig=True)
    assert p4.bandwidth == pytest.approx(whole.bandwidth * 2 / 8)
    # a slice whose SM count is unknown gets no peak
    assert slice_peaks("NVIDIA H100 80GB HBM3 MIG 1g.10gb", None, None, mig=True) is None


def test_whole_gpus_and_partitions() -> None:
    assert slice_peaks("NVIDIA H100 80GB HBM3", 132, 80 * 2**30, mig=False) == gpu_peaks("NVIDIA H100 80GB HBM3")
    # more SMs than the row's chip: not this part
    assert slice_peaks("NVIDIA H100 PCIe", 132, 80 * 2**30, mig=False) is None
    # one die of an MI250X: half the CUs and half the memory
    half = slice_peaks("AMD Instinct MI250X", 110, 64 * 2**30, mig=False)
    whole = gpu_peaks("AMD Instinct MI250X")
    assert half.fp32 == pytest.approx(whole.fp32 / 2) and half.bandwidth == pytest.approx(whole.bandwidth / 2)


def test_hardware_imports_without_torch() -> None:
    code = "import sys, gpucnn.hardware, gpucnn.datasheets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fingerprint_changes_with_threads(monkeypatch) -> None:
    hw = detect()
    other = HardwareReport(hw.os, hw.python, hw.torch, hw.blas,
                           hardware.CpuInfo(**{**hw.cpu.__dict__, "torch_threads": hw.cpu.torch_threads + 1}),
                           hw.accelerator)
    assert other.fingerprint() != hw.fingerprint()


def _fake_cuda_device(monkeypatch, name: str, sms: int, memory: int, hip: str | None = None) -> None:
    import types

    props = types.SimpleNamespace(name=name, total_memory=memory, major=9, minor=0, multi_processor_count=sms,
                                  L2_cache_size=0, uuid="5a4b3c2d", gcnArchName="gfx942")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *a, **k: torch.device("cuda"))
    monkeypatch.setattr(torch.accelerator, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *_: props)
    monkeypatch.setattr(torch.version, "hip", hip)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_a_detected_mig_slice_gets_scaled_peaks(monkeypatch) -> None:
    _fake_cuda_device(monkeypatch, "NVIDIA H100 80GB HBM3 MIG 3g.40gb", 60, 40 * 2**30)
    acc = hardware.detect_accelerator()
    whole = gpu_peaks("NVIDIA H100 80GB HBM3")
    assert acc is not None and acc.mig.startswith("enabled")
    assert acc.peaks.fp32 == pytest.approx(whole.fp32 * 60 / 132)
    assert acc.peaks.bandwidth == pytest.approx(whole.bandwidth / 2)


def test_a_detected_rocm_gpu_gets_its_datasheet_row(monkeypatch) -> None:
    _fake_cuda_device(monkeypatch, "AMD Instinct MI300X", 304, 192 * 2**30, hip="6.2")
    acc = hardware.detect_accelerator()
    assert acc is not None and acc.backend == "ROCm" and acc.peaks == gpu_peaks("AMD Instinct MI300X")


def test_a_detected_unknown_gpu_has_no_peaks(monkeypatch) -> None:
    _fake_cuda_device(monkeypatch, "NVIDIA GH200 480GB", 132, 96 * 2**30)
    acc = hardware.detect_accelerator()
    assert acc is not None and acc.peaks is None


def test_every_cpu_peak_is_at_the_clock_the_os_reports_and_a_vms_cores_are_vcpus(monkeypatch) -> None:
    """One basis for every CPU's % of peak (issue 19): the highest clock the OS reports, for a known family too;
    the count says vCPUs on a virtual machine, and bench's margin still allows the family's boost."""
    from gpucnn import bench

    monkeypatch.setattr(hardware, "_cpuinfo_fields", lambda: {**ZEN4, "flags": ZEN4["flags"] + " hypervisor"})
    _no_cpufreq(monkeypatch)
    monkeypatch.setattr(hardware, "usable_cores", lambda: (2, "2 physical cores in this process's CPU affinity"))
    cpu = hardware.detect_cpu()
    assert cpu.max_clock_ghz == pytest.approx(ZEN4_REPORTED_GHZ) and cpu.family == "AMD Zen 4"
    assert cpu.virtual_machine is True and cpu.is_virtual_machine and cpu.core_word == "vCPU"
    assert "2 vCPUs" in cpu.peak_fp32.source
    hw = hardware.HardwareReport("Linux", "3", "2", "MKL", cpu)
    _, _, margin = bench.reference_peaks(hw, "cpu", "float32", False)
    assert margin == pytest.approx(bench.CPU_PEAK_MARGIN * 3.7 / ZEN4_REPORTED_GHZ)


@pytest.mark.parametrize(("model", "recorded", "expected"), [
    ("Intel(R) Xeon(R) Processor", None, True),  # the archived H100/H200 hosts: a masked model, no reading
    ("Intel(R) Xeon(R) Platinum 8480+", None, None),
    ("Intel(R) Xeon(R) Platinum 8480+", False, False),
    ("AMD Ryzen 9 5950X", True, True),
])
def test_a_record_without_a_reading_is_a_vm_only_where_its_model_is_masked(model, recorded, expected) -> None:
    cpu = hardware.CpuInfo(model, None, 16, 16, 2.1, 2.1, None, None, None, "", virtual_machine=recorded)
    assert cpu.is_virtual_machine is expected
    assert cpu.core_word == ("vCPU" if expected else "core")
