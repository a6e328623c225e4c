"""gpucnn.train: training to the target, the speedup variants, storing, exporting, bad checkpoints."""

from __future__ import annotations

import pickletools
import re
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from gpucnn.data import load_digits_split, synthetic_batch
from gpucnn.models import SYNTHETIC, build_model
from gpucnn.pages.training import TARGET_ACCURACY, TRAIN_PARAMS
from gpucnn.train import (
    COMPILE_SKIPPED_ON_CPU,
    VARIANTS,
    CheckpointError,
    TrainConfig,
    export_model,
    load_checkpoint,
    make_train_step,
    predict,
    save_checkpoint,
    train_digits,
)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(seed=TRAIN_PARAMS["seed"])


@pytest.mark.timeout(60)
def test_the_fixed_seed_run_reaches_the_target_accuracy(data) -> None:
    run = train_digits(data, TrainConfig(**TRAIN_PARAMS))
    assert run.test_accuracy >= TARGET_ACCURACY
    # one record per epoch; epoch 1 is the harness's warm-up, the others are timed
    assert len(run.history) == TRAIN_PARAMS["epochs"]
    assert run.epoch_time.runs == TRAIN_PARAMS["epochs"] - 1 and run.epoch_time.number_per_run == 1
    # the weights kept are the best validation epoch's (model selection never looks at the test split)
    best = max(run.history, key=lambda h: (h.val_accuracy, -h.val_loss))
    assert run.best_epoch == best.epoch
    assert len(run.step_losses) == TRAIN_PARAMS["epochs"] * -(-run.train_images // TRAIN_PARAMS["batch_size"])


def test_training_needs_a_warm_up_epoch(data) -> None:
    with pytest.raises(ValueError, match="at least 2 epochs"):
        train_digits(data, TrainConfig(epochs=1))


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.compile], ids=lambda v: v.name)
def test_each_speedup_variant_trains_on_the_cpu(variant) -> None:
    x, y = synthetic_batch(4, size=16)
    model = build_model(type(SYNTHETIC)(in_channels=3, image_size=16))
    before = model.features[0].weight.detach().clone()
    step = make_train_step(model, x, y, variant)
    loss = step()
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.features[0].weight), "the optimizer step must change the weights"
    if variant.channels_last:
        assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    if variant.amp:
        assert loss.dtype == torch.float32  # cross-entropy autocasts to fp32; the convs ran in bf16


def test_compile_is_skipped_on_the_cpu_with_a_reason() -> None:
    assert "torch.compile" in COMPILE_SKIPPED_ON_CPU
    # prose carries no measured figure: it would be wrong on every other machine
    assert not re.search(r"\d\s*(?:s|ms|µs)\b", COMPILE_SKIPPED_ON_CPU)


# --- storing and exporting ------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(data):
    return train_digits(data, TrainConfig(epochs=3)).model.eval()


def test_save_load_and_export_predict_identically(trained, data, tmp_path: Path) -> None:
    x = data.x_test
    reference_logits = trained(x).detach()
    path = save_checkpoint(trained, tmp_path / "m.pt", metadata={"test_accuracy": 0.5, "note": "x"})
    reloaded, metadata = load_checkpoint(path)
    assert metadata == {"test_accuracy": 0.5, "note": "x"}
    assert torch.equal(predict(reloaded, x), predict(trained, x))
    assert torch.equal(reloaded(x).detach(), reference_logits)

    exported = export_model(trained, x[:8])
    torch.export.save(exported, tmp_path / "m.pt2")
    deployed = torch.export.load(tmp_path / "m.pt2").module()
    assert torch.equal(predict(deployed, x), predict(trained, x))
    # the batch dimension is dynamic: one image and the whole test set both work
    assert deployed(x[:1]).shape == (1, 10)


