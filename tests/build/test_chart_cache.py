"""The chart cache (gpucnn.chart_cache): a reused chart is the chart drawing it again would give, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from gpucnn import chart_cache, render
from gpucnn.results import cache_dir

ROOT = Path(__file__).resolve().parents[2]


def _series(last: float = 5.0) -> list[render.Series]:
    return [
        render.Series("CPU (this build)", [1, 2, 4, 8], [1.0, 2.0, 3.0, last], [0.5] * 4, [6.0] * 4),
        render.Series("H100 (archived)", [1, 2, 4, 8], [2.0, 3.0, 4.0, 5.0], source="archived:h100.json"),
    ]


def _line_chart(last: float = 5.0) -> str:
    # Reference lines and spans too: they add secondary axes, whose transforms are functions.
    return render.line_chart(_series(last), title="Time against size", xlabel="size", ylabel="time (ms)",
                             caption_text="Median of 5 runs.", logx=True, logy=True, hlines=[(4.0, "peak 4 ms")],
                             vlines=[(2.0, "L2 (1 MiB)")], spans=[(1.0, 2.0, "overhead")])


def _custom_chart(scale: float = 1.0) -> str:
    """A page's own figure, with a lambda tick formatter."""
    fig, ax = render.new_figure()
    ax.plot([1, 2, 3], [scale, 2 * scale, 4 * scale], gid="gpucnn-series-0")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} KiB"))
    return render.figure_html(fig, title="Custom", desc="A custom chart.", caption_text="Custom.",
                              sources=["archived:h200.json"])


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Record every figure actually drawn (saved), while drawing it as before."""
    drawn: list[Figure] = []
    save = Figure.savefig

    def savefig(self: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return drawn


def _entries() -> list[Path]:
    folder = cache_dir() / "charts"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("chart", [_line_chart, _custom_chart])
def test_a_reused_chart_is_byte_for_byte_the_drawn_one(chart, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _drawn(monkeypatch)
    first = chart()
    assert len(drawn) == 1 and len(_entries()) == 1
    again = chart()
    assert len(drawn) == 1, "an unchanged chart was drawn again"
    assert again == first
    # ... and equal to drawing it with no cache at all
    monkeypatch.setattr(chart_cache, "_load", lambda key: None)
    assert chart() == first
    assert len(drawn) == 2


def test_a_reused_chart_still_names_its_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawn or reused: the same data-source attributes, and the caption's sources reach the sources line."""
    from tests.fakes import archived_sources as _archived

    render.section_sources()  # forget what an earlier test left
    drawn = _drawn(monkeypatch)
    outputs = []
    for _ in range(2):
        chart = render.line_chart(_series(), title="t", xlabel="x", ylabel="y", caption_text="c",
                                  results=_archived())
        outputs.append((chart, render.section_sources()))
    assert len(drawn) == 1
    assert outputs[0] == outputs[1]
    chart, line = outputs[1]
    assert 'data-source="live"' in chart and 'data-source="archived:h100.json"' in chart
    assert 'data-source="archived:nvidia-h100-2026-01-02.json"' in line


def test_a_changed_input_misses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _drawn(monkeypatch)
    base = _line_chart()
    changed = _line_chart(last=5.5)  # one data point
    assert len(drawn) == 2 and changed != base
    _custom_chart(1.0)
    _custom_chart(1.5)
    assert len(drawn) == 4
    with render.style_context():  # an rc setting in force while it is saved
        plt.rcParams["lines.linewidth"] = 3.0
        key_wide = chart_cache.chart_key(render.new_figure()[0])
    with render.style_context():
        key_default = chart_cache.chart_key(render.new_figure()[0])
    assert key_wide and key_default and key_wide != key_default
    plt.close("all")
    assert len(_entries()) == 4


def test_the_key_covers_matplotlib_and_the_render_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    env = json.loads(chart_cache._environment())
    assert matplotlib.__version__ in env
    assert chart_cache._file_digest(render.__file__) in env  # the render code's source
    fig, _ = render.new_figure()
    before = chart_cache.chart_key(fig)
    monkeypatch.setattr(chart_cache, "_environment", lambda: b"another matplotlib, or another render.py")
    assert chart_cache.chart_key(fig) != before
    plt.close(fig)


def test_a_changed_lambda_formatter_misses_the_cache() -> None:
    keys = []
    for fmt in (lambda v, _: f"{v:g} KiB", lambda v, _: f"{v:g} MiB"):
        fig, ax = render.new_figure()
        ax.xaxis.set_major_formatter(FuncFormatter(fmt))
        keys.append(chart_cache.chart_key(fig))
        plt.close(fig)
    assert None not in keys and keys[0] != keys[1]


UNIT = "KiB"  # read by the formatter below, as a page's lambda might read a module constant


def test_a_formatter_reading_a_changed_global_misses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def key() -> str | None:
        fig, ax = render.new_figure()
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} {UNIT}"))
        try:
            return chart_cache.chart_key(fig)
        finally:
            plt.close(fig)

    before = key()
    monkeypatch.setattr(sys.modules[__name__], "UNIT", "MiB")
    assert None not in (before, key()) and key() != before


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"svg": 3}', b"[]",
                                    b'{"sha256": "0", "svg": "<svg></svg>"}',
                                    # consistent, but no SVG in it
                                    b'{"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", '
                                    b'"svg": "hello"}'])
def test_a_damaged_entry_is_drawn_again_and_replaced(damage: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _line_chart()
    (entry,) = _entries()
    entry.write_bytes(damage)
    drawn = _drawn(monkeypatch)
    assert _line_chart() == first
    assert len(drawn) == 1
    assert json.loads(entry.read_text())["svg"]  # replaced by a good entry
    assert _line_chart() == first and len(drawn) == 1


def test_an_unwritable_cache_costs_speed_not_the_chart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(blocker))
    drawn = _drawn(monkeypatch)
    first = _line_chart()
    assert _line_chart() == first and len(drawn) == 2


def test_a_figure_that_cannot_be_pickled_is_drawn_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    drawn = _drawn(monkeypatch)
    for _ in range(2):
        fig, ax = render.new_figure()
        ax.plot([1, 2], [3, 4])
        ax.lock = threading.Lock()  # pickle refuses a lock
        render.figure_html(fig, title="t", desc="d", caption_text="c")
    assert len(drawn) == 2 and not _entries()


def test_a_new_process_reuses_the_chart(tmp_path: Path) -> None:
    """The key does not depend on the process: object ids, hash seeds, figure numbers."""
    script = (
        "import hashlib, sys, matplotlib.pyplot as plt\n"
        "from tests.build import test_chart_cache as t\n"
        "from gpucnn import chart_cache\n"
        "opened = [plt.figure() for _ in range(int(sys.argv[1]))]\n"  # other figures open: another number
        "out = t._line_chart() + t._custom_chart()\n"
        "print(chart_cache.STATS['drawn'], chart_cache.STATS['reused'], hashlib.sha256(out.encode()).hexdigest())\n"
    )
    runs = []
    for seed, opened in (("1", "0"), ("2", "3")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "GPUCNN_CACHE_DIR": str(tmp_path / "cache"),
               "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", script, opened], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split())
    assert runs[0][:2] == ["2", "0"]
    assert runs[1][:2] == ["0", "2"]
    assert runs[0][2] == runs[1][2]
