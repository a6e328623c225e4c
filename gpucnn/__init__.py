"""gpucnn: the measurement library behind the gpucnn documentation site.

Data flows one way: ``hardware`` (what machine is this) -> ``bench`` (the one
timing harness) -> ``experiments`` (what to measure) -> ``results`` (cache,
provenance, results.json, archive) -> ``render`` (tables, charts) -> pages.
Nothing in this package prints: pages print what it returns.
"""

from __future__ import annotations

__version__ = "0.1.0"
