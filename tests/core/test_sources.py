"""gpucnn.sources: short labels that tell parts apart, escaping, and which archived record is drawn."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gpucnn import sources
from gpucnn.archive import read
from gpucnn.experiments.matmul import matmul_sweep

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "results" / "nvidia-h200-2026-11-26.json"


@pytest.mark.parametrize(("name", "label"), [
    ("NVIDIA H100 80GB HBM3", "H100"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200"),
    ("NVIDIA H200 NVL", "H200 NVL"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM4 80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 SXM4 40GB"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("AMD Instinct MI300X", "MI300X"),
])
def test_short_labels_keep_the_words_that_tell_parts_apart(name: str, label: str) -> None:
    assert sources.short_model(name) == label


def test_one_line_escapes_markup_and_table_breaks() -> None:
    text = sources.one_line("a <script>x</script>\n| b | [c](javascript:d) `e`")
    assert "<" not in text and "\n" not in text and "|" not in text and "[" not in text and "`" not in text


def test_a_label_is_plain_text_whatever_the_hardware_name() -> None:
    """A label is printed in HTML, Markdown and charts without escaping: it carries no markup."""
    from gpucnn.hardware import detect
    from gpucnn.results import Result

    hw = detect()
    fake = dataclasses.replace(hw, accelerator=dataclasses.replace(
        read(H200).hardware.accelerator, name="NVIDIA <b>H200</b> | [x](y) `$z$` *e* \\ & 'q\""))
    result = Result(experiment="matmul_sweep", params={"device": "cuda"}, data={}, measured_at="2026-01-01T00:00:00",
                    profile="quick", torch="t", commit=None, hardware=fake, key="k")
    label = sources.Source("cuda", result).label
    assert label.endswith("(this build)") and "H200" in label
    assert not set(label) & set("<>&\"'`[]|$*\\")


def _archive_with(tmp_path: Path, *names: tuple[str, str]) -> Path:
    """A folder with copies of the real H200 record, renamed to other accelerators and dates."""
    folder = tmp_path / "results"
    folder.mkdir()
    for file, (gpu, when) in enumerate(names):
        doc = json.loads(H200.read_text())
        doc["generated_at"] = f"{when}T00:00:00+00:00"
        for hw in [doc["hardware"]] + [r["hardware"] for r in doc["results"]]:
            hw["accelerator"]["name"] = gpu
        (folder / f"r{file}.json").write_text(json.dumps(doc))
        read(folder / f"r{file}.json")
    return folder


def test_the_newest_record_of_a_model_is_drawn_and_other_parts_stand_beside_it(tmp_path, monkeypatch) -> None:
    from gpucnn import hardware

    folder = _archive_with(tmp_path, ("NVIDIA H100 80GB HBM3", "2026-10-01"), ("NVIDIA H100 80GB HBM3", "2026-11-01"),
                           ("NVIDIA H100 PCIe", "2026-09-01"))
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(folder))
    cpu_only = dataclasses.replace(hardware.detect(), accelerator=None)
    monkeypatch.setattr(hardware, "detect", lambda: cpu_only)
    sources.reset()
    chosen = sources.archived_accelerators(matmul_sweep)
    names = sorted((r.name, sources.short_model(r.hardware.accelerator.name)) for r, _, _ in chosen)
    assert names == [("r1.json", "H100"), ("r2.json", "H100 PCIe")]
    sources.reset()
