"""Fakes shared by the test modules: a fake accelerator, fake builds, records and measurements.

* ``fake_report``/``install_fake_gpu``/``fake_build``/``cpu_only``: every page builder renders with a fake
  "NVIDIA H100 80GB HBM3" (or any other name) whose torch device is ``cpu:0``: a device string that is not
  ``"cpu"`` (so the code takes its accelerator branches) on which torch really computes. What a CPU cannot do
  is stubbed: ``torch.accelerator.synchronize``/``empty_cache`` (counted), ``pin_memory`` and
  ``torch.compile`` (identity), the device profiler.
* ``as_cuda``/``write_record``: a live fake run written as an archived CUDA record.
* ``h200``, ``live_record``, ``where``: a fake H200 measured once, then seen live, archived or beside results/.
* ``counted``: a tiny experiment that counts its real runs; ``copy_measurement``: a copy Measurement.
* ``one_line_error``: the check that a CLI failed in one ``gpucnn: error:`` line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import gpucnn.experiments.conv as conv_exp
import gpucnn.experiments.memory as memory_exp
import gpucnn.experiments.nn as nn_exp
import gpucnn.hardware as hardware
import gpucnn.results as results
from gpucnn.archive import read
from gpucnn.bench import Measurement, measure
from gpucnn.hardware import AcceleratorInfo, HardwareReport, gpu_peaks
from gpucnn.results import experiment
from gpucnn.specs import SPECS, Spec
from tests.conftest import ROOT

H100 = "NVIDIA H100 80GB HBM3"
L2 = 50 * 1024 * 1024
FAKE_DEVICE = "cpu:0"  # not "cpu", so every accelerator branch is taken; torch computes on it all the same
NO_GPU = "No GPU in this build"
MIB = 1024**2


def fake_report(device_type: str = FAKE_DEVICE, name: str = H100) -> HardwareReport:
    real = hardware.detect()
    acc = AcceleratorInfo(
        device_type=device_type, backend="CUDA", name=name, count=1, memory_bytes=80 * 1024**3,
        capability="9.0", multiprocessors=132, l2_bytes=L2, driver="570.124.06 (CUDA 12.8)", runtime="12.8",
        cudnn="91002", tf32_matmul=False, mig="not in use", peaks=gpu_peaks(name),
    )
    return dataclasses.replace(real, accelerator=acc)



# --- every page with a fake GPU ------------------------------------------------------

PAGE_MODULES = ("measuring", "bandwidth", "parallelism", "fast_memory", "ann", "cnn", "summary", "results",
                "gpu", "training", "tensor_cores")


def _smoke(mp: pytest.MonkeyPatch) -> None:
    """Smallest sizes and shortest timings: these tests check branches, not figures.

    Measuring every page for real with the quick profile took about 120 s.
    """
    from gpucnn import profile
    from gpucnn.experiments import training as training_exp
    from gpucnn.pages import training as training_page

    mp.setitem(profile.PROFILES, "quick", dataclasses.replace(
        profile.PROFILES["quick"], budget_s=0.002, min_runs=3, max_matmul_n=256, sweep_point_limit_s=0.002,
        max_precision_n_cpu=128, max_precision_n_gpu=256))
    mp.setitem(training_page.TRAIN_PARAMS, "epochs", 2)
    # The fake GPU is the CPU: the GPU's batch sizes (64 images of 3x64x64 per training step) cost seconds each.
    mp.setattr(training_exp, "train_batches", lambda device: [2, 4])
    mp.setattr(training_exp, "deploy_batches", lambda device: [1, 16])
    # One copy inside the fake 50 MiB L2 and one beyond it, a few MiB per timed call: the launch-free sweep's branches.
    mp.setattr(memory_exp, "l2_copy_sizes", lambda l2: [256 * 1024, 32 * 1024 * 1024])
    mp.setattr(memory_exp, "LAUNCH_FREE_BYTES_PER_CALL", 4 * 1024 * 1024)


REAL_DETECT = hardware.detect


def install_fake_gpu(mp: pytest.MonkeyPatch, report: HardwareReport, pages: tuple[str, ...] = PAGE_MODULES,
                     synced: list[int] | None = None) -> None:
    """Make every page see ``report`` as this build's hardware, with what a CPU cannot do stubbed."""
    import importlib
    import sys

    real_profiler = nn_exp.profiler
    mp.setenv("GPUCNN_PROFILE", "quick")
    mp.delenv("GPUCNN_FRESH", raising=False)
    mp.delenv(results.SHARE_ENV, raising=False)
    _smoke(mp)
    for page in pages:  # imported now, so that the loop below patches what they import
        importlib.import_module(f"gpucnn.pages.{page}")
    # Every gpucnn module that took `detect` by name, wherever the pages' code moves to.
    for name, module in list(sys.modules.items()):
        if (name == "gpucnn" or name.startswith("gpucnn.")) and getattr(module, "detect", None) is REAL_DETECT:
            mp.setattr(module, "detect", lambda: report)
    mp.setattr(results, "_BUILD", {})  # keep the fake H100's results out of the other tests
    mp.setattr(torch.accelerator, "synchronize", lambda *a: synced.append(1) if synced is not None else None)
    mp.setattr(torch.accelerator, "empty_cache", lambda: None)
    mp.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    mp.setattr(torch, "compile", lambda model, *a, **k: model)
    # torch.load knows "cuda" but has no deserializer for the tag "cpu:0"
    real_load = torch.load
    mp.setattr(torch, "load", lambda *a, map_location=None, **k: real_load(
        *a, map_location="cpu" if map_location == FAKE_DEVICE else map_location, **k))
    for module in (nn_exp, conv_exp):
        mp.setattr(module, "profiler", lambda device: real_profiler("cpu"))


