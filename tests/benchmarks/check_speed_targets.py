"""Check the speed targets of the measuring harness against independent references.

Not a unit test (pytest does not collect it: its name does not start with
``test_``); run it by hand on the machine whose figures you want to trust:

    .venv/bin/python tests/benchmarks/check_speed_targets.py [--rounds N] [--only matmul|copy]

Two targets, each measured in one run with the two sides interleaved (their
order alternates from round to round), because a shared machine is noisy:

1. matmul: a 2048x2048 fp32 matmul on the CPU. The GFLOP/s that ``gpucnn
   bench`` reports (``gpucnn.experiments.matmul.measure_matmul``, the median of
   its runs) is within 10% of what ``torch.utils.benchmark.Timer`` with all
   the threads torch uses measures (the median of ``blocked_autorange``). The
   statistic compared is the median over rounds of each side's median.
2. copy: CPU copy bandwidth on a buffer 8x the last-level cache. gpucnn's copy
   (``gpucnn.experiments.memory.measure_copy``, bytes read + written) reaches
   at least 75% of a STREAM-style triad in C with OpenMP
   (tests/benchmarks/stream_triad.c, compiled here with
   ``gcc -O3 -fopenmp -march=native``, run with OMP_NUM_THREADS = the threads
   torch uses). Both are best of N, as STREAM reports; GB = 10^9 bytes.

Prints a table of what was measured and exits 0 when both targets are met,
1 when one is missed, 2 when it cannot run (no gcc, gcc without OpenMP, too
little free memory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

from gpucnn.experiments.matmul import measure_matmul
from gpucnn.experiments.memory import measure_copy
from gpucnn.hardware import available_ram_bytes, detect
from gpucnn.profile import current_profile

HERE = Path(__file__).resolve().parent
TRIAD_SOURCE = HERE / "stream_triad.c"
MATMUL_N = 2048
MATMUL_TOLERANCE = 0.10  # |gpucnn / Timer - 1| <= 10%
COPY_FRACTION = 0.75  # gpucnn copy >= 75% of the C triad
LLC_FACTOR = 8  # each buffer / array is this many times the last-level cache
FALLBACK_LLC = 64 * 1024 * 1024  # when sysfs does not say; larger is the safe side
TRIAD_NTIMES = 5  # triad passes per round; the best of all rounds is reported


class CannotRun(Exception):
    """The check cannot run on this machine: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Row:
    target: str
    gpucnn: float
    reference: float
    unit: str
    ratio: float
    required: str
    passed: bool


def check_matmul(rounds: int) -> tuple[Row, list[str]]:
    """gpucnn's reported matmul GFLOP/s against Timer(num_threads=all), median of rounds."""
    n = MATMUL_N
    flops = 2.0 * n**3
    threads = torch.get_num_threads()
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    timer = Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
    ours: list[float] = []
    ref: list[float] = []
    for i in range(rounds):
        # Alternate the order so that a drift in machine load hits both sides alike.
        for side in (("gpucnn", "timer") if i % 2 == 0 else ("timer", "gpucnn")):
            if side == "gpucnn":
                ours.append(measure_matmul(n, "cpu").gflops)
            else:
                ref.append(flops / timer.blocked_autorange(min_run_time=1.0).median / 1e9)
    mine, theirs = statistics.median(ours), statistics.median(ref)
    ratio = mine / theirs
    paired = statistics.median(x / y for x, y in zip(ours, ref, strict=True))
    notes = ["matmul rounds, GFLOP/s (gpucnn / Timer): "
             + ", ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(ours, ref, strict=True))
             + f"; median of the per-round ratios {paired:.3f}"]
    return Row(f"matmul {n}x{n} fp32, {threads} threads (median)", mine, theirs, "GFLOP/s", ratio,
               f"within {MATMUL_TOLERANCE:.0%}", abs(ratio - 1) <= MATMUL_TOLERANCE), notes


