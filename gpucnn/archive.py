"""The archive of results from other machines: ``results/`` in the repository.

Each file is one ``results.json`` document (the format that every build writes
to ``site/results.json`` and that ``gpucnn bench --json`` writes), named
``<device-slug>-<YYYY-MM-DD>.json`` after the machine and the date it was
generated. ``add`` validates a record and stores it without ever overwriting
one: two records of the same machine and date get distinct names, also when
two processes add at the same moment. ``records`` reads and validates them all.

The schema is checked by a small hand-written validator; a problem is reported
as ``<field path>: <what is wrong>``, e.g. ``results[2].measured_at: expected
an ISO 8601 date-time, got 'yesterday'``. The schema is documented on the
Reproduce page (docs/reproduce.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpucnn.hardware import ACCELERATOR_TYPES, HardwareReport
from gpucnn.profile import PROFILES
from gpucnn.results import SCHEMAS, Result, write_temp_file


class RecordError(ValueError):
    """A record that cannot be archived or read: the message names the field."""


def archive_dir() -> Path:
    """``$GPUCNN_RESULTS_DIR``; else ``results/`` of the source checkout; else ``./results``."""
    if os.environ.get("GPUCNN_RESULTS_DIR"):
        return Path(os.environ["GPUCNN_RESULTS_DIR"])
    repo = Path(__file__).resolve().parent.parent
    if (repo / "mkdocs.yml").is_file():
        return repo / "results"
    return Path.cwd() / "results"


# --- the schema, as small checking functions --------------------------------

Check = Callable[[Any, str], None]


def _fail(path: str, message: str) -> RecordError:
    return RecordError(f"{path}: {message}" if path else message)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def string(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"expected a non-empty string, got {_type_name(value)} {_show(value)}")


def integer(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, f"expected a whole number >= 0, got {_show(value)}")


def number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _fail(path, f"expected a finite number >= 0, got {_show(value)}")


def boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {_show(value)}")


def timestamp(value: Any, path: str) -> None:
    string(value, path)
    try:
        _dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail(path, f"expected an ISO 8601 date-time, got {_show(value)}") from None


def anything(value: Any, path: str) -> None:
    pass


def optional(check: Check) -> Check:
    def check_optional(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)
    return check_optional


def one_of(*choices: str) -> Check:
    def check_choice(value: Any, path: str) -> None:
        if value not in choices:
            raise _fail(path, f"expected one of {', '.join(choices)}, got {_show(value)}")
    return check_choice


def array(item: Check, min_items: int = 0) -> Check:
    def check_array(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _fail(path, f"expected an array, got {_type_name(value)}")
        if len(value) < min_items:
            raise _fail(path, f"expected at least {min_items} item(s), got {len(value)}")
        for i, v in enumerate(value):
            item(v, f"{path}[{i}]")
    return check_array


def obj(fields: dict[str, Check], optional_fields: dict[str, Check] | None = None) -> Check:
    """An object with exactly these fields (``optional_fields`` may be absent)."""
    extra = optional_fields or {}

    def check_object(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {_type_name(value)}")
        for name, check in fields.items():
            where = f"{path}.{name}" if path else name
            if name not in value:
                raise _fail(where, "missing")
            check(value[name], where)
        for name, check in extra.items():
            if name in value:
                check(value[name], f"{path}.{name}" if path else name)
        unknown = sorted(set(value) - set(fields) - set(extra))
        if unknown:
            raise _fail(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field")
    return check_object


def free_object(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_type_name(value)}")


PEAK = obj({"value": number, "unit": string, "source": string, "estimate": boolean})
CPU = obj({
    "model": string, "family": optional(string), "logical_cores": integer, "torch_threads": integer,
    "reported_clock_ghz": optional(number), "max_clock_ghz": optional(number), "ram_bytes": optional(integer),
    "llc_bytes": optional(integer), "peak_fp32": optional(PEAK), "peak_note": string,
}, {"usable_cores": optional(integer), "isa": optional(string), "peak_bf16": optional(PEAK)})  # newer reports
GPU_PEAKS = obj({"fp32": number, "tf32": optional(number), "bf16": optional(number), "bandwidth": number,
                 "source": string}, {"fp16": optional(number)})  # fp16: newer reports
ACCELERATOR = obj({
    "device_type": one_of(*ACCELERATOR_TYPES), "backend": string, "name": string, "count": integer,
    "memory_bytes": optional(integer), "capability": optional(string), "multiprocessors": optional(integer),
    "l2_bytes": optional(integer), "driver": optional(string), "runtime": optional(string),
    "cudnn": optional(string), "tf32_matmul": optional(boolean), "mig": optional(string),
    "peaks": optional(GPU_PEAKS),
})
HARDWARE = obj({"os": string, "python": string, "torch": string, "blas": string, "cpu": CPU,
                "accelerator": optional(ACCELERATOR)})


def positive_times(value: Any, path: str) -> None:
    array(number, min_items=1)(value, path)
    if any(t <= 0 for t in value):
        raise _fail(path, "every time must be > 0 seconds")


MEASUREMENT = obj(
    {"name": string, "device": string, "dtype": string, "shape": array(integer), "threads": integer,
     "times_s": positive_times, "number_per_run": integer, "flops": number, "bytes_moved": number,
     "peak_flops": optional(number), "peak_bytes_per_s": optional(number)},
    # derived from the fields above, for readers of the file; recomputed on load
    {"median_s": anything, "p25_s": anything, "p75_s": anything, "runs": anything, "gflops": anything,
     "gbps": anything},
)


def data_value(value: Any, path: str) -> None:
    """Experiment data: any JSON, with tagged measurements and sweeps checked."""
    if isinstance(value, dict):
        if "__measurement__" in value:
            MEASUREMENT(value["__measurement__"], f"{path}.__measurement__")
        elif "__sweep__" in value:
            obj({"points": array(data_value), "stopped": optional(string)})(value["__sweep__"], f"{path}.__sweep__")
        else:
            for k, v in value.items():
                data_value(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            data_value(v, f"{path}[{i}]")


PROFILE = one_of(*PROFILES)
RESULT = obj(
    {"experiment": string, "params": free_object, "key": string, "measured_at": timestamp, "profile": PROFILE,
     "torch": string, "commit": optional(string), "hardware": HARDWARE, "data": free_object},
    {"elapsed_s": optional(number), "version": integer, "code_hash": optional(string)},
)
DOCUMENT = obj({
    "schema": one_of(*SCHEMAS), "generated_at": timestamp, "profile": PROFILE, "torch": string,
    "commit": optional(string), "hardware": HARDWARE, "results": array(RESULT, min_items=1),
})

# Local paths must not be published (the user's name is often in them).
_LOCAL_PATH = re.compile(r"(^|[\s'\"=(])(/home/|/root/|/Users/|/work/|[A-Za-z]:\\Users\\)")


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def validate(doc: Any) -> None:
    """Check a results document against the schema; raise RecordError naming the field."""
    DOCUMENT(doc, "")
    for i, r in enumerate(doc["results"]):
        data_value(r["data"], f"results[{i}].data")
    for path, text in _strings(doc):
        if _LOCAL_PATH.search(text):
            raise _fail(path, "contains a local path; records must not name the machine's folders or users")
    # What the site reads must also load (catches what the checks above cannot express).
    try:
        HardwareReport.from_dict(doc["hardware"])
        for r in doc["results"]:
            Result.from_dict(r)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"results: cannot be read ({type(exc).__name__}: {exc})") from None


# --- records -----------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One archived results document, read and validated."""

    name: str  # the file name in the archive
    document: dict[str, Any]
    hardware: HardwareReport
    results: tuple[Result, ...]

    @property
    def generated_at(self) -> str:
        return self.document["generated_at"]

    @property
    def hardware_name(self) -> str:
        """The machine in a few words: the accelerator if it had one, and the CPU."""
        hw = self.hardware
        cpu = hw.cpu.model
        return f"{hw.accelerator.name} with {cpu}" if hw.accelerator else f"{cpu} (no accelerator)"

    def find(self, experiment: str, **params: Any) -> Result | None:
        """This record's result of an experiment whose params include ``params``."""
        for r in self.results:
            if r.experiment == experiment and all(r.params.get(k) == v for k, v in params.items()):
                return r
        return None

    def label(self, results: list[Result] | None = None) -> str:
        """``recorded on <hardware>, <date>``: the date the shown figures were measured."""
        dates = sorted({r.date for r in (results or self.results)})
        when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        return f"recorded on {self.hardware_name}, {when}"


