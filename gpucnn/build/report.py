"""What a build reports: site/results.json, and the build log's statistics (the notebook's results, noisy points,
charts drawn and reused, pages served and rendered, the slowest pages, where the time went)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.gpucnn")


def notebook_results() -> None:
    """Log what the notebook's kernel measured (it shares its results through the build's share folder)."""
    from gpucnn.results import shared_results

    for r in shared_results():
        log.info("gpucnn: %s(%s) from the notebook page: measured %s in %.1f s", r.experiment,
                 ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())), r.measured_at, r.elapsed_s)


def results_json(path: Path) -> None:
    """Write this build's measurements with their provenance; say if many points spread widely."""
    from gpucnn.results import build_results, noisy_points, write_results_json

    write_results_json(path)
    log.info("gpucnn: wrote results.json with %d experiments", len(build_results()))
    if noisy := noisy_points(build_results()):
        log.info(noisy)


def statistics(served: int, rendered: int, page_times: dict[str, float]) -> None:
    from gpucnn.chart_cache import STATS as charts

    # The notebook's charts are drawn in its kernel, and counted there.
    log.info("gpucnn: %d charts drawn, %d reused from the chart cache (pages outside the notebook)",
             charts["drawn"], charts["reused"])
    log.info("gpucnn: %d pages served from the page cache, %d rendered (pages outside the notebook)",
             served, rendered)
    slowest = sorted(page_times.items(), key=lambda kv: -kv[1])[:5]
    if slowest:
        log.info("gpucnn: slowest pages: %s", ", ".join(f"{name} {s:.1f} s" for name, s in slowest))


def time_spent(setup_s: float, page_times: dict[str, float], after_s: float) -> None:
    # The rest of a build is MkDocs itself: loading plugins, templates, the search index.
    log.info("gpucnn: where the time went: set-up (torch, hardware, archive) %.1f s, rendering %d pages %.1f s, "
             "results.json, caches and site guard %.1f s", setup_s, len(page_times), sum(page_times.values()),
             after_s)
