"""Page "Advantage 1: memory bandwidth": copies against size, cache tiers, the GPU's L2, DRAM against peak,
host-to-device copies, and elementwise ops.

Facts only: each ``*_facts`` function returns frozen dataclasses (numbers with their unit in the field name,
verdicts decided once, the sources they stand on); ``docs/bandwidth.md`` says them in words. The chart and
table functions draw from the same facts, with short labels only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from gpucnn.bench import Measurement, Sweep
from gpucnn.datasheets import memory_kind
from gpucnn.experiments.memory import (
    copy_bandwidth,
    copy_compute_overlap,
    elementwise_bandwidth,
    host_to_device_bandwidth,
    l2_copy_bandwidth,
)
from gpucnn.hardware import HardwareReport, cpu_caches
from gpucnn.render import (
    Series,
    chart_text,
    figures_table,
    fmt,
    fmt_time,
    legible,
    line_chart,
    reference_note,
    series_table,
    short_bytes,
    size_ticks,
    sweep_series,
    table,
)
from gpucnn.sources import Source, accelerators, note, pairs, sibling, sources

# A call is "overhead-dominated" while it takes less than this many times the
# smallest size's time: the fixed per-call cost is then at least half of it.
OVERHEAD_FACTOR = 2.0
# A launch-free L2 figure this many times the largest copy's, or more, counts as "the L2 is faster".
L2_FASTER = 1.1
# A call within this factor of the fastest small call takes "about the same" time.
SAME_CALL = 1.1
DASH = "–"


def cache_tiers(hw: HardwareReport, device: str) -> list[tuple[int, str]]:
    """(size in bytes, label) of each cache level a copy on ``device`` passes through.

    The CPU's come from sysfs (data and unified caches of cpu0, instruction caches
    left out); an accelerator's from its report (only the L2 is known to torch).
    """
    if device == "cpu":
        out = []
        for c in cpu_caches():
            where = "per core" if c.shared_by <= 1 else f"shared by {c.shared_by} CPUs"
            out.append((c.size_bytes, f"{c.name} {short_bytes(c.size_bytes)} ({where})"))
        if not out and hw.cpu.llc_bytes:
            out.append((hw.cpu.llc_bytes, f"last-level cache {short_bytes(hw.cpu.llc_bytes)}"))
        return out
    acc = hw.accelerator
    return [(acc.l2_bytes, f"L2 {short_bytes(acc.l2_bytes)}")] if acc and acc.l2_bytes else []


def overhead_region(points: Sequence[Measurement], factor: float = OVERHEAD_FACTOR) -> tuple[float, float] | None:
    """The x range (bytes read + written) at the small end where the fixed per-call cost dominates.

    It runs from the smallest size to the last size, counted from the start, whose
    median time is below ``factor`` x the floor: there the time hardly depends on
    the size, so the GB/s reflects the call's overhead, not a slow cache. The floor
    is the fastest of the first three sizes, so one disturbed run at the smallest
    size does not hide the region. None when not even the second size qualifies.
    """
    if len(points) < 2:
        return None
    floor = min(m.median for m in points[:3])
    end = None
    for m in points[1:]:
        if m.median >= factor * floor:
            break
        end = m
    return (points[0].bytes_moved, end.bytes_moved) if end else None


def _memory(src: Source) -> str:
    """DRAM for a CPU; HBM, GDDR or "device memory" for an accelerator, by its datasheet row."""
    return "DRAM" if src.is_cpu else memory_kind(src.hardware.accelerator)


def _peak_gbps(src: Source) -> float | None:
    acc = src.hardware.accelerator
    return acc.peaks.bandwidth / 1e9 if not src.is_cpu and acc and acc.peaks else None


def _low_gbps(m: Measurement) -> float:
    """GB/s at the slow end of the IQR (the 75th percentile of the time)."""
    return m.bytes_moved / m.p75 / 1e9


def _high_gbps(m: Measurement) -> float:
    return m.bytes_moved / m.p25 / 1e9


def _points(src: Source | None) -> tuple[Measurement, ...]:
    return tuple(src.result.typed.sweep.points) if src is not None else ()


def _runs(points: Sequence[Measurement]) -> tuple[int, int]:
    runs = sorted({m.runs for m in points}) or [0]
    return runs[0], runs[-1]


# --- copies against size -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CopyFacts:
    """One device's copy sweep: the per-call end, the fastest size, the largest (its memory's figure)."""

    source: Source
    memory: str  # DRAM, HBM, GDDR or "device memory"
    sizes: int
    runs_min: int
    runs_max: int
    stopped: str | None  # why the sweep stopped early, from the record (escaped where printed)
    smallest_buffer_bytes: int
    smallest_s: float
    smallest_gbps: float
    call_bound_to_buffer_bytes: float | None  # the per-call region's end, per buffer; None: no such region
    fastest_buffer_bytes: int
    fastest_s: float
    fastest_gbps: float
    fastest_call_bound: bool  # the fastest size is still inside the per-call region
    fastest_launch_free_gbps: float | None  # the same copy with the launch removed (accelerators)
    peak_gbps: float | None  # the memory's datasheet peak
    fastest_above_peak: bool  # the fastest copy's whole IQR is above that peak
    fastest_fits_l2: bool  # ... because source + destination fit in the L2
    l2_bytes: int | None
    largest_buffer_bytes: int
    largest_gbps: float


def copy_facts_of(src: Source) -> CopyFacts | None:
    """The copy figures of one device; None for an empty sweep."""
    sweep = src.result.typed.sweep
    pts = tuple(sweep.points)
    if not pts:
        return None
    first, best, last = pts[0], max(pts, key=lambda m: m.gbps or 0), pts[-1]
    span = overhead_region(pts)
    call_bound = bool(span and best.bytes_moved <= span[1])
    free = _launch_free(src, best.shape[0]) if call_bound else None
    acc = src.hardware.accelerator
    peak = _peak_gbps(src)
    l2 = acc.l2_bytes if acc and not src.is_cpu else None
    # Above the datasheet only where the whole IQR is (a median inside the peak's noise is not a claim).
    above = peak is not None and _low_gbps(best) > peak
    runs = _runs(pts)
    return CopyFacts(
        source=src, memory=_memory(src), sizes=len(pts), runs_min=runs[0], runs_max=runs[1], stopped=sweep.stopped,
        smallest_buffer_bytes=first.shape[0], smallest_s=first.median, smallest_gbps=first.gbps,
        call_bound_to_buffer_bytes=span[1] / 2 if span else None,
        fastest_buffer_bytes=best.shape[0], fastest_s=best.median, fastest_gbps=best.gbps,
        fastest_call_bound=call_bound, fastest_launch_free_gbps=free.gbps if free else None,
        peak_gbps=peak, fastest_above_peak=above, fastest_fits_l2=above and l2 is not None and best.bytes_moved <= l2,
        l2_bytes=l2, largest_buffer_bytes=last.shape[0], largest_gbps=last.gbps,
    )


@dataclass(frozen=True)
class Copies:
    devices: tuple[CopyFacts, ...]
    found: tuple[Source, ...]  # every source shown (for the No-GPU note)

    @property
    def cpu(self) -> CopyFacts | None:
        """This build's CPU."""
        return next((d for d in self.devices if d.source.is_cpu and not d.source.archived), None)

    @property
    def accelerators(self) -> tuple[CopyFacts, ...]:
        return tuple(d for d in self.devices if not d.source.is_cpu)

    @property
    def above_peak(self) -> tuple[CopyFacts, ...]:
        """Accelerators whose fastest copy, one per call, beat their memory's datasheet peak."""
        return tuple(d for d in self.accelerators if d.fastest_above_peak)


