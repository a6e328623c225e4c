"""ResNet training at real scale: throughput against batch, the standard speed-ups, memory, and a profile.

Every device measures ResNet-18 at 112x112 (``CPU_WORKLOAD``): a ResNet-50
step at 224x224 is about 8 times its arithmetic per image, too slow for a
2-core build machine's budget, and a GPU
build runs the same workload on its GPU and its host CPU, for a ratio within
one record. Accelerators also measure ResNet-50 at 224x224
(``GPU_WORKLOAD``), the network and size that published figures quote.

A training step here is forward, cross-entropy loss, backward and an SGD step
with momentum (ResNet's own recipe), on synthetic images and labels: no data
set and no weights are downloaded. FLOPs are counted from the model's
convolution and linear layers (``gpucnn.models.layer_macs``), x2 per
multiply-add, x3 for forward + backward.

Skip reasons and verdicts are stored as short codes; the page says what they mean.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpucnn.bench import Measurement, is_out_of_memory, measure, sweep
from gpucnn.experiments.nn import profiler
from gpucnn.hardware import detect
from gpucnn.models import build_resnet, forward_on_meta, layer_macs, parameter_count
from gpucnn.profile import current_profile
from gpucnn.profiling import _device_time as _self_device_us  # an op's self device time in µs
from gpucnn.results import experiment
from gpucnn.train import Variant, autocast

CPU_WORKLOAD = {"model": "resnet18", "image": 112}
GPU_WORKLOAD = {"model": "resnet50", "image": 224}
CLASSES = 1000

# The variants, each timed against "fp32" on the same device and batch.
FP32 = Variant("fp32")
RESNET_VARIANTS = (
    FP32,
    Variant("TF32", tf32=True),
    Variant("bf16 autocast", amp=True),
    Variant("channels_last", channels_last=True),
    # The three together; TF32 applies on CUDA only (what autocast leaves in fp32), so elsewhere this is
    # bf16 autocast + channels_last.
    Variant("combined", tf32=True, amp=True, channels_last=True),
)
# Why a variant is not measured on a device (codes; docs/resnet.md says what each means).
SKIP_TF32_CUDA_ONLY = "tf32-cuda-only"
SKIP_NO_BF16_UNIT = "no-bf16-unit"
SKIP_COMPILE_BUDGET = "compile-budget"

# torch.compile of a ResNet-50 training step takes tens of seconds cold, more than this page's whole GPU
# budget (the training notebook measures torch.compile on a small CNN instead).
COMPILE = Variant("torch.compile", compile=True)


def train_batches(device: str, model: str) -> list[int]:
    """Batch sizes of the throughput sweep."""
    quick = current_profile().name == "quick"
    if device == "cpu":
        return [1, 2] if quick else [1, 2, 4, 8]
    return [1, 8] if quick else [1, 4, 16, 64, 256]


def variant_batch(device: str) -> int:
    """The batch the variants are timed at: the sweep's largest, where a device is kept busy."""
    return train_batches(device, "")[-1]


def cpu_has_bf16_unit() -> bool:
    """Whether this CPU multiplies bf16 faster than fp32 (AMX, AVX512_BF16, Arm BFMMLA).

    Without such a unit, oneDNN has no fast bf16 convolution, and torch falls
    back to a reference kernel far slower than fp32.
    """
    cpu = detect().cpu
    return bool(cpu.peak_bf16 and cpu.peak_fp32 and cpu.peak_bf16.value > cpu.peak_fp32.value)


def tf32_applies(device: str) -> bool:
    """TF32 exists on NVIDIA GPUs only (ROCm also answers to ``cuda``; torch's TF32 switches act on CUDA)."""
    acc = detect().accelerator
    return device == "cuda" and acc is not None and acc.backend == "CUDA"


def skip_reason(variant: Variant, device: str) -> str | None:
    """The code of why ``variant`` is not measured on ``device``, or None."""
    if variant.tf32 and not variant.amp and not tf32_applies(device):
        return SKIP_TF32_CUDA_ONLY
    if variant.amp and device == "cpu" and not cpu_has_bf16_unit():
        return SKIP_NO_BF16_UNIT
    return None


