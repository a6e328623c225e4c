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
import re
from pathlib import Path

import pytest

import gpucnn.hardware as hardware
import gpucnn.sources as sources
from gpucnn.archive import read
from tests.conftest import ROOT
from tests.pages.results_words import archive_words
from tests.test_fake_accelerator import cpu_only, fake_build, fake_report

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
                         ("gpu.side_by_side", gpu.side_by_side), ("gpu.lanes_findings", gpu.lanes_findings),
                         ("gpu.peaks_chart", gpu.peaks_chart),
                         ("summary.headline_table", summary.headline_table),
                         ("summary.peak_fractions", summary.peak_fractions),
                         ("summary.faq_speedups", summary.faq_speedups),
                         ("measuring.comparison_table", measuring.comparison_table)]:
            out[name] = fn() + section_sources()
        out["drawn"] = " ".join(sorted(_drawn()))
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
    old_row = next(row for row in summary.splitlines() if f"results/{OLD}" in row)
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
def test_the_faq_ratios_are_those_advantage_1_measures(build, request) -> None:
    pages = request.getfixturevalue(build)
    text = pages["summary.faq_speedups"]
    expected = json.loads(pages["expected_speedups"])
    assert expected, "no GPU in this situation: the test would prove nothing"
    for want in expected:
        where = "this build&#x27;s machine" if not want["archived"] else f"archived {want['model']} record"
        part = next((p for p in re.split(r"; (?=on )", text) if where in p), None)
        assert part is not None, (where, text)
        assert f"copied memory {want['copy']} as fast" in part, (want, part)


def test_the_summary_prose_states_no_rule_of_thumb() -> None:
    text = (ROOT / "docs" / "summary.md").read_text()
    assert "80-85" not in text and "several times the" not in text
    assert "summary.peak_fractions()" in text and "summary.faq_speedups()" in text


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_peak_fractions_name_every_gpu_in_the_headline_table(build, request) -> None:
    pages = request.getfixturevalue(build)
    text = pages["summary.peak_fractions"]
    gpus = set(re.findall(r"(H[12]00 \((?:this build|archived)[^)]*\))", pages["summary.headline_table"]))
    assert gpus, pages["summary.headline_table"]
    for label in gpus:
        assert re.search(re.escape(label) + r" \*\*[\d.,]+ %\*\* of its datasheet peak", text), (label, text)


# --- 4. What is a GPU: lanes of the GPU shown, efficiencies, no placeholder -------------------------------

def test_lanes_are_counted_for_each_gpu_shown(h200_build, cpu_build) -> None:
    live = h200_build["gpu.lanes_findings"]
    assert "On this build&#x27;s machine, the H200 has 132 SMs x 128" in live or \
        "On this build's machine, the H200 has 132 SMs x 128" in live
    assert "On the archived H100 record's machine, the H100 has 132 SMs x 128" in live
    assert "An H100 SXM has" not in live
    archived = cpu_build["gpu.lanes_findings"]
    assert "On the archived H200 record's machine, the H200 has" in archived
    assert "On the archived H100 record's machine, the H100 has" in archived


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_a_gap_to_the_peaks_prediction_is_explained_by_each_sides_efficiency(build, request) -> None:
    text = request.getfixturevalue(build)["gpu.lanes_findings"]
    for paragraph in text.strip().split("\n\n"):
        m = re.search(r"ran \*\*([\d,.]+)x\*\* as fast.*?(more|less|close to) (?:than )?the ([\d,.]+)x its peaks "
                      r"predict", paragraph)
        assert m, paragraph  # every machine in this archive has both peaks
        measured, predicted = (float(x.replace(",", "")) for x in (m.group(1), m.group(3)))
        assert re.search(r"[\d.,]+ % of its datasheet peak and the CPU [\d.,]+ % of its estimated one", paragraph), \
            paragraph
        if m.group(2) == "close to":
            assert max(measured, predicted) / min(measured, predicted) <= 1.1 * 1.01, paragraph
        else:
            assert (measured > predicted) == (m.group(2) == "more"), paragraph
            assert "because" in paragraph, paragraph


@pytest.mark.parametrize("build", ["h200_build", "cpu_build"])
def test_no_placeholder_cell_and_the_gpu_clock_is_the_datasheets(build, request) -> None:
    pages = request.getfixturevalue(build)
    table = pages["gpu.side_by_side"]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    for row in rows:
        for cell in row.split(" | "):
            assert not any(p in cell.lower() for p in PLACEHOLDERS), cell
    clock = next(r for r in rows if r.startswith("| Clock"))
    # H100 and H200 SXM: datasheet 67 TFLOP/s FP32 over 132 SMs x 128 lanes x 2 FLOP
    assert clock.count(f"{67e12 / (2 * 132 * 128) / 1e9:.2f} GHz boost, from the datasheet") == 2, clock
    bandwidth = next(r for r in rows if r.startswith("| Memory bandwidth"))
    assert "GB/s measured" in bandwidth and "bandwidth.md" in bandwidth
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


def test_the_lanes_sentence_names_which_peak_is_missing() -> None:
    """A GPU without a datasheet row (an RTX A6000, say) is not blamed on its host CPU."""
    import dataclasses

    from gpucnn.bench import Measurement, Sweep
    from gpucnn.pages.gpu import _measured_sentence
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
    text = _measured_sentence(Pair(source("cuda", gpu_hw, 1e-6), source("cpu", gpu_hw, 1e-5)))
    assert "has no datasheet row" in text and "CPU has no peak" not in text
    no_cpu_peak = dataclasses.replace(gpu_hw, cpu=dataclasses.replace(gpu_hw.cpu, peak_fp32=None))
    text = _measured_sentence(Pair(source("cuda", no_cpu_peak, 1e-6), source("cpu", no_cpu_peak, 1e-5)))
    assert "has no datasheet row" in text and "CPU has no peak" in text
