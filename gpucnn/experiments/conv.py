"""Convolution: filters on a real digit, im2col, conv2d timings and a CNN profile."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpucnn.bench import Measurement, measure, sweep
from gpucnn.experiments.nn import batch_sizes, profiler
from gpucnn.profile import current_profile
from gpucnn.profiling import kernel_rows, layer_rows, op_rows
from gpucnn.results import experiment

# Hand-made 3x3 filters, the kind a CNN's first layer learns.
FILTERS: dict[str, list[list[float]]] = {
    "vertical edges": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "diagonal edges": [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}

# The conv layer the timings use: 3x3, padding 1, on 32x32 images (CIFAR-sized).
IMAGE = 32
KERNEL = 3


def load_digit(index: int = 0) -> tuple[torch.Tensor, int]:
    """One 8x8 image of scikit-learn's digits (ships with the package, no download), scaled to 0..1."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.tensor(digits.images[index], dtype=torch.float32) / 16.0, int(digits.target[index])


def digit_filter_outputs(index: int = 0) -> dict[str, Any]:
    """The digit, and each of ``FILTERS`` applied to it with ``conv2d`` (padding 1 keeps 8x8)."""
    image, label = load_digit(index)
    weight = torch.tensor(list(FILTERS.values()), dtype=torch.float32).unsqueeze(1)  # (filters, 1, 3, 3)
    out = F.conv2d(image[None, None], weight, padding=1)[0]
    return {"image": image, "label": label, "outputs": dict(zip(FILTERS, out, strict=True))}


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The output height (or width) of a convolution or pooling window: torch's formula."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def im2col_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int = 1, padding: int = 0) -> torch.Tensor:
    """``conv2d`` as one matrix multiply: unfold the input into columns (im2col), then matmul.

    ``x``: (N, Cin, H, W); ``weight``: (Cout, Cin, k, k). Each column of the
    unfolded input holds one k x k x Cin patch, so the product of the
    (Cout, Cin*k*k) weight matrix with the (Cin*k*k, Hout*Wout) columns is the
    output, one row per output channel.
    """
    n, _, h, w = x.shape
    cout, _, k, _ = weight.shape
    cols = F.unfold(x, kernel_size=k, stride=stride, padding=padding)  # (N, Cin*k*k, Hout*Wout)
    out = weight.reshape(cout, -1) @ cols  # (N, Cout, Hout*Wout)
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(n, cout, conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding))


def conv_flops(batch: int, cin: int, cout: int, size: int = IMAGE, kernel: int = KERNEL) -> dict[str, float]:
    """FLOPs of a stride-1, same-padded conv2d: ``2*N*Cout*Hout*Wout*Cin*k*k`` forward.

    Backward computes a gradient for the input and one for the weights, each
    as costly as the forward, so forward+backward is 3x the forward.
    """
    forward = 2.0 * batch * cout * size * size * cin * kernel * kernel
    return {"forward": forward, "train": 3.0 * forward}


def measure_conv(batch: int, channels: int, device: str) -> Measurement:
    """Time forward+backward of one 3x3 conv2d (Cin = Cout = ``channels``) on 32x32 images.

    The input requires a gradient, as any layer after the first does, so the
    backward computes both the input and the weight gradients.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, IMAGE, IMAGE, generator=gen).to(device).requires_grad_(True)
    w = (torch.randn(channels, channels, KERNEL, KERNEL, generator=gen) * 0.1).to(device).requires_grad_(True)
    grad_out = torch.randn(batch, channels, IMAGE, IMAGE, generator=gen).to(device)

    def step() -> tuple[torch.Tensor, ...]:
        out = F.conv2d(x, w, padding=KERNEL // 2)
        return torch.autograd.grad(out, (x, w), grad_out)

    return measure(
        step, name=f"conv2d fwd+bwd N={batch} C={channels}", device=device,
        shape=(batch, channels, IMAGE, IMAGE), flops=conv_flops(batch, channels, channels)["train"],
        working_set_bytes=0,  # filters are reused at every pixel: only FLOP/s is checked
        allow_tf32=False,  # full FP32 on every device, like the CPU (cuDNN would use TF32 by default)
    )


def _conv_bytes(batch: int, channels: int) -> float:
    # x, grad x, out, grad out, im2col workspace (9x the input), fp32, with room to spare
    return 2.0 * 4 * batch * channels * IMAGE * IMAGE * (4 + KERNEL * KERNEL)


@experiment
def conv_batch_sweep(device: str, channels: int = 32) -> dict[str, Any]:
    """conv2d forward+backward against batch size, at fixed channels."""
    largest = 128 if current_profile().name == "full" else 8
    result = sweep(batch_sizes(largest), lambda b: measure_conv(b, channels, device), device=device,
                   bytes_needed=lambda b: _conv_bytes(b, channels))
    return {"sweep": result, "channels": channels, "image": IMAGE, "kernel": KERNEL}


@experiment
def conv_channel_sweep(device: str, batch: int = 8) -> dict[str, Any]:
    """conv2d forward+backward against channels (Cin = Cout), at fixed batch."""
    largest = 256 if current_profile().name == "full" else 16
    channels = [c for c in (1, 4, 8, 16, 32, 64, 128, 256) if c <= largest]
    result = sweep(channels, lambda c: measure_conv(batch, c, device), device=device,
                   bytes_needed=lambda c: _conv_bytes(batch, c))
    return {"sweep": result, "batch": batch, "image": IMAGE, "kernel": KERNEL}


class SmallCNN(nn.Module):
    """Two conv blocks and a classifier, for 1x32x32 images and 10 classes.

    Each layer runs under a ``record_function`` label, so a profile can be
    read per layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({
            "conv1": nn.Conv2d(1, 32, 3, padding=1), "relu1": nn.ReLU(), "pool1": nn.MaxPool2d(2),
            "conv2": nn.Conv2d(32, 64, 3, padding=1), "relu2": nn.ReLU(), "pool2": nn.MaxPool2d(2),
            "flatten": nn.Flatten(), "fc": nn.Linear(64 * 8 * 8, 10),
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, layer in self.layers.items():
            with torch.profiler.record_function(f"layer {name}"):
                x = layer(x)
        return x


@experiment
def cnn_profile(device: str, batch: int | None = None, steps: int = 3) -> dict[str, Any]:
    """``torch.profiler`` view of a small CNN's training step (forward, backward, SGD update).

    Returns plain rows: the top operators by self time (device time on an
    accelerator), the top kernels on an accelerator (a table of their own, so
    that no time is counted twice), and for each labelled layer's forward pass
    its host time and, on an accelerator, the device time of its kernels
    (``gpucnn.profiling``).
    Profiler times include its own overhead: they rank ops, they are not
    benchmark figures.
    """
    if batch is None:
        batch = 64 if current_profile().name == "full" else 16
    torch.manual_seed(0)
    model = SmallCNN().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    step()  # warm-up: oneDNN picks its kernels on the first call
    with profiler(device) as prof:
        for _ in range(steps):
            step()
        if device != "cpu":
            torch.accelerator.synchronize()
    events = prof.key_averages()
    ops = op_rows(events, steps, top=10, device=device, skip_prefix="layer ")
    layers = layer_rows(events, steps, "layer ", list(model.layers), device)
    kernels = kernel_rows(events, steps, top=10, skip_prefix="layer ")
    return {"ops": ops, "layers": layers, "batch": batch, "steps": steps, "kernels": kernels}
