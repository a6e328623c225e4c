"""Page "Summary" (and Home's headline figures): every headline figure of this build in
one table, each at a fixed, stated size, reusing the other pages' measurements."""

from __future__ import annotations

from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
from gpucnn.pages.bandwidth import dram_point, short_bytes
from gpucnn.pages.common import accelerator, devices
from gpucnn.pages.fast_memory import headline_n, matmul_at
from gpucnn.render import caption, fmt, fmt_time, no_accelerator_note, table
from gpucnn.results import Result, run


@dataclass(frozen=True)
class Headline:
    """One headline figure on one device: a Measurement at a fixed size, or why there is none."""

    what: str
    size: str
    kind: str  # "gflops", "gbps" or "time"
    point: Measurement | None
    missing: str = "not measured"

    def value(self) -> str:
        m = self.point
        if m is None:
            return self.missing
        if self.kind == "gflops":
            return f"{fmt(m.gflops)} GFLOP/s"
        if self.kind == "gbps":
            return f"{fmt(m.gbps)} GB/s"
        return fmt_time(m.median)

    def pct_of_peak(self, device: str) -> str:
        m = self.point
        if m is None or self.kind == "time":
            return "–"
        if self.kind == "gflops":
            if m.pct_peak_flops is None:
                return "no peak known"
            return f"{fmt(m.pct_peak_flops, 2)} %" + (" of estimate" if device == "cpu" else " of datasheet")
        if m.pct_peak_bandwidth is None:
            return "no datasheet peak" if device == "cpu" else "no peak known"
        return f"{fmt(m.pct_peak_bandwidth, 2)} % of datasheet"


def headlines(device: str) -> tuple[list[Headline], list[Result]]:
    """The headline figures of ``device``, from the same experiment runs as the other pages."""
    n = headline_n()
    mm, cp = run(matmul_sweep, device=device), run(copy_bandwidth, device=device)
    ew, lat = run(elementwise_bandwidth, device=device), run(small_op_latency, device=device)
    copy = dram_point(cp)
    size = short_bytes(ew.data["size_bytes"])
    stopped = mm.data["sweep"].stopped or "the sweep stopped before this size"
    rows = [
        Headline("fp32 matmul throughput", f"n = {n}", "gflops", matmul_at(mm, n), f"not measured ({stopped})"),
        Headline("DRAM copy bandwidth", f"{short_bytes(copy.shape[0])} per buffer" if copy else "–", "gbps", copy),
        Headline("add bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.data["add"]),
        Headline("relu bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.data["relu"]),
        Headline("small-op latency: one add + synchronize", "1 element", "time", lat.data["add_single"]),
        Headline("small-op dispatch: adds back to back", "1 element", "time", lat.data["add_stream"]),
        Headline("2x2 matmul + synchronize", "n = 2", "time", lat.data["matmul2x2_single"]),
    ]
    return rows, [mm, cp, ew, lat]


def headline_table() -> str:
    """The one table that Home and Summary both print."""
    per_device = {d: headlines(d) for d in devices()}
    acc = accelerator()
    cpu_rows, results = per_device["cpu"]
    if acc:
        acc_rows, acc_results = per_device[acc]
        results = results + acc_results
    hw = results[0].hardware
    headers = ["Figure", "Size", hw.device_label("cpu"), "% of peak",
               hw.device_label(acc) if acc else "GPU", "% of peak"]
    rows = []
    for i, h in enumerate(cpu_rows):
        if acc:
            g = acc_rows[i]
            rows.append((h.what, h.size if h.size == g.size else f"CPU {h.size}; GPU {g.size}", h.value(),
                         h.pct_of_peak("cpu"), g.value(), g.pct_of_peak(acc)))
        else:
            rows.append((h.what, h.size, h.value(), h.pct_of_peak("cpu"), "no GPU in this build", "–"))
    runs = sorted({h.point.runs for h in cpu_rows if h.point})
    out = table(headers, rows, align="llrrrr")
    out += caption(
        f"Each figure is the median at the fixed size shown (never the best of a sweep), from {runs[0]}–{runs[-1]} "
        f"timed runs. Bandwidth counts bytes read + written, GB = 10^9 bytes. The CPU's FLOP/s peak is an estimate "
        f"(cores x clock x FLOP per cycle); a GPU's is its datasheet figure; gpucnn knows no memory-bandwidth peak "
        f"for CPUs.", results)
    if acc is None:
        out += "\n" + no_accelerator_note("GPU figures of this table")
    return out
