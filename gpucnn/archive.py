"""The archive of results from other machines: ``results/`` in the repository.

Each file is one ``results.json`` document (the format that every build writes
to ``site/results.json`` and that ``gpucnn bench --json`` writes), named
``<device-slug>-<YYYY-MM-DD>.json`` after the machine and the date it was
generated. ``add`` checks a record and stores it without ever overwriting
one: two records of the same machine and date get distinct names, also when
two processes add at the same moment. ``records`` reads and checks them all.

Records arrive by pull request: they are untrusted input. A record is read in
this order, and the first problem is reported as one line,
``<file>: <field path>: <what is wrong>``:

1. at most ``MAX_BYTES`` (checked before parsing) and ``MAX_DEPTH`` levels of
   nesting; strict JSON (no NaN or Infinity);
2. the JSON Schema ``gpucnn/results.schema.json`` (Draft 2020-12, checked with
   ``jsonschema``, date-times with a format checker): field types, and the
   characters allowed in hardware names, versions and commits;
3. no absolute local path in any string;
4. every result's data read through its experiment's typed reader
   (``gpucnn.specs``), so a valid schema with a broken shape is refused.

Steps 2 and 3 are skipped for a text that passed them before, with the same
checks (see ``_checks_key``): a build reads the same files as the last one.

Schema ``gpucnn-results/1`` documents (before experiment versions and code
hashes) still load: their results count as version 1 with an unknown code
hash. ``migrate`` upgrades one to ``gpucnn-results/2``, computing the code
hashes from the commit it was made at.

``status(record, result)`` says whether an archived result may be drawn; the
rules are on the Reproduce page (docs/reproduce.md).

Torch-free: ``gpucnn results add/list/migrate`` never import torch.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import math
import os
import re
import stat
from collections import deque
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from gpucnn import codehash, typed
from gpucnn.hardware import HardwareReport
from gpucnn.results import SCHEMA, SCHEMA_V1, Result, atomic_write_text, cache_dir, write_temp_file
from gpucnn.specs import SPECS
from gpucnn.typed import RecordError

__all__ = [
    "FUTURE_SLACK", "MAX_BYTES", "MAX_DEPTH", "OLDER_AFTER_DAYS", "Record", "RecordError", "add", "archive_dir",
    "beside", "build_date", "build_time", "check_dates", "digest", "migrate", "newest_first", "parse", "read",
    "record_files", "record_name", "records", "slug", "status", "status_flags", "validate",
]

# The two real records are 0.6 MB each; 200 MB once took 15 s and 846 MB of RAM per build.
MAX_BYTES = 5_000_000
# Real records nest 9 levels deep; a deep document would exhaust the parser's recursion.
MAX_DEPTH = 32
# An archived result recorded more than this many days before the build date is "older".
OLDER_AFTER_DAYS = 365
# Points the archive (every reader, and `results add`) at another folder.
RESULTS_DIR_ENV = "GPUCNN_RESULTS_DIR"


def archive_dir() -> Path:
    """``$GPUCNN_RESULTS_DIR``; else ``results/`` of the source checkout; else ``./results``."""
    if os.environ.get(RESULTS_DIR_ENV):
        return Path(os.environ[RESULTS_DIR_ENV])
    repo = Path(__file__).resolve().parent.parent
    if (repo / "mkdocs.yml").is_file():
        return repo / "results"
    return Path.cwd() / "results"


# --- strict JSON ----------------------------------------------------------------

def _no_constant(name: str) -> float:
    raise RecordError(f"{name} is not a number JSON allows (NaN and Infinity are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise RecordError(f"{text[:20]} is too large a number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 20:  # beyond any count or byte size; float() of it would overflow
        raise RecordError(f"{text[:20]}... is too large a number")
    return int(text)


class _BadNumber:
    """Stands for a number the strict parser refuses, so that its field path can be found."""


def _bad_number_path(text: str) -> str | None:
    """The field path of the first NaN, Infinity or huge number in ``text`` (already known to hold one)."""
    def bad_float(t: str) -> Any:
        return _BadNumber() if not math.isfinite(float(t)) else 0.0

    try:
        doc = json.loads(text, parse_constant=lambda _: _BadNumber(), parse_float=bad_float,
                         parse_int=lambda t: _BadNumber() if len(t.lstrip("-")) > 20 else 0)
    except (ValueError, RecursionError):
        return None
    todo: list[tuple[Any, list[Any]]] = [(doc, [])]
    while todo:  # breadth first, in document order
        value, parts = todo.pop(0)
        if isinstance(value, _BadNumber):
            return _path(parts) or None
        if isinstance(value, dict):
            todo.extend((v, [*parts, k]) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((v, [*parts, i]) for i, v in enumerate(value))
    return None


def _depth(doc: Any) -> int:
    """Nesting depth, without recursion (a deep document must not raise RecursionError)."""
    deepest, todo = 0, deque([(doc, 1)])
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            todo.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def loads(text: str) -> Any:
    """Parse strict JSON within the size and depth limits; RecordError says what is wrong."""
    if len(text) > MAX_BYTES:
        raise RecordError(f"larger than the {MAX_BYTES // 1_000_000} MB a record may be")
    try:
        doc = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise RecordError(f"nested more than {MAX_DEPTH} levels deep") from None
    except RecordError as exc:  # NaN, Infinity or a huge number: say where it is
        where = _bad_number_path(text)
        raise RecordError(f"{where}: {exc}" if where else str(exc)) from None
    if _depth(doc) > MAX_DEPTH:
        raise RecordError(f"nested more than {MAX_DEPTH} levels deep")
    return doc


# --- the JSON Schema ------------------------------------------------------------

@cache
def json_schema() -> dict[str, Any]:
    """``results.schema.json``, shipped with the package."""
    return json.loads(resources.files("gpucnn").joinpath("results.schema.json").read_text(encoding="utf-8"))


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


def is_date_time(value: object) -> bool:
    """A full ISO 8601 / RFC 3339 date-time with an offset: ``2026-11-26T03:42:53+00:00``."""
    if not isinstance(value, str):
        return True  # the schema's "type" reports a non-string
    if not _DATE_TIME.match(value):
        return False
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # 2026-02-30T...
        return False
    return True


@cache
def _validator() -> Any:
    # jsonschema imports in ~0.1 s; only reading records needs it.
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=())  # only our own strict date-time check
    checker.checks("date-time")(is_date_time)
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=checker)


def _path(parts: Any) -> str:
    text = ""
    for p in parts:
        if not isinstance(p, int):
            p = typed.key_name(p)  # a record's own key: escaped and short where it must be
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = {dict: "an object", list: "an array"}.get(type(value), type(value).__name__)
    text = text.encode("ascii", "backslashreplace").decode()  # one printable line
    return text if len(text) <= 40 else text[:37] + "..."


_TYPE_WORDS = {"object": "an object", "array": "an array", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _message(error: Any) -> str:
    """One jsonschema error as ``<path>: <what is wrong>``, in the words of the old validator."""
    path = _path(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    where = path
    if kind == "required":
        missing = next(n for n in expected if n not in value)
        return f"{_path([*error.absolute_path, missing])}: missing"
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        unknown = sorted(set(value) - known)
        return f"{_path([*error.absolute_path, unknown[0]])}: unknown field"
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        what = " or ".join(_TYPE_WORDS.get(t, t) for t in types if t != "null")
        if "null" in types:
            what += " or null"
        text = f"expected {what}, got {_show(value)}"
    elif kind in ("enum", "const"):
        choices = expected if kind == "enum" else [expected]
        text = f"expected one of {', '.join(str(c) for c in choices)}, got {_show(value)}"
    elif kind == "minItems":
        text = f"expected at least {expected} item(s), got {len(value)}"
    elif kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        text = f"expected a number {sign} {expected:g}, got {_show(value)}"
    elif kind == "minLength":
        text = "expected a non-empty string"
    elif kind == "maxLength":
        text = f"longer than {expected} characters"
    elif kind == "pattern":
        text = f"expected {error.schema.get('description') or 'other characters'}, got {_show(value)}"
    elif kind == "format":
        text = f"expected a full ISO 8601 date-time such as 2026-11-26T03:42:53+00:00, got {_show(value)}"
    elif kind in ("anyOf", "oneOf"):
        # e.g. a name or null: report the name's problem, which is what the author meant
        best = min(error.context, key=lambda e: (e.validator == "type", len(e.absolute_path)))
        return _message(best)
    else:
        text = error.message.encode("ascii", "backslashreplace").decode()[:80]
    return f"{where}: {text}" if where else text


# Local paths must not be published (the user's name is often in them), and a
# record has no business naming one: any absolute path is refused.
_ABSOLUTE_PATH = re.compile(
    r"(?:^|[\s'\"=(\[,;])"
    r"(?:/[^\s/'\"]+/"  # /tmp/..., /opt/..., /home/alice/...
    r"|/(?:tmp|home|root|opt|usr|var|etc|mnt|srv|work|private|Users|Volumes)\b"  # a bare root folder
    r"|~[\\/]|[A-Za-z]:[\\/]|\\\\[^\s\\]+\\"  # ~/..., C:/Users, C:\Users, \\server\share
    r"|file://)",
    re.IGNORECASE,
)


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a document, keys included, with its path (iteratively: depth is checked before)."""
    found: list[tuple[str, str]] = []
    todo: list[tuple[Any, str]] = [(value, path)]
    while todo:
        v, p = todo.pop()
        if isinstance(v, str):
            found.append((p, v))
        elif isinstance(v, dict):
            for k, x in v.items():
                where = f"{p}.{k}" if p else str(k)
                found.append((where, str(k)))
                todo.append((x, where))
        elif isinstance(v, list):
            todo.extend((x, f"{p}[{i}]") for i, x in enumerate(v))
    return sorted(found)


