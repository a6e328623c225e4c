"""Every snippet runs standalone, prints something, and does not import gpucnn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPETS = sorted((Path(__file__).resolve().parents[2] / "snippets").glob("*.py"))


def test_there_are_snippets() -> None:
    assert SNIPPETS


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: p.name)
def test_snippet_runs_standalone_and_prints(path: Path, tmp_path: Path) -> None:
    source = path.read_text()
    assert not re.search(r"^\s*(import gpucnn|from gpucnn)", source, re.M), "snippets must not import gpucnn"
    # markdown-exec does not run code under a __main__ guard: the page would be empty.
    assert "__main__" not in source
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "a snippet must print its result"
