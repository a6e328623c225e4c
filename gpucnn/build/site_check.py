"""The site guard over the finished site, and its memory of clean files (``gpucnn.site_guard`` has the checks).

An output file that holds an off-site URL or a build-machine path is removed, so that a failed build leaves
nothing in site/ that must not be published, and fails the build, whichever plugin put it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError


def guard_site(config: Any) -> None:
    """Fail the build on an off-site request or a build-machine path in the output."""
    lines = remove_unpublishable(config)
    if lines:
        raise PluginError("the built site must not contain these (the files were removed):\n  " + "\n  ".join(lines))


def remove_unpublishable(config: Any) -> list[str]:
    """Remove each output file that holds an off-site URL or a build-machine path; say which and why."""
    from urllib.parse import urlsplit

    from gpucnn.site_guard import build_machine_paths, check_site

    site_dir = Path(config["site_dir"])
    if not site_dir.is_dir():
        return []
    checkout = Path(config["config_file_path"]).resolve().parent if config.get("config_file_path") else None
    host, paths = urlsplit(config.get("site_url") or "").hostname, build_machine_paths(checkout)
    clean = CleanFiles(host, paths)
    problems = check_site(site_dir, host, paths, known_clean=clean)
    clean.save(problems)
    lines = []
    for path, found in problems.items():
        path.unlink(missing_ok=True)
        lines += [f"{path.relative_to(site_dir).as_posix()}: {what}" for what in found]
    return lines


class CleanFiles:
    """Output files that passed the site guard, remembered by their text from one build to the next.

    Scanning every page, the search index and results.json was about a tenth of an unchanged rebuild,
    which writes the same pages again. A file is skipped only where its exact text passed the
    same checks before: the key covers the guard's code (site_guard.py, this file), the site's host
    and the build-machine paths looked for. Only the last build's clean files are kept.
    """

    def __init__(self, host: str | None, paths: list[str]) -> None:
        from gpucnn import site_guard
        from gpucnn.results import cache_dir

        salt = hashlib.sha256(json.dumps([host, paths]).encode())
        for code in (site_guard.__file__, __file__):
            salt.update(Path(code).read_bytes())
        self._salt = salt.digest()
        self._file = cache_dir() / "site-guard.json"
        try:
            known = json.loads(self._file.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: every file is scanned
            known = []
        self._known = set(known) if isinstance(known, list) else set()
        self._seen: dict[Path, str] = {}

    def __call__(self, path: Path, text: str) -> bool:
        digest = hashlib.sha256(self._salt + path.suffix.encode() + b"\0" + text.encode()).hexdigest()
        self._seen[path] = digest
        return digest in self._known

    def save(self, problems: dict[Path, list[str]]) -> None:
        from gpucnn.results import atomic_write_text

        clean = sorted({d for path, d in self._seen.items() if path not in problems})
        with contextlib.suppress(OSError):  # an unwritable cache costs the next build its speed only
            atomic_write_text(self._file, json.dumps(clean))
