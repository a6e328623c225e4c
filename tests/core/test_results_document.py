"""results.json holds one result per (experiment, params): an archive refuses a record with two."""

from __future__ import annotations

from types import SimpleNamespace

from gpucnn.results import latest_per_experiment


def _r(experiment: str, params: dict, measured_at: str) -> SimpleNamespace:
    return SimpleNamespace(experiment=experiment, params=params, measured_at=measured_at)


def test_the_latest_of_two_results_of_one_experiment_is_kept_in_first_seen_order() -> None:
    old = _r("training_throughput", {"device": "cpu"}, "2026-11-26T10:03:32+00:00")
    other = _r("matmul_sweep", {"device": "cpu"}, "2026-11-26T10:03:00+00:00")
    new = _r("training_throughput", {"device": "cpu"}, "2026-11-26T10:04:09+00:00")
    cuda = _r("training_throughput", {"device": "cuda"}, "2026-11-26T10:01:00+00:00")
    assert latest_per_experiment([old, other, new, cuda]) == [new, other, cuda]
    assert latest_per_experiment([new, other, old]) == [new, other]  # an older one seen later loses too
