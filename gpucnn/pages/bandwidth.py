"""Page "Advantage 1: memory bandwidth": copies against size, cache tiers, DRAM against
peak, host-to-device copies, and elementwise ops."""

from __future__ import annotations

from collections.abc import Sequence

from gpucnn.bench import Measurement, Sweep
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth, host_to_device_bandwidth
from gpucnn.hardware import HardwareReport, cpu_caches
from gpucnn.pages.common import accelerator, devices
from gpucnn.render import caption, fmt, fmt_time, line_chart, no_accelerator_note, sweep_series, table
from gpucnn.results import Result, run

# A call is "overhead-dominated" while it takes less than this many times the
# smallest size's time: the fixed per-call cost is then at least half of it.
OVERHEAD_FACTOR = 2.0


def short_bytes(n: float) -> str:
    """A power-of-two size the short way: ``512 B``, ``4 KiB``, ``32 MiB``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if float(n).is_integer() else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"


def size_ticks(lo: float, hi: float, step: int = 8) -> list[tuple[float, str]]:
    """Tick marks at powers of ``step`` x 1 KiB between ``lo`` and ``hi``, labelled in KiB/MiB."""
    ticks, v = [], 1024.0
    while v > lo:
        v /= step
    while v <= hi:
        if v >= lo:
            ticks.append((v, short_bytes(v)))
        v *= step
    return ticks


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


def copy_results() -> list[Result]:
    return [run(copy_bandwidth, device=d) for d in devices()]


def elementwise_results() -> list[Result]:
    return [run(elementwise_bandwidth, device=d) for d in devices()]


def dram_point(result: Result) -> Measurement | None:
    """The copy at the largest buffer: the one that measures DRAM (or HBM), not a cache."""
    pts = result.data["sweep"].points
    return pts[-1] if pts else None


def gbps_iqr(m: Measurement) -> str:
    """GB/s at the median, with the IQR range."""
    return f"{fmt(m.gbps)} ({fmt(m.bytes_moved / m.p75 / 1e9)}–{fmt(m.bytes_moved / m.p25 / 1e9)})"


def copy_chart(device: str) -> str:
    """Copy GB/s against bytes moved on one device, cache tiers marked, overhead region shaded."""
    r = run(copy_bandwidth, device=device)
    sw: Sweep = r.data["sweep"]
    pts = sw.points
    label = r.hardware.device_label(device)
    series = [sweep_series(label, sw, x="bytes", y="gbps")]
    vlines = [(size, name) for size, name in cache_tiers(r.hardware, device)]
    span = overhead_region(pts)
    spans = [(span[0], span[1], "per-call overhead\ndominates")] if span else []
    hlines = []
    acc = r.hardware.accelerator
    if device != "cpu" and acc and acc.peaks:
        hlines.append((acc.peaks.bandwidth / 1e9, f"datasheet peak {fmt(acc.peaks.bandwidth / 1e9)} GB/s ({acc.peaks.source})"))
    runs = sorted({m.runs for m in pts})
    text = (
        f"Copy bandwidth of dst.copy_(src), float32, against the bytes one call reads plus writes "
        f"(source + destination buffer, so also the working set); GB = 10^9 bytes. Line: median; band: IQR; "
        f"{len(pts)} sizes, {runs[0]}–{runs[-1]} timed runs each. Dashed lines: cache sizes"
        + (" read from sysfs (per core: a copy split over several threads gets one such cache per core)"
           if device == "cpu" else "") +
        ". Shaded: sizes whose call takes less than twice the fastest of the three smallest sizes', where the "
        "fixed per-call cost is at least half the time." + (f" Sweep note: {sw.stopped}." if sw.stopped else "")
    )
    xs = [m.bytes_moved for m in pts]
    return line_chart(
        series, title=f"Copy bandwidth against size: {label}", xlabel="bytes read + written per call",
        ylabel="GB/s (10^9 bytes per second)", caption_text=text, results=r, logx=True, logy=True,
        vlines=vlines, spans=spans, hlines=hlines, xticks=size_ticks(min(xs), max(xs)) if xs else (),
    )


def copy_charts() -> str:
    """One copy chart per device, and the no-accelerator note on a CPU-only build."""
    out = "\n".join(copy_chart(d) for d in devices())
    if accelerator() is None:
        out += "\n" + no_accelerator_note("GPU copy-bandwidth figures (its L2 and HBM tiers)")
    return out


def copy_findings() -> str:
    """Sentences quoting the CPU's (and accelerator's) copy figures."""
    lines = []
    for r in copy_results():
        dev = r.params["device"]
        pts = r.data["sweep"].points
        if not pts:
            continue
        first, best, last = pts[0], max(pts, key=lambda m: m.gbps or 0), pts[-1]
        span = overhead_region(pts)
        name = "the CPU" if dev == "cpu" else f"the {dev.upper()} device"
        text = (
            f"On {name}, the smallest copy ({short_bytes(first.shape[0])} per buffer) takes "
            f"**{fmt_time(first.median)}**, which is only **{fmt(first.gbps)} GB/s**"
        )
        if span:
            text += (f"; copies up to {short_bytes(span[1] / 2)} per buffer take less than twice as long as the "
                     f"fastest small one, "
                     f"so at that end the chart shows the cost of a call, not the speed of a cache")
        text += (
            f". The fastest size is {short_bytes(best.shape[0])} per buffer at **{fmt(best.gbps)} GB/s**, "
            f"and the largest, {short_bytes(last.shape[0])} per buffer (far beyond every cache), "
            f"reaches **{fmt(last.gbps)} GB/s**: that is the "
            f"{'DRAM' if dev == 'cpu' else 'device-memory (HBM or GDDR)'} figure.\n"
        )
        lines.append(text)
    return "\n".join(lines)


def dram_table() -> str:
    """Measured DRAM copy bandwidth next to the peak (datasheet for a GPU; none for the CPU)."""
    rows = []
    for r in copy_results():
        dev = r.params["device"]
        m = dram_point(r)
        if m is None:
            continue
        acc = r.hardware.accelerator
        if dev == "cpu":
            peak, pct = "none: gpucnn has no datasheet memory bandwidth for CPUs", "–"
        elif acc and acc.peaks:
            peak, pct = f"{fmt(acc.peaks.bandwidth / 1e9)} GB/s ({acc.peaks.source})", f"{fmt(m.pct_peak_bandwidth)} %"
        else:
            peak, pct = "not in gpucnn's datasheet table", "–"
        rows.append((r.hardware.device_label(dev), short_bytes(m.shape[0]), gbps_iqr(m), peak, pct, m.runs))
    out = table(["Device", "Buffer (each of 2)", "Measured copy GB/s, median (IQR)", "Peak", "% of peak", "Runs"],
                rows, align="llrlrr")
    out += caption("Copy of the largest buffer of the sweep: read + written bytes, GB = 10^9 bytes.", copy_results())
    if accelerator() is None:
        out += "\n" + no_accelerator_note("GPU figures (measured HBM bandwidth against its datasheet peak)")
    return out


def elementwise_table() -> str:
    """add and relu GB/s (and GFLOP/s) far beyond the cache, next to a copy."""
    rows = []
    for r, c in zip(elementwise_results(), copy_results(), strict=True):
        dev = r.params["device"]
        label = r.hardware.device_label(dev)
        copy = dram_point(c)
        for op, what in (("add", "reads 2, writes 1"), ("relu", "reads 1, writes 1")):
            m = r.data[op]
            rel = f"{100 * m.gbps / copy.gbps:.0f} %" if copy and copy.gbps else "–"
            rows.append((label, op, short_bytes(r.data["size_bytes"]), what, gbps_iqr(m), rel, fmt(m.gflops), m.runs))
        if copy:
            rows.append((label, "copy", short_bytes(copy.shape[0]), "reads 1, writes 1", gbps_iqr(copy), "100 %",
                         "0", copy.runs))
    out = table(["Device", "Op", "Size of each tensor", "Traffic per element", "GB/s, median (IQR)",
                 "% of copy", "GFLOP/s", "Runs"], rows, align="lllrrrrr")
    out += caption("float32 tensors, output preallocated (relu runs as clamp_min(x, 0, out=y), what torch.relu "
                   "calls). Bytes counted = 4 x elements x (tensors read + written); 1 FLOP per element.",
                   elementwise_results() + copy_results())
    if accelerator() is None:
        out += "\n" + no_accelerator_note("GPU rows of this table")
    return out


def elementwise_findings() -> str:
    r = run(elementwise_bandwidth, device="cpu")
    copy = dram_point(run(copy_bandwidth, device="cpu"))
    add, relu = r.data["add"], r.data["relu"]
    return (
        f"On the CPU, `add` moves **{fmt(add.gbps)} GB/s** and `relu` **{fmt(relu.gbps)} GB/s**, against "
        f"**{fmt(copy.gbps) if copy else '–'} GB/s** for a plain copy of the same size. Yet they compute only "
        f"**{fmt(add.gflops)}** and **{fmt(relu.gflops)} GFLOP/s**: one operation per 12 (add) or 8 (relu) bytes "
        f"moved. The arithmetic is nearly free; the time is the memory traffic.\n"
    )


def host_to_device_chart() -> str:
    """Pageable against pinned host-to-device GB/s; the note on a CPU-only build."""
    acc = accelerator()
    if acc is None:
        return no_accelerator_note("host-to-device copy measurements (pageable against pinned memory)")
    r = run(host_to_device_bandwidth, device=acc)
    series = [sweep_series(f"{mode} host memory -> {r.hardware.device_label(acc)}", r.data[mode], x="n", y="gbps")
              for mode in ("pageable", "pinned")]
    pts = [m for mode in ("pageable", "pinned") for m in r.data[mode].points]
    runs = sorted({m.runs for m in pts}) or [0]
    stopped = "; ".join(f"{mode}: {r.data[mode].stopped}" for mode in ("pageable", "pinned") if r.data[mode].stopped)
    xs = [m.shape[0] for m in pts]
    return line_chart(
        series, title="Host-to-device copy bandwidth", xlabel="bytes copied per call",
        ylabel="GB/s (10^9 bytes per second)",
        caption_text=(f"dst.copy_(src) from host memory to the device; bytes counted once (they cross the link "
                      f"once). Line: median; band: IQR; {runs[0]}–{runs[-1]} timed runs per size."
                      + (f" {stopped}." if stopped else "")),
        results=r, logx=True, logy=True, xticks=size_ticks(min(xs), max(xs), step=16) if xs else (),
    )


def host_to_device_findings() -> str:
    acc = accelerator()
    if acc is None:
        return ""
    r = run(host_to_device_bandwidth, device=acc)
    pageable, pinned = r.data["pageable"].points, r.data["pinned"].points
    if not pageable or not pinned:
        return ""
    return (
        f"For the largest transfer ({short_bytes(pinned[-1].shape[0])}), pageable memory gives "
        f"**{fmt(pageable[-1].gbps)} GB/s** and pinned memory **{fmt(pinned[-1].gbps)} GB/s** (bytes copied); "
        f"the device's own memory copies at **{fmt(dram_point(run(copy_bandwidth, device=acc)).gbps)} GB/s** "
        f"(bytes read + written, so half of that is copied). Data that crosses "
        f"the host link on every step is the first thing to remove.\n"
    )
