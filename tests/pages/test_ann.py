"""ANN (docs/ann.md): the facts its template prints, from fakes and from the archived records.

Verdicts, numbers and sources; never the page's wording, except the few contract sentences of the rendered page.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from gpucnn.bench import Measurement
from gpucnn.experiments.nn import MLP_WIDTHS, mlp_flops
from gpucnn.pages import ann
from gpucnn.pages.ann import (
    FLAT,
    PROPORTIONAL,
    AgainstFlops,
    BatchEnds,
    Gain,
    Regime,
    Split,
    device_busy_s,
    doubling_ratios,
    flat_until,
    host_stall,
    regime,
    weight_bytes,
)
from tests.pages.records import NEGATIVE_TIME, archive_build, assert_escaped, hostile_sources, m, render


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    with archive_build(tmp_path_factory.mktemp("ann"), ("ann",)):
        text, lines = render("ann.md")
        yield SimpleNamespace(text=text, lines=lines)


def step(batch: int, seconds: float) -> Measurement:
    return Measurement(name=f"b{batch}", device="cuda", dtype="float32", shape=(batch, *MLP_WIDTHS), threads=1,
                       times_s=(seconds,) * 5, number_per_run=1, flops=1.0)


# --- the regime diagnostic (moved from test_pages_regimes) --------------------------------------------------

def test_weight_bytes_counts_weights_and_biases() -> None:
    assert weight_bytes((3, 4, 2)) == 4 * (3 * 4 + 4 + 4 * 2 + 2)


def test_doubling_ratios_pair_each_batch_with_its_double() -> None:
    pts = [step(1, 1.0), step(2, 1.0), step(4, 2.0), step(16, 8.0)]
    assert doubling_ratios(pts) == [(1, 1.0), (2, 2.0)]  # 4 -> 8 was not measured


def test_flat_until_finds_where_the_time_starts_to_grow() -> None:
    assert flat_until([step(1, 1.0), step(2, 1.1), step(4, 1.4), step(8, 2.0)]) == 4
    assert flat_until([step(1, 1.0), step(2, 1.0)]) == 2
    assert flat_until([]) is None
    # one slow point, then back under 1.5x to the end: flat over the whole sweep
    assert flat_until([step(1, 1.0), step(8, 1.2), step(16, 1.6), step(1024, 1.4)]) == 1024


def test_regime_is_chosen_from_the_ratio_and_the_share_of_peak() -> None:
    assert regime(1.0, None) is Regime.OVERHEAD
    assert regime(FLAT, 90.0) is Regime.BETWEEN
    assert regime(PROPORTIONAL, 80.0) is Regime.COMPUTE
    assert regime(2.0, 5.0) is Regime.BELOW_PEAK and regime(2.0, None) is Regime.BELOW_PEAK
    assert regime(2.6, 90.0) is Regime.SUPERLINEAR  # more than twice the time for twice the work: no regime


def op(name: str, cpu_s: float, dev_s: float | None, dev_pct: float | None) -> dict:
    return {"op": name, "calls": 1.0, "self_cpu_s": cpu_s, "self_cpu_pct": 10.0, "self_device_s": dev_s,
            "self_device_pct": dev_pct}


def test_device_busy_time_is_an_ops_kernel_time_over_its_share() -> None:
    rows = [op("aten::mm", 1e-4, 60e-6, 40.0), op("aten::addmm", 1e-4, 30e-6, 20.0)]
    assert abs(device_busy_s(rows) - 150e-6) < 1e-12
    assert device_busy_s([op("aten::mm", 1e-4, None, None)]) is None
    assert device_busy_s([op("aten::mm", 1e-4, 60e-6, 40.0), op("ampere_sgemm", 0.0, 60e-6, 40.0)]) is None
    assert device_busy_s([op("Activity Buffer Request", 6e-4, 4e-6, 100.0), *rows]) == device_busy_s(rows)


def test_a_flat_but_noisy_step_gives_its_range(monkeypatch) -> None:
    """The H100 step moved between 489 and 988 µs over the sweep: the fact is the range, not "about the same"."""
    times = [489e-6, 612e-6, 661e-6, 988e-6, 694e-6]
    pts = tuple(step(4**i, t) for i, t in enumerate(times))
    src = SimpleNamespace(label="GPU", is_cpu=True, hardware=SimpleNamespace(accelerator=None),
                          result=SimpleNamespace(typed=SimpleNamespace(sweep=SimpleNamespace(points=pts))))
    monkeypatch.setattr(ann, "sweep_sources", lambda: [src])
    monkeypatch.setattr(ann, "note", lambda cited: None)
    (o,) = ann.overheads()
    assert (o.low_s, o.high_s) == (min(times), max(times)) and o.whole_sweep and o.weight_read_s is None


# --- throughput against batch: a gain only where the two ends are told apart -------------------------------

@pytest.mark.parametrize(("first", "last", "verdict"), [
    (1e-3, 1e-3, Gain.ROSE),  # 1024x the work in the same time
    (1e-3, 2.0, Gain.FELL),  # a disturbed run: 0.0005x the rate, beyond the noise
    (1e-3, 1.02, Gain.UNRESOLVED),  # within SAME_SPEED
])
def test_the_gain_is_a_verdict_not_just_a_ratio(first, last, verdict) -> None:
    e = BatchEnds(SimpleNamespace(), m(first, first / 100, flops=1e6), m(last, last / 100, flops=1024e6))
    assert e.verdict is verdict and e.gain == pytest.approx(1024 * first / last)


def test_no_gain_below_one_is_printed_as_a_gain(monkeypatch) -> None:
    src = SimpleNamespace(cell=lambda text=None: "Dev")
    ends = [BatchEnds(src, m(1e-3, 1e-5, flops=1e6, shape=(1,)), m(2.0, 0.02, flops=2e6, shape=(2,)))]
    monkeypatch.setattr(ann, "batch_ends", lambda: ends)
    table = ann.batch_ends_table()
    assert ends[0].verdict is Gain.FELL and f"{ann.fmt(ends[0].gain)}x" not in table


# --- forward against backward ------------------------------------------------------------------------------

def test_the_flop_predictions_come_from_mlp_flops() -> None:
    f = mlp_flops(1)
    backward, whole = ann.flop_ratios()
    assert backward == f["backward"] / f["forward"] and whole == f["train"] / f["forward"]
    assert backward < 2 and whole < 3  # the first layer's input needs no gradient


@pytest.mark.parametrize(("factor", "against"), [(1.3, AgainstFlops.ABOVE), (0.7, AgainstFlops.BELOW),
                                                 (1.0, AgainstFlops.ABOUT)])
def test_the_backward_is_set_against_the_flop_count(factor, against) -> None:
    predicted = ann.flop_ratios()[0]
    sp = Split(SimpleNamespace(), 64, m(1e-3, 1e-6), m(1e-3 * (1 + predicted * factor), 1e-6), predicted)
    assert sp.resolved and sp.against is against and sp.ratio == pytest.approx(predicted * factor)


def test_a_backward_within_the_noise_is_no_time(monkeypatch) -> None:
    """Quick-profile data on a busy machine: forward + backward below the forward alone. No backward time, no
    ratio, no launch explanation; the table prints no negative time."""
    sp = Split(SimpleNamespace(cell=lambda text=None: "Dev"), 32, m(68e-3, 5e-3), m(57e-3, 22e-3), 1.5)
    assert sp.backward_s < 0 and not sp.resolved and sp.against is AgainstFlops.UNRESOLVED
    monkeypatch.setattr(ann, "splits", lambda: [sp])
    monkeypatch.setattr(ann, "host_stall", lambda src: None)
    assert not NEGATIVE_TIME.search(ann.split_table())
    assert ann.backward_excess() == []


@pytest.mark.parametrize(("factor", "excess"), [(1.2, False), (2.0, True)])
def test_the_launch_explanation_needs_a_backward_well_above_the_prediction(monkeypatch, factor, excess) -> None:
    predicted = ann.flop_ratios()[0]
    sp = Split(SimpleNamespace(is_cpu=True), 64, m(1e-3), m(1e-3 * (1 + predicted * factor)), predicted)
    monkeypatch.setattr(ann, "splits", lambda: [sp])
    assert bool(ann.backward_excess()) is (factor > ann.BACKWARD_EXCESS)


def _row(op: str, calls: float, host_pct: float, device_pct: float | None) -> SimpleNamespace:
    return SimpleNamespace(op=op, calls=calls, self_cpu_s=host_pct * 1e-6, self_cpu_pct=host_pct,
                           self_device_s=None if device_pct is None else device_pct * 1e-7, self_device_pct=device_pct)


@pytest.mark.parametrize(("rows", "named"), [
    ([_row("aten::addmm", 3, 8.4, 41.8), _row("aten::fill_", 2, 37.8, 1.2)], "aten::fill_"),
    ([_row("aten::addmm", 3, 8.4, 41.8), _row("Activity Buffer Request", 0, 27.0, 2.6)], None),  # the profiler's
    ([_row("aten::addmm", 3, 60.0, 41.8)], None),  # CPU-heavy, but its kernels ran as long: no stall
    ([_row("aten::fill_", 2, 20.0, 1.2)], None),  # under the share that is named
])
@pytest.mark.parametrize("timed_s", [50e-6, 500e-6])
def test_a_cpu_stall_in_the_gpu_profile_is_weighed_against_the_timed_step(rows, named, timed_s) -> None:
    """Moved from test_pages_review5_h100: the H100 record's aten::fill_ stall, most likely the profiler's."""
    typed = SimpleNamespace(profile=rows, train=SimpleNamespace(median=timed_s))
    stall = host_stall(SimpleNamespace(is_cpu=False, result=SimpleNamespace(typed=typed)))
    assert (stall.op if stall else None) == named
    if stall:
        profiled = rows[-1].self_cpu_s / (rows[-1].self_cpu_pct / 100)
        assert stall.profiled_s == pytest.approx(profiled) and stall.profiling_cost is (profiled > timed_s)
    assert host_stall(SimpleNamespace(is_cpu=True, result=SimpleNamespace(typed=typed))) is None


# --- sources and tables --------------------------------------------------------------------------------------

def test_no_chart_sets_this_builds_cpu_beside_an_archived_gpu(archive) -> None:
    for found in (ann.sweep_sources(), ann.split_sources()):
        groups = ann.by_build(found)
        assert len(groups) == 2, "no archived record in results/: the test would prove nothing"
        for g in groups:
            assert len({s.archived for s in g}) == 1
        for i, s in enumerate(groups[1]):
            if not s.is_cpu:  # each archived GPU is followed by its own host CPU
                assert groups[1][i + 1].is_cpu and groups[1][i + 1].origin == s.origin
    html = ann.batch_charts() + ann.split_chart()
    assert html.count("<svg") == 4


def test_the_regime_table_fits_and_the_full_one_is_collapsed(archive) -> None:
    short, full = ann.regime_table(), ann.regime_table(full=True)
    assert short.strip().splitlines()[0].count("|") - 1 == 5
    assert full.strip().splitlines()[0].count("|") - 1 == 8
    assert "regime_table(full=True)" in archive.text or "| Doubling the batch, first |" in archive.text


def test_a_records_strings_are_escaped_in_every_table(monkeypatch) -> None:
    from gpucnn.experiments.nn import mlp_batch_sweep, mlp_time_split

    sweep, split = hostile_sources(mlp_batch_sweep.__name__), hostile_sources(mlp_time_split.__name__)
    assert sweep and split
    monkeypatch.setattr(ann, "note", lambda cited: None)
    monkeypatch.setattr(ann, "sweep_sources", lambda: sweep)
    monkeypatch.setattr(ann, "split_sources", lambda: split)
    for html in (ann.batch_table(), ann.batch_ends_table(), ann.regime_table(), ann.regime_table(full=True),
                 ann.split_table(), ann.profile_table()):
        assert_escaped(html)


# --- the rendered page -----------------------------------------------------------------------------------------

def test_the_rendered_page_names_each_figures_source_and_prints_no_impossible_value(archive) -> None:
    text, lines = archive.text, archive.lines
    assert text.count('!!! note "No GPU in this build"') == 1
    assert not NEGATIVE_TIME.search(text)
    for e in ann.batch_ends():  # a gain under 1 is never printed as a gain
        if e.verdict is not Gain.ROSE:
            assert not re.search(rf"{re.escape(ann.fmt(e.gain))}x the single sample", text)
    shown = "\n".join(lines.values())
    assert "recorded on" in shown and "this build" in shown
