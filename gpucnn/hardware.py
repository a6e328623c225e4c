"""What machine is this? An honest hardware report, with reference peaks.

Peaks are either a vendor datasheet figure (with its source) or, for CPUs, an
estimate from a small table of FP32 FLOP per cycle per core, labelled as such.
Hardware that is in neither table has no peak: a guess is never shown as a fact.
Nothing here records the host name, the user or a local path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from gpucnn.datasheets import (
    GPU_MODELS,
    CpuFamily,
    GpuPeaks,
    IsaBound,
    cpu_family,
    gpu_model,
    gpu_peaks,
    isa_bound,
    slice_peaks,
)

# torch is imported inside the functions that need it: the archive and the
# `gpucnn results` commands read reports without paying seconds for torch.

__all__ = [
    "ACCELERATOR_TYPES", "GPU_DATASHEET", "AcceleratorInfo", "CacheLevel", "CpuFamily", "CpuInfo", "GpuPeaks",
    "HardwareReport", "Peak", "cpu_family", "detect", "gpu_model", "gpu_peaks", "slice_peaks",
]

ACCELERATOR_TYPES = ("cuda", "mps", "xpu")

# (names, label, whole-chip peaks) for each datasheet row, for the pages' tables.
GPU_DATASHEET: list[tuple[tuple[str, ...], str, GpuPeaks]] = [(m.names, m.label, m.peaks) for m in GPU_MODELS]


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
    # Added later, so with defaults: records written before them still load.
    usable_cores: int | None = None  # physical cores this process may run on (affinity, cgroup quota)
    isa: str | None = None  # the widest FP32 vector ISA the flags show, e.g. "AVX-512"
    peak_bf16: Peak | None = None
    virtual_machine: bool | None = None  # the x86 ``hypervisor`` flag; None where the record has no reading

    @property
    def is_virtual_machine(self) -> bool | None:
        """Whether this CPU is a virtual machine's, so that its cores are vCPUs.

        The recorded reading where there is one; else True where the model name is one a hypervisor gives a
        masked CPU (a brand with no model number: ``Intel(R) Xeon(R) Processor``, the H100/H200 hosts'), and
        None (not known) otherwise.
        """
        if self.virtual_machine is not None:
            return self.virtual_machine
        return True if MASKED_MODEL.fullmatch(self.model.strip()) else None

    @property
    def core_word(self) -> str:
        """``vCPU`` where the cores counted are a virtual machine's, else ``core``."""
        return "vCPU" if self.is_virtual_machine else "core"


# Model names a hypervisor shows for a CPU whose model it masks: a brand, no model number.
MASKED_MODEL = re.compile(r"Intel\(R\) Xeon\(R\) Processor|AMD EPYC( Processor)?|QEMU Virtual CPU.*|"
                          r"Common KVM processor")


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
        for key in ("peak_fp32", "peak_bf16"):
            cpu[key] = Peak(**cpu[key]) if cpu.get(key) else None
            if cpu[key] and cpu[key].source.startswith(_OLD_CPU_PEAK_WORDING):
                # An archived record names its estimate as a bound; pages print the current wording.
                cpu[key] = replace(cpu[key], source=_reworded(cpu[key].source))
        if isinstance(cpu.get("peak_note"), str):
            cpu["peak_note"] = _reworded(cpu["peak_note"])
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


def _reworded(text: str) -> str:
    """A CPU peak's description in the current wording (records before it called the estimate a bound)."""
    return CPU_PEAK_WORDING + text.removeprefix(_OLD_CPU_PEAK_WORDING) if text.startswith(_OLD_CPU_PEAK_WORDING) \
        else text


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


def _cpu_flags(fields: dict[str, str]) -> set[str]:
    """ISA flags of the first CPU: x86 ``flags`` or Arm ``Features``; Apple silicon (no /proc) has NEON."""
    text = fields.get("flags") or fields.get("Features")
    if text:
        return set(text.split())
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return {"asimd"}
    return set()


def _sve_vector_bits() -> int | None:
    """The SVE vector length the kernel hands a process, in bits (None without SVE)."""
    text = _read("/proc/sys/abi/sve_default_vector_length")
    return int(text) * 8 if text and text.strip().isdigit() else None


def physical_cores(cpus: Iterable[int], base: Path = Path("/sys/devices/system/cpu")) -> int:
    """How many physical cores the logical CPUs ``cpus`` are on.

    SMT siblings share one core's FMA units, so they count once. Where sysfs has
    no topology, every logical CPU counts as a core (a bound may be high, not low).
    """
    cores: set[str] = set()
    for cpu in cpus:
        topo = base / f"cpu{cpu}" / "topology"
        siblings = _read(str(topo / "core_cpus_list")) or _read(str(topo / "thread_siblings_list"))
        cores.add(siblings.strip() if siblings else f"cpu{cpu}")
    return len(cores)


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"), self_cgroup: str | None = None) -> float | None:
    """CPUs' worth of time the process's cgroup may use (``cpu.max`` quota / period), or None if unlimited.

    Checks the process's own cgroup (cgroup v2) and each parent up to the root,
    and the cgroup v1 ``cpu.cfs_quota_us``; the tightest limit wins.
    """
    if self_cgroup is None:
        line = next((ln for ln in (_read("/proc/self/cgroup") or "").splitlines() if ln.startswith("0::")), "0::/")
        self_cgroup = line[3:] or "/"
    limits = []
    folder = root / self_cgroup.strip("/")
    for here in [folder, *folder.parents]:
        text = _read(str(here / "cpu.max"))
        if text and len(parts := text.split()) == 2 and parts[0] != "max":
            limits.append(int(parts[0]) / int(parts[1]))
        if here == root:
            break
    quota, period = _read(str(root / "cpu" / "cpu.cfs_quota_us")), _read(str(root / "cpu" / "cpu.cfs_period_us"))
    if quota and period and quota.strip().lstrip("-").isdigit() and int(quota) > 0 and int(period) > 0:
        limits.append(int(quota) / int(period))
    return min(limits) if limits else None


def usable_cores() -> tuple[int, str]:
    """Physical cores this process may run on, and how that was counted.

    A quota of 1.5 CPUs can keep 2 cores busy at once, so it is rounded up.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = list(range(os.cpu_count() or 1))
    cores = physical_cores(cpus)
    how = f"{cores} physical cores in this process's CPU affinity"
    limit = cgroup_cpu_limit()
    if limit is not None and math.ceil(limit) < cores:
        cores = math.ceil(limit)
        how = f"{cores} cores (the cgroup CPU quota, {limit:g} CPUs)"
    return cores, how


def detect_cpu() -> CpuInfo:
    import torch

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
    # Every CPU's peak on one basis: the highest clock the OS reports (sysfs's maximum, or /proc/cpuinfo's,
    # which a virtual machine fixes at its nominal clock). Not a family's top boost: the archived H100/H200
    # hosts' family is not known, so their peaks could not be on that basis. Cores may run above this clock,
    # so a result may pass 100 % of the peak (bench's margin allows for it).
    clocks = [c for c in (reported, sysfs_ghz) if c]
    max_clock = max(clocks) if clocks else None
    flags = _cpu_flags(fields)
    bound = isa_bound(flags, _sve_vector_bits(), row)
    vm = ("hypervisor" in flags) if fields.get("flags") else None
    cores, how = usable_cores()
    if vm:
        how = how.replace("physical cores", "vCPUs")
    peak_fp32 = peak_bf16 = None
    if bound is None:
        note = "no peak: the CPU's vector instruction set is not known to gpucnn"
    elif not max_clock:
        note = "no peak: the CPU's clock is not known"
    else:
        peak_fp32, peak_bf16 = cpu_peaks(bound, cores, how, max_clock)
        note = peak_fp32.source
    return CpuInfo(
        model=model, family=row.name if row else None, logical_cores=logical,
        torch_threads=torch.get_num_threads(), reported_clock_ghz=reported, max_clock_ghz=max_clock,
        ram_bytes=_ram_bytes(), llc_bytes=_llc_bytes(), peak_fp32=peak_fp32, peak_note=note,
        usable_cores=cores, isa=bound.isa if bound else None, peak_bf16=peak_bf16, virtual_machine=vm,
    )


# What a CPU peak is called on the pages. Not an upper bound: the clock is the highest the machine
# reports, and a virtual machine may report less than its cores run at. bench.py keeps its own margin.
CPU_PEAK_WORDING = "estimate at the highest known clock"
_OLD_CPU_PEAK_WORDING = "estimated upper bound"  # records written before the wording changed


def cpu_peaks(bound: IsaBound, cores: int, how: str, clock_ghz: float) -> tuple[Peak, Peak]:
    """FP32 and bf16 peak estimates: cores x the highest clock the OS reports x FLOP per cycle."""
    common = f"{how} x {clock_ghz:.2f} GHz (highest clock the OS reports) x "
    fp32 = Peak(cores * clock_ghz * 1e9 * bound.fp32_flop_per_cycle, "FLOP/s",
                f"{CPU_PEAK_WORDING}: {common}{bound.fp32_flop_per_cycle} FP32 FLOP/cycle "
                f"({bound.isa}: {bound.note})", estimate=True)
    bf16 = Peak(cores * clock_ghz * 1e9 * bound.bf16_flop_per_cycle, "FLOP/s",
                f"{CPU_PEAK_WORDING}: {common}{bound.bf16_flop_per_cycle} bf16 FLOP/cycle ({bound.bf16_unit})",
                estimate=True)
    return fp32, bf16


_BLAS_NAMES = {"mkl": "Intel MKL", "open": "OpenBLAS", "openblas": "OpenBLAS", "accelerate": "Apple Accelerate",
               "veclib": "Apple Accelerate", "blis": "BLIS", "flexi": "FlexiBLAS", "armpl": "Arm Performance Libraries",
               "atlas": "ATLAS", "eigen": "Eigen", "generic": "reference BLAS", "ssl2": "Fujitsu SSL2"}


def blas_name(config: str, mkl_available: bool) -> str:
    """The BLAS torch was built with, from ``torch.__config__.show()``'s ``BLAS_INFO``.

    USE_MKLDNN (oneDNN) says nothing about the BLAS: OpenBLAS and Accelerate
    builds have it too. Without BLAS_INFO, MKL is named only if torch has it.
    """
    m = re.search(r"\bBLAS_INFO=([A-Za-z0-9_]+)", config)
    if m:
        return _BLAS_NAMES.get(m.group(1).lower(), m.group(1))
    return "Intel MKL" if mkl_available else "unknown"


def _blas() -> str:
    import torch

    return blas_name(torch.__config__.show(), torch.backends.mkl.is_available())


def accelerator_type() -> str | None:
    """The torch device type of the present accelerator, or None."""
    import torch

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
    import torch

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
    import torch

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
            mig=mig,
            # Datasheet peaks, scaled to a MIG slice or a partition (one die of an MI250X).
            peaks=slice_peaks(name, props.multi_processor_count, props.total_memory, mig is not None and "enabled" in mig),
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
    import torch

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
    import torch

    tf32 = torch.backends.cuda.matmul.allow_tf32 if torch.cuda.is_available() else None
    return _cached_report(torch.get_num_threads(), tf32)


def free_memory_bytes(device: str) -> int | None:
    """Memory that a sweep may still allocate on a device, or None if unknown."""
    import torch

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
