"""Advantage 2 and Summary after review A (round 3): a tie is no crossover, a CPU bf16 ratio above its peak
ratio is explained by the two efficiencies, and mamf-finder's bf16 figure stands beside the site's own bf16.

Points are synthetic; where the archived records are read, the test checks what the sentences say about
them against the data, never a measured value.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from gpucnn.bench import Measurement, Sweep
from gpucnn.figures import SAME_SPEED, Pace, call_cost
from gpucnn.hardware import Peak, detect
from gpucnn.pages import parallelism, tensor_cores
from gpucnn.pages.parallelism import Overtake, crossover, judge, overtake, overtake_text
from gpucnn.pages.tensor_cores import PrecisionSweep, cpu_bf16_sentence
from gpucnn.render import fmt
from gpucnn.results import Result
from gpucnn.sources import Source
from tests.conftest import ROOT


def pt(n: int, times: tuple[float, ...], device: str = "cpu", peak: float | None = None) -> Measurement:
    return Measurement(name=f"p{n}", device=device, dtype="float32", shape=(n, n, n), threads=1, times_s=times,
                       number_per_run=1, flops=2.0 * n**3, peak_flops=peak)


def spread(t: float, rel: float) -> tuple[float, ...]:
    """Five times around ``t``, with quartiles at t x (1 -/+ rel/2)."""
    return (t * (1 - rel), t * (1 - rel / 2), t, t * (1 + rel / 2), t * (1 + rel))


# --- H4: a size where CPU and GPU cannot be told apart is no win -------------------------------------------

def test_overlapping_iqrs_are_a_tie_even_with_a_lower_median() -> None:
    # 0.6 % apart, the CPU's IQR wide around the GPU's: the archived H100's n = 128, in shape
    cpu, gpu = pt(128, spread(12.33e-6, 0.12)), pt(128, spread(12.26e-6, 0.02), "cuda")
    assert gpu.median < cpu.median and gpu.p75 >= cpu.p25
    assert judge(cpu, gpu) == "equal"


def test_separate_iqrs_within_same_speed_are_a_tie_and_beyond_it_a_win() -> None:
    cpu = pt(512, spread(1.0, 0.002))
    close = pt(512, spread(1 / (1 + (SAME_SPEED - 1) / 2), 0.002), "cuda")
    assert close.p75 < cpu.p25  # separate IQRs, but a lead inside run-to-run noise
    assert judge(cpu, close) == "equal"
    far = pt(512, spread(1 / (2 * SAME_SPEED), 0.002), "cuda")
    assert judge(cpu, far) == "other" and judge(far, cpu) == "cpu"


def _sweeps(gpu_over_cpu: dict[int, float]) -> tuple[list[Measurement], list[Measurement]]:
    """CPU and GPU points with tight IQRs; ``gpu_over_cpu``: CPU time / GPU time per n (1.0: a dead heat)."""
    cpu = [pt(n, spread(1e-6 * n, 0.002)) for n in gpu_over_cpu]
    gpu = [pt(n, spread(1e-6 * n / r, 0.002), "cuda") for n, r in gpu_over_cpu.items()]
    return cpu, gpu


def test_a_tie_before_the_wins_is_reported_not_counted() -> None:
    cpu, gpu = _sweeps({64: 0.5, 128: 1.0, 256: 3.0, 512: 10.0})
    assert overtake(cpu, gpu) == Overtake(256, (128,))
    assert crossover(cpu, gpu) == 256
    assert overtake_text(overtake(cpu, gpu)) == "about equal at n = 128; faster from n = 256"


def test_several_ties_and_a_tie_at_the_end() -> None:
    cpu, gpu = _sweeps({64: 0.5, 128: 1.0, 256: 1.05, 512: 3.0})
    assert overtake_text(overtake(cpu, gpu)) == "about equal at n = 128 to 256; faster from n = 512"
    cpu, gpu = _sweeps({64: 3.0, 128: 3.0, 256: 1.0})  # wins early, a dead heat at the largest size
    o = overtake(cpu, gpu)
    assert o == Overtake(None, (256,)) and crossover(cpu, gpu) is None
    assert "never clearly faster" in overtake_text(o) and "about equal from n = 256" in overtake_text(o)
    cpu, gpu = _sweeps({64: 0.5, 128: 3.0})
    assert overtake_text(overtake(cpu, gpu)) == "from n = 128"
    assert overtake_text(overtake(*_sweeps({64: 3.0, 128: 0.5}))) == "never at every larger size measured"
    assert overtake_text(None) == "not in this source"


def test_the_reason_for_several_ties_is_said() -> None:
    cpu = [pt(n, spread(1e-6 * n, 0.002)) for n in (64, 128)]
    gpu = [pt(64, spread(1e-6 * 64 / 1.05, 0.002), "cuda"), pt(128, spread(1e-6 * 128, 0.5), "cuda")]
    assert overtake(cpu, gpu) == Overtake(None, (64, 128))
    text = parallelism._tie_note(cpu, gpu, (64, 128))
    assert text.startswith(f"the GPU {fmt(1.0, 3)}x to {fmt(1.05, 3)}x as fast as the CPU: ")
    assert "IQRs overlap, or the medians are within" in text
    assert parallelism._tie_note(cpu, gpu, (128,)).endswith("their IQRs overlap")
    assert "run-to-run noise" in parallelism._tie_note(cpu, gpu, (64,))


def _pair_source(label: str, points: list[Measurement]) -> SimpleNamespace:
    return SimpleNamespace(label=label, result=SimpleNamespace(data={"sweep": Sweep(tuple(points))}))


def test_the_sentence_reports_the_tie_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = [pt(2, spread(2e-6, 0.02)), pt(128, spread(12.33e-6, 0.12)), pt(256, spread(48e-6, 0.02)),
           pt(512, spread(270e-6, 0.02))]
    gpu = [pt(2, spread(12e-6, 0.02), "cuda"), pt(128, spread(12.26e-6, 0.02), "cuda"),
           pt(256, spread(19e-6, 0.02), "cuda"), pt(512, spread(16e-6, 0.02), "cuda")]
    copy = [pt(n, spread(t, 0.02), "cuda") for n, t in ((128, 70e-6), (256, 100e-6), (512, 268e-6))]
    g, c = _pair_source("GPU (fake)", gpu), _pair_source("CPU (fake)", cpu)
    found = [parallelism.Crossover(SimpleNamespace(gpu=g, cpu=c), overtake(cpu, gpu), overtake(cpu, copy))]
    monkeypatch.setattr(parallelism, "crossovers", lambda: found)
    monkeypatch.setattr(parallelism, "run", lambda *a, **k: SimpleNamespace(data={"sweep": Sweep(tuple(cpu))}))
    monkeypatch.setattr(parallelism, "_fixed_cost", lambda gpu, host: parallelism._FIXED_COST[Pace.HOST])
    text = parallelism.crossover_findings()
    line = next(x for x in text.splitlines() if "GPU (fake)" in x)
    assert "at n = 2 the GPU is slower" in line
    # the n = 2 time is a fixed cost per call, said by the record's verdict, and linked to its split
    assert parallelism._FIXED_COST[Pace.HOST] in line and "(measuring.md#call-cost)" in line
    ratio = fmt(cpu[1].median / gpu[1].median, 3)
    assert f"at n = 128 the two are about equal (the GPU {ratio}x as fast as the CPU: their IQRs overlap)" in line
    assert "faster from **n = 256** on" in line and "faster from **n = 128**" not in line
    # with the copy, a dead heat at the largest size: never a crossover, and the tie is said
    assert "copying both inputs inside every call, it is never clearly faster at every larger size " \
           "(about equal at n = 512)" in line


def test_no_archived_crossover_starts_at_a_tie() -> None:
    """Each crossover the page shows for the records in results/ is a clear win from there on."""
    found = parallelism.crossovers()
    archived = [c for c in found if c.pair.gpu.archived]
    assert archived, "no archived GPU in results/: the test would prove nothing"
    copies = {s.origin: s for s in parallelism.with_copy_sources()}
    for c in archived:
        cpu = {m.shape[0]: m for m in parallelism._points(c.pair.cpu)}
        for o, src in ((c.inputs_on_gpu, c.pair.gpu), (c.with_copy, copies.get(c.pair.gpu.origin))):
            if o is None or src is None:
                continue
            gpu = {m.shape[0]: m for m in parallelism._points(src)}
            for n in gpu:
                if n in cpu and o.faster_from is not None and n >= o.faster_from:
                    assert judge(cpu[n], gpu[n]) == "other", (c.pair.gpu.label, n)
            for n in o.equal:
                assert judge(cpu[n], gpu[n]) == "equal", (c.pair.gpu.label, n)


# --- M1: a CPU bf16 ratio above the peak ratio names both efficiencies -------------------------------------

def test_a_ratio_above_the_peak_ratio_is_explained_by_the_efficiencies() -> None:
    text = cpu_bf16_sentence(2048, 2.3, 2.0, (78.0, 90.0))
    assert "exceeds the 2x peak ratio" in text
    assert "at n = 2,048, fp32 reached 78 % of its estimated peak and bf16 90 % of its own" in text
    assert f"the peak ratio times the quotient of those shares (2x × {fmt(90 / 78, 3)})" in text
    assert "half-size elements" in text and "not measured here" in text
    assert "because" not in text  # an identity, not a cause


def test_half_the_bytes_is_no_reason_for_more_than_twice_the_efficiency() -> None:
    text = cpu_bf16_sentence(512, 49.0, 2.0, (3.7, 90.0))
    assert f"(2x × {fmt(90 / 3.7, 3)})" in text
    assert "half-size elements" not in text


@pytest.mark.parametrize(("ratio", "effs"), [(1.9, (78.0, 74.0)), (2.3, None), (2.001, (78.0, 78.04))])
def test_no_efficiency_sentence_below_the_bound_without_the_data_or_when_it_rounds_to_it(ratio: float,
                                                                                         effs) -> None:
    assert "exceeds" not in cpu_bf16_sentence(2048, ratio, 2.0, effs)


def _sweep(points: list[Measurement], precision: str, device: str, hw) -> PrecisionSweep:
    result = Result(experiment="x", params={"device": device}, data={"sweep": Sweep(tuple(points))},
                    measured_at="2026-01-01T00:00:00+00:00", profile="quick", torch="t", commit=None,
                    hardware=hw, key="k")
    return PrecisionSweep(Source(device, result), precision)


def _cpu_report(fp32: float, bf16: float):
    hw = detect()
    cpu = dataclasses.replace(hw.cpu, peak_fp32=Peak(fp32, "FLOP/s", "test", True),
                              peak_bf16=Peak(bf16, "FLOP/s", "test bf16", True))
    return dataclasses.replace(hw, cpu=cpu)


def test_the_cpu_findings_take_the_efficiencies_from_the_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    n, peak = 1024, 1e11
    hw = _cpu_report(peak, 2 * peak)
    fp32_t = 2.0 * n**3 / (0.5 * peak)        # 50 % of the fp32 peak
    bf16_t = 2.0 * n**3 / (0.6 * 2 * peak)    # 60 % of the bf16 peak: 2.4x as fast, above the 2x bound
    fp32 = _sweep([pt(n, (fp32_t,) * 5, peak=peak)], "float32", "cpu", hw)
    bf16 = _sweep([pt(n, (bf16_t,) * 5, peak=2 * peak)], "bfloat16", "cpu", hw)
    monkeypatch.setattr(tensor_cores, "precision_sweeps", lambda: [fp32, bf16])
    text = tensor_cores.precision_findings()
    assert f"**{fmt(fp32_t / bf16_t, 2)}x as fast**" in text
    assert "fp32 reached 50 % of its estimated peak and bf16 60 % of its own" in text
    assert f"(2x × {fmt(1.2, 3)})" in text


# --- L6: no claim that a few cores reach any CPU's DRAM bandwidth ------------------------------------------

def test_the_cpu_bandwidth_sentence_distinguishes_desktop_and_server() -> None:
    text = " ".join((ROOT / "docs" / "parallelism.md").read_text().split())
    assert "a few cores suffice to reach its DRAM bandwidth" not in text
    assert "server socket" in text
    assert "record no clock or power reading" in text


# --- the n = 2 GPU time: a fixed cost per call, whose pace-setter the record's own data decide ---------------

def test_the_n2_sentence_takes_its_pace_from_the_same_record() -> None:
    """On the archive: each GPU's n = 2 sentence names the pace its own record's tiny-op latencies and profile
    give, and none calls that time the cost of launching a kernel."""
    from gpucnn.experiments.latency import small_op_latency
    from gpucnn.experiments.nn import mlp_time_split
    from gpucnn.sources import sibling

    text = parallelism.crossover_findings()
    assert "the cost of launching a kernel" not in text
    checked = 0
    for c in parallelism.crossovers():
        line = next(x for x in text.splitlines() if x.startswith(f"- **{c.pair.gpu.label}**"))
        if "at n = 2 the GPU is slower" not in line:
            continue
        g, h = sibling(c.pair.gpu, small_op_latency), sibling(c.pair.cpu, small_op_latency)
        prof = sibling(c.pair.gpu, mlp_time_split)
        pace = (call_cost(g.result.data, h.result.data, prof.result.data["profile"] if prof else None).pace
                if g and h else Pace.UNKNOWN)
        assert parallelism._FIXED_COST[pace] in line, line
        checked += 1
    assert checked, "no archived GPU slower at n = 2: the test would prove nothing"
