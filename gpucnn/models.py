"""A small CNN: two conv-ReLU-max-pool stages, then two linear layers."""

from __future__ import annotations

import copy
from collections.abc import Callable
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


# --- ResNet-18 and ResNet-50 -------------------------------------------------
# The standard v1.5 architectures, written here with torchvision's module names
# and layer order (tests compare them layer by layer with a torchvision
# fixture), so that torchvision need not be a dependency: each of its wheels
# pins one torch version, and installing it would replace the user's torch.

class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18 and -34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), and a shortcut (ResNet-50 and deeper).

    v1.5: the stride sits in the 3x3 convolution, not the first 1x1 (v1), which
    costs a little more compute and is what torchvision and MLPerf train.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A 7x7 stem, four stages of residual blocks (each halves the image and widens), pooling, one linear layer."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        # torchvision's initialisation: He (fan-out) for convolutions, BN weight 1 and bias 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # The shortcut must match the block's output shape: a strided 1x1 convolution.
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNETS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def build_resnet(name: str, seed: int = 0) -> ResNet:
    """ResNet-18 or ResNet-50 (``RESNETS``), with random weights that depend only on ``seed``: no download."""
    if name not in RESNETS:
        raise ValueError(f"unknown ResNet {name!r}: choose one of {', '.join(RESNETS)}")
    block, layers = RESNETS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNet(block, layers)


def layer_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """Multiply-accumulates of one forward pass, per module type, counted from the layers themselves.

    Each conv and linear layer's MACs come from its output shape, caught by a
    forward hook on a meta-device copy of the model (no memory, no compute).
    Convolution: output elements x Cin/groups x kh x kw; linear: output elements
    x in_features. Batch norm, ReLU, pooling and the residual add count as 0
    MACs, as published MAC counts do: they are memory-bound, not arithmetic.
    """
    totals = {"conv": 0.0, "linear": 0.0}

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            totals["conv"] += output.numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            totals["linear"] += output.numel() * module.in_features

    forward_on_meta(model, input_shape, hook, lambda m: isinstance(m, (nn.Conv2d, nn.Linear)))
    return totals


def forward_on_meta(model: nn.Module, input_shape: tuple[int, ...], hook: Callable[..., None],
                    hooked: Callable[[nn.Module], bool]) -> None:
    """Run ``model`` once on the meta device, calling ``hook(module, inputs, output)`` after each module that
    ``hooked`` selects: every layer's shapes, with no memory and no arithmetic. ``model`` is left untouched."""
    meta = copy.deepcopy(model).to("meta")
    handles = [m.register_forward_hook(hook) for m in meta.modules() if hooked(m)]
    try:
        with torch.no_grad():
            meta(torch.empty(input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
