"""Page "Advantage 2: parallelization": matmul throughput against size, the size where
the GPU starts to win, CPU thread scaling, and how much work a GPU needs in flight."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.datasheets import gpu_model, gpu_peaks
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep, matmul_threads
from gpucnn.experiments.nn import mlp_time_split
from gpucnn.figures import SAME_SPEED, Pace, call_cost, told_apart
from gpucnn.render import (
    Series,
    caption,
    figures_table,
    fmt,
    fmt_time,
    legible,
    line_chart,
    origin_style,
    reference_note,
    series_table,
    source_series,
    sweep_series,
    table,
)
from gpucnn.results import run
from gpucnn.sources import Pair, Source, accelerators, no_gpu_note, note, pairs, short_model, sibling, sources


def sweep_sources(hosts: bool = False) -> list[Source]:
    """fp32 matmul sweeps: this build's CPU and accelerator, then archived accelerators (and their host CPUs)."""
    return sources(matmul_sweep, hosts=hosts)


def with_copy_sources() -> list[Source]:
    """Each accelerator's sweep with the host-to-device copy of both inputs inside every call."""
    return accelerators(matmul_sweep, with_copy=True)


def judge(cpu: Measurement, other: Measurement) -> str:
    """"other" or "cpu" where that one is clearly faster at one size, "equal" where the two cannot be told apart.

    They cannot where their IQRs overlap or their medians are within SAME_SPEED of each other (run-to-run
    noise): a 0.6 % lead inside overlapping IQRs is a tie, not a win.
    """
    if not told_apart(cpu, other):
        return "equal"
    return "other" if cpu.median > other.median else "cpu"


@dataclass(frozen=True)
class Overtake:
    """Where ``other`` overtakes the CPU for good, and the sizes where the two are about equal.

    ``faster_from``: the smallest n from which ``other`` is clearly faster at every larger common n (None when
    it is not clearly faster at the largest). ``equal``: the common sizes just below ``faster_from`` (or, with
    no win, at the largest sizes) where the two are about equal, smallest first.
    """

    faster_from: int | None
    equal: tuple[int, ...] = ()


def overtake(cpu: Sequence[Measurement], other: Sequence[Measurement]) -> Overtake:
    """Walk down from the largest size both measured: first the sizes ``other`` clearly wins, then the ties."""
    cpu_at = {m.shape[0]: m for m in cpu}
    pairs_ = [(n, cpu_at[n], m) for m in other if (n := m.shape[0]) in cpu_at]
    pairs_.sort(key=lambda x: x[0], reverse=True)
    i, found = 0, None
    while i < len(pairs_) and judge(pairs_[i][1], pairs_[i][2]) == "other":
        found = pairs_[i][0]
        i += 1
    equal = []
    while i < len(pairs_) and judge(pairs_[i][1], pairs_[i][2]) == "equal":
        equal.append(pairs_[i][0])
        i += 1
    return Overtake(found, tuple(reversed(equal)))


def crossover(cpu: Sequence[Measurement], other: Sequence[Measurement]) -> int | None:
    """The smallest n from which ``other`` is clearly faster than the CPU at every larger measured n.

    Only sizes measured on both are compared; a size where the two are about equal (``judge``) is no win.
    None when ``other`` never wins, or does not win at the largest common size.
    """
    return overtake(cpu, other).faster_from


def _sizes(ns: Sequence[int]) -> str:
    return f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]} to {ns[-1]}"


def overtake_text(o: Overtake | None) -> str:
    """A table cell: "about equal at n = 128; faster from n = 256", "from n = 256", or why there is none."""
    if o is None:
        return "not in this source"
    if o.faster_from is None:
        if o.equal:
            return f"about equal from {_sizes(o.equal)}, the largest measured; never clearly faster"
        return "never at every larger size measured"
    if o.equal:
        return f"about equal at {_sizes(o.equal)}; faster from n = {o.faster_from}"
    return f"from n = {o.faster_from}"


def _points(src: Source) -> Sequence[Measurement]:
    return src.result.data["sweep"].points


