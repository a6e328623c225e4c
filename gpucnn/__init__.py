"""gpucnn: the measurement library behind the gpucnn documentation site.

Data flows one way: ``hardware`` (what machine is this) -> ``bench`` (the one
timing harness) -> ``experiments`` (what to measure) -> ``results`` (cache,
provenance, results.json, archive) -> ``render`` (tables, charts) -> pages.
Nothing in this package prints: pages print what it returns.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"


class _NoToolkitGuess(logging.Filter):
    """Drops torch's "No CUDA runtime is found, using CUDA_HOME=..." (and its ROCm twin).

    torch.utils.benchmark, the harness's timer, imports torch.utils.cpp_extension,
    which on a CUDA or ROCm build of torch without a GPU logs where it would
    find a toolkit to compile extensions with. gpucnn compiles none, so the
    line says nothing about a measurement; it only put the build machine's
    CUDA_HOME on a page and a second line before the CLI's one-line errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("No CUDA runtime is found", "No ROCm runtime is found"))


# Here, so that it is in place before any gpucnn module imports torch.utils.benchmark;
# once, though the MkDocs hook re-imports gpucnn on every rebuild.
_cpp_extension_log = logging.getLogger("torch.utils.cpp_extension")
if not any(type(f).__name__ == _NoToolkitGuess.__name__ for f in _cpp_extension_log.filters):
    _cpp_extension_log.addFilter(_NoToolkitGuess())
