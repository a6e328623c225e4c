"""What a real H200 build's pages got wrong, checked on both kinds of build.

A live GPU is simulated with ``install_fake_gpu`` (a fake "NVIDIA H200" whose torch device is the CPU);
the archive is three records made from a real one in ``results/``: two of an H200 (an older and a newer)
and one renamed to an H100. Each check is made with the live H200 and on a CPU-only build:

* the Results page's archive table calls a record "same GPU model as this build" only when the record's
  accelerator is the live one's model, and the headline table and chart leave out the archived figures
  that the other pages do not draw (gpucnn.sources' rule);
* the What is a GPU page counts lanes for the GPU it shows, not a fixed H100, names each side's efficiency
  when the measured ratio differs from the peaks', and leaves no placeholder cell;
* the Summary's percentages and FAQ ratios come from the data;
* a CPU peak is called an estimate, not an upper bound, also when an older record says "upper bound".

No measured value is asserted: only where figures come from and what the sentences say about them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import gpucnn.hardware as hardware
import gpucnn.sources as sources
from gpucnn.archive import read
from gpucnn.render import fmt
from tests.conftest import ROOT
from tests.fakes import cpu_only, fake_build, fake_report
from tests.pages.results_words import archive_words

REAL = ROOT / "results" / "nvidia-h200-2026-11-26-2.json"
H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"
NEW, OLD, OTHER, CPU_ONLY = "h200-new.json", "h200-old.json", "h100.json", "cpu-only.json"
PAGES = ("results", "gpu", "summary", "measuring")
PLACEHOLDERS = ("n/a", "not known", "not reported", "not measured")


def _write(folder: Path, name: str, document: dict) -> None:
    path = folder / name
    path.write_text(json.dumps(document))
    read(path)  # a valid record, or the test proves nothing


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An older and a newer H200 record, and an H100 one (the H200 record with its accelerator renamed)."""
    folder = tmp_path_factory.mktemp("archive")
    doc = json.loads(REAL.read_text())
    _write(folder, NEW, doc)
    older = copy.deepcopy(doc)
    older["generated_at"] = "2026-11-25T00:00:00+00:00"
    _write(folder, OLD, older)
    _write(folder, OTHER, json.loads(json.dumps(doc).replace(f'"{H200}"', f'"{H100}"')))
    cpu = copy.deepcopy(doc)
    cpu["hardware"]["accelerator"] = None
    cpu["results"] = [r for r in cpu["results"] if r["params"].get("device", "cpu") == "cpu"]
    for r in cpu["results"]:
        r["hardware"]["accelerator"] = None
    _write(folder, CPU_ONLY, cpu)
    return folder


def situation(report: hardware.HardwareReport, archive: Path, cache: Path):
    return fake_build(report, archive, cache, PAGES)


def _drawn(fn_names: tuple[str, ...] = ("matmul_sweep", "copy_bandwidth", "small_op_latency")) -> set[str]:
    from gpucnn.pages import results as page

    drawn = page._drawn_records()
    return set().union(*(drawn[f] for f in fn_names))


# --- 1. Results page: "same GPU model" compares the record's GPU with the live one ----------------------

@pytest.mark.parametrize(("live", "same", "other"), [(H200, {NEW, OLD}, {OTHER}), (H100, {OTHER}, {NEW, OLD}),
                                                     (None, set(), {NEW, OLD, OTHER})])
def test_a_record_is_the_live_model_only_when_its_gpu_is(archive: Path, tmp_path: Path, live, same, other) -> None:
    from gpucnn.pages import results as page

    report = fake_report(name=live) if live else cpu_only()
    with situation(report, archive, tmp_path / "cache"):
        status = {rec.name: page._record_status(rec) for rec in sources.records_in_archive()}
        drawn = _drawn()
    for name in same:
        assert status[name].startswith("live-model"), status
    for name in other:
        assert "live-model" not in status[name], status
    # a record of another model is drawn (the newest of its model), so the table must not call it replaced
    newest_other = {n for n in other if n != OLD}
    assert newest_other <= drawn, f"a record the other pages should draw is not drawn: {status}"
    for name in newest_other:
        assert status[name].startswith("drawn"), status


# --- 2. Results page: the headline table follows the series rule -----------------------------------------