def _ticks(ns: Sequence[int]) -> list[tuple[float, str]]:
    """Every other size, counted back from the largest: the largest is labelled, and no two neighbours are
    (on a log axis, 2048 and 4096 side by side overlap)."""
    return [(n, str(n)) for n in ns[::-2][::-1]]


@dataclass(frozen=True)
class Crossover:
    """Where one accelerator overtakes the CPU of the same machine, within one source."""

    pair: Pair
    inputs_on_gpu: Overtake
    with_copy: Overtake | None  # None: the source has no sweep with the copy


def crossovers() -> list[Crossover]:
    """One per accelerator shown: this build's, and each archived one against its own record's CPU."""
    copies = {s.origin: s for s in with_copy_sources()}
    out = []
    for p in pairs(matmul_sweep):
        copy = copies.get(p.gpu.origin)
        out.append(Crossover(p, overtake(_points(p.cpu), _points(p.gpu)),
                             overtake(_points(p.cpu), _points(copy)) if copy else None))
    return out


def _caption(found: Sequence[Source], extra: str = "") -> str:
    pts = [m for s in found for m in _points(s)]
    runs = sorted({m.runs for m in pts}) or [0]
    stops = "; ".join(f"{s.label}: {s.result.data['sweep'].stopped}" for s in found if s.result.data["sweep"].stopped)
    return (f"Square fp32 matmul C = A @ B (TF32 off), n x n x n, 2n^3 FLOP per call; back-to-back time per call. "
            f"Line: median; band: IQR; {runs[0]}–{runs[-1]} timed runs per size. Solid and dash-dot lines: measured "
            f"in this build; dashed lines with hollow markers: archived.{extra}"
            + (f" Sweep stopped early: {stops}." if stops else ""))


def time_chart() -> str:
    """Median time per matmul against n: every device, each archived GPU beside its own host CPU."""
    found = sweep_sources(hosts=True)
    ns = sorted({m.shape[0] for s in found for m in _points(s)})
    series = source_series(found, lambda s: s.result.data["sweep"], y="time")
    chart = line_chart(
        legible(series), title="Matmul time against size",
        xlabel="n (matrix size, n x n)", ylabel="median time per call (s)",
        caption_text=_caption(found, " A GPU and its own host CPU share a colour; each line has its own "
                                     "marker shape."),
        results=found, logx=True, logy=True,
        xticks=_ticks(ns) if ns else (),
    )
    out = chart + figures_table(chart, series_table(series, x="n", y="Time per call", y_text=fmt_time))
    return out + no_gpu_note(found, "GPU lines and the CPU-GPU crossover sizes")


def gflops_chart() -> str:
    """GFLOP/s against n for this build's CPU and every accelerator, with the peaks."""
    found = sweep_sources()
    hlines = []
    for s in found:
        pts = _points(s)
        if pts and pts[-1].peak_flops and not s.archived:
            kind = "estimate" if s.is_cpu else "datasheet"
            hlines.append((pts[-1].peak_flops / 1e9, f"{s.model} peak ({kind}) {fmt(pts[-1].peak_flops / 1e9)} GFLOP/s"))
    ns = sorted({m.shape[0] for s in found for m in _points(s)})
    series = source_series(found, lambda s: s.result.data["sweep"], y="gflops")
    chart = line_chart(
        legible(series), title="Matmul throughput against size",
        xlabel="n (matrix size, n x n)", ylabel="GFLOP/s (10^9 FLOP per second)",
        caption_text=_caption(found, " Dotted lines: peak FP32 FLOP/s of this build's devices (CPU: an estimate "
                                     "from cores x clock x FLOP per cycle; GPU: datasheet)."),
        results=found, logx=True, logy=True, hlines=hlines,
        xticks=_ticks(ns) if ns else (),
    )
    return chart + figures_table(chart, series_table(series, x="n", y="GFLOP/s"), reference_note(hlines=hlines))