@contextmanager
def cudnn_benchmark(device: str) -> Iterator[None]:
    """cuDNN times its convolution algorithms on each new shape and keeps the fastest; restored on exit.

    Off by default in torch, because the choice costs time at every new shape. A training run has one
    shape, so real training turns it on, and so do these experiments (and nothing else on the site).
    """
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def synthetic_images(batch: int, image: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and labels, made on the CPU with a seed, then copied (outside any timed call)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, image, image, generator=gen)
    y = torch.randint(0, CLASSES, (batch,), generator=gen)
    return x.to(device), y.to(device)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, variant: Variant) -> Callable[[], None]:
    """One training step: forward, loss, backward, SGD with momentum. The memory format is applied here."""
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # One optimizer op a profile can name apart from the layers: on a GPU the multi-tensor (foreach) kernels;
    # on a CPU the fused update, since a CPU's foreach falls back to one aten::add_ per tensor, which a
    # profile cannot tell from the residual adds (it also makes the update faster, a fraction of the step).
    on_cpu = x.device.type == "cpu"
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4,
                          foreach=None if on_cpu else True, fused=True if on_cpu else None)
    forward = torch.compile(model) if variant.compile else model
    device = x.device.type

    def step() -> None:
        with autocast(device, variant.amp):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def train_flops(model: str, image: int, batch: int) -> float:
    """FLOPs of one training step: 2 per multiply-add of the forward pass, x3 with the backward."""
    macs = layer_macs(build_resnet(model), (1, 3, image, image))
    return 3 * 2 * sum(macs.values()) * batch


def _bytes_needed(image: int, model: str) -> Callable[[int], float]:
    # Activations kept for backward, fp32, generously: ResNet-50 at 224x224 keeps about 0.1 GB per image.
    per_image = (0.12e9 if model == "resnet50" else 0.04e9) * (image / 224) ** 2
    return lambda b: per_image * b + 0.5e9


def measure_step(model_name: str, image: int, batch: int, device: str, variant: Variant) -> Measurement:
    """Time one training step of ``model_name`` at ``batch`` on ``device`` with ``variant``."""
    x, y = synthetic_images(batch, image, device)
    model = build_resnet(model_name).to(device)
    step = make_step(model, x, y, variant)
    with cudnn_benchmark(device):
        return measure(
            step, name=f"{model_name} {image}x{image} train step {variant.name}, batch {batch}", device=device,
            shape=(batch, 3, image, image), flops=train_flops(model_name, image, batch),
            # autocast runs the convolutions in bf16: the step is compared with the bf16 peak.
            dtype=torch.bfloat16 if variant.amp else torch.float32,
            # fp32 means FP32 on a GPU too: cuDNN's default would run its convolutions in TF32.
            allow_tf32=variant.tf32 and tf32_applies(device),
            # A CPU step is long: one untimed warm-up call (it also lets cuDNN pick its algorithms on a
            # GPU), then the profile's runs of one call each.
            number_per_run=1 if device == "cpu" else None,
        )


def _point_limit() -> float:
    # The quick profile's 0.05 s limit is meant for matmuls: it would stop these sweeps after one point.
    return max(current_profile().sweep_point_limit_s, 2.0)


@experiment
def resnet_train_sweep(device: str, model: str = "resnet18", image: int = 112) -> dict[str, Any]:
    """Images/s of a ResNet training step (fp32, TF32 off) against batch size."""
    result = sweep(train_batches(device, model), lambda b: measure_step(model, image, b, device, FP32),
                   device=device, bytes_needed=_bytes_needed(image, model), time_limit_s=_point_limit())
    return {"sweep": result, "model": model, "image": image,
            "parameters": parameter_count(build_resnet(model))}


@experiment
def resnet_variants(device: str, model: str = "resnet18", image: int = 112) -> dict[str, Any]:
    """The same step at one batch: fp32, then TF32, bf16 autocast, channels_last and the three together."""
    batch = variant_batch(device)
    variants: dict[str, Measurement] = {}
    skipped: dict[str, str] = {}
    for variant in RESNET_VARIANTS:
        why = skip_reason(variant, device)
        if why:
            skipped[variant.name] = why
        else:
            variants[variant.name] = measure_step(model, image, batch, device, variant)
    skipped[COMPILE.name] = SKIP_COMPILE_BUDGET
    return {"variants": variants, "skipped": skipped, "batch": batch, "model": model, "image": image}


# --- memory --------------------------------------------------------------------

def saved_activation_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward pass, parameters excluded.

    Counted with ``saved_tensors_hooks``: each distinct storage once (an in-place ReLU's output and the next
    convolution's input are one tensor).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and storage.nbytes():
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    del loss
    return sum(seen.values())


def _free(device: str) -> None:
    gc.collect()
    if device != "cpu" and hasattr(torch.accelerator, "empty_cache"):
        torch.accelerator.empty_cache()


def peak_step_bytes(model: nn.Module, opt: torch.optim.Optimizer, batch: int, image: int, device: str) -> int:
    """``torch.cuda.max_memory_allocated`` over one fp32 training step at ``batch`` (reset before it)."""
    x, y = synthetic_images(batch, image, device)
    torch.cuda.reset_peak_memory_stats()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=False)  # gradients stay allocated between steps, as in a training loop
    loss.backward()
    opt.step()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())


