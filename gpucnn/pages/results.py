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

from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.pyplot as plt

from gpucnn import hardware
from gpucnn.archive import Record, status_flags
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth
from gpucnn.figures import dram_point, matmul_at
from gpucnn.hardware import format_bytes
from gpucnn.measurement import Measurement
from gpucnn.render import (
    COLORS,
    caption,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    provenance,
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
    no_gpu_note,
    one_line,
    records_in_archive,
)

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
                    lat.result.data["add_single"] if lat else None, present)


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
    """This build's rows first, then every record's, each labelled with its source."""
    rows_, recs = all_rows()
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
    out = table(["Device", "Source", "fp32 matmul GFLOP/s (size)", "Copy GB/s (largest buffer)",
                 "Tiny add, one call + sync", "Profile"], rows, align="llrrrl")
    note = ("Medians of each point's timed runs (matmul and copy: at least 5 runs; the add: hundreds). "
            "GB = 10^9 bytes, read + written. A dash: the record holds no compatible result for that figure, or "
            "the other pages draw that figure from another source (see the archive table above). ")
    out += caption(note, [s for h in rows_ for s in h.found])
    if recs:
        out += ('<p class="gpucnn-caption">Archived rows: the records the other pages draw, by the rules on the '
                "Reproduce page (a record of the GPU model this build measures live, or one that a newer record of "
                "its model replaces, is left out: the archive table above says which). Each was measured on "
                "another machine, on the date shown, and read from the archive file named in the row; they were "
                "not measured in this build, and their torch version and profile are those of that machine's "
                "build.</p>\n")
    return out + no_gpu_note([h.source for h in rows_])


def comparison_chart() -> str:
    """Horizontal bars: matmul GFLOP/s and copy GB/s per row, archived rows hatched."""
    rows_, _ = all_rows()
    rows_ = [h for h in rows_ if h.matmul or h.copy]
    labels = [chart_text(h.source.label) + (f"\n{h.source.result.date}" if h.source.archived else "")
              for h in rows_]
    panels = [("matmul", "fp32 matmul GFLOP/s", "gflops"), ("copy", "copy GB/s, largest buffer", "gbps")]
    with style_context():
        plt.rcParams["hatch.color"] = "#010203"  # drawn in the page's text colour, like the axes
        fig, axs = plt.subplots(1, 2, sharey=True, figsize=(8.0, 1.8 + 0.7 * len(rows_)))
        gids: list[str] = []
        for ax, (attr, xlabel, unit) in zip(axs, panels, strict=True):
            rates = []
            for i, h in enumerate(rows_):
                m: Measurement | None = getattr(h, attr)
                if m is None:
                    continue
                work = (m.flops if unit == "gflops" else m.bytes_moved) / 1e9
                value = work / m.median
                rates.append(value)
                err = [[value - work / m.p75], [work / m.p25 - value]]
                archived_ = h.source.archived
                ax.barh(i, value, xerr=err, capsize=3, color=COLORS[1] if archived_ else COLORS[0],
                        hatch="//" if archived_ else "", edgecolor="#010203", linewidth=0.5,
                        linestyle="--" if archived_ else "-", gid=f"gpucnn-series-{len(gids)}")
                gids.append(h.source.origin)
                ax.annotate(fmt(value), (work / m.p25, i), xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=8)
            # A GPU beside a CPU spans decades: log scale then; linear for similar machines.
            if rates and max(rates) > 10 * min(rates):
                ax.set_xscale("log")
                ax.set_xlim(min(rates) / 2, max(rates) * 8)
                xlabel += " (log scale)"
            else:
                ax.set_xlim(0, max(rates or [1]) * 1.3)
            ax.set_xlabel(xlabel)
            ax.grid(True, axis="x", which="major")
        axs[0].set_yticks(range(len(rows_)), labels, fontsize=8)
        axs[0].invert_yaxis()
        fig.suptitle("This build beside the archive (plain: this build; hatched: archived)", fontsize=11)
    desc = "; ".join(
        f"{h.source.label}: matmul {fmt(h.matmul.gflops) if h.matmul else 'none'} GFLOP/s, "
        f"copy {fmt(h.copy.gbps) if h.copy else 'none'} GB/s" for h in rows_)
    chart = figure_html(
        fig, title="Matmul GFLOP/s and copy GB/s, this build and archived machines", desc=desc,
        caption_text="Bars: median; whiskers: IQR (p25 to p75) of the timed runs. Hatched bars were recorded on "
                     "the machine and date their label names (the table above gives the file), not in this build. "
                     "Plain bars: measured in this build.",
        results=[h.source for h in rows_], sources=gids)

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


def _record_status(record: Record, says: Mapping[str, str] | None = None,
                   chosen: dict[str, list[Choice]] | None = None) -> str:
    """The record's reasons in the page's sentences (``says``: reason -> sentence, from docs/results.md, with
    ``{by}`` and ``{experiments}`` to fill), escaped; without ``says``, the reasons themselves."""
    parts = []
    for reason in record_reasons(record, chosen):
        # Record file names come from the archive's folder: escaped. Experiment names are safe as they are
        # (archive.parse refuses one gpucnn does not know).
        by = and_list([one_line(b if b == "this build" else f"results/{b}") for b in reason.by])
        experiments = ", ".join(reason.experiments)
        if says is None:
            text = reason.what + (f": {by}" if by else "")
        else:
            text = says[reason.what].format(by=by, experiments=experiments)
        if experiments and (says is None or "{experiments}" not in says[reason.what]):
            text += f" ({experiments})"
        parts.append(text)
    return "; ".join(parts)


def archive_summary(says: Mapping[str, str] | None = None) -> str:
    """Every record in the archive, with what the site does with it: in the sentences ``says`` gives for each
    reason (the page's, in docs/results.md), else as the reasons themselves."""
    recs = records_in_archive()
    chosen = {fn.__name__: choices(fn) for fn in HEADLINE_EXPERIMENTS}
    if not recs:
        return ("The archive (`results/` in the repository) holds no records yet, so the table shows only "
                "this build's figures. To add your machine's, follow [Reproduce](reproduce.md).\n")
    rows = [(f'<span data-source="{one_line("archived:" + r.name)}"><code>results/{one_line(r.name)}</code></span>',
             one_line(r.label().removeprefix("recorded on ")), one_line(r.document["profile"]),
             one_line(r.document["torch"]), one_line(r.document.get("commit") or "–"), len(r.results),
             _record_status(r, says, chosen)) for r in recs]
    return (f"The archive holds {len(recs)} record{'' if len(recs) == 1 else 's'}:\n\n"
            + table(["File", "Machine, date measured", "Profile", "torch", "Commit", "Experiments", "On this site"],
                    rows, align="lllllrl"))


def this_build_sentence() -> str:
    """One sentence naming this build's machine, with provenance."""
    return f"{provenance(_live(this_build()))}\n"