def copy_cost_chart() -> str:
    """Each accelerator with and without copying the inputs from host memory inside every call."""
    found = accelerators(matmul_sweep)
    copies = {s.origin: s for s in with_copy_sources()}
    if not found:
        return no_gpu_note(found, "GPU lines with and without the host-to-device copy")
    series = []
    origins = list(dict.fromkeys(s.origin for s in found))
    for s in found:
        style = origin_style(origins.index(s.origin), False)
        series.append(Series(**{**sweep_series(s.label, _points(s), y="time", source=s.origin).__dict__,
                                "style": style}))
        if s.origin in copies:
            c = copies[s.origin]
            series.append(Series(**{**sweep_series(f"{c.label} + host-to-device copy", _points(c), y="time",
                                                   source=c.origin).__dict__,
                                    "style": {**style, "marker": "^", "linestyle": ":"}}))
    shown = found + [copies[s.origin] for s in found if s.origin in copies]
    ns = sorted({m.shape[0] for s in shown for m in _points(s)})
    chart = line_chart(
        legible(series), title="GPU matmul time with and without copying its inputs", xlabel="n (matrix size, n x n)",
        ylabel="median time per call (s)",
        caption_text=_caption(shown, " Triangles: both inputs copied from host memory to the GPU inside every call."),
        results=shown, logx=True, logy=True,
        xticks=_ticks(ns) if ns else (),
    )
    return chart + figures_table(chart, series_table(series, x="n", y="Time per call", y_text=fmt_time)) \
        + no_gpu_note(found)


def crossover_table() -> str:
    """From which n each accelerator beats the CPU of its own machine, inputs on the GPU or copied each call."""
    found = crossovers()
    if not found:
        return ""
    rows = [(c.pair.gpu.cell(), c.pair.cpu.cell(), overtake_text(c.inputs_on_gpu), overtake_text(c.with_copy))
            for c in found]
    out = table(["GPU", "CPU of the same machine", "GPU faster (inputs on the GPU)",
                 "GPU faster (inputs copied each call)"], rows, align="llll")
    shown = [s for c in found for s in (c.pair.gpu, c.pair.cpu)]
    return out + caption("Each GPU is compared with the CPU of the machine that measured it, in the same build "
                         "(the two sweeps ran one after the other on that machine); never with another machine's. "
                         f"Faster: the IQRs do not overlap and the medians differ by more than "
                         f"{fmt(SAME_SPEED, 3)}x; otherwise about equal. Below the sizes named, the CPU is faster "
                         "or the two trade places (the sentences below give the smallest size).", shown)


def crossover_findings() -> str:
    """Sentences about the smallest and largest sizes, and each crossover, from the data."""
    cpu = run(matmul_sweep, device="cpu").data["sweep"].points
    if not cpu:
        return ""
    small, big = cpu[0], cpu[-1]
    text = (
        f"On this build's CPU, a {small.shape[0]}x{small.shape[0]} matmul takes **{fmt_time(small.median)}** per "
        f"call back to back "
        f"(**{fmt(small.gflops, 2)} GFLOP/s**: the call's fixed cost, not arithmetic), while n={big.shape[0]} "
        f"runs at **{fmt(big.gflops)} GFLOP/s**"
        + (f", {fmt(big.pct_peak_flops, 2)} % of the estimated peak" if big.pct_peak_flops else "") + ".\n"
    )
    found = crossovers()
    if not found:
        return text + ("\nNo GPU was measured in this build and the archive holds no compatible record, so there "
                       "is no crossover to show.\n")
    for c in found:
        g, h = c.pair.gpu, c.pair.cpu
        gp, hp = _points(g), _points(h)
        at_cpu = {m.shape[0]: m for m in hp}
        first = f"\n- **{g.label}** against {h.label}: "
        on_gpu = c.inputs_on_gpu
        if on_gpu.faster_from is None:
            text += first + "the GPU is not clearly faster at every larger size measured" + (
                f"; the two are about equal at {_sizes(on_gpu.equal)}, {_tie_note(hp, gp, on_gpu.equal)}"
                if on_gpu.equal else "") + ".\n"
            continue
        parts = []
        smallest = gp[0] if gp else None
        if smallest is not None and smallest.shape[0] in at_cpu and judge(at_cpu[smallest.shape[0]], smallest) == "cpu":
            parts.append(f"at n = {smallest.shape[0]} the GPU is slower ({fmt_time(smallest.median)} per call back "
                         f"to back: {_fixed_cost(g, h)}: [what it is made of](measuring.md#call-cost))")
        if on_gpu.equal:
            parts.append(f"at {_sizes(on_gpu.equal)} the two are about equal ({_tie_note(hp, gp, on_gpu.equal)})")
        parts.append(f"it is faster from **n = {on_gpu.faster_from}** on")
        text += first + (", ".join(parts[:-1]) + ", and " if len(parts) > 1 else "") + parts[-1]
        if c.with_copy is not None:
            cp = c.with_copy
            ties = f" (about equal at {_sizes(cp.equal)})" if cp.equal else ""
            text += (f"; copying both inputs inside every call moves that to **n = {cp.faster_from}**{ties}"
                     if cp.faster_from else
                     f"; copying both inputs inside every call, it is never clearly faster at every larger size{ties}")
        common = [m for m in gp if m.shape[0] in at_cpu]
        if common:
            m = common[-1]
            text += (f". At n = {m.shape[0]}, the largest size both measured, it is "
                     f"**{at_cpu[m.shape[0]].median / m.median:,.0f}x** faster")
        text += ".\n"
    return text


