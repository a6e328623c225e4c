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
               config: Path | None = None, options: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `mkdocs build --strict [options]` (quick profile) into ``dest``."""
    env = {**os.environ, "GPUCNN_PROFILE": "quick", "GPUCNN_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1",
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", *(options or []), "-d", str(dest)]
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


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real `gpucnn bench --quick --json` per session, shared by the CLI and archive tests:
    the record it wrote, and the cache it measured into (its stdout beside them, in ``stdout.txt``)."""
    base = tmp_path_factory.mktemp("bench")
    out = base / "results.json"
    env = {**os.environ, "GPUCNN_PROFILE": "quick", "GPUCNN_CACHE_DIR": str(base / "cache")}
    proc = subprocess.run([sys.executable, "-m", "gpucnn.cli", "bench", "--quick", "--device", "cpu", "--json",
                           str(out)], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    (base / "stdout.txt").write_text(proc.stdout)
    return out, base / "cache"
