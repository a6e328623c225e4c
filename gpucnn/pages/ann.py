"""Page "Artificial neural networks": facts on an MLP's training step against batch size, its regime, and where
its time goes. The words are in docs/ann.md."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from gpucnn.bench import Measurement
from gpucnn.experiments.nn import MLP_WIDTHS, mlp_batch_sweep, mlp_flops, mlp_time_split
from gpucnn.figures import told_apart
from gpucnn.profiling import stored_op_rows
from gpucnn.render import (
    Series,
    chart_text,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    gflops_text,
    html_table,
    legible,
    line_chart,
    new_figure,
    profile_cells,
    rate,
    reference_note,
    series_table,
    source_colour,
    table,
)
from gpucnn.sources import Source, note, one_line, sources


def flop_ratios() -> tuple[float, float]:
    """(backward, step) over the forward, from the code's FLOP count of this MLP (the same at any batch).

    Not 2x and 3x: the first layer's input is the data and needs no gradient, so the first layer's backward
    pass is one matmul, not two.
    """
    f = mlp_flops(1)
    return f["backward"] / f["forward"], f["train"] / f["forward"]


def sweep_sources() -> list[Source]:
    """This build's devices, then each archived GPU followed by its own record's host CPU."""
    return sources(mlp_batch_sweep, hosts=True)


def split_sources() -> list[Source]:
    return sources(mlp_time_split, hosts=True)


def by_build(found: Sequence[Source]) -> list[list[Source]]:
    """``found`` as one group per chart: this build's devices, then the archived records (each GPU with its own
    host CPU), so that no chart sets this build's CPU beside an archived GPU."""
    live = [s for s in found if not s.archived]
    archived = [s for s in found if s.archived]
    return [g for g in (live, archived) if g]


def _points(src: Source) -> tuple[Measurement, ...]:
    return src.result.typed.sweep.points


def gflops_series(src: Source) -> Series:
    """GFLOP/s of a training step against batch size, with the IQR band; colour: the source's."""
    pts = _points(src)
    return Series(src.label, [m.shape[0] for m in pts], [m.gflops for m in pts],
                  [m.flops / m.p75 / 1e9 for m in pts], [m.flops / m.p25 / 1e9 for m in pts],
                  style={"marker": "s" if src.is_cpu else "o"}, source=src.origin)


def batch_charts() -> str:
    """GFLOP/s of a training step against batch size: one chart for this build, one for the archived records."""
    found = sweep_sources()
    note(found)
    out = ""
    for group in by_build(found):
        series = [gflops_series(s) for s in group]
        archived = group[0].archived
        cpu = next((s for s in group if s.is_cpu and not s.archived), None)
        peak = cpu.hardware.cpu.peak_fp32 if cpu else None
        hlines = [(peak.value / 1e9, "CPU FP32 peak (estimate)")] if peak else []
        chart = line_chart(
            legible(series), title=f"MLP training step: GFLOP/s ({'archived records' if archived else 'this build'})",
            xlabel="batch size (samples)", ylabel="GFLOP/s (10^9 FLOP per second)", caption_text="", results=group,
            logx=True, logy=True, hlines=hlines)
        out += chart + figures_table(chart, series_table(series, x="Batch", y="GFLOP/s"),
                                     reference_note(hlines=hlines, y_text=gflops_text))
    return out