def cpu_only() -> HardwareReport:
    """This machine's hardware report without its accelerator: a CPU-only build."""
    return dataclasses.replace(REAL_DETECT(), accelerator=None)


@contextmanager
def fake_build(report: HardwareReport, archive: Path, cache: Path, pages: tuple[str, ...] = PAGE_MODULES
               ) -> Iterator[None]:
    """Pages see ``report`` as this build's hardware and ``archive`` as results/."""
    import gpucnn.sources as sources
    from gpucnn import profile

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUCNN_CACHE_DIR", str(cache))
        mp.setenv("GPUCNN_RESULTS_DIR", str(archive))
        install_fake_gpu(mp, report, pages)
        # Sweeps that stop on a time limit would make the set of figures depend on this machine's load:
        # a figure drawn from two points in one run and absent in the next. Small sizes, no early stop.
        mp.setitem(profile.PROFILES, "quick", dataclasses.replace(profile.PROFILES["quick"], sweep_point_limit_s=5.0))
        sources.reset()
        try:
            yield
        finally:
            sources.reset()


# --- archived records made from a fake live run ----------------------------------------

RECORD = "fake-h100.json"


def as_cuda(document: dict) -> dict:
    """The live run's document as a CUDA machine would have written it (the fake device is ``cpu:0``)."""
    return json.loads(json.dumps(document).replace(f'"{FAKE_DEVICE}"', '"cuda"'))


def write_record(folder: Path, document: dict, name: str = RECORD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(document))
    read(path)  # it must be a valid record, or the test proves nothing
    return path


# --- results of a fake record -------------------------------------------------------

def fake_result(hw: object, device: str = "cpu", date: str = "2026-01-02") -> object:
    from gpucnn.results import Result

    return Result("matmul_sweep", {"device": device}, {}, f"{date}T03:04:05+00:00", "quick", "2.11.0+cu130",
                  "abc1234", hw, "k-" + device)


def archived_sources(name: str = "nvidia-h100-2026-01-02.json", accelerator: str = "NVIDIA H100 80GB HBM3") -> list:
    import dataclasses

    from gpucnn.archive import Record
    from gpucnn.sources import Source

    report = fake_report()
    hw = dataclasses.replace(report, accelerator=dataclasses.replace(report.accelerator, name=accelerator))
    gpu, cpu = fake_result(hw, "cuda"), fake_result(hw, "cpu")
    record = Record(name, {}, hw, (gpu, cpu))
    return [Source("cuda", gpu, record), Source("cpu", cpu, record)]


# --- a fake H200, live, archived or beside results/ ------------------------------------

H200_PAGES = ("bandwidth", "fast_memory", "parallelism", "tensor_cores")
H200_L2 = 60 * MIB


def h200() -> hardware.HardwareReport:
    report = fake_report(name="NVIDIA H200")
    return dataclasses.replace(report, accelerator=dataclasses.replace(report.accelerator, l2_bytes=H200_L2))


def h200_situation(report: hardware.HardwareReport, archive: Path, cache: Path):
    return fake_build(report, archive, cache, H200_PAGES)


@pytest.fixture(scope="module")
def live_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The fake H200's results as a record, measured once."""
    base = tmp_path_factory.mktemp("live")
    (base / "empty").mkdir()
    report = h200()
    with h200_situation(report, base / "empty", base / "cache"):
        from gpucnn.pages import bandwidth, fast_memory, parallelism

        for fn in (bandwidth.l2_facts, fast_memory.roofline_table, fast_memory.onchip,
                   parallelism.littles_law):
            fn()
        return as_cuda(results.results_document(list(results._BUILD.values()), hardware=report))


@pytest.fixture(params=["live", "archived", "results"])
def where(request, live_record, tmp_path: Path) -> Iterator[str]:
    """Pages see one of the three situations while the test runs."""
    if request.param == "live":
        (tmp_path / "empty").mkdir()
        with h200_situation(h200(), tmp_path / "empty", tmp_path / "cache"):
            yield "live"
    elif request.param == "archived":
        write_record(tmp_path / "results", live_record, "fake-h200.json")
        with h200_situation(cpu_only(), tmp_path / "results", tmp_path / "cache"):
            yield "archived"
    else:
        with h200_situation(cpu_only(), ROOT / "results", tmp_path / "cache"):
            yield "results"


# --- measurements and experiments ------------------------------------------------------

def copy_measurement(buffer_bytes: int, seconds: float, spread: float = 0.0) -> Measurement:
    """A copy of ``buffer_bytes`` on CUDA taking ``seconds`` (five runs, ``spread`` apart)."""
    times = tuple(seconds * (1 + spread * k) for k in (-2, -1, 0, 1, 2))
    return Measurement(name="copy", device="cuda", dtype="float32", shape=(buffer_bytes,), threads=1,
                       times_s=times, number_per_run=1, bytes_moved=2.0 * buffer_bytes)


CALLS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class CountedData:
    sum: Measurement
    size: int


SPECS["counted"] = Spec(__name__, 1, CountedData)


@experiment
def counted(size: int = 4) -> dict[str, Any]:
    """A tiny experiment that records each time it really runs."""
    CALLS.append({"size": size})
    x = torch.ones(size)
    return {"sum": measure(lambda: x.sum(), name="sum", device="cpu", shape=(size,)), "size": size}


# --- checks ----------------------------------------------------------------------------

def one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpucnn: error: "), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