def copy_facts() -> Copies:
    found = sources(copy_bandwidth)
    note(found)
    return Copies(tuple(f for s in found if (f := copy_facts_of(s)) is not None), tuple(found))


def _launch_free(src: Source, buffer_bytes: int) -> Measurement | None:
    """The launch-free copy of the same size on the same device and origin (the L2 sweep), if measured."""
    if src.is_cpu:
        return None
    free = sibling(src, l2_copy_bandwidth)
    return next((m for m in _points(free) if m.shape[0] == buffer_bytes and m.gbps), None)


def copy_chart(src: Source) -> str:
    """Copy GB/s against bytes moved on one device, cache tiers marked, overhead region shaded."""
    sw: Sweep = src.result.typed.sweep
    pts = sw.points
    series = [Series(**{**sweep_series(src.label, sw, x="bytes", y="gbps", source=src.origin).__dict__,
                        "style": {"marker": "s" if src.is_cpu else "o"}})]
    vlines = [(size, chart_text(name)) for size, name in cache_tiers(src.hardware, src.device)] \
        if not src.archived or not src.is_cpu else []
    span = overhead_region(pts)
    spans = [(span[0], span[1], "per-call cost\ndominates")] if span else []
    peak = _peak_gbps(src)
    hlines = [(peak, f"datasheet peak {fmt(peak)} GB/s")] if peak else []
    xs = [m.bytes_moved for m in pts]
    chart = line_chart(
        series, title=f"Copy bandwidth against size: {chart_text(src.label)}", xlabel="bytes read + written per call",
        ylabel="GB/s (10^9 bytes per second)", caption_text="", results=[src], logx=True, logy=True,
        vlines=vlines, spans=spans, hlines=hlines, xticks=size_ticks(min(xs), max(xs)) if xs else (),
    )
    return chart + figures_table(chart, series_table(series, x="Bytes read + written per call", y="GB/s",
                                                     x_text=short_bytes),
                                 reference_note(hlines=hlines, vlines=vlines, spans=spans, x_text=short_bytes))


