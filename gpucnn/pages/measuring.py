"""Page "Measuring it right": the article's experiment, its way and correctly."""

from __future__ import annotations

from collections.abc import Sequence

from gpucnn.bench import Measurement
from gpucnn.experiments.matmul import article_matmul
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
        + (f"{one / right:.2f}x slower).\n" if one > right else
           f"{one / right:.2f}x the all-threads time: on this machine the extra threads did not help this run).\n")
    )
    for p in pairs(article_matmul):
        g, c = p.gpu.result.data, p.cpu.result.data
        art, rnd = g["article_2000"].median, g["randn_2000"].median
        text += (
            f"\nOn {p.gpu.label}, the article's method gives **{fmt_time(art)}**, of which making the input on "
            f"the CPU and copying it over takes **{fmt_time(rnd)}**"
            + _randn_share(rnd, art) +
            f"; the matmul itself, with inputs already on the device and a synchronize before the clock is read, "
            f"takes **{fmt_time(g['correct_2000'].median)}** ({fmt(g['correct_2000'].gflops)} GFLOP/s). "
            f"For 2x2 the correct time is **{fmt_time(g['correct_2'].median)}** against "
            f"**{fmt_time(c['correct_2'].median)}** on {p.cpu.label}"
            + (": launching work on a GPU has a fixed cost.\n" if g["correct_2"].median > c["correct_2"].median
               else ".\n")
        )
    return text


def _randn_share(rnd: float, art: float) -> str:
    """The input's share of the article's GPU time, and, where it is most of it, why parts and whole disagree.

    The article's method never waits for the GPU and times the input and the matmul apart, so near or past
    100 % the parts no longer add up to the whole: the reader is told why wherever the share is 90 % or more.
    """
    share = 100 * rnd / art
    if share < 90:
        return f" ({share:.0f} %)"
    return (f" ({share:.0f} %{', more than the whole' if rnd > art else ''}: the parts need not add up to the whole, "
            "because the input and the article's call were timed separately, and the article's method never "
            "waits for the GPU to finish the matmul)")


def cache_caveat() -> str:
    """Whether a copy that fits in an accelerator's L2 beat the HBM peak, from each accelerator's own data.

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
            sentence = l2_caveat(s.label, l2.result.data["sweep"].points, acc.peaks.bandwidth, acc.l2_bytes)
            cited = l2
        else:
            sentence = copy_sweep_caveat(s.label, s.result.data["sweep"].points, acc.peaks.bandwidth, acc.l2_bytes)
            cited = s
        if sentence:
            note(cited)  # the section's sources line names where this copy ran
            text += sentence + "\n\n"
    return text


def _inside(points: Sequence[Measurement], l2_bytes: int) -> list[Measurement]:
    """The copies whose source and destination both fit in the L2."""
    return [m for m in points if m.gbps and 2 * m.shape[0] <= l2_bytes]


def l2_caveat(label: str, points: Sequence[Measurement], peak: float, l2_bytes: int) -> str:
    """The launch-free L2 sweep's best copy inside the L2, where it beat the HBM peak (bytes/s): a floor."""
    best = max(_inside(points, l2_bytes), key=lambda m: m.gbps, default=None)
    if best is None or best.gbps * 1e9 <= peak:
        return ""
    return (f"On {label}, with the launch cost removed, copies whose source and destination fit in the "
            f"{l2_bytes / 2**20:,.0f} MiB L2 cache moved **at least {fmt(best.gbps)} GB/s** "
            f"({short_bytes(best.shape[0])} per buffer), above the {fmt(peak / 1e9)} GB/s HBM peak: those bytes "
            "never went to HBM. The figure is a floor of the L2's bandwidth, not its value: each copy still "
            "pays a fixed cost on the GPU (see [Bandwidth](bandwidth.md)).")


def copy_sweep_caveat(label: str, points: Sequence[Measurement], peak: float, l2_bytes: int) -> str:
    """The one-copy-per-call sweep's best copy inside the L2, where it beat the HBM peak (bytes/s).

    Its time is put down to the L2 only where the call took more than twice the smallest copy's: closer
    than that, the call's fixed cost set most of it, and the figure is a lower bound, not a cache's speed.
    """
    best = max(_inside(points, l2_bytes), key=lambda m: m.gbps, default=None)
    if best is None or best.gbps * 1e9 <= peak:
        return ""
    smallest = min((m for m in points if m.gbps), key=lambda m: m.shape[0])
    text = (f"On {label}, one copy per call of {short_bytes(best.shape[0])} per buffer moved "
            f"**{fmt(best.gbps)} GB/s**, above the {fmt(peak / 1e9)} GB/s HBM peak; source and destination fit "
            f"in the {l2_bytes / 2**20:,.0f} MiB L2 cache. ")
    if best.median <= 2 * smallest.median:
        return text + (f"But its call took {fmt_time(best.median)}, no more than twice the smallest copy's "
                       f"{fmt_time(smallest.median)}: the call's fixed cost, about the smallest copy's time, was at "
                       "least half of it, so the figure is a lower bound that says little about the L2 itself.")
    return text + ("Its call took more than twice the smallest copy's, so the copy, not the call, set the time: "
                   "those bytes never went to HBM, and the figure, the call's cost included, is a lower bound.")
