"""Page "Advantage 2: parallelization": matmul throughput against size, the size where
the GPU starts to win, CPU thread scaling, and how much work a GPU needs in flight."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.matmul import matmul_sweep, matmul_threads
from gpucnn.hardware import GPU_DATASHEET, detect
from gpucnn.pages.common import accelerator, devices
from gpucnn.render import caption, fmt, fmt_time, line_chart, no_accelerator_note, sweep_series, table
from gpucnn.results import Result, run


def sweep_results() -> list[Result]:
    """fp32 matmul sweeps: the CPU, then the accelerator (inputs already on it)."""
    return [run(matmul_sweep, device=d) for d in devices()]


def with_copy_result() -> Result | None:
    """The accelerator's sweep with the host-to-device copy of both inputs in each call."""
    acc = accelerator()
    return run(matmul_sweep, device=acc, with_copy=True) if acc else None


def crossover(cpu: Sequence[Measurement], other: Sequence[Measurement]) -> int | None:
    """The smallest n from which ``other`` is faster than the CPU at every larger measured n.

    Only sizes measured on both are compared. None when ``other`` never wins, or
    loses again at the largest common size.
    """
    cpu_t = {m.shape[0]: m.median for m in cpu}
    common = sorted(n for n in (m.shape[0] for m in other) if n in cpu_t)
    other_t = {m.shape[0]: m.median for m in other}
    found = None
    for n in reversed(common):
        if other_t[n] < cpu_t[n]:
            found = n
        else:
            break
    return found


def _ticks(ns: Sequence[int]) -> list[tuple[float, str]]:
    return [(n, str(n)) for n in ns]


def _crossovers() -> list[tuple[str, int | None]]:
    acc = accelerator()
    if acc is None:
        return []
    cpu, gpu = (r.data["sweep"].points for r in sweep_results())
    copy = with_copy_result()
    return [("inputs on the GPU", crossover(cpu, gpu)),
            ("with the copy of the inputs", crossover(cpu, copy.data["sweep"].points if copy else ()))]


def _all_results() -> list[Result]:
    copy = with_copy_result()
    return sweep_results() + ([copy] if copy else [])


def _series(y: str) -> list:
    series = [sweep_series(r.hardware.device_label(r.params["device"]), r.data["sweep"], y=y) for r in sweep_results()]
    copy = with_copy_result()
    if copy:
        series.append(sweep_series(f"{copy.hardware.device_label(copy.params['device'])}, + host-to-device copy",
                                   copy.data["sweep"], y=y))
    return series


def _caption(extra: str = "") -> str:
    pts = [m for r in _all_results() for m in r.data["sweep"].points]
    runs = sorted({m.runs for m in pts})
    stops = "; ".join(f"{r.hardware.device_label(r.params['device'])}: {r.data['sweep'].stopped}"
                      for r in _all_results() if r.data["sweep"].stopped)
    return (f"Square fp32 matmul C = A @ B, n x n x n, 2n^3 FLOP per call. Line: median; band: IQR; "
            f"{runs[0]}–{runs[-1]} timed runs per size.{extra}" + (f" Sweep stopped early: {stops}." if stops else ""))


def time_chart() -> str:
    """Median time per matmul against n, with the crossover sizes marked."""
    vlines = [(n, f"GPU wins from n={n} ({what})") for what, n in _crossovers() if n]
    ns = sorted({m.shape[0] for r in _all_results() for m in r.data["sweep"].points})
    out = line_chart(
        _series("time"), title="Matmul time against size", xlabel="n (matrix size, n x n)",
        ylabel="median time per call (s)", caption_text=_caption(" Dashed lines: crossover sizes."),
        results=_all_results(), logx=True, logy=True, vlines=vlines, xticks=_ticks(ns[::2] + ns[-1:]),
    )
    if accelerator() is None:
        out += "\n" + no_accelerator_note("GPU lines and the CPU-GPU crossover sizes")
    return out


def gflops_chart() -> str:
    """GFLOP/s against n, with the peaks (CPU: estimate; GPU: datasheet)."""
    hlines = []
    for r in sweep_results():
        pts = r.data["sweep"].points
        if pts and pts[-1].peak_flops:
            kind = "estimate" if r.params["device"] == "cpu" else "datasheet"
            hlines.append((pts[-1].peak_flops / 1e9, f"{r.hardware.device_label(r.params['device'])} peak "
                                                       f"({kind}) {fmt(pts[-1].peak_flops / 1e9)} GFLOP/s"))
    ns = sorted({m.shape[0] for r in _all_results() for m in r.data["sweep"].points})
    return line_chart(
        _series("gflops"), title="Matmul throughput against size", xlabel="n (matrix size, n x n)",
        ylabel="GFLOP/s (10^9 FLOP per second)",
        caption_text=_caption(" Dotted lines: peak FP32 FLOP/s (CPU: an estimate from cores x clock x FLOP per "
                              "cycle; GPU: datasheet)."),
        results=_all_results(), logx=True, logy=True, hlines=hlines, xticks=_ticks(ns[::2] + ns[-1:]),
    )