def copy_charts() -> str:
    """Every device's copy chart, one after the other (the page draws them one by one, each with its caption)."""
    return "\n".join(copy_chart(d.source) for d in copy_facts().devices)


def copy_table() -> str:
    """Each device's smallest, fastest and largest copy, and where the per-call cost stops dominating."""
    facts = copy_facts()
    rows = []
    for d in facts.devices:
        bound = f"{short_bytes(d.call_bound_to_buffer_bytes)}" if d.call_bound_to_buffer_bytes else DASH
        rows.append((
            d.source.cell(), f"{short_bytes(d.smallest_buffer_bytes)}: {fmt_time(d.smallest_s)}, "
            f"{fmt(d.smallest_gbps)} GB/s", bound,
            f"{short_bytes(d.fastest_buffer_bytes)}: {fmt(d.fastest_gbps)} GB/s ({fmt_time(d.fastest_s)})",
            f"{short_bytes(d.largest_buffer_bytes)}: **{fmt(d.largest_gbps)} GB/s** ({d.memory})"))
    return table(["Device", "Smallest copy", "Per-call cost dominates up to", "Fastest copy", "Largest copy"],
                 rows, align="lrrrr")


# --- the L2 tier, with the launch cost removed --------------------------------------------------------------

@dataclass(frozen=True)
class L2Facts:
    """One accelerator's launch-free copies: inside its L2 against far beyond it, and against the datasheet."""

    source: Source
    memory: str
    l2_bytes: int
    graphs: bool  # a CUDA graph replayed the copies; otherwise many copies were issued per call
    copies_min: int
    copies_max: int
    sizes: int
    runs_min: int
    runs_max: int
    inside_buffer_bytes: int
    inside_gbps: float
    beyond_buffer_bytes: int
    beyond_gbps: float
    l2_over_memory: float
    l2_faster: bool  # at least L2_FASTER times the largest copy
    climbs_to_the_end: bool  # the best point inside the L2 is its largest: still rising (a floor)
    peak_gbps: float | None
    above_peak: bool  # the L2 figure beats the memory's datasheet peak
    one_per_call_gbps: float | None  # the same copy, one per call (the copy sweep)
    one_per_call_s: float | None
    fastest_small_call_s: float | None  # the fastest of the copy sweep's three smallest calls
    one_per_call_bound: bool | None  # that size lies in the copy sweep's per-call region
    one_per_call_same_as_smallest: bool | None  # within SAME_CALL of the fastest small call


