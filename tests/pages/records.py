"""Shared fakes for the page tests: measurements with a chosen median and IQR, a CPU-only build over the
project's archive, a page's template rendered, and an archived record whose strings carry markup."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gpucnn.bench import Measurement
from tests.conftest import ROOT

H200 = ROOT / "results" / "nvidia-h200-2026-11-26.json"
EVIL = "H200 <script>alert(1)</script> | x |"
# A time printed negative: "-3 ms", "− 0.5 µs".
NEGATIVE_TIME = re.compile(r"(\u2212|-)\s?\d[\d.,]*\s?(ns|µs|ms|s)\b")


def m(median: float, spread: float = 0.0, flops: float | None = None, shape: tuple[int, ...] = (2, 2, 2),
      device: str = "cpu") -> Measurement:
    """A measurement with this median and IQR ``median - spread`` to ``median + spread``."""
    times = (median - 2 * spread, median - spread, median, median + spread, median + 2 * spread)
    return Measurement(name="m", device=device, dtype="float32", shape=shape, threads=1, times_s=times,
                       number_per_run=1, flops=flops)


@contextmanager
def archive_build(tmp: Path, pages: tuple[str, ...]) -> Iterator[None]:
    """A CPU-only build (quick profile) whose archive is the project's results/."""
    from tests.fakes import cpu_only, fake_build

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUCNN_PROFILE", "quick")
        with fake_build(cpu_only(), ROOT / "results", tmp / "cache", pages):
            yield


def render(page: str) -> tuple[str, dict[int, str]]:
    """``docs/<page>`` rendered as the build renders it, and each section's sources line by number."""
    from gpucnn import sources
    from gpucnn.render import section_sources
    from gpucnn.templating import render_page

    sources.begin_page(None)
    text = render_page((ROOT / "docs" / page).read_text(), page, ROOT / "docs")
    lines = {n: section_sources(n) for n in range(text.count("section_sources("))}
    return text, lines


def hostile_sources(experiment: str) -> list:
    """The H200 record's results of ``experiment``, GPU then host CPU, with markup in both device names."""
    from gpucnn.archive import Record
    from gpucnn.hardware import HardwareReport
    from gpucnn.results import Result
    from gpucnn.sources import Source

    doc = copy.deepcopy(json.loads(H200.read_text()))
    for hw in [doc["hardware"], *(r["hardware"] for r in doc["results"])]:
        hw["accelerator"]["name"] = EVIL
        hw["cpu"]["model"] = "Xeon <img src=x onerror=alert(1)>"
    record = Record(H200.name, doc, HardwareReport.from_dict(doc["hardware"]),
                    tuple(Result.from_dict(r) for r in doc["results"]))
    found = [Source(r.params["device"], r, record) for r in record.results if r.experiment == experiment]
    return sorted(found, key=lambda s: s.is_cpu)


def assert_escaped(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html, html[:400]
    assert "| x |" not in html
