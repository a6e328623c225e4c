"""Page "Measuring it right": facts on the article's experiment, the two kinds of time, what a tiny GPU call
pays and who pays it, and how far separate measurements of one op land. The words are in docs/measuring.md."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from gpucnn.bench import Measurement
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import article_matmul, matmul_sweep
from gpucnn.experiments.nn import mlp_batch_sweep, mlp_time_split
from gpucnn.figures import ArticleParts, CallCost, HostOrder, Pace, PartsVerdict, host_order, shortest_kernel
from gpucnn.render import (
    COLORS,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    new_figure,
    table,
)
from gpucnn.sources import Pair, Source, note, pairs, sibling, sources

# The seed article's own figures (Colab, %%timeit), quoted with their source.
ARTICLE = {("cpu", 2): 4.31e-6, ("cpu", 2000): 198e-3, ("gpu", 2): 59.8e-6, ("gpu", 2000): 26.8e-3}


def article_sources() -> list[Source]:
    """This build's devices, then each archived accelerator followed by its own host CPU."""
    return sources(article_matmul, hosts=True)


# --- the article's experiment, its way and correctly ---------------------------------------------------------

@dataclass(frozen=True)
class Article:
    """One device's 2000x2000 matmul: the article's method against its two parts, each timed alone."""

    source: Source
    parts: ArticleParts  # whole: the article's method; randn (+ the copy, on a GPU); matmul: all threads
    one_thread: Measurement | None  # the matmul on the single thread Timer uses by default (CPU only)
    threads: int
    gflops: float  # the matmul alone, all threads

    @property
    def randn_pct(self) -> float:
        return 100 * self.parts.randn.median / self.parts.whole.median

    @property
    def rest_pct(self) -> float:
        return 100 * self.parts.rest / self.parts.whole.median

    @property
    def parts_exceed(self) -> bool:
        """The two parts, timed alone, add up to more than the whole's median."""
        return self.parts.rest < 0

    @property
    def rest_beyond_spread(self) -> bool:
        """The whole is more than its parts by more than the three IQRs: a rest in neither part."""
        return self.parts.verdict is PartsVerdict.REST

    @property
    def one_thread_ratio(self) -> float | None:
        return self.one_thread.median / self.parts.matmul.median if self.one_thread else None


def _article(src: Source) -> Article:
    t = src.result.typed
    return Article(src, ArticleParts(t.article_2000, t.randn_2000, t.correct_2000), t.one_thread_2000,
                   t.correct_2000.threads, t.correct_2000.gflops)


def articles() -> list[Article]:
    """Every device shown (this build's, each archived GPU with its host CPU)."""
    found = article_sources()
    note(found)
    return [_article(s) for s in found]


def this_cpu() -> Article:
    """This build's CPU: the device of the decomposition chart."""
    return next(a for a in articles() if a.source.is_cpu and not a.source.archived)


def comparison_table(full: bool = False) -> str:
    """Article's figures, the article's method here, and the correct method here: five columns, to fit the
    content width; ``full`` adds the input alone, one thread and GFLOP/s."""
    rows = []
    found = article_sources()
    note(found)
    for s in found:
        t = s.result.typed
        for n in (2, 2000):
            art = ARTICLE[("cpu" if s.is_cpu else "gpu", n)]
            one = getattr(t, f"one_thread_{n}")
            correct = getattr(t, f"correct_{n}")
            article = fmt_time(getattr(t, f"article_{n}").median)
            if full:
                rows.append((s.cell(), f"{n}x{n}", fmt_time(art), article,
                             fmt_time(getattr(t, f"randn_{n}").median), fmt_time(one.median) if one else "–",
                             fmt_time(correct.median), fmt(correct.gflops)))
            else:
                rows.append((s.cell(), f"{n}x{n}", fmt_time(art), article, fmt_time(correct.median)))
    if full:
        return table(["Device", "Size", "Article (Colab)", "Article's method", "randn (+ copy) alone",
                      "Correct, 1 thread", "Correct, all threads", "Correct GFLOP/s"], rows, align="llrrrrrr")
    return table(["Device", "Size", "Article (Colab)", "Article's method", "Correct"], rows, align="llrrr")


