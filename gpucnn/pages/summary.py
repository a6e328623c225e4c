"""Page "Summary" (and Home's headline figures): every headline figure of this build in
one table, each at a fixed, stated size, reusing the other pages' measurements."""

from __future__ import annotations

from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, elementwise_bandwidth
from gpucnn.figures import dram_point, matmul_at
from gpucnn.render import caption, fmt, fmt_time, short_bytes, table
from gpucnn.sources import Source, no_gpu_note, sibling, sources, sources_caption


@dataclass(frozen=True)
class Headline:
    """One headline figure on one device: a Measurement at a fixed size, or why there is none."""

    what: str
    size: str
    kind: str  # "gflops", "gbps" or "time"
    point: Measurement | None
    missing: str = "none in this source"

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


def headlines(src: Source) -> tuple[list[Headline], list[Source]]:
    """The headline figures of one device from one source, from the same experiment runs as the other pages."""
    mm = src
    cp, ew, lat = (sibling(src, fn) for fn in (copy_bandwidth, elementwise_bandwidth, small_op_latency))
    m = matmul_at(mm.result)
    copy = dram_point(cp.result) if cp else None
    size = short_bytes(ew.result.data["size_bytes"]) if ew else "–"
    stopped = mm.result.data["sweep"].stopped or "the sweep stopped before this size"
    rows = [
        Headline("fp32 matmul throughput", f"n = {m.shape[0]}" if m else "–", "gflops", m, f"none ({stopped})"),
        Headline("DRAM copy bandwidth", f"{short_bytes(copy.shape[0])} per buffer" if copy else "–", "gbps", copy),
        Headline("add bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.result.data["add"] if ew else None),
        Headline("relu bandwidth (elementwise)", f"{size} per tensor", "gbps", ew.result.data["relu"] if ew else None),
        Headline("small-op latency: one add + synchronize", "1 element", "time",
                 lat.result.data["add_single"] if lat else None),
        Headline("small-op dispatch: adds back to back", "1 element", "time",
                 lat.result.data["add_stream"] if lat else None),
        Headline("2x2 matmul + synchronize", "n = 2", "time", lat.result.data["matmul2x2_single"] if lat else None),
    ]
    return rows, [s for s in (mm, cp, ew, lat) if s is not None]


def headline_table() -> str:
    """The one table that Home and Summary both print: one column per device and source."""
    found = sources(matmul_sweep, hosts=True)
    per_source = [(s, *headlines(s)) for s in found]
    shown = [x for _, _, used in per_source for x in used]
    headers = ["Figure", *[s.cell() for s in found]]
    rows = []
    for i, what in enumerate(h.what for h in per_source[0][1]):
        cells = []
        for s, hs, _ in per_source:
            h = hs[i]
            pct = h.pct_of_peak(s.device)
            cells.append(f"{h.value()}<br><small>{h.size}" + (f"; {pct}" if pct != "–" else "") + "</small>")
        rows.append((what, *cells))
    runs = sorted({h.point.runs for _, hs, _ in per_source for h in hs if h.point}) or [0]
    out = table(headers, rows, align="l" + "r" * len(found))
    out += caption(
        f"Each figure is the median at the fixed size shown under it (never the best of a sweep), from "
        f"{runs[0]}–{runs[-1]} timed runs. Bandwidth counts bytes read + written, GB = 10^9 bytes. % of peak: the "
        f"CPU's FLOP/s peak is an estimated upper bound (cores x clock x FLOP per cycle); a GPU's is its datasheet "
        f"figure; gpucnn knows no memory-bandwidth peak for CPUs. Compare a GPU only with the CPU of its own "
        f"source.", [x.result for x in shown if not x.archived], sources_caption(shown))
    return out + no_gpu_note(found, "GPU figures of this table")
