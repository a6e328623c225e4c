"""Advantage 2 (docs/parallelism.md): the facts its template prints, from fakes and from the archived records.

The tests check verdicts, numbers and sources, never the page's wording.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gpucnn.bench import Measurement, Sweep
from gpucnn.figures import SAME_SPEED
from gpucnn.hardware import Peak, detect
from gpucnn.pages import parallelism, tensor_cores
from gpucnn.pages.parallelism import Overtake, crossover, judge, overtake, tie
from gpucnn.pages.tensor_cores import Bf16Unit, CpuBf16, PrecisionSweep, Speed, bf16_unit
from gpucnn.render import MAX_SERIES
from gpucnn.results import Result
from gpucnn.sources import Source
from tests import fakes
from tests.fakes import fake_report, h200_situation


def pt(n: int, times: tuple[float, ...], device: str = "cpu", peak: float | None = None,
       dtype: str = "float32") -> Measurement:
    return Measurement(name=f"p{n}", device=device, dtype=dtype, shape=(n, n, n), threads=1, times_s=times,
                       number_per_run=1, flops=2.0 * n**3, peak_flops=peak)


def spread(t: float, rel: float) -> tuple[float, ...]:
    """Five times around ``t``, with quartiles at t x (1 -/+ rel/2)."""
    return (t * (1 - rel), t * (1 - rel / 2), t, t * (1 + rel / 2), t * (1 + rel))


# --- a size where CPU and GPU cannot be told apart is no win ------------------------------------------------

def test_overlapping_iqrs_are_a_tie_even_with_a_lower_median() -> None:
    cpu, gpu = pt(128, spread(12.33e-6, 0.12)), pt(128, spread(12.26e-6, 0.02), "cuda")
    assert gpu.median < cpu.median and gpu.p75 >= cpu.p25
    assert judge(cpu, gpu) == "equal"


def test_separate_iqrs_within_same_speed_are_a_tie_and_beyond_it_a_win() -> None:
    cpu = pt(512, spread(1.0, 0.002))
    close = pt(512, spread(1 / (1 + (SAME_SPEED - 1) / 2), 0.002), "cuda")
    assert close.p75 < cpu.p25 and judge(cpu, close) == "equal"
    far = pt(512, spread(1 / (2 * SAME_SPEED), 0.002), "cuda")
    assert judge(cpu, far) == "other" and judge(far, cpu) == "cpu"


def _sweeps(gpu_over_cpu: dict[int, float]) -> tuple[list[Measurement], list[Measurement]]:
    cpu = [pt(n, spread(1e-6 * n, 0.002)) for n in gpu_over_cpu]
    gpu = [pt(n, spread(1e-6 * n / r, 0.002), "cuda") for n, r in gpu_over_cpu.items()]
    return cpu, gpu


def test_a_tie_before_the_wins_is_reported_not_counted() -> None:
    cpu, gpu = _sweeps({64: 0.5, 128: 1.0, 256: 3.0, 512: 10.0})
    assert overtake(cpu, gpu) == Overtake(256, (128,)) and crossover(cpu, gpu) == 256
    assert overtake(*_sweeps({64: 0.5, 128: 1.0, 256: 1.05, 512: 3.0})) == Overtake(512, (128, 256))
    cpu, gpu = _sweeps({64: 3.0, 128: 3.0, 256: 1.0})  # wins early, a dead heat at the largest size
    assert overtake(cpu, gpu) == Overtake(None, (256,)) and crossover(cpu, gpu) is None
    assert overtake(*_sweeps({64: 3.0, 128: 0.5})) == Overtake(None, ())


def test_a_tie_says_how_close_and_why_it_is_no_win() -> None:
    cpu = [pt(n, spread(1e-6 * n, 0.002)) for n in (64, 128)]
    gpu = [pt(64, spread(1e-6 * 64 / 1.05, 0.002), "cuda"), pt(128, spread(1e-6 * 128, 0.5), "cuda")]
    both = tie(cpu, gpu, (64, 128))
    assert both.low_x == pytest.approx(1.0) and both.high_x == pytest.approx(1.05)
    assert both.iqrs_overlap is None  # overlapping at one size, within the noise at the other
    assert tie(cpu, gpu, (128,)).iqrs_overlap is True and tie(cpu, gpu, (64,)).iqrs_overlap is False
    assert tie(cpu, gpu, ()) is None


def test_each_archived_crossover_is_a_clear_win_within_its_own_record() -> None:
    found = [c for c in parallelism.crossovers() if c.pair.gpu.archived]
    assert found, "no archived GPU in results/: the test would prove nothing"
    for c in found:
        assert c.pair.gpu.origin == c.pair.cpu.origin  # never another machine's CPU
        cpu = {m.shape[0]: m for m in parallelism._points(c.pair.cpu)}
        gpu = {m.shape[0]: m for m in parallelism._points(c.pair.gpu)}
        if c.inputs_on_gpu.faster_from is not None:
            assert all(judge(cpu[n], gpu[n]) == "other" for n in gpu if n in cpu and n >= c.inputs_on_gpu.faster_from)
        if c.slower_at_n is not None:
            assert judge(cpu[c.slower_at_n], gpu[c.slower_at_n]) == "cpu"
            assert c.slower_at_s == gpu[c.slower_at_n].median
        assert c.largest_x == pytest.approx(cpu[c.largest_n].median / gpu[c.largest_n].median)


# --- charts: small multiples, each GPU beside its own host CPU ----------------------------------------------

def test_throughput_panels_hold_one_machine_each() -> None:
    panels = parallelism.throughput_panels()
    assert panels
    for p in panels:
        assert len(p.series) <= MAX_SERIES
        assert len({s.source for s in p.series}) == 1, p.title  # a GPU never beside another machine's CPU


def test_precision_panels_show_each_archived_gpus_host_or_no_cpu_of_this_build() -> None:
    sweeps = tensor_cores.precision_sweeps()
    cpus = {(s.source.origin, s.source.label) for s in sweeps if s.source.is_cpu}
    panels = tensor_cores.precision_panels(sweeps)
    assert [p.title for p in panels] == ["fp32", "bf16", "fp16", "TF32"]
    for p in panels:
        assert len(p.series) <= MAX_SERIES, p.title
        origins = {s.source for s in p.series}
        live_cpu = any(s.source == "live" and (s.source, s.label) in cpus for s in p.series)
        for origin in origins - {"live"}:
            if live_cpu:  # this build's CPU beside an archived GPU only with that record's own host CPU
                assert any(o == origin for o, _ in cpus), (p.title, origin)
                assert sum(s.source == origin for s in p.series) >= 2, (p.title, origin)
    html = tensor_cores.precision_chart()  # renders: no ChartRuleError
    assert "Matmul throughput by precision" in html


# --- bf16 on the CPU: the unit, and the kernel torch ran -------------------------------------------------------

@pytest.mark.parametrize(("bound", "ratio", "isa", "unit"), [
    (None, 1.0, "AVX-512", Bf16Unit.UNKNOWN),
    (16.0, 5.0, "AVX-512", Bf16Unit.AMX),
    (2.0, 1.2, "AVX-512", Bf16Unit.DOT_PRODUCTS),
    (1.0, 1.0, "AVX-512", Bf16Unit.CONVERTED),  # oneDNN converts to fp32: about fp32's speed
    (1.0, 0.5, "AVX-512", Bf16Unit.CONVERTED),
    (1.0, 0.0071, "AVX2+FMA", Bf16Unit.FALLBACK),  # issue 19: a Zen 3 VM, 140x slower: ATen's reference loops
    (1.0, 1.0, "AVX2+FMA", Bf16Unit.CONVERTED),  # not slower: oneDNN ran (AVX-NE-CONVERT, not in the record)
    (1.0, 0.5, "NEON", Bf16Unit.NONE),
    (1.0, 0.5, None, Bf16Unit.NONE),
])
def test_the_bf16_unit_and_kernel(bound, ratio, isa, unit) -> None:
    assert bf16_unit(bound, ratio, isa) is unit


@pytest.mark.parametrize(("ratio", "speed"), [(2.0, Speed.FASTER), (1.05, Speed.SAME), (0.5, Speed.SLOWER)])
def test_the_speed_verdict(ratio: float, speed: Speed) -> None:
    assert tensor_cores.speed(ratio) is speed


def _cpu(ratio: float, effs: tuple[float, float] | None, bound: float = 2.0) -> CpuBf16:
    return CpuBf16(None, 2048, ratio, bound, Bf16Unit.DOT_PRODUCTS, *(effs or (None, None)))


def test_a_ratio_above_the_peak_ratio_is_explained_by_the_efficiencies() -> None:
    c = _cpu(2.3, (78.0, 90.0))
    assert c.beats_bound and c.efficiency_quotient == pytest.approx(90 / 78) and c.bytes_may_explain
    assert not _cpu(49.0, (3.7, 90.0)).bytes_may_explain  # half the bytes is no reason for 24x the share


@pytest.mark.parametrize(("ratio", "effs"), [(1.9, (78.0, 74.0)), (2.3, None), (2.001, (78.0, 78.04))])
def test_no_excess_below_the_bound_without_the_data_or_when_it_rounds_to_it(ratio, effs) -> None:
    assert not _cpu(ratio, effs).beats_bound


def _sweep(points: list[Measurement], precision: str, device: str, hw) -> PrecisionSweep:
    result = Result(experiment="matmul_sweep", params={"device": device}, data={"sweep": Sweep(tuple(points))},
                    measured_at="2026-01-01T00:00:00+00:00", profile="quick", torch="t", commit=None,
                    hardware=hw, key="k")
    return PrecisionSweep(Source(device, result), precision)


def test_the_cpu_facts_take_the_efficiencies_from_the_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    n, peak = 1024, 1e11
    hw = detect()
    hw = dataclasses.replace(hw, cpu=dataclasses.replace(hw.cpu, isa="AVX-512",
                                                         peak_fp32=Peak(peak, "FLOP/s", "test", True),
                                                         peak_bf16=Peak(2 * peak, "FLOP/s", "test", True)))
    fp32_t = 2.0 * n**3 / (0.5 * peak)  # 50 % of the fp32 peak
    bf16_t = 2.0 * n**3 / (0.6 * 2 * peak)  # 60 % of the bf16 peak: 2.4x as fast, above the 2x bound
    fp32 = _sweep([pt(n, (fp32_t,) * 5, peak=peak)], "float32", "cpu", hw)
    bf16 = _sweep([pt(n, (bf16_t,) * 5, peak=2 * peak, dtype="bfloat16")], "bfloat16", "cpu", hw)
    monkeypatch.setattr(tensor_cores, "precision_sweeps", lambda: [fp32, bf16])
    c = tensor_cores.precision_facts().cpu_bf16
    assert c.n == n and c.ratio == pytest.approx(fp32_t / bf16_t) and c.speed is Speed.FASTER
    assert c.bound == 2.0 and c.unit is Bf16Unit.DOT_PRODUCTS
    assert c.fp32_pct_peak == pytest.approx(50) and c.bf16_pct_peak == pytest.approx(60) and c.beats_bound


def test_the_archived_gpu_bests_are_the_records_own_numbers() -> None:
    sweeps = tensor_cores.precision_sweeps()
    facts = tensor_cores.precision_facts()
    assert facts.gpus, "no archived GPU precision sweep in results/"
    for g in facts.gpus:
        s = next(s for s in sweeps if s.source == g.source and tensor_cores.LABELS[s.precision] == g.precision)
        best = tensor_cores.best_point(s.points, min_n=tensor_cores.BEST_FROM_N)
        assert (g.tflops, g.n, g.pct_peak) == (best.gflops / 1e3, best.shape[0], best.pct_peak_flops)


# --- every CPU's peak on one basis ------------------------------------------------------------------------------

def test_every_cpu_peak_is_cores_times_the_reported_clock_times_flop_per_cycle() -> None:
    bases = parallelism.cpu_peak_bases()
    assert any(b.source.archived for b in bases), "no archived host CPU with a peak in results/"
    for b in bases:
        cpu = b.source.hardware.cpu
        assert b.peak_gflops * 1e9 == pytest.approx(b.cores * b.clock_ghz * 1e9 * b.flop_per_cycle)
        assert b.clock_ghz == cpu.max_clock_ghz
        if b.source.archived:  # the H100/H200 hosts: a VM's masked Xeon, its cores vCPUs, at its reported clock
            assert b.core_word == "vCPU" and b.clock_ghz == cpu.reported_clock_ghz


# --- threads: the weakest step ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("speedups", "weak"), [
    ([1.0, 1.9, 3.66, 3.84, 8.45], (4, 8)),  # a plateau
    ([1.0, 1.9, 3.66, 2.5, 7.9], (4, 8)),  # slower
    ([1.0, 1.98], None),
    ([1.0, 2.09], None),
])
def test_the_weakest_thread_step(speedups, weak, monkeypatch: pytest.MonkeyPatch) -> None:
    pts = tuple(pt(64, (1.0 / s,) * 5) for s in speedups)
    pts = tuple(dataclasses.replace(p, threads=2**i) for i, p in enumerate(pts))
    fake = type("R", (), {"typed": type("T", (), {"points": pts})()})()
    monkeypatch.setattr(parallelism, "run", lambda fn: fake)
    monkeypatch.setattr(parallelism, "note", lambda *a: None)
    t = parallelism.threads()
    assert t.last.speedup == pytest.approx(speedups[-1])
    assert (t.weak_from, t.weak_to) == (weak if weak else (None, None))


def test_littles_law_rows_one_per_gpu_model() -> None:
    law = parallelism.littles_law()
    names = [e.name for e in law.examples]
    assert len(names) == len(set(names))
    for e in law.examples:
        assert e.bytes_in_flight == e.bandwidth * e.latency_s and e.resident_warps == e.sms * e.warps_per_sm


def test_speedup_is_taken_at_the_largest_common_size_within_one_origin() -> None:
    hw = detect()
    fp32 = _sweep([pt(64, (1.0,) * 5), pt(128, (8.0,) * 5), pt(256, (64.0,) * 5)], "float32", "cpu", hw)
    bf16 = _sweep([pt(64, (1.0,) * 5), pt(128, (2.0,) * 5)], "bfloat16", "cpu", hw)
    assert tensor_cores.speedup_over_fp32([fp32, bf16], bf16) == (128, 4.0)
    assert tensor_cores.speedup_over_fp32([bf16], bf16) is None  # no fp32 sweep from the same origin


# Fixtures: this build's GPU a fake H200 (live), its record archived, or results/ (see tests/fakes.py).
live_record, where = fakes.live_record, fakes.where


# --- Parallelism: one Little's-law row per GPU model; ticks that end on the largest size ---

def _models() -> list[str]:
    from gpucnn.pages.parallelism import littles_law

    return [re.sub(r" \(.*\)$", "", e.name) for e in littles_law().examples]


def test_littles_law_has_one_row_per_gpu_model(where) -> None:
    models = _models()
    assert models and len(models) == len(set(models)), models
    assert "H200" in models


def test_a_live_h100_replaces_the_datasheet_example(tmp_path: Path) -> None:
    from gpucnn.pages.parallelism import littles_law

    (tmp_path / "empty").mkdir()
    with h200_situation(fake_report(), tmp_path / "empty", tmp_path / "cache"):
        law = littles_law()
        models = _models()
    assert models == ["H100"] and not law.h100_example
