"""Check the tensor-core target: bf16 matmuls reach 75% of the dense bf16 datasheet peak.

Not a unit test (pytest does not collect it); run it by hand on a GPU machine:

    .venv/bin/python tests/benchmarks/check_tensor_core_target.py [--sizes 4096 8192 16384]

Target (defined for an NVIDIA H100 or H200): the best bf16 point at n >= 4096,
as gpucnn measures it (``gpucnn.experiments.precision.measure_precision_matmul``:
random normal inputs, the median of its runs, every clock read after a
synchronize), reaches at least 75% of the GPU's dense bf16 datasheet peak
(``gpucnn.hardware``). For comparison, each size is also timed independently
with CUDA events around a loop of back-to-back matmuls; that column is printed,
not checked.

Exit status: 0 when the target is met, 1 when it is missed (or a measurement
is rejected as impossible), 2 when it cannot run: no CUDA GPU, or a GPU with
no bf16 datasheet peak in gpucnn's table.
"""

from __future__ import annotations

import argparse
import sys

import torch

TARGET_FRACTION = 0.75
MIN_N = 4096
EVENT_CALLS = 20  # matmuls between the two CUDA events


def event_tflops(n: int) -> float:
    """TFLOP/s of an n x n bf16 matmul from CUDA events around EVENT_CALLS calls (after a warm-up)."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    a = torch.randn(n, n, generator=gen, device="cuda").to(torch.bfloat16)
    b = torch.randn(n, n, generator=gen, device="cuda").to(torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(EVENT_CALLS):
        a @ b
    end.record()
    end.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / EVENT_CALLS
    return 2.0 * n**3 / seconds / 1e12


def sm_clock_and_power() -> str:
    """The SM clock and board power now (just after a timed size), from nvidia-smi, or why they are unknown.

    A datasheet peak assumes the boost clock. Under sustained tensor-core load a GPU can reach its power
    limit and lower its clock, which caps every long benchmark below that peak; a short burst of matmuls
    reads higher. This column says which case a run is in.
    """
    import subprocess

    query = "clocks.sm,clocks.max.sm,power.draw,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        sm, sm_max, power, limit = (float(v) for v in out.split(","))
    except (OSError, subprocess.SubprocessError, ValueError):
        return "clock and power unknown (nvidia-smi did not answer)"
    return f"SM {sm:.0f} of {sm_max:.0f} MHz, {power:.0f} of {limit:.0f} W"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384],
                        help=f"matrix sizes n to measure (only n >= {MIN_N} count for the target)")
    args = parser.parse_args(argv)
    sizes = [n for n in args.sizes if n >= MIN_N]
    if not sizes:
        print(f"check_tensor_core_target: no size >= {MIN_N} given", file=sys.stderr)
        return 2
    if not torch.cuda.is_available() or torch.version.hip is not None:
        print("check_tensor_core_target: no CUDA GPU on this machine; the target needs an H100 or H200",
              file=sys.stderr)
        return 2

    # Imported after the checks above, so that a machine without a GPU is answered at once.
    from gpucnn.bench import ImpossibleResult
    from gpucnn.experiments.precision import measure_precision_matmul
    from gpucnn.hardware import detect

    acc = detect().accelerator
    peak = acc.peaks.bf16 if acc and acc.peaks else None
    if acc is None or peak is None:
        print(f"check_tensor_core_target: {acc.name if acc else 'this GPU'} has no bf16 datasheet peak in "
              "gpucnn's table", file=sys.stderr)
        return 2
    if not any(model in acc.name.upper() for model in ("H100", "H200")):
        print(f"note: the target is defined for an H100 or H200; this is {acc.name}")

    print(f"{acc.name}: dense bf16 datasheet peak {peak / 1e12:.1f} TFLOP/s ({acc.peaks.source})")
    print(f"{'n':>6}  {'gpucnn TFLOP/s':>15}  {'% of peak':>9}  {'runs':>4}  {'CUDA events TFLOP/s':>19}"
          "  clock and power after the events")
    best = 0.0
    for n in sizes:
        try:
            m = measure_precision_matmul(n, "cuda", "bfloat16")
        except ImpossibleResult as exc:
            print(f"check_tensor_core_target: MISSED: {exc}", file=sys.stderr)
            return 1
        except torch.OutOfMemoryError:
            print(f"{n:>6}  out of memory: size skipped")
            continue
        tflops = m.flops / m.median / 1e12
        best = max(best, tflops)
        print(f"{n:>6}  {tflops:>15.1f}  {100 * tflops * 1e12 / peak:>8.1f}%  {m.runs:>4}  {event_tflops(n):>19.1f}"
              f"  {sm_clock_and_power()}")
        torch.cuda.empty_cache()  # the next size needs 4x the memory

    fraction = best * 1e12 / peak
    verdict = "met" if fraction >= TARGET_FRACTION else "MISSED"
    print(f"best bf16 point at n >= {MIN_N}: {best:.1f} TFLOP/s = {100 * fraction:.1f}% of the dense bf16 peak "
          f"(target >= {100 * TARGET_FRACTION:.0f}%): {verdict}")
    return 0 if fraction >= TARGET_FRACTION else 1


if __name__ == "__main__":
    sys.exit(main())
