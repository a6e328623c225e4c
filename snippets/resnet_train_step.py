# One training step with bf16 autocast and channels_last: the step of a ResNet, on any device.
# Needs only torch. MIT License.
import torch
import torch.nn.functional as F
from torch import nn

acc = torch.accelerator
device = acc.current_accelerator().type if acc.is_available() else "cpu"
torch.manual_seed(0)


class Block(nn.Module):
    """A residual block: two 3x3 convolutions with batch norm, plus the input (the shortcut)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


# A small residual network, so that this runs in a second on a CPU. Any ResNet trains the same way.
model = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
    Block(32), Block(32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
).to(device)
# channels_last: each pixel's channels side by side (NHWC), the layout tensor-core convolutions read.
model = model.to(memory_format=torch.channels_last)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)


def train_step(x: torch.Tensor, y: torch.Tensor) -> float:
    """Forward and loss in bf16 autocast, backward, SGD step. bf16 needs no gradient scaler (fp16 does)."""
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # outside autocast: the backward runs in the forward's dtypes
    optimizer.step()
    return loss.item()


# One fixed batch of random images, learned by heart: the loss must fall.
x = torch.randn(16, 3, 32, 32, device=device)
y = torch.randint(0, 10, (16,), device=device)
losses = [train_step(x, y) for _ in range(10)]
print(f"device {device}; loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps")
with torch.autocast(device_type=device, dtype=torch.bfloat16):
    print(f"under autocast, a convolution returns {model[0](x).dtype}; the weights stay {model[0].weight.dtype}")
assert losses[-1] < losses[0]
