"""A small CNN: two conv-ReLU-max-pool stages, then two linear layers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CNNConfig:
    """What defines the network's shape; stored with every checkpoint.

    Attributes:
        in_channels: 1 for the grey digits, 3 for the synthetic colour images.
        image_size: height = width of the input; must be divisible by 4 (two 2x2 pools).
        classes: outputs of the last layer.
        width: channels of the first conv; the second has twice as many.
        hidden: units of the hidden linear layer.
    """

    in_channels: int = 1
    image_size: int = 8
    classes: int = 10
    width: int = 32
    hidden: int = 128

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


DIGITS = CNNConfig()
SYNTHETIC = CNNConfig(in_channels=3, image_size=64)


class SmallCNN(nn.Module):
    """conv3x3-ReLU-maxpool2 twice, then linear-ReLU-linear.

    For the 8x8 digits: 1x8x8 -> 32x4x4 -> 64x2x2 -> 256 -> 128 -> 10.
    """

    def __init__(self, config: CNNConfig = DIGITS) -> None:
        super().__init__()
        if config.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2x2 pools), got {config.image_size}")
        self.config = config
        w = config.width
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, w, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = config.image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * w * side * side, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(config: CNNConfig = DIGITS, seed: int = 0) -> SmallCNN:
    """A SmallCNN whose initial weights depend only on ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(config)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(config: CNNConfig, batch_size: int = 1) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass: convs and linears only."""
    s, w, c = config.image_size, config.width, config.in_channels
    conv1 = 2 * s * s * w * c * 9
    conv2 = 2 * (s // 2) ** 2 * 2 * w * w * 9
    side = s // 4
    fc = 2 * (2 * w * side * side * config.hidden + config.hidden * config.classes)
    return float(batch_size * (conv1 + conv2 + fc))