@pytest.fixture(scope="module")
def h200_build(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The pages' functions that this file checks, rendered with a live H200 and the archive."""
    return _render(fake_report(name=H200), archive, tmp_path_factory.mktemp("h200-cache"))


@pytest.fixture(scope="module")
def cpu_build(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _render(cpu_only(), archive, tmp_path_factory.mktemp("cpu-cache"))


def _render(report: hardware.HardwareReport, archive: Path, cache: Path) -> dict[str, str]:
    from gpucnn.pages import gpu, measuring, results, summary
    from gpucnn.render import section_sources

    with situation(report, archive, cache):
        section_sources()
        out = {}
        for name, fn in [("results.comparison_table", results.comparison_table),
                         ("results.comparison_chart", results.comparison_chart),
                         ("results.archive_summary", archive_words),
                         ("gpu.machines_table", gpu.machines_table), ("gpu.lanes_table", gpu.lanes_table),
                         ("gpu.peaks_chart", gpu.peaks_chart),
                         ("summary.headline_table", summary.headline_table),
                         ("summary.speedup_table", summary.speedup_table),
                         ("measuring.comparison_table", measuring.comparison_table)]:
            out[name] = fn() + section_sources()
        out["drawn"] = " ".join(sorted(_drawn()))
        out["lanes"] = json.dumps([
            {"model": m.gpu.model, "archived": m.gpu.archived, "gpu_lanes": m.gpu_lanes, "sms": m.sms,
             "measured": m.measured_ratio, "predicted": m.peak_ratio, "gpu_pct": m.gpu_pct_peak,
             "cpu_pct": m.cpu_pct_peak, "agreement": m.agreement.value if m.agreement else None}
            for m in gpu.lanes_findings().machines])
        out["speedups"] = json.dumps([{"model": x.gpu.model, "archived": x.gpu.archived, "copy_x": x.copy_x}
                                      for x in summary.speedups()])
        out["expected_speedups"] = json.dumps(_expected_speedups())
    return out


def _marker(name: str) -> str:
    return f'data-source="archived:{name}"'


@pytest.mark.parametrize("key", ["results.comparison_table", "results.comparison_chart"])
def test_the_headline_table_leaves_out_records_of_the_live_model(h200_build, key) -> None:
    html = h200_build[key]
    assert _marker(NEW) not in html and _marker(OLD) not in html, "an archived H200 beside the live H200"
    assert "H200 (archived" not in html
    assert "H200 (this build)" in html
    assert _marker(OTHER) in html and "H100 (archived" in html  # another model stands beside it
    assert _marker(CPU_ONLY) in html  # no other page draws a CPU-only record: this one does
    assert h200_build["drawn"] == OTHER


@pytest.mark.parametrize("key", ["results.comparison_table", "results.comparison_chart"])
def test_the_headline_table_of_a_cpu_build_shows_the_newest_record_of_each_model(cpu_build, key) -> None:
    html = cpu_build[key]
    assert _marker(NEW) in html and _marker(OTHER) in html
    assert _marker(OLD) not in html, "a record that a newer one of its model replaces"
    assert _marker(CPU_ONLY) in html
    assert set(cpu_build["drawn"].split()) == {NEW, OTHER}
    # the archive table still lists every record, and says why the older one is not drawn
    summary = cpu_build["results.archive_summary"]
    assert all(name in summary for name in (NEW, OLD, OTHER, CPU_ONLY))
    old_row = next(row for row in summary.splitlines() if f"archived:{OLD}" in row)
    assert f"results/{NEW}, a newer record" in old_row, old_row


# --- 3. Summary: percentages and ratios from the data ----------------------------------------------------

def _expected_speedups() -> list[dict]:
    """Each machine's GPU/CPU copy ratio as Advantage 1 takes it (largest buffers, within one origin)."""
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.figures import dram_point
    from gpucnn.render import fmt

    out = []
    for p in sources.pairs(copy_bandwidth):
        g, c = dram_point(p.gpu.result), dram_point(p.cpu.result)
        out.append({"model": p.gpu.model, "archived": p.archived, "copy": f"**{fmt(g.gbps / c.gbps, 2)}x**"})
    return out


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_the_gpu_against_host_ratios_are_those_advantage_1_measures(build, request) -> None:
    pages = request.getfixturevalue(build)
    got = {(x["model"], x["archived"]): f"**{fmt(x['copy_x'], 2)}x**" for x in json.loads(pages["speedups"])}
    expected = json.loads(pages["expected_speedups"])
    assert expected, "no GPU in this situation: the test would prove nothing"
    for want in expected:
        assert got[(want["model"], want["archived"])] == want["copy"], (want, got)


def test_the_summary_prose_states_no_rule_of_thumb() -> None:
    text = (ROOT / "docs" / "summary.md").read_text()
    assert "80-85" not in text and "several times the" not in text
    assert "pages.summary.speedup_table()" in text and "pages.summary.headline_table()" in text


# --- 4. What is a GPU: lanes of the GPU shown, efficiencies, no placeholder -------------------------------

def test_lanes_are_counted_for_each_gpu_shown(h200_build, cpu_build) -> None:
    live = {(m["model"], m["archived"]): m for m in json.loads(h200_build["lanes"])}
    assert live[("H200", False)]["gpu_lanes"] == 132 * 128 and live[("H100", True)]["gpu_lanes"] == 132 * 128
    archived = {(m["model"], m["archived"]) for m in json.loads(cpu_build["lanes"])}
    assert archived == {("H200", True), ("H100", True)}


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_a_gap_to_the_peaks_prediction_is_explained_by_each_sides_efficiency(build, request) -> None:
    for m in json.loads(request.getfixturevalue(build)["lanes"]):
        assert m["measured"] and m["predicted"] and m["gpu_pct"] and m["cpu_pct"], m  # this archive has both peaks
        # measured / predicted = (GPU's share of its peak) / (CPU's share of its own)
        assert m["measured"] / m["predicted"] == pytest.approx(m["gpu_pct"] / m["cpu_pct"]), m
        if max(m["measured"], m["predicted"]) / min(m["measured"], m["predicted"]) <= 1.1:
            assert m["agreement"] == "close", m
        else:
            assert m["agreement"] == ("more" if m["measured"] > m["predicted"] else "less"), m


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_no_placeholder_cell_and_the_gpu_clock_is_the_datasheets(build, request) -> None:
    pages = request.getfixturevalue(build)
    table = pages["gpu.machines_table"]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    for row in rows:
        for cell in row.split(" | "):
            assert not any(p in cell.lower() for p in PLACEHOLDERS), cell
    clock = next(r for r in rows if r.startswith("| Clock"))
    # H100 and H200 SXM: datasheet 67 TFLOP/s FP32 over 132 SMs x 128 lanes x 2 FLOP
    assert clock.count(f"{67e12 / (2 * 132 * 128) / 1e9:.2f} GHz boost") == 2, clock
    bandwidth = next(r for r in rows if r.startswith("| Memory bandwidth"))
    assert "GB/s copy" in bandwidth and "(measured)" in bandwidth
    measuring = pages["measuring.comparison_table"]
    assert "n/a" not in measuring


# --- 5. A CPU peak is an estimate, not a bound ------------------------------------------------------------

def test_an_archived_upper_bound_is_printed_as_an_estimate() -> None:
    doc = json.loads(REAL.read_text())
    doc["hardware"]["cpu"]["peak_fp32"]["source"] = "estimated upper bound: 16 cores x 2.10 GHz x 64"
    cpu = hardware.HardwareReport.from_dict(doc["hardware"]).cpu
    assert cpu.peak_fp32.source == f"{hardware.CPU_PEAK_WORDING}: 16 cores x 2.10 GHz x 64"


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_no_page_calls_the_cpu_peak_an_upper_bound(build, request) -> None:
    pages = request.getfixturevalue(build)
    for key, html in pages.items():
        assert "upper bound" not in html, key


def test_a_missing_peak_leaves_the_prediction_out_not_the_measurement() -> None:
    """A GPU without a datasheet row (an RTX A6000, say), or a CPU without a peak: no predicted ratio, no
    verdict, but the measured ratio stays."""
    import dataclasses

    from gpucnn.bench import Measurement, Sweep
    from gpucnn.pages.gpu import machine_lanes
    from gpucnn.results import Result
    from gpucnn.sources import Pair, Source

    def source(device: str, hw: hardware.HardwareReport, seconds: float) -> Source:
        m = Measurement(name="mm", device=device, dtype="float32", shape=(64, 64, 64), threads=1,
                        times_s=(seconds,) * 5, number_per_run=1, flops=2.0 * 64**3)
        result = Result(experiment="matmul_sweep", params={"device": device}, data={"sweep": Sweep((m,))},
                        measured_at="2026-01-01T00:00:00+00:00", profile="quick", torch="t", commit=None,
                        hardware=hw, key=device)
        return Source(device, result)

    gpu_hw = fake_report(name="NVIDIA RTX A6000")
    assert gpu_hw.accelerator.peaks is None and gpu_hw.cpu.peak_fp32 is not None
    m = machine_lanes(Pair(source("cuda", gpu_hw, 1e-6), source("cpu", gpu_hw, 1e-5)))
    assert m.measured_ratio == pytest.approx(10) and m.gpu_peak_tflops is None and m.cpu_peak_gflops
    assert m.peak_ratio is None and m.agreement is None and m.gpu_pct_peak is None and m.cpu_pct_peak
    no_cpu_peak = dataclasses.replace(gpu_hw, cpu=dataclasses.replace(gpu_hw.cpu, peak_fp32=None))
    m = machine_lanes(Pair(source("cuda", no_cpu_peak, 1e-6), source("cpu", no_cpu_peak, 1e-5)))
    assert m.cpu_peak_gflops is None and m.cpu_pct_peak is None and m.agreement is None