def parse(text: str, name: str, file_name: str | None = None) -> Record:
    """Parse and validate one record; RecordError messages start with ``name``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{name}: not valid JSON ({exc})") from None
    try:
        validate(doc)
    except RecordError as exc:
        raise RecordError(f"{name}: {exc}") from None
    return Record(file_name or Path(name).name, doc, HardwareReport.from_dict(doc["hardware"]),
                  tuple(Result.from_dict(r, reused=True) for r in doc["results"]))


def read(path: Path, name: str | None = None) -> Record:
    """Read, parse and validate a record file."""
    name = name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    return parse(text, name, path.name)


def record_files(directory: Path | None = None) -> list[Path]:
    """The archive's record files (``*.json``, not hidden temporary files), by name."""
    directory = directory or archive_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


def records(directory: Path | None = None) -> list[Record]:
    """Every archived record, validated; the first bad file raises RecordError naming it."""
    directory = directory or archive_dir()
    return [read(p, f"{directory.name}/{p.name}") for p in record_files(directory)]


def beside(experiment: str, **params: object) -> list[tuple[Record, Result]]:
    """Archived results of an experiment, for a page to show beside this build's.

    Label each with ``record.label([result])`` ("recorded on <hardware>, <date>"),
    never as this build's.
    """
    found = []
    for record in records():
        result = record.find(experiment, **params)
        if result is not None:
            found.append((record, result))
    return found


def slug(text: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-") or "unknown"


def record_name(doc: dict[str, Any]) -> str:
    """``<device-slug>-<YYYY-MM-DD>.json``: the accelerator if any, else the CPU."""
    hw = doc["hardware"]
    device = hw["accelerator"]["name"] if hw.get("accelerator") else hw["cpu"]["model"]
    return f"{slug(device)}-{doc['generated_at'][:10]}.json"


def add(source: Path, directory: Path | None = None) -> Path:
    """Validate the record in ``source`` and store it in the archive; return its path.

    Never overwrites: the file is written to a temporary name, then hard-linked
    to ``<name>.json``, ``<name>-2.json``, ... ``os.link`` fails if the target
    exists, so two processes adding at the same moment each get their own name.
    """
    record = read(Path(source))
    directory = directory or archive_dir()
    text = json.dumps(record.document, indent=1) + "\n"
    tmp = write_temp_file(directory, text, prefix=".add-")
    try:
        stem = record_name(record.document)[: -len(".json")]
        for n in range(1, 10_000):
            target = directory / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: exclusive create instead
                try:
                    with open(target, "x", encoding="utf-8") as f:
                        f.write(text)
                except FileExistsError:
                    continue
            return target
        raise RecordError(f"{source}: more than 9999 records named {stem}*.json")
    finally:
        tmp.unlink(missing_ok=True)