def l2_facts_of(src: Source, plain: Source | None) -> L2Facts | None:
    """``src``'s launch-free sweep against ``plain``'s (one copy per call); None without both regions."""
    data = src.result.typed
    pts, l2 = tuple(data.sweep.points), data.cache_bytes
    inside = [m for m in pts if l2 and 2 * m.shape[0] <= l2]
    beyond = [m for m in pts if l2 and 2 * m.shape[0] > l2]
    if not inside or not beyond:  # a sweep stopped early: no device-memory plateau to set the L2 against
        return None
    best, last = max(inside, key=lambda m: m.gbps or 0), beyond[-1]
    peak = _peak_gbps(src)
    plain_pts = _points(plain)
    same = next((m for m in plain_pts if m.shape[0] == best.shape[0] and m.gbps), None)
    bound = same_small = floor = None
    if same is not None:
        span = overhead_region(plain_pts)
        floor = min(m.median for m in plain_pts[:3])
        bound = bool(span and span[0] <= same.bytes_moved <= span[1])
        same_small = same.median < SAME_CALL * floor
    runs = _runs(pts)
    return L2Facts(
        source=src, memory=_memory(src), l2_bytes=l2, graphs=data.graphs, copies_min=min(data.copies_per_call),
        copies_max=max(data.copies_per_call), sizes=len(pts), runs_min=runs[0], runs_max=runs[1],
        inside_buffer_bytes=best.shape[0], inside_gbps=best.gbps, beyond_buffer_bytes=last.shape[0],
        beyond_gbps=last.gbps, l2_over_memory=best.gbps / last.gbps, l2_faster=best.gbps >= L2_FASTER * last.gbps,
        climbs_to_the_end=best is inside[-1], peak_gbps=peak, above_peak=peak is not None and best.gbps > peak,
        one_per_call_gbps=same.gbps if same else None, one_per_call_s=same.median if same else None,
        fastest_small_call_s=floor, one_per_call_bound=bound, one_per_call_same_as_smallest=same_small,
    )


@dataclass(frozen=True)
class L2s:
    devices: tuple[L2Facts, ...]

    @property
    def above_peak(self) -> tuple[L2Facts, ...]:
        return tuple(d for d in self.devices if d.above_peak)

    @property
    def all_graphs(self) -> bool:
        return all(d.graphs for d in self.devices)


def l2_facts() -> L2s:
    out = []
    for s in accelerators(l2_copy_bandwidth):
        plain = sibling(s, copy_bandwidth)
        f = l2_facts_of(s, plain)
        if f is not None:
            note([s] + ([plain] if plain else []))
            out.append(f)
    return L2s(tuple(out))


def _per_copy_series(label: str, points: Sequence[Measurement], source: str, style: dict) -> Series:
    """GB/s against one copy's bytes read + written (a call may run many copies: x is per copy)."""
    return Series(label, [2.0 * m.shape[0] for m in points], [m.gbps for m in points],
                  [_low_gbps(m) for m in points], [_high_gbps(m) for m in points], style=style, source=source)


