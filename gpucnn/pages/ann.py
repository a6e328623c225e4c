"""Page "Artificial neural networks": an MLP's training step against batch size, and where its time goes."""

from __future__ import annotations

from collections.abc import Sequence

from gpucnn.bench import Measurement
from gpucnn.experiments.nn import MLP_WIDTHS, mlp_batch_sweep, mlp_time_split
from gpucnn.pages.common import accelerator, devices
from gpucnn.render import (
    COLORS,
    Series,
    caption,
    figure_html,
    fmt,
    fmt_time,
    line_chart,
    new_figure,
    no_accelerator_note,
    sweep_notes,
    sweep_series,
    table,
)
from gpucnn.results import Result, run

FLOP_NOTE = (
    "FLOPs are the matmul FLOPs of one step (a multiply-add counts as 2): forward 2 x batch x in x out per "
    "layer; the backward pass costs about twice the forward (a weight-gradient matmul and an input-gradient "
    "matmul per layer, none for the first layer's input), so a step is just under 3x the forward. Bias, ReLU "
    "and the loss are not counted."
)


def sweep_results() -> list[Result]:
    return [run(mlp_batch_sweep, device=d) for d in devices()]


def split_results() -> list[Result]:
    return [run(mlp_time_split, device=d) for d in devices()]


def runs_text(points: Sequence[Measurement]) -> str:
    """'5 runs' or '5 to 43 runs': how many timed runs each point has."""
    runs = [m.runs for m in points]
    return f"{min(runs)} runs" if min(runs) == max(runs) else f"{min(runs)} to {max(runs)} runs"


def samples_series(label: str, points: Sequence[Measurement]) -> Series:
    """Samples per second against batch size, with the IQR band."""
    return Series(label, [m.shape[0] for m in points], [m.shape[0] / m.median for m in points],
                  [m.shape[0] / m.p75 for m in points], [m.shape[0] / m.p25 for m in points])


def rate(value: float) -> str:
    """A rate such as samples/s: whole numbers with thousands separators from 100 up."""
    return f"{value:,.0f}" if value >= 100 else fmt(value)


def _layers() -> str:
    return " -> ".join(str(w) for w in MLP_WIDTHS)


def batch_charts() -> str:
    """Two charts: samples/s and GFLOP/s of a training step against batch size, per device."""
    rs = sweep_results()
    all_points = [m for r in rs for m in r.data["sweep"].points]
    band = (f"Line: median; band: interquartile range (25th to 75th percentile) of the timed runs "
            f"({runs_text(all_points)} per point). ")
    samples = [samples_series(r.hardware.device_label(r.params["device"]), r.data["sweep"].points) for r in rs]
    gflops = [sweep_series(r.hardware.device_label(r.params["device"]), r.data["sweep"]) for r in rs]
    cpu_peak = rs[0].hardware.cpu.peak_fp32
    hlines = [(cpu_peak.value / 1e9, "CPU FP32 peak (estimate)")] if cpu_peak else []
    out = line_chart(
        samples, title=f"MLP ({_layers()}) training step: samples per second",
        xlabel="batch size (samples)", ylabel="samples per second (forward + backward)",
        caption_text=band + "fp32, TF32 off.", results=rs, logx=True, logy=True)
    out += line_chart(
        gflops, title=f"MLP ({_layers()}) training step: GFLOP/s",
        xlabel="batch size (samples)", ylabel="GFLOP/s (10^9 FLOP per second)",
        caption_text=band + FLOP_NOTE, results=rs, logx=True, logy=True, hlines=hlines)
    out += sweep_notes(rs, has_accelerator=accelerator() is not None, missing_gpu="GPU lines of these charts")
    return out


def batch_table() -> str:
    """Each measured batch size: time, spread, samples/s and GFLOP/s."""
    rows = []
    for r in sweep_results():
        label = r.hardware.device_label(r.params["device"])
        for m in r.data["sweep"].points:
            rows.append((label, m.shape[0], fmt_time(m.median), fmt_time(m.iqr), rate(m.shape[0] / m.median),
                         fmt(m.gflops), f"{fmt(m.pct_peak_flops, 2)} %" if m.pct_peak_flops else "no peak", m.runs))
    out = table(["Device", "Batch", "Median step", "IQR", "Samples/s", "GFLOP/s", "% of FP32 peak", "Runs"],
                rows, align="lrrrrrrr")
    out += caption(f"One training step (forward + backward, no optimizer step) of the {_layers()} MLP, fp32. "
                   "% of peak: against the CPU's estimated peak, or the GPU's datasheet peak. " + FLOP_NOTE,
                   sweep_results())
    return out


