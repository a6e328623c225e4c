"""Training, storing and deploying the small CNN.

* ``train_digits``: the one real training run on digits, with per-epoch loss
  and validation accuracy; the weights of the best validation epoch are kept
  (the test split is only touched for the final score).
* ``make_train_step`` / ``make_inference``: one step as a no-argument callable,
  in the variants the pages compare (plain, channels_last, bf16 autocast,
  torch.compile), for ``gpucnn.bench.measure``.
* ``save_checkpoint`` / ``load_checkpoint``: a state_dict plus metadata, with a
  ``CheckpointError`` that names the file for anything wrong with it.
* ``export_model``: torch.export for deployment (TorchScript is deprecated).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gpucnn.bench import Measurement, measure
from gpucnn.data import DigitsSplit
from gpucnn.models import CNNConfig, SmallCNN, build_model

CHECKPOINT_FORMAT = "gpucnn-checkpoint/1"
# What the page says instead of a CPU torch.compile figure.
# No measured time here: a figure in prose would be wrong on every other machine.
COMPILE_SKIPPED_ON_CPU = (
    "torch.compile is not measured on the CPU: a cold compile of this tiny CNN can take longer than all the "
    "other training measurements together, and its inductor C++ build is a test of the compiler toolchain "
    "rather than of the hardware"
)
# What inductor says when it compiles an FP32 matmul on a GPU with TF32 tensor cores, TF32 being off.
_TF32_ADVICE = "TensorFloat32 tensor cores for float32 matrix multiplication available but not enabled"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded into the model; the message names the file."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the digits run. The defaults reach >= 97 % test accuracy."""

    epochs: int = 15
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # The digits' ops are tiny (8x8 images): a second thread costs more in
    # hand-offs than it saves, and on a loaded machine it costs far more.
    threads: int | None = 1
    # Augmentation: shift each batch by up to this many pixels (0: none).
    shift: int = 1


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float


@dataclass
class TrainingRun:
    """What ``train_digits`` returns. ``model`` holds the best validation epoch's weights."""

    model: SmallCNN
    config: TrainConfig
    device: str
    history: list[EpochRecord]
    best_epoch: int
    test_accuracy: float
    epoch_time: Measurement
    train_images: int
    step_losses: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        """Training images per second, from the median epoch time."""
        return self.train_images / self.epoch_time.median


def autocast(device: str, amp: bool):
    """bf16 autocast on ``device`` when ``amp``, else nothing. bf16 needs no GradScaler."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16) if amp else nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy in 0..1) of ``model`` on images ``x`` with labels ``y``."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        logits = model(x[i:i + batch_size])
        loss += nn.functional.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    model.train(was_training)
    return loss / len(y), correct / len(y)


def train_digits(data: DigitsSplit, config: TrainConfig = TrainConfig(), device: str = "cpu") -> TrainingRun:
    """Train a SmallCNN on the digits, timing each epoch through ``gpucnn.bench.measure``.

    Each call of the timed function runs the *next* epoch of this one training
    run, so the epoch times are those of the real run, not of a second one.
    The harness's untimed warm-up call is epoch 1 (it pays for lazy
    initialization); epochs 2..N are the timed runs (``number_per_run=1``).
    An epoch includes shuffling, the optimizer steps and the validation pass.
    """
    if config.epochs < 2:
        raise ValueError("train_digits needs at least 2 epochs: the first is the harness's warm-up")
    data = data.to(device)
    model = build_model(data_config(data), seed=config.seed).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(data.y_train) // config.batch_size)
    # One-cycle: warm up, then anneal to ~0, which settles the weights by the last epoch.
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                   total_steps=config.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    n = len(data.y_train)
    history: list[EpochRecord] = []
    step_losses: list[float] = []
    best: dict[str, Any] = {"score": None, "state": None, "epoch": 0}

    def one_epoch() -> None:
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n, config.batch_size):
            idx = order[i:i + config.batch_size]
            xb = data.x_train[idx]
            if config.shift:
                xb = random_shift(xb, config.shift, gen)
            loss = nn.functional.cross_entropy(model(xb), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(idx)
            step_losses.append(loss.detach())
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        history.append(EpochRecord(len(history) + 1, float(total) / n, val_loss, val_acc))
        # Model selection on the validation split: keep the weights of the epoch
        # with the best validation accuracy, the lower validation loss on a tie.
        score = (val_acc, -val_loss)
        if best["state"] is None or score > best["score"]:
            best.update(score=score, state=copy.deepcopy(model.state_dict()), epoch=len(history))

    epoch_time = measure(
        one_epoch, name=f"digits training epoch (batch {config.batch_size})", device=device,
        shape=(n, 1, 8, 8), number_per_run=1, min_runs=config.epochs - 1, max_runs=config.epochs - 1,
        budget_s=0.0, threads=config.threads,
    )
    model.load_state_dict(best["state"])
    _, test_acc = evaluate(model, data.x_test, data.y_test)
    return TrainingRun(
        model=model, config=config, device=device, history=history, best_epoch=best["epoch"],
        test_accuracy=test_acc, epoch_time=epoch_time, train_images=n,
        step_losses=[float(v) for v in step_losses],
    )


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift a batch of images by a random whole number of pixels in each direction, filling with the border.

    Handwritten digits do not all sit in the same place in their box: this
    teaches the network that a shifted digit is the same digit.
    """
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    p = max_shift
    padded = nn.functional.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., p + dy:p + dy + h, p + dx:p + dx + w]


def data_config(data: DigitsSplit) -> CNNConfig:
    """The CNNConfig whose input matches the split's images."""
    _, c, h, _ = data.x_train.shape
    return CNNConfig(in_channels=c, image_size=h)