# Who sets a tiny GPU call's time back to back, in a few words (gpucnn.figures.CallCost.pace).
_FIXED_COST = {Pace.HOST: "a fixed cost per call, not arithmetic; for a tiny add, the host sets it, not the GPU",
               Pace.GPU: "a fixed cost per call, not arithmetic; for a tiny add, the GPU's own work sets it",
               Pace.UNKNOWN: "a fixed cost per call, not arithmetic"}


def _fixed_cost(gpu: Source, host: Source) -> str:
    """What a GPU's tiny matmul pays per call, from the same record's tiny-op latencies and MLP profile."""
    g, h = sibling(gpu, small_op_latency), sibling(host, small_op_latency)
    if g is None or h is None:
        return _FIXED_COST[Pace.UNKNOWN]
    prof = sibling(gpu, mlp_time_split)
    note([g, h, *([prof] if prof is not None else [])])
    return _FIXED_COST[call_cost(g.result.data, h.result.data, prof.result.data["profile"] if prof else None).pace]


def _tie_note(cpu: Sequence[Measurement], other: Sequence[Measurement], ns: Sequence[int]) -> str:
    """How close the two were at the sizes called about equal: the GPU's speed as a multiple of the CPU's, and
    why that is no win."""
    at_cpu, at_other = {m.shape[0]: m for m in cpu}, {m.shape[0]: m for m in other}
    ratios = [at_cpu[n].median / at_other[n].median for n in ns]
    overlaps = {at_other[n].p25 <= at_cpu[n].p75 and at_cpu[n].p25 <= at_other[n].p75 for n in ns}
    noise = f"within the {fmt(SAME_SPEED, 3)}x this site counts as run-to-run noise"
    why = ("their IQRs overlap" if overlaps == {True} else noise if overlaps == {False}
           else f"their IQRs overlap, or the medians are {noise}")
    if len(ns) > 1:
        return f"the GPU {fmt(min(ratios), 3)}x to {fmt(max(ratios), 3)}x as fast as the CPU: {why}"
    return f"the GPU {fmt(ratios[0], 3)}x as fast as the CPU: {why}"


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


# A step that adds threads and gains less than this share of the ideal speed-up is named.
WEAK_STEP = 0.75


