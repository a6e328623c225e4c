"""Review A (round 3) on Measuring and ANN, each sentence checked against the data it was chosen from.

* H2: one 2x2 matmul measured separately by three experiments: the page says, per device, whether the
  measurements differ by more than their IQRs, and draws the lesson only where they do.
* H2 (related): "on a CPU the two kinds are close" only where the data says so; a GPU's extra wait is
  stated only where its single call adds more than its host CPU's.
* M7: the "parts need not add up" caveat wherever the input and the matmul exceed the article's whole, on
  every device shown, CPU included, and nowhere else.
* L5: the L2 caveat names how the launch cost was removed (CUDA-graph replay or many copies per call).
* H3: the ANN page's backward/forward and step/forward predictions come from ``mlp_flops``, and the
  comparison says above or below from the measured ratio.

No measured value is hard-coded: fake measurements are built with the medians each branch needs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gpucnn.measurement import Measurement
from tests.test_fake_accelerator import cpu_only, fake_build

ROOT = Path(__file__).resolve().parent.parent


def _m(median: float, spread: float = 0.0) -> Measurement:
    """A back-to-back measurement with this median and IQR ``median - spread`` to ``median + spread``."""
    times = (median - 2 * spread, median - spread, median, median + spread, median + 2 * spread)
    return Measurement(name="m", device="cpu", dtype="float32", shape=(2, 2, 2), threads=1, times_s=times,
                       number_per_run=100)


def _src(label: str, data: dict, cpu: bool = True) -> SimpleNamespace:
    return SimpleNamespace(label=label, is_cpu=cpu, archived=False, result=SimpleNamespace(data=data),
                           cell=lambda text=None: label)


@pytest.fixture
def results_archive(tmp_path: Path):
    """A CPU-only build whose archive is the project's own results/."""
    with fake_build(cpu_only(), ROOT / "results", tmp_path / "cache", ("measuring", "ann")):
        yield


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch):
    """Measuring's helpers with no section bookkeeping and no GPU note: fake sources are not Sources."""
    from gpucnn.pages import measuring

    monkeypatch.setattr(measuring, "note", lambda cited: None)
    monkeypatch.setattr(measuring, "caption", lambda text, cited=None: text + "\n")
    monkeypatch.setattr(measuring, "no_gpu_note", lambda *a, **k: "")
    return measuring


# --- H2: the same op, measured separately ---

@pytest.mark.parametrize(("medians", "apart"), [((1.0e-6, 1.5e-6, 1.2e-6), True),
                                                ((1.0e-6, 1.01e-6, 1.02e-6), False)])
def test_separate_measurements_are_called_apart_only_where_their_iqrs_are(quiet, monkeypatch, medians, apart):
    measuring = quiet
    spread = 0.05e-6
    src = _src("Dev", {})
    runs = [(f"where {i}", src, _m(med, spread)) for i, med in enumerate(medians)]
    monkeypatch.setattr(measuring, "article_sources", lambda: [src])
    monkeypatch.setattr(measuring, "same_op_runs", lambda s: runs)
    text = measuring.separate_runs()
    assert text.count("| Dev | where ") == len(medians)
    item = next(line for line in text.splitlines() if line.startswith("- On Dev,"))
    assert ("differ by more than their spreads" in item) == apart, item
    assert ("agree within their spreads" in item) == (not apart), item
    assert ("separate measurements landed up to" in text) == apart
    assert ("Here the separate measurements agreed" in text) == (not apart)
    from gpucnn.render import fmt, fmt_time

    assert fmt_time(min(medians)) in item and fmt_time(max(medians)) in item
    if apart:
        assert f"**{fmt(max(medians) / min(medians), 2)}x**" in item


def test_the_furthest_apart_pair_is_found_whatever_the_order() -> None:
    from gpucnn.pages.measuring import _furthest_apart

    wide, a, b = _m(1.0e-6, 0.5e-6), _m(1.0e-6, 0.01e-6), _m(2.0e-6, 0.01e-6)
    fast, slow = _furthest_apart([b, wide, a])
    assert fast is a and slow is b


