"""Page "Artificial neural networks": an MLP's training step against batch size, and where its time goes."""

from __future__ import annotations

from collections.abc import Sequence

from gpucnn.bench import Measurement
from gpucnn.experiments.nn import MLP_WIDTHS, mlp_batch_sweep, mlp_flops, mlp_time_split
from gpucnn.profiling import stored_op_rows
from gpucnn.render import (
    COLORS,
    Series,
    caption,
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
    origin_style,
    profile_cells,
    rate,
    reference_note,
    runs_text,
    series_table,
    source_series,
    source_sweep_notes,
    table,
)
from gpucnn.sources import Source, no_gpu_note, one_line, sources


def flop_ratios() -> tuple[float, float]:
    """(backward, step) over the forward, from the code's FLOP count of this MLP (the same at any batch).

    Not 2x and 3x: the first layer's input is the data and needs no gradient, so the first layer's backward
    pass is one matmul, not two.
    """
    f = mlp_flops(1)
    return f["backward"] / f["forward"], f["train"] / f["forward"]


def flop_note() -> str:
    """How a step's FLOPs are counted, with this MLP's ratios computed from ``mlp_flops``."""
    backward, step = flop_ratios()
    return ("FLOPs are the matmul FLOPs of one step (a multiply-add counts as 2): forward 2 x batch x in x out per "
            "layer; the backward pass adds a weight-gradient matmul and an input-gradient matmul of the same size "
            "per layer, but no input gradient for the first layer, whose input is the data: a layer's step costs "
            "3x its forward, the first layer's 2x. For this MLP the backward pass is "
            f"{fmt(backward)}x the forward and a step {fmt(step)}x. Bias, ReLU and the loss are not counted.")


def sweep_sources() -> list[Source]:
    return sources(mlp_batch_sweep)


def split_sources() -> list[Source]:
    return sources(mlp_time_split)


def samples_series(src: Source, origin_index: int) -> Series:
    """Samples per second against batch size, with the IQR band."""
    points = src.result.data["sweep"].points
    return Series(src.label, [m.shape[0] for m in points], [m.shape[0] / m.median for m in points],
                  [m.shape[0] / m.p75 for m in points], [m.shape[0] / m.p25 for m in points],
                  style=origin_style(origin_index, src.is_cpu), source=src.origin)


def _layers() -> str:
    return " -> ".join(str(w) for w in MLP_WIDTHS)


def batch_charts() -> str:
    """Two charts: samples/s and GFLOP/s of a training step against batch size, per device."""
    found = sweep_sources()
    all_points = [m for s in found for m in s.result.data["sweep"].points]
    band = (f"Line: median; band: interquartile range (25th to 75th percentile) of the timed runs "
            f"({runs_text(all_points)} per point). ")
    origins = list(dict.fromkeys(s.origin for s in found))  # a GPU and its host CPU share a colour
    samples = [samples_series(s, origins.index(s.origin)) for s in found]
    gflops = source_series(found, lambda s: s.result.data["sweep"])
    cpu_peak = found[0].hardware.cpu.peak_fp32
    hlines = [(cpu_peak.value / 1e9, "this build's CPU FP32 peak (estimate)")] if cpu_peak else []
    chart = line_chart(
        legible(samples), title=f"MLP ({_layers()}) training step: samples per second",
        xlabel="batch size (samples)", ylabel="samples per second (forward + backward)",
        caption_text=band + "fp32, TF32 off.", results=found,
        logx=True, logy=True)
    out = chart + figures_table(chart, series_table(samples, x="Batch", y="Samples/s", y_text=rate))
    chart = line_chart(
        legible(gflops), title=f"MLP ({_layers()}) training step: GFLOP/s",
        xlabel="batch size (samples)", ylabel="GFLOP/s (10^9 FLOP per second)",
        caption_text=band + flop_note(), results=found,
        logx=True, logy=True, hlines=hlines)
    out += chart + figures_table(chart, series_table(gflops, x="Batch", y="GFLOP/s"),
                                 reference_note(hlines=hlines, y_text=gflops_text))
    out += source_sweep_notes(found) + no_gpu_note(found, "GPU lines of these charts")
    return out


