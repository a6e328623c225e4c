"""Page "Measuring it right": the article's experiment, its way and correctly."""

from __future__ import annotations

from collections.abc import Sequence

from gpucnn.bench import Measurement
from gpucnn.datasheets import memory_kind
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import article_matmul, matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, l2_copy_bandwidth
from gpucnn.render import (
    COLORS,
    caption,
    figure_html,
    figures_table,
    fmt,
    fmt_time,
    html_table,
    new_figure,
    short_bytes,
    table,
)
from gpucnn.results import run
from gpucnn.sources import Source, accelerators, no_gpu_note, note, pairs, sibling, sources

# The seed article's own figures (Colab, %%timeit), quoted with their source.
ARTICLE = {("cpu", 2): 4.31e-6, ("cpu", 2000): 198e-3, ("gpu", 2): 59.8e-6, ("gpu", 2000): 26.8e-3}


def article_sources() -> list[Source]:
    """This build's devices, then each archived accelerator followed by its own host CPU."""
    return sources(article_matmul, hosts=True)


def comparison_table() -> str:
    """Article's figures, the article's method here, and the correct method here."""
    rows = []
    found = article_sources()
    for s in found:
        d = s.result.data
        dev = s.device
        label = s.cell()
        for n in (2, 2000):
            art = ARTICLE[("cpu" if dev == "cpu" else "gpu", n)]
            one = d.get(f"one_thread_{n}")
            rows.append((
                label, f"{n}x{n}", fmt_time(art), fmt_time(d[f"article_{n}"].median),
                fmt_time(d[f"randn_{n}"].median), fmt_time(one.median) if one else "–",
                fmt_time(d[f"correct_{n}"].median), fmt(d[f"correct_{n}"].gflops),
            ))
    out = table(
        ["Device", "Size", "Article (Colab, its figure)", "Article's method, here", "randn (+ copy) alone",
         "Correct, 1 thread", "Correct, all threads", "Correct GFLOP/s"],
        rows, align="llrrrrrr",
    )
    out += caption(
        "Median time per call. 'Article' column: the seed article's published %%timeit figures, measured on "
        "Google Colab, not in this build. Every other column: back-to-back time per call, measured on the row's "
        "device. 'Correct, 1 thread' is timed on the CPU only (a dash on a GPU row): the thread count is the "
        "CPU's, and a GPU's kernel does not run on CPU threads.", found)
    return out + no_gpu_note(found, "GPU rows of this table")


