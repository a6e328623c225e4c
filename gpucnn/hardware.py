"""What machine is this? An honest hardware report, with reference peaks.

Peaks are either a vendor datasheet figure (with its source) or, for CPUs, an
estimate from a small table of FP32 FLOP per cycle per core, labelled as such.
Hardware that is in neither table has no peak: a guess is never shown as a fact.
Nothing here records the host name, the user or a local path.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

ACCELERATOR_TYPES = ("cuda", "mps", "xpu")


@dataclass(frozen=True)
class CpuFamily:
    """One row of the FP32 FLOP-per-cycle table.

    ``flop_per_cycle`` counts FP32 FLOP per cycle per core from the FMA units the
    core really has (an FMA is 2 FLOP), not from the instruction-set flags:
    Zen 4 reports avx512f but executes 512-bit ops as two 256-bit halves.
    """

    name: str
    flop_per_cycle: int
    max_boost_ghz: float
    source: str


# Keyed on (vendor, family, model range). Sources: the vendors' optimization
# manuals / microarchitecture guides (AMD Software Optimization Guide for
# Zen 3/Zen 4; Intel 64 and IA-32 Optimization Reference Manual), and the top
# boost clock of the family's server parts from the vendors' product pages.
_AMD_FAMILIES: list[tuple[int, range, CpuFamily]] = [
    (0x17, range(0x30, 0x80), CpuFamily("AMD Zen 2", 32, 3.4, "2 x 256-bit FMA pipes (AMD Zen 2 optimization guide)")),
    (0x19, range(0x00, 0x10), CpuFamily("AMD Zen 3", 32, 4.1, "2 x 256-bit FMA pipes (AMD Zen 3 optimization guide)")),
    (0x19, range(0x20, 0x60), CpuFamily("AMD Zen 3", 32, 4.1, "2 x 256-bit FMA pipes (AMD Zen 3 optimization guide)")),
    (0x19, range(0x10, 0x20), CpuFamily("AMD Zen 4", 32, 3.7, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
    (0x19, range(0x60, 0x80), CpuFamily("AMD Zen 4", 32, 5.1, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
    (0x19, range(0xA0, 0xB0), CpuFamily("AMD Zen 4", 32, 3.7, "AVX-512 executed as 2 x 256-bit FMA (AMD Zen 4 optimization guide)")),
]
_INTEL_FAMILIES: list[tuple[int, range, CpuFamily]] = [
    (6, range(0x55, 0x56), CpuFamily("Intel Skylake/Cascade Lake SP", 64, 3.9, "2 x 512-bit FMA units (Xeon Gold/Platinum; Intel optimization manual)")),
    (6, range(0x6A, 0x6B), CpuFamily("Intel Ice Lake SP", 64, 3.7, "2 x 512-bit FMA units (Intel optimization manual)")),
    (6, range(0x8F, 0x90), CpuFamily("Intel Sapphire Rapids", 64, 4.0, "2 x 512-bit FMA units; AMX tiles can outrun this for bf16 (Intel optimization manual)")),
]


@dataclass(frozen=True)
class Peak:
    """A reference peak: a datasheet figure or a labelled estimate."""

    value: float
    unit: str
    source: str
    estimate: bool = False


@dataclass(frozen=True)
class CpuInfo:
    """The host CPU as torch sees it."""

    model: str
    family: str | None
    logical_cores: int
    torch_threads: int
    reported_clock_ghz: float | None
    max_clock_ghz: float | None
    ram_bytes: int | None
    llc_bytes: int | None
    peak_fp32: Peak | None
    peak_note: str


@dataclass(frozen=True)
class GpuPeaks:
    """Datasheet peaks of one GPU model, dense (no sparsity)."""

    fp32: float
    tf32: float | None
    bf16: float | None
    bandwidth: float
    source: str


@dataclass(frozen=True)
class AcceleratorInfo:
    """One kind of accelerator, detected through ``torch.accelerator``."""

    device_type: str  # the torch device type: cuda (also ROCm), mps or xpu
    backend: str  # CUDA, ROCm, MPS or XPU
    name: str
    count: int
    memory_bytes: int | None
    capability: str | None
    multiprocessors: int | None
    l2_bytes: int | None
    driver: str | None
    runtime: str | None
    cudnn: str | None
    tf32_matmul: bool | None
    mig: str | None
    peaks: GpuPeaks | None


@dataclass(frozen=True)
class HardwareReport:
    """Everything a reader needs to judge a figure: the machine and the software."""

    os: str
    python: str
    torch: str
    blas: str
    cpu: CpuInfo
    accelerator: AcceleratorInfo | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareReport:
        cpu = dict(data["cpu"])
        cpu["peak_fp32"] = Peak(**cpu["peak_fp32"]) if cpu.get("peak_fp32") else None
        acc = data.get("accelerator")
        if acc:
            acc = dict(acc)
            acc["peaks"] = GpuPeaks(**acc["peaks"]) if acc.get("peaks") else None
            acc = AcceleratorInfo(**acc)
        return cls(
            os=data["os"], python=data["python"], torch=data["torch"], blas=data["blas"],
            cpu=CpuInfo(**cpu), accelerator=acc,
        )

    @property
    def devices(self) -> list[str]:
        """Device types this build measures: always ``cpu``, then the accelerator."""
        return ["cpu"] + ([self.accelerator.device_type] if self.accelerator else [])

    def device_label(self, device: str) -> str:
        """A short human name for a device type, e.g. ``CPU: AMD EPYC (2 threads)``."""
        if device == "cpu":
            return f"CPU: {self.cpu.model} ({self.cpu.torch_threads} threads)"
        if self.accelerator and device == self.accelerator.device_type:
            return f"{self.accelerator.backend}: {self.accelerator.name}"
        return device

    def fingerprint(self) -> str:
        """A short hash of what decides a measurement: the hardware and torch.

        Thread count and TF32 mode are included because they change results.
        """
        acc = self.accelerator
        key = {
            "cpu": [self.cpu.model, self.cpu.logical_cores, self.cpu.torch_threads, self.cpu.ram_bytes],
            "acc": [acc.name, acc.count, acc.memory_bytes, acc.driver, acc.runtime, acc.tf32_matmul] if acc else None,
            "torch": self.torch,
            "blas": self.blas,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


# Datasheet peaks in FLOP/s and bytes/s, dense. Matched by substrings of the
# device name, most specific first.
_TERA = 1e12
_H100_SRC = "NVIDIA H100 datasheet (as tabulated in stas00/ml-engineering, compute/accelerator)"
GPU_DATASHEET: list[tuple[tuple[str, ...], str, GpuPeaks]] = [
    (("H100", "PCIE"), "H100 PCIe 80GB", GpuPeaks(51 * _TERA, 378 * _TERA, 756 * _TERA, 2.0 * _TERA, _H100_SRC)),
    (("H100", "NVL"), "H100 NVL 94GB", GpuPeaks(60 * _TERA, 418 * _TERA, 835 * _TERA, 3.9 * _TERA, _H100_SRC)),
    (("H100",), "H100 SXM 80GB", GpuPeaks(67 * _TERA, 494.5 * _TERA, 989 * _TERA, 3.35 * _TERA, _H100_SRC)),
    (("H200",), "H200 141GB", GpuPeaks(67 * _TERA, 494.5 * _TERA, 989 * _TERA, 4.8 * _TERA, "NVIDIA H200 datasheet (as tabulated in stas00/ml-engineering)")),
    (("A100", "80GB"), "A100 SXM 80GB", GpuPeaks(19.5 * _TERA, 156 * _TERA, 312 * _TERA, 2.039 * _TERA, "NVIDIA A100 datasheet")),
    (("A100",), "A100 40GB", GpuPeaks(19.5 * _TERA, 156 * _TERA, 312 * _TERA, 1.555 * _TERA, "NVIDIA A100 datasheet")),
    (("L4",), "L4", GpuPeaks(30.3 * _TERA, 60 * _TERA, 121 * _TERA, 0.3 * _TERA, "NVIDIA L4 datasheet (dense = half the sparse figure)")),
    (("T4",), "T4", GpuPeaks(8.1 * _TERA, None, None, 0.32 * _TERA, "NVIDIA T4 datasheet (Turing: no TF32, no BF16)")),
    (("4090",), "GeForce RTX 4090", GpuPeaks(82.6 * _TERA, 82.6 * _TERA, 165.2 * _TERA, 1.008 * _TERA, "NVIDIA Ada Lovelace architecture whitepaper (FP32 accumulate)")),
]


def gpu_peaks(name: str) -> GpuPeaks | None:
    """Datasheet peaks for a GPU name, or None when it is not in the table."""
    upper = name.upper()
    for needles, _label, peaks in GPU_DATASHEET:
        if all(n in upper for n in needles):
            return peaks
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _cpuinfo_fields() -> dict[str, str]:
    text = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_family(vendor: str, family: int, model: int) -> CpuFamily | None:
    """Look a CPU up in the FLOP-per-cycle table; None when it is not there."""
    table = _AMD_FAMILIES if vendor == "AuthenticAMD" else _INTEL_FAMILIES if vendor == "GenuineIntel" else []
    for fam, models, row in table:
        if fam == family and model in models:
            return row
    return None


def _ram_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_ram_bytes() -> int | None:
    """Memory the OS can still hand out (MemAvailable), or None if unknown."""
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _llc_bytes() -> int | None:
    """Size of the largest cache of cpu0, from sysfs."""
    best = None
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")) if base.exists() else []:
        size = _read(str(index / "size"))
        if size and (m := re.match(r"(\d+)([KMG]?)", size.strip())):
            value = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]
            best = max(best or 0, value)
    return best


@dataclass(frozen=True)
class CacheLevel:
    """One data (or unified) cache of cpu0, as sysfs describes it."""

    level: int
    size_bytes: int
    shared_by: int  # logical CPUs that share this cache

    @property
    def name(self) -> str:
        return f"L{self.level}"


def _count_cpus(cpu_list: str) -> int:
    """Count the CPUs in a sysfs list such as ``0-3,8``."""
    count = 0
    for part in cpu_list.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi) - int(lo) + 1
        elif part:
            count += 1
    return count


def cpu_caches(base: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> list[CacheLevel]:
    """The data and unified caches of cpu0, smallest level first (empty if sysfs has none).

    Instruction caches are left out: they hold code, not the data a copy moves.
    """
    found: dict[int, CacheLevel] = {}
    for index in sorted(base.glob("index*")) if base.exists() else []:
        kind, level, size = (_read(str(index / f)) for f in ("type", "level", "size"))
        if not (kind and level and size) or kind.strip() == "Instruction":
            continue
        m = re.match(r"(\d+)([KMG]?)", size.strip())
        if not m or not level.strip().isdigit():
            continue
        value = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]
        shared = _read(str(index / "shared_cpu_list"))
        found[int(level)] = CacheLevel(int(level), value, _count_cpus(shared) if shared else 1)
    return [found[k] for k in sorted(found)]


def detect_cpu() -> CpuInfo:
    fields = _cpuinfo_fields()
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    logical = os.cpu_count() or 1
    reported = float(fields["cpu MHz"]) / 1000 if "cpu MHz" in fields else None
    sysfs_max = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    sysfs_ghz = int(sysfs_max) / 1e6 if sysfs_max and sysfs_max.strip().isdigit() else None
    row = None
    if "cpu family" in fields and "model" in fields:
        try:
            row = cpu_family(fields.get("vendor_id", ""), int(fields["cpu family"]), int(fields["model"]))
        except ValueError:
            row = None
    # The highest clock the CPU can run at: a virtual machine often reports only
    # its base clock, and runs above it, so take the family's top boost too.
    clocks = [c for c in (reported, sysfs_ghz, row.max_boost_ghz if row else None) if c]
    max_clock = max(clocks) if clocks else None
    peak = None
    if row and max_clock:
        value = logical * max_clock * 1e9 * row.flop_per_cycle
        peak = Peak(
            value, "FLOP/s",
            f"estimate: {logical} cores x {max_clock:.2f} GHz (highest known clock) x "
            f"{row.flop_per_cycle} FP32 FLOP/cycle ({row.name}: {row.source})",
            estimate=True,
        )
        note = peak.source
    else:
        note = "no peak: this CPU family is not in gpucnn's FLOP-per-cycle table"
    return CpuInfo(
        model=model, family=row.name if row else None, logical_cores=logical,
        torch_threads=torch.get_num_threads(), reported_clock_ghz=reported, max_clock_ghz=max_clock,
        ram_bytes=_ram_bytes(), llc_bytes=_llc_bytes(), peak_fp32=peak, peak_note=note,
    )


def _blas() -> str:
    config = torch.__config__.show()
    for name in ("MKL", "OpenBLAS", "Accelerate", "BLIS"):
        if re.search(rf"BLAS_INFO={name.lower()}|USE_{name.upper()}=ON|{name}", config, re.IGNORECASE):
            return {"MKL": "Intel MKL", "OpenBLAS": "OpenBLAS", "Accelerate": "Apple Accelerate", "BLIS": "BLIS"}[name]
    return "unknown"


def accelerator_type() -> str | None:
    """The torch device type of the present accelerator, or None."""
    if not hasattr(torch, "accelerator") or not torch.accelerator.is_available():
        return None
    acc = torch.accelerator.current_accelerator()
    return acc.type if acc is not None and acc.type in ACCELERATOR_TYPES else None


def _is_mig_slice(name: str, props: Any) -> bool:
    """Whether the CUDA device is a MIG slice.

    torch's ``props.uuid`` prints as a bare UUID (no "GPU-"/"MIG-" prefix), so
    it cannot tell; a MIG instance is named like "NVIDIA H100 80GB HBM3 MIG
    1g.10gb", and is selected by a "MIG-..." entry in CUDA_VISIBLE_DEVICES.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return (re.search(r"\bMIG\b", name) is not None or str(getattr(props, "uuid", "")).startswith("MIG-")
            or any(v.strip().startswith("MIG-") for v in visible.split(",")))