def decomposition_chart() -> str:
    """Horizontal bars: the article's 2000x2000 time on this build's CPU against its two parts, each timed alone,
    and the rest. This build's CPU only: no archived source, so no hatch and no dash."""
    a = this_cpu()
    parts, one = a.parts, a.one_thread
    fig, ax = new_figure(7.0, 3.6)
    ms = 1e3
    whisker = {"ecolor": "#888888", "capsize": 3}  # seen on light and dark

    def bar(y: float, m: Measurement, color: str, left: float = 0.0, label: str | None = None) -> None:
        ax.barh(y, m.median * ms, left=left * ms, color=color, edgecolor="#010203", linewidth=0.5, label=label,
                xerr=[[(m.median - m.p25) * ms], [(m.p75 - m.median) * ms]], error_kw=whisker)

    bar(0, parts.whole, COLORS[0])
    bar(1, parts.randn, COLORS[1], label="randn alone")
    bar(1, parts.matmul, COLORS[2], left=parts.randn.median, label="matmul alone")
    if parts.rest > 0:
        ax.barh(1, parts.rest * ms, left=parts.parts * ms, color="#FFFFFF", edgecolor="#010203", linewidth=0.8,
                label="rest")
    steps = [("article's method", parts.whole), ("randn alone", parts.randn), ("matmul alone", parts.matmul)]
    names = ["article's method", "its parts, timed alone"]
    ends = [parts.whole.p75, max(parts.whole.median, parts.randn.median + parts.matmul.p75)]
    texts = [fmt_time(parts.whole.median),
             fmt_time(parts.parts) + (f" + {fmt_time(parts.rest)}" if parts.rest > 0 else "")]
    if one is not None:
        bar(2, one, COLORS[3])
        steps.append(("matmul, 1 thread", one))
        names.append("matmul, 1 thread")
        ends.append(one.p75)
        texts.append(fmt_time(one.median))
    for i, (end, text) in enumerate(zip(ends, texts, strict=True)):
        ax.annotate(text, (end * ms, i), xytext=(6, 0), textcoords="offset points", va="center", fontsize=10)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("median time per call (ms)")
    ax.set_xlim(0, max(ends) * ms * 1.45)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=10, frameon=False)
    ax.set_title("2000x2000 fp32 matmul on the CPU: the article's time and its parts")
    chart = figure_html(
        fig, title="2000x2000 matmul on the CPU: the article's method against its parts, each timed alone",
        desc="Horizontal bars of median time per call. " + "; ".join(f"{n}: {fmt_time(m.median)}" for n, m in steps)
        + (f"; rest: {fmt_time(parts.rest)}." if parts.rest > 0 else "; the parts exceed the whole."),
        caption_text="", results=a.source.result)
    device = a.source.cell()
    rows = [(device, name, fmt_time(m.median), f"{fmt_time(m.p25)}–{fmt_time(m.p75)}", m.runs) for name, m in steps]
    rows.append((device, "rest: article's method less randn and matmul",
                 fmt_time(parts.rest) if parts.rest > 0 else "none (parts > whole)", "–", "–"))
    return chart + figures_table(chart, html_table(["Device", "What is timed", "Median per call", "IQR", "Runs"],
                                                   rows, align="llrrr"))


# --- the two kinds of time -----------------------------------------------------------------------------------

# A single call within this factor of the back-to-back time per call is "close" to it.
CLOSE = 1.1


@dataclass(frozen=True)
class TwoKinds:
    """A 2x2 matmul on one device, timed one call + synchronize at a time and back to back."""

    source: Source
    single: Measurement
    stream: Measurement

    @property
    def ratio(self) -> float:
        return self.single.median / self.stream.median

    @property
    def extra_s(self) -> float:
        """What waiting for each call adds to it (s); negative where the single call was faster."""
        return self.single.median - self.stream.median

    @property
    def waits(self) -> bool:
        """The single call took longer than the back-to-back one beyond both IQRs: ``extra_s`` is a time, not
        noise (never printed otherwise, so no negative time reaches the page)."""
        return self.single.p25 > self.stream.p75


def two_kinds() -> list[TwoKinds]:
    found = sources(small_op_latency, hosts=True)
    note(found)
    return [TwoKinds(s, s.result.typed.matmul2x2_single, s.result.typed.matmul2x2_stream) for s in found]


@dataclass(frozen=True)
class CpuKinds:
    """The CPUs' single-call time over their back-to-back time, lowest and highest."""

    low: float
    high: float
    close: bool  # every CPU's single call within CLOSE of its back-to-back time