def compile_triad(workdir: Path) -> Path:
    """Compile stream_triad.c into ``workdir``; raise CannotRun with the reason."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise CannotRun("gcc not found: the copy target needs gcc with OpenMP to build the STREAM triad "
                        "(install gcc, or run with --only matmul)")
    exe = workdir / "stream_triad"
    proc = subprocess.run([gcc, "-O3", "-fopenmp", "-march=native", str(TRIAD_SOURCE), "-o", str(exe)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise CannotRun(f"gcc -O3 -fopenmp -march=native failed to build the STREAM triad: {last}")
    return exe


def run_triad(exe: Path, elements: int, threads: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([str(exe), str(elements), str(TRIAD_NTIMES)], capture_output=True, text=True, env=env,
                          check=True)
    fields = dict(part.split("=", 1) for part in proc.stdout.split())
    if int(fields["threads"]) != threads:
        raise CannotRun(f"the triad ran on {fields['threads']} threads, not {threads}")
    return {"triad": float(fields["triad_gbps"]), "copy": float(fields["copy_gbps"])}


def check_copy(rounds: int, exe: Path) -> tuple[Row, list[str]]:
    """gpucnn's copy GB/s against the C triad's, best of all rounds each."""
    llc = detect().cpu.llc_bytes
    size = LLC_FACTOR * (llc or FALLBACK_LLC)  # bytes per buffer / array
    threads = torch.get_num_threads()
    ours: list[float] = []
    triad: list[float] = []
    c_copy: list[float] = []
    for i in range(rounds):
        for side in (("gpucnn", "triad") if i % 2 == 0 else ("triad", "gpucnn")):
            if side == "gpucnn":
                m = measure_copy(size, "cpu")
                ours.append(m.bytes_moved / m.best / 1e9)
            else:
                r = run_triad(exe, size // 8, threads)
                triad.append(r["triad"])
                c_copy.append(r["copy"])
    mine, theirs = max(ours), max(triad)
    ratio = mine / theirs
    llc_note = f"LLC {llc / 2**20:.0f} MiB" if llc else f"LLC unknown, assumed {FALLBACK_LLC / 2**20:.0f} MiB"
    notes = [
        f"copy buffers: {size / 2**20:.0f} MiB each ({LLC_FACTOR}x {llc_note}); triad arrays the same size",
        "copy rounds, GB/s (gpucnn copy_ / C triad / C copy): "
        + ", ".join(f"{x:.1f}/{y:.1f}/{z:.1f}" for x, y, z in zip(ours, triad, c_copy, strict=True)),
        f"for reference: C copy kernel best {max(c_copy):.1f} GB/s (2 arrays x 8 B counted)",
    ]
    return Row(f"copy {size / 2**20:.0f} MiB, {threads} threads (best)", mine, theirs, "GB/s", ratio,
               f">= {COPY_FRACTION:.0%}", ratio >= COPY_FRACTION), notes


def print_table(rows: list[Row]) -> None:
    header = ("target", "gpucnn", "reference", "ratio", "required", "result")
    lines = [header] + [
        (r.target, f"{r.gpucnn:.1f} {r.unit}", f"{r.reference:.1f} {r.unit}", f"{r.ratio:.3f}", r.required,
         "PASS" if r.passed else "FAIL")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per target (default 5)")
    parser.add_argument("--only", choices=("matmul", "copy"), help="check one target only")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    checks = [args.only] if args.only else ["matmul", "copy"]
    rows: list[Row] = []
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gpucnn-stream-") as tmp:
            # Check what could stop the run before measuring anything.
            exe = compile_triad(Path(tmp)) if "copy" in checks else None
            if exe is not None:
                need = (2 + 3) * LLC_FACTOR * (detect().cpu.llc_bytes or FALLBACK_LLC)
                free = available_ram_bytes()
                if free is not None and need > 0.5 * free:
                    raise CannotRun(f"the copy check needs {need / 1e9:.1f} GB, more than half the "
                                    f"{free / 1e9:.1f} GB of free memory")
            load_before = _load()
            print(f"gpucnn speed targets: {detect().cpu.model}, {torch.get_num_threads()} torch threads, "
                  f"torch {torch.__version__}, profile {current_profile().name}, {args.rounds} rounds", flush=True)
            if "matmul" in checks:
                row, more = check_matmul(args.rounds)
                rows.append(row)
                notes += more
            if exe is not None:
                row, more = check_copy(args.rounds, exe)
                rows.append(row)
                notes += more
    except CannotRun as exc:
        print(f"check_speed_targets: cannot run: {exc}", file=sys.stderr)
        return 2
    print()
    print_table(rows)
    print()
    for note in notes:
        print(note)
    cores = os.cpu_count() or 1
    print(f"load average (1 min) before / after: {load_before:.2f} / {_load():.2f} on {cores} logical cores")
    if load_before > 0.5 * cores:
        print("warning: the machine was busy before the check started; other processes share its cores and "
              "memory bus, so a FAIL may be noise: rerun when it is idle")
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
