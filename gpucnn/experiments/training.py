"""Training, storing and deploying the small CNN: the experiments behind the notebook page.

* ``digits_training``: the real run on digits (loss, accuracy, time per epoch),
  then storing (checkpoint and torch.export, with a prediction check) and
  deployment (batch-1 latency and batched throughput of the exported model).
* ``training_throughput``: one training step on synthetic 3x64x64 batches,
  against batch size, and with each standard speedup against the plain step.
* ``training_combined``: the same step with the speedups together, and with
  TF32 on a CUDA GPU, at ``training_throughput``'s speedup batch.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gpucnn.bench import ImpossibleResult, Measurement, measure, sweep
from gpucnn.data import load_digits_split, synthetic_batch
from gpucnn.hardware import detect
from gpucnn.models import SYNTHETIC, build_model, forward_flops, parameter_count
from gpucnn.profile import current_profile
from gpucnn.results import experiment
from gpucnn.train import (
    COMBINED,
    COMPILE_SKIPPED_ON_CPU,
    TF32_ONLY_ON_CUDA,
    VARIANTS,
    TrainConfig,
    export_model,
    load_checkpoint,
    load_exported,
    make_inference,
    make_train_step,
    predict,
    save_checkpoint,
    train_digits,
)


def deploy_batches(device: str) -> list[int]:
    """Inference batch sizes: 1 (latency) up to what keeps the device busy."""
    quick = current_profile().name == "quick"
    if device == "cpu":
        return [1, 16, 256] if quick else [1, 4, 16, 64, 256, 1024, 4096]
    return [1, 64, 4096] if quick else [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]


def train_batches(device: str) -> list[int]:
    """Training batch sizes for the synthetic 3x64x64 sweep."""
    quick = current_profile().name == "quick"
    if device == "cpu":
        return [2, 4] if quick else [1, 4, 16, 64]
    return [8, 64] if quick else [1, 4, 16, 64, 256, 1024]


def _tf32_skipped(device: str) -> str | None:
    """Why TF32 is not measured on ``device``, or None where it is (an NVIDIA GPU through CUDA)."""
    if device == "cpu":
        return TF32_ONLY_ON_CUDA
    acc = detect().accelerator
    if acc is None or acc.backend != "CUDA":
        return "TF32 is measured on NVIDIA GPUs only: torch's TF32 switches are CUDA settings"
    return None


def _compile_failed(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"torch.compile failed on this machine ({type(exc).__name__}: {first})"


def _point_limit() -> float:
    """A sweep stops after a call slower than this. The quick profile's sizes are already tiny, so its
    0.05 s limit (meant for matmul sweeps) would stop these sweeps after one point."""
    return max(current_profile().sweep_point_limit_s, 1.0)


@experiment
def digits_training(device: str, epochs: int = 15, batch_size: int = 32, lr: float = 3e-3,
                    seed: int = 0) -> dict[str, Any]:
    """Train on digits, store and export the model, check predictions, and time deployment."""
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    data = load_digits_split(seed=seed)
    run = train_digits(data, config, device=device)
    model = run.model.eval()
    x_test = data.x_test.to(device)
    reference = predict(model, x_test)

    with tempfile.TemporaryDirectory(prefix="gpucnn-ckpt-") as tmp:
        ckpt = save_checkpoint(model, Path(tmp) / "digits_cnn.pt", metadata={
            "test_accuracy": run.test_accuracy, "best_epoch": run.best_epoch, "train_config": asdict(config),
            "normalization": {"mean": data.mean, "std": data.std}, "trained_on": device,
            "torch": str(torch.__version__),
        })
        reloaded, metadata = load_checkpoint(ckpt, map_location=device)
        exported = export_model(model, x_test[:8])
        pt2 = Path(tmp) / "digits_cnn.pt2"
        torch.export.save(exported, pt2)
        deployed = load_exported(pt2)
        same_reloaded = bool(torch.equal(predict(reloaded, x_test), reference))
        same_exported = bool(torch.equal(predict(deployed, x_test), reference))
        with torch.no_grad():
            logits = model(x_test)
            max_diff = max(float((reloaded(x_test) - logits).abs().max()), float((deployed(x_test) - logits).abs().max()))
        sizes = {"checkpoint_bytes": ckpt.stat().st_size, "exported_bytes": pt2.stat().st_size}

    # Deployment: the exported program, from one image (latency) to big batches (throughput).
    gen = torch.Generator().manual_seed(seed)
    pool = data.x_test

    def point(batch: int) -> Measurement:
        idx = torch.randint(0, len(pool), (batch,), generator=gen)
        x = pool[idx].to(device)
        return measure(make_inference(deployed, x), name=f"exported digits CNN inference, batch {batch}",
                       device=device, shape=(batch, 1, 8, 8), flops=forward_flops(model.config, batch))

    deploy = sweep(deploy_batches(device), point, device=device, time_limit_s=_point_limit(),
                   bytes_needed=lambda b: 200_000.0 * b)  # activations + input, generously
    return {
        "history": [asdict(h) for h in run.history],
        "step_losses": run.step_losses,
        "steps_per_epoch": -(-run.train_images // batch_size),
        "best_epoch": run.best_epoch,
        "test_accuracy": run.test_accuracy,
        "split_sizes": data.sizes,
        "parameters": parameter_count(model),
        "epoch_time": run.epoch_time,
        "train_images": run.train_images,
        "threads": run.epoch_time.threads,
        "reloaded_identical": same_reloaded,
        "exported_identical": same_exported,
        "max_logit_difference": max_diff,
        "metadata_keys": sorted(metadata),
        **sizes,
        "deploy": deploy,
    }


@experiment
def training_throughput(device: str) -> dict[str, Any]:
    """Images/s of one training step on synthetic 3x64x64 images: batch sweep and speedups."""
    config = SYNTHETIC

    def step_point(batch: int, variant=VARIANTS[0]) -> Measurement:
        x, y = synthetic_batch(batch, channels=config.in_channels, size=config.image_size, device=device)
        model = build_model(config).to(device)
        # forward + backward is about 3x the forward FLOPs
        return measure(make_train_step(model, x, y, variant), name=f"train step {variant.name}, batch {batch}",
                       device=device, shape=(batch, config.in_channels, config.image_size, config.image_size),
                       flops=3 * forward_flops(config, batch),
                       # bf16 autocast runs its convs and matmuls in bf16: record that, so the result
                       # is compared with (and labelled by) the bf16 peak, not the FP32 one.
                       dtype=torch.bfloat16 if variant.amp else torch.float32,
                       # "plain fp32" must be FP32 on a GPU too: cuDNN runs fp32 convs in TF32 by
                       # default (torch.backends.cudnn.allow_tf32 is True), which the FP32 peak
                       # does not bound. Set for the warm-up too, where torch.compile compiles.
                       allow_tf32=False)

    sizes = train_batches(device)
    per_image = 4 * config.in_channels * config.image_size**2 * 40  # input + activations + grads, generously
    batch_sweep = sweep(sizes, step_point, device=device, time_limit_s=_point_limit(),
                        bytes_needed=lambda b: per_image * b + 50e6)
    speed_batch = sizes[-1] if not batch_sweep.stopped else batch_sweep.points[-1].shape[0]
    speedups: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for variant in VARIANTS:
        if variant.compile and device == "cpu":
            skipped[variant.name] = COMPILE_SKIPPED_ON_CPU
            continue
        if not variant.compile:
            speedups[variant.name] = step_point(speed_batch, variant)
            continue
        try:
            speedups[variant.name] = step_point(speed_batch, variant)
        except ImpossibleResult:
            raise
        except Exception as exc:  # inductor/Triton errors have no common base class
            # torch.compile needs a working toolchain (Triton builds its launchers with a C
            # compiler): a machine without one should lose this row, not the whole page.
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            skipped[variant.name] = f"torch.compile failed on this machine ({type(exc).__name__}: {first})"
    return {"sweep": batch_sweep, "speedups": speedups, "skipped": skipped, "speedup_batch": speed_batch,
            "parameters": parameter_count(build_model(config))}


@experiment
def training_combined(device: str) -> dict[str, Any]:
    """The training step of ``training_throughput`` with the speedups together, and with TF32 on CUDA.

    Timed at that experiment's speedup batch (its largest), so that the page
    divides each figure by the plain fp32 step of the same build or record
    (``gpucnn.sources.sibling``) instead of timing the plain step twice: on the
    CPU a step of that batch is slow, and the build's time matters.
    torch.compile is skipped on the CPU, as there.
    """
    config = SYNTHETIC
    batch = train_batches(device)[-1]
    variants: dict[str, Measurement] = {}
    skipped: dict[str, str] = {}
    for variant in COMBINED:
        if variant.tf32 and (why := _tf32_skipped(device)):
            skipped[variant.name] = why
            continue
        if variant.compile and device == "cpu":
            skipped[variant.name] = COMPILE_SKIPPED_ON_CPU
            continue
        x, y = synthetic_batch(batch, channels=config.in_channels, size=config.image_size, device=device)
        model = build_model(config).to(device)
        try:
            variants[variant.name] = measure(
                make_train_step(model, x, y, variant), name=f"train step {variant.name}, batch {batch}",
                device=device, shape=(batch, config.in_channels, config.image_size, config.image_size),
                flops=3 * forward_flops(config, batch),
                dtype=torch.bfloat16 if variant.amp else torch.float32,
                # Off unless this is the TF32 variant: cuDNN's default (on) would make every fp32 row TF32.
                allow_tf32=variant.tf32,
                # A CPU step is slow: one untimed warm-up call, then the profile's runs,
                # without a second call to size the runs (there is nothing to amortize at that length).
                number_per_run=1 if device == "cpu" else None)
        except ImpossibleResult:
            raise
        except Exception as exc:  # inductor/Triton errors have no common base class
            if not variant.compile:
                raise
            skipped[variant.name] = _compile_failed(exc)
    return {"variants": variants, "skipped": skipped, "batch": batch}
