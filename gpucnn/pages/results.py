"""Page "Results across hardware": this build's headline figures beside the archive.

Every row says where its numbers come from: "measured in this build", or
"recorded on <hardware>, <date>" for a record from ``results/``. An archived
record is never shown as this build's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import matplotlib.pyplot as plt

from gpucnn.archive import Record, records
from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.hardware import format_bytes
from gpucnn.pages.common import accelerator, devices
from gpucnn.render import (
    COLORS,
    caption,
    figure_html,
    fmt,
    fmt_time,
    no_accelerator_note,
    provenance,
    style_context,
    table,
)
from gpucnn.results import Result, run

# The matmul size compared across machines: in both profiles' sweeps.
MATMUL_N = 1024
THIS_BUILD = "measured in this build"


@dataclass(frozen=True)
class Headline:
    """The three figures compared across machines, for one device of one source."""

    source: str  # "measured in this build" or "recorded on <hardware>, <date>"
    archived: bool
    file: str | None  # the archive file, for archived rows
    device: str
    device_label: str
    matmul: Measurement | None
    copy: Measurement | None
    latency: Measurement | None
    results: tuple[Result, ...]

    @property
    def torch(self) -> str:
        return self.results[0].torch if self.results else "–"

    @property
    def profile(self) -> str:
        return self.results[0].profile if self.results else "–"


def _matmul_point(r: Result | None) -> Measurement | None:
    """The sweep's point at ``MATMUL_N``, else its largest (the row says which n)."""
    if r is None or not r.data["sweep"].points:
        return None
    points = r.data["sweep"].points
    return next((m for m in points if m.shape[0] == MATMUL_N), points[-1])


def _copy_point(r: Result | None) -> Measurement | None:
    """The largest buffer of the copy sweep: well beyond the caches, so DRAM bandwidth."""
    return r.data["sweep"].points[-1] if r is not None and r.data["sweep"].points else None


def _headline(source: str, file: str | None, device: str, found: list[Result | None]) -> Headline:
    mm, cp, lat = found
    present = tuple(r for r in found if r is not None)
    label = present[0].hardware.device_label(device) if present else device
    return Headline(source, file is not None, file, device, label, _matmul_point(mm), _copy_point(cp),
                    lat.data["add_single"] if lat is not None else None, present)


def this_build() -> list[Headline]:
    """This build's figures, from the same runs that `gpucnn bench` makes."""
    out = []
    for d in devices():
        found: list[Result | None] = [run(fn, device=d) for fn in (matmul_sweep, copy_bandwidth, small_op_latency)]
        out.append(_headline(THIS_BUILD, None, d, found))
    return out


def archived(record: Record) -> list[Headline]:
    """One archived record's figures, one row per device it measured."""
    out = []
    for d in record.hardware.devices:
        found = [record.find(fn.__name__, device=d) for fn in (matmul_sweep, copy_bandwidth, small_op_latency)]
        present = [r for r in found if r is not None]
        if present:
            out.append(_headline(record.label(present), record.name, d, found))
    return out


def all_rows() -> tuple[list[Headline], list[Record]]:
    recs = records()
    return this_build() + [h for rec in recs for h in archived(rec)], recs


def _runs(m: Measurement | None) -> str:
    return f"{m.runs} runs" if m else "none"


def comparison_table() -> str:
    """This build's rows first, then the archive's, each labelled with its source."""
    rows_, recs = all_rows()
    rows = []
    for h in rows_:
        source = f"**{h.source}**" if not h.archived else f"{h.source} (`results/{h.file}`)"
        mm, cp, lat = h.matmul, h.copy, h.latency
        rows.append((
            source, h.device_label,
            f"{fmt(mm.gflops)} (n={mm.shape[0]})" if mm else "not in this record",
            f"{fmt(cp.gbps)} ({format_bytes(cp.shape[0])})" if cp else "not in this record",
            fmt_time(lat.median) if lat else "not in this record",
            h.torch, h.profile,
        ))
    out = table(["Source", "Device", "fp32 matmul GFLOP/s (size)", "Copy GB/s (largest buffer)",
                 "Tiny add, one call + sync", "torch", "Profile"], rows, align="llrrrll")
    own = [r for h in rows_ if not h.archived for r in h.results]
    note = ("Medians of each point's timed runs (matmul and copy: at least 5 runs; the add: hundreds). "
            "GB = 10^9 bytes, read + written. Rows 'measured in this build': ")
    out += caption(note, own)
    if recs:
        out += ('<p class="gpucnn-caption">Rows "recorded on ...": measured on another machine, on the date '
                "shown, and read from the archive file named in the row; they were not measured in this "
                "build, and their torch version and profile are those of that machine's build.</p>\n")
    if accelerator() is None:
        out += "\n" + no_accelerator_note("GPU rows of this build")
    return out


