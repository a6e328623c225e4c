"""`gpucnn results add` refuses a record whose strings carry markup (issue 12), as a user meets it:
one line on stderr naming the field, exit status 2, nothing archived.

The pages must still escape whatever gets past these checks; tests/build/test_browser.py renders such a
record in Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

REAL = ROOT / "results" / "nvidia-h200-2026-11-26.json"


def _add(doc: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    env = {**os.environ, "GPUCNN_RESULTS_DIR": str(tmp_path / "archive")}
    return subprocess.run([sys.executable, "-m", "gpucnn.cli", "results", "add", str(source)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)


@pytest.mark.parametrize(("where", "value"), [
    (("hardware", "cpu", "model"), "Xeon <script>alert(1)</script>"),
    (("hardware", "accelerator", "name"), "NVIDIA H200\n[click](javascript:alert(1))"),
    (("hardware", "accelerator", "peaks", "source"), "datasheet | <img src=x onerror=alert(1)>"),
    (("torch",), "2.11.0 $x$"),
    (("commit",), "c1ae338|x"),
    (("results", 0, "hardware", "cpu", "model"), "Xeon <script>alert(1)</script>"),
    (("results", 0, "params", "device"), "cpu<script>alert(1)</script>"),
])
def test_results_add_refuses_markup_in_one_line_with_status_2(tmp_path: Path, where: tuple, value: str) -> None:
    doc = json.loads(REAL.read_text())
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    proc = _add(doc, tmp_path)
    field = ".".join(str(k) for k in where).replace(".0.", "[0].")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{field}: expected" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "archive").glob("*.json")), "a refused record was archived"


def test_the_unchanged_record_is_accepted(tmp_path: Path) -> None:
    """The refusals above are for the payloads, not for the record they were put in."""
    proc = _add(json.loads(REAL.read_text()), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "archive").glob("*.json"))) == 1