def l2_copy_chart(src: Source) -> str:
    """One accelerator: copies one per call against copies with the launch cost removed; L2 and peak marked."""
    pts = _points(src)
    if not pts:
        return ""
    series = []
    plain = sibling(src, copy_bandwidth)
    if _points(plain):
        series.append(_per_copy_series(f"{src.label}: one copy per call", _points(plain), plain.origin,
                                       {"marker": "v"}))
    how = "CUDA graph" if src.result.typed.graphs else "many copies per call"
    series.append(_per_copy_series(f"{src.label}: {how}", pts, src.origin, {"marker": "o"}))
    vlines = [(size, chart_text(name)) for size, name in cache_tiers(src.hardware, src.device)]
    memory, peak = _memory(src), _peak_gbps(src)
    hlines = [(peak, f"{memory} datasheet peak {fmt(peak)} GB/s")] if peak else []
    xs = [x for s in series for x in s.x]
    chart = line_chart(
        legible(series), title=f"L2 and {memory}, launch cost removed: {chart_text(src.label)}",
        xlabel="bytes read + written per copy", ylabel="GB/s (10^9 bytes per second)", caption_text="",
        results=[src] + ([plain] if plain else []), logx=True, logy=True, vlines=vlines, hlines=hlines,
        xticks=size_ticks(min(xs), max(xs), step=16),
    )
    return chart + figures_table(chart, series_table(series, x="Bytes read + written per copy", y="GB/s",
                                                     x_text=short_bytes),
                                 reference_note(hlines=hlines, vlines=vlines, x_text=short_bytes))


def l2_table() -> str:
    """Each accelerator's launch-free L2 figure against its largest copy, its datasheet peak and one copy per call."""
    rows = []
    for d in l2_facts().devices:
        per_call = (f"{fmt(d.one_per_call_gbps)} GB/s ({fmt_time(d.one_per_call_s)})"
                    if d.one_per_call_gbps else DASH)
        rows.append((d.source.cell(), short_bytes(d.l2_bytes),
                     f"{short_bytes(d.inside_buffer_bytes)}: **{fmt(d.inside_gbps)}**",
                     f"{short_bytes(d.beyond_buffer_bytes)}: {fmt(d.beyond_gbps)}",
                     f"≥ {fmt(d.l2_over_memory)}x",
                     f"{fmt(d.peak_gbps)} ({d.memory})" if d.peak_gbps else DASH, per_call))
    return table(["Device", "L2", "Inside the L2: GB/s", "Largest: GB/s", "L2 / memory",
                  "Datasheet peak GB/s", "Same copy, one per call"], rows, align="lrrrrrr")


def l2_copy_charts() -> str:
    """One chart per accelerator that has the launch-free copy sweep; nothing where none has (no CPU figure)."""
    return "\n".join(l2_copy_chart(s) for s in accelerators(l2_copy_bandwidth))


# --- DRAM against the peak ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostRatio:
    """An accelerator's largest copy against its own host CPU's (same record: a ratio within one machine)."""

    gpu: Source
    cpu: Source
    ratio: float


@dataclass(frozen=True)
class Dram:
    ratios: tuple[HostRatio, ...]
    datasheets: tuple[str, ...]  # where each GPU peak comes from
    found: tuple[Source, ...]


def _largest(src: Source) -> Measurement | None:
    pts = _points(src)
    return pts[-1] if pts else None


def dram_facts() -> Dram:
    found = sources(copy_bandwidth, hosts=True)
    note(found)
    ratios = []
    for p in pairs(copy_bandwidth):
        g, c = _largest(p.gpu), _largest(p.cpu)
        if g and c and g.gbps and c.gbps:
            ratios.append(HostRatio(p.gpu, p.cpu, g.gbps / c.gbps))
    sheets = sorted({s.hardware.accelerator.peaks.source for s in found if _peak_gbps(s)})
    return Dram(tuple(ratios), tuple(sheets), tuple(found))


def gbps_iqr(m: Measurement) -> str:
    """GB/s at the median, with the IQR range."""
    return f"{fmt(m.gbps)} ({fmt(_low_gbps(m))}–{fmt(_high_gbps(m))})"


def dram_table() -> str:
    """Measured DRAM copy bandwidth next to the peak (datasheet for a GPU; none for a CPU)."""
    rows = []
    for s in dram_facts().found:
        m = _largest(s)
        if m is None:
            continue
        peak = _peak_gbps(s)
        rows.append((s.cell(), short_bytes(m.shape[0]), gbps_iqr(m), f"{fmt(peak)} GB/s" if peak else DASH,
                     f"{fmt(m.pct_peak_bandwidth)} %" if peak and m.pct_peak_bandwidth else DASH, m.runs))
    return table(["Device", "Buffer (each of 2)", "Copy GB/s, median (IQR)", "Datasheet peak", "% of peak", "Runs"],
                 rows, align="llrrrr")


