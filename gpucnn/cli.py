"""The ``gpucnn`` command: hardware report, the standard benchmark suite, results.

Bad input gets one line on stderr and exit code 2, checked before anything is
measured, so that nothing measured is lost. Modules are imported per command:
``results`` needs no torch (importing it costs seconds), and the commands that
do import it with stderr captured, so that what torch prints at import (such as
a CUDA build's "No CUDA runtime is found") never precedes the one line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


def _fail(message: str) -> int:
    # The message may hold a record's key or a file name: one line, no escape sequences, whatever they hold.
    print(f"gpucnn: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpucnn", description="Measure why GPUs train CNNs fast, on this machine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    info = sub.add_parser("info", help="print the hardware report of this machine")
    info.add_argument("--json", action="store_true", help="print the report as JSON")

    bench = sub.add_parser("bench", help="run the standard suite: matmul sweep, copy bandwidth, small-op latency")
    bench.add_argument("--device", default="auto", help="auto|cpu|cuda|mps|xpu (default: auto = the accelerator if present, and the CPU)")
    bench.add_argument("--quick", action="store_true", help="use the quick profile (same as GPUCNN_PROFILE=quick)")
    bench.add_argument("--json", metavar="PATH", help="also write the results, in results.json format, to PATH "
                                                      "(an existing file only with --force)")
    bench.add_argument("--force", action="store_true", help="let --json replace an existing file")
    bench.add_argument("--fresh", action="store_true", help="measure again even where the cache has a result")

    results = sub.add_parser("results", help="the archive of results from other machines (results/)")
    results_sub = results.add_subparsers(dest="results_command", required=True, parser_class=_Parser)
    add = results_sub.add_parser("add", help="validate a results.json record and add it to the archive")
    add.add_argument("file", metavar="FILE", help="a results.json from a build or from gpucnn bench --json")
    add.add_argument("--force", action="store_true", help="add it even if the archive already holds the same record")
    migrate = results_sub.add_parser(
        "migrate", help="write a gpucnn-results/1 record as gpucnn-results/2 (code hashes from its commit, via git)")
    migrate.add_argument("file", metavar="FILE", help="a gpucnn-results/1 results.json")
    migrate.add_argument("--commit", help="the commit it was made at (default: the one the record names)")
    migrate.add_argument("--output", "-o", metavar="PATH", help="where to write it (default: FILE.v2.json beside it)")
    results_sub.add_parser("list", help="list the archived records")
    return parser


def _check_profile() -> None:
    from gpucnn.profile import ProfileError, current_profile

    try:
        current_profile()
    except ProfileError as exc:
        raise UsageError(f"GPUCNN_PROFILE: {exc}") from None


def _devices(requested: str) -> list[str]:
    from gpucnn.hardware import ACCELERATOR_TYPES, accelerator_type

    present = accelerator_type()
    if requested == "auto":
        return ["cpu"] + ([present] if present else [])
    if requested == "cpu":
        return ["cpu"]
    if requested not in ACCELERATOR_TYPES:
        raise UsageError(f"unknown device {requested!r}: choose auto, cpu, {', '.join(ACCELERATOR_TYPES)}")
    if requested != present:
        raise UsageError(f"device {requested!r} is not present on this machine "
                         f"(present: cpu{', ' + present if present else ''})")
    return [requested]


def _check_json_path(path: str, force: bool = False) -> Path:
    """Refuse a ``--json`` path that could never be written, before anything is imported or measured.

    A symlink is followed (the link stays, its target is written); a FIFO, a
    device or a socket is refused, since the atomic rename that protects a
    results file would replace it. An existing file is replaced only with
    ``force``: it may be an archived record (``results add`` and ``results
    migrate`` never overwrite either).
    """
    if not path:
        raise UsageError("--json: the path is empty")
    if path.endswith(("/", os.sep)):
        raise UsageError(f"--json {path}: names a folder; give a file path")
    target = Path(path)
    try:
        info = target.stat()  # follows a symlink
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"--json {path}: {exc.strerror}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"--json {path}: is a folder, not a file")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UsageError(f"--json {path}: not a regular file (a FIFO, device or socket); give a file path")
    if info is not None and not force:
        raise UsageError(f"--json {path}: already exists; choose another path, or add --force to replace it")
    resolved = target.resolve() if target.is_symlink() else target
    parent = resolved.parent if str(resolved.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--json {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):  # the atomic write needs a temporary file beside the target
        raise UsageError(f"--json {path}: folder {parent} is not writable")
    return resolved


def _claim_json_path(target: Path, shown: str) -> bool:
    """Create (or open for appending) the ``--json`` file now, so a path that cannot be written fails before measuring.

    Returns True when the file was created here, so that it can be removed
    again if the run does not finish.
    """
    try:
        with open(target, "x"):
            return True
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"--json {shown}: cannot be created: {exc.strerror or exc}") from None
    try:
        with open(target, "a"):  # appends nothing: checks that the file may be written, keeps its content
            return False
    except OSError as exc:
        raise UsageError(f"--json {shown}: not writable: {exc.strerror or exc}") from None


@contextmanager
def stderr_captured() -> Iterator[None]:
    """Capture file descriptor 2 in the block: torch's C++ and logging output at import and at its first
    device query (a CUDA build without a GPU prints "No CUDA runtime is found") go there, not through ``print``.

    The capture is dropped when the block succeeds or stops on bad input (its one
    line says what is wrong), and written out when anything else fails, so that
    a real failure is never hidden.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        show = True
        try:
            yield
            show = False
        except UsageError:
            show = False
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if show:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
                sys.stderr.flush()