# --- one step as a callable, for the harness ---------------------------------

@dataclass(frozen=True)
class Variant:
    """One way of running the same step: the standard speedups, alone or together.

    ``tf32`` is not applied by ``make_train_step``: the harness sets it around
    the measurement (``gpucnn.bench.measure(allow_tf32=...)``) and restores it.
    """

    name: str
    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    tf32: bool = False


VARIANTS = (
    Variant("plain fp32"),
    Variant("channels_last", channels_last=True),
    Variant("bf16 autocast", amp=True),
    Variant("torch.compile", compile=True),
)
# The speedups together, and TF32 (CUDA only), each against the plain fp32 step of VARIANTS.
COMBINED = (
    Variant("TF32", tf32=True),
    Variant("channels_last + bf16 autocast", channels_last=True, amp=True),
    Variant("channels_last + bf16 autocast + torch.compile", channels_last=True, amp=True, compile=True),
)
# Why the CPU has no TF32 figure. No measured number here: prose must hold on every machine.
TF32_ONLY_ON_CUDA = (
    "TF32 does not exist on the CPU: it is a tensor-core format of NVIDIA GPUs (Ampere and later), and "
    "torch's TF32 switches change only CUDA matmuls and convolutions"
)


def make_train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, variant: Variant = VARIANTS[0], lr: float = 1e-3,
) -> Callable[[], torch.Tensor]:
    """One training step (forward, loss, backward, optimizer step) on a fixed batch.

    The model and batch must already be on the device; the variant's memory
    format is applied here, outside the timed call.
    """
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    forward = torch.compile(model) if variant.compile else model
    device = x.device.type

    def step() -> torch.Tensor:
        with autocast(device, variant.amp):
            loss = nn.functional.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if not variant.compile:
        return step
    compiled = False

    def first_step_compiles() -> torch.Tensor:
        # The first call compiles (forward and backward). On an Ampere or newer
        # GPU, inductor then advises turning TF32 on; these figures are
        # labelled FP32 and TF32 is off on purpose, so that one piece of advice,
        # and nothing else, is not shown. Later calls run without the filter.
        nonlocal compiled
        if compiled:
            return step()
        compiled = True
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TF32_ADVICE, category=UserWarning)
            return step()

    return first_step_compiles


def make_inference(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   ) -> Callable[[], torch.Tensor]:
    """One forward pass without autograd, on a fixed batch already on the device."""
    def infer() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return infer


# --- storing ------------------------------------------------------------------

def save_checkpoint(model: SmallCNN, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save the state_dict, the model's config and JSON-like ``metadata`` with ``torch.save``.

    The tensors keep their device: a checkpoint saved from CUDA records CUDA
    storages, which ``load_checkpoint`` maps to the device asked for.
    """
    path = Path(path)
    try:
        # JSON-like values only, so that the file loads with weights_only=True.
        metadata = json.loads(json.dumps(dict(metadata or {})))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata must be JSON-like (str, numbers, lists, dicts): {exc}") from None
    torch.save({
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "metadata": metadata,
    }, path)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu",
                    model: SmallCNN | None = None) -> tuple[SmallCNN, dict[str, Any]]:
    """Load a checkpoint made by ``save_checkpoint``: returns (model, metadata).

    Args:
        path: the ``.pt`` file.
        map_location: where the tensors go, whatever device they were saved
            from (a CUDA checkpoint loads on a CPU-only machine).
        model: load into this model; by default one is built from the stored config.

    Raises:
        CheckpointError: naming the file, for a missing, unreadable or corrupt
            file, a file that is not a gpucnn checkpoint, or weights that do not
            fit the model.
    """
    path = Path(path)
    try:
        # weights_only: a checkpoint cannot run code when loaded.
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: no such file") from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch.save file ({type(exc).__name__}: {reason[:200]})"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        what = f"a {type(blob).__name__}" if not isinstance(blob, dict) else f"a dict with keys {sorted(blob)[:6]}"
        raise CheckpointError(f"checkpoint {path} is not a gpucnn checkpoint ({CHECKPOINT_FORMAT}): it holds {what}")
    try:
        config = CNNConfig(**blob["config"])
    except (TypeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {exc}") from None
    if model is None:
        model = SmallCNN(config)
    elif blob.get("model") != type(model).__name__ or config != model.config:
        raise CheckpointError(
            f"checkpoint {path} is for a different model: it holds {blob.get('model')} {config}, "
            f"the model given is {type(model).__name__} {model.config}")
    try:
        model.load_state_dict(blob["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])[:300]
        raise CheckpointError(f"checkpoint {path}: its weights do not fit {type(model).__name__} ({detail})") from None
    model.to(map_location)
    return model, dict(blob.get("metadata", {}))


def load_exported(path: str | Path) -> nn.Module:
    """Load a program saved with ``torch.export.save``, as a callable module.

    torch's loader wraps the archive's read-only bytes with torch.frombuffer
    and warns that the buffer is not writable. The weights are only read
    here (inference), so that one warning, and nothing else, is not shown.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given buffer is not writable", category=UserWarning)
        return torch.export.load(path).module()


def export_model(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = True) -> torch.export.ExportedProgram:
    """torch.export the model in eval mode for deployment, with a dynamic batch dimension."""
    model = model.eval()
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=65536)}} if dynamic_batch else None
    return torch.export.export(model, (example,), dynamic_shapes=shapes)


@torch.no_grad()
def predict(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Class predictions (argmax of the logits). An exported module is already in eval mode."""
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()
    return model(x).argmax(1)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)