# --- host to device: pageable, pinned, the PCIe link -------------------------------------------------------

@dataclass(frozen=True)
class PcieLink:
    """A PCIe x16 link, from the PCI-SIG base specification's per-lane rate and line encoding."""

    generation: int
    gt_per_s: float  # transfers per second per lane, in 10^9
    lanes: int = 16
    encoding: float = 128 / 130  # Gen3 to Gen5: 128b/130b

    @property
    def one_way_bytes_per_s(self) -> float:
        """Payload bytes per second in one direction, after the line encoding (before packet headers)."""
        return self.gt_per_s * 1e9 * self.lanes * self.encoding / 8

    @property
    def one_way_gbps(self) -> float:
        return self.one_way_bytes_per_s / 1e9


# PCI Express Base Specification 4.0 (16 GT/s) and 5.0 (32 GT/s), both 128b/130b encoded. NVIDIA's
# "128 GB/s" for an H100's PCIe Gen5 counts both directions together, before encoding.
PCIE_GEN4 = PcieLink(4, 16.0)
PCIE_GEN5 = PcieLink(5, 32.0)
# A copy at this share of the encoded limit or more is "near the practical ceiling": with 256-byte
# payloads, each packet's header and the link's flow control cost roughly a tenth of the link.
NEAR_CEILING = 0.8


class Link(StrEnum):
    """What a pinned copy's speed says of the link: faster than Gen4 could carry (near Gen5's practical
    ceiling, or not), or within Gen4's limit, so either generation may apply."""

    GEN5_NEAR_CEILING = "gen5_near_ceiling"
    GEN5 = "gen5"
    EITHER = "either"


def link_of(best_gbps: float) -> Link:
    bps = best_gbps * 1e9
    if bps <= PCIE_GEN4.one_way_bytes_per_s:
        return Link.EITHER
    return Link.GEN5_NEAR_CEILING if bps >= NEAR_CEILING * PCIE_GEN5.one_way_bytes_per_s else Link.GEN5


@dataclass(frozen=True)
class HostToDevice:
    """One accelerator's host-to-device copies, against its own memory and the PCIe limits."""

    source: Source
    largest_bytes: int
    pageable_gbps: float
    pinned_gbps: float
    own_copy_gbps: float | None  # its own memory's largest copy, bytes read + written
    own_over_pinned: float | None  # bytes copied per second: half the own copy's GB/s, over the pinned transfer
    best_pinned_bytes: int
    best_pinned_gbps: float
    pct_of_gen5: float
    pct_of_gen4: float
    link: Link
    runs_min: int
    runs_max: int


def host_to_device_of(src: Source, own: Source | None) -> HostToDevice | None:
    data = src.result.typed
    pageable, pinned = data.pageable.points, data.pinned.points
    timed = [m for m in pinned if m.gbps]
    if not pageable or not timed:
        return None
    best = max(timed, key=lambda m: m.gbps)
    largest = _largest(own) if own else None
    runs = _runs(list(pageable) + list(pinned))
    return HostToDevice(
        source=src, largest_bytes=pinned[-1].shape[0], pageable_gbps=pageable[-1].gbps, pinned_gbps=pinned[-1].gbps,
        own_copy_gbps=largest.gbps if largest else None,
        own_over_pinned=largest.gbps / 2 / pinned[-1].gbps if largest and pinned[-1].gbps else None,
        best_pinned_bytes=best.shape[0], best_pinned_gbps=best.gbps,
        pct_of_gen5=100 * best.gbps / PCIE_GEN5.one_way_gbps, pct_of_gen4=100 * best.gbps / PCIE_GEN4.one_way_gbps,
        link=link_of(best.gbps), runs_min=runs[0], runs_max=runs[1],
    )