def test_metadata_must_be_json_like(trained, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-like"):
        save_checkpoint(trained, tmp_path / "m.pt", metadata={"tensor": torch.ones(1)})


def test_a_corrupt_checkpoint_names_the_file(trained, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"garbage\.pt is corrupt") as info:
        load_checkpoint(garbage)
    assert str(garbage) in str(info.value)

    good = save_checkpoint(trained, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt is corrupt"):
        load_checkpoint(truncated)

    with pytest.raises(CheckpointError, match=r"missing\.pt: no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_for_a_different_model_is_refused(trained, tmp_path: Path) -> None:
    other = save_checkpoint(build_model(SYNTHETIC), tmp_path / "synthetic.pt")
    with pytest.raises(CheckpointError, match=r"synthetic\.pt is for a different model"):
        load_checkpoint(other, model=build_model())

    plain = tmp_path / "plain_state_dict.pt"
    torch.save(nn.Linear(4, 2).state_dict(), plain)
    with pytest.raises(CheckpointError, match=r"plain_state_dict\.pt is not a gpucnn checkpoint"):
        load_checkpoint(plain)

    # the right format and config, but weights that do not fit
    blob = torch.load(save_checkpoint(trained, tmp_path / "t.pt"), weights_only=True)
    blob["state_dict"].pop("classifier.3.weight")
    torch.save(blob, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match=r"tampered\.pt: its weights do not fit SmallCNN .*classifier\.3\.weight"):
        load_checkpoint(tmp_path / "tampered.pt")


def retag_storages(src: Path, dest: Path, location: str) -> int:
    """Copy a torch.save zip, changing every storage's location tag from 'cpu' to ``location``.

    torch's pickle stores each storage as a persistent id holding its location
    string (protocol 2: BINUNICODE 'X' + 4-byte length + text); the string is
    memoized, so one literal serves every storage. This is what a save on a GPU
    writes, made on a machine without one. Returns how many literals changed.
    """
    old = b"X" + len(b"cpu").to_bytes(4, "little") + b"cpu"
    new = b"X" + len(location.encode()).to_bytes(4, "little") + location.encode()
    with zipfile.ZipFile(src) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    changed = 0
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
        for name, blob in entries:
            if name.endswith("/data.pkl"):
                changed += blob.count(old)
                blob = blob.replace(old, new)
            z.writestr(name, blob)
    return changed


def _location_tags(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        pkl = next(z.read(n) for n in z.namelist() if n.endswith("/data.pkl"))
    return {arg for op, arg, _ in pickletools.genops(pkl) if op.name == "BINUNICODE" and arg in ("cpu", "cuda:0")}


def test_a_checkpoint_saved_on_cuda_loads_on_the_cpu(trained, data, tmp_path: Path) -> None:
    cpu_file = save_checkpoint(trained, tmp_path / "cpu.pt", metadata={"trained_on": "cuda"})
    cuda_file = tmp_path / "cuda.pt"
    assert retag_storages(cpu_file, cuda_file, "cuda:0") == 1
    assert _location_tags(cuda_file) == {"cuda:0"}, "every storage must now say it lives on cuda:0"

    if not torch.cuda.is_available():
        # Proof that the tag is real: torch refuses it without a map_location.
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(cuda_file, weights_only=True)

    model, metadata = load_checkpoint(cuda_file)  # map_location="cpu" by default
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert metadata == {"trained_on": "cuda"}
    assert torch.equal(predict(model, data.x_test), predict(trained, data.x_test))


# --- the speedups together, and TF32 -------------------------------------------------

def test_the_combined_step_runs_on_the_cpu_and_says_why_tf32_and_compile_are_not_there(monkeypatch) -> None:
    from gpucnn.experiments import training as training_exp
    from gpucnn.train import COMBINED, TF32_ONLY_ON_CUDA

    monkeypatch.setenv("GPUCNN_PROFILE", "quick")
    monkeypatch.setattr(training_exp, "train_batches", lambda device: [2])
    out = training_exp.training_combined("cpu")
    assert out["batch"] == 2
    assert set(out["variants"]) == {"channels_last + bf16 autocast"}
    assert out["variants"]["channels_last + bf16 autocast"].dtype == "bfloat16"
    assert out["skipped"]["TF32"] == TF32_ONLY_ON_CUDA
    assert out["skipped"]["channels_last + bf16 autocast + torch.compile"] == COMPILE_SKIPPED_ON_CPU
    # every combined variant is measured or skipped with a reason: none vanishes silently
    assert set(out["variants"]) | set(out["skipped"]) == {v.name for v in COMBINED}
    for why in out["skipped"].values():
        assert not re.search(r"\d\s*(?:s|ms|µs)\b", why)


def test_tf32_is_measured_only_on_an_nvidia_gpu(monkeypatch) -> None:
    import dataclasses

    from gpucnn import hardware
    from gpucnn.experiments import training as training_exp

    real = hardware.detect()
    acc = hardware.AcceleratorInfo(
        device_type="cuda", backend="ROCm", name="AMD Instinct MI300X", count=1, memory_bytes=None, capability=None,
        multiprocessors=None, l2_bytes=None, driver=None, runtime=None, cudnn=None, tf32_matmul=None, mig=None,
        peaks=None)
    monkeypatch.setattr(training_exp, "detect", lambda: dataclasses.replace(real, accelerator=acc))
    assert "NVIDIA GPUs only" in training_exp._tf32_skipped("cuda")
    monkeypatch.setattr(training_exp, "detect", lambda: dataclasses.replace(
        real, accelerator=dataclasses.replace(acc, backend="CUDA", name="NVIDIA H100 80GB HBM3")))
    assert training_exp._tf32_skipped("cuda") is None
    assert "does not exist on the CPU" in training_exp._tf32_skipped("cpu")


def test_a_failed_compile_loses_only_the_combined_row(monkeypatch) -> None:
    from gpucnn.experiments import training as training_exp

    def broken(model, *a, **k):
        def forward(x):
            raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")
        return forward

    monkeypatch.setenv("GPUCNN_PROFILE", "quick")
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: None)
    monkeypatch.setattr(training_exp, "train_batches", lambda device: [2])
    monkeypatch.setattr(training_exp, "_tf32_skipped", lambda device: None)
    out = training_exp.training_combined("cpu:0")  # not "cpu": the accelerator path, computed on the CPU
    assert set(out["variants"]) == {"TF32", "channels_last + bf16 autocast"}
    assert "C compiler" in out["skipped"]["channels_last + bf16 autocast + torch.compile"]
    assert out["variants"]["TF32"].dtype == "float32"
