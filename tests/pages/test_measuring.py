"""Measuring (docs/measuring.md): the facts its template prints, from fakes and from the archived records.

Verdicts, numbers and sources; never the page's wording, except the few contract sentences of the rendered page.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpucnn.figures import CallCost, HostOrder, Pace, PartsVerdict, article_parts, call_cost, host_order
from gpucnn.pages import measuring
from gpucnn.pages.measuring import CLOSE, RoundTrip, Run, Separate, TwoKinds, _furthest_apart
from tests.pages.records import NEGATIVE_TIME, archive_build, assert_escaped, hostile_sources, m, render


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    """A CPU-only build whose archive is results/: the facts, and the page rendered once."""
    with archive_build(tmp_path_factory.mktemp("measuring"), ("measuring",)):
        text, lines = render("measuring.md")
        yield SimpleNamespace(text=text, lines=lines)


# --- the two kinds of time: a wait is a time only beyond the noise -------------------------------------------

@pytest.mark.parametrize(("single", "stream", "waits"), [
    (15e-6, 10e-6, True), (10.1e-6, 10e-6, False), (9e-6, 10e-6, False)])
def test_a_single_calls_extra_wait_is_a_time_only_beyond_both_iqrs(single, stream, waits) -> None:
    k = TwoKinds(SimpleNamespace(), m(single, 0.2e-6), m(stream, 0.2e-6))
    assert k.waits is waits
    assert k.extra_s == pytest.approx(single - stream) and k.ratio == pytest.approx(single / stream)


def test_the_two_kinds_table_never_prints_a_negative_time(monkeypatch) -> None:
    src = SimpleNamespace(cell=lambda text=None: "Dev")
    monkeypatch.setattr(measuring, "two_kinds", lambda: [TwoKinds(src, m(9e-6, 0.1e-6), m(10e-6, 0.1e-6))])
    assert not NEGATIVE_TIME.search(measuring.two_kinds_table())


@pytest.mark.parametrize(("ratios", "close"), [((1.02, 1.05), True), ((1.02, 2.2), False)])
def test_the_cpus_are_called_close_from_their_own_ratios(monkeypatch, ratios, close) -> None:
    cpu, gpu = SimpleNamespace(is_cpu=True), SimpleNamespace(is_cpu=False)
    kinds = [TwoKinds(cpu, m(r * 1e-6), m(1e-6)) for r in ratios] + [TwoKinds(gpu, m(30e-6), m(1e-6))]
    monkeypatch.setattr(measuring, "two_kinds", lambda: kinds)
    k = measuring.cpu_kinds()
    assert (k.low, k.high) == pytest.approx(ratios) and k.close is close and CLOSE > 1


@pytest.mark.parametrize(("gpu_extra", "cpu_extra", "shows", "trip"), [
    (5e-6, 1e-6, True, 4e-6), (5e-6, -1e-6, True, 5e-6), (1e-6, 2e-6, False, -1e-6),
    (-1e-6, -2e-6, False, -1e-6)])  # both negative: no round trip, although the GPU's is the larger
def test_a_round_trip_is_shown_only_as_a_positive_time(gpu_extra, cpu_extra, shows, trip) -> None:
    r = RoundTrip(SimpleNamespace(), gpu_extra, cpu_extra)
    assert r.shows is shows and r.round_trip_s == pytest.approx(trip)


# --- the article's 2000x2000: its parts and the rest (moved from test_pages_review3_measuring) -------------

@pytest.mark.parametrize(("art", "rnd", "mm", "spread", "verdict"), [
    (0.212, 0.027, 0.101, 0.002, "rest"),  # a rest well beyond the spreads
    (0.130, 0.027, 0.101, 0.004, "within"),  # a rest inside them
    (0.100, 0.027, 0.101, 0.002, "exceed"),  # the parts add up to more than the whole
])
def test_the_parts_and_the_rest_add_up_to_the_whole(art, rnd, mm, spread, verdict) -> None:
    parts = article_parts({"article_2000": m(art, spread), "randn_2000": m(rnd, spread),
                           "correct_2000": m(mm, spread), "one_thread_2000": m(2 * mm)})
    assert parts.randn.median + parts.matmul.median + parts.rest == pytest.approx(parts.whole.median)
    assert parts.verdict is PartsVerdict(verdict)
    a = measuring.Article(SimpleNamespace(), parts, None, 8, 1.0)
    assert a.parts_exceed is (verdict == "exceed") and a.rest_beyond_spread is (verdict == "rest")
    assert a.randn_pct == pytest.approx(100 * rnd / art)


def test_the_decomposition_shows_the_rest_as_a_part_and_never_a_negative_one(archive) -> None:
    html = measuring.decomposition_chart()
    a = measuring.this_cpu()
    assert not a.source.archived and a.source.is_cpu  # this build's CPU only
    row = re.search(r"<td[^>]*>rest: [^<]*</td><td[^>]*>([^<]*)</td>", html)
    assert row and not NEGATIVE_TIME.search(row.group(1))
    assert (row.group(1) == measuring.fmt_time(a.parts.rest)) is (a.parts.rest > 0)


# --- the same op measured separately ------------------------------------------------------------------------

def test_the_furthest_apart_pair_is_found_whatever_the_order() -> None:
    wide, a, b = m(1.0e-6, 0.5e-6), m(1.0e-6, 0.01e-6), m(2.0e-6, 0.01e-6)
    assert _furthest_apart([b, wide, a]) == (a, b)


@pytest.mark.parametrize(("medians", "apart"), [((1.0e-6, 1.5e-6, 1.2e-6), True), ((1.0e-6, 1.01e-6, 1.02e-6), False)])
def test_separate_measurements_are_apart_only_where_their_iqrs_are(medians, apart) -> None:
    runs = [Run("correct", SimpleNamespace(), m(x, 0.05e-6)) for x in medians]
    fast, slow = _furthest_apart([r.measurement for r in runs])
    by = {id(r.measurement): r for r in runs}
    s = Separate(SimpleNamespace(), tuple(runs), by[id(fast)], by[id(slow)])
    assert s.apart is apart
    assert (s.low_s, s.high_s) == (min(medians), max(medians)) and s.spread == pytest.approx(max(medians) / min(medians))


def test_every_device_shown_gets_its_three_measurements(archive) -> None:
    found = measuring.article_sources()
    assert len(found) >= 3  # this build's CPU, and each archived GPU with its host CPU
    for s in found:
        runs = measuring.same_op_runs(s)
        assert len(runs) == 3, s.label  # small-op table, this page's correct method, the sweep's n = 2
        assert {r.source.origin for r in runs} == {s.origin}  # never another record's measurement
    assert len(measuring.separate()) == len(found)


# --- sources: an archived GPU beside its own host CPU, never this build's ---------------------------------

def test_each_archived_gpu_is_followed_by_its_own_host_cpu(archive) -> None:
    found = measuring.article_sources()
    gpus = [i for i, s in enumerate(found) if not s.is_cpu]
    assert gpus, "no archived GPU in results/: the test would prove nothing"
    for i in gpus:
        host = found[i + 1]
        assert host.is_cpu and host.archived and host.origin == found[i].origin


def test_the_call_costs_pair_each_gpu_with_its_own_host(archive) -> None:
    found = measuring.call_costs()
    assert found
    for p, c in found:
        assert p.gpu.origin == p.cpu.origin and p.cpu.is_cpu and p.gpu.archived
        assert c.host_add is p.cpu.result.typed.add_stream and c.gpu_add is p.gpu.result.typed.add_stream
    pace = measuring.pacing()
    assert {s.origin for s in pace.host + pace.gpu + pace.unknown} == {p.gpu.origin for p, _ in found}
    for c in measuring.same_chip():  # only one chip in two machines, each GPU with its own host
        assert measuring._chip(c.a.gpu) == measuring._chip(c.b.gpu)
        assert c.a.gpu.origin == c.a.cpu.origin and c.b.gpu.origin == c.b.cpu.origin


def _rows(*per_call: tuple[str, float, float]) -> list[dict]:
    """Stored profile rows: (op, calls per step, device time per call)."""
    return [{"op": op, "calls": calls, "self_cpu_s": 1e-5, "self_cpu_pct": 1.0, "self_device_s": calls * t,
             "self_device_pct": 10.0} for op, calls, t in per_call]


@pytest.mark.parametrize(("kernel", "pace"), [(1e-6, "host"), (4e-6, "gpu"), (None, "unknown")])
def test_the_pace_of_a_tiny_call_from_fake_data(kernel, pace) -> None:
    rows = None if kernel is None else _rows(("aten::mm", 5, 13e-6), ("aten::fill_", 2, kernel),
                                             ("Activity Buffer Request", 0.4, 1e-7))
    c = call_cost({"add_stream": m(6.4e-6), "matmul2x2_stream": m(11.6e-6)}, {"add_stream": m(1.3e-6)}, rows)
    assert c.kernel == (None if kernel is None else pytest.approx(kernel))  # the profiler's own event is no op
    assert c.cuda_path == pytest.approx(5.1e-6) and c.matmul_extra == pytest.approx(5.2e-6)
    assert c.pace is Pace(pace)


@pytest.mark.parametrize(("host_b", "gpu_b", "order"), [
    (2.7e-6, 10.4e-6, "follows"), (2.7e-6, 6.4e-6, "not following"), (1.3e-6, 10.4e-6, "same host")])
def test_two_machines_with_one_chip_from_fake_data(host_b, gpu_b, order) -> None:
    a = CallCost(m(1.3e-6, 0.02e-6), m(6.4e-6, 0.1e-6), m(11.6e-6), 1e-6)
    b = CallCost(m(host_b, 0.02e-6), m(gpu_b, 0.1e-6), m(15e-6), 1e-6)
    assert host_order(a, m(489e-6, 5e-6), b, m(800e-6, 5e-6)) is HostOrder(order)
    assert host_order(b, m(800e-6, 5e-6), a, m(489e-6, 5e-6)) is HostOrder(order)  # either order


# --- tables: they fit, and a record's strings are escaped --------------------------------------------------

def _columns(md: str) -> int:
    return md.strip().splitlines()[0].count("|") - 1


def test_the_comparison_table_fits_and_the_full_one_is_collapsed(archive) -> None:
    assert _columns(measuring.comparison_table()) <= 5
    assert _columns(measuring.comparison_table(full=True)) == 8
    assert "comparison_table(full=True)" in (Path(measuring.__file__).parents[2] / "docs/measuring.md").read_text()


def test_a_records_strings_are_escaped_in_every_table(monkeypatch) -> None:
    from gpucnn.experiments.matmul import article_matmul

    found = hostile_sources(article_matmul.__name__)
    assert found and any(not s.is_cpu for s in found)
    monkeypatch.setattr(measuring, "note", lambda cited: None)
    monkeypatch.setattr(measuring, "article_sources", lambda: found)
    for html in (measuring.comparison_table(), measuring.comparison_table(full=True)):
        assert_escaped(html)


# --- the rendered page: the contract sentences -------------------------------------------------------------

def test_the_rendered_page_names_each_figures_source_and_prints_no_negative_time(archive) -> None:
    text, lines = archive.text, archive.lines
    assert text.count('!!! note "No GPU in this build"') == 1
    assert not NEGATIVE_TIME.search(text)
    shown = "\n".join(lines.values())
    assert "measured in this build" in shown or "this build" in shown
    assert "recorded on" in shown  # the archived GPUs and their host CPUs
    assert "{{" not in text and "{%" not in text
