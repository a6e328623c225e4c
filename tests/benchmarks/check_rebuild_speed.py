"""Check that the measurement cache makes an unchanged rebuild fast.

Not a unit test (pytest does not collect it: its name does not start with
``test_``); run it by hand from the repository root:

    .venv/bin/python tests/benchmarks/check_rebuild_speed.py [--profile full|quick] [--max-warm-s 10] [--max-ratio 0.25]

It builds the site twice with ``mkdocs build --strict`` into a temporary folder,
with a new, empty measurement cache: a cold build (everything measured), then
an unchanged warm build (everything should be reused). It prints both wall
times, their ratio, which experiments the warm build measured again and how
many charts and Markdown pages it drew and rendered again (there should be
none: pages come from the page cache, gpucnn.page_cache), the slowest pages of
each build (from the build log's "gpucnn: slowest pages" line) and where the
warm build's time went, and exits

* 0 when the warm build takes at most ``--max-warm-s`` seconds and at most
  ``--max-ratio`` of the cold build, and measured, drew and rendered nothing
  again;
* 1 when a target is missed;
* 2 when a build fails.

The targets (issue 11; issue 5 had 15 s): at most 10 s and at most 25% of the
cold build, on the 2-core build machine, with the full profile that the
published site uses. The machine is shared and timings are noisy: run it when
it is quiet, or more than once.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(site: Path, cache: Path, profile: str) -> tuple[float, str]:
    env = {**os.environ, "GPUCNN_PROFILE": profile, "GPUCNN_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1",
           # build this checkout's gpucnn (also in the notebook's kernel), whatever is installed
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("GPUCNN_FRESH", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr[-6000:], file=sys.stderr)
        print(f"mkdocs build failed (exit {proc.returncode})", file=sys.stderr)
        sys.exit(2)
    return elapsed, proc.stderr


def experiments(log: str, verb: str) -> list[str]:
    return re.findall(rf"gpucnn: (.+?) {verb}", log)


def charts_drawn(log: str) -> int | None:
    m = re.search(r"gpucnn: (\d+) charts drawn", log)
    return int(m.group(1)) if m else None


def pages_rendered(log: str) -> int | None:
    """Markdown pages the build rendered (ran their blocks) instead of serving them from the page cache."""
    m = re.search(r"gpucnn: \d+ pages served from the page cache, (\d+) rendered", log)
    return int(m.group(1)) if m else None


def slowest(log: str) -> str:
    m = re.search(r"gpucnn: slowest pages: (.*)", log)
    return m.group(1).strip() if m else "(not logged)"


def time_went(log: str) -> str:
    m = re.search(r"gpucnn: where the time went: (.*)", log)
    return m.group(1).strip() if m else "(not logged)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="full", choices=["full", "quick"], help="build profile (default: full)")
    parser.add_argument("--max-warm-s", type=float, default=10.0, help="warm build limit in seconds (default: 10)")
    parser.add_argument("--max-ratio", type=float, default=0.25, help="warm / cold limit (default: 0.25)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpucnn-rebuild-") as tmp:
        site, cache = Path(tmp) / "site", Path(tmp) / "cache"
        print(f"cold build ({args.profile} profile, empty cache) ...", flush=True)
        cold, cold_log = build(site, cache, args.profile)
        print("warm build (unchanged, same cache) ...", flush=True)
        warm, warm_log = build(site, cache, args.profile)

    measured_cold = experiments(cold_log, "measured in")
    measured_warm = experiments(warm_log, "measured in")
    reused_warm = experiments(warm_log, r"reused (?:\(|with its page)")
    ratio = warm / cold
    print()
    print(f"cold build: {cold:6.1f} s   measured {len(measured_cold)} experiment runs")
    drawn_warm, rendered_warm = charts_drawn(warm_log), pages_rendered(warm_log)
    print(f"warm build: {warm:6.1f} s   reused {len(reused_warm)}, measured {len(measured_warm)}, "
          f"drew {drawn_warm if drawn_warm is not None else '(not logged)'} charts again, "
          f"rendered {rendered_warm if rendered_warm is not None else '(not logged)'} pages again")
    print(f"warm / cold: {ratio:.1%}")
    print(f"slowest pages, cold: {slowest(cold_log)}")
    print(f"slowest pages, warm: {slowest(warm_log)}")
    print(f"where the warm build's time went: {time_went(warm_log)} (the rest: starting Python and MkDocs)")
    misses = []
    if warm > args.max_warm_s:
        misses.append(f"warm build took {warm:.1f} s > {args.max_warm_s:g} s")
    if ratio > args.max_ratio:
        misses.append(f"warm build is {ratio:.1%} of the cold build > {args.max_ratio:.0%}")
    if measured_warm:
        misses.append(f"warm build measured again: {', '.join(measured_warm)}")
    if drawn_warm:
        misses.append(f"warm build drew {drawn_warm} charts again (the chart cache missed)")
    if rendered_warm != 0:
        misses.append(f"warm build rendered {rendered_warm} Markdown pages again (the page cache missed)")
    for miss in misses:
        print(f"FAIL: {miss}")
    if not misses:
        print(f"PASS: warm build <= {args.max_warm_s:g} s and <= {args.max_ratio:.0%} of the cold build, "
              f"nothing measured, drawn or rendered again")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