def validate(doc: Any) -> None:
    """Check a parsed results document; raise RecordError naming the first bad field.

    The JSON Schema, then local paths, then each result read as its typed data.
    """
    _check(doc)


def _check(doc: Any, passed_before: bool = False) -> tuple[HardwareReport, tuple[Result, ...]]:
    """The schema and path checks (skipped where this exact text ``passed_before``), then the typed read."""
    if passed_before:
        return _read_results(doc)
    errors = list(_validator().iter_errors(doc))
    if errors:
        from jsonschema.exceptions import best_match

        # A wrong value says more than a missing neighbour (and the old validator, which checked
        # fields in order, reported it): "missing" only when nothing else is wrong.
        raise RecordError(_message(best_match([e for e in errors if e.validator != "required"] or errors)))
    for path, text in _strings(doc):
        if _ABSOLUTE_PATH.search(text):
            raise RecordError(f"{path}: contains an absolute path; records must not name the machine's folders "
                              "or users")
    return _read_results(doc)


def _current(result: dict[str, Any], schema: str) -> bool:
    """Whether a stored result is of its experiment's current version (only those are read as typed data)."""
    spec = SPECS.get(result["experiment"])
    version = result.get("version", 1) if schema != SCHEMA_V1 else 1
    return spec is not None and spec.version == version


