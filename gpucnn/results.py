"""Results with their context: the experiment registry, the on-disk measurement
cache, provenance, and ``results.json``.

Every experiment is a function decorated with ``@experiment`` that returns a
dict of JSON-able values, ``Measurement``s and ``Sweep``s, and has an entry in
``gpucnn.specs.SPECS``: its version and the dataclass its data reads as
(``Result.typed``). Pages call ``run(fn, **params)``, which

* reuses a result already made in this build (Home and Summary reuse the
  figures of the other pages);
* else reuses a result from ``.cache/gpucnn`` whose key matches: the source of
  every gpucnn module the experiment runs (the harness included), its
  version and parameters, the hardware fingerprint, the torch version and the
  profile, provided the entry still reads as the experiment's data class and
  none of its figures beats the hardware's peak (else it measures again);
* else measures, and stores the result atomically.

A reused result keeps the date on which it was measured.

Torch is imported only by the functions that measure: the archive and the
CLI's ``results`` commands read results without it.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any

from gpucnn import codehash, typed
from gpucnn.hardware import HardwareReport, detect
from gpucnn.measurement import Measurement, Sweep
from gpucnn.profile import current_profile
from gpucnn.specs import SPECS
from gpucnn.typed import RecordError

# Routed through mkdocs' logger so the build log shows what was measured or
# reused. Only INFO: a WARNING would fail `mkdocs build --strict`.
log = logging.getLogger("mkdocs.plugins.gpucnn")

# The results.json schema this code writes. Version 2 added each result's experiment
# ``version`` and ``code_hash``; version 1 documents still load (version 1, hash unknown).
SCHEMA = "gpucnn-results/2"
SCHEMA_V1 = "gpucnn-results/1"
SCHEMAS = (SCHEMA_V1, SCHEMA)
EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {}


def experiment(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Register a function as an experiment that ``run`` can cache.

    Raises:
        TypeError: it has no entry in ``gpucnn.specs.SPECS`` (version and data
            class), or the entry names another module.
    """
    spec = SPECS.get(fn.__name__)
    if spec is None:
        raise TypeError(f"experiment {fn.__name__}() has no spec: add SPECS[{fn.__name__!r}] = Spec(module, version, "
                        "data class) in gpucnn/specs.py")
    if spec.module != fn.__module__:
        raise TypeError(f"experiment {fn.__name__}() is defined in {fn.__module__}, but its spec names {spec.module}")
    EXPERIMENTS[fn.__name__] = fn
    return fn


def _torch_version() -> str:
    import torch  # only where a measurement is made or described

    return torch.__version__


@dataclass(frozen=True)
class Result:
    """What one experiment produced, and where and when it was measured."""

    experiment: str
    params: dict[str, Any]
    data: dict[str, Any]
    measured_at: str  # ISO 8601, UTC
    profile: str
    torch: str
    commit: str | None
    hardware: HardwareReport
    key: str
    reused: bool = False
    elapsed_s: float = 0.0
    version: int = 1  # the experiment's version when measured (SPECS); 1 for schema-1 documents
    code_hash: str | None = None  # gpucnn.codehash of the code that measured it; None: unknown (schema 1)

    @property
    def date(self) -> str:
        return self.measured_at[:10]

    @cached_property
    def typed(self) -> Any:
        """The data as the experiment's frozen dataclass (``SPECS[experiment].data``).

        Raises:
            RecordError: the data does not fit that class; the message names the field
                (``data.sweep.points[2].shape: ...``).
        """
        spec = SPECS.get(self.experiment)
        if spec is None:
            raise RecordError(f"experiment: unknown experiment {self.experiment!r}")
        return typed.read(spec.data, encode(self.data), "data", self.hardware)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "version": self.version, "code_hash": self.code_hash,
            "params": self.params, "key": self.key,
            "measured_at": self.measured_at, "profile": self.profile, "torch": self.torch,
            "commit": self.commit, "hardware": self.hardware.to_dict(), "data": encode(self.data),
            "elapsed_s": self.elapsed_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], reused: bool = True) -> Result:
        hw = HardwareReport.from_dict(d["hardware"])
        return cls(
            experiment=d["experiment"], params=d["params"], data=decode(d["data"], hw),
            measured_at=d["measured_at"], profile=d["profile"], torch=d["torch"],
            commit=d.get("commit"), hardware=hw, key=d["key"], reused=reused,
            elapsed_s=float(d.get("elapsed_s") or 0.0),
            version=int(d.get("version", 1)), code_hash=d.get("code_hash"),
        )