def decomposition_chart() -> str:
    """Horizontal bars: where the article's 2000x2000 CPU time goes."""
    cpu = run(article_matmul, device="cpu")
    d = cpu.data
    steps = [
        ("article's method", d["article_2000"]),
        ("randn alone", d["randn_2000"]),
        ("matmul, 1 thread", d["one_thread_2000"]),
        ("matmul, all threads", d["correct_2000"]),
    ]
    fig, ax = new_figure(7.0, 3.4)
    names = [s[0] for s in steps]
    med = [s[1].median * 1e3 for s in steps]
    lo = [(s[1].median - s[1].p25) * 1e3 for s in steps]
    hi = [(s[1].p75 - s[1].median) * 1e3 for s in steps]
    hatches = ["", "//", "..", "xx"]
    for i, m in enumerate(med):
        ax.barh(i, m, xerr=[[lo[i]], [hi[i]]], color=COLORS[i], hatch=hatches[i], edgecolor="#010203",
                linewidth=0.5, capsize=3)
        ax.annotate(f"{m:.1f} ms", (m, i), xytext=(6, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("median time per call (ms)")
    ax.set_xlim(0, max(med) * 1.25)
    ax.set_title("2000x2000 fp32 matmul on the CPU: what the article's time is made of")
    runs = ", ".join(f"{s[0]}: {s[1].runs} runs" for s in steps)
    chart = figure_html(
        fig, title="2000x2000 matmul on the CPU, article's method against the correct one",
        desc="Horizontal bars of median time per call. " + "; ".join(f"{n}: {m:.1f} ms" for n, m in zip(names, med, strict=True)),
        caption_text=f"Bars: median; whiskers: IQR ({runs}).", results=cpu)
    device = Source("cpu", cpu).cell()
    rows = [(device, name, fmt_time(m.median), f"{fmt_time(m.p25)}–{fmt_time(m.p75)}", m.runs) for name, m in steps]
    return chart + figures_table(chart, html_table(["Device", "What is timed", "Median per call", "IQR", "Runs"],
                                                   rows, align="llrrr"))


def findings() -> str:
    """The sentences that quote this build's figures."""
    cpu = run(article_matmul, device="cpu").data
    art, rnd, one, right = (cpu[k].median for k in ("article_2000", "randn_2000", "one_thread_2000", "correct_2000"))
    text = (
        f"On this build machine the article's method gives **{fmt_time(art)}** for the 2000x2000 CPU matmul. "
        f"Of that, **{fmt_time(rnd)}** ({100 * rnd / art:.0f} %) is `torch.randn` making the input, which is not "
        f"matrix multiplication at all. The matmul alone takes **{fmt_time(right)}** with all "
        f"{run(article_matmul, device='cpu').data['correct_2000'].threads} threads, and **{fmt_time(one)}** "
        f"on the single thread that `torch.utils.benchmark.Timer` uses by default ("
        + (f"{one / right:.2f}x slower)." if one > right else
           f"{one / right:.2f}x the all-threads time: on this machine the extra threads did not help this run).")
        + _parts_caveat(rnd, right, art, gpu=False) + "\n"
    )
    for p in pairs(article_matmul):
        g, c = p.gpu.result.data, p.cpu.result.data
        art, rnd, mm = g["article_2000"].median, g["randn_2000"].median, g["correct_2000"].median
        text += (
            f"\nOn {p.gpu.label}, the article's method gives **{fmt_time(art)}**, of which making the input on "
            f"the CPU and copying it over takes **{fmt_time(rnd)}**"
            + _randn_share(rnd, art) +
            f"; the matmul itself, with inputs already on the device and a synchronize before the clock is read, "
            f"takes **{fmt_time(mm)}** ({fmt(g['correct_2000'].gflops)} GFLOP/s)."
            + _parts_caveat(rnd, mm, art, gpu=True) +
            f" For 2x2 the correct time is **{fmt_time(g['correct_2'].median)}** against "
            f"**{fmt_time(c['correct_2'].median)}** on {p.cpu.label}"
            + (": launching work on a GPU has a fixed cost." if g["correct_2"].median > c["correct_2"].median
               else ".")
        )
        c_art, c_rnd, c_mm = (c[k].median for k in ("article_2000", "randn_2000", "correct_2000"))
        if c_rnd + c_mm > c_art:  # the host CPU's row of the table needs the same caveat as this build's CPU
            text += (f" On {p.cpu.label}, the article's method gives **{fmt_time(c_art)}** for 2000x2000."
                     + _parts_caveat(c_rnd, c_mm, c_art, gpu=False))
        text += "\n"
    return text


# A single call within this factor of the back-to-back time per call is "close" to it.
CLOSE = 1.1


def two_kinds() -> str:
    """The two kinds of time, side by side for a 2x2 matmul on every device shown: how far apart they are."""
    found = sources(small_op_latency, hosts=True)
    note(found)
    items = []
    for s in found:
        single, stream = (s.result.data[f"matmul2x2_{k}"].median for k in ("single", "stream"))
        gap = (f"{fmt(single / stream, 2)}x, {fmt_time(single - stream)} more per call" if single > stream
               else "no longer")
        items.append(f"- {s.label}: **{fmt_time(single)}** one call + synchronize, **{fmt_time(stream)}** per "
                     f"call back to back ({gap})")
    text = "A 2x2 matmul timed both ways, medians:\n\n" + "\n".join(items) + "\n\n"
    ratios = [s.result.data["matmul2x2_single"].median / s.result.data["matmul2x2_stream"].median
              for s in found if s.is_cpu]
    lo, hi = fmt(min(ratios), 2), fmt(max(ratios), 2)
    where = "here" if len(ratios) == 1 else "on the CPUs above"
    span = f"{lo}x" if lo == hi else f"{lo}x to {hi}x"
    if max(ratios) < CLOSE:
        text += f"On a CPU the two are close: the single call took {span} the back-to-back time {where}. "
    else:
        text += (f"On a CPU a synchronize has no device to wait for, yet the single call took {span} the "
                 f"back-to-back time {where}: on a CPU, too, the two kinds of time are not interchangeable (what "
                 "that extra is made of is not measured here: a single-call run pays the timer's own work once "
                 "per call, where back to back spreads it over many calls). ")
    for p in pairs(small_op_latency):
        g, c = p.gpu.result.data, p.cpu.result.data
        g_gap = g["matmul2x2_single"].median - g["matmul2x2_stream"].median
        c_gap = c["matmul2x2_single"].median - c["matmul2x2_stream"].median
        if g_gap > c_gap:
            text += (f"On {p.gpu.label}, waiting for each result adds {fmt_time(g_gap)} to a call; on "
                     f"{p.cpu.label}, where there is no device, the same way of timing adds "
                     f"{fmt_time(c_gap) if c_gap > 0 else 'nothing'}. The difference, about "
                     f"{fmt_time(g_gap - max(c_gap, 0.0))}, is the round trip to the GPU, and every call that "
                     "waits for its answer pays it. ")
        else:
            text += (f"On {p.gpu.label} a single call costs no more extra time than on {p.cpu.label}: here the "
                     "wait for the device did not show. ")
    return text.rstrip() + "\n\n" + no_gpu_note(found, "GPU lines of this list")


def same_op_runs(src: Source) -> list[tuple[str, Source, Measurement]]:
    """The back-to-back 2x2 fp32 matmul in each experiment of ``src``'s origin that times one.

    (where a page shows it, the experiment's source, the measurement). Three experiments time the same op
    with the same harness, each separately: the small-op table's ``a @ a``, this page's correct method and
    the matmul sweep's n = 2.
    """
    out = []
    lat = sibling(src, small_op_latency)
    if lat is not None:
        out.append(("[Advantage 3](fast-memory.md), small-op table", lat, lat.result.data["matmul2x2_stream"]))
    out.append(("this page, 'Correct, all threads'", src, src.result.data["correct_2"]))
    sweep = sibling(src, matmul_sweep)
    point = next((m for m in sweep.result.data["sweep"].points if m.shape[0] == 2), None) if sweep else None
    if sweep is not None and point is not None:
        out.append(("[Advantage 2](parallelism.md), matmul sweep at n = 2", sweep, point))
    return out


def _furthest_apart(ms: Sequence[Measurement]) -> tuple[Measurement, Measurement]:
    """The two runs whose IQRs are furthest apart: (faster, slower), by the gap from one's p75 to the other's p25."""
    return max(((a, b) for a in ms for b in ms if a is not b), key=lambda ab: ab[1].p25 / ab[0].p75)


def separate_runs() -> str:
    """One op measured separately in one build (or record): do the measurements differ by more than their IQRs?

    Each measurement is many timed runs with a median and an IQR; the three come from three experiments.
    """
    rows, items, apart, worst = [], [], 0, 1.0
    found = article_sources()
    for s in found:
        runs = same_op_runs(s)
        note([src for _, src, _ in runs])
        for where, _src, m in runs:
            rows.append((s.cell(), where, fmt_time(m.median), f"{fmt_time(m.p25)}–{fmt_time(m.p75)}", m.runs))
        if len(runs) < 2:
            continue
        ms = [m for _, _, m in runs]
        fast, slow = _furthest_apart(ms)
        named = {id(m): where.split(", ", 1)[-1] for where, _, m in runs}  # "small-op table", ...
        lo, hi = min(m.median for m in ms), max(m.median for m in ms)
        if slow.p25 > fast.p75:
            apart += 1
            worst = max(worst, hi / lo)
            items.append(f"- On {s.label}, the medians run from **{fmt_time(lo)}** to **{fmt_time(hi)}** "
                         f"(**{fmt(hi / lo, 2)}x**). The {named[id(fast)]} measurement's IQR ends at "
                         f"{fmt_time(fast.p75)}, the {named[id(slow)]} one's starts at {fmt_time(slow.p25)}: "
                         "these two differ by more than their spreads.")
        else:
            items.append(f"- On {s.label}, the medians run from {fmt_time(lo)} to {fmt_time(hi)}, and every two "
                         "measurements' IQRs overlap: they agree within their spreads.")
    out = table(["Device", "Where it is shown", "Median per call", "IQR", "Runs"], rows, align="llrrr")
    out += caption(
        "One op, a 2x2 fp32 matmul, timed back to back (many calls, one synchronize at the end) by the same "
        "harness in three experiments of the same build or record: each row is a separate measurement. The small-op "
        "table multiplies a matrix by itself, the others two matrices of the same shape: the same work, on "
        "different inputs.", found)
    out += "\n" + "\n".join(items) + "\n\n"
    if apart:
        out += (f"So an interquartile range describes one measurement only: how much its timed runs varied, not "
                f"how far another measurement of the same op on the same machine lands. For a call this short "
                f"(microseconds), separate measurements landed up to {fmt(worst, 2)}x apart. Compare such figures "
                "only when they were measured together, in one experiment. Longer work, whose time is not a "
                "call's fixed cost, moves less between measurements, but the same rule is the safe one. What "
                "moves a measurement (clocks, what ran before it, the caches, the kernel a library picks) is not "
                "measured here.\n\n")
    else:
        out += ("Here the separate measurements agreed within their spreads. Still, an interquartile range "
                "describes one measurement only, not how far the next one lands: compare figures measured "
                "together, in one experiment.\n\n")
    return out + no_gpu_note(found, "GPU rows of this table")


def _randn_share(rnd: float, art: float) -> str:
    """The input's share of the article's GPU time; past 100 %, that the input alone took more than the whole."""
    share = 100 * rnd / art
    return f" ({share:.0f} %{', more than the whole' if rnd > art else ''})"


def _parts_caveat(rnd: float, mm: float, art: float, gpu: bool) -> str:
    """Where the input and the matmul, each timed on its own, add up to more than the article's whole: why.

    Empty where they do not. On any device the three were measured separately, and separate measurements of
    the same op can differ by more than their spreads (``separate_runs`` shows by how much); on a GPU, the
    article's method also never waits for the matmul, so the next call's input overlaps it.
    """
    if rnd + mm <= art:
        return ""
    why = ("in the article's loop the GPU runs each matmul while the CPU is already making the next input, so "
           "the two overlap instead of adding up; and the three were measured separately" if gpu else
           "the three were measured separately (how far separate measurements of one op differ: "
           "[the same op, measured separately](measuring.md#separate-runs))")
    return (f" Timed on their own, the input and the matmul add up to **{fmt_time(rnd + mm)}**, more than the "
            f"article's whole: the parts need not add up to the whole, because {why}.")


def cache_caveat() -> str:
    """Whether a copy that fits in an accelerator's L2 beat its device-memory peak, from each accelerator's own data.

    The figure is the launch-free L2 sweep's (``l2_copy_bandwidth``) where the source has one: a floor of
    the L2's bandwidth. Only where it has none is the one-copy-per-call sweep used, and then the speed is
    put down to the L2 only if that copy's call took clearly longer than the smallest copy's.
    """
    text = ""
    for s in accelerators(copy_bandwidth):
        acc = s.hardware.accelerator
        if acc is None or acc.peaks is None or not acc.l2_bytes:
            continue
        l2 = sibling(s, l2_copy_bandwidth)
        if l2 is not None:
            sentence = l2_caveat(s.label, l2.result.data["sweep"].points, acc.peaks.bandwidth, acc.l2_bytes,
                                 graphs=bool(l2.result.data.get("graphs")), memory=memory_kind(acc))
            cited = l2
        else:
            sentence = copy_sweep_caveat(s.label, s.result.data["sweep"].points, acc.peaks.bandwidth, acc.l2_bytes,
                                         memory=memory_kind(acc))
            cited = s
        if sentence:
            note(cited)  # the section's sources line names where this copy ran
            text += sentence + "\n\n"
    return text


def _inside(points: Sequence[Measurement], l2_bytes: int) -> list[Measurement]:
    """The copies whose source and destination both fit in the L2."""
    return [m for m in points if m.gbps and 2 * m.shape[0] <= l2_bytes]


def l2_caveat(label: str, points: Sequence[Measurement], peak: float, l2_bytes: int, graphs: bool = True,
              memory: str = "device memory") -> str:
    """The launch-free L2 sweep's best copy inside the L2, where it beat the device-memory peak (bytes/s): a floor.

    ``memory``: what the device's memory is called (``memory_kind``: HBM, GDDR or "device memory").

    ``graphs``: the sweep replayed its copies from a CUDA graph, which removes the host's launch of each copy
    but not the copy kernel's own start-up; without one, a loop of copies per call shares the launch cost.
    """
    best = max(_inside(points, l2_bytes), key=lambda m: m.gbps, default=None)
    if best is None or best.gbps * 1e9 <= peak:
        return ""
    how = ("with the host's launch cost removed (CUDA-graph replay)" if graphs else
           "with the launch cost shared by many copies per call")
    return (f"On {label}, {how}, copies whose source and destination fit in the "
            f"{l2_bytes / 2**20:,.0f} MiB L2 cache moved **at least {fmt(best.gbps)} GB/s** "
            f"({short_bytes(best.shape[0])} per buffer), above the {fmt(peak / 1e9)} GB/s {memory} peak: those bytes "
            f"never went to {memory}. The figure is a floor of the L2's bandwidth, not its value: each copy still "
            "pays a fixed cost on the GPU (see [Bandwidth](bandwidth.md)).")


def copy_sweep_caveat(label: str, points: Sequence[Measurement], peak: float, l2_bytes: int,
                      memory: str = "device memory") -> str:
    """The one-copy-per-call sweep's best copy inside the L2, where it beat the device-memory peak (bytes/s).

    Its time is put down to the L2 only where the call took more than twice the smallest copy's: closer
    than that, the call's fixed cost set most of it, and the figure is a lower bound, not a cache's speed.
    """
    best = max(_inside(points, l2_bytes), key=lambda m: m.gbps, default=None)
    if best is None or best.gbps * 1e9 <= peak:
        return ""
    smallest = min((m for m in points if m.gbps), key=lambda m: m.shape[0])
    text = (f"On {label}, one copy per call of {short_bytes(best.shape[0])} per buffer moved "
            f"**{fmt(best.gbps)} GB/s**, above the {fmt(peak / 1e9)} GB/s {memory} peak; source and destination fit "
            f"in the {l2_bytes / 2**20:,.0f} MiB L2 cache. ")
    if best.median <= 2 * smallest.median:
        return text + (f"But its call took {fmt_time(best.median)}, no more than twice the smallest copy's "
                       f"{fmt_time(smallest.median)}: the call's fixed cost, about the smallest copy's time, was at "
                       "least half of it, so the figure is a lower bound that says little about the L2 itself.")
    return text + ("Its call took more than twice the smallest copy's, so the copy, not the call, set the time: "
                   f"those bytes never went to {memory}, and the figure, the call's cost included, is a lower bound.")