@dataclass(frozen=True)
class HostLinks:
    devices: tuple[HostToDevice, ...]
    found: tuple[Source, ...]
    gen4_gbps: float = PCIE_GEN4.one_way_gbps
    gen5_gbps: float = PCIE_GEN5.one_way_gbps


def host_to_device_facts() -> HostLinks:
    found = accelerators(host_to_device_bandwidth)
    copies = {s.origin: s for s in accelerators(copy_bandwidth)}
    out = []
    for s in found:
        own = copies.get(s.origin)
        f = host_to_device_of(s, own)
        if f is not None:
            note([s] + ([own] if own else []))
            out.append(f)
    return HostLinks(tuple(out), tuple(found))


# At most this many accelerators a chart: two series each (pageable, pinned), so five series at most a panel.
H2D_PER_CHART = 2


def host_to_device_charts() -> str:
    """Pageable against pinned host-to-device GB/s, two accelerators a chart."""
    found = accelerators(host_to_device_bandwidth)
    return "\n".join(_host_to_device_chart(found[i:i + H2D_PER_CHART]) for i in range(0, len(found), H2D_PER_CHART))


def _host_to_device_chart(found: Sequence[Source]) -> str:
    series, pts = [], []
    for s in found:
        data = s.result.typed
        for mode, marker in (("pageable", "v"), ("pinned", "o")):
            sw = getattr(data, mode)
            pts += list(sw.points)
            series.append(Series(**{**sweep_series(f"{s.label}, {mode}", sw, x="n", y="gbps",
                                                   source=s.origin).__dict__,
                                    "style": {"marker": marker}}))
    xs = [m.shape[0] for m in pts]
    chart = line_chart(
        legible(series), title=f"Host-to-device copy bandwidth: {chart_text(', '.join(s.model for s in found))}",
        xlabel="bytes copied per call", ylabel="GB/s (10^9 bytes per second)", caption_text="",
        results=list(found), logx=True, logy=True, xticks=size_ticks(min(xs), max(xs), step=16) if xs else (),
    )
    return chart + figures_table(chart, series_table(series, x="Bytes copied per call", y="GB/s", x_text=short_bytes))


def host_to_device_table() -> str:
    rows = []
    for d in host_to_device_facts().devices:
        rows.append((d.source.cell(), fmt(d.pageable_gbps), f"**{fmt(d.pinned_gbps)}**",
                     fmt(d.own_copy_gbps) if d.own_copy_gbps else DASH,
                     f"{d.own_over_pinned:,.0f}x" if d.own_over_pinned else DASH,
                     f"{fmt(d.best_pinned_gbps)} ({short_bytes(d.best_pinned_bytes)})", f"{fmt(d.pct_of_gen5, 3)} %"))
    return table(["Device", "Pageable GB/s", "Pinned GB/s", "Own memory GB/s", "Own / pinned", "Best pinned GB/s",
                  "% of Gen5 one way"], rows, align="lrrrrrr")


# --- a copy overlapping compute ------------------------------------------------------------------------------

class Hidden(StrEnum):
    """How much of the shorter task (copy or matmul) the overlap hid."""

    ALMOST_ALL = "almost_all"  # 80 % or more
    PART = "part"  # 10 % or more
    NOTHING = "nothing"


@dataclass(frozen=True)
class Overlap:
    source: Source
    copy_s: float
    compute_s: float
    serial_s: float
    overlapped_s: float
    gain: float  # serial / overlapped
    best_gain: float  # serial / the longer of the two alone
    hidden_fraction: float  # of the shorter task
    hidden: Hidden
    side_stream: bool  # CUDA: the copy ran on a side stream; otherwise both ran on one stream
    copy_bytes: int
    matmul_n: int


