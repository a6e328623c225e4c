"""Page "Results across hardware": this build's headline figures beside every archived record.

Every row says where its numbers come from, with a ``data-source`` marker:
this build's rows are "measured in this build"; an archived row is labelled
with its machine, torch version, commit and date, and the archive file. An
archived record is never shown as this build's. The headline table and chart
follow the other pages' rule (``gpucnn.sources``): an archived GPU record's
figure appears only where the other pages draw it, so a record of the model
this build measures live, an older record of a model that a newer one
replaces and a superseded experiment are left out of them (a CPU-only record,
which no other page draws, is shown here). The archive table lists every
record, and gives each record its real reason (``record_reasons``, from ``sources.choices``): drawn, or the live
model, no result, superseded, a newer record of its model, or the three-accelerator cap and the records that took
the places. The reasons are values; the sentences a reader reads are in docs/results.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from gpucnn import hardware
from gpucnn.archive import Record, status_flags
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.figures import dram_point, matmul_at
from gpucnn.hardware import format_bytes
from gpucnn.measurement import Measurement
from gpucnn.render import (
    _SERIES_GID,  # the group id figure_html marks with data-source
    chart_text,
    distinct_markers,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    provenance,
    source_colour,
    style_context,
    table,
)
from gpucnn.results import Result, run
from gpucnn.sources import (
    Choice,
    Source,
    and_list,
    archived_accelerators,
    choices,
    find,
    one_line,
    plain_text,
    records_in_archive,
)
from gpucnn.sources import note as note_sources

HEADLINE_EXPERIMENTS = (matmul_sweep, copy_bandwidth, small_op_latency)


@dataclass(frozen=True)
class Headline:
    """The three figures compared across machines, for one device of one source."""

    source: Source  # the matmul source, or the first of the three found
    matmul: Measurement | None
    copy: Measurement | None
    latency: Measurement | None
    found: tuple[Source, ...]


def _headline(found: list[Source | None]) -> Headline | None:
    mm, cp, lat = found
    present = tuple(s for s in found if s is not None)
    if not present:
        return None
    return Headline(present[0], matmul_at(mm.result) if mm else None, dram_point(cp.result) if cp else None,
                    lat.result.typed.add_single if lat else None, present)


def this_build() -> list[Headline]:
    """This build's figures, from the same runs that `gpucnn bench` makes."""
    rows = [_headline([Source(d, run(fn, device=d)) for fn in HEADLINE_EXPERIMENTS]) for d in hardware.detect().devices]
    return [h for h in rows if h is not None]


def _drawn_records() -> dict[str, set[str]]:
    """For each headline experiment, the records the other pages draw it from (``sources.archived_accelerators``)."""
    return {fn.__name__: {rec.name for rec, _, _ in archived_accelerators(fn)} for fn in HEADLINE_EXPERIMENTS}


def _archived_source(record: Record, fn, device: str, drawn: dict[str, set[str]]) -> Source | None:
    # The rule of the other pages, not a second one: a GPU record's figure that the series source would not
    # draw (a record of the live model, a record a newer one of its model replaces) is not put beside this
    # build's either. A record of the CPU alone (a CPU-only machine, or `bench --device cpu` on a GPU machine)
    # has no model to replace: the other pages never draw it, this one does.
    if record.measured_an_accelerator and record.name not in drawn[fn.__name__]:
        return None
    result = find(record, fn, device=device)
    if result is None:
        return None
    flags = status_flags(record, result)
    return None if "superseded" in flags else Source(device, result, record, flags)


def archived(record: Record, drawn: dict[str, set[str]] | None = None) -> list[Headline]:
    """One archived record's figures, one row per device it measured: of a GPU record, only the figures the
    other pages draw; of a record of the CPU alone, every current one."""
    drawn = _drawn_records() if drawn is None else drawn
    rows = [_headline([_archived_source(record, fn, d, drawn) for fn in HEADLINE_EXPERIMENTS])
            for d in record.hardware.devices]
    return [h for h in rows if h is not None]


def all_rows() -> tuple[list[Headline], list[Record]]:
    """This build's rows, then the rows of the archived records the other pages draw; and every record."""
    recs = records_in_archive()
    drawn = _drawn_records()
    return this_build() + [h for rec in recs for h in archived(rec, drawn)], recs


def _live(rows: list[Headline]) -> list[Result]:
    return [s.result for h in rows for s in h.found if not s.archived]