def batch_table() -> str:
    """Each measured batch size: time, spread, samples/s and GFLOP/s."""
    rows = []
    found = sweep_sources()
    for s in found:
        for m in s.result.data["sweep"].points:
            rows.append((s.cell(), m.shape[0], fmt_time(m.median), fmt_time(m.iqr), rate(m.shape[0] / m.median),
                         fmt(m.gflops), f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    out = table(["Device", "Batch", "Median step", "IQR", "Samples/s", "GFLOP/s", "% of FP32 peak", "Runs"],
                rows, align="lrrrrrrr")
    out += caption(f"One training step (forward + backward, no optimizer step) of the {_layers()} MLP, fp32. "
                   "% of peak: against the CPU's estimated peak, or the GPU's datasheet peak. " + flop_note(),
                   found)
    return out


def batch_findings() -> str:
    """Sentences quoting the sweep's ends."""
    text = ""
    for s in sweep_sources():
        pts = s.result.data["sweep"].points
        if len(pts) < 2:
            continue
        a, b = pts[0], pts[-1]
        text += (
            f"On {s.label}, one sample at a time runs at **{fmt(a.gflops)} GFLOP/s** "
            f"({rate(a.shape[0] / a.median)} samples/s); a batch of {b.shape[0]} runs at **{fmt(b.gflops)} GFLOP/s** "
            f"({rate(b.shape[0] / b.median)} samples/s), **{fmt(b.gflops / a.gflops)}x** the throughput "
            f"from the same weights.\n\n"
        )
    return text


def split_chart() -> str:
    """Bars: forward alone against forward + backward, per device, with IQR whiskers."""
    found = split_sources()
    rs = [s.result for s in found]
    fig, ax = new_figure(7.0, 1.6 + 1.1 * len(rs))
    ticks, meds = [], []
    for i, (src, r) in enumerate(zip(found, rs, strict=True)):
        for j, key in enumerate(("forward", "train")):
            m: Measurement = r.data[key]
            y = i * 2.8 + j
            # Archived bars: cross-hatched with a dashed edge, so they never pass for this build's.
            ax.barh(y, m.median * 1e3, xerr=[[(m.median - m.p25) * 1e3], [(m.p75 - m.median) * 1e3]],
                    color=COLORS[j], hatch=["", "//"][j] + ("xx" if src.archived else ""), edgecolor="#010203",
                    ecolor="#010203", linewidth=0.8 if src.archived else 0.5, capsize=3,
                    linestyle="--" if src.archived else "-", gid=f"gpucnn-series-{2 * i + j}",
                    label=["forward only", "forward + backward"][j] if i == 0 else None)
            ax.annotate(fmt_time(m.median), (m.p75 * 1e3, y), xytext=(5, 0), textcoords="offset points",
                        va="center", fontsize=10)
            meds.append(m.p75 * 1e3)
        ticks.append((i * 2.8 + 0.5, chart_text(src.label).replace(" (", "\n(", 1)))
    ax.set_yticks([y for y, _ in ticks], [t for _, t in ticks])
    ax.invert_yaxis()
    ax.set_xlim(0, max(meds) * 1.3)
    ax.set_xlabel("median time per step (ms)")
    batch = rs[0].data["batch"]
    ax.set_title(f"MLP training step, batch {batch}: forward against forward + backward")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, fontsize=10, frameon=False)
    runs = runs_text([r.data[k] for r in rs for k in ("forward", "train")])
    desc = "Bars of median step time: " + "; ".join(
        f"{s.label} {k}: {fmt_time(s.result.data[k].median)}" for s in found for k in ("forward", "train"))
    chart = figure_html(
        fig, title=f"MLP forward against forward+backward time, batch {batch}", desc=desc,
        caption_text=f"Bars: median; whiskers: interquartile range ({runs} each). The forward is timed with "
                     "autograd recording, as in training. fp32, TF32 off. Cross-hatched, dashed-edged bars: archived.",
        results=found, sources=[s.origin for s in found for _ in range(2)])
    rows = [[s.cell()] + [f"{fmt_time(m.median)} ({fmt_time(m.p25)}–{fmt_time(m.p75)})"
                          for m in (s.result.data["forward"], s.result.data["train"])] for s in found]
    body = html_table(["Device", "Forward only: median (IQR)", "Forward + backward: median (IQR)"], rows)
    return chart + figures_table(chart, body) + no_gpu_note(found, "GPU bars of this chart")


def split_findings() -> str:
    """The backward share, from the two measurements."""
    text = ""
    predicted = flop_ratios()[0]
    for s in split_sources():
        r = s.result
        f, t = r.data["forward"], r.data["train"]
        back = t.median - f.median
        text += (
            f"On {s.label}, with a batch of {r.data['batch']}, the forward pass takes **{fmt_time(f.median)}** and "
            f"forward + backward **{fmt_time(t.median)}**, so the backward pass takes about **{fmt_time(back)}**, "
            f"**{fmt(back / f.median, 2)}x** the forward: {against_flops(back / f.median, predicted)}.\n\n"
        )
    return text


def against_flops(measured: float, predicted: float) -> str:
    """Whether a measured backward/forward ratio is above or below the FLOP count's.

    Compared as printed (the measured ratio has 2 significant digits): a ratio that rounds to the prediction
    is called about equal to it, not above or below.
    """
    if fmt(measured, 2) == fmt(predicted, 2):
        return f"about the {fmt(predicted)}x the FLOP count predicts"
    return f"{'above' if measured > predicted else 'below'} the {fmt(predicted)}x the FLOP count predicts"


def profile_table() -> str:
    """torch.profiler's top ops of one MLP training step, per device."""
    out = ""
    found = split_sources()
    for src in found:
        r = src.result
        headers, rows = profile_cells(r.data["profile"], src.device)
        out += table(headers, rows, align="l" + "r" * (len(headers) - 1))
        out += caption(
            f"The top ops of {r.data['steps']} profiled MLP training steps (batch {r.data['batch']}) on "
            f"{src.label}, by self time, from torch.profiler. A profile slows what it records: use it "
            "to rank ops, and the timing figures above for how long a step takes.", [src])
        out += "\n"
    return out + no_gpu_note(found, "GPU kernel times of this profile")


def device_busy_s(rows: Sequence[object]) -> float | None:
    """Kernel time per profiled step, from the top-op rows: an op's device time over its share of all
    kernel time. None on the CPU, and for records whose stored shares were wrong (see stored_op_rows)."""
    for r in sorted(stored_op_rows(rows), key=lambda r: r["self_device_pct"] or 0.0, reverse=True):
        if r["self_device_s"] and r["self_device_pct"]:
            return r["self_device_s"] * 100.0 / r["self_device_pct"]
    return None


def idle_findings() -> str:
    """The GPU's idle share of a training step: the profile's kernel time against the harness's step time."""
    text = ""
    for s in split_sources():
        busy = device_busy_s(s.result.data["profile"])
        if s.is_cpu or busy is None:
            continue
        step = s.result.data["train"].median
        idle = max(0.0, 1.0 - busy / step)
        text += (f"On {s.label}, the profiled steps keep the GPU's kernels running for **{fmt_time(busy)}** per "
                 f"step, of a step that takes **{fmt_time(step)}** (the timing above, batch "
                 f"{s.result.data['batch']}): the GPU is **idle {100 * idle:.0f} %** of the step. ")
        if idle >= 0.5:
            text += ("It waits for the host to launch the next kernel: the overhead regime, seen from the GPU's "
                     "side. More work per launch (a larger batch, fused kernels, a CUDA graph) fills that idle "
                     "time almost for free.\n\n")
        else:
            text += "Its kernels, not the launches, set the step time here.\n\n"
    if not text:
        return ""
    return ("The profile also tells how long the GPU actually worked: the sum of its kernel times. Set against "
            "the step's time, the rest is time the GPU sat idle.\n\n" + text)


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


def regime(ratio: float, pct_peak: float | None) -> str:
    """The regime that one doubling of the batch shows: overhead, in between, compute or memory/other."""
    if ratio < FLAT:
        return "overhead-bound"
    if ratio < PROPORTIONAL:
        return "between regimes"
    if ratio > SUPERLINEAR:
        return ("slower than the work grew (throughput fell: the data outgrew a cache, or the run was noisy); "
                "no regime read")
    if pct_peak is not None and pct_peak >= COMPUTE_BOUND_PCT:
        return "compute-bound"
    return "bound by work below the FLOP peak (memory, or kernels that do not reach peak)"


def regime_table() -> str:
    """Per device: the diagnostic "double the batch; does the time grow?" at the smallest and largest batches."""
    rows, found = [], sweep_sources()
    for s in found:
        pts = s.result.data["sweep"].points
        ratios = doubling_ratios(pts)
        if not ratios:
            continue
        (b0, r0), (b1, r1) = ratios[0], ratios[-1]
        last = pts[-1]
        rows.append((s.cell(), fmt_time(pts[0].median), f"{fmt_time(last.median)} (batch {last.shape[0]:,})",
                     f"{fmt(last.median / pts[0].median, 3)}x for {fmt(last.shape[0] / pts[0].shape[0])}x the work",
                     f"{fmt(r0, 3)}x ({b0} -> {2 * b0})", f"{fmt(r1, 3)}x ({b1:,} -> {2 * b1:,})",
                     regime(r1, last.pct_peak_flops)))
    out = table(["Device", "Step, smallest batch", "Step, largest batch", "Time grew", "Doubling the batch, first",
                 "... last", "Regime at the largest batch"], rows, align="lrrrrrl")
    out += caption(
        f"From the batch sweep above. Doubling the batch doubles the work: a time ratio under {FLAT} means the "
        f"step mostly pays a fixed cost (overhead: Python, dispatch, kernel launches); {PROPORTIONAL} or more means "
        f"it pays for the work, and then it is compute-bound at {COMPUTE_BOUND_PCT:.0f} % of the FLOP peak or "
        "more.", found)
    return out


def regime_findings() -> str:
    """Sentences chosen from the data: is each device's step overhead-bound, and can weight reads explain it?"""
    text = ""
    for s in sweep_sources():
        pts = s.result.data["sweep"].points
        flat = flat_until(pts)
        if len(pts) < 2 or flat is None:
            continue
        first, last = pts[0], pts[-1]
        if flat >= last.shape[0]:
            low, high = min(m.median for m in pts), max(m.median for m in pts)
            text += (f"On {s.label}, the step takes {fmt_time(first.median)} at batch {first.shape[0]} and "
                     f"{fmt_time(last.median)} at batch {last.shape[0]:,}: **{fmt(last.shape[0] / first.shape[0])}x "
                     f"the work in {fmt(last.median / first.median, 2)}x the time**. Over the whole sweep it moves "
                     f"between {fmt_time(low)} and {fmt_time(high)}, up and down, not with the work: a fixed cost "
                     "per step, not the work, sets its time. It is **overhead-bound**.")
        elif flat > first.shape[0]:
            text += (f"On {s.label}, the step time stays under 1.5x batch {first.shape[0]}'s up to batch "
                     f"**{flat:,}**: up to there it is **overhead-bound**; beyond, the time grows with the work.")
        else:
            text += (f"On {s.label}, the step time grows from the smallest batches on: the work, not a fixed "
                     "cost, sets the time.")
        acc = s.hardware.accelerator
        if not s.is_cpu and acc and acc.peaks:
            w = weight_bytes()
            read = w / acc.peaks.bandwidth
            text += (f" It is not limited by reading the weights: the {fmt(w / 1e6, 2)} MB of fp32 weights take "
                     f"{fmt_time(read)} to read at the datasheet's {fmt(acc.peaks.bandwidth / 1e12, 3)} TB/s, "
                     f"{fmt(100 * read / first.median, 2)} % of the batch-{first.shape[0]} step"
                     + (f", and they fit in the {acc.l2_bytes / 2**20:.0f} MiB L2 cache" if acc.l2_bytes and
                        w < acc.l2_bytes else "") + ".")
        text += "\n\n"
    predicted = flop_ratios()[0]
    for s in split_sources():
        f, t = s.result.data["forward"], s.result.data["train"]
        back = (t.median - f.median) / f.median
        if back > BACKWARD_EXCESS * predicted:
            # A CPU launches no kernels, but each op still pays torch's dispatch and autograd overhead.
            runs = "runs more, smaller ops" if s.is_cpu else "launches more, smaller kernels"
            call = "every op call" if s.is_cpu else "every launch"
            text += (f"The backward pass on {s.label} costs {fmt(back, 2)}x the forward (timed below, in the split "
                     f"of a step), well above the "
                     f"{fmt(predicted)}x its FLOPs predict: it {runs} (up to two matmuls per layer, the ReLU and "
                     f"bias gradients, autograd's bookkeeping), and where overhead sets the time, {call} counts "
                     "whatever its FLOPs." + host_stall(s) + "\n\n")
    return text


# An op that takes this share of a profiled step's host time, for under STALL_DEVICE_PCT of its device time,
# is a wait on the host, named beside the launch-count explanation.
STALL_HOST_PCT = 25.0
STALL_DEVICE_PCT = 5.0


def host_stall(src: Source) -> str:
    """A sentence naming one op that held the CPU far longer than its kernels ran, from the step's profile, and
    whether the timed step leaves room for that stall (a profiled step longer than the timed one: a cost of profiling)."""
    if src.is_cpu:
        return ""
    # torch's own ops only: a profiler row such as "Activity Buffer Request" (0 calls) is the profiler's bookkeeping.
    rows = [row for row in src.result.data.get("profile", [])
            if row.get("self_device_pct") is not None and row.get("self_device_s") is not None
            and row["calls"] >= 1 and row["op"].startswith("aten::")]
    worst = max(rows, key=lambda row: row["self_cpu_pct"], default=None)
    if worst is None or worst["self_cpu_pct"] < STALL_HOST_PCT or worst["self_device_pct"] >= STALL_DEVICE_PCT:
        return ""
    profiled = worst["self_cpu_s"] / (worst["self_cpu_pct"] / 100)  # the profiled step's CPU time
    timed = src.result.data["train"].median
    text = (f" In its profile below, one op, <code>{one_line(worst['op'])}</code>, spent {fmt_time(worst['self_cpu_s'])} "
            f"of CPU time per step in {worst['calls']:.0f} calls, {fmt(worst['self_cpu_pct'], 2)} % of the profiled "
            f"CPU time, while its GPU kernels ran for {fmt_time(worst['self_device_s'])}: the CPU stalled inside "
            "that call.")
    if profiled > timed:
        return text + (f" The profiled step's CPU time ({fmt_time(profiled)}) is longer than the timed step "
                       f"({fmt_time(timed)}), so the stall is most likely a cost of profiling, not of the step.")
    return text + (f" The timed step ({fmt_time(timed)}) has room for it, so part of the step's cost may be that "
                   "stall, not the number of launches.")