def memory_batches(device: str) -> list[int]:
    """Batches for the peak-memory sweep: doubling until the device runs out (full profile)."""
    if current_profile().name == "quick":
        return [1, 2, 4]
    return [2**k for k in range(0, 13)]  # up to 4096: beyond a 141 GB H200's reach for ResNet-50


@experiment
def resnet_memory(device: str, model: str = "resnet18", image: int = 112) -> dict[str, Any]:
    """What a ResNet training step keeps in memory: weights, gradients, optimizer state, activations.

    Activations are counted on ``device`` at batch 1 and 2 (saved tensors, fp32, training mode), so their
    growth per image is measured, not assumed. On a CUDA GPU, the peak allocated memory of a real step is
    measured against batch, doubling until the GPU runs out; ``largest_batch`` is then the largest
    power of two that fit. cuDNN's benchmark mode stays off here (its algorithm search would add
    workspaces of its own to the peak).
    """
    net = build_resnet(model).to(device).train()
    n_params = parameter_count(net)
    weight_bytes = 4 * n_params
    activations = {}
    for batch in (1, 2):
        x, y = synthetic_images(batch, image, device)
        activations[batch] = saved_activation_bytes(net, x, y)
    net.zero_grad(set_to_none=True)
    _free(device)
    peaks: list[tuple[int, int]] = []
    largest: int | None = None
    stopped: str | None = None
    if device == "cuda":
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4, foreach=True)
        peak_step_bytes(net, opt, 1, image, device)  # the momentum buffers exist from the first step on
        for batch in memory_batches(device):
            try:
                peaks.append((batch, peak_step_bytes(net, opt, batch, image, device)))
            except Exception as exc:  # only out-of-memory ends the sweep
                if not is_out_of_memory(exc):
                    raise
                stopped = "out-of-memory"
                break
            finally:
                _free(device)
        if stopped:
            largest = peaks[-1][0] if peaks else None
        del opt
    del net
    _free(device)
    total = None
    if device == "cuda":
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return {
        "model": model, "image": image, "parameters": n_params,
        "weight_bytes": weight_bytes, "gradient_bytes": weight_bytes,
        "optimizer_bytes": weight_bytes,  # SGD momentum: one buffer per weight
        "activation_bytes_batch1": activations[1], "activation_bytes_batch2": activations[2],
        "peak_bytes": [list(p) for p in peaks], "largest_batch": largest, "stopped": stopped,
        "device_memory_bytes": total,
    }


# --- where the time goes -------------------------------------------------------

# Operator name fragments -> the layer type a profile row belongs to; the first match wins.
LAYER_TYPES = (
    ("convolution", ("convolution",)),
    ("batch norm", ("batch_norm",)),
    ("ReLU", ("relu", "threshold_backward", "clamp_min")),
    ("pooling", ("pool",)),
    ("optimizer", ("_foreach", "_fused_sgd")),
    ("classifier and loss", ("addmm", "aten::mm", "log_softmax", "nll_loss", "_softmax")),
    ("residual add", ("aten::add",)),
    ("casts and copies", ("copy_", "_to_copy", "contiguous")),
)
OTHER = "other"


def layer_type(op: str) -> str:
    """The layer type an operator's time counts for (``LAYER_TYPES``), or ``other``."""
    for name, fragments in LAYER_TYPES:
        if any(f in op for f in fragments):
            return name
    return OTHER