def comparison_table() -> str:
    """This build's rows first, then every record's, each labelled with its source (the caption is the page's)."""
    rows_, _ = all_rows()
    rows = []
    for h in rows_:
        s = h.source
        # Escaped piece by piece: one_line would turn the bold markers of this build's row into literal asterisks.
        where = f"results/{one_line(s.record.name)}, {one_line(s.result.date)}" if s.archived \
            else f"**{one_line(s.provenance)}**"
        mm, cp, lat = h.matmul, h.copy, h.latency
        rows.append((
            s.cell(), where,
            f"{fmt(mm.gflops)} (n={mm.shape[0]})" if mm else "–",
            f"{fmt(cp.gbps)} ({format_bytes(cp.shape[0])})" if cp else "–",
            fmt_time(lat.median) if lat else "–",
            one_line(s.result.profile),
        ))
    note_sources([s for h in rows_ for s in h.found])
    return table(["Device", "Source", "fp32 matmul GFLOP/s (size)", "Copy GB/s (largest buffer)",
                  "Tiny add, one call + sync", "Profile"], rows, align="llrrrl")


@dataclass(frozen=True)
class Headlines:
    """What the page's words about the headline table stand on."""

    found: tuple[Source, ...]  # every source of the table, for notes.no_gpu
    archived_rows: bool  # the table holds rows of archived records
    devices: tuple[str, ...]  # the hardware of the chart's rows, for its caption (this build's and each record's)


def headlines() -> Headlines:
    rows_, _ = all_rows()
    found = tuple(s for h in rows_ for s in h.found)
    note_sources(found)
    names = tuple(dict.fromkeys(h.source.full_name for h in rows_ if h.matmul or h.copy))
    return Headlines(found, any(s.archived for s in found), names)


# The chart's two panels: (attribute of Headline, axis title, work per run in units of 1e9).
_PANELS = (("matmul", "fp32 matmul GFLOP/s (log)", lambda m: m.flops / 1e9),
           ("copy", "copy GB/s (log)", lambda m: m.bytes_moved / 1e9))


def comparison_chart() -> str:
    """Dots on a log axis: matmul GFLOP/s and copy GB/s of each row (median, IQR whiskers), GPUs and CPUs in
    panels of their own; colour = source, hollow = archived. The caption is the page's."""
    rows_, _ = all_rows()
    rows_ = [h for h in rows_ if h.matmul or h.copy]
    kinds = [k for k in (False, True) if any(h.source.is_cpu == k for h in rows_)]  # GPUs, then CPUs
    gids: list[str] = []
    with style_context():
        groups = [[h for h in rows_ if h.source.is_cpu == k] for k in kinds]
        heights = [max(1, len(g)) for g in groups]
        fig, axs = plt.subplots(len(groups) or 1, 2, squeeze=False, figsize=(7.0, 1.4 + 0.55 * sum(heights)),
                                gridspec_kw={"height_ratios": heights or [1]})
        shapes = distinct_markers([(h.source.origin, "o") for group in groups for h in group])
        for row, group in enumerate(groups):
            labels = [chart_text(h.source.label) for h in group]
            for col, (attr, xlabel, work_of) in enumerate(_PANELS):
                ax = axs[row][col]
                rates = []
                for i, h in enumerate(group):
                    m: Measurement | None = getattr(h, attr)
                    if m is None:
                        continue
                    work = work_of(m)
                    value = work / m.median
                    rates.append(value)
                    colour = source_colour(h.source.origin)
                    drawn = ax.errorbar([value], [i], xerr=[[value - work / m.p75], [work / m.p25 - value]],
                                        fmt=shapes[(h.source.origin, "o")], markersize=7, capsize=3, color=colour, ecolor=colour,
                                        markerfacecolor="none" if h.source.archived else colour)
                    drawn.lines[0].set_gid(f"{_SERIES_GID}{len(gids)}")  # the dot: its group carries the source
                    gids.append(h.source.origin)
                if rates:
                    ax.set_xscale("log")
                    ax.set_xlim(min(rates) / 3, max(rates) * 3)
                ax.set_ylim(len(group) - 0.5, -0.5)
                ax.set_yticks(range(len(group)), labels if col == 0 else [""] * len(group), fontsize=10)
                ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels run into each other
                ax.grid(True, axis="x", which="major")
                ax.set_xlabel(xlabel)  # each row has its own scale
        fig.tight_layout()
    desc = "; ".join(
        f"{h.source.label}: matmul {fmt(h.matmul.gflops) if h.matmul else 'none'} GFLOP/s, "
        f"copy {fmt(h.copy.gbps) if h.copy else 'none'} GB/s" for h in rows_)
    chart = figure_html(fig, title="Matmul GFLOP/s and copy GB/s, this build and archived machines", desc=desc,
                        caption_text="", results=[h.source for h in rows_], sources=gids)

    def rate_iqr(m: Measurement | None, work: float) -> str:
        return f"{fmt(work / m.median)} ({fmt(work / m.p75)}–{fmt(work / m.p25)})" if m else "–"

    rows = [(h.source.cell(), rate_iqr(h.matmul, h.matmul.flops / 1e9 if h.matmul else 0.0),
             rate_iqr(h.copy, h.copy.bytes_moved / 1e9 if h.copy else 0.0)) for h in rows_]
    return chart + figures_table(chart, html_table(
        ["Device", "fp32 matmul GFLOP/s: median (IQR)", "Copy GB/s, largest buffer: median (IQR)"], rows))


