"""A GPU's device memory is named by its kind, HBM or GDDR, from its datasheet row; never "HBM" for every GPU.

Users rebuild the site on their own GPUs: an L4 or a GeForce card has GDDR, and a GPU that no datasheet row
names gets the neutral "device memory", never a neighbour's kind. The kind is looked up by the accelerator's
name at render time, so no record in results/ stores it. No measured value is asserted.
"""

from __future__ import annotations

import types

import pytest

from gpucnn.datasheets import GPU_MODELS, memory_kind, memory_type
from gpucnn.hardware import HardwareReport
from tests.fakes import fake_build, fake_report


def _acc(name: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(name=name)


@pytest.mark.parametrize(("name", "kind"), [
    ("NVIDIA H100 80GB HBM3", "HBM"),
    ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "HBM"),  # a MIG slice has its chip's memory
    ("NVIDIA H100 PCIe", "HBM"),
    ("NVIDIA H200", "HBM"),
    ("NVIDIA H200 NVL", "HBM"),
    ("AMD Instinct MI300X", "HBM"),
    ("NVIDIA L4", "GDDR"),
    ("NVIDIA L40S", "GDDR"),
    ("Tesla T4", "GDDR"),
    ("NVIDIA GeForce RTX 4090", "GDDR"),
])
def test_a_known_gpu_reads_its_memory_family(name: str, kind: str) -> None:
    assert memory_kind(_acc(name)) == kind


@pytest.mark.parametrize("name", ["NVIDIA A10G", "Apple M2 Max", "NVIDIA GH200 480GB", "Made-up GPU 9000", ""])
def test_an_unknown_gpu_reads_device_memory(name: str) -> None:
    assert memory_kind(_acc(name)) == "device memory"
    assert memory_type(name) is None


def test_no_accelerator_reads_device_memory() -> None:
    assert memory_kind(None) == "device memory"


def test_every_datasheet_row_names_its_memory_type() -> None:
    """A row without its type would read "device memory" although its datasheet says which it is."""
    for row in GPU_MODELS:
        assert row.memory and row.memory.startswith(("HBM", "GDDR")), row.label
    assert memory_type("NVIDIA H100 80GB HBM3") == "HBM3" and memory_type("NVIDIA H200") == "HBM3e"
    assert memory_type("NVIDIA GeForce RTX 4090") == "GDDR6X" and memory_type("NVIDIA L4") == "GDDR6"


def test_the_memory_type_is_not_stored_in_records() -> None:
    """Archived records must load unchanged: the report of a GDDR GPU serializes no memory kind."""
    report = fake_report(name="NVIDIA L4")
    text = str(report.to_dict())
    assert "GDDR" not in text
    assert HardwareReport.from_dict(report.to_dict()) == report


def test_a_live_gddr_gpu_is_never_called_hbm(tmp_path) -> None:
    """A fake live GeForce RTX 4090 (GDDR6X) with an empty archive: its copy, L2 and cache sentences, charts and
    tables name GDDR, never HBM."""
    report = fake_report(name="NVIDIA GeForce RTX 4090")
    archive = tmp_path / "results"
    archive.mkdir()
    with fake_build(report, archive, tmp_path / "cache", ("bandwidth",)):
        from gpucnn.pages import bandwidth

        out = {f.__name__: f() for f in (
            bandwidth.copy_charts, bandwidth.copy_table, bandwidth.dram_table, bandwidth.l2_copy_charts,
            bandwidth.l2_table)}
        kinds = {d.memory for d in bandwidth.copy_facts().accelerators} | {d.memory for d in bandwidth.l2_facts().devices}
    for name, text in out.items():
        assert "HBM" not in text, name
    assert "GDDR datasheet peak" in out["l2_copy_charts"] and "L2 and GDDR, launch cost removed" in out["l2_copy_charts"]
    assert kinds == {"GDDR"}