def _nvidia_driver() -> str | None:
    """The NVIDIA kernel driver version (e.g. "550.54.15"), with the CUDA version it supports.

    torch has no public query (there is no ``torch.cuda.driver_version``): the
    driver's version is in /proc on Linux, and ``torch._C._cuda_getDriverVersion``
    (CUDA builds only, private) gives the CUDA driver API version, e.g. 12040.
    """
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", _read("/proc/driver/nvidia/version") or "")
    kernel = m.group(1) if m else None
    api = None
    query = getattr(torch._C, "_cuda_getDriverVersion", None)
    if query is not None:
        try:
            v = int(query())
            api = f"CUDA {v // 1000}.{v % 1000 // 10}" if v > 0 else None
        except Exception:  # a failed driver query is not worth failing a report
            api = None
    if kernel and api:
        return f"{kernel} ({api})"
    return kernel or api


def detect_accelerator() -> AcceleratorInfo | None:
    kind = accelerator_type()
    if kind is None:
        return None
    count = torch.accelerator.device_count()
    if kind == "cuda":
        props = torch.cuda.get_device_properties(0)
        rocm = torch.version.hip is not None
        name = props.name
        mig = None
        if not rocm:
            mig = "enabled (this is a MIG slice)" if _is_mig_slice(name, props) else "not in use"
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        driver = None if rocm else _nvidia_driver()
        return AcceleratorInfo(
            device_type="cuda", backend="ROCm" if rocm else "CUDA", name=name, count=count,
            memory_bytes=props.total_memory,
            capability=getattr(props, "gcnArchName", None) if rocm else f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
            l2_bytes=getattr(props, "L2_cache_size", None) or None,
            driver=driver, runtime=torch.version.hip if rocm else torch.version.cuda,
            cudnn=str(cudnn) if cudnn else None,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            mig=mig, peaks=None if rocm else gpu_peaks(name),
        )
    if kind == "xpu":
        props = torch.xpu.get_device_properties(0)
        return AcceleratorInfo(
            device_type="xpu", backend="XPU", name=props.name, count=count,
            memory_bytes=getattr(props, "total_memory", None), capability=None,
            multiprocessors=getattr(props, "gpu_subslice_count", None), l2_bytes=None,
            driver=getattr(props, "driver_version", None), runtime=None, cudnn=None,
            tf32_matmul=None, mig=None, peaks=None,
        )
    # MPS: Apple GPUs share the system memory; torch reports the recommended cap.
    memory = torch.mps.recommended_max_memory() if hasattr(torch.mps, "recommended_max_memory") else None
    return AcceleratorInfo(
        device_type="mps", backend="MPS", name=f"Apple GPU ({platform.machine()})", count=count,
        memory_bytes=memory, capability=None, multiprocessors=None, l2_bytes=None, driver=None,
        runtime=platform.mac_ver()[0] or None, cudnn=None, tf32_matmul=None, mig=None, peaks=None,
    )


@lru_cache(maxsize=1)
def _cached_report(threads: int, tf32: bool | None) -> HardwareReport:
    return HardwareReport(
        os=f"{platform.system()} {platform.release().split('-')[0]}",
        python=platform.python_version(),
        torch=torch.__version__,
        blas=_blas(),
        cpu=detect_cpu(),
        accelerator=detect_accelerator(),
    )


def detect() -> HardwareReport:
    """The hardware report of this machine (cached; refreshed if threads or TF32 change)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32 if torch.cuda.is_available() else None
    return _cached_report(torch.get_num_threads(), tf32)


def free_memory_bytes(device: str) -> int | None:
    """Memory that a sweep may still allocate on a device, or None if unknown."""
    if device == "cpu":
        return available_ram_bytes()
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    if device == "xpu" and hasattr(torch.xpu, "mem_get_info"):
        return torch.xpu.mem_get_info()[0]
    if device == "mps" and hasattr(torch.mps, "recommended_max_memory"):
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    return None


def format_bytes(n: float | None) -> str:
    """Binary units for memory sizes (KiB, MiB, GiB)."""
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
