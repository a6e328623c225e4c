"""The reuse experiment: the no-reuse product is the same product, and bad input is refused."""

from __future__ import annotations

import pytest
import torch

from gpucnn.experiments.reuse import broadcast_matmul, measure_reuse, reuse_ratio, reuse_sizes


def test_broadcast_and_sum_computes_the_matmul() -> None:
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(17, 17, generator=gen), torch.randn(17, 17, generator=gen)
    torch.testing.assert_close(broadcast_matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)


def test_both_ways_count_the_same_flops_and_the_broadcast_counts_its_products() -> None:
    m, b = measure_reuse(16, "cpu", "matmul"), measure_reuse(16, "cpu", "broadcast")
    assert m.flops == b.flops == 2 * 16**3
    assert b.bytes_moved == 2 * 4 * 16**3


def test_unknown_method_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown method 'loop': choose matmul or broadcast"):
        measure_reuse(4, "cpu", "loop")


def test_experiment_measures_both_ways_at_every_size() -> None:
    data = reuse_ratio("cpu")
    assert [m.shape[0] for m in data["matmul"].points] == list(reuse_sizes("cpu"))
    assert [m.shape[0] for m in data["broadcast"].points] == list(reuse_sizes("cpu"))
