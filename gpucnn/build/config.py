"""Before anything is written: the build date, the profile and the archive checked, paths made absolute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError


def root(config: Any) -> Path:
    """mkdocs.yml's folder: what relative paths mean, whatever the working folder."""
    return Path(config["config_file_path"]).resolve().parent if config.get("config_file_path") else Path.cwd()


def check_build_date() -> None:
    """MkDocs reads SOURCE_DATE_EPOCH itself, late in the build and with a traceback: check it first, in one line,
    before anything is written (on_config runs before the site folder is cleaned)."""
    from gpucnn.archive import RecordError, build_time

    try:
        build_time()
    except RecordError as exc:
        raise PluginError(str(exc)) from None


def absolute_snippet_paths(config: Any) -> None:
    """pymdownx.snippets reads base_path relative to the working folder, so ``mkdocs build -f /elsewhere/mkdocs.yml``
    would miss every snippet. Run before markdown-exec's on_config (priority 100), which saves the settings."""
    snippets = (config.get("mdx_configs") or {}).get("pymdownx.snippets")
    if snippets is not None:
        base = snippets.get("base_path", ["."])
        snippets["base_path"] = [str(root(config) / b) for b in ([base] if isinstance(base, str) else base)]


def checked_profile() -> str:
    """The measurement profile's name; an unknown GPUCNN_PROFILE fails the build in one line."""
    from gpucnn.profile import ProfileError, current_profile

    try:
        return current_profile().name
    except ProfileError as exc:
        raise PluginError(f"GPUCNN_PROFILE: {exc}") from None


def checked_archive() -> tuple[int, str]:
    """(number of archived records, the archive folder's name); a bad archive file fails the build, naming it."""
    from gpucnn.archive import RecordError, archive_dir, records

    try:
        archived = records()
    except RecordError as exc:
        raise PluginError(f"results archive: {exc}") from None
    return len(archived), archive_dir().name


def archive_digest() -> str:
    """A digest of the archived records: a new record must not be hidden behind a cached page.

    Of the records as ``archive.records`` lists and checks them (the build has read them already, and a bad
    entry has failed it there): no byte of the folder is read here that the archive's checks did not pass.
    """
    from gpucnn import archive

    return archive.digest(archive.records())