def batch_table() -> str:
    """Each measured batch size: time, spread, samples/s and GFLOP/s."""
    rows = []
    for s in sweep_sources():
        for m in _points(s):
            rows.append((s.cell(), m.shape[0], fmt_time(m.median), fmt_time(m.iqr), rate(m.shape[0] / m.median),
                         fmt(m.gflops), f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    return table(["Device", "Batch", "Median step", "IQR", "Samples/s", "GFLOP/s", "% of FP32 peak", "Runs"],
                 rows, align="lrrrrrrr")


class Gain(Enum):
    """Throughput at the largest batch against batch 1, told apart by ``figures.told_apart`` (IQRs and
    SAME_SPEED)."""

    ROSE = "rose"
    FELL = "fell"  # slower per FLOP at the largest batch beyond the noise: a disturbed run or a cache left
    UNRESOLVED = "unresolved"  # within the two measurements' spread


@dataclass(frozen=True)
class BatchEnds:
    """A device's sweep at its smallest and largest batch."""

    source: Source
    first: Measurement
    last: Measurement

    @property
    def gain(self) -> float:
        """Throughput at the largest batch over the smallest's."""
        return self.last.gflops / self.first.gflops

    @property
    def verdict(self) -> Gain:
        if not told_apart(self.first, self.last):
            return Gain.UNRESOLVED
        return Gain.ROSE if self.gain > 1 else Gain.FELL


def batch_ends() -> list[BatchEnds]:
    found = [s for s in sweep_sources() if len(_points(s)) >= 2]
    note(found)
    return [BatchEnds(s, _points(s)[0], _points(s)[-1]) for s in found]


_GAIN = {Gain.FELL: "fell", Gain.UNRESOLVED: "within noise"}


def batch_ends_table() -> str:
    rows = [(e.source.cell(), f"{fmt(e.first.gflops)} ({rate(e.first.shape[0] / e.first.median)})",
             f"{e.last.shape[0]:,}", f"{fmt(e.last.gflops)} ({rate(e.last.shape[0] / e.last.median)})",
             f"{fmt(e.gain)}x" if e.verdict is Gain.ROSE else _GAIN[e.verdict]) for e in batch_ends()]
    return table(["Device", "Batch 1: GFLOP/s (samples/s)", "Largest batch", "GFLOP/s (samples/s) there",
                  "Throughput gain"], rows, align="lrrrr")


# --- forward against backward, and the profile ---------------------------------------------------------------

class AgainstFlops(Enum):
    """A measured backward/forward ratio against the FLOP count's, compared as printed (2 significant digits)."""

    ABOUT = "about"
    ABOVE = "above"
    BELOW = "below"
    UNRESOLVED = "unresolved"  # forward + backward within the forward's spread: no backward time to compare


def against_flops(measured: float, predicted: float) -> AgainstFlops:
    if fmt(measured, 2) == fmt(predicted, 2):
        return AgainstFlops.ABOUT
    return AgainstFlops.ABOVE if measured > predicted else AgainstFlops.BELOW


@dataclass(frozen=True)
class Split:
    """One device's step at one batch: forward alone against forward + backward."""

    source: Source
    batch: int
    forward: Measurement
    train: Measurement
    predicted: float  # the backward's FLOPs over the forward's

    @property
    def resolved(self) -> bool:
        """Forward + backward took longer than the forward beyond both IQRs: the difference is a backward time.
        Otherwise the difference is noise, and may even be negative: it is never printed."""
        return self.train.p25 > self.forward.p75

    @property
    def backward_s(self) -> float:
        return self.train.median - self.forward.median

    @property
    def ratio(self) -> float:
        return self.backward_s / self.forward.median

    @property
    def against(self) -> AgainstFlops:
        return against_flops(self.ratio, self.predicted) if self.resolved else AgainstFlops.UNRESOLVED


def splits() -> list[Split]:
    found = split_sources()
    note(found)
    predicted = flop_ratios()[0]
    return [Split(s, s.result.typed.batch, s.result.typed.forward, s.result.typed.train, predicted) for s in found]


def split_chart() -> str:
    """Bars of forward alone and forward + backward per device, one chart per build (this one, the archived
    records). Colour: the source; the pass is named on the axis; hatch and a dashed edge: archived only."""
    out = ""
    for group in by_build(split_sources()):
        found = [sp for sp in splits() if any(sp.source is s or sp.source.result is s.result for s in group)]
        fig, ax = new_figure(7.0, 1.4 + 0.55 * 2 * len(found))
        ticks, ends = [], []
        for i, sp in enumerate(found):
            src = sp.source
            passes = (("forward", sp.forward), ("forward + backward", sp.train))
            ys = [i * 2.6 + j for j in range(2)]
            ms = [m for _, m in passes]
            # one bar group a source (a series): colour its source's, hatch and dashed edge only if archived
            ax.barh(ys, [m.median * 1e3 for m in ms],
                    xerr=[[(m.median - m.p25) * 1e3 for m in ms], [(m.p75 - m.median) * 1e3 for m in ms]],
                    color=source_colour(src.origin), edgecolor="#010203", ecolor="#888888", capsize=3,
                    hatch="//" if src.archived else "", linestyle="--" if src.archived else "-",
                    linewidth=0.8 if src.archived else 0.5, gid=f"gpucnn-series-{i}")
            for y, (name, m) in zip(ys, passes, strict=True):
                ax.annotate(fmt_time(m.median), (m.p75 * 1e3, y), xytext=(5, 0), textcoords="offset points",
                            va="center", fontsize=10)
                ticks.append((y, f"{chart_text(src.label)}: {name}"))
                ends.append(m.p75 * 1e3)
        ax.set_yticks([y for y, _ in ticks], [t for _, t in ticks], fontsize=10)
        ax.invert_yaxis()
        ax.set_xlim(0, max(ends) * 1.3)
        ax.set_xlabel("median time per step (ms)")
        ax.set_title(f"MLP training step, batch {found[0].batch}: forward against forward + backward")
        desc = "Bars of median step time: " + "; ".join(
            f"{sp.source.label} forward: {fmt_time(sp.forward.median)}, forward + backward: "
            f"{fmt_time(sp.train.median)}" for sp in found)
        chart = figure_html(fig, title=f"MLP forward against forward+backward time, batch {found[0].batch}",
                            desc=desc, caption_text="", results=[sp.source for sp in found],
                            sources=[sp.source.origin for sp in found])
        rows = [[sp.source.cell()] + [f"{fmt_time(m.median)} ({fmt_time(m.p25)}–{fmt_time(m.p75)})"
                                      for m in (sp.forward, sp.train)] for sp in found]
        out += chart + figures_table(chart, html_table(
            ["Device", "Forward only: median (IQR)", "Forward + backward: median (IQR)"], rows))
    return out


def split_table() -> str:
    rows = [(sp.source.cell(), sp.batch, fmt_time(sp.forward.median), fmt_time(sp.train.median),
             fmt_time(sp.backward_s) if sp.resolved else "within noise",
             f"{fmt(sp.ratio, 2)}x" if sp.resolved else "–") for sp in splits()]
    return table(["Device", "Batch", "Forward", "Forward + backward", "Backward (difference)", "Backward / forward"],
                 rows, align="lrrrrr")


def profile_table() -> str:
    """torch.profiler's top ops of one MLP training step, per device, each with its short caption line."""
    out = ""
    found = split_sources()
    note(found)
    for src in found:
        t = src.result.typed
        headers, rows = profile_cells(t.profile, src.device)
        out += f"\n**{html.escape(one_line(src.label))}**, {t.steps} steps, batch {t.batch}:\n\n"
        out += table(headers, rows, align="l" + "r" * (len(headers) - 1)) + "\n"
    return out


def device_busy_s(rows: Sequence[object]) -> float | None:
    """Kernel time per profiled step, from the top-op rows: an op's device time over its share of all
    kernel time. None on the CPU, and for records whose stored shares were wrong (see stored_op_rows)."""
    for r in sorted(stored_op_rows(rows), key=lambda r: r["self_device_pct"] or 0.0, reverse=True):
        if r["self_device_s"] and r["self_device_pct"]:
            return r["self_device_s"] * 100.0 / r["self_device_pct"]
    return None


# A GPU idle this share of a step or more waits for the host: the overhead regime, seen from the GPU's side.
IDLE_WAITS = 0.5


@dataclass(frozen=True)
class Idle:
    """A GPU's kernel time per profiled step against the harness's step time."""

    source: Source
    busy_s: float
    step_s: float
    batch: int

    @property
    def idle_pct(self) -> float:
        return 100 * max(0.0, 1.0 - self.busy_s / self.step_s)

    @property
    def waits(self) -> bool:
        return self.idle_pct >= 100 * IDLE_WAITS


def idles() -> list[Idle]:
    out = []
    for s in split_sources():
        busy = device_busy_s(s.result.typed.profile)
        if s.is_cpu or busy is None:
            continue
        note(s)
        out.append(Idle(s, busy, s.result.typed.train.median, s.result.typed.batch))
    return out


# --- the three regimes (compute, memory, overhead), diagnosed from the batch sweep ---

# Doubling the batch doubles the work. Time that grows by less than FLAT was
# mostly a fixed cost per step (overhead); time that grows by PROPORTIONAL or
# more is paid for the work itself (compute or memory). Both leave room for
# noise on a shared machine.
FLAT = 1.25
PROPORTIONAL = 1.7
# A step at this share of the FLOP peak or more is called compute-bound.
COMPUTE_BOUND_PCT = 30.0
# Time that grows by more than this for twice the work grew faster than the work: throughput fell, so
# something other than the work changed (the working set left a cache, or the machine was busy).
SUPERLINEAR = 2.2
# A backward pass this many times what its FLOPs predict (relative to the forward) is put down to its launches.
BACKWARD_EXCESS = 1.5


def weight_bytes(widths: Sequence[int] = MLP_WIDTHS, elem: int = 4) -> int:
    """Bytes of the MLP's weights and biases (fp32)."""
    return elem * sum((widths[i] + 1) * widths[i + 1] for i in range(len(widths) - 1))


def doubling_ratios(points: Sequence[Measurement]) -> list[tuple[int, float]]:
    """(b, time at 2b / time at b) for each pair of measured batches b and 2b."""
    t = {m.shape[0]: m.median for m in points}
    return [(b, t[2 * b] / t[b]) for b in sorted(t) if 2 * b in t]


def flat_until(points: Sequence[Measurement], factor: float = 1.5) -> int | None:
    """The largest batch whose step takes less than ``factor`` x the smallest batch's time: every larger batch
    takes more. One slow point before it (a noisy run, as on the H100 build at batch 16) does not end the flat
    stretch, since a larger batch came back under the line."""
    if not points:
        return None
    base, found = points[0].median, None
    for m in points:
        if m.median < factor * base:
            found = m.shape[0]
    return found


class Regime(Enum):
    """What one doubling of the batch shows. The value is the table's short label."""

    OVERHEAD = "overhead-bound"
    BETWEEN = "between regimes"
    SUPERLINEAR = "slower than the work grew: no regime read"
    COMPUTE = "compute-bound"
    BELOW_PEAK = "bound below the FLOP peak (memory, or slow kernels)"


def regime(ratio: float, pct_peak: float | None) -> Regime:
    if ratio < FLAT:
        return Regime.OVERHEAD
    if ratio < PROPORTIONAL:
        return Regime.BETWEEN
    if ratio > SUPERLINEAR:
        return Regime.SUPERLINEAR
    if pct_peak is not None and pct_peak >= COMPUTE_BOUND_PCT:
        return Regime.COMPUTE
    return Regime.BELOW_PEAK


def regime_table(full: bool = False) -> str:
    """Per device: the diagnostic "double the batch; does the time grow?" at the smallest and largest batches,
    and, on a GPU, what reading the weights at its datasheet bandwidth takes against the batch-1 step. Five
    columns fit the content width; ``full`` adds both batches' step times and the first doubling."""
    rows = []
    reads = {id(o.source.result): o for o in overheads()}
    for s in sweep_sources():
        pts = _points(s)
        ratios = doubling_ratios(pts)
        if not ratios:
            continue
        note(s)
        (b0, r0), (b1, r1) = ratios[0], ratios[-1]
        last = pts[-1]
        o = reads.get(id(s.result))
        read = (f"{fmt_time(o.weight_read_s)} ({fmt(o.weight_read_pct, 2)} %)"
                if o is not None and o.weight_read_s is not None else "–")
        grew = f"{fmt(last.median / pts[0].median, 3)}x for {fmt(last.shape[0] / pts[0].shape[0])}x the work"
        last_doubling = f"{fmt(r1, 3)}x ({b1:,} -> {2 * b1:,})"
        verdict = regime(r1, last.pct_peak_flops).value
        if full:
            rows.append((s.cell(), fmt_time(pts[0].median), f"{fmt_time(last.median)} (batch {last.shape[0]:,})",
                         grew, f"{fmt(r0, 3)}x ({b0} -> {2 * b0})", last_doubling, verdict, read))
        else:
            rows.append((s.cell(), grew, last_doubling, verdict, read))
    if full:
        return table(["Device", "Step, smallest batch", "Step, largest batch", "Time grew",
                      "Doubling the batch, first", "... last", "Regime at the largest batch",
                      "Reading the weights (% of smallest step)"], rows, align="lrrrrrlr")
    return table(["Device", "Time grew", "Last doubling", "Regime (largest batch)", "Weights read (% of batch 1)"],
                 rows, align="lrrlr")


@dataclass(frozen=True)
class Overhead:
    """How far a device's step stays flat (overhead-bound) as the batch grows, and, on a GPU, what reading its
    weights at the datasheet bandwidth would take."""

    source: Source
    first: Measurement
    last: Measurement
    flat_batch: int  # the largest batch under 1.5x the smallest batch's time
    low_s: float
    high_s: float
    weight_bytes: int
    weight_read_s: float | None  # None on a CPU or without a datasheet bandwidth
    weights_in_l2: bool

    @property
    def whole_sweep(self) -> bool:
        return self.flat_batch >= self.last.shape[0]

    @property
    def flat_somewhere(self) -> bool:
        return self.flat_batch > self.first.shape[0]

    @property
    def weight_read_pct(self) -> float | None:
        return None if self.weight_read_s is None else 100 * self.weight_read_s / self.first.median


def overheads() -> list[Overhead]:
    out = []
    for s in sweep_sources():
        pts = _points(s)
        flat = flat_until(pts)
        if len(pts) < 2 or flat is None:
            continue
        note(s)
        acc = s.hardware.accelerator if not s.is_cpu else None
        w = weight_bytes()
        read = w / acc.peaks.bandwidth if acc and acc.peaks else None
        out.append(Overhead(s, pts[0], pts[-1], flat, min(m.median for m in pts), max(m.median for m in pts), w,
                            read, bool(acc and acc.l2_bytes and w < acc.l2_bytes)))
    return out


# An op that takes this share of a profiled step's host time, for under STALL_DEVICE_PCT of its device time,
# is a wait on the host, named beside the launch-count explanation.
STALL_HOST_PCT = 25.0
STALL_DEVICE_PCT = 5.0


@dataclass(frozen=True)
class Stall:
    """One op that held the CPU far longer than its kernels ran, in a GPU's profiled step."""

    op: str
    cpu_s: float
    calls: float
    cpu_pct: float
    device_s: float
    profiled_s: float  # the profiled step's CPU time
    timed_s: float  # the harness's step time

    @property
    def profiling_cost(self) -> bool:
        """The profiled step is longer than the timed one: the stall is most likely the profiler's."""
        return self.profiled_s > self.timed_s


def host_stall(src: Source) -> Stall | None:
    if src.is_cpu:
        return None
    # torch's own ops only: a profiler row such as "Activity Buffer Request" (0 calls) is the profiler's bookkeeping.
    rows = [row for row in src.result.typed.profile
            if row.self_device_pct is not None and row.self_device_s is not None
            and row.calls >= 1 and row.op.startswith("aten::")]
    worst = max(rows, key=lambda row: row.self_cpu_pct, default=None)
    if worst is None or worst.self_cpu_pct < STALL_HOST_PCT or worst.self_device_pct >= STALL_DEVICE_PCT:
        return None
    return Stall(worst.op, worst.self_cpu_s, worst.calls, worst.self_cpu_pct, worst.self_device_s,
                 worst.self_cpu_s / (worst.self_cpu_pct / 100), src.result.typed.train.median)


@dataclass(frozen=True)
class Excess:
    """A backward pass that costs far more, against its forward, than its FLOPs predict."""

    split: Split
    stall: Stall | None


def backward_excess() -> list[Excess]:
    return [Excess(sp, host_stall(sp.source)) for sp in splits()
            if sp.resolved and sp.ratio > BACKWARD_EXCESS * sp.predicted]
