"""The build log names points whose runs spread widely, so that a rebuild on a busy machine is noticed."""

from __future__ import annotations

from types import SimpleNamespace

from gpucnn.measurement import Measurement, Sweep
from gpucnn.results import measurements_in, noisy_points


def _m(name: str, times: tuple[float, ...]) -> Measurement:
    return Measurement(name=name, device="cpu", dtype="float32", shape=(1,), threads=2, times_s=times,
                       number_per_run=1)


STEADY = _m("steady", (1.0, 1.0, 1.01, 1.0, 0.99))
NOISY = _m("noisy", (1.0, 2.0, 1.0, 3.0, 1.0, 2.5))


def test_every_measurement_is_found_in_nested_data() -> None:
    data = {"sweep": Sweep((STEADY, NOISY)), "one": STEADY, "more": [{"x": NOISY}], "n": 3, "s": "text"}
    assert measurements_in(data) == [STEADY, NOISY, STEADY, NOISY]


def test_only_points_beyond_the_spread_are_named() -> None:
    quiet = SimpleNamespace(experiment="quiet_exp", data={"a": STEADY})
    busy = SimpleNamespace(experiment="busy_exp", data={"sweep": Sweep((STEADY, NOISY))})
    assert noisy_points([quiet]) == ""
    line = noisy_points([quiet, busy])
    assert "1 of 3 points" in line and "busy_exp: noisy on cpu" in line and "steady" not in line
    assert "\n" not in line and "GPUCNN_FRESH=1" in line
    assert noisy_points([busy], fraction=10.0) == ""  # the threshold decides
