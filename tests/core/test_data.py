"""gpucnn.data: the digits split and the synthetic batches."""

from __future__ import annotations

import pytest
import torch

from gpucnn.data import DIGITS_CLASSES, load_digits_split, synthetic_batch


def test_split_covers_every_image_once_with_the_right_shapes() -> None:
    d = load_digits_split(seed=0)
    assert sum(d.sizes.values()) == 1797
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and len(x) == len(y)
    # stratified: every digit is in every split
    for y in (d.y_train, d.y_val, d.y_test):
        assert set(y.tolist()) == set(range(DIGITS_CLASSES))
    # no image of the test split is also a training image (duplicates in digits aside, rows differ)
    train_rows = {tuple(r.tolist()) for r in d.x_train.flatten(1)}
    overlap = sum(tuple(r.tolist()) in train_rows for r in d.x_test.flatten(1))
    assert overlap <= 2, "the test split must be held out from training"


def test_normalized_with_training_statistics_only() -> None:
    d = load_digits_split(seed=0)
    assert abs(float(d.x_train.mean())) < 1e-4
    assert abs(float(d.x_train.std()) - 1) < 1e-3
    # the other splits use the training statistics, so they are close to, not exactly, standard
    assert abs(float(d.x_test.mean())) < 0.2


def test_the_same_seed_gives_the_same_split_and_another_seed_another() -> None:
    a, b, c = load_digits_split(seed=0), load_digits_split(seed=0), load_digits_split(seed=1)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_test, c.y_test)


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="leave images to train on"):
        load_digits_split(test_fraction=0.6, val_fraction=0.5)


def test_synthetic_batch_is_seeded_and_shaped() -> None:
    x, y = synthetic_batch(4, seed=3)
    assert x.shape == (4, 3, 64, 64) and y.shape == (4,)
    assert int(y.max()) < DIGITS_CLASSES
    x2, _ = synthetic_batch(4, seed=3)
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="batch_size"):
        synthetic_batch(0)
