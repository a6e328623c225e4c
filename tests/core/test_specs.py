"""Experiment specs (version + data class) and the generic typed reader."""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpucnn import typed
from gpucnn.measurement import Measurement, Sweep
from gpucnn.specs import SPECS, MatmulSweepData, Spec
from gpucnn.typed import RecordError
from tests.conftest import ROOT

RECORDS = sorted(Path("/work/shared/records").glob("*.json")) or sorted((ROOT / "results").glob("*.json"))
EXPERIMENT_MODULES = sorted(p.stem for p in (ROOT / "gpucnn" / "experiments").glob("*.py") if p.stem != "__init__")


def _m(shape: list[int] | None = None, times: list[float] | None = None) -> dict[str, Any]:
    return {"__measurement__": {
        "name": "matmul n=2", "device": "cpu", "dtype": "float32", "shape": [2, 2, 2] if shape is None else shape,
        "threads": 2, "times_s": [1e-6, 2e-6] if times is None else times, "number_per_run": 10, "flops": 16.0,
        "bytes_moved": 48.0, "peak_flops": None, "peak_bytes_per_s": None}}


def _sweep_data(points: list[Any] | None = None) -> dict[str, Any]:
    return {"sweep": {"__sweep__": {"points": [_m(), _m(), _m()] if points is None else points, "stopped": None}}}


def test_every_experiment_has_a_spec_and_every_spec_an_experiment() -> None:
    from gpucnn.results import EXPERIMENTS

    for name in EXPERIMENT_MODULES:
        importlib.import_module(f"gpucnn.experiments.{name}")
    real = {n for n, fn in EXPERIMENTS.items() if fn.__module__.startswith("gpucnn.")}
    assert real == set(SPECS) - {n for n, s in SPECS.items() if not s.module.startswith("gpucnn.")}
    for name, spec in SPECS.items():
        assert isinstance(spec.version, int) and spec.version >= 1, name


def test_a_function_without_a_spec_is_refused() -> None:
    from gpucnn.results import experiment

    def not_declared() -> dict[str, Any]:
        return {}
    with pytest.raises(TypeError, match="has no spec"):
        experiment(not_declared)


def test_a_spec_naming_another_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.results import experiment

    def misplaced() -> dict[str, Any]:
        return {}
    monkeypatch.setitem(SPECS, "misplaced", Spec("gpucnn.experiments.nowhere", 1, MatmulSweepData))
    with pytest.raises(TypeError, match=r"its spec names gpucnn\.experiments\.nowhere"):
        experiment(misplaced)


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_the_real_records_read_as_their_data_classes(path: Path) -> None:
    doc = json.loads(path.read_text())
    for i, r in enumerate(doc["results"]):
        data = typed.read(SPECS[r["experiment"]].data, r["data"], f"results[{i}].data")
        assert isinstance(data, SPECS[r["experiment"]].data)
        if r["experiment"] != "cnn_profile":  # profiler rows, not harness figures
            assert list(typed.measurements(data))


def test_a_sweep_reads_as_measurements() -> None:
    data = typed.read(MatmulSweepData, _sweep_data())
    assert isinstance(data.sweep, Sweep) and len(data.sweep.points) == 3
    assert all(isinstance(p, Measurement) for p in data.sweep.points)
    assert data.sweep.points[0].shape == (2, 2, 2) and data.sweep.points[0].median == pytest.approx(1.5e-6)
    assert [p for p, _ in typed.measurements(data)] == [f"data.sweep.points[{i}]" for i in range(3)]


@pytest.mark.parametrize(("data", "message"), [
    ({}, "results[3].data.sweep: missing"),
    ({"sweeps": _sweep_data()["sweep"]}, "results[3].data.sweep: missing"),
    ({**_sweep_data(), "extra": 1}, "results[3].data.extra: unknown field"),
    (_sweep_data([_m(), _m(), _m(shape=[])]), "results[3].data.sweep.points[2].shape: expected at least 1 item"),
    (_sweep_data([_m(), 3]), 'results[3].data.sweep.points[1]: expected an object {"__measurement__": ...}'),
    (_sweep_data([_m(times=[])]), "results[3].data.sweep.points[0].times_s: expected at least 1 item"),
    (_sweep_data([_m(times=[0.0])]), "results[3].data.sweep.points[0].times_s: every time must be > 0"),
    (_sweep_data([_m(times=["1"])]), "results[3].data.sweep.points[0].times_s[0]: expected a finite number"),
    (_sweep_data([_m(shape=[2.5])]), "results[3].data.sweep.points[0].shape[0]: expected a whole number"),
    (_sweep_data([_m(shape=[True])]), "results[3].data.sweep.points[0].shape[0]: expected a whole number"),
    ({"sweep": []}, 'results[3].data.sweep: expected an object {"__sweep__": ...}'),
    ([], "results[3].data: expected an object, got an array"),
])
def test_bad_data_is_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(RecordError) as info:
        typed.read(MatmulSweepData, data, "results[3].data")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_a_renamed_measurement_field_is_named() -> None:
    data = _sweep_data()
    point = data["sweep"]["__sweep__"]["points"][1]["__measurement__"]
    point["time_s"] = point.pop("times_s")
    with pytest.raises(RecordError, match=r"^data\.sweep\.points\[1\]\.times_s: missing$"):
        typed.read(MatmulSweepData, data)


def test_optional_fields_and_dicts() -> None:
    @dataclass(frozen=True)
    class Nested:
        speedups: dict[str, Measurement]
        note: str | None = None
        counts: tuple[int, ...] = ()

    got = typed.read(Nested, {"speedups": {"plain": _m()}, "note": None})
    assert got.note is None and got.counts == () and isinstance(got.speedups["plain"], Measurement)
    with pytest.raises(RecordError, match=r"^data\.speedups\.plain: expected an object"):
        typed.read(Nested, {"speedups": {"plain": 1.0}})


def test_a_real_result_survives_every_single_field_deletion() -> None:
    """Deleting any one required key of a real result's data gives a RecordError, never another exception."""
    if not RECORDS:
        pytest.skip("no real record")
    doc = json.loads(RECORDS[0].read_text())
    r = next(r for r in doc["results"] if r["experiment"] == "training_throughput")
    for key in r["data"]:
        broken = copy.deepcopy(r["data"])
        del broken[key]
        with pytest.raises(RecordError, match=rf"data\.{key}: missing"):
            typed.read(SPECS["training_throughput"].data, broken)


def test_specs_and_typed_reading_need_no_torch() -> None:
    code = ("import sys, gpucnn.specs, gpucnn.typed, gpucnn.measurement, gpucnn.codehash; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_every_data_class_uses_only_types_the_reader_knows() -> None:
    """A spec with an unsupported field type (a list, a set, a union of two classes) is a bug found here,
    not when a record first holds that experiment."""
    import dataclasses
    import typing

    known = {int, float, str, bool, type(None), Measurement, Sweep}

    def walk(tp: Any, where: str) -> None:
        args = typing.get_args(tp)
        origin = typing.get_origin(tp)
        if tp in known:
            return
        if dataclasses.is_dataclass(tp):
            for name, hint in typed._hints(tp).items():
                walk(hint, f"{where}.{name}")
        elif origin is tuple:
            assert len(args) == 2 and args[1] is Ellipsis, where
            walk(args[0], where)
        elif origin is dict:
            assert args[0] is str, where
            walk(args[1], where)
        elif args and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            assert len(rest) == 1, where
            walk(rest[0], where)
        else:
            raise AssertionError(f"{where}: unsupported type {tp!r}")

    for name, spec in SPECS.items():
        walk(spec.data, name)
