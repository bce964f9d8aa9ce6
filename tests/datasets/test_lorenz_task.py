"""The Lorenz prediction task: the integrator against scipy, determinism, and the memory it
needs (the memoryless bar against a delay embedding)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from brainmodels.datasets.tasks import TASKS, _lorenz_rk4, lorenz_task, memoryless_loss


def _lorenz(t, u, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    x, y, z = u
    return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]


def test_rk4_matches_scipy_on_a_short_trajectory():
    u0 = np.array([[1.0, 1.0, 20.0]])
    ours = _lorenz_rk4(u0, 0.005, 200)[0]  # 1 time unit, under one Lyapunov time (~1.1)
    ref = solve_ivp(_lorenz, (0, 1.0), u0[0], t_eval=0.005 * np.arange(1, 201), rtol=1e-11,
                    atol=1e-11, method="DOP853").y.T
    # RK4's global error ~ C dt^4 grows by ~e^(0.9 t) on the attractor: 1e-5 relative here
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())


def test_shapes_standardisation_and_determinism():
    task = lorenz_task(n_train=64, n_test=16, length=50, seed=3)
    assert task.x_train.shape == (64, 50, 1) and task.y_train.shape == (64, 50)
    assert task.x_test.shape == (16, 50, 1) and task.mask_test.shape == (16, 50)
    assert not task.mask_train[:, :20].any() and task.mask_train[:, 20:].all()
    assert abs(task.x_train.mean()) < 1e-5 and abs(task.x_train.std() - 1) < 1e-5
    # the target is the input `horizon` steps later
    h = task.meta["horizon"]
    np.testing.assert_allclose(task.y_train[:, :-h], task.x_train[:, h:, 0], atol=1e-6)
    again = lorenz_task(n_train=64, n_test=16, length=50, seed=3)
    np.testing.assert_array_equal(task.x_train, again.x_train)
    other = lorenz_task(n_train=64, n_test=16, length=50, seed=4)
    assert not np.array_equal(task.x_train, other.x_train)
    assert TASKS["lorenz"] is lorenz_task


def test_memory_helps_far_below_the_memoryless_bar():
    task = lorenz_task(n_train=256, n_test=64, seed=0)
    bar = memoryless_loss(task)

    def embed(x, d=10):  # the last d inputs: a linear model with memory
        return np.stack([np.roll(x[..., 0], k, axis=1) for k in range(d)], -1)

    a, b = embed(task.x_train)[task.mask_train], task.y_train[task.mask_train]
    w = np.linalg.lstsq(np.c_[a, np.ones(len(a))], b, rcond=None)[0]
    at = embed(task.x_test)[task.mask_test]
    mse = np.mean((np.c_[at, np.ones(len(at))] @ w - task.y_test[task.mask_test]) ** 2)
    # measured: bar 0.30, linear delay embedding 0.08 (horizon 10)
    assert bar > 0.2 and mse < bar / 2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="washout"):
        lorenz_task(length=10, washout=10)
    with pytest.raises(ValueError, match="dt must be"):
        lorenz_task(dt=0.5)
    with pytest.raises(ValueError, match="horizon"):
        lorenz_task(horizon=0)