def _read_results(doc: dict[str, Any]) -> tuple[HardwareReport, tuple[Result, ...]]:
    """The document's hardware and results, each current result's data read through its typed reader."""
    out = []
    try:
        hardware = HardwareReport.from_dict(doc["hardware"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"hardware: cannot be read ({type(exc).__name__}: {exc})") from None
    seen: dict[str, int] = {}
    for i, r in enumerate(doc["results"]):
        # Record.find draws the first of two results with the same params and would silently drop the other.
        same = seen.setdefault(json.dumps([r["experiment"], r["params"]], sort_keys=True), i)
        if same != i:
            params = ", ".join(f"{k}={v}" for k, v in sorted(r["params"].items()))
            raise RecordError(f"results[{i}]: repeats results[{same}] ({r['experiment']}, {params})")
        data = None
        if _current(r, doc["schema"]):
            # each result's own hardware report, as Result.from_dict attaches it
            data = typed.read(SPECS[r["experiment"]].data, r["data"], f"results[{i}].data",
                              HardwareReport.from_dict(r["hardware"]))
        try:
            result = Result.from_dict(r, reused=True)
        except KeyError as exc:
            # only a superseded result (not read as typed data) can get here
            raise RecordError(f"results[{i}].data: cannot be read: no field {_show(exc.args[0])}") from None
        except (TypeError, ValueError, AttributeError, IndexError):
            raise RecordError(f"results[{i}].data: cannot be read: a field has the wrong type or shape") from None
        if data is not None:
            result.__dict__["typed"] = data  # Result.typed is a cached_property: already read
        out.append(result)
    return hardware, tuple(out)


# --- records -----------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One archived results document, read and checked."""

    name: str  # the file name in the archive
    document: dict[str, Any]
    hardware: HardwareReport
    results: tuple[Result, ...]

    @property
    def schema(self) -> str:
        return self.document["schema"]

    @property
    def generated_at(self) -> str:
        return self.document["generated_at"]

    @property
    def measured_an_accelerator(self) -> bool:
        """Whether any result ran on an accelerator: ``gpucnn bench --device cpu`` on a GPU machine records
        the GPU in its hardware, but measures only the CPU."""
        return any(r.params.get("device", "cpu") != "cpu" for r in self.results)

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
    """Parse and check one record; RecordError messages start with ``name``."""
    key = _checks_key(text)
    passed = _passed_checks()
    try:
        doc = loads(text)
        hardware, results = _check(doc, passed_before=key in passed)
    except RecordError as exc:
        raise RecordError(f"{name}: {exc}") from None
    if key not in passed:
        _remember_passed(passed, key)
    return Record(file_name or Path(name).name, doc, hardware, results)


# --- checks a record's text passed before ------------------------------------------
# The schema and path checks are most of the time it takes to read a record (more with every record
# added), and every
# build reads the same files as the last. So the keys of texts that passed them are kept in the cache
# folder: a key covers the text and what the checks are made of (this module, the schema, jsonschema's
# version). Strict JSON and depth are checked, and the typed data read, every time.

_PASSED_FILE = "records-checked.json"
_PASSED_KEEP = 64  # the archive's records and a few old versions of them


@cache
def _checks_salt() -> bytes:
    from importlib.metadata import version

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(json.dumps(json_schema(), sort_keys=True).encode())
    digest.update(version("jsonschema").encode())
    return digest.digest()


def _checks_key(text: str) -> str:
    return hashlib.sha256(_checks_salt() + text.encode("utf-8", "surrogatepass")).hexdigest()


def _passed_checks() -> list[str]:
    try:
        keys = json.loads((cache_dir() / _PASSED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: every record is checked
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _remember_passed(passed: list[str], key: str) -> None:
    folder = cache_dir()
    if not folder.is_dir():  # `gpucnn results` run outside a checkout leaves no cache folder behind
        return
    with contextlib.suppress(OSError):  # an unwritable cache costs the next build its speed only
        atomic_write_text(folder / _PASSED_FILE, json.dumps([*passed, key][-_PASSED_KEEP:]))


# Pages ask for the archive many times per build: a file unchanged since it was
# read (same size and modification time) is not parsed and checked again.
_READ: dict[tuple[str, str, int, int], Record] = {}


def _file_info(path: Path, name: str) -> os.stat_result:
    """The ``lstat`` of a record file that may be read: a regular file (not a link) of at most ``MAX_BYTES``.

    A symlink, folder, FIFO or device is refused before it is opened: ``/dev/zero`` reports size 0 and never
    ends, and a FIFO blocks its reader.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise RecordError(f"{name}: no such file") from None
    except OSError as exc:
        raise RecordError(f"{name}: cannot be read ({_os_words(exc)})") from None
    _regular(info.st_mode, name)
    if info.st_size > MAX_BYTES:
        raise RecordError(f"{name}: larger than the {MAX_BYTES // 1_000_000} MB a record may be")
    return info


def _read_text(path: Path, name: str) -> str:
    """A record file's text (``_file_info``'s checks), read without following a link and without blocking,
    checked again once open, and at most ``MAX_BYTES + 1`` bytes whatever its size said."""
    _file_info(path, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise RecordError(f"{name}: cannot be read ({_os_words(exc)})") from None
    try:
        with os.fdopen(fd, "rb") as f:
            _regular(os.fstat(f.fileno()).st_mode, name)  # replaced between lstat and open
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RecordError(f"{name}: cannot be read ({_os_words(exc)})") from None
    if len(data) > MAX_BYTES:
        raise RecordError(f"{name}: larger than the {MAX_BYTES // 1_000_000} MB a record may be")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{name}: not UTF-8 text (a record is a JSON text file)") from None


def _regular(mode: int, name: str) -> None:
    if stat.S_ISLNK(mode):
        raise RecordError(f"{name}: is a symbolic link; a record must be a regular file of its own")
    if stat.S_ISDIR(mode):
        raise RecordError(f"{name}: is a folder, not a record file")
    if not stat.S_ISREG(mode):
        raise RecordError(f"{name}: not a regular file (a FIFO, device or socket); a record is a JSON file")


def _os_words(exc: OSError) -> str:
    """An OSError in words (``permission denied``), not an exception name."""
    return (exc.strerror or exc.__class__.__name__).lower()


def read(path: Path, name: str | None = None) -> Record:
    """Read and check a record file: a regular file (not a link) of at most ``MAX_BYTES``."""
    name = name or str(path)
    info = _file_info(path, name)
    seen = (str(path.resolve()), name, info.st_size, info.st_mtime_ns)
    record = _READ.get(seen) or parse(_read_text(path, name), name, path.name)
    _READ[seen] = record
    check_dates(record, name)  # every time: the build date is not part of what _READ keys on
    return record


def record_files(directory: Path | None = None) -> list[Path]:
    """The archive's entries, by name: the one listing that every reader uses (the pages, the build's archive
    digest, ``gpucnn results list``, ``add``'s duplicate check).

    An entry is every name ending in ``.json`` that does not start with ``.``, whatever it is (a file, a link, a
    folder, a FIFO): ``read`` checks each before reading a byte, and refuses it naming it. Hidden entries are
    ignored by every reader: ``add`` writes its temporary file as ``.add-*`` beside the records, and a build
    running at that moment must neither read nor fail on it. ``README.md`` and other names are not records.

    Raises RecordError when ``GPUCNN_RESULTS_DIR`` names a folder that does not exist, or when the archive
    folder is a file: a build would otherwise publish a site without its archived series, and say nothing.
    An unset variable with no ``results/`` (a fork that removed it) is an empty archive.
    """
    directory = directory or archive_dir()
    if not directory.is_dir():
        if directory.exists():
            raise RecordError(f"{directory}: the archive folder is a file (set {RESULTS_DIR_ENV} to a folder)")
        if os.environ.get(RESULTS_DIR_ENV) and Path(os.environ[RESULTS_DIR_ENV]) == directory:
            raise RecordError(f"{RESULTS_DIR_ENV}={directory}: no such folder (unset it to use results/)")
        return []
    try:
        names = [e.name for e in os.scandir(directory)]  # names only: nothing is opened or followed here
    except OSError as exc:
        raise RecordError(f"{directory}: the archive folder cannot be read ({_os_words(exc)})") from None
    return [directory / n for n in sorted(names) if n.endswith(".json") and not n.startswith(".")]


def records(directory: Path | None = None) -> list[Record]:
    """Every archived record, checked; the first bad file raises RecordError naming it."""
    files = record_files(directory)
    directory = directory or archive_dir()
    # A file name may hold anything a PR puts there: the build log and the CLI get it as printable text.
    return [read(p, typed.printable(f"{directory.name}/{p.name}")) for p in files]


def digest(recs: list[Record]) -> str:
    """A digest of the archive as read (each record's file name and checked document), for the page caches' keys.

    Made from ``records()``, not from the folder: it sees exactly the entries the pages draw from, and reads no
    byte that ``read`` did not check first.
    """
    sha = hashlib.sha256()
    for record in recs:
        sha.update(record.name.encode("utf-8", "surrogateescape") + b"\0" + _canonical(record.document).encode()
                   + b"\0")
    return sha.hexdigest()[:16]


def newest_first(recs: list[Record] | tuple[Record, ...]) -> list[Record]:
    """Records from newest to oldest: by the record's ``generated_at`` (as an instant), then its file name.

    A record cannot claim to be newer than the build (``read`` refuses a date after it), so its date decides
    only among records that are honest enough to pass that check.
    """
    return sorted(recs, key=lambda r: (_instant(r.generated_at), r.name), reverse=True)


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


# --- may an archived result be drawn? -------------------------------------------

# The latest instant SOURCE_DATE_EPOCH may name: datetime (and MkDocs, which reads it too) ends at year 9999.
_MAX_EPOCH = int(_dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.timezone.utc).timestamp())


def build_time() -> _dt.datetime:
    """The build's instant (UTC): ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now.

    Raises RecordError, in one line, for a value that is not a whole number of seconds from 0 to the end of
    year 9999: MkDocs reads the same variable and would fail on it with a traceback, after writing part of the
    site.
    """
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None:
        return _dt.datetime.now(_dt.timezone.utc)
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise RecordError(f"SOURCE_DATE_EPOCH: expected a whole number of seconds since 1970-01-01, got "
                          f"{_show(raw)}")
    if int(text) > _MAX_EPOCH:
        raise RecordError(f"SOURCE_DATE_EPOCH: {_show(text)} is after the year 9999")
    return _dt.datetime.fromtimestamp(int(text), _dt.timezone.utc)


def build_date() -> _dt.date:
    """The build's date (UTC): see ``build_time``."""
    return build_time().date()


# A record from a machine whose clock is a little ahead, or from a time zone east of the build's, is not refused.
FUTURE_SLACK = _dt.timedelta(days=1)


def _instant(text: str) -> _dt.datetime:
    """A checked date-time of a record (``is_date_time``) as an aware instant."""
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_dates(record: Record, name: str, now: _dt.datetime | None = None) -> None:
    """Refuse a record, or a result in it, dated after the build (``build_time``) plus ``FUTURE_SLACK``.

    "Newest record of a model wins": a record dated 2100 would otherwise take its model's place on every page.
    """
    limit = (now or build_time()) + FUTURE_SLACK
    dated = [("generated_at", record.generated_at)]
    dated += [(f"results[{i}].measured_at", r.measured_at) for i, r in enumerate(record.results)]
    for field, when in dated:
        if _instant(when) > limit:
            raise RecordError(f"{name}: {field}: {_show(when)} is after the build date "
                              f"({limit - FUTURE_SLACK:%Y-%m-%d}, a day allowed for clocks)")


@cache
def _code_hash_now(experiment: str) -> str | None:
    try:
        return codehash.current_code_hash(experiment)
    except codehash.CodeHashError:
        return None


def status_flags(record: Record, result: Result, today: _dt.date | None = None) -> frozenset[str]:
    """Every flag that applies to an archived result: ``superseded``, ``code-changed``, ``older``.

    * superseded: the result's experiment version differs from the code's
      (``SPECS``), or the code no longer has the experiment;
    * code-changed: same version, but its code hash differs from the code's, or
      is unknown (a ``gpucnn-results/1`` record that was not migrated);
    * older: the record was generated more than ``OLDER_AFTER_DAYS`` days before
      ``today`` (default: ``build_date()``).
    """
    flags = set()
    spec = SPECS.get(result.experiment)
    if spec is None or result.version != spec.version:
        flags.add("superseded")
    else:
        now = _code_hash_now(result.experiment)
        if result.code_hash is None or now is None or result.code_hash != now:
            flags.add("code-changed")
    generated = _dt.date.fromisoformat(record.generated_at[:10])
    if ((today or build_date()) - generated).days > OLDER_AFTER_DAYS:
        flags.add("older")
    return frozenset(flags)


def status(record: Record, result: Result, today: _dt.date | None = None) -> str:
    """``ok``, ``superseded``, ``code-changed`` or ``older``: the first of ``status_flags`` in that order.

    A superseded result is not drawn; a code-changed or older one is drawn, so
    marked in its label (use ``status_flags`` to mark both).
    """
    flags = status_flags(record, result, today)
    return next((s for s in ("superseded", "code-changed", "older") if s in flags), "ok")


# --- adding and migrating ---------------------------------------------------------

def slug(text: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-") or "unknown"


def record_name(doc: dict[str, Any]) -> str:
    """``<device-slug>-<YYYY-MM-DD>.json``: the accelerator if any, else the CPU; only [a-z0-9-]."""
    hw = doc["hardware"]
    device = hw["accelerator"]["name"] if hw.get("accelerator") else hw["cpu"]["model"]
    # generated_at is a checked full date-time; its date, re-formatted, is safe in a file name
    date = _dt.datetime.fromisoformat(doc["generated_at"].replace("Z", "+00:00")).date().isoformat()
    return f"{slug(device)}-{date}.json"


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _duplicate_of(doc: dict[str, Any], directory: Path) -> Path | None:
    """An archive file holding exactly this document, if any."""
    if not directory.is_dir():  # `add` makes a new archive folder (or names one that is a file)
        return None
    mine = _canonical(doc)
    for path in record_files(directory):
        try:
            if _canonical(json.loads(_read_text(path, path.name))) == mine:
                return path
        except (ValueError, RecursionError):  # RecordError is a ValueError
            continue  # a bad archive file is reported by records(), not here
    return None


def add(source: Path, directory: Path | None = None, force: bool = False) -> Path:
    """Check the record in ``source`` and store it in the archive; return its path.

    Refuses a record already in the archive, byte for byte as JSON, unless
    ``force``. Never overwrites: the file is written to a temporary name, then
    hard-linked to ``<name>.json``, ``<name>-2.json``, ... ``os.link`` fails if
    the target exists, so two processes adding at the same moment each get
    their own name.
    """
    record = read(Path(source))
    for i, r in enumerate(record.document["results"]):
        if r["experiment"] not in SPECS:
            raise RecordError(f"{source}: results[{i}].experiment: unknown experiment {_show(r['experiment'])}")
    directory = directory or archive_dir()
    if not force:
        same = _duplicate_of(record.document, directory)
        if same is not None:
            raise RecordError(f"{source}: the archive already holds this record as {same.name} "
                              "(add --force to add it again)")
    text = json.dumps(record.document, indent=1) + "\n"
    if directory.exists() and not directory.is_dir():
        raise RecordError(f"{directory}: the archive folder is a file (set GPUCNN_RESULTS_DIR to a folder)")
    try:
        tmp = write_temp_file(directory, text, prefix=".add-")
    except OSError as exc:  # the temporary file's name would say nothing to the user: name the folder
        raise RecordError(f"{directory}: the archive folder cannot be written ({_os_words(exc)})") from None
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


def migrate_document(doc: dict[str, Any], commit: str | None = None, root: Path = codehash.REPO) -> dict[str, Any]:
    """A ``gpucnn-results/1`` document as ``gpucnn-results/2``: figures untouched.

    Each result gets ``version`` 1 (every result before versions existed) and the
    ``code_hash`` of its experiment at the commit it was made at: its own
    ``commit``, else the document's, else ``commit``. A ``commit`` that
    contradicts the record's is refused.

    Raises:
        RecordError: not a version-1 document, no commit known, or git cannot show
            the sources at that commit.
    """
    if doc["schema"] != SCHEMA_V1:
        raise RecordError(f"schema: already {doc['schema']}; only {SCHEMA_V1} records need migrating")
    if commit is not None and not codehash.COMMIT_HASH.fullmatch(commit):
        raise RecordError(f"--commit: expected a commit hash (4 to 40 hex digits), got {_show(commit)}")
    if commit and doc.get("commit") and not (doc["commit"].startswith(commit) or commit.startswith(doc["commit"])):
        raise RecordError(f"commit: the record says it was made at {doc['commit']}, not {commit}")
    new = copy.deepcopy(doc)
    new["schema"] = SCHEMA
    results = []
    for i, r in enumerate(new["results"]):
        at = r.get("commit") or doc.get("commit") or commit
        if not at:
            raise RecordError(f"results[{i}].commit: unknown; pass the commit the record was made at")
        try:
            code = codehash.code_hash_at(r["experiment"], at, root) if r["experiment"] in SPECS else None
        except codehash.CodeHashError as exc:
            raise RecordError(f"results[{i}]: {exc}") from None
        # version and code_hash next to the experiment's name, the rest in its order
        results.append({"experiment": r["experiment"], "version": 1, "code_hash": code,
                        **{k: v for k, v in r.items() if k != "experiment"}})
    new["results"] = results
    return new


def migrate(source: Path, commit: str | None = None, output: Path | None = None) -> Path:
    """Write ``source`` (a version-1 record) migrated to the current schema as a new file; return its path.

    ``output`` defaults to ``<source stem>.v2.json`` beside it; an existing file is never replaced.
    """
    record = read(Path(source))
    try:
        new = migrate_document(record.document, commit)
    except RecordError as exc:
        raise RecordError(f"{source}: {exc}") from None
    target = output or Path(source).with_name(f"{Path(source).stem}.v2.json")
    parse(json.dumps(new), str(target))  # the migrated record must pass every check
    try:
        with open(target, "x", encoding="utf-8") as f:
            f.write(json.dumps(new, indent=1) + "\n")
    except FileExistsError:
        raise RecordError(f"{target}: already exists; choose another --output") from None
    except OSError as exc:
        raise RecordError(f"{target}: cannot be written ({exc.__class__.__name__}: {exc.strerror})") from None
    return target
