"""What is a GPU (gpucnn.pages.gpu): the machines' columns, the datasheet facts, the tensor-core facts."""

from __future__ import annotations

import dataclasses

import pytest

from gpucnn.datasheets import GPU_MODELS, vector_fp32
from gpucnn.hardware import AcceleratorInfo, GpuPeaks, detect
from gpucnn.pages import gpu
from gpucnn.render import fmt
from tests.conftest import ROOT


def test_without_an_accelerator_or_archive_the_gpu_column_says_none(tmp_path, monkeypatch) -> None:
    hw = dataclasses.replace(detect(), accelerator=None)
    monkeypatch.setattr(gpu, "detect", lambda: hw)
    monkeypatch.setattr("gpucnn.hardware.detect", lambda: hw)
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(tmp_path))  # an empty archive: nothing to show instead
    columns = gpu.machine_columns(hw)
    assert [c.source is None for c in columns] == [False, True]
    assert columns[1].cells[0] == "none in this build" and set(columns[1].cells[1:]) == {gpu.DASH}
    assert "| Peak FP32 |" in gpu.machines_table(hw)
    assert gpu.lanes_findings(hw).machines == ()


def test_an_accelerator_fills_its_column_with_the_datasheet_and_implied_clock() -> None:
    peaks = GpuPeaks(67e12, 494.5e12, 989e12, 3.35e12, "test datasheet")
    acc = AcceleratorInfo(
        device_type="cuda", backend="CUDA", name="NVIDIA H100 80GB HBM3", count=1, memory_bytes=80 * 2**30,
        capability="9.0", multiprocessors=132, l2_bytes=50 * 2**20, driver=None, runtime="12.8", cudnn=None,
        tf32_matmul=False, mig=None, peaks=peaks)
    cells = gpu._gpu_cells(acc)
    assert cells[1] == "132 SMs" and cells[5].startswith("67 TFLOP/s") and cells[6].startswith("3.35 TB/s")
    assert gpu.boost_clock_ghz(acc) == pytest.approx(67e12 / (2 * 132 * 128) / 1e9)
    assert gpu.gpu_lanes(acc) == 132 * 128


def test_the_datasheet_table_divides_the_vector_fp32_peak_by_the_bandwidth() -> None:
    text = gpu.datasheet_table()
    sheet = gpu.datasheet()
    matrix = {m.label: m.tflops for m in sheet.matrix_fp32}
    for m in GPU_MODELS:
        value, _source = vector_fp32(m.label, m.peaks)
        row = next(line for line in text.splitlines() if line.startswith(f"| {m.label} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == fmt(value / 1e12, 4) and cells[5] == fmt(value / m.peaks.bandwidth), row
        assert (m.label in matrix) == (value != m.peaks.fp32)
    assert matrix  # the AMD rows' matrix FP32 figures are named as such
    vector = [vector_fp32(m.label, m.peaks)[0] for m in GPU_MODELS]
    assert sheet.fp32_hi_tflops == max(vector) / 1e12 and sheet.fp32_lo_tflops == min(vector) / 1e12


def test_the_hbm_parts_need_about_10_to_25_flop_per_byte() -> None:
    """Issue 19: not "dozens": the NVIDIA HBM datasheet rows give about 10 to 25 FP32 FLOP per byte."""
    sheet = gpu.datasheet()
    assert {"A100", "H100", "H200"} <= set(sheet.hbm_families)
    assert 9 < sheet.hbm_flop_per_byte_lo < 11 and 24 < sheet.hbm_flop_per_byte_hi < 26
    assert sheet.gddr_flop_per_byte_hi > 50
    assert "dozens of" not in (ROOT / "docs" / "gpu.md").read_text()


def test_the_paper_ratio_is_this_cpus_estimate_against_the_datasheet_range() -> None:
    hw = detect()
    paper = gpu.paper_cpu(hw)
    if hw.cpu.peak_fp32 is None:
        assert paper is None
        return
    sheet = gpu.datasheet()
    assert paper.hi_x == pytest.approx(sheet.fp32_hi_tflops * 1e12 / hw.cpu.peak_fp32.value)
    no_peak = dataclasses.replace(hw, cpu=dataclasses.replace(hw.cpu, peak_fp32=None))
    assert gpu.paper_cpu(no_peak) is None


def test_tensor_facts_come_from_the_datasheet_rows() -> None:
    t = gpu.tensor_facts()
    assert t.add_fp32_flop_per_byte == pytest.approx(1 / 12) and t.add_bf16_flop_per_byte == pytest.approx(1 / 6)
    assert t.bf16_lo.value < t.bf16_hi.value and t.bf16_hi.gpus and t.bf16_lo.gpus
    assert t.bf16_matmul_n == pytest.approx(t.bf16_ridge_hi.value * 3)
    assert t.fp32_ridge_lo.value < t.bf16_ridge_lo.value


def test_the_peaks_chart_is_dots_with_a_table_and_each_cpus_own_estimate() -> None:
    html = gpu.peaks_chart()  # figure_html raises ChartRuleError on bars on a log axis
    assert "<svg" in html and "The figures in a table" in html
    assert "this build&#x27;s CPU" not in html.split("<svg")[0]


def test_lanes_count_physical_cores_and_sms() -> None:
    import dataclasses

    from gpucnn.hardware import AcceleratorInfo, Peak, detect
    from gpucnn.pages.gpu import FP32_LANES_PER_SM, cpu_lanes, gpu_lanes

    hw = detect()
    cpu = dataclasses.replace(hw.cpu, usable_cores=4, max_clock_ghz=2.0,
                              peak_fp32=Peak(4 * 2.0e9 * 32, "FLOP/s", "test", True))
    assert cpu_lanes(dataclasses.replace(hw, cpu=cpu)) == (4, 16)
    assert cpu_lanes(dataclasses.replace(hw, cpu=dataclasses.replace(cpu, usable_cores=None))) is None
    acc = AcceleratorInfo(device_type="cuda", backend="CUDA", name="x", count=1, memory_bytes=None,
                          capability="8.0", multiprocessors=108, l2_bytes=None, driver=None, runtime=None,
                          cudnn=None, tf32_matmul=None, mig=None, peaks=None)
    assert gpu_lanes(acc) == 108 * FP32_LANES_PER_SM["8.0"]
    assert gpu_lanes(dataclasses.replace(acc, capability="12.0")) is None  # unknown: no guess


# --- vector FP32, not AMD's matrix-core FP32, before the tensor cores are counted ---

def test_every_matrix_fp32_row_has_a_vector_figure() -> None:
    from gpucnn.datasheets import GPU_MODELS, vector_fp32

    for m in GPU_MODELS:
        value, source = vector_fp32(m.label, m.peaks)
        if "matrix" in m.peaks.source.lower():
            assert source != m.peaks.source and "vector" in source.lower(), m.label
            assert value <= m.peaks.fp32  # a vector rate never beats the matrix cores' rate
        else:
            assert (value, source) == (m.peaks.fp32, m.peaks.source), m.label
