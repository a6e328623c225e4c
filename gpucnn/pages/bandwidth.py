"""Page "Advantage 1: memory bandwidth": copies against size, cache tiers, DRAM against
peak, host-to-device copies, and elementwise ops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpucnn.bench import Measurement, Sweep
from gpucnn.datasheets import memory_kind
from gpucnn.experiments.memory import (
    copy_bandwidth,
    copy_compute_overlap,
    elementwise_bandwidth,
    host_to_device_bandwidth,
    l2_copy_bandwidth,
)
from gpucnn.figures import dram_point
from gpucnn.hardware import HardwareReport, cpu_caches
from gpucnn.render import (
    Series,
    caption,
    chart_text,
    figures_table,
    fmt,
    fmt_time,
    legible,
    line_chart,
    origin_style,
    reference_note,
    series_table,
    short_bytes,
    size_ticks,
    sweep_series,
    table,
)
from gpucnn.sources import Source, accelerators, no_gpu_note, pairs, sibling, sources

# A call is "overhead-dominated" while it takes less than this many times the
# smallest size's time: the fixed per-call cost is then at least half of it.
OVERHEAD_FACTOR = 2.0


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


def copy_sources() -> list[Source]:
    return sources(copy_bandwidth)


def elementwise_sources() -> list[Source]:
    return sources(elementwise_bandwidth)


def gbps_iqr(m: Measurement) -> str:
    """GB/s at the median, with the IQR range."""
    return f"{fmt(m.gbps)} ({fmt(m.bytes_moved / m.p75 / 1e9)}–{fmt(m.bytes_moved / m.p25 / 1e9)})"


def copy_chart(src: Source) -> str:
    """Copy GB/s against bytes moved on one device, cache tiers marked, overhead region shaded."""
    r = src.result
    device = src.device
    sw: Sweep = r.data["sweep"]
    pts = sw.points
    series = [Series(**{**sweep_series(src.label, sw, x="bytes", y="gbps", source=src.origin).__dict__,
                        "style": origin_style(0, src.is_cpu)})]
    vlines = [(size, chart_text(name)) for size, name in cache_tiers(r.hardware, device)] if not src.archived or \
        not src.is_cpu else []
    span = overhead_region(pts)
    spans = [(span[0], span[1], "per-call overhead\ndominates")] if span else []
    hlines = []
    acc = r.hardware.accelerator
    if device != "cpu" and acc and acc.peaks:
        hlines.append((acc.peaks.bandwidth / 1e9, f"datasheet peak {fmt(acc.peaks.bandwidth / 1e9)} GB/s"))
    runs = sorted({m.runs for m in pts}) or [0]
    text = (
        f"Copy bandwidth of dst.copy_(src), float32, against the bytes one call reads plus writes "
        f"(source + destination buffer, so also the working set); GB = 10^9 bytes. Line: median; band: IQR; "
        f"{len(pts)} sizes, {runs[0]}–{runs[-1]} timed runs each. Dashed vertical lines: cache sizes"
        + (" read from sysfs (per core: a copy split over several threads gets one such cache per core)"
           if device == "cpu" else " (the L2, as torch reports it)") +
        ". Shaded: sizes whose call takes less than twice the fastest of the three smallest sizes', where the "
        "fixed per-call cost is at least half the time."
        + (f" Dotted line: datasheet peak ({acc.peaks.source})." if hlines else "")
        + (f" Sweep note: {sw.stopped}." if sw.stopped else "")
    )
    xs = [m.bytes_moved for m in pts]
    chart = line_chart(
        series, title=f"Copy bandwidth against size: {chart_text(src.label)}", xlabel="bytes read + written per call",
        ylabel="GB/s (10^9 bytes per second)", caption_text=text, results=[src], logx=True, logy=True,
        vlines=vlines, spans=spans, hlines=hlines, xticks=size_ticks(min(xs), max(xs)) if xs else (),
    )
    return chart + figures_table(chart, series_table(series, x="Bytes read + written per call", y="GB/s",
                                                     x_text=short_bytes),
                                 reference_note(hlines=hlines, vlines=vlines, spans=spans, x_text=short_bytes))


def copy_charts() -> str:
    """One copy chart per device (archived accelerators too), and the no-GPU note on a CPU-only build."""
    found = copy_sources()
    return "\n".join(copy_chart(s) for s in found) + no_gpu_note(
        found, "GPU copy-bandwidth figures (their L2 and device-memory tiers)")


def _launch_free(src: Source, buffer_bytes: int) -> tuple[Source, Measurement] | None:
    """The launch-free copy of the same size on the same device and origin (Advantage 1's L2 sweep), if measured."""
    if src.is_cpu:
        return None
    free = sibling(src, l2_copy_bandwidth)
    if free is None:
        return None
    same = next((m for m in free.result.data["sweep"].points if m.shape[0] == buffer_bytes and m.gbps), None)
    return (free, same) if same is not None else None


def copy_findings() -> str:
    """Sentences quoting each device's copy figures."""
    lines = []
    for s in copy_sources():
        pts = s.result.data["sweep"].points
        if not pts:
            continue
        first, best, last = pts[0], max(pts, key=lambda m: m.gbps or 0), pts[-1]
        span = overhead_region(pts)
        text = (
            f"On {s.label}, the smallest copy ({short_bytes(first.shape[0])} per buffer) takes "
            f"**{fmt_time(first.median)}**, which is only **{fmt(first.gbps)} GB/s**"
        )
        if span:
            text += (f"; copies up to {short_bytes(span[1] / 2)} per buffer take less than twice as long as the "
                     f"fastest small one, "
                     f"so at that end the chart shows the cost of a call, not the speed of a cache")
        text += f". The fastest size is {short_bytes(best.shape[0])} per buffer at **{fmt(best.gbps)} GB/s**"
        if span and best.bytes_moved <= span[1]:
            text += (f" ({fmt_time(best.median)} per call), still inside that range: the call's fixed cost limits "
                     "this figure too")
            free = _launch_free(s, best.shape[0])
            if free is not None:
                text += (f", and with the launch removed ({_launch_free_how(free[0])}, below) the same copy runs at "
                         f"**{fmt(free[1].gbps)} GB/s**")
        acc = s.hardware.accelerator
        kind = "DRAM" if s.is_cpu else memory_kind(acc)
        # Above the datasheet only where the whole IQR is (a median inside the peak's noise is not a claim).
        if not s.is_cpu and acc and acc.peaks and best.bytes_moved / best.p75 > acc.peaks.bandwidth:
            # Faster than device memory allows: a copy whose two buffers fit in the L2 need not leave the chip.
            fits = acc.l2_bytes is not None and best.bytes_moved <= acc.l2_bytes
            text += (f". Its whole IQR (the middle half of its runs) is above the {fmt(acc.peaks.bandwidth / 1e9)} GB/s "
                     f"of the {kind} datasheet, "
                     + (f"because its two buffers ({short_bytes(best.bytes_moved)}) fit in the "
                        f"{short_bytes(acc.l2_bytes)} L2 cache: the copy need not touch {kind} at all"
                        if fits else "because part of its data was still in the L2 cache"))
        text += (f". The largest, {short_bytes(last.shape[0])} per buffer, reaches **{fmt(last.gbps)} GB/s**: that "
                 f"is the {kind} figure.\n")
        lines.append(text)
    return "\n".join(lines)


def dram_table() -> str:
    """Measured DRAM copy bandwidth next to the peak (datasheet for a GPU; none for the CPU)."""
    rows = []
    datasheets: set[str] = set()
    found = sources(copy_bandwidth, hosts=True)
    for s in found:
        m = dram_point(s.result)
        if m is None:
            continue
        acc = s.hardware.accelerator
        if s.is_cpu:
            peak, pct = "none: gpucnn has no datasheet memory bandwidth for CPUs", "–"
        elif acc and acc.peaks:
            peak = f"{fmt(acc.peaks.bandwidth / 1e9)} GB/s (datasheet)"
            datasheets.add(acc.peaks.source)
            pct = f"{fmt(m.pct_peak_bandwidth)} %"
        else:
            peak, pct = "not in gpucnn's datasheet table", "–"
        rows.append((s.cell(), short_bytes(m.shape[0]), gbps_iqr(m), peak, pct, m.runs))
    out = table(["Device", "Buffer (each of 2)", "Measured copy GB/s, median (IQR)", "Peak", "% of peak", "Runs"],
                rows, align="llrlrr")
    ratios = "".join(
        f" {p.gpu.label} copies {dram_point(p.gpu.result).gbps / dram_point(p.cpu.result).gbps:,.0f}x as fast as "
        f"{p.cpu.label}."
        for p in pairs(copy_bandwidth) if dram_point(p.gpu.result) and dram_point(p.cpu.result))
    out += caption("Copy of the largest buffer of the sweep: read + written bytes, GB = 10^9 bytes. GPU peaks: "
                   + ("; ".join(sorted(datasheets)) or "none") + "." + ratios, found)
    return out + no_gpu_note(found, "GPU figures (measured device-memory bandwidth against its datasheet peak)")


def elementwise_table() -> str:
    """add and relu GB/s (and GFLOP/s) far beyond the cache, next to a copy."""
    rows = []
    ew, cp = elementwise_sources(), {s.origin + s.device: s for s in copy_sources()}
    for s in ew:
        r = s.result
        c = cp.get(s.origin + s.device)
        copy = dram_point(c.result) if c else None
        for op, what in (("add", "reads 2, writes 1"), ("relu", "reads 1, writes 1")):
            m = r.data[op]
            rel = f"{100 * m.gbps / copy.gbps:.0f} %" if copy and copy.gbps else "–"
            rows.append((s.cell(), op, short_bytes(r.data["size_bytes"]), what, gbps_iqr(m), rel, fmt(m.gflops),
                         m.runs))
        if copy:
            rows.append((s.cell(), "copy", short_bytes(copy.shape[0]), "reads 1, writes 1", gbps_iqr(copy), "100 %",
                         "0", copy.runs))
    shown = ew + list(cp.values())
    out = table(["Device", "Op", "Size of each tensor", "Traffic per element", "GB/s, median (IQR)",
                 "% of copy", "GFLOP/s", "Runs"], rows, align="lllrrrrr")
    out += caption("float32 tensors, output preallocated (relu runs as clamp_min(x, 0, out=y), what torch.relu "
                   "calls). Bytes counted = 4 x elements x (tensors read + written); 1 FLOP per element. "
                   "% of copy: against the same device's copy, from the same source.",
                   shown)
    return out + no_gpu_note(ew, "GPU rows of this table")


def elementwise_findings() -> str:
    cpu = next(s for s in elementwise_sources() if s.is_cpu and not s.archived)
    copy_src = next(s for s in copy_sources() if s.is_cpu and not s.archived)
    copy = dram_point(copy_src.result)
    add, relu = cpu.result.data["add"], cpu.result.data["relu"]
    return (
        f"On this build's CPU, `add` moves **{fmt(add.gbps)} GB/s** and `relu` **{fmt(relu.gbps)} GB/s**, against "
        f"**{fmt(copy.gbps) if copy else '–'} GB/s** for a plain copy of the same size. Yet they compute only "
        f"**{fmt(add.gflops)}** and **{fmt(relu.gflops)} GFLOP/s**: one operation per 12 (add) or 8 (relu) bytes "
        f"moved. The arithmetic is nearly free; the time is the memory traffic.\n"
    )


def host_to_device_chart() -> str:
    """Pageable against pinned host-to-device GB/s, for each accelerator shown."""
    found = accelerators(host_to_device_bandwidth)
    if not found:
        return no_gpu_note(found, "host-to-device copy measurements (pageable against pinned memory)")
    series, pts = [], []
    for i, s in enumerate(found):
        for mode, marker in (("pageable", "v"), ("pinned", "o")):
            sw = s.result.data[mode]
            pts += list(sw.points)
            series.append(Series(**{**sweep_series(f"{s.label}, {mode} host memory", sw, x="n", y="gbps",
                                                   source=s.origin).__dict__,
                                    "style": {**origin_style(i, False), "marker": marker}}))
    runs = sorted({m.runs for m in pts}) or [0]
    stopped = "; ".join(f"{s.label} {mode}: {s.result.data[mode].stopped}" for s in found
                        for mode in ("pageable", "pinned") if s.result.data[mode].stopped)
    xs = [m.shape[0] for m in pts]
    chart = line_chart(
        legible(series), title=f"Host-to-device copy bandwidth: {chart_text(', '.join(s.model for s in found))}",
        xlabel="bytes copied per call", ylabel="GB/s (10^9 bytes per second)",
        caption_text=(f"dst.copy_(src) from host memory to the device; bytes counted once (they cross the link "
                      f"once). Line: median; band: IQR; {runs[0]}–{runs[-1]} timed runs per size. "
                      + "; ".join(f"{s.model}: {s.full_name}" for s in found) + "."
                      + (f" {stopped}." if stopped else "")),
        results=found, logx=True, logy=True,
        xticks=size_ticks(min(xs), max(xs), step=16) if xs else (),
    )
    table_ = series_table(series, x="Bytes copied per call", y="GB/s", x_text=short_bytes)
    return chart + figures_table(chart, table_) + no_gpu_note(found)


def host_to_device_findings() -> str:
    text = ""
    copies = {s.origin: s for s in accelerators(copy_bandwidth)}
    for s in accelerators(host_to_device_bandwidth):
        pageable, pinned = s.result.data["pageable"].points, s.result.data["pinned"].points
        own = copies.get(s.origin)
        device_copy = dram_point(own.result) if own else None
        if not pageable or not pinned or device_copy is None:
            continue
        text += (
            f"On {s.label}, for the largest transfer ({short_bytes(pinned[-1].shape[0])}), pageable memory gives "
            f"**{fmt(pageable[-1].gbps)} GB/s** and pinned memory **{fmt(pinned[-1].gbps)} GB/s** (bytes copied); "
            f"the device's own memory copies at **{fmt(device_copy.gbps)} GB/s** "
            f"(bytes read + written, so half of that is copied), "
            f"**{device_copy.gbps / 2 / pinned[-1].gbps:,.0f}x** the pinned transfer.\n\n"
        )
    return text + ("Data that crosses the host link on every step is the first thing to remove.\n" if text else "")


# --- pinned copies against the PCIe link's one-way limit ---

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


# PCI Express Base Specification 4.0 (16 GT/s) and 5.0 (32 GT/s), both 128b/130b encoded. NVIDIA's
# "128 GB/s" for an H100's PCIe Gen5 counts both directions together, before encoding.
PCIE_GEN4 = PcieLink(4, 16.0)
PCIE_GEN5 = PcieLink(5, 32.0)
# A copy at this share of the encoded limit or more is "near the practical ceiling": with 256-byte
# payloads, each packet's header and the link's flow control cost roughly a tenth of the link.
NEAR_CEILING = 0.8


def pcie_findings() -> str:
    """The best pinned host-to-device copy of each accelerator against the one-way PCIe x16 limits."""
    text = ""
    g4, g5 = PCIE_GEN4.one_way_bytes_per_s, PCIE_GEN5.one_way_bytes_per_s
    for s in accelerators(host_to_device_bandwidth):
        pinned = [m for m in s.result.data["pinned"].points if m.gbps]
        if not pinned:
            continue
        best = max(pinned, key=lambda m: m.gbps)
        bps = best.gbps * 1e9
        text += (f"On {s.label}, the best pinned copy moved **{fmt(best.gbps)} GB/s** "
                 f"({short_bytes(best.shape[0])} per call): **{fmt(100 * bps / g5, 3)} %** of PCIe Gen5 x16's "
                 f"one-way limit of {fmt(g5 / 1e9, 3)} GB/s after encoding")
        if bps > g4:
            text += (f", and more than a Gen4 x16 link's {fmt(g4 / 1e9, 3)} GB/s could carry, so this link runs "
                     "at Gen5. " + ("Packet headers and flow control take roughly another tenth of the link, so "
                                    "this is close to the practical ceiling.\n\n" if bps >= NEAR_CEILING * g5 else
                                    "Packet headers and flow control take roughly a tenth of the link; the rest of "
                                    "the gap is the copy's own cost.\n\n"))
        else:
            text += (f"; {fmt(100 * bps / g4, 3)} % of a Gen4 x16 link's {fmt(g4 / 1e9, 3)} GB/s. PCIe's "
                     "generation is not visible to torch, so either may apply.\n\n")
    return text


# --- the L2 tier, with the launch cost removed ---

def _per_copy_series(label: str, points: Sequence[Measurement], source: str, style: dict) -> Series:
    """GB/s against one copy's bytes read + written (a call may run many copies: x is per copy)."""
    return Series(label, [2.0 * m.shape[0] for m in points], [m.gbps for m in points],
                  [m.bytes_moved / m.p75 / 1e9 for m in points], [m.bytes_moved / m.p25 / 1e9 for m in points],
                  style=style, source=source)


def _launch_free_how(src: Source) -> str:
    return "CUDA-graph replay" if src.result.data["graphs"] else "many copies per call"


def l2_copy_chart(src: Source) -> str:
    """One accelerator: copies one per call against copies with the launch cost removed; L2 and datasheet memory peak marked."""
    pts = src.result.data["sweep"].points
    if not pts:
        return ""
    style = origin_style(0, False)
    series = []
    plain = sibling(src, copy_bandwidth)
    if plain and plain.result.data["sweep"].points:
        series.append(_per_copy_series(f"{src.label}: one copy per call", plain.result.data["sweep"].points,
                                       plain.origin, {**style, "marker": "v", "linestyle": ":"}))
    series.append(_per_copy_series(f"{src.label}: {_launch_free_how(src)}", pts, src.origin,
                                   {**style, "linestyle": "-"}))
    hw = src.hardware
    vlines = [(size, chart_text(name)) for size, name in cache_tiers(hw, src.device)]
    acc = hw.accelerator
    memory = memory_kind(acc)  # HBM, GDDR or "device memory": named by its datasheet row, never guessed
    hlines = [(acc.peaks.bandwidth / 1e9, f"{memory} datasheet peak {fmt(acc.peaks.bandwidth / 1e9)} GB/s")] \
        if acc and acc.peaks else []
    copies = src.result.data["copies_per_call"]
    runs = sorted({m.runs for m in pts})
    text = (f"dst.copy_(src), float32, against one copy's bytes read + written (source + destination: its working "
            f"set); GB = 10^9 bytes. Circles: {len(pts)} sizes, each timed call running {min(copies):,}–"
            f"{max(copies):,} copies ("
            + ("captured once in a CUDA graph and replayed: one launch for all of them"
               if src.result.data["graphs"] else "issued in a loop, so launches queue while earlier copies run")
            + f"), {runs[0]}–{runs[-1]} timed runs each. Triangles: the copy sweep above, one copy per call"
            + (" (both dashed: archived)" if src.archived else " (dotted)") + ". "
            "Dashed vertical line: the L2 as torch reports it."
            + (f" Dotted horizontal line: datasheet {memory} peak ({acc.peaks.source})." if hlines else "")
            + (f" Sweep note: {src.result.data['sweep'].stopped}." if src.result.data["sweep"].stopped else ""))
    xs = [x for s in series for x in s.x]
    shown = [src] + ([plain] if plain else [])
    chart = line_chart(
        legible(series), title=f"L2 and {memory}, launch cost removed: {chart_text(src.label)}",
        xlabel="bytes read + written per copy", ylabel="GB/s (10^9 bytes per second)", caption_text=text,
        results=shown, logx=True, logy=True, vlines=vlines, hlines=hlines,
        xticks=size_ticks(min(xs), max(xs), step=16),
    )
    return chart + figures_table(chart, series_table(series, x="Bytes read + written per copy", y="GB/s",
                                                     x_text=short_bytes),
                                 reference_note(hlines=hlines, vlines=vlines, x_text=short_bytes))


def l2_copy_charts() -> str:
    """One chart per accelerator that has the launch-free copy sweep; nothing where none has (no CPU figure)."""
    return "\n".join(l2_copy_chart(s) for s in accelerators(l2_copy_bandwidth))


def l2_floor_reason(graphs: bool, climbs_to_the_end: bool) -> str:
    """Why the launch-free in-L2 figure is a floor of the L2's bandwidth, not its value."""
    how = ("CUDA-graph replay removes the host's launch of each copy, not the copy kernel's own start-up and "
           "drain on the GPU" if graphs else
           "Queued launches hide the host's launch of each copy, not the copy kernel's own start-up and drain on "
           "the GPU")
    return (how + ": a fixed cost per copy remains, and the smaller the copy, the larger its share. "
            + ("So the line still climbs at the largest size that fits in the L2, and its best point is a floor "
               "of the L2's bandwidth, not its value." if climbs_to_the_end else
               "So the best point inside the L2 is a floor of its bandwidth, not its value."))


# A call within this factor of the fastest small call takes "about the same" time.
SAME_CALL = 1.1


def one_per_call_note(plain: Sequence[Measurement], buffer_bytes: int) -> str:
    """What the one-copy-per-call sweep measured at the same size: the call's fixed cost, or the copy.

    The size counts as call-bound when it lies in that sweep's overhead region (``overhead_region``),
    the same test that shades the copy chart, so the two paragraphs never disagree.
    """
    same = next((m for m in plain if m.shape[0] == buffer_bytes), None)
    if same is None or not same.gbps:
        return ""
    span = overhead_region(plain)
    text = (f" One copy per call, the same {short_bytes(buffer_bytes)} copy measured **{fmt(same.gbps)} GB/s** "
            f"({fmt_time(same.median)} per call): ")
    if span and span[0] <= same.bytes_moved <= span[1]:
        floor = min(m.median for m in plain[:3])
        return text + ("about the same as" if same.median < SAME_CALL * floor else "less than twice") + (
            f" the {fmt_time(floor)} of the fastest small copy, so there the call's fixed cost, not the L2, set "
            "the time.")
    return text + "past the sizes where the call's fixed cost dominates, so the copy itself set the time."


def l2_findings() -> str:
    """The L2 plateau against the device-memory plateau of each accelerator, and against its datasheet peak."""
    text = ""
    for s in accelerators(l2_copy_bandwidth):
        pts, l2 = s.result.data["sweep"].points, s.result.data["cache_bytes"]
        inside = [m for m in pts if l2 and 2 * m.shape[0] <= l2]
        beyond = [m for m in pts if l2 and 2 * m.shape[0] > l2]
        if not inside or not beyond:  # a sweep stopped early: no device-memory plateau to set the L2 against
            continue
        best, last = max(inside, key=lambda m: m.gbps or 0), beyond[-1]
        acc = s.hardware.accelerator
        memory = memory_kind(acc)
        text += (f"On {s.label}, with the launch cost removed ({_launch_free_how(s)}), copies whose source and "
                 f"destination fit in the {short_bytes(l2)} L2 reach **{fmt(best.gbps)} GB/s** "
                 f"({short_bytes(best.shape[0])} per buffer), and the largest, {short_bytes(last.shape[0])} per "
                 f"buffer, **{fmt(last.gbps)} GB/s**: "
                 + (f"the L2 is **at least {fmt(best.gbps / last.gbps)}x** as fast as {memory}. "
                    if best.gbps >= 1.1 * last.gbps
                    else f"the L2 is no faster than {memory} here ({fmt(best.gbps / last.gbps)}x). ")
                 + l2_floor_reason(s.result.data["graphs"], best is inside[-1]))
        peak = acc.peaks.bandwidth / 1e9 if acc and acc.peaks else None
        if peak and best.gbps > peak:
            text += (f" That L2 figure is above the {fmt(peak)} GB/s {memory} datasheet peak: those bytes never "
                     "leave the chip. It is why gpucnn's harness holds only copies far beyond the L2 to the "
                     "device-memory peak when it checks for impossible results.")
        plain = sibling(s, copy_bandwidth)
        if plain is not None:
            text += one_per_call_note(plain.result.data["sweep"].points, best.shape[0])
        text += "\n\n"
    return text


# --- host-to-device copies overlapping compute ---

def overlap_table() -> str:
    """Each accelerator's pinned copy and matmul: alone, one after the other, overlapped; nothing without one."""
    found = accelerators(copy_compute_overlap)
    rows = []
    for s in found:
        d = s.result.data
        copy, compute, serial, over = d["copy"], d["compute"], d["serial"], d["overlapped"]
        rows.append((s.cell(), fmt_time(copy.median), fmt_time(compute.median), fmt_time(serial.median),
                     fmt_time(over.median), f"**{fmt(serial.median / over.median)}x**",
                     f"{fmt(serial.median / max(copy.median, compute.median))}x"))
    if not rows:
        return ""
    d = found[0].result.data
    out = table(["Device", "Pinned copy alone", "Matmul alone", "Copy, then matmul", "Overlapped",
                 "Gain", "Best possible"], rows, align="lrrrrrr")
    return out + caption(
        f"Medians. Copy: {short_bytes(d['copy_bytes'])} from pinned host memory, non_blocking=True. Matmul: fp32 "
        f"n = {d['matmul_n']:,}, TF32 off, on data already on the device. Copy, then matmul: a blocking copy, then "
        "the matmul. Overlapped: the copy on a side stream while the matmul runs, then a wait for the copy. Gain: "
        "copy-then-matmul time / overlapped time; best possible: copy-then-matmul time / the longer of the two "
        "alone.", found)


def overlap_findings() -> str:
    """How much of the copy each accelerator hid behind the matmul, in words chosen from the figures."""
    text = ""
    for s in accelerators(copy_compute_overlap):
        d = s.result.data
        copy, compute, serial, over = (d[k].median for k in ("copy", "compute", "serial", "overlapped"))
        hidden = (serial - over) / min(copy, compute)
        how = ("almost all of the shorter one" if hidden >= 0.8 else
               f"about {fmt(100 * hidden, 2)} % of the shorter one" if hidden >= 0.1 else "nothing measurable")
        text += (f"On {s.label}, the copy ({fmt_time(copy)}) and the matmul ({fmt_time(compute)}) take "
                 f"**{fmt_time(serial)}** one after the other and **{fmt_time(over)}** overlapped: overlap hid "
                 f"{how}" + ("" if d["side_stream"] else
                             " (this device ran both on one stream: torch gives gpucnn a side stream only with CUDA)")
                 + ".\n\n")
    return text