def test_every_device_shown_gets_its_three_measurements_and_a_verdict_from_them(results_archive) -> None:
    from gpucnn.pages.measuring import _furthest_apart, article_sources, same_op_runs, separate_runs

    text = separate_runs()
    found = article_sources()
    assert len(found) >= 3  # this build's CPU, and each archived GPU with its host CPU
    any_apart = False
    for s in found:
        runs = same_op_runs(s)
        assert len(runs) == 3, s.label  # small-op table, this page's correct method, the sweep's n = 2
        fast, slow = _furthest_apart([m for _, _, m in runs])
        item = next(line for line in text.splitlines() if line.startswith(f"- On {s.label},"))
        apart = slow.p25 > fast.p75
        any_apart |= apart
        assert ("differ by more than their spreads" in item) == apart, item
    assert ("separate measurements landed up to" in text) == any_apart


# --- H2 (related): the two kinds of time ---

def _latency(single: float, stream: float) -> dict[str, Measurement]:
    return {"matmul2x2_single": _m(single), "matmul2x2_stream": _m(stream)}


@pytest.mark.parametrize(("cpu_single", "close"), [(1.05e-6, True), (2.2e-6, False)])
@pytest.mark.parametrize(("gpu_single", "waits"), [(15e-6, True), (10e-6, False)])
def test_the_two_kinds_are_called_close_and_the_wait_named_from_the_data(
        quiet, monkeypatch, cpu_single, close, gpu_single, waits) -> None:
    measuring = quiet
    cpu = _src("Host", _latency(cpu_single, 1.0e-6))
    gpu = _src("GPU", _latency(gpu_single, 10e-6), cpu=False)
    monkeypatch.setattr(measuring, "sources", lambda fn, **k: [gpu, cpu])
    monkeypatch.setattr(measuring, "pairs", lambda fn, **k: [SimpleNamespace(gpu=gpu, cpu=cpu)])
    text = measuring.two_kinds()
    assert text.count("\n- ") == 2
    assert ("On a CPU the two are close" in text) == close
    assert ("not interchangeable" in text) == (not close)
    assert ("is the round trip to the GPU" in text) == waits
    assert ("did not show" in text) == (not waits)


def test_the_two_kinds_on_the_archive(results_archive) -> None:
    from gpucnn.experiments.latency import small_op_latency
    from gpucnn.pages.measuring import CLOSE, two_kinds
    from gpucnn.sources import pairs, sources

    text = two_kinds()
    found = sources(small_op_latency, hosts=True)
    ratios = [s.result.data["matmul2x2_single"].median / s.result.data["matmul2x2_stream"].median
              for s in found if s.is_cpu]
    assert ("the two are close" in text) == (max(ratios) < CLOSE)
    for p in pairs(small_op_latency):
        g, c = p.gpu.result.data, p.cpu.result.data
        more = (g["matmul2x2_single"].median - g["matmul2x2_stream"].median
                > c["matmul2x2_single"].median - c["matmul2x2_stream"].median)
        # This GPU's sentences: from its label up to the next device's.
        sentence = text.split(f"On {p.gpu.label}", 1)[1].split("\n")[0].split(" On ")[0]
        assert ("is the round trip to the GPU" in sentence) == more, sentence


# --- M7: parts and whole, on every device shown ---

@pytest.mark.parametrize(("rnd", "mm", "art"), [(0.1, 0.8, 1.0), (0.1, 0.9, 1.0), (0.2, 0.9, 1.0), (1.1, 0.01, 1.0)])
@pytest.mark.parametrize("gpu", [True, False])
def test_the_parts_caveat_follows_the_data(rnd: float, mm: float, art: float, gpu: bool) -> None:
    from gpucnn.pages.measuring import _parts_caveat

    text = _parts_caveat(rnd, mm, art, gpu)
    assert bool(text) == (rnd + mm > art)
    if text:
        assert "need not add up" in text and "measured separately" in text
        assert ("the two overlap instead of adding up" in text) == gpu
        # markdown-exec prefixes a bare "#anchor" in a block's output with the block's id: name the page
        assert ("](measuring.md#separate-runs)" in text) == (not gpu)


