"""gpucnn.models: the small CNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gpucnn.models import DIGITS, SYNTHETIC, CNNConfig, SmallCNN, build_model, forward_flops


@pytest.mark.parametrize("config", [DIGITS, SYNTHETIC], ids=["digits", "synthetic"])
def test_logits_have_one_column_per_class(config: CNNConfig) -> None:
    model = build_model(config)
    x = torch.randn(3, config.in_channels, config.image_size, config.image_size)
    assert model(x).shape == (3, config.classes)


def test_it_is_conv_relu_pool_twice_then_linear_layers() -> None:
    kinds = [type(m) for m in SmallCNN().features]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 2
    assert sum(isinstance(m, nn.Linear) for m in SmallCNN().classifier) == 2


def test_the_seed_fixes_the_initial_weights_without_touching_the_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b = build_model(seed=1), build_model(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    c = build_model(seed=2)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_image_size_must_survive_two_pools() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        SmallCNN(CNNConfig(image_size=10))


def test_forward_flops_scale_with_the_batch() -> None:
    assert forward_flops(DIGITS, 8) == 8 * forward_flops(DIGITS, 1) > 0
