"""A cache of drawn charts: an unchanged chart is not drawn again.

Drawing is most of an unchanged rebuild's time: for every chart matplotlib lays
out each tick label and text (twice, with ``bbox_inches="tight"``). What ``savefig``
writes is a function of the figure's state (every artist, with its data), the
rc settings in force while it saves, matplotlib, numpy and the fonts it measures
text with, and the code that saves it (``gpucnn/render.py`` and this module).
The cache key is a hash of all of these, so a chart is reused only where
drawing it again would write the same bytes.

Only ``savefig``'s output is cached. What ``render.figure_html`` does around it
(the data-source and accessibility attributes, the caption, noting the
sources for the section's sources line) runs in every build, drawn or reused.

The figure's state is hashed by pickling it with ``_StatePickler``, which is
never loaded back: it makes the pickle the same in every process (no object
ids, no figure numbers) and hashes functions (tick formatters, a secondary
axis's transforms) by their code. A figure it cannot pickle is drawn, not
cached. Entries live in ``<cache dir>/charts/``; an unreadable or altered entry
is drawn again and replaced. Delete that folder to draw every chart again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import pickle
import sys
import types
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import TransformNode

from gpucnn.results import atomic_write_text, cache_dir

__all__ = ["STATS", "chart_key", "environment_digest", "svg_of"]

# Charts drawn and reused by this process, for the build log.
STATS = {"drawn": 0, "reused": 0}


@cache
def _file_digest(path: str | None) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


class _StatePickler(pickle.Pickler):
    """Pickles a figure for hashing only: the same bytes for the same figure in every process."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Figure):
            # Its number in pyplot's list of open figures depends on what else is open, not on how it looks.
            state = obj.__getstate__()
            state.pop("_number", None)
            state.pop("_restore_to_pylab", None)
            return type(obj), (), state
        if isinstance(obj, TransformNode):
            # _parents maps id(parent) to the parent: ids differ in every process. The transforms a figure
            # draws with are reached from its artists anyway.
            state = obj.__getstate__()
            state.pop("_parents", None)
            return type(obj), (), state
        if isinstance(obj, types.FunctionType):
            # A function (a lambda formatter, a secondary axis's transform) pickles by name, and a lambda
            # not at all: hash what it computes, the source file it comes from, and the globals it reads.
            cells = tuple(c.cell_contents for c in obj.__closure__ or ())
            module = sys.modules.get(obj.__module__)
            source = _file_digest(getattr(module, "__file__", None))
            return tuple, (("function", obj.__module__, obj.__qualname__, obj.__code__, obj.__defaults__,
                            obj.__kwdefaults__, cells, source, _globals_read(obj)),)
        if isinstance(obj, types.CodeType):
            # A frozenset constant (`x in {"a", "b"}`) pickles in hash order, which differs per process.
            consts = tuple(tuple(sorted(map(repr, c))) if isinstance(c, frozenset) else c for c in obj.co_consts)
            return tuple, (("code", obj.co_code, consts, obj.co_names),)
        return NotImplemented


def _globals_read(fn: types.FunctionType) -> tuple:
    """The module globals a function reads, as they are now: a value (a unit string, a scale) by its repr,
    a function or class by the digest of the file that defines it. A lambda formatter that reads a global
    draws differently when the global changes, though its own code and file may not."""
    out = []
    for name in fn.__code__.co_names:
        if name not in fn.__globals__:
            continue
        value = fn.__globals__[name]
        if isinstance(value, (str, int, float, bool, type(None), tuple, frozenset)):
            out.append((name, repr(sorted(map(repr, value)) if isinstance(value, frozenset) else value)))
        elif callable(value):
            module = sys.modules.get(getattr(value, "__module__", "") or "")
            out.append((name, _file_digest(getattr(module, "__file__", None))))
    return tuple(out)


@cache
def _environment() -> bytes:
    """What decides a drawing besides the figure and the rc settings: versions, fonts, the saving code."""
    from matplotlib import font_manager

    fonts = []
    for font in font_manager.fontManager.ttflist:
        try:
            stat = Path(font.fname).stat()
            fonts.append((font.fname, stat.st_size, stat.st_mtime_ns))
        except OSError:
            fonts.append((font.fname, None, None))
    return json.dumps([
        matplotlib.__version__, np.__version__, sys.version_info[:3], sorted(fonts),
        _file_digest(__file__), _file_digest(str(Path(__file__).with_name("render.py"))),
    ]).encode()


def environment_digest() -> str:
    """A digest of what decides every chart's drawing besides its figure and rc settings (for the page cache)."""
    return hashlib.sha256(_environment()).hexdigest()


def chart_key(fig: Figure) -> str | None:
    """The cache key of ``fig`` as it would be saved now (call it inside the rc settings it is saved with);
    None if the figure cannot be hashed."""
    buf = io.BytesIO()
    try:
        pickler = _StatePickler(buf, protocol=5)
        pickler.dump(fig)
        pickler.dump(sorted(matplotlib.rcParams.items()))
    except Exception:  # an artist that pickle cannot handle: drawn every time, not cached
        return None
    digest = hashlib.sha256(_environment())
    digest.update(buf.getvalue())
    return digest.hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir() / "charts" / f"{key}.json"


def _load(key: str) -> str | None:
    """The cached SVG, or None when missing or not exactly what was stored (a damaged file is redrawn)."""
    try:
        entry = json.loads(_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("svg"), str):
        return None
    svg = entry["svg"]
    if entry.get("sha256") != hashlib.sha256(svg.encode()).hexdigest() or "<svg" not in svg:
        return None
    return svg


def _store(key: str, svg: str) -> None:
    entry = {"sha256": hashlib.sha256(svg.encode()).hexdigest(), "svg": svg}
    # An unwritable or full cache costs the next build its speed, not this build.
    with contextlib.suppress(OSError):
        atomic_write_text(_path(key), json.dumps(entry))


def svg_of(fig: Figure, draw: Callable[[], str]) -> str:
    """``draw()`` (which saves ``fig`` as SVG), or what it returned for an identical figure before.

    Call it inside the rc settings ``draw`` saves with: they are part of the key.
    """
    key = chart_key(fig)
    svg = _load(key) if key else None
    if svg is not None:
        STATS["reused"] += 1
        return svg
    svg = draw()
    STATS["drawn"] += 1
    if key:
        _store(key, svg)
    return svg