def threads_findings() -> str:
    """How far this CPU's matmul scaled with its threads, and the step where adding threads gained least."""
    pts: list[Measurement] = run(matmul_threads).data["points"]
    if len(pts) < 2:
        return ""
    base, last = pts[0], pts[-1]
    speed = base.median / last.median
    efficiency = speed / (last.threads / base.threads)
    text = (f"With {last.threads} threads, this CPU ran the matmul **{speed:.2f}x** as fast as with "
            f"{base.threads}: a parallel efficiency of {100 * efficiency:.0f} % (100 % means {last.threads} threads "
            f"run exactly {last.threads / base.threads:.0f}x as fast).")
    if efficiency > 1:
        text += (" Above 100 %: within run-to-run variation, or each thread's smaller share of the matrices fitting "
                 "its core's caches better.")
    steps = [(p, q, (p.median / q.median) / (q.threads / p.threads)) for p, q in itertools.pairwise(pts)]
    p, q, share = min(steps, key=lambda step: step[2])
    if share < WEAK_STEP:
        gain, more = p.median / q.median, q.threads / p.threads
        text += (f" Going from {p.threads} to {q.threads} threads "
                 + (f"made it slower: {gain:.2f}x the speed" if gain < 1 else f"gained only {gain:.2f}x")
                 + f" with {fmt(more, 2)}x the threads. Past some count, threads share what does not grow with "
                 "them (memory bandwidth, the last-level cache, or a physical core behind two hyper-threads), "
                 "or another tenant took a share of the machine: likely reasons, not timed here.")
    return text + "\n"


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
H100_SXM_NAME = "NVIDIA H100 80GB HBM3"
H100_SXM = LittleExample("H100 SXM (datasheet)", gpu_peaks(H100_SXM_NAME).bandwidth, gpu_model(H100_SXM_NAME).units,
                         WARPS_PER_SM["9.0"], ASSUMED_LATENCY_S)


def littles_law_table() -> str:
    """Bytes in flight and loads per warp: one row per GPU model shown, and the H100 SXM example unless an
    H100 SXM is among them."""
    examples = []
    used = []  # the hardware reports used (this build's, archived ones), for the section's sources line
    # This build's GPU and each archived one (one per model): their SM counts come from the hardware report.
    for src in accelerators(matmul_sweep):
        acc = src.hardware.accelerator
        warps = WARPS_PER_SM.get(acc.capability or "") if acc and acc.backend == "CUDA" else None
        if acc and acc.peaks and acc.multiprocessors and warps:
            # A short label: the section's sources line names the full hardware.
            examples.append(LittleExample(src.cell(), acc.peaks.bandwidth, acc.multiprocessors, warps,
                                          ASSUMED_LATENCY_S))
            used.append(src)
    if all(src.model != short_model(H100_SXM_NAME) for src in used):
        examples.insert(0, H100_SXM)
    rows = [(e.name, f"{fmt(e.bandwidth / 1e12)} TB/s", fmt_time(e.latency_s), f"{fmt(e.bytes_in_flight / 1e6)} MB",
             f"{e.sms} x {e.warps_per_sm} = {e.resident_warps:,}", fmt(e.loads_per_warp(128), 2),
             fmt(e.loads_per_warp(512), 2)) for e in examples]
    out = table(["GPU", "Bandwidth (datasheet)", "Latency (assumed)", "Bytes in flight = bandwidth x latency",
                 "Resident warps = SMs x warps/SM", "Loads in flight per warp, 4 B/thread",
                 "... 16 B/thread"], rows, align="lrrrrrr")
    out += caption(
        "Not a measurement. Bandwidth: NVIDIA datasheet; SMs: "
        + ("; ".join(([f"NVIDIA H100 architecture whitepaper ({H100_SXM.sms} on the SXM part) for the example"]
                      if H100_SXM in examples else [])
                     + (["torch's device properties in each GPU's hardware report"] if used else [])))
        + "; resident warps per SM: CUDA C++ Programming "
        "Guide, by compute capability (64 for 9.0). The 500 ns DRAM latency is a round figure assumed for illustration "
        "(GPU memory latency is several hundred ns). A warp's load of 4 bytes per thread moves 128 bytes; "
        "of 16 bytes per thread (float4), 512 bytes.", used)
    return out