@dataclass(frozen=True)
class Reason:
    """One fact about what the site does with a record: ``what`` is a key of the page's sentences (docs/results.md),
    a ``sources.choices`` reason or ``cpu-only``, ``superseded-results``, ``code-changed``, ``older``."""

    what: str
    by: tuple[str, ...] = ()  # the records drawn instead (file names), or "this build"
    experiments: tuple[str, ...] = ()  # the experiments it applies to; empty: every headline figure


def record_reasons(record: Record, chosen: dict[str, list[Choice]] | None = None) -> list[Reason]:
    """What the other pages do with a record's headline figures (drawn, or each real reason why not), then what
    applies to its results: superseded, code changed since recording, older."""
    chosen = {fn.__name__: choices(fn) for fn in HEADLINE_EXPERIMENTS} if chosen is None else chosen
    out: list[Reason] = []
    if record.hardware.accelerator is None:
        out.append(Reason("cpu-only"))
    else:
        # Each headline experiment may have its own reason (a record holds one experiment and not another):
        # experiments that share a reason are said together; the experiments are named only where they differ.
        found: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for name, picks in chosen.items():
            pick = next((c for c in picks if c.record.name == record.name), None)
            key = (pick.reason, pick.by) if pick is not None else ("no-result", ())
            found.setdefault(key, []).append(name)
        out += [Reason(what, by, tuple(names) if len(found) > 1 else ()) for (what, by), names in found.items()]
    flags = [status_flags(record, r) for r in record.results]
    for flag, what in (("superseded", "superseded-results"), ("code-changed", "code-changed")):
        names = sorted({r.experiment for r, f in zip(record.results, flags, strict=True) if flag in f})
        if names:
            out.append(Reason(what, experiments=tuple(names)))
    if any("older" in f for f in flags):
        out.append(Reason("older"))
    return out


def _record_status(record: Record, chosen: dict[str, list[Choice]] | None = None) -> str:
    """The record's reasons as codes (``newer-record: results/x.json``), for tests and logs; the page's words
    for them are in docs/.partials/results.md."""
    parts = []
    for reason in record_reasons(record, chosen):
        by = and_list([b if b == "this build" else f"results/{b}" for b in reason.by])
        experiments = ", ".join(reason.experiments)
        parts.append(reason.what + (f": {by}" if by else "") + (f" ({experiments})" if experiments else ""))
    return "; ".join(parts)


@dataclass(frozen=True)
class ArchivedRecord:
    """One record of the archive, with what the site does with it (``reasons``). Strings are the record's own:
    the template escapes them."""

    name: str  # the file name under results/
    machine: str
    date: str
    profile: str
    torch: str
    commit: str  # "" when the record has none
    experiments: int
    reasons: tuple[Reason, ...]


def archive_records() -> tuple[ArchivedRecord, ...]:
    """Every record in the archive, newest first, with its reasons (``record_reasons``)."""
    chosen = {fn.__name__: choices(fn) for fn in HEADLINE_EXPERIMENTS}
    out = []
    for r in records_in_archive():
        hw = r.hardware
        machine = hw.accelerator.name if hw.accelerator else hw.cpu.model
        out.append(ArchivedRecord(r.name, plain_text(machine), r.generated_at[:10], plain_text(r.document["profile"]),
                                  plain_text(r.document["torch"]), plain_text(r.document.get("commit") or ""),
                                  len(r.results), tuple(record_reasons(r, chosen))))
    return tuple(out)


def this_build_sentence() -> str:
    """This build's machine and provenance (a line ``render.provenance`` writes for every page)."""
    return f"{provenance(_live(this_build()))}\n"