def crossover_findings() -> str:
    """Sentences about the smallest and largest sizes, and the crossover."""
    cpu = run(matmul_sweep, device="cpu").data["sweep"].points
    if not cpu:
        return ""
    small, big = cpu[0], cpu[-1]
    text = (
        f"On the CPU, a {small.shape[0]}x{small.shape[0]} matmul takes **{fmt_time(small.median)}** "
        f"(**{fmt(small.gflops, 2)} GFLOP/s**: the call's fixed cost, not arithmetic), while n={big.shape[0]} "
        f"runs at **{fmt(big.gflops)} GFLOP/s**"
        + (f", {fmt(big.pct_peak_flops, 2)} % of the estimated peak" if big.pct_peak_flops else "") + ".\n"
    )
    acc = accelerator()
    if acc is None:
        text += ("\nThis build has no GPU, so there is no crossover to show: the chart has only the CPU line. "
                 "On a GPU build, the GPU line starts above the CPU's at small n (a kernel launch costs "
                 "microseconds) and crosses below it once the work is large enough to fill the GPU.\n")
        return text
    for what, n in _crossovers():
        text += (f"\n- {what}: " + (f"the GPU is faster from **n = {n}** on." if n else
                                    "the GPU is never faster at every larger size measured here."))
    return text + "\n"


def threads_table() -> str:
    """CPU matmul GFLOP/s from 1 thread to all, with speed-up and parallel efficiency."""
    r = run(matmul_threads)
    pts: list[Measurement] = r.data["points"]
    base = pts[0]
    rows = [(m.threads, fmt_time(m.median), f"{fmt(m.gflops)} ({fmt(m.flops / m.p75 / 1e9)}–{fmt(m.flops / m.p25 / 1e9)})",
             f"{base.median / m.median:.2f}x", f"{100 * base.median / m.median / (m.threads / base.threads):.0f} %",
             m.runs) for m in pts]
    n = pts[0].shape[0]
    out = table(["Threads", "Median time", "GFLOP/s, median (IQR)", "Speed-up over 1 thread",
                 "Parallel efficiency", "Runs"], rows)
    out += caption(f"fp32 matmul n={n} on the CPU with torch.set_num_threads(t). Efficiency = speed-up / t.", r)
    return out


@dataclass(frozen=True)
class LittleExample:
    """Little's law applied to a GPU's memory system, from datasheet figures."""

    name: str
    bandwidth: float  # bytes/s, datasheet
    sms: int
    warps_per_sm: int
    latency_s: float  # an assumed round figure, labelled as such

    @property
    def bytes_in_flight(self) -> float:
        return self.bandwidth * self.latency_s

    @property
    def resident_warps(self) -> int:
        return self.sms * self.warps_per_sm

    def loads_per_warp(self, bytes_per_load: int) -> float:
        """Independent loads each resident warp must have outstanding to keep memory busy."""
        return self.bytes_in_flight / self.resident_warps / bytes_per_load


# H100 SXM: 132 SMs (NVIDIA H100 Tensor Core GPU Architecture whitepaper); 64 resident warps
# per SM for compute capability 9.0 (CUDA C++ Programming Guide, "Technical Specifications
# per Compute Capability"); 3.35 TB/s HBM3 (datasheet, as in gpucnn.hardware).
ASSUMED_LATENCY_S = 500e-9
# Maximum resident warps per SM by CUDA compute capability (CUDA C++ Programming Guide).
WARPS_PER_SM = {"7.0": 64, "7.5": 32, "8.0": 64, "8.6": 48, "8.7": 48, "8.9": 48, "9.0": 64}
H100_SXM = LittleExample("H100 SXM", next(p.bandwidth for _k, label, p in GPU_DATASHEET if label == "H100 SXM 80GB"), 132, 64,
                         ASSUMED_LATENCY_S)


def littles_law_table() -> str:
    """Bytes in flight and loads per warp for the H100 SXM example (and this build's GPU if known)."""
    examples = [H100_SXM]
    acc = detect().accelerator
    warps = WARPS_PER_SM.get(acc.capability or "") if acc and acc.backend == "CUDA" else None
    if acc and acc.peaks and acc.multiprocessors and warps:
        examples.append(LittleExample(f"this build: {acc.name}", acc.peaks.bandwidth, acc.multiprocessors, warps,
                                      ASSUMED_LATENCY_S))
    rows = [(e.name, f"{fmt(e.bandwidth / 1e12)} TB/s", fmt_time(e.latency_s), f"{fmt(e.bytes_in_flight / 1e6)} MB",
             f"{e.sms} x {e.warps_per_sm} = {e.resident_warps:,}", fmt(e.loads_per_warp(128), 2),
             fmt(e.loads_per_warp(512), 2)) for e in examples]
    out = table(["GPU", "Bandwidth (datasheet)", "Latency (assumed)", "Bytes in flight = bandwidth x latency",
                 "Resident warps = SMs x warps/SM", "Loads in flight per warp, 4 B/thread",
                 "... 16 B/thread"], rows, align="lrrrrrr")
    out += caption(
        "Not a measurement. Bandwidth: NVIDIA datasheet; SMs: NVIDIA H100 architecture whitepaper (132 on the SXM "
        "part) or, for this build's GPU, torch's device properties; resident warps per SM: CUDA C++ Programming "
        "Guide, by compute capability (64 for 9.0). The 500 ns DRAM latency is a round figure assumed for illustration "
        "(GPU memory latency is several hundred ns). A warp's load of 4 bytes per thread moves 128 bytes; "
        "of 16 bytes per thread (float4), 512 bytes.")
    return out
