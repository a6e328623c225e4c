"""The ``gpucnn`` command: hardware report, the standard benchmark suite, results.

Bad input gets one line on stderr and exit code 2, checked before anything is
measured, so that nothing measured is lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


def _fail(message: str) -> int:
    print(f"gpucnn: error: {message}", file=sys.stderr)
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
    bench.add_argument("--json", metavar="PATH", help="also write the results, in results.json format, to PATH")
    bench.add_argument("--fresh", action="store_true", help="measure again even where the cache has a result")

    results = sub.add_parser("results", help="the archive of results from other machines (results/)")
    results_sub = results.add_subparsers(dest="results_command", required=True, parser_class=_Parser)
    add = results_sub.add_parser("add", help="validate a results.json record and add it to the archive")
    add.add_argument("file", metavar="FILE", help="a results.json from a build or from gpucnn bench --json")
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


def _check_writable(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--json {path}: is a folder, not a file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--json {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"--json {path}: not writable")
    return target


def cmd_info(args: argparse.Namespace) -> int:
    from gpucnn.hardware import detect
    from gpucnn.render import hardware_table

    hw = detect()
    print(json.dumps(hw.to_dict(), indent=2) if args.json else hardware_table(hw), end="\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.quick:
        os.environ["GPUCNN_PROFILE"] = "quick"
    _check_profile()
    devices = _devices(args.device)
    json_path = _check_writable(args.json) if args.json else None

    from gpucnn.experiments.latency import small_op_latency
    from gpucnn.experiments.matmul import matmul_sweep
    from gpucnn.experiments.memory import copy_bandwidth
    from gpucnn.render import suite_table
    from gpucnn.results import run, write_results_json

    jobs = [(fn, d) for d in devices for fn in (matmul_sweep, copy_bandwidth, small_op_latency)]
    results = []
    progress = _progress(len(jobs))
    for i, (fn, device) in enumerate(jobs):
        progress(i, f"{fn.__name__} on {device}")
        results.append(run(fn, device=device, fresh=args.fresh or None))
    progress(len(jobs), "done")
    print(suite_table(results))
    if json_path:
        write_results_json(json_path, results)
        print(f"wrote {json_path}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from gpucnn import archive

    try:
        if args.results_command == "add":
            path = archive.add(Path(args.file))
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
    from gpucnn.render import table

    print(table(["File", "Recorded on", "Profile", "torch", "Experiments"],
                [(r.name, r.label().removeprefix("recorded on "), r.document["profile"], r.document["torch"],
                  len(r.results)) for r in records], align="lllll"), end="")
    return 0


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