def comparison_chart() -> str:
    """Horizontal bars: matmul GFLOP/s and copy GB/s per row, archived rows hatched."""
    rows_, _ = all_rows()
    labels = [f"{h.device_label}\n" + (f"recorded {h.results[0].date}" if h.archived else "this build")
              for h in rows_]
    panels = [("matmul", "fp32 matmul GFLOP/s", "gflops"), ("copy", "copy GB/s, largest buffer", "gbps")]
    with style_context():
        plt.rcParams["hatch.color"] = "#010203"  # drawn in the page's text colour, like the axes
        fig, axs = plt.subplots(1, 2, sharey=True, figsize=(8.0, 1.8 + 0.7 * len(rows_)))
        for ax, (attr, xlabel, unit) in zip(axs, panels, strict=True):
            for i, h in enumerate(rows_):
                m: Measurement | None = getattr(h, attr)
                if m is None:
                    continue
                work = (m.flops if unit == "gflops" else m.bytes_moved) / 1e9
                value = work / m.median
                err = [[value - work / m.p75], [work / m.p25 - value]]
                ax.barh(i, value, xerr=err, capsize=3, color=COLORS[1] if h.archived else COLORS[0],
                        hatch="//" if h.archived else "", edgecolor="#010203", linewidth=0.5)
                ax.annotate(fmt(value), (work / m.p25, i), xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=8)
            values = [getattr(h, attr) for h in rows_]
            rates = [(m.flops if unit == "gflops" else m.bytes_moved) / m.median / 1e9 for m in values if m]
            # A GPU beside a CPU spans decades: log scale then; linear for similar machines.
            if rates and max(rates) > 10 * min(rates):
                ax.set_xscale("log")
                xlabel += " (log scale)"
            else:
                ax.set_xlim(0, max(rates or [1]) * 1.3)
            ax.set_xlabel(xlabel)
            ax.grid(True, axis="x", which="major")
        axs[0].set_yticks(range(len(rows_)), labels, fontsize=8)
        axs[0].invert_yaxis()
        fig.suptitle("This build beside the archive (plain: this build; hatched: recorded elsewhere)", fontsize=11)
    desc = "; ".join(
        f"{h.device_label}, {h.source}: matmul {fmt(h.matmul.gflops) if h.matmul else 'none'} GFLOP/s, "
        f"copy {fmt(h.copy.gbps) if h.copy else 'none'} GB/s" for h in rows_)
    own = [r for h in rows_ if not h.archived for r in h.results]
    runs = "; ".join(f"{h.device_label}, {h.source}: matmul {_runs(h.matmul)}, copy {_runs(h.copy)}"
                     for h in rows_)
    return figure_html(
        fig, title="Matmul GFLOP/s and copy GB/s, this build and archived machines", desc=desc,
        caption_text=f"Bars: median; whiskers: IQR (p25 to p75) of the timed runs ({runs}). Hatched bars were "
                     f"recorded on the machine and date their label names, not in this build. Plain bars:",
        results=own)


def archive_summary() -> str:
    """What the archive holds, or that it is empty."""
    recs = records()
    if not recs:
        return ("The archive (`results/` in the repository) holds no records yet, so the table shows only "
                "this build's figures. To add your machine's, follow [Reproduce](reproduce.md).\n")
    rows = [(f"`results/{r.name}`", html.escape(r.label().removeprefix("recorded on ")), r.document["profile"],
             r.document["torch"], r.document.get("commit") or "–", len(r.results)) for r in recs]
    return (f"The archive holds {len(recs)} record(s):\n\n"
            + table(["File", "Machine, date measured", "Profile", "torch", "Commit", "Experiments"], rows,
                    align="llllll"))


def this_build_sentence() -> str:
    """One sentence naming this build's machine, with provenance."""
    return f"{provenance([r for h in this_build() for r in h.results])}\n"
