"""Shared fixtures: the quick profile, a private cache, and one built site per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def quick_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test measures with the quick profile and its own empty cache."""
    monkeypatch.setenv("GPUCNN_PROFILE", "quick")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GPUCNN_FRESH", raising=False)


def build_site(dest: Path, cache: Path, extra_env: dict[str, str] | None = None,
               config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `mkdocs build --strict` (quick profile) into ``dest``."""
    env = {**os.environ, "GPUCNN_PROFILE": "quick", "GPUCNN_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1",
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(dest)]
    if config:
        cmd += ["-f", str(config)]
    return subprocess.run(cmd, cwd=config.parent if config else ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test session with the quick profile."""
    base = tmp_path_factory.mktemp("site")
    proc = build_site(base / "site", base / "cache")
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    (base / "build.log").write_text(proc.stderr)
    return base / "site"
