"""Pre-processing: the digits dataset as normalized tensors, and synthetic image batches.

scikit-learn ships the digits dataset (1,797 grey 8x8 images of the digits
0-9) inside the package, so nothing is downloaded. Its 8x8 images are far
too small to keep an accelerator busy, so throughput is measured on
synthetic batches of larger images (3x64x64 by default) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# The digits' pixels are integers 0..16.
DIGITS_MAX_PIXEL = 16.0
DIGITS_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    """Train, validation and test tensors: images (N, 1, 8, 8) float32, labels (N,) int64.

    The validation split is for model selection (which epoch to keep); the
    test split is only for the final score.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: float
    std: float
    seed: int

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def to(self, device: str) -> DigitsSplit:
        """The same split with every tensor on ``device``."""
        move = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return DigitsSplit(**move, mean=self.mean, std=self.std, seed=self.seed)


def load_digits_split(seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.15) -> DigitsSplit:
    """Load digits, split it stratified with a fixed seed, and normalize it.

    Pixels are scaled to 0..1, then standardized with the mean and standard
    deviation of the *training* images only, so nothing about the validation
    or test images leaks into training.

    Args:
        seed: seeds the split; the same seed gives the same split.
        test_fraction: share of all images held out for the final score.
        val_fraction: share of all images held out for model selection.
    """
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ValueError(f"test_fraction {test_fraction} and val_fraction {val_fraction} must be in (0, 1) "
                         "and leave images to train on")
    digits = load_digits()
    x = digits.images.astype("float32") / DIGITS_MAX_PIXEL
    y = digits.target.astype("int64")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=seed, stratify=y_rest)
    mean, std = float(x_train.mean()), float(x_train.std())

    def images(a) -> torch.Tensor:
        return ((torch.from_numpy(a) - mean) / std).unsqueeze(1).contiguous()

    return DigitsSplit(
        images(x_train), torch.from_numpy(y_train), images(x_val), torch.from_numpy(y_val),
        images(x_test), torch.from_numpy(y_test), mean=mean, std=std, seed=seed,
    )


def synthetic_batch(
    batch_size: int, *, channels: int = 3, size: int = 64, classes: int = DIGITS_CLASSES, seed: int = 0,
    device: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random images (N, channels, size, size) and labels, for throughput only.

    Made on the CPU with a seeded generator, then copied to ``device`` once, so
    the data never moves inside a timed step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, channels, size, size, generator=gen)
    y = torch.randint(0, classes, (batch_size,), generator=gen)
    return x.to(device), y.to(device)