def encode(value: Any) -> Any:
    """Turn Measurements and Sweeps into tagged JSON-able dicts."""
    if isinstance(value, Measurement):
        return {"__measurement__": value.to_dict()}
    if isinstance(value, Sweep):
        return {"__sweep__": {"points": [encode(p) for p in value.points], "stopped": value.stopped}}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(dataclasses.asdict(value))
    return value


def decode(value: Any, hw: HardwareReport | None = None) -> Any:
    """Inverse of ``encode``."""
    if isinstance(value, dict):
        if "__measurement__" in value:
            return Measurement.from_dict(value["__measurement__"], hw)
        if "__sweep__" in value:
            s = value["__sweep__"]
            return Sweep(tuple(decode(p, hw) for p in s["points"]), s["stopped"])
        return {k: decode(v, hw) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, hw) for v in value]
    return value


# --- code hashing: a changed experiment, or a changed harness, measures again ---

# The gpucnn package's folder: its modules are found by path, not by importlib.util.find_spec, which imports a
# module's parent packages to find it (gpucnn.experiments imports torch and scikit-learn: a second of an
# unchanged rebuild that hashes code and then reuses every page).
_PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(name: str) -> tuple[Path, bool] | None:
    """(source file, is a package) of a gpucnn module, without importing anything; None if there is none."""
    parts = name.split(".")
    if parts[0] != "gpucnn":
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), False
    return None


@cache  # code_hash walks every experiment's imports: shared modules are parsed once per build
def _gpucnn_imports(module_name: str) -> set[str]:
    found_file = _module_file(module_name)
    if found_file is None:
        return set()
    source, is_package = found_file
    tree = ast.parse(source.read_text())
    package = module_name if is_package else module_name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gpucnn"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("gpucnn"):
                found.add(base)
                # `from gpucnn import bench` imports a module, not a name
                found.update(f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}"))
    return found


def code_modules(module_name: str) -> set[str]:
    """A module and every gpucnn module it imports, transitively, with their packages."""
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_gpucnn_imports(name) - seen)
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
        parts = name.split(".")
        todo.extend({".".join(parts[:i]) for i in range(1, len(parts))} - seen)
    return seen


@cache
def code_hash(module_name: str) -> str:
    """Hash of the source of a module and every gpucnn module it imports, transitively."""
    digest = hashlib.sha256()
    for name in sorted(code_modules(module_name)):
        found_file = _module_file(name)
        if found_file is not None:
            digest.update(name.encode() + b"\0" + found_file[0].read_bytes())
    return digest.hexdigest()[:16]


