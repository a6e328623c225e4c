"""The one series source: every figure from every source that may be drawn.

A page asks ``sources(fn, **params)`` for an experiment's results and gets this
build's (live) results for each device it measured, then archived results from
``results/`` for accelerators this build did not measure, each wrapped in a
``Source`` that says where it came from and how to label it. A page never
assembles sources itself, and never compares figures across sources: a ratio or
a finding is taken within one ``origin`` (this build, or one record), through
``pairs``.

The rules (also on the Reproduce page):

* live series are always drawn; an archived record of the same accelerator
  model as this build's live one is not;
* of the archived records of one accelerator model, the newest compatible one
  is drawn; at most ``MAX_ACCELERATORS`` accelerators per chart;
* an archived result whose experiment version differs from the code's is
  superseded and not drawn; one whose code hash differs is drawn, labelled
  "code changed since recording"; one more than a year older than the build
  date is drawn, labelled as older, with its torch version.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gpucnn import hardware
from gpucnn.archive import Record, archive_dir, newest_first, records, status_flags
from gpucnn.hardware import HardwareReport
from gpucnn.results import Result, run

LIVE = "live"
MAX_ACCELERATORS = 3

_VENDOR_WORDS = {"NVIDIA", "AMD", "INTEL", "GEFORCE", "RADEON", "TESLA", "INSTINCT", "APPLE", "QUADRO"}


# The longest text ``one_line`` prints: real record strings are far shorter (a kernel name is cut at 80).
MAX_TEXT = 300

# HTML's own characters, and every character Markdown or its extensions (attr_list ``{: onclick=...}``,
# emphasis, links, images, headings, code, backslash escapes, table cells) could read as markup. As numeric
# entities they read the same to a reader, and Markdown passes entities through untouched.
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                           **{c: f"&#{ord(c)};" for c in "|`[]*_{}#!\\="}})


def plain_text(text: object) -> str:
    """``text`` as one line of printable characters: whitespace (newlines, tabs, U+2028) becomes one space;
    controls, bidi overrides and zero-width characters (anything Python does not call printable) are dropped."""
    return "".join(c for c in " ".join(str(text).split()) if c.isprintable())


def one_line(text: object, limit: int = MAX_TEXT) -> str:
    """A string from a record, safe anywhere on a page, in HTML or in Markdown: one line of printable
    characters, at most ``limit`` long (cut with an ellipsis), with every HTML or Markdown markup character
    as an HTML entity."""
    flat = plain_text(text)
    if len(flat) > limit:
        flat = flat[:limit - 1].rstrip() + "\u2026"
    return flat.translate(_ENTITIES)


# Characters that HTML, Markdown tables and emphasis, or matplotlib's mathtext would read as markup.
_LABEL_MARKUP = re.compile(r"[<>&\"'`\[\]|$*\\]")

# Words in a device name that tell parts of one model apart (form factor, memory): kept in its short label.
_VARIANT = re.compile(r"^(PCIE|NVL|SXM\d?|\d+GB)$", re.I)


def short_model(name: str) -> str:
    """A short label that still tells parts apart.

    ``NVIDIA H100 80GB HBM3`` -> ``H100``; ``NVIDIA H100 PCIe`` -> ``H100 PCIe``;
    ``NVIDIA A100-SXM4-80GB`` -> ``A100 SXM4 80GB``; ``NVIDIA GeForce RTX 4090`` -> ``RTX 4090``.
    A memory size is kept only beside a form factor (an A100 came in 40 and 80 GB of each).
    """
    words = [w for w in re.split(r"[\s_]+", name.strip()) if w and w.upper() not in _VENDOR_WORDS]
    if not words:
        return name.strip()[:20] or "GPU"
    parts = [p for w in words for p in w.split("-") if p]
    base = parts[0]
    rest = parts[1:]
    if base.upper() in {"RTX", "GTX", "MI", "ARC", "A", "M1", "M2", "M3", "M4", "M5"} and rest \
            and not _VARIANT.match(rest[0]):
        base, rest = f"{base} {rest[0]}", rest[1:]
    variants = [p for p in rest if _VARIANT.match(p)]
    if not any(re.match(r"^(PCIE|NVL|SXM\d?)$", v, re.I) for v in variants):
        variants = []  # "80GB HBM3" alone names the ordinary part
    return " ".join([base, *variants])[:32]


@dataclass(frozen=True)
class Source:
    """One device's result of one experiment, from this build or from one archived record."""

    device: str  # the torch device type it ran on: cpu, cuda, mps, xpu
    result: Result
    record: Record | None = None  # None: measured (or reused from the cache) in this build
    flags: frozenset[str] = frozenset()  # of an archived result: code-changed, older (see archive.status_flags)

    @property
    def archived(self) -> bool:
        return self.record is not None

    @property
    def hardware(self) -> HardwareReport:
        return self.result.hardware

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def origin(self) -> str:
        """``live``, or ``archived:<file>``: what a ratio may be taken within. Also the page's marker."""
        return LIVE if self.record is None else f"archived:{self.record.name}"

    @property
    def model(self) -> str:
        """The accelerator's short model name (``H200``), or ``CPU``."""
        acc = self.hardware.accelerator
        return "CPU" if self.is_cpu or acc is None else short_model(acc.name)

    @property
    def full_name(self) -> str:
        """The device's full hardware name, for captions (unescaped: use ``one_line`` to print it)."""
        if self.is_cpu:
            return f"{self.hardware.cpu.model} ({self.hardware.cpu.torch_threads} threads)"
        acc = self.hardware.accelerator
        return acc.name if acc else self.device

    @property
    def label(self) -> str:
        """A short label, unique within a chart or table, that marks archived sources as archived.

        Plain text wherever it is printed (HTML, Markdown, a chart): a record's strings pass the
        archive's character rules already, and the label drops what HTML, Markdown or mathtext would read
        as markup anyway, so that no caller has to remember to escape it.
        """
        return _LABEL_MARKUP.sub("", self._label())

    def _label(self) -> str:
        if not self.archived:
            return f"{self.model} (this build)"
        host = f"{short_model(self.hardware.accelerator.name)} host CPU" if self.is_cpu and self.hardware.accelerator \
            else self.model
        notes = ["archived"]
        if "code-changed" in self.flags:
            notes.append("code changed since recording")
        if "older" in self.flags:
            notes.append(f"older: {self.result.date}, torch {self.result.torch}")
        return f"{host} ({', '.join(notes)})"

    @property
    def provenance(self) -> str:
        """``measured in this build``, or ``recorded on NVIDIA H200 · torch 2.11.0+cu130 · c1ae338 · 2026-11-26``."""
        if not self.archived:
            return "measured in this build"
        r = self.result
        parts = [self.full_name, f"torch {r.torch}"]
        if r.commit:
            parts.append(r.commit)
        parts.append(r.date)
        return "recorded on " + " · ".join(parts)

    def cell(self, text: str | None = None) -> str:
        """The label (or ``text``) as a table cell carrying the machine-readable source marker."""
        return f'<span data-source="{one_line(self.origin)}">{one_line(text or self.label)}</span>'

    def caption_entry(self) -> str:
        """``label: provenance`` for a caption (escaped)."""
        where = f" (results/{self.record.name})" if self.record else ""
        return f"{self.label}: {self.provenance}{where}"


