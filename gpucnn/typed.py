"""One generic reader: JSON experiment data -> a typed, frozen dataclass.

Experiments store their data as JSON (``results.json``, the cache, the
archive). Each declares a frozen dataclass describing that data
(``gpucnn.specs``); ``read`` turns the JSON into that dataclass, checking
every field's type and shape on the way, and raises ``RecordError`` naming the
path of the first bad field, e.g.
``results[3].data.sweep.points[2].shape: expected at least 1 item``.

Supported field types: ``int``, ``float`` (an integer is accepted), ``str``,
``bool``, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``, nested frozen
dataclasses, and the two tagged values ``Measurement``
(``{"__measurement__": {...}}``) and ``Sweep`` (``{"__sweep__": {...}}``).
Torch-free: the archive and the CLI read records without torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, Union

from gpucnn.measurement import Measurement, Sweep

if TYPE_CHECKING:
    from gpucnn.hardware import HardwareReport

T = TypeVar("T")

# Physically generous bounds: a value outside them is a broken or hostile record, and would print inf or nan
# on a page (5e-324 s makes an infinite rate) or crash a chart. Every real figure is far inside them.
FLOAT_LIMIT = 1e30  # any number in a result's data, in magnitude; and nonzero ones are at least its inverse
TIME_RANGE_S = (1e-12, 1e6)  # one timed call: a picosecond to eleven days
WORK_LIMIT = 1e21  # FLOPs or bytes of one call; FLOP/s or bytes/s of a peak (1000x today's largest GPU)
SIZE_LIMIT = 10**12  # one dimension of a measured shape
COUNT_LIMIT = 10**6  # threads
REPEAT_LIMIT = 10**9  # calls per timed run
TEXT_LIMIT = 1000  # characters in one string of a result's data (real ones: at most a few hundred)


class RecordError(ValueError):
    """A record or result that cannot be read: the message names the field."""


def _fail(path: str, message: str) -> RecordError:
    return RecordError(f"{path}: {message}" if path else message)


def printable(text: object) -> str:
    """``text`` with every non-printable character (escape sequences, newlines, bidi overrides) shown as ``?``:
    for a terminal or a log line, where a record's key or a file name must stay one plain line."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def key_name(name: object) -> str:
    """A record's key as it stands in a field path: as is when short and printable, else escaped and cut."""
    text = str(name)
    return text if text.isprintable() and len(text) <= 40 else _show(text)


def _show(value: Any) -> str:
    """A short, one-line, printable view of a bad value for an error message."""
    text = repr(value) if isinstance(value, str) else type(value).__name__
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
    elif isinstance(value, bool) or value is None:
        text = "true" if value is True else "false" if value is False else "null"
    elif isinstance(value, dict):
        text = "an object"
    elif isinstance(value, list):
        text = "an array"
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 40 else text[:37] + "..."


@cache
def _hints(cls: type) -> dict[str, Any]:
    # Field annotations are strings (``from __future__ import annotations``): resolve them
    # in the dataclass's module, with the two value classes always known.
    return typing.get_type_hints(cls, localns={"Measurement": Measurement, "Sweep": Sweep})


def read(cls: type[T], value: Any, path: str = "data", hardware: HardwareReport | None = None) -> T:
    """Read JSON ``value`` (already parsed) as the frozen dataclass ``cls``.

    ``hardware``, the report of the machine that measured it, is attached to
    every Measurement (``Measurement.hardware``), as ``results.decode`` does.

    Raises:
        RecordError: a field is missing, unknown, of the wrong type or shape;
            the message starts with its path below ``path``.
    """
    return _read(cls, value, path, hardware)