def cache_key(fn: Callable[..., Any], params: dict[str, Any], fingerprint: str, torch_version: str, profile: str) -> str:
    """The cache key of one experiment run."""
    spec = SPECS.get(fn.__name__)
    material = json.dumps(
        {
            "experiment": fn.__name__, "version": spec.version if spec else None,
            "code": code_hash(fn.__module__), "params": params,
            "hardware": fingerprint, "torch": torch_version, "profile": profile,
        },
        sort_keys=True, default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def cache_dir() -> Path:
    """``$GPUCNN_CACHE_DIR``; else ``.cache/gpucnn`` in the source checkout; else under the current folder.

    Not simply the current folder: the notebook's kernel runs in docs/, and it
    must share the build's cache.
    """
    if os.environ.get("GPUCNN_CACHE_DIR"):
        return Path(os.environ["GPUCNN_CACHE_DIR"])
    repo = Path(__file__).resolve().parent.parent
    return (repo if (repo / "mkdocs.yml").is_file() else Path.cwd()) / ".cache" / "gpucnn"


def fresh_requested() -> bool:
    return os.environ.get("GPUCNN_FRESH", "").strip() not in ("", "0", "false", "no")


def write_temp_file(directory: Path, text: str, prefix: str = ".tmp-") -> Path:
    """Write ``text`` to a new, fully synced temporary file in ``directory``.

    The caller renames or links it into place, so readers never see half a file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half."""
    tmp = write_temp_file(path.parent, text, prefix=f".{path.name}.")
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's short commit hash, where git knows it."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


_BUILD: dict[str, Result] = {}
# The key of every result run() returned, in order: what a page showed, for the page cache (gpucnn.page_cache).
ASKED: list[str] = []
# The digest of the cache entry each result of this build was read from or written to (none: it was not written).
_ENTRY_DIGESTS: dict[str, str] = {}


def run(
    fn: Callable[..., dict[str, Any]],
    *,
    fresh: bool | None = None,
    hardware: HardwareReport | None = None,
    fingerprint: str | None = None,
    **params: Any,
) -> Result:
    """Run an experiment, or reuse its result from this build or the disk cache.

    Args:
        fn: a function registered with ``@experiment``.
        fresh: measure again even if cached (default: ``GPUCNN_FRESH``).
        hardware: the report to record (default: this machine's).
        fingerprint: the hardware fingerprint for the key (injectable for tests).
        **params: the experiment's parameters (JSON-able).
    """
    hw = hardware or detect()
    profile = current_profile().name
    torch_version = _torch_version()
    key = cache_key(fn, params, fingerprint or hw.fingerprint(), torch_version, profile)
    ASKED.append(key)
    if key in _BUILD:  # measured once per build, even with GPUCNN_FRESH
        return _BUILD[key]
    what = f"{fn.__name__}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    fresh = fresh_requested() if fresh is None else fresh
    path = cache_dir() / f"{fn.__name__}-{key}.json"
    if not fresh and path.exists():
        try:
            # Measured by this build's own process (for the notebook's kernel): not a reuse of an earlier build's.
            raw = path.read_bytes()
            result = _read_entry(raw, fn.__name__, key, reused=key not in _measured_in_build())
            # The checks a new measurement passes: its data fits the experiment's
            # class, and no figure beats the hardware (a corrupted or forged entry).
            check_reused(result, hw)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ImpossibleResultError) as exc:
            # INFO, not WARNING: a warning would fail `mkdocs build --strict`, and
            # measuring again is the complete remedy.
            log.info("gpucnn: %s: cache entry %s unreadable (%s: %s); measuring again",
                     what, path.name, type(exc).__name__, exc)
        else:
            log.info("gpucnn: %s reused (measured %s in %.1f s)", what, result.measured_at, result.elapsed_s)
            _ENTRY_DIGESTS[key] = hashlib.sha256(raw).hexdigest()
            _keep(result)
            return result
    start = time.perf_counter()
    data = fn(**params)
    elapsed = time.perf_counter() - start
    result = Result(
        experiment=fn.__name__, params=params, data=data,
        measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        profile=profile, torch=torch_version, commit=git_commit(), hardware=hw, key=key,
        reused=False, elapsed_s=elapsed, version=SPECS[fn.__name__].version,
        code_hash=_current_code_hash(fn.__name__),
    )
    try:
        result.typed  # noqa: B018 -- what it returns must fit its declared data class, as archived results must
    except RecordError as exc:
        raise RecordError(f"{what} returned data that does not fit {SPECS[fn.__name__].data.__name__} "
                          f"(gpucnn/specs.py): {exc}") from None
    log.info("gpucnn: %s measured in %.1f s", what, elapsed)
    if os.environ.get(SHARE_ENV):  # a build: its later processes (the notebook's kernel) inherit the list
        os.environ[MEASURED_ENV] = " ".join([*_measured_in_build(), key])
    try:
        text = json.dumps(result.to_dict())
        atomic_write_text(path, text)
        _ENTRY_DIGESTS[key] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    except OSError as exc:  # a read-only cache folder costs speed, not correctness
        log.info("gpucnn: could not write cache entry %s (%s)", path, exc)
    _keep(result)
    return result


def _read_entry(raw: bytes, experiment: str, key: str, *, reused: bool) -> Result:
    """A cache entry's result; ValueError (or KeyError, TypeError) if it is not ``experiment``'s under ``key``."""
    result = Result.from_dict(json.loads(raw), reused=reused)
    if result.key != key or result.experiment != experiment:
        raise ValueError("its key does not match")
    return result