@pytest.mark.parametrize(("rnd", "mm", "art"), [(0.01, 0.17, 0.2), (0.02, 0.2, 0.2)])
def test_this_builds_cpu_paragraph_carries_the_caveat_only_where_the_parts_exceed_the_whole(
        quiet, monkeypatch, rnd, mm, art) -> None:
    measuring = quiet
    data = {"article_2000": _m(art), "randn_2000": _m(rnd), "one_thread_2000": _m(mm * 1.5),
            "correct_2000": _m(mm)}
    monkeypatch.setattr(measuring, "run", lambda fn, **k: SimpleNamespace(data=data))
    monkeypatch.setattr(measuring, "pairs", lambda fn, **k: [])
    text = measuring.findings()
    assert ("need not add up" in text) == (rnd + mm > art)


def test_every_archived_device_shown_carries_the_caveat_where_its_parts_exceed_its_whole(results_archive) -> None:
    from gpucnn.experiments.matmul import article_matmul
    from gpucnn.pages.measuring import findings
    from gpucnn.sources import pairs

    text = findings()
    checked = 0
    for p in pairs(article_matmul):
        paragraph = next(line for line in text.splitlines() if line.startswith(f"On {p.gpu.label},"))
        for side, phrase in ((p.gpu, "the two overlap instead of adding up"), (p.cpu, "#separate-runs")):
            d = side.result.data
            exceeds = d["randn_2000"].median + d["correct_2000"].median > d["article_2000"].median
            assert (phrase in paragraph) == exceeds, (side.label, paragraph)
            # the GPU is always described; its host CPU only where the caveat is needed
            assert (f"On {side.label}, the article's method gives" in paragraph) == (side is p.gpu or exceeds)
            checked += 1
    assert checked


# --- L5: how the launch cost was removed ---

@pytest.mark.parametrize("graphs", [True, False])
def test_the_l2_caveat_names_how_the_launch_cost_was_removed(graphs: bool) -> None:
    from gpucnn.pages.measuring import l2_caveat

    mib = 1024**2
    pts = [Measurement(name="copy", device="cuda", dtype="float32", shape=(b,), threads=1, times_s=(2 * b / 8e12,) * 5,
                       number_per_run=1, bytes_moved=2.0 * b) for b in (mib, 16 * mib)]
    text = l2_caveat("X", pts, peak=3e12, l2_bytes=64 * mib, graphs=graphs)
    assert ("host's launch cost removed (CUDA-graph replay)" in text) == graphs
    assert ("shared by many copies per call" in text) == (not graphs)


# --- H3: the ANN page's FLOP predictions ---

def test_the_flop_predictions_come_from_mlp_flops() -> None:
    from gpucnn.experiments.nn import mlp_flops
    from gpucnn.pages import ann
    from gpucnn.render import fmt

    f = mlp_flops(1)
    backward, step = ann.flop_ratios()
    assert backward == f["backward"] / f["forward"] and step == f["train"] / f["forward"]
    assert backward < 2 and step < 3  # the first layer's input needs no gradient
    note = ann.flop_note()
    assert f"{fmt(backward)}x the forward" in note and f"a step {fmt(step)}x" in note
    assert "just under" not in note


@pytest.mark.parametrize(("factor", "word"), [(1.3, "above"), (0.7, "below"), (1.0, "about")])
def test_the_split_sentence_says_above_or_below_the_prediction(monkeypatch, factor: float, word: str) -> None:
    from gpucnn.pages import ann

    predicted = ann.flop_ratios()[0]
    fwd = 1e-3
    data = {"forward": _m(fwd), "train": _m(fwd * (1 + predicted * factor)), "batch": 64}
    monkeypatch.setattr(ann, "split_sources", lambda: [_src("Dev", data)])
    text = ann.split_findings()
    from gpucnn.render import fmt

    assert f"{word} the {fmt(predicted)}x the FLOP count predicts" in text, text
    assert "just under" not in text