def _read(tp: Any, value: Any, path: str, hw: HardwareReport | None = None) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        rest = [o for o in options if o is not type(None)]
        if len(rest) == 1:
            return _read(rest[0], value, path, hw)
        raise TypeError(f"unsupported union {tp}")  # a spec bug, found by the tests
    if tp is Measurement:
        return _measurement(value, path, hw)
    if tp is Sweep:
        return _sweep(value, path, hw)
    if dataclasses.is_dataclass(tp):
        return tp(**_fields(tp, value, path, hw))
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise _fail(path, f"expected an array, got {_show(value)}")
        return tuple(_read(item, v, f"{path}[{i}]", hw) for i, v in enumerate(value))
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {_show(value)}")
        for k in value:
            _text(k, f"{path} key {_show(k)}")
        return {k: _read(item, v, f"{path}.{k}", hw) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected a whole number, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(path, f"expected a finite number, got {_show(value)}")
        if abs(value) > FLOAT_LIMIT or (value and abs(value) < 1 / FLOAT_LIMIT):
            raise _fail(path, f"expected 0 or a magnitude from {1 / FLOAT_LIMIT:g} to {FLOAT_LIMIT:g}, "
                              f"got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {_show(value)}")
        return _text(value, path)
    raise TypeError(f"unsupported field type {tp!r} at {path}")  # a spec bug, found by the tests


def _text(value: str, path: str) -> str:
    """A string of a result's data (an op name, a sweep's reason to stop, a key): printable, of bounded length.
    Pages escape it anyway; a control, bidi or zero-width character has no business in a record."""
    if len(value) > TEXT_LIMIT:
        raise _fail(path, f"longer than {TEXT_LIMIT} characters")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise _fail(path, f"expected printable text, got the character U+{ord(bad):04X}")
    return value


def _fields(cls: type, value: Any, path: str, hw: HardwareReport | None = None) -> dict[str, Any]:
    """Read the fields of ``cls`` from the object ``value``: every field without a default is required."""
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_show(value)}")
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        where = f"{path}.{f.name}"
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _fail(where, "missing")
            continue
        out[f.name] = _read(hints[f.name], value[f.name], where, hw)
    unknown = sorted(set(value) - set(out) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise _fail(f"{path}.{key_name(unknown[0])}", "unknown field")
    return out


def _tagged(value: Any, tag: str, path: str) -> Any:
    if not isinstance(value, dict) or set(value) != {tag}:
        raise _fail(path, f"expected an object {{\"{tag}\": ...}}, got {_show(value)}")
    return value[tag]


@dataclasses.dataclass(frozen=True)
class _MeasurementFields:
    """What a stored Measurement holds; the derived statistics are optional (recomputed on load)."""

    name: str
    device: str
    dtype: str
    shape: tuple[int, ...]
    threads: int
    times_s: tuple[float, ...]
    number_per_run: int
    flops: float
    bytes_moved: float
    peak_flops: float | None = None
    peak_bytes_per_s: float | None = None
    # derived from the fields above, for readers of the file
    median_s: float | None = None
    p25_s: float | None = None
    p75_s: float | None = None
    runs: int | None = None
    gflops: float | None = None
    gbps: float | None = None


def _measurement(value: Any, path: str, hw: HardwareReport | None) -> Measurement:
    # Paths leave the tag out: ``data.sweep.points[2].shape`` reads better than the JSON's nesting.
    raw = _tagged(value, "__measurement__", path)
    _check_ranges(raw, path)
    m = _fields(_MeasurementFields, raw, path)
    if not m["shape"]:
        raise _fail(f"{path}.shape", "expected at least 1 item, got 0")
    if any(s < 0 for s in m["shape"]):
        raise _fail(f"{path}.shape", "every size must be >= 0")
    if any(s > SIZE_LIMIT for s in m["shape"]):
        raise _fail(f"{path}.shape", f"every size must be <= {SIZE_LIMIT:g}")
    if not m["times_s"]:
        raise _fail(f"{path}.times_s", "expected at least 1 item, got 0")
    for name, most in (("threads", COUNT_LIMIT), ("number_per_run", REPEAT_LIMIT)):
        if not 1 <= m[name] <= most:
            raise _fail(f"{path}.{name}", f"expected a whole number from 1 to {most:g}, got {_show(m[name])}")
    return Measurement(
        name=m["name"], device=m["device"], dtype=m["dtype"], shape=m["shape"], threads=m["threads"],
        times_s=m["times_s"], number_per_run=m["number_per_run"], flops=m["flops"],
        bytes_moved=m["bytes_moved"], peak_flops=m.get("peak_flops"), peak_bytes_per_s=m.get("peak_bytes_per_s"),
        hardware=hw,
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_ranges(raw: Any, path: str) -> None:
    """A measurement's times, work and peaks within physical bounds, checked before the generic reading (whose
    bound on any number would otherwise speak first, and less clearly). Other types are left to it."""
    if not isinstance(raw, dict):
        return
    low, high = TIME_RANGE_S
    times = raw.get("times_s")
    for i, t in enumerate(times if isinstance(times, list) else []):
        if _number(t) and t <= 0:
            raise _fail(f"{path}.times_s", "every time must be > 0 seconds")
        if _number(t) and not low <= t <= high:
            raise _fail(f"{path}.times_s[{i}]", f"expected a time from {low:g} to {high:g} seconds, got {_show(t)}")
    for name in ("flops", "bytes_moved", "peak_flops", "peak_bytes_per_s"):
        v = raw.get(name)
        if _number(v) and not 0 <= v <= WORK_LIMIT:
            raise _fail(f"{path}.{name}", f"expected a number from 0 to {WORK_LIMIT:g}, got {_show(v)}")


@dataclasses.dataclass(frozen=True)
class _SweepFields:
    points: tuple[Measurement, ...]
    stopped: str | None = None


def _sweep(value: Any, path: str, hw: HardwareReport | None) -> Sweep:
    s = _fields(_SweepFields, _tagged(value, "__sweep__", path), path, hw)
    return Sweep(s["points"], s.get("stopped"))


def measurements(value: Any, path: str = "data") -> Iterator[tuple[str, Measurement]]:
    """Every Measurement inside a typed value (dataclass, Sweep, tuple, dict), with its path."""
    if isinstance(value, Measurement):
        yield path, value
    elif isinstance(value, Sweep):
        for i, p in enumerate(value.points):
            yield from measurements(p, f"{path}.points[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from measurements(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from measurements(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from measurements(v, f"{path}.{k}")