def asked_since(first: int) -> list[Result]:
    """The results ``run`` returned since ``ASKED[first]``, each once, in order."""
    return [_BUILD[key] for key in dict.fromkeys(ASKED[first:]) if key in _BUILD]


def entry_digest(result: Result) -> str | None:
    """The digest of the cache entry this build read ``result`` from or wrote it to: the bytes a page showed, even
    if another build has replaced the file since. None where it was not written (an unwritable cache)."""
    return _ENTRY_DIGESTS.get(result.key)


def reuse_entry(experiment: str, key: str, digest: str) -> Result | None:
    """Register the cache entry a cached page was made from, as ``run`` would have when it rendered.

    Only if the entry is byte for byte the one the page showed (``digest``, from ``entry_digest``): it passed
    ``run``'s checks then. None if it is gone, changed or unreadable: the page is rendered again.
    """
    if key in _BUILD:  # asked for earlier in this build: the same figures only if from the same bytes
        return _BUILD[key] if _ENTRY_DIGESTS.get(key) == digest else None
    try:
        raw = (cache_dir() / f"{experiment}-{key}.json").read_bytes()
        if hashlib.sha256(raw).hexdigest() != digest:
            return None
        result = _read_entry(raw, experiment, key, reused=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    log.info("gpucnn: %s reused with its page (measured %s)", experiment, result.measured_at)
    _ENTRY_DIGESTS[key] = digest
    _keep(result)
    return result


def _current_code_hash(experiment: str) -> str | None:
    """The experiment's code hash (gpucnn.codehash); None where its source cannot be read (an installed wheel)."""
    try:
        return codehash.current_code_hash(experiment)
    except codehash.CodeHashError:
        return None


class ImpossibleResultError(ValueError):
    """A cached figure faster than the hardware allows (bench.ImpossibleResult, re-raised without torch)."""


def check_reused(result: Result, hardware: HardwareReport) -> None:
    """Check a cached result as a new one is checked: its data reads as its class, and no figure is impossible.

    Each Measurement is held to the peaks recorded with it (those of the hardware
    whose fingerprint is in the key), at the same margins as ``bench.measure``;
    the spec's ``unchecked`` fields (the article's flawed method) are skipped, as
    they were when measured.

    Raises:
        RecordError: the data does not fit the experiment's class (names the field).
        ImpossibleResultError: a figure beats the peak or the timer's resolution.
    """
    from gpucnn import bench  # the harness's own check and margins; needs torch, as measuring does

    data = result.typed
    spec = SPECS[result.experiment]
    unchecked = spec.unchecked
    resolution = time.get_clock_info("perf_counter").resolution
    for path, m in typed.measurements(data):
        if path.split(".")[1].split("[")[0] in unchecked:
            continue
        try:
            bench.check_possible(
                f"{path} ({m.name})", m.median, flops=m.flops, bytes_moved=m.bytes_moved,
                working_set_bytes=spec.working_set(m) if spec.working_set else m.bytes_moved, peak_flops=m.peak_flops, peak_bytes_per_s=m.peak_bytes_per_s,
                margin=bench.CPU_PEAK_MARGIN if m.device == "cpu" else bench.GPU_PEAK_MARGIN,
                cache=bench.cache_bytes(hardware, m.device), resolution_s=resolution,
            )
        except bench.ImpossibleResult as exc:
            raise ImpossibleResultError(str(exc)) from None


# The notebook page runs in a Jupyter kernel, another process. When this
# variable names a folder (the MkDocs hook sets it for the build), every
# process writes the results it uses there, so they land in results.json too.
SHARE_ENV = "GPUCNN_RESULTS_SHARE"


# The cache keys this build measured, for the processes it starts: the notebook's kernel reads from the
# cache what the build's own process measured for it, and must not call that "reused".
MEASURED_ENV = "GPUCNN_MEASURED_IN_BUILD"


def _measured_in_build() -> list[str]:
    return os.environ.get(MEASURED_ENV, "").split()


def _keep(result: Result) -> None:
    _BUILD[result.key] = result
    share = os.environ.get(SHARE_ENV)
    if share:
        try:
            atomic_write_text(Path(share) / f"{result.key}.json", json.dumps(result.to_dict()))
        except OSError as exc:
            log.info("gpucnn: could not share result %s (%s)", result.experiment, exc)


def shared_results() -> list[Result]:
    """Results that other processes of this build (the notebook's kernel) wrote to ``$GPUCNN_RESULTS_SHARE``."""
    share = os.environ.get(SHARE_ENV)
    if not share or not Path(share).is_dir():
        return []
    found = []
    for path in sorted(Path(share).glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            result = Result.from_dict(json.loads(path.read_text()), reused=False)
            if result.key not in _BUILD:  # this process's own results are in _BUILD already
                found.append(result)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("gpucnn: shared result %s unreadable (%s)", path.name, exc)
    return found


def build_results() -> list[Result]:
    """Every result made or reused in this build, in the order first asked for, then those of other processes."""
    return list(_BUILD.values()) + shared_results()


# torch.utils.benchmark's Measurement warns of a result whose IQR exceeds this fraction of its median.
NOISY_IQR_FRACTION = 0.1


def measurements_in(value: Any) -> list[Measurement]:
    """Every Measurement in a result's data, sweeps and nested dicts and lists included."""
    if isinstance(value, Measurement):
        return [value]
    if isinstance(value, Sweep):
        return list(value.points)
    if isinstance(value, dict):
        return [m for v in value.values() for m in measurements_in(v)]
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in measurements_in(v)]
    return []


def noisy_points(results: list[Result], fraction: float = NOISY_IQR_FRACTION) -> str:
    """A build-log line on points whose runs spread widely (IQR over ``fraction`` of the median), or "".

    Not on a page: the pages show every point's IQR. It tells whoever rebuilds the site that the machine was
    busy or throttling while it measured, so that they rebuild on an idle one before publishing.
    """
    points = [(r, m) for r in results for m in measurements_in(r.data)]
    noisy = sorted(((m.iqr / m.median, r, m) for r, m in points if m.median > 0 and m.iqr > fraction * m.median),
                   key=lambda t: -t[0])
    if not noisy:
        return ""
    worst = ", ".join(f"{r.experiment}: {m.name} on {m.device} {100 * spread:.0f} %" for spread, r, m in noisy[:5])
    return (f"gpucnn: {len(noisy)} of {len(points)} points spread by more than {100 * fraction:.0f} % of their "
            f"median between runs (IQR); the widest: {worst}. A busy or throttling machine? Rebuild on an idle one "
            "with GPUCNN_FRESH=1 before publishing its figures.")


def latest_per_experiment(results: list[Result]) -> list[Result]:
    """One result per (experiment, params), the latest measured, in the order first seen.

    A build measures each experiment once, but the notebook's kernel keys its cache with the code it
    imported: code edited during a build gives it a second key, and a second result. An archive refuses a
    record holding both (``Record.find`` could draw only one), so results.json keeps the newer.
    """
    latest: dict[str, Result] = {}
    for r in results:
        key = json.dumps([r.experiment, r.params], sort_keys=True, default=str)
        kept = latest.get(key)
        if kept is not None:
            newer, older = (r, kept) if r.measured_at >= kept.measured_at else (kept, r)
            log.info("gpucnn: results.json keeps %s's result measured %s, not the one of %s (code changed "
                     "during the build?)", r.experiment, newer.measured_at, older.measured_at)
            r = newer
        latest[key] = r
    return list(latest.values())


def results_document(results: list[Result] | None = None, hardware: HardwareReport | None = None) -> dict[str, Any]:
    """The ``results.json`` document: this build's measurements with provenance, one per experiment and params."""
    hw = hardware or detect()
    return {
        "schema": SCHEMA,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": current_profile().name,
        "torch": _torch_version(),
        "commit": git_commit(),
        "hardware": hw.to_dict(),
        "results": [r.to_dict() for r in latest_per_experiment(build_results() if results is None else results)],
    }


def write_results_json(path: Path, results: list[Result] | None = None) -> None:
    atomic_write_text(path, json.dumps(results_document(results), indent=1))
