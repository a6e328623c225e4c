"""MkDocs hooks: fresh gpucnn code on every (re)build, and site/results.json.

Loaded by path from mkdocs.yml (``hooks:``), so it is not part of the package
import graph and survives the reload it performs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.plugins.gpucnn")


def on_pre_build(config: Any) -> None:
    # `mkdocs serve` keeps one process: without this, an edit to gpucnn would not
    # take effect, and old code's results would be cached under the new code's key.
    for name in [m for m in sys.modules if m == "gpucnn" or m.startswith("gpucnn.")]:
        del sys.modules[name]
    from gpucnn.profile import ProfileError, current_profile

    try:
        profile = current_profile()
    except ProfileError as exc:
        raise PluginError(f"GPUCNN_PROFILE: {exc}") from None
    log.info("gpucnn: building with the %s profile", profile.name)


def on_post_build(config: Any) -> None:
    from gpucnn.results import build_results, write_results_json

    path = Path(config["site_dir"]) / "results.json"
    write_results_json(path)
    log.info("gpucnn: wrote results.json with %d experiments", len(build_results()))