def cpu_kinds() -> CpuKinds:
    ratios = [k.ratio for k in two_kinds() if k.source.is_cpu]
    return CpuKinds(min(ratios), max(ratios), max(ratios) < CLOSE)


@dataclass(frozen=True)
class RoundTrip:
    """Within one record: what waiting for each call adds on the GPU and on its host CPU."""

    pair: Pair
    gpu_extra_s: float
    cpu_extra_s: float

    @property
    def shows(self) -> bool:
        """The wait adds more on the GPU than on its host: a round trip to the device (a positive time)."""
        return self.round_trip_s > 0

    @property
    def round_trip_s(self) -> float:
        return self.gpu_extra_s - max(self.cpu_extra_s, 0.0)


def round_trips() -> list[RoundTrip]:
    out = []
    for p in pairs(small_op_latency):
        g, c = p.gpu.result.typed, p.cpu.result.typed
        note([p.gpu, p.cpu])
        out.append(RoundTrip(p, g.matmul2x2_single.median - g.matmul2x2_stream.median,
                             c.matmul2x2_single.median - c.matmul2x2_stream.median))
    return out


def two_kinds_table() -> str:
    """The 2x2 matmul both ways, for every device shown."""
    rows = [(k.source.cell(), fmt_time(k.single.median), fmt_time(k.stream.median), f"{fmt(k.ratio, 2)}x",
             fmt_time(k.extra_s) if k.waits else "within noise") for k in two_kinds()]
    return table(["Device", "One call + synchronize", "Back to back, per call", "Ratio", "Extra per call"], rows,
                 align="lrrrr")


# --- what a tiny GPU call pays, and who pays it ---------------------------------------------------------------

def call_costs() -> list[tuple[Pair, CallCost]]:
    """Each GPU's tiny-op costs with its own host CPU's (``small_op_latency``), and its MLP profile's kernels."""
    out = []
    for p in pairs(small_op_latency):
        prof = sibling(p.gpu, mlp_time_split)
        g, c = p.gpu.result.typed, p.cpu.result.typed
        kernel = shortest_kernel(prof.result.typed.profile) if prof is not None else None
        note([p.gpu, p.cpu, *([prof] if prof is not None else [])])
        out.append((p, CallCost(c.add_stream, g.add_stream, g.matmul2x2_stream, kernel)))
    return out


@dataclass(frozen=True)
class Pacing:
    """Which GPUs wait for their host on a tiny call (Pace.HOST), which do not, and the ranges of the costs."""

    host: tuple[Source, ...]
    gpu: tuple[Source, ...]
    unknown: tuple[Source, ...]
    cuda_path_s: tuple[float, float]  # the add on the GPU less the add on its host CPU: lowest, highest
    matmul_extra_s: tuple[float, float]  # a 2x2 matmul less an add, on the GPU


def pacing() -> Pacing | None:
    found = call_costs()
    if not found:
        return None
    by = {pace: tuple(p.gpu for p, c in found if c.pace is pace) for pace in Pace}
    cuda = [c.cuda_path for _, c in found]
    extra = [c.matmul_extra for _, c in found]
    return Pacing(by[Pace.HOST], by[Pace.GPU], by[Pace.UNKNOWN], (min(cuda), max(cuda)), (min(extra), max(extra)))


_PACE = {Pace.HOST: "the host", Pace.GPU: "the GPU", Pace.UNKNOWN: "not measured"}


def call_cost_table() -> str:
    """Per GPU: a one-number add on its host CPU and on the GPU, a 2x2 matmul on the GPU, the shortest profiled
    kernel, and which side sets the pace. Empty where no GPU is shown."""
    rows = [(p.gpu.cell(), p.cpu.cell(), fmt_time(c.host_add.median), fmt_time(c.gpu_add.median),
             fmt_time(c.gpu_matmul.median), fmt_time(c.kernel), _PACE[c.pace]) for p, c in call_costs()]
    if not rows:
        return ""
    return table(["GPU", "Its host CPU", "Add, host CPU", "Add, GPU", "2x2 matmul, GPU",
                  "Shortest kernel, GPU", "Pace set by"], rows, align="llrrrrl")