def _flags(record: Record, result: Result) -> frozenset[str] | None:
    """The result's flags (code-changed, older), or None when it may not be drawn (superseded)."""
    flags = status_flags(record, result)
    return None if "superseded" in flags else flags


def _archive() -> tuple[Record, ...]:
    """The archive's records, read once per folder (``GPUCNN_RESULTS_DIR`` may point elsewhere)."""
    return _read_archive(str(archive_dir()))


@lru_cache(maxsize=4)
def _read_archive(directory: str) -> tuple[Record, ...]:
    return tuple(records(Path(directory)))


def records_in_archive() -> list[Record]:
    """Every record in the archive, read once per build."""
    return list(_archive())


def reset() -> None:
    """Forget the archive read in this process (a new build, or a test)."""
    _read_archive.cache_clear()


def _live_accelerator_models() -> set[str]:
    acc = hardware.detect().accelerator
    return {short_model(acc.name)} if acc else set()


# Each accelerator model is drawn once: keyed by its short label, which keeps form factor and memory
# variants apart (an H100 PCIe record does not hide behind an H100 SXM one).


# What the series rule does with an archived accelerator record, for one experiment: drawn, or why not. Values,
# not sentences: the Results page's words for them are in docs/results.md.
DRAWN = "drawn"
NOT_DRAWN = ("live-model", "no-result", "superseded", "newer-record", "cap")


@dataclass(frozen=True)
class Choice:
    """One archived accelerator record, for one experiment: drawn, or the reason it is not (``NOT_DRAWN``)."""

    record: Record
    result: Result | None  # its result of the experiment (None: it has none)
    flags: frozenset[str]  # of a result that may be drawn: code-changed, older
    reason: str  # DRAWN, or one of NOT_DRAWN
    by: tuple[str, ...] = ()  # newer-record: the record drawn instead; cap: what took the places (file names,
    # and "this build" for a live accelerator)