def work_by_layer_type(model: nn.Module, input_shape: tuple[int, ...], element_bytes: int) -> dict[str, dict[str, float]]:
    """FLOPs and bytes of one training step (forward + backward) per layer type, from the layers' shapes.

    An estimate for a roofline, counted on a meta-device copy (no memory, no time):

    - convolution: 3 x 2 x MACs; bytes: its input, output and weights, each read or written 3 times
      (forward; backward for the input; backward for the weights);
    - batch norm: about 10 FLOPs per element; bytes: 8 passes over the activation, as unfused kernels
      make them: forward reads x for the statistics, then reads x and writes y; backward reads x and dy for
      two reductions, then reads x and dy and writes dx;
    - ReLU: 2 FLOPs per element (forward compare, backward mask); 5 passes: forward reads and writes in
      place, backward reads the output and dy and writes dx;
    - pooling: a window's compares per output, forward and backward; bytes: input and output, forward
      and backward;
    - residual add: 1 FLOP per element forward, 1 backward (where the gradients of the two paths meet);
      6 passes (read two, write one, each way);
    - optimizer: SGD with momentum and weight decay, about 5 FLOPs per weight; 8 passes over fp32 weights,
      gradients and momentum (weight decay, momentum, update), whatever the activations' precision.
    """
    work: dict[str, dict[str, float]] = {k: {"flops": 0.0, "bytes": 0.0}
                                         for k in ("convolution", "batch norm", "ReLU", "pooling", "residual add",
                                                   "optimizer")}
    weights = sum(p.numel() for p in model.parameters())
    work["optimizer"] = {"flops": 5.0 * weights, "bytes": 8.0 * 4 * weights}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        n_in, n_out = inputs[0].numel(), output.numel()
        if hasattr(module, "downsample"):  # a residual block: its output is the sum of its two paths
            work["residual add"]["flops"] += 2.0 * n_out
            work["residual add"]["bytes"] += 6.0 * element_bytes * n_out
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = n_out * module.in_channels // module.groups * kh * kw
            work["convolution"]["flops"] += 6.0 * macs
            work["convolution"]["bytes"] += 3.0 * element_bytes * (n_in + n_out + module.weight.numel())
        elif isinstance(module, nn.BatchNorm2d):
            work["batch norm"]["flops"] += 10.0 * n_out
            work["batch norm"]["bytes"] += 8.0 * element_bytes * n_out
        elif isinstance(module, nn.ReLU):
            work["ReLU"]["flops"] += 2.0 * n_out
            work["ReLU"]["bytes"] += 5.0 * element_bytes * n_out
        elif isinstance(module, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
            window = n_in / max(n_out, 1)
            work["pooling"]["flops"] += 2.0 * window * n_out
            work["pooling"]["bytes"] += 2.0 * element_bytes * (n_in + n_out)

    forward_on_meta(model, input_shape, hook, lambda m: not list(m.children()) or hasattr(m, "downsample"))
    return work


def profile_batch(device: str) -> int:
    quick = current_profile().name == "quick"
    if device == "cpu":
        return 1 if quick else 4
    return 8 if quick else 128


@experiment
def resnet_profile(device: str, model: str = "resnet18", image: int = 112, steps: int = 3) -> dict[str, Any]:
    """``torch.profiler`` view of a ResNet training step, summed by layer type.

    On an accelerator the step runs as it would train fast: bf16 autocast and channels_last (TF32 on for
    what stays fp32, on CUDA); on a CPU in fp32, and in bf16 only where the CPU has a bf16 unit. Times are
    per step: device (kernel) time on an accelerator, self CPU time on a CPU. Profiler times include its own
    overhead: they rank layer types, they are not benchmark figures. ``work`` is the estimated FLOPs and
    bytes of each layer type (``work_by_layer_type``), for a roofline.
    """
    batch = profile_batch(device)
    on_cpu = device == "cpu"
    amp = not on_cpu or cpu_has_bf16_unit()
    variant = Variant("profiled", amp=amp, channels_last=not on_cpu, tf32=tf32_applies(device))
    x, y = synthetic_images(batch, image, device)
    net = build_resnet(model).to(device)
    step = make_step(net, x, y, variant)
    saved_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant.tf32
        with cudnn_benchmark(device):
            for _ in range(2):  # warm-up: cuDNN's and oneDNN's algorithm choices happen on the first calls
                step()
            if not on_cpu:
                torch.accelerator.synchronize()
            with profiler(device) as prof:
                for _ in range(steps):
                    step()
                if not on_cpu:
                    torch.accelerator.synchronize()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32
    events = [e for e in prof.key_averages()
              if str(getattr(e, "device_type", "DeviceType.CPU")).endswith("CPU") and e.key.startswith("aten::")]
    timed_on_device = not on_cpu and any(_self_device_us(e) > 0 for e in events)
    totals: dict[str, float] = {}
    for e in events:
        us = _self_device_us(e) if timed_on_device else float(e.self_cpu_time_total)
        if us > 0:
            totals[layer_type(e.key)] = totals.get(layer_type(e.key), 0.0) + us * 1e-6 / steps
    rows = [{"layer_type": k, "seconds": v} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    work = work_by_layer_type(net, (batch, 3, image, image), 2 if amp else 4)
    return {"rows": rows, "work": [{"layer_type": k, **v} for k, v in work.items()], "batch": batch,
            "steps": steps, "precision": "bf16" if amp else "fp32", "channels_last": variant.channels_last,
            "device_time": timed_on_device}