@dataclass(frozen=True)
class SameChip:
    """Two machines whose GPUs are the same chip (compute capability, SM count): their tiny adds on the host
    and on the GPU, and a batch-1 MLP training step on the GPU. Nothing is compared across different chips."""

    capability: str
    sms: int
    a: Pair
    b: Pair
    a_cost: CallCost
    b_cost: CallCost
    a_step: Measurement
    b_step: Measurement
    order: HostOrder


def _chip(src: Source) -> tuple[str, int] | None:
    acc = src.hardware.accelerator
    if acc is None or not acc.capability or not acc.multiprocessors:
        return None
    return acc.capability, acc.multiprocessors


def same_chip() -> list[SameChip]:
    out = []
    for (pa, a), (pb, b) in itertools.combinations(call_costs(), 2):
        chip = _chip(pa.gpu)
        if chip is None or chip != _chip(pb.gpu):
            continue
        steps = [sibling(p.gpu, mlp_batch_sweep) for p in (pa, pb)]
        firsts = [next((m for m in s.result.typed.sweep.points if m.shape[0] == 1), None) if s else None
                  for s in steps]
        if None in firsts:
            continue
        note([pa.gpu, pa.cpu, pb.gpu, pb.cpu, *steps])
        sa, sb = firsts
        out.append(SameChip(chip[0], chip[1], pa, pb, a, b, sa, sb, host_order(a, sa, b, sb)))
    return out


# --- the same op, measured separately ------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One measurement of the back-to-back 2x2 fp32 matmul: where the site shows it, and the measurement."""

    where: str  # "small-op table", "correct", "matmul sweep"
    source: Source
    measurement: Measurement


def same_op_runs(src: Source) -> list[Run]:
    """The back-to-back 2x2 fp32 matmul in each experiment of ``src``'s origin that times one: the small-op
    table's ``a @ a``, this page's correct method and the matmul sweep's n = 2."""
    out = []
    lat = sibling(src, small_op_latency)
    if lat is not None:
        out.append(Run("small-op table", lat, lat.result.typed.matmul2x2_stream))
    out.append(Run("correct", src, src.result.typed.correct_2))
    sweep = sibling(src, matmul_sweep)
    point = next((m for m in sweep.result.typed.sweep.points if m.shape[0] == 2), None) if sweep else None
    if sweep is not None and point is not None:
        out.append(Run("matmul sweep", sweep, point))
    return out


_WHERE = {"small-op table": "[Advantage 3](fast-memory.md), small-op table",
          "correct": "this page, 'Correct, all threads'",
          "matmul sweep": "[Advantage 2](parallelism.md), matmul sweep at n = 2"}


def _furthest_apart(ms: Sequence[Measurement]) -> tuple[Measurement, Measurement]:
    """The two runs whose IQRs are furthest apart: (faster, slower), by the gap from one's p75 to the other's p25."""
    return max(((a, b) for a in ms for b in ms if a is not b), key=lambda ab: ab[1].p25 / ab[0].p75)


@dataclass(frozen=True)
class Separate:
    """One device's separate measurements of one op: do they differ by more than their IQRs?"""

    source: Source
    runs: tuple[Run, ...]
    fast: Run  # the pair whose IQRs are furthest apart
    slow: Run

    @property
    def low_s(self) -> float:
        return min(r.measurement.median for r in self.runs)

    @property
    def high_s(self) -> float:
        return max(r.measurement.median for r in self.runs)

    @property
    def spread(self) -> float:
        return self.high_s / self.low_s

    @property
    def apart(self) -> bool:
        return self.slow.measurement.p25 > self.fast.measurement.p75


def separate() -> list[Separate]:
    out = []
    for s in article_sources():
        runs = same_op_runs(s)
        note([r.source for r in runs])
        if len(runs) < 2:
            continue
        fast, slow = _furthest_apart([r.measurement for r in runs])
        by = {id(r.measurement): r for r in runs}
        out.append(Separate(s, tuple(runs), by[id(fast)], by[id(slow)]))
    return out


def separate_table() -> str:
    rows = []
    for s in article_sources():
        for r in same_op_runs(s):
            m = r.measurement
            rows.append((s.cell(), _WHERE[r.where], fmt_time(m.median), f"{fmt_time(m.p25)}–{fmt_time(m.p75)}", m.runs))
    return table(["Device", "Where it is shown", "Median per call", "IQR", "Runs"], rows, align="llrrr")