def choices(fn: Callable[..., Any], **params: Any) -> list[Choice]:
    """Every archived accelerator record, newest first, with what the series rule does with it for ``fn``.

    A record of the model this build measures live is not drawn; nor one without a result, nor a superseded
    result; of one model, the newest record left is drawn, the older ones are not. Then the cap: a chart holds
    ``MAX_ACCELERATORS``, this build's own first, then the models in the order of their drawn records, newest
    first (by the record's date, then its file name: ``archive.newest_first``).
    """
    live = _live_accelerator_models()
    out: list[Choice] = []
    drawn_of_model: dict[str, str] = {}
    for record in newest_first(_archive()):
        acc = record.hardware.accelerator
        if acc is None:
            continue
        model = short_model(acc.name)
        result = find(record, fn, device=acc.device_type, **params)
        flags = status_flags(record, result) if result is not None else frozenset()
        if model in live:
            reason, by = "live-model", ()
        elif result is None:
            reason, by = "no-result", ()
        elif "superseded" in flags:
            reason, by = "superseded", ()
        elif model in drawn_of_model:
            reason, by = "newer-record", (drawn_of_model[model],)
        else:
            drawn_of_model[model] = record.name
            reason, by = DRAWN, ()
        out.append(Choice(record, result, flags, reason, by))
    places = max(0, MAX_ACCELERATORS - len(live))
    kept = list(drawn_of_model.values())[:places]
    took = tuple(["this build"] * len(live) + kept)
    return [Choice(c.record, c.result, c.flags, "cap", took) if c.reason == DRAWN and c.record.name not in kept
            else c for c in out]


def archived_accelerators(fn: Callable[..., Any], **params: Any) -> list[tuple[Record, Result, frozenset[str]]]:
    """(record, accelerator result, status) for each accelerator model this build did not measure.

    The newest drawable record of each model; at most ``MAX_ACCELERATORS`` in all, live ones included
    (``choices`` says why each other record is not drawn).
    """
    return [(c.record, c.result, c.flags) for c in choices(fn, **params) if c.reason == DRAWN and c.result]


def _defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def find(record: Record, fn: Callable[..., Any], **params: Any) -> Result | None:
    """The record's result of ``fn`` with exactly these params (a param left out means its default)."""
    defaults = _defaults(fn)
    want = {**defaults, **params}
    for r in record.results:
        if r.experiment == fn.__name__ and {**defaults, **r.params} == want:
            return r
    return None


def sources(fn: Callable[..., Any], *, hosts: bool = False, cpu: bool = True, **params: Any) -> list[Source]:
    """Every drawable source of an experiment that takes a ``device`` parameter.

    This build's devices first (CPU, then its accelerator), then each archived
    accelerator; with ``hosts``, each archived accelerator is followed by its
    own record's CPU result, for comparisons within that record.
    """
    out = [Source(d, run(fn, device=d, **params)) for d in hardware.detect().devices if cpu or d != "cpu"]
    for record, result, flags in archived_accelerators(fn, **params):
        out.append(Source(result.params["device"], result, record, flags))
        if hosts:
            host = find(record, fn, device="cpu", **params)
            if host is not None and _flags(record, host) is not None:
                out.append(Source("cpu", host, record, _flags(record, host)))
    return out


def sibling(src: Source, fn: Callable[..., Any], **params: Any) -> Source | None:
    """Another experiment's result from the same origin and device as ``src`` (for figures that combine them)."""
    if src.record is None:
        return Source(src.device, run(fn, device=src.device, **params))
    result = find(src.record, fn, device=src.device, **params)
    if result is None or _flags(src.record, result) is None:
        return None
    return Source(src.device, result, src.record, _flags(src.record, result))


def accelerators(fn: Callable[..., Any], **params: Any) -> list[Source]:
    """The accelerator sources only: this build's, then archived ones."""
    return [s for s in sources(fn, cpu=False, **params) if not s.is_cpu]


@dataclass(frozen=True)
class Pair:
    """An accelerator and the CPU of the same machine and source: what a ratio may compare."""

    gpu: Source
    cpu: Source

    @property
    def archived(self) -> bool:
        return self.gpu.archived

    def where(self) -> str:
        """Who ran both sides, for a sentence: ``this build's`` or ``the H200 record's``."""
        return "this build's" if not self.archived else f"the archived {self.gpu.model} record's"


