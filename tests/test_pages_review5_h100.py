"""The H100 build of session 17, read by a GPU performance engineer: sentences its numbers contradicted.

Each test feeds the page function synthetic figures shaped like that build's (no measured value is asserted)
and checks that the sentence follows the data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _forget_noted_sources() -> Iterator[None]:
    """Captions note their sources until a section line prints them: fake ones must not reach the next test."""
    yield
    from gpucnn.sources import take_section

    take_section()




def _row(op: str, calls: float, host_pct: float, device_pct: float | None) -> dict:
    return {"op": op, "calls": calls, "self_cpu_s": host_pct * 1e-6, "self_cpu_pct": host_pct,
            "self_device_s": None if device_pct is None else device_pct * 1e-7, "self_device_pct": device_pct}


