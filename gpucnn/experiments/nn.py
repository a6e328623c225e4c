"""Artificial neural networks: one layer by hand, and an MLP's training step timed.

The hand-written backward pass is here once, so the tests can hold it to
autograd; the page's snippet repeats it in plain torch for the reader to copy.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch import nn

from gpucnn.bench import Measurement, measure, sweep
from gpucnn.profile import current_profile
from gpucnn.profiling import op_rows
from gpucnn.results import experiment

# The MLP the page times: a digit-sized input (28x28 = 784), two hidden layers.
MLP_WIDTHS = (784, 1024, 1024, 10)
# The batch at which the forward/backward split and the profile are taken.
SPLIT_BATCH = 256


def layer_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One dense layer with a sigmoid: ``z = x @ w.T + b`` (the transfer function), ``a = sigmoid(z)``."""
    z = x @ w.T + b
    return z, torch.sigmoid(z)


def bce_loss(a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the activations ``a`` against 0/1 targets ``y``."""
    return -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).mean()


def manual_layer_grads(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The backward pass of ``bce_loss(sigmoid(x @ w.T + b), y)``, by hand.

    With a sigmoid and binary cross-entropy the derivative of the loss with
    respect to ``z`` is ``(a - y) / count`` (``count`` = elements averaged);
    then the chain rule through the matmul gives two more matmuls.
    """
    _, a = layer_forward(x, w, b)
    dz = (a - y) / a.numel()
    return {"w": dz.T @ x, "b": dz.sum(0), "x": dz @ w}


def autograd_layer_grads(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The same gradients from autograd."""
    x, w, b = (t.detach().requires_grad_(True) for t in (x, w, b))
    _, a = layer_forward(x, w, b)
    gw, gb, gx = torch.autograd.grad(bce_loss(a, y), (w, b, x))
    return {"w": gw, "b": gb, "x": gx}


def make_mlp(widths: tuple[int, ...] = MLP_WIDTHS) -> nn.Sequential:
    """Linear layers with ReLU between them (no activation after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mlp_flops(batch: int, widths: tuple[int, ...] = MLP_WIDTHS) -> dict[str, float]:
    """Matmul FLOPs of one training step (an FMA counts as 2 FLOP).

    Forward: ``2 * batch * in * out`` per layer. Backward: the weight gradient
    costs as much again, and so does the input gradient, except for the first
    layer, whose input (the data) needs none. So fwd+bwd is 3x the forward less
    the first layer's forward: the larger the first layer's share of the
    forward, the further below 3x (the ANN page computes the ratio from this
    count). Bias adds, ReLU and the loss are not counted (they are < 1 %).
    """
    per_layer = [2.0 * batch * a * b for a, b in pairwise(widths)]
    forward = sum(per_layer)
    backward = forward + sum(per_layer[1:])
    return {"forward": forward, "backward": backward, "train": forward + backward}


def batch_sizes(largest: int) -> list[int]:
    """Powers of two from 1 to ``largest``."""
    sizes, b = [], 1
    while b <= largest:
        sizes.append(b)
        b *= 2
    return sizes


def _mlp_inputs(batch: int, device: str, gen: torch.Generator) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = make_mlp().to(device)
    x = torch.randn(batch, MLP_WIDTHS[0], generator=gen).to(device)
    y = torch.randint(0, MLP_WIDTHS[-1], (batch,), generator=gen).to(device)
    return model, x, y


def measure_mlp_step(batch: int, device: str, part: str = "train") -> Measurement:
    """Time an MLP's forward (``part="forward"``) or forward+backward (``"train"``).

    The gradients are returned by ``torch.autograd.grad`` rather than
    accumulated into ``.grad``, so every call does the same work.
    """
    torch.manual_seed(0)
    model, x, y = _mlp_inputs(batch, device, torch.Generator().manual_seed(0))
    params = tuple(model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def forward() -> torch.Tensor:
        return loss_fn(model(x), y)

    def train() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(loss_fn(model(x), y), params)

    flops = mlp_flops(batch)
    return measure(
        forward if part == "forward" else train, name=f"MLP {part} batch={batch}", device=device,
        shape=(batch, *MLP_WIDTHS), flops=flops[part],
        # Weights are reused by every sample: only the FLOP/s is checked against a peak.
        working_set_bytes=0,
        allow_tf32=False,  # full FP32 on every device, like the CPU
    )


def _mlp_bytes(batch: int) -> float:
    weights = sum(a * b + b for a, b in pairwise(MLP_WIDTHS))
    activations = batch * sum(MLP_WIDTHS)
    # weights + their gradients, activations + their gradients, fp32, with room to spare
    return 4.0 * 4 * (2 * weights + 2 * activations)


@experiment
def mlp_batch_sweep(device: str) -> dict[str, Any]:
    """Forward+backward time of the MLP for batch sizes 1, 2, 4, ... on ``device``."""
    largest = 1024 if current_profile().name == "full" else 64
    result = sweep(batch_sizes(largest), lambda b: measure_mlp_step(b, device), device=device,
                   bytes_needed=_mlp_bytes)
    return {"sweep": result, "widths": list(MLP_WIDTHS)}


def profile_rows(prof: Any, steps: int, top: int, device: str, skip_prefix: str | None = None) -> list[dict[str, Any]]:
    """The ``top`` operators of a finished ``torch.profiler`` run, per step (see ``gpucnn.profiling.op_rows``:
    kernels and labels are not rows, so no kernel is counted twice)."""
    return op_rows(prof.key_averages(), steps, top, device, skip_prefix)


def profiler(device: str) -> Any:
    """A profiler of CPU ops and, on an accelerator, its kernels.

    ``torch.autograd.profiler.profile`` is what ``torch.profiler.profile``
    wraps; the wrapper's first use imports torch._inductor, seconds of build
    time for nothing this page needs.
    """
    from torch.autograd.profiler import profile

    return profile(use_kineto=True, use_device=None if device == "cpu" else device)


@experiment
def mlp_time_split(device: str, batch: int | None = None, steps: int = 5) -> dict[str, Any]:
    """Where an MLP training step's time goes: forward against forward+backward, and a profile.

    The backward time is the difference of two measurements; the profile is
    ``torch.profiler``'s view of ``steps`` warmed-up steps (a profile has its
    own overhead: its times are for ranking ops, the harness's for figures).
    """
    if batch is None:
        batch = SPLIT_BATCH if current_profile().name == "full" else 32
    forward = measure_mlp_step(batch, device, "forward")
    train = measure_mlp_step(batch, device, "train")
    torch.manual_seed(0)
    model, x, y = _mlp_inputs(batch, device, torch.Generator().manual_seed(0))
    params = tuple(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):  # warm-up outside the profile
        torch.autograd.grad(loss_fn(model(x), y), params)
    with profiler(device) as prof:
        for _ in range(steps):
            torch.autograd.grad(loss_fn(model(x), y), params)
        if device != "cpu":
            torch.accelerator.synchronize()
    return {
        "forward": forward, "train": train, "batch": batch, "steps": steps,
        "profile": profile_rows(prof, steps, top=8, device=device),
    }