def pairs(fn: Callable[..., Any], **params: Any) -> list[Pair]:
    """(accelerator, same-origin CPU) for this build's accelerator and each archived one."""
    found = sources(fn, hosts=True, **params)
    by_origin: dict[str, dict[str, Source]] = {}
    for s in found:
        by_origin.setdefault(s.origin, {})["cpu" if s.is_cpu else "gpu"] = s
    return [Pair(d["gpu"], d["cpu"]) for d in by_origin.values() if "gpu" in d and "cpu" in d]


def live_has_accelerator() -> bool:
    return hardware.detect().accelerator is not None


def any_archived(found: Sequence[Source]) -> bool:
    return any(s.archived for s in found)


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def record_lines(found: Sequence[Source]) -> str:
    """One line per archived record among ``found``: its labels, full hardware names, torch, commit, date
    and file (escaped HTML, each line marked with its source). ``render.section_sources`` prints them once
    per section; this build's own sources are described by ``render.provenance``.
    """
    by_record: dict[str, list[Source]] = {}
    for s in found:
        if s.record is not None:
            by_record.setdefault(s.record.name, []).append(s)
    parts = []
    for name, group in by_record.items():
        r = group[0].result
        hw = group[0].hardware
        machine = hw.accelerator.name if hw.accelerator else hw.cpu.model
        host = f" with {hw.cpu.model} ({hw.cpu.torch_threads} threads)" if hw.accelerator else ""
        labels = and_list(list(dict.fromkeys(s.label for s in group)))
        when = " · ".join([f"torch {r.torch}", *([r.commit] if r.commit else []), r.date])
        text = f"{labels}: recorded on {machine}{host} · {when} (results/{name})."
        parts.append(f'<span data-source="{one_line("archived:" + name)}">{one_line(text)}</span>')
    return "<br>".join(parts)


@dataclass
class PageContext:
    """What one page's rendering collects: the sources of its figures, section by section, and whether it has
    said "No GPU in this build" yet.

    A page section (a ``##`` heading) names this build's machine and each archived record once, in one line
    each, after its figures, instead of under every chart. Captions and facts add to ``live``, ``labels`` and
    ``archived`` (``note``); ``take_section`` empties them. ``templated`` keeps, per section, what the page's
    template noted while it rendered (``gpucnn.templating``), since its blocks run only afterwards.
    """

    name: str | None = None  # the page's source path; None outside a build (tests, a notebook)
    noted_no_gpu: bool = False
    live: list[Any] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    archived: list[Any] = field(default_factory=list)
    templated: dict[int, tuple[list[Any], list[str], list[Any]]] = field(default_factory=dict)


# The page being rendered: the one module-level handle to per-page state. The MkDocs hook replaces it for each
# page (``begin_page``); tests and notebooks share the one made here.
PAGE = PageContext()


def note(cited: Result | Source | Sequence[Result | Source] | None) -> None:
    """Remember the sources a caption or a fact stands on, for its section's sources line."""
    if cited is None:
        return
    for item in [cited] if isinstance(cited, (Result, Source)) else cited:
        if isinstance(item, Source) and item.archived:
            if all(s.origin != item.origin or s.label != item.label for s in PAGE.archived):
                PAGE.archived.append(item)
        else:
            result = item.result if isinstance(item, Source) else item
            if all(r is not result for r in PAGE.live):
                PAGE.live.append(result)
            if isinstance(item, Source) and item.label not in PAGE.labels:
                PAGE.labels.append(item.label)


def take_section() -> tuple[list[Result], list[str], list[Source]]:
    """This build's results, their labels and the archived sources noted since the last call; forgets them."""
    taken = (list(PAGE.live), list(PAGE.labels), list(PAGE.archived))
    PAGE.live.clear()
    PAGE.labels.clear()
    PAGE.archived.clear()
    return taken


def pending_sources() -> bool:
    """Whether figures were shown whose sources no section line has named yet (checked at a page's end)."""
    return bool(PAGE.live or PAGE.labels or PAGE.archived)


def begin_page(name: str | None) -> PageContext:
    """A new page is rendered: a fresh context (it says "No GPU in this build" once: ``no_gpu_state``)."""
    global PAGE
    PAGE = PageContext(name=name)
    return PAGE


def no_gpu_state(found: Sequence[Source] | None = None) -> str:
    """Whether a CPU-only build says "No GPU in this build" here, once a page: ``""`` (not here), ``"archived"``
    (the GPU figures shown are archived ones) or ``"none"`` (no GPU figure at all). The words are
    ``docs/.partials/notes.md``'s."""
    if live_has_accelerator():
        return ""
    if PAGE.name is not None:
        if PAGE.noted_no_gpu:
            return ""
        PAGE.noted_no_gpu = True
    return "archived" if (any_archived(found) if found is not None else bool(_archive())) else "none"