def overlap_of(src: Source) -> Overlap:
    d = src.result.typed
    copy, compute, serial, over = (getattr(d, k).median for k in ("copy", "compute", "serial", "overlapped"))
    hidden = (serial - over) / min(copy, compute)
    return Overlap(
        source=src, copy_s=copy, compute_s=compute, serial_s=serial, overlapped_s=over, gain=serial / over,
        best_gain=serial / max(copy, compute), hidden_fraction=hidden,
        hidden=Hidden.ALMOST_ALL if hidden >= 0.8 else Hidden.PART if hidden >= 0.1 else Hidden.NOTHING,
        side_stream=d.side_stream, copy_bytes=d.copy_bytes, matmul_n=d.matmul_n,
    )


@dataclass(frozen=True)
class Overlaps:
    devices: tuple[Overlap, ...]

    @property
    def all_almost_all(self) -> bool:
        return bool(self.devices) and all(d.hidden == Hidden.ALMOST_ALL for d in self.devices)


def overlap_facts() -> Overlaps:
    found = accelerators(copy_compute_overlap)
    note(found)
    return Overlaps(tuple(overlap_of(s) for s in found))


def overlap_table() -> str:
    """Each accelerator's pinned copy and matmul: alone, one after the other, overlapped; nothing without one."""
    rows = [(d.source.cell(), fmt_time(d.copy_s), fmt_time(d.compute_s), fmt_time(d.serial_s),
             fmt_time(d.overlapped_s), f"**{fmt(d.gain)}x**", f"{fmt(d.best_gain)}x") for d in overlap_facts().devices]
    if not rows:
        return ""
    return table(["Device", "Pinned copy alone", "Matmul alone", "Copy, then matmul", "Overlapped", "Gain",
                  "Best possible"], rows, align="lrrrrrr")


# --- elementwise ops -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElementwiseFacts:
    source: Source
    size_bytes: int
    add_gbps: float
    relu_gbps: float
    add_gflops: float
    relu_gflops: float
    copy_gbps: float | None  # the same device's largest copy, same source


@dataclass(frozen=True)
class Elementwise:
    devices: tuple[ElementwiseFacts, ...]
    found: tuple[Source, ...]

    @property
    def cpu(self) -> ElementwiseFacts | None:
        """This build's CPU."""
        return next((d for d in self.devices if d.source.is_cpu and not d.source.archived), None)


def _copies_by_source() -> dict[tuple[str, str], Source]:
    return {(s.origin, s.device): s for s in sources(copy_bandwidth, hosts=True)}


def elementwise_facts() -> Elementwise:
    # Hosts too: a table that shows an archived GPU shows that record's host CPU beside it.
    found = sources(elementwise_bandwidth, hosts=True)
    copies = _copies_by_source()
    out = []
    for s in found:
        d = s.result.typed
        copy = _largest(copies.get((s.origin, s.device)))
        out.append(ElementwiseFacts(s, d.size_bytes, d.add.gbps, d.relu.gbps, d.add.gflops, d.relu.gflops,
                                    copy.gbps if copy and copy.gbps else None))
    note(found + [c for c in copies.values()])
    return Elementwise(tuple(out), tuple(found))


def elementwise_table() -> str:
    """add and relu GB/s (and GFLOP/s) far beyond the cache, next to a copy."""
    rows = []
    copies = _copies_by_source()
    for s in elementwise_facts().found:
        d = s.result.typed
        copy = _largest(copies.get((s.origin, s.device)))
        for op, m in (("add", d.add), ("relu", d.relu)):
            rel = f"{100 * m.gbps / copy.gbps:.0f} %" if copy and copy.gbps else DASH
            rows.append((s.cell(), op, short_bytes(d.size_bytes), gbps_iqr(m), rel, fmt(m.gflops), m.runs))
        if copy:
            rows.append((s.cell(), "copy", short_bytes(copy.shape[0]), gbps_iqr(copy), "100 %", "0", copy.runs))
    return table(["Device", "Op", "Tensor size", "GB/s, median (IQR)", "% of copy", "GFLOP/s", "Runs"], rows,
                 align="lllrrrr")
