"""Page "Measuring it right": the article's experiment, its way and correctly."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from gpucnn.bench import Measurement
from gpucnn.datasheets import memory_kind
from gpucnn.experiments.latency import small_op_latency
from gpucnn.experiments.matmul import article_matmul, matmul_sweep
from gpucnn.experiments.memory import copy_bandwidth, l2_copy_bandwidth
from gpucnn.experiments.nn import mlp_batch_sweep, mlp_time_split
from gpucnn.figures import ArticleParts, CallCost, HostOrder, Pace, PartsVerdict, article_parts, call_cost, host_order
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
from gpucnn.sources import Pair, Source, accelerators, no_gpu_note, note, pairs, sibling, sources

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
    """Horizontal bars: the article's 2000x2000 CPU time against its two parts, each timed alone, and the rest."""
    cpu = run(article_matmul, device="cpu")
    d = cpu.data
    parts = article_parts(d)
    one = d["one_thread_2000"]
    fig, ax = new_figure(7.0, 3.8)
    ms = 1e3
    whisker = {"ecolor": "#333333", "capsize": 3}

    def bar(y: float, m: Measurement, color: str, left: float = 0.0, label: str | None = None) -> None:
        ax.barh(y, m.median * ms, left=left * ms, color=color, edgecolor="#010203", linewidth=0.5, label=label,
                xerr=[[(m.median - m.p25) * ms], [(m.p75 - m.median) * ms]], error_kw=whisker)

    bar(0, parts.whole, COLORS[0])
    bar(1, parts.randn, COLORS[1], label="randn alone")
    bar(1, parts.matmul, COLORS[2], left=parts.randn.median, label="matmul alone, all threads")
    if parts.rest > 0:
        ax.barh(1, parts.rest * ms, left=parts.parts * ms, color="#FFFFFF", edgecolor="#010203", linewidth=0.8,
                label="rest: in neither part")
    bar(2, one, COLORS[3])
    # each label starts past its bar and its whisker
    ends = [parts.whole.p75, max(parts.whole.median, parts.randn.median + parts.matmul.p75), one.p75]
    texts = [fmt_time(parts.whole.median),
             fmt_time(parts.parts) + (f" + {fmt_time(parts.rest)} rest" if parts.rest > 0 else ""),
             fmt_time(one.median)]
    for i, (end, text) in enumerate(zip(ends, texts, strict=True)):
        ax.annotate(text, (end * ms, i), xytext=(6, 0), textcoords="offset points", va="center", fontsize=10)
    names = ["article's method", "its parts, timed alone", "matmul, 1 thread"]
    ax.set_yticks(range(3), names)
    ax.invert_yaxis()
    ax.set_xlabel("median time per call (ms)")
    ax.set_xlim(0, max(ends) * ms * 1.45)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=10, frameon=False)
    ax.set_title("2000x2000 fp32 matmul on the CPU: the article's time and its parts")
    steps = [("article's method", parts.whole), ("randn alone", parts.randn),
             ("matmul alone, all threads", parts.matmul), ("matmul, 1 thread", one)]
    runs = ", ".join(f"{name}: {m.runs} runs" for name, m in steps)
    chart = figure_html(
        fig, title="2000x2000 matmul on the CPU: the article's method against its parts, each timed alone",
        desc="Horizontal bars of median time per call. " + "; ".join(f"{n}: {fmt_time(m.median)}" for n, m in steps)
        + f"; rest, in neither part: {signed_time(parts.rest)}.",
        caption_text=f"Bars: median; whiskers: IQR ({runs}). Rest: the article's median less its two parts'.",
        results=cpu)
    device = Source("cpu", cpu).cell()
    rows = [(device, name, fmt_time(m.median), f"{fmt_time(m.p25)}–{fmt_time(m.p75)}", m.runs) for name, m in steps]
    rows.append((device, "rest: article's method less randn and matmul (all threads)", signed_time(parts.rest),
                 "–", "–"))
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
        + _parts_caveat(rnd, right, art, gpu=False) + _rest_sentence(article_parts(cpu)) + "\n"
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
            + _parts_caveat(rnd, mm, art, gpu=True) + _rest_sentence(article_parts(g)) +
            f" For 2x2 the correct time is **{fmt_time(g['correct_2'].median)}** against "
            f"**{fmt_time(c['correct_2'].median)}** on {p.cpu.label}"
            + (": a GPU call has a fixed cost ([what it is made of](measuring.md#call-cost))." if g["correct_2"].median > c["correct_2"].median
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


def call_costs() -> list[tuple[Pair, CallCost]]:
    """Each GPU's tiny-op costs with its own host CPU's (``small_op_latency``), and its MLP profile's kernels."""
    out = []
    for p in pairs(small_op_latency):
        prof = sibling(p.gpu, mlp_time_split)
        rows = prof.result.data["profile"] if prof is not None else None
        out.append((p, call_cost(p.gpu.result.data, p.cpu.result.data, rows)))
    return out


_PACE = {Pace.HOST: "the host", Pace.GPU: "the GPU", Pace.UNKNOWN: "not measured"}


def call_cost_table() -> str:
    """Per GPU: a one-number add on its host CPU and on the GPU, a 2x2 matmul on the GPU, the shortest profiled
    kernel, and which side sets the pace. Empty where no GPU is shown."""
    found = call_costs()
    rows = [(p.gpu.cell(), p.cpu.cell(), fmt_time(c.host_add.median), fmt_time(c.gpu_add.median),
             fmt_time(c.gpu_matmul.median), fmt_time(c.kernel), _PACE[c.pace]) for p, c in found]
    if not rows:
        return ""
    shown = [s for p, _ in found for s in (p.gpu, p.cpu)]
    note([*shown, *(x for p, _ in found if (x := sibling(p.gpu, mlp_time_split)) is not None)])
    out = table(["GPU", "Its host CPU", "Add, host CPU", "Add, GPU", "2x2 matmul, GPU",
                 "Shortest kernel, GPU", "Pace set by"], rows, align="llrrrrl")
    return out + caption(
        "Medians per call, back to back. Add: one number plus itself. Shortest kernel: the least GPU time per call "
        "of any op in the record's profiled MLP training step.", shown)


def call_cost_findings() -> str:
    """Per GPU, what part of a tiny call is the host's and what the GPU's; then GPUs of one chip on two machines."""
    found = call_costs()
    text = ""
    for p, c in found:
        text += (f"- **{p.gpu.label}**: an add costs **{fmt_time(c.host_add.median)}** on its host CPU (Python, "
                 f"torch's dispatcher, the add) and **{fmt_time(c.gpu_add.median)}** on the GPU, "
                 f"{signed_time(c.cuda_path)} more. ")
        if c.pace is Pace.HOST:
            text += (f"The GPU ran its shortest profiled op in {fmt_time(c.kernel)}, under half of that: it waits "
                     "for the host. So the add's time on the GPU is the host's: Python and the dispatcher as on the "
                     "CPU, then the CUDA path (the driver's launch call, the GPU's memory allocator), not the GPU's "
                     "launch. ")
        elif c.pace is Pace.GPU:
            text += (f"Its shortest profiled op kept the GPU busy {fmt_time(c.kernel)}, half of that or more: the "
                     "GPU's own work sets the pace. ")
        else:
            text += "Which side sets the pace is not measured in this record (its profile has no kernel times). "
        text += (f"A 2x2 matmul costs **{fmt_time(c.gpu_matmul.median)}**, {signed_time(c.matmul_extra)} more than "
                 "the add: cuBLAS's work per call (its handle, the kernel choice) or a longer kernel; these data do "
                 "not tell which.\n")
    return (text + "\n" + same_chip_findings() if text else "") + no_gpu_note([p.gpu for p, _ in found],
                                                                              "GPU rows of this table")


def _chip(src: Source) -> tuple[str, int] | None:
    acc = src.hardware.accelerator
    if acc is None or not acc.capability or not acc.multiprocessors:
        return None
    return acc.capability, acc.multiprocessors


def same_chip_findings() -> str:
    """Two machines whose GPUs are the same chip (compute capability and SM count): do their GPU times follow
    their host CPUs'? Each figure is labelled with its machine; nothing is compared across different chips."""
    found = call_costs()
    text = ""
    for (pa, a), (pb, b) in itertools.combinations(found, 2):
        chip = _chip(pa.gpu)
        if chip is None or chip != _chip(pb.gpu):
            continue
        steps = [sibling(p.gpu, mlp_batch_sweep) for p in (pa, pb)]
        firsts = [next((m for m in s.result.data["sweep"].points if m.shape[0] == 1), None) if s else None
                  for s in steps]
        if None in firsts:
            continue
        note([pa.gpu, pa.cpu, pb.gpu, pb.cpu, *steps])
        sa, sb = firsts
        order = host_order(a, sa, b, sb)
        text += (f"Two machines, one GPU chip (compute capability {chip[0]}, {chip[1]} SMs): an add costs "
                 f"{fmt_time(a.host_add.median)} on {pa.cpu.label} and {fmt_time(b.host_add.median)} on "
                 f"{pb.cpu.label}; on their GPUs, {fmt_time(a.gpu_add.median)} on {pa.gpu.label} and "
                 f"{fmt_time(b.gpu_add.median)} on {pb.gpu.label}; a batch-1 MLP training step takes "
                 f"{fmt_time(sa.median)} and {fmt_time(sb.median)}. ")
        text += {HostOrder.FOLLOWS: "The machine with the slower host is slower on the same chip: at this size "
                                    "the host, not the GPU, sets the time.",
                 HostOrder.NOT_FOLLOWING: "The GPU times do not follow the hosts' here.",
                 HostOrder.SAME_HOST: "Their hosts' calls cannot be told apart here."}[order] + "\n\n"
    return text


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


def signed_time(seconds: float) -> str:
    """``fmt_time`` for a difference that may be negative."""
    return f"\u2212{fmt_time(-seconds)}" if seconds < 0 else fmt_time(seconds)


def _rest_sentence(parts: ArticleParts) -> str:
    """Where the article's whole is more than its two parts timed alone: the rest, named for what the data
    can tell of it. Empty where the parts add up to the whole or more (``_parts_caveat`` speaks then)."""
    if parts.rest <= 0:
        return ""
    text = (f" The two parts, each timed alone, account for **{fmt_time(parts.parts)}**; the other "
            f"**{fmt_time(parts.rest)}** ({100 * parts.rest / parts.whole.median:.0f} %) is in neither part: ")
    if parts.verdict is PartsVerdict.REST:
        return text + ("more than the three measurements' spreads (IQRs). Either running the two in one loop costs "
                       "more than running each alone, or the machine ran slower while the whole was timed: these "
                       "measurements do not tell which.")
    return text + ("within the three measurements' spreads (IQRs), so the variation between separate "
                   "measurements may explain it ([the same op, measured separately](measuring.md#separate-runs)).")


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