def quiet_import(*names: str) -> list[Any]:
    """Import modules with stderr captured (``stderr_captured``)."""
    with stderr_captured():
        return [importlib.import_module(n) for n in names]


def cmd_info(args: argparse.Namespace) -> int:
    with stderr_captured():
        quiet_import("torch", "gpucnn.render")
        from gpucnn.hardware import detect
        from gpucnn.render import hardware_table

        hw = detect()
    print(json.dumps(hw.to_dict(), indent=2) if args.json else hardware_table(hw), end="\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.quick:
        os.environ["GPUCNN_PROFILE"] = "quick"
    _check_profile()
    json_path = _check_json_path(args.json, args.force) if args.json is not None else None
    with stderr_captured():
        quiet_import("torch", "torch.utils.benchmark", "gpucnn.results", "gpucnn.render",
                     "gpucnn.experiments.latency", "gpucnn.experiments.matmul", "gpucnn.experiments.memory")
        devices = _devices(args.device)

    from gpucnn.experiments.latency import small_op_latency
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.render import suite_table
    from gpucnn.results import run, write_results_json

    created = _claim_json_path(json_path, args.json) if json_path else False
    finished = False
    try:
        jobs = [(fn, d) for d in devices for fn in (matmul_sweep, copy_bandwidth, small_op_latency)]
        results = []
        progress = _progress(len(jobs))
        for i, (fn, device) in enumerate(jobs):
            progress(i, f"{fn.__name__} on {device}")
            results.append(run(fn, device=device, fresh=args.fresh or None))
        progress(len(jobs), "done")
        print(suite_table(results))
        if json_path:
            try:
                write_results_json(json_path, results)
            except OSError as exc:  # e.g. a full disk: the measurements stay in the cache
                print(f"gpucnn: error: {_one_line(f'--json {args.json}: {exc.strerror or exc}')}", file=sys.stderr)
                return 1
            print(f"wrote {args.json}")
        finished = True
    finally:
        if created and not finished:
            json_path.unlink(missing_ok=True)  # the empty file claimed before measuring
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from gpucnn import archive

    # Path("") is ".", the current folder: an empty path would be reported as a folder, or ignored.
    if getattr(args, "file", None) == "":
        raise UsageError("FILE: the path is empty")
    if getattr(args, "output", None) == "":
        raise UsageError("--output: the path is empty")
    try:
        if args.results_command == "migrate":
            path = archive.migrate(Path(args.file), args.commit, Path(args.output) if args.output else None)
            print(f"wrote {path}: {archive.SCHEMA}; add it with: gpucnn results add {path}")
            return 0
        if args.results_command == "add":
            path = archive.add(Path(args.file), force=args.force)
            record = archive.read(path, path.name)
            print(f"added {path.name} to {path.parent}: {len(record.results)} experiments, {record.label()}")
            return 0
        records = archive.records()
    except archive.RecordError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # e.g. an archive folder that cannot be written
        raise UsageError(f"{exc.__class__.__name__}: {exc}") from None
    if not records:
        print(f"no archived records in {archive.archive_dir()}")
        return 0
    print(_columns(["File", "Recorded on", "Profile", "torch", "Experiments"],
                   [(r.name, r.label().removeprefix("recorded on "), r.document["profile"], r.document["torch"],
                     len(r.results)) for r in records]), end="")
    return 0


def _one_line(value: object) -> str:
    """A record's string for a terminal: control characters (escape sequences, newlines) shown as ?."""
    from gpucnn.typed import printable  # torch-free, like everything ``results`` imports

    return printable(value)


def _columns(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned columns (gpucnn.render needs torch and matplotlib, which ``results`` must not import)."""
    cells = [list(headers)] + [[_one_line(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in cells)


def _progress(total: int):
    """A one-line progress bar on stderr (only when it is a terminal)."""
    def show(done: int, label: str) -> None:
        if not sys.stderr.isatty():
            return
        width = 24
        filled = int(width * done / max(total, 1))
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40}{end}")
        sys.stderr.flush()
    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler = {"info": cmd_info, "bench": cmd_bench, "results": cmd_results}
        return handler[args.command](args)
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