def batch_findings() -> str:
    """Sentences quoting the sweep's ends."""
    text = ""
    for r in sweep_results():
        pts = r.data["sweep"].points
        if len(pts) < 2:
            continue
        a, b = pts[0], pts[-1]
        label = r.hardware.device_label(r.params["device"])
        text += (
            f"On the {label}, one sample at a time runs at **{fmt(a.gflops)} GFLOP/s** "
            f"({rate(a.shape[0] / a.median)} samples/s); a batch of {b.shape[0]} runs at **{fmt(b.gflops)} GFLOP/s** "
            f"({rate(b.shape[0] / b.median)} samples/s), **{fmt(b.gflops / a.gflops)}x** the throughput "
            f"from the same weights.\n\n"
        )
    return text


def split_chart() -> str:
    """Bars: forward alone against forward + backward, per device, with IQR whiskers."""
    rs = split_results()
    fig, ax = new_figure(7.0, 1.6 + 1.1 * len(rs))
    ticks, meds = [], []
    for i, r in enumerate(rs):
        for j, key in enumerate(("forward", "train")):
            m: Measurement = r.data[key]
            y = i * 2.8 + j
            ax.barh(y, m.median * 1e3, xerr=[[(m.median - m.p25) * 1e3], [(m.p75 - m.median) * 1e3]],
                    color=COLORS[j], hatch=["", "//"][j], edgecolor="#010203", ecolor="#010203", linewidth=0.5, capsize=3,
                    label=["forward only", "forward + backward"][j] if i == 0 else None)
            ax.annotate(fmt_time(m.median), (m.p75 * 1e3, y), xytext=(5, 0), textcoords="offset points",
                        va="center", fontsize=10)
            meds.append(m.p75 * 1e3)
        ticks.append((i * 2.8 + 0.5, r.hardware.device_label(r.params["device"]).replace(" (", "\n(", 1)))
    ax.set_yticks([y for y, _ in ticks], [t for _, t in ticks])
    ax.invert_yaxis()
    ax.set_xlim(0, max(meds) * 1.3)
    ax.set_xlabel("median time per step (ms)")
    batch = rs[0].data["batch"]
    ax.set_title(f"MLP training step, batch {batch}: forward against forward + backward")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, fontsize=10, frameon=False)
    runs = runs_text([r.data[k] for r in rs for k in ("forward", "train")])
    desc = "Bars of median step time: " + "; ".join(
        f"{r.params['device']} {k}: {fmt_time(r.data[k].median)}" for r in rs for k in ("forward", "train"))
    return figure_html(
        fig, title=f"MLP forward against forward+backward time, batch {batch}", desc=desc,
        caption_text=f"Bars: median; whiskers: interquartile range ({runs} each). The forward is timed with "
                     "autograd recording, as in training. fp32, TF32 off.", results=rs)


def split_findings() -> str:
    """The backward share, from the two measurements."""
    text = ""
    for r in split_results():
        f, t = r.data["forward"], r.data["train"]
        back = t.median - f.median
        label = r.hardware.device_label(r.params["device"])
        text += (
            f"On the {label}, with a batch of {r.data['batch']}, the forward pass takes **{fmt_time(f.median)}** and "
            f"forward + backward **{fmt_time(t.median)}**, so the backward pass takes about **{fmt_time(back)}**, "
            f"**{fmt(back / f.median, 2)}x** the forward (the FLOP count predicts just under 2x).\n\n"
        )
    return text


def profile_table() -> str:
    """torch.profiler's top ops of one MLP training step, per device."""
    out = ""
    for r in split_results():
        dev = r.params["device"]
        gpu = dev != "cpu"
        rows = []
        for row in r.data["profile"]:
            cells = [f"`{row['op']}`", fmt(row["calls"]), fmt_time(row["self_cpu_s"]), f"{fmt(row['self_cpu_pct'], 2)} %"]
            if gpu:
                cells += [fmt_time(row["self_device_s"]), f"{fmt(row['self_device_pct'], 2)} %"]
            rows.append(cells)
        headers = ["Op", "Calls per step", "Self CPU time per step", "Share of CPU time"]
        if gpu:
            headers += [f"Self {dev.upper()} time per step", f"Share of {dev.upper()} time"]
        out += table(headers, rows, align="l" + "r" * (len(headers) - 1))
        out += caption(
            f"{r.hardware.device_label(dev)}: the top ops of {r.data['steps']} profiled MLP training steps "
            f"(batch {r.data['batch']}), by self time, from torch.profiler. A profile slows what it records: use it "
            "to rank ops, and the timing figures above for how long a step takes.", r)
        out += "\n"
    if accelerator() is None:
        out += no_accelerator_note("GPU kernel times of this profile")
    return out
