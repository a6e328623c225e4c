"""The notebook page (docs/training.py, run by mkdocs-jupyter in a Jupyter kernel): its share folder, and a
sound wrapper around mkdocs-jupyter's cache of its page."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.gpucnn")

SHARE_PREFIX = "gpucnn-shared-"
WORK_PREFIX = ".build-"


def owner_gone(folder: Path, prefix: str) -> bool:
    """True when the build that made ``<prefix><pid>-...`` has ended (a killed build never cleans up)."""
    m = re.fullmatch(re.escape(prefix) + r"(\d+)-.*", folder.name)
    if m is None:  # made before folders carried their build's pid
        return time.time() - folder.stat().st_mtime > 3600
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's live process
        return False
    return False


def share_folder() -> str:
    """A new folder for the notebook's results (its kernel inherits it); those of killed builds are removed first."""
    for old in Path(tempfile.gettempdir()).glob(SHARE_PREFIX + "*"):
        try:
            if old.is_dir() and owner_gone(old, SHARE_PREFIX):
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return tempfile.mkdtemp(prefix=f"{SHARE_PREFIX}{os.getpid()}-")


def readable_entry(path: Path) -> bool:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(entry, dict) and isinstance(entry.get("content"), str) and isinstance(entry.get("toc_tokens"), list)


def write_if_changed(path: Path, text: str) -> None:
    """Write a file atomically, unless it already holds ``text``: an unchanged rebuild rewrites (and syncs) nothing."""
    from gpucnn.results import atomic_write_text

    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):  # missing or unreadable: written
        pass
    atomic_write_text(path, text)


def working_copy(folder: Path) -> Path:
    """A private copy of the cache folder for mkdocs-jupyter to read and write during this build.

    mkdocs-jupyter writes its entry in place: a killed build or a full disk
    leaves half a file, which every later build then fails to read. Here it
    writes into this copy; only a build that finishes puts entries back, each
    by an atomic rename. An unreadable entry is dropped, so the notebook runs again.
    Raises OSError when the folder cannot be written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(WORK_PREFIX + "*"):
        if owner_gone(old, WORK_PREFIX):
            shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=folder))
    for entry in folder.glob("*.json"):
        if readable_entry(entry):
            shutil.copy(entry, work / entry.name)
        else:
            log.info("gpucnn: notebook cache entry %s is unreadable: removed, the notebook runs again", entry.name)
            entry.unlink(missing_ok=True)
    return work


@dataclass
class NotebookCache:
    """This build's use of mkdocs-jupyter's cache: the keyed folder, and the working copy the build writes to.

    Its cache keys on the notebook's bytes and its own options only: a quick
    build's output, or another machine's, would be served as this build's.
    Giving each (gpucnn code, hardware, torch, profile, archive) its own cache
    folder adds the rest of gpucnn's cache key. The notebook's results are kept
    beside its page (``results/``), so that a build that reuses the page still
    lists them in results.json.
    """

    folder: Path
    work: Path

    @property
    def results(self) -> Path:
        return self.folder / "results"

    @classmethod
    def keyed(cls, config: Any, profile: str, archive: str) -> NotebookCache | None:
        """Point mkdocs-jupyter at this build's working copy; None where there is no cache (no notebook plugin,
        GPUCNN_FRESH, an unwritable folder). A reused page's results are handed to this build's share folder."""
        import hashlib

        import torch

        from gpucnn.hardware import detect
        from gpucnn.results import SHARE_ENV, cache_dir, code_hash, fresh_requested

        plugin = (config.get("plugins") or {}).get("mkdocs-jupyter")
        if plugin is None:
            return None
        if fresh_requested():
            plugin.config["cache"] = False
            return None
        from gpucnn.page_cache import _tree_digest

        # The notebook's words are in docs/.partials/training.md (gpucnn.templating.render_partial): a change
        # there runs the notebook again.
        partials = Path(config.get("docs_dir") or "docs") / ".partials"
        material = json.dumps([code_hash("gpucnn.pages.training"), detect().fingerprint(), torch.__version__,
                               profile, archive, _tree_digest(partials)])
        folder = cache_dir() / "notebook" / hashlib.sha256(material.encode()).hexdigest()[:16]
        try:
            work = working_copy(folder)
        except OSError as exc:
            # An unwritable cache folder costs speed, not the build.
            plugin.config["cache"] = False
            log.info("gpucnn: no notebook cache (%s): the notebook runs in every build", exc)
            return None
        plugin.config["cache"] = True
        plugin.config["cache_dir"] = str(work)
        cache = cls(folder, work)
        # If the page is reused, no kernel runs: hand its results to this build.
        # If the kernel does run, it overwrites these with what it used.
        for path in cache.results.glob("*.json") if cache.results.is_dir() else []:
            shutil.copy(path, Path(os.environ[SHARE_ENV]) / path.name)
        return cache

    def has_results(self) -> bool:
        return self.results.is_dir() and any(self.results.glob("*.json"))

    def keep_results(self, share: Path) -> None:
        """Keep the notebook's results (in the share folder) beside its cached page."""
        try:
            self.results.mkdir(parents=True, exist_ok=True)
            for path in share.glob("*.json"):
                write_if_changed(self.results / path.name, path.read_text(encoding="utf-8"))
        except OSError as exc:
            log.info("gpucnn: the notebook's results were not kept with its cache (%s)", exc)

    def commit(self) -> None:
        """Put this build's entries in place atomically; drop the ones mkdocs-jupyter evicted."""
        try:
            kept = {entry.name for entry in self.work.glob("*.json") if readable_entry(entry)}
            for name in kept:
                write_if_changed(self.folder / name, (self.work / name).read_text(encoding="utf-8"))
            for entry in self.folder.glob("*.json"):
                if entry.name not in kept:
                    entry.unlink(missing_ok=True)
        except OSError as exc:  # a full disk costs the next build its speed, not this build
            log.info("gpucnn: the notebook cache was not updated (%s)", exc)
        finally:
            self.discard()

    def discard(self) -> None:
        """A failed build: the cache keeps what it had, this build's entries are not trusted."""
        shutil.rmtree(self.work, ignore_errors=True)


def render_despite_an_unwritable_cache(page: Any) -> None:
    """A full disk (or any write error) while mkdocs-jupyter stores the notebook's page in its cache costs the
    next build its speed, not this build: mkdocs-jupyter writes its entry after making the page, inside its
    ``page.render``, and a failed write would end the build. The page it made is kept; the half-written entry
    is dropped with this build's working copy of the cache (``NotebookCache.commit`` keeps readable ones only).
    """
    render = page.render

    def render_then_cache(config: Any, files: Any) -> None:
        page.content = None
        try:
            render(config, files)
        except OSError as exc:
            if page.content is None:  # the page itself was not made: a real failure
                raise
            log.info("gpucnn: the notebook's page was not cached (%s): the next build runs it again", exc)

    page.render = render_then_cache


def measure_before_kernel(cache: NotebookCache | None) -> None:
    """Measure the notebook's experiments in this process, before mkdocs-jupyter starts its kernel.

    The kernel is a new process: a GPU's first CUDA call and first torch.compile cost it seconds of
    start-up that this process has already paid. The kernel then reads the cached results. Skipped
    when the notebook's results were kept with its cached page (that page is then reused, and a new
    measurement would not be the one it shows), and without a notebook cache (GPUCNN_FRESH, where
    the kernel measures again whatever it finds).
    """
    if cache is None or cache.has_results():
        return
    from gpucnn.pages.training import measure_live

    measure_live()