@pytest.mark.parametrize("factor", [1.2, 2.0])
@pytest.mark.parametrize("cpu", [True, False])
def test_the_launch_explanation_is_given_only_well_above_the_prediction(monkeypatch, factor: float, cpu: bool) -> None:
    from gpucnn.pages import ann

    predicted = ann.flop_ratios()[0]
    fwd = 1e-3
    data = {"forward": _m(fwd), "train": _m(fwd * (1 + predicted * factor)), "batch": 64}
    monkeypatch.setattr(ann, "sweep_sources", lambda: [])
    monkeypatch.setattr(ann, "split_sources", lambda: [_src("Dev", data, cpu=cpu)])
    text = ann.regime_findings()
    from gpucnn.render import fmt

    # A CPU launches no kernels: its overhead is per op call.
    explained = "runs more, smaller ops" if cpu else "launches more, smaller kernels"
    assert (explained in text) == (factor > ann.BACKWARD_EXCESS)
    assert "kernels" not in text if cpu else "ops (" not in text
    if text:
        assert f"well above the {fmt(predicted)}x its FLOPs predict" in text


# --- a live GPU beside the archived ones ---

def test_a_live_gpu_gets_the_same_sentences(tmp_path: Path) -> None:
    """A fake live H100 (the CPU underneath): its rows and sentences, beside the archived H200's."""
    from tests.test_fake_accelerator import fake_report

    with fake_build(fake_report(), ROOT / "results", tmp_path / "cache", ("measuring",)):
        from gpucnn.pages import measuring

        label = "H100 (this build)"
        runs = measuring.separate_runs()
        assert runs.count(f">{label}</span> |") == 3 and f"- On {label}," in runs
        assert "H100 (archived" not in runs
        kinds = measuring.two_kinds()
        assert f"- {label}: **" in kinds and (f"On {label}, waiting for each result" in kinds
                                              or f"On {label} a single call" in kinds)
        assert f"On {label}, the article's method gives" in measuring.findings()


# --- the article's 212 ms: its parts and the rest add up to the whole ---------------------------------------

@pytest.mark.parametrize(("art", "rnd", "mm", "spread", "verdict"), [
    (0.212, 0.027, 0.101, 0.002, "rest"),  # a rest well beyond the spreads
    (0.130, 0.027, 0.101, 0.004, "within"),  # a rest inside them
    (0.100, 0.027, 0.101, 0.002, "exceed"),  # the parts add up to more than the whole
])
def test_the_parts_and_the_rest_add_up_to_the_whole(art, rnd, mm, spread, verdict) -> None:
    from gpucnn.figures import PartsVerdict, article_parts

    parts = article_parts({"article_2000": _m(art, spread), "randn_2000": _m(rnd, spread),
                           "correct_2000": _m(mm, spread), "one_thread_2000": _m(2 * mm)})
    assert parts.randn.median + parts.matmul.median + parts.rest == pytest.approx(parts.whole.median)
    assert parts.verdict is PartsVerdict(verdict)


def test_the_rest_is_named_where_the_whole_is_more_than_its_parts() -> None:
    from gpucnn.figures import article_parts
    from gpucnn.pages.measuring import _rest_sentence
    from gpucnn.render import fmt_time

    def sentence(art: float, spread: float) -> str:
        return _rest_sentence(article_parts({"article_2000": _m(art, spread), "randn_2000": _m(0.027, spread),
                                             "correct_2000": _m(0.101, spread)}))

    assert sentence(0.100, 0.001) == ""  # the parts exceed: _parts_caveat speaks
    beyond, within = sentence(0.212, 0.002), sentence(0.130, 0.004)
    for text, rest in ((beyond, 0.212 - 0.128), (within, 0.130 - 0.128)):
        assert f"**{fmt_time(rest)}**" in text and "in neither part" in text
    assert "more than the three measurements' spreads" in beyond and "#separate-runs" not in beyond
    assert "within the three measurements' spreads" in within and "(measuring.md#separate-runs)" in within


def test_the_chart_of_this_builds_cpu_shows_the_rest_as_a_part(results_archive) -> None:
    """The decomposition's table: a rest row equal to the whole less the two parts, from this build's data."""
    import re

    from gpucnn.experiments.matmul import article_matmul
    from gpucnn.figures import article_parts
    from gpucnn.pages.measuring import decomposition_chart, signed_time
    from gpucnn.results import run

    html = decomposition_chart()
    parts = article_parts(run(article_matmul, device="cpu").data)
    row = re.search(r"<td[^>]*>rest: [^<]*</td><td[^>]*>([^<]*)</td>", html)
    assert row and row.group(1) == signed_time(parts.rest)
    assert "what the article's time is made of" not in html
    assert ("rest: in neither part" in html) == (parts.rest > 0)


