"""Task generators: deterministic by seed, correct targets, stratified digits split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from brainmodels.datasets.tasks import adding_task, copy_task, sequential_digits


def test_sequential_digits_rows_and_pixels_reproduce_the_images():
    rows = sequential_digits(order="row", seed=3)
    pix = sequential_digits(order="pixel", seed=3)
    assert rows.x_train.shape[1:] == (8, 8) and pix.x_train.shape[1:] == (64, 1)
    # same split for the same seed; pixel order is the row-major flattening of the rows
    np.testing.assert_array_equal(rows.y_test, pix.y_test)
    np.testing.assert_array_equal(rows.x_train.reshape(-1, 64), pix.x_train[..., 0])
    # every original image appears exactly once (train + test), scaled to [0, 1]
    digits = load_digits()
    ours = np.concatenate([rows.x_train, rows.x_test]).reshape(-1, 64) * 16
    theirs = digits.data
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.sort(ours.view([("", ours.dtype)] * 64), axis=0),
                                  np.sort(theirs.astype(np.float32).view(
                                      [("", np.float32)] * 64), axis=0))
    # stratified: each class ~20% in the test set
    counts = np.bincount(rows.y_test, minlength=10) / np.bincount(digits.target)
    assert np.all(np.abs(counts - 0.2) < 0.01)


def test_digits_deterministic_and_repeat():
    a, b = sequential_digits(seed=1), sequential_digits(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, sequential_digits(seed=2).y_train)
    rep = sequential_digits(seed=1, repeat=3)
    np.testing.assert_array_equal(rep.x_train[:, ::3], a.x_train)
    np.testing.assert_array_equal(rep.x_train[:, 2::3], a.x_train)


def test_copy_task_targets_are_the_input_symbols():
    task = copy_task(n_train=50, n_test=10, length=4, delay=6, n_symbols=5, seed=0)
    x, y, m = task.x_train, task.y_train, task.mask_train
    assert x.shape == (50, 2 * 4 + 6 + 1, 7)
    symbols = x[:, :4, :5].argmax(-1)
    np.testing.assert_array_equal(y[m].reshape(50, 4), symbols)
    np.testing.assert_array_equal(x[:, 4 + 6, 6], 1.0)  # go signal
    assert np.all(y[~m] == 5)  # blank class elsewhere
    np.testing.assert_array_equal(copy_task(seed=4).x_test, copy_task(seed=4).x_test)


def test_adding_task_sum_and_baseline():
    task = adding_task(n_train=4000, n_test=10, length=30, seed=0)
    x, y = task.x_train, task.y_train
    np.testing.assert_allclose(y, (x[..., 0] * x[..., 1]).sum(1), rtol=1e-6)
    assert np.all(x[..., 1].sum(1) == 2)
    assert np.all(x[:, :15, 1].sum(1) == 1)  # one marker per half
    # MSE of predicting 1.0 is Var(U1 + U2) = 1/6; 4000 samples: SE ~ 0.003
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.015)


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be one of"):
        sequential_digits(order="column")
    with pytest.raises(ValueError, match="repeat must be an integer >= 1"):
        sequential_digits(repeat=0)
    with pytest.raises(ValueError, match="n_symbols must be an integer >= 2"):
        copy_task(n_symbols=1)