# --- launch cost against host overhead --------------------------------------------------------------------

def _rows(*per_call: tuple[str, float, float]) -> list[dict]:
    """Stored profile rows: (op, calls per step, device time per call)."""
    return [{"op": op, "calls": calls, "self_cpu_s": 1e-5, "self_cpu_pct": 1.0, "self_device_s": calls * t,
             "self_device_pct": 10.0} for op, calls, t in per_call]


@pytest.mark.parametrize(("kernel", "pace"), [(1e-6, "host"), (4e-6, "gpu"), (None, "unknown")])
def test_the_pace_of_a_tiny_call_from_fake_data(kernel, pace) -> None:
    from gpucnn.figures import Pace, call_cost

    rows = None if kernel is None else _rows(("aten::mm", 5, 13e-6), ("aten::fill_", 2, kernel),
                                             ("Activity Buffer Request", 0.4, 1e-7))
    c = call_cost({"add_stream": _m(6.4e-6), "matmul2x2_stream": _m(11.6e-6)},
                  {"add_stream": _m(1.3e-6)}, rows)
    assert c.kernel == (None if kernel is None else pytest.approx(kernel))  # the profiler's own event is no op
    assert c.cuda_path == pytest.approx(5.1e-6) and c.matmul_extra == pytest.approx(5.2e-6)
    assert c.pace is Pace(pace)


@pytest.mark.parametrize(("host_b", "gpu_b", "step_b", "order"), [
    (2.7e-6, 10.4e-6, 800e-6, "follows"),  # slower host, slower GPU add and step
    (2.7e-6, 6.4e-6, 800e-6, "not following"),  # slower host, same GPU add
    (1.3e-6, 10.4e-6, 800e-6, "same host"),
])
def test_two_machines_with_one_chip_from_fake_data(host_b, gpu_b, step_b, order) -> None:
    from gpucnn.figures import CallCost, HostOrder, host_order

    a = CallCost(_m(1.3e-6, 0.02e-6), _m(6.4e-6, 0.1e-6), _m(11.6e-6), 1e-6)
    b = CallCost(_m(host_b, 0.02e-6), _m(gpu_b, 0.1e-6), _m(15e-6), 1e-6)
    assert host_order(a, _m(489e-6, 5e-6), b, _m(step_b, 5e-6)) is HostOrder(order)
    assert host_order(b, _m(step_b, 5e-6), a, _m(489e-6, 5e-6)) is HostOrder(order)  # either order


def test_the_call_cost_findings_follow_each_records_verdict(results_archive) -> None:
    from gpucnn.figures import Pace
    from gpucnn.pages.measuring import call_cost_findings, call_cost_table, call_costs

    found = call_costs()
    assert found, "no archived GPU with its host CPU: the test would prove nothing"
    table, text = call_cost_table(), call_cost_findings()
    for p, c in found:
        line = next(x for x in text.splitlines() if x.startswith(f"- **{p.gpu.label}**"))
        assert ("it waits for the host" in line) == (c.pace is Pace.HOST)
        assert ("the GPU's own work sets the pace" in line) == (c.pace is Pace.GPU)
        assert p.cpu.label in table  # each GPU beside its own host CPU
    assert "the cost of launching a kernel" not in text


def test_two_machines_are_compared_only_on_one_chip_and_labelled(results_archive) -> None:
    from gpucnn.pages.measuring import _chip, call_costs, same_chip_findings

    text = same_chip_findings()
    chips = [_chip(p.gpu) for p, _ in call_costs()]
    if len(set(chips)) == len(chips):  # no two records share a chip: nothing to compare
        assert text == ""
        return
    assert text.startswith("Two machines, one GPU chip")
    for p, _ in call_costs():
        if chips.count(_chip(p.gpu)) > 1:
            assert p.gpu.label in text and p.cpu.label in text
