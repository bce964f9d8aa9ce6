"""Whitening circuit: closed form, fixed point, convergence, frame condition, dynamics, errors.

Tolerances: closed-form identities are exact in exact arithmetic, so float64 results are held to
~1e3-1e4 eps of the matrices' scale (1e-10 .. 1e-12); online adaptation is stochastic and is held
to the issue's 1e-2 (its floor is the sampling error of 1e6 samples, ~sqrt(N / n) ~ 2e-3).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from brainmodels import whitening as wh


def _covariance(rng, n, lo=0.5, hi=2.0):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.linspace(lo, hi, n)) @ q.T


def _sqrtm(c):
    lam, u = np.linalg.eigh(c)
    return (u * np.sqrt(lam)) @ u.T


def _samples(rng, c, n):
    return rng.standard_normal((n, c.shape[0])) @ np.linalg.cholesky(c).T


@pytest.mark.parametrize("k_factor", [1, 2])
def test_closed_form_is_zca_fixed_point(x64, rng, k_factor):
    """g* makes M = C^{1/2}: the steady state is the symmetric (ZCA) whitening C^{-1/2} x, and
    every interneuron sees unit variance (the online rule's fixed point)."""
    n = 4
    c = _covariance(rng, n)
    W = wh.random_frame(n, k_factor * wh.n_symmetric(n), key=jax.random.key(3), dtype=np.float64)
    g = wh.optimal_gains(W, c)
    w = np.asarray(W)
    np.testing.assert_allclose(np.eye(n) + (w * g) @ w.T, _sqrtm(c), atol=1e-10)
    X = _samples(rng, c, 50)
    zca = X @ np.linalg.inv(_sqrtm(c))
    np.testing.assert_allclose(wh.respond(W, g, X).values, zca, atol=1e-10)
    c_rr = np.asarray(wh.output_covariance(W, g, c))
    np.testing.assert_allclose(np.sum(w * (c_rr @ w), axis=0), 1.0, atol=1e-10)
    assert wh.whitening_error(c_rr) < 1e-10


@pytest.mark.slow
def test_online_converges_to_identity_and_zca(x64, rng):
    """Online, sample batches of 100, Robbins-Monro decay: ||C_rr - I||_op < 1e-2 after 1e6
    samples, and the learned M^{-1} is the ZCA matrix C^{-1/2} to the same order."""
    n = 3
    c = _covariance(rng, n)
    W = wh.random_frame(n, 2 * wh.n_symmetric(n), key=jax.random.key(0), dtype=np.float64)
    X = _samples(rng, c, 1_000_000)
    res = wh.adapt(W, X, lr=0.05, batch_size=100, lr_decay=0.01, cov=c)
    assert res.gains.dtype == np.float64
    print("final error", float(res.error[-1]), "first", float(res.error[0]))
    assert float(res.error[-1]) < 1e-2
    assert wh.whitening_error(c) == pytest.approx(1.0)  # it had something to do
    w = np.asarray(W)
    m_inv = np.linalg.inv(np.eye(n) + (w * res.gains.values) @ w.T)
    assert np.abs(m_inv - np.linalg.inv(_sqrtm(c))).max() < 1e-2


@pytest.mark.parametrize("batch_size", [1, 4])
def test_scan_matches_numpy_loop_of_the_same_updates(x64, rng, batch_size):
    """The jitted scan is the numpy loop g += lr mean(z*z - 1), z = W^T M^{-1} x, update for
    update (float64: 300 updates accumulate ~1e-13 of round-off)."""
    c = _covariance(rng, 3)
    W = wh.random_frame(3, 8, key=jax.random.key(4), dtype=np.float64)
    X = _samples(rng, c, 300 * batch_size)
    res = wh.adapt(W, X, lr=0.05, batch_size=batch_size, n_records=300)
    w, g = np.asarray(W), np.zeros(8)
    for t, xb in enumerate(X.reshape(300, batch_size, 3)):
        z = w.T @ np.linalg.solve(np.eye(3) + (w * g) @ w.T, xb.T)
        g = g + 0.05 * (z * z - 1).mean(axis=1)
        if t in (0, 299):
            np.testing.assert_allclose(res.gains_trace.values[t], g, atol=1e-12)
    np.testing.assert_allclose(res.gains.values, g, atol=1e-12)
    np.testing.assert_array_equal(res.step.values, batch_size * np.arange(1, 301))


def test_undercomplete_frame_error_stays_bounded_away(x64, rng):
    """K < N(N+1)/2: the {w w^T} cannot span the symmetric matrices, so even the exact
    (offline) optimum leaves an error; a full frame reaches 1e-10 on the same input."""
    n = 4
    c = _covariance(rng, n, 0.3, 3.0)
    k_full = wh.n_symmetric(n)
    W_small = wh.random_frame(n, k_full - 3, key=jax.random.key(1), dtype=np.float64)
    assert wh.frame_rank(W_small) == k_full - 3
    small = wh.adapt_offline(W_small, c, lr=0.05, steps=4000, full=False)
    W_full = wh.random_frame(n, 2 * k_full, key=jax.random.key(1), dtype=np.float64)
    full = wh.adapt_offline(W_full, c, lr=0.05, steps=4000)
    print("undercomplete error", float(small.error[-1]), "full", float(full.error[-1]))
    assert float(small.error[-1]) > 0.05
    assert float(small.error[-1]) == pytest.approx(float(small.error[-10]), rel=1e-3)  # settled
    assert float(full.error[-1]) < 1e-10


def test_offline_reaches_closed_form_mercedes_benz(x64, rng):
    W = wh.mercedes_benz_frame(dtype=np.float64)
    assert wh.frame_rank(W) == 3
    c = _covariance(rng, 2, 0.4, 3.0)
    res = wh.adapt_offline(W, c, lr=0.2, steps=2000)
    g_star = wh.optimal_gains(W, c)
    assert np.abs(res.gains.values - g_star).max() < 1e-8
    assert float(res.error[-1]) < 1e-8
    assert res.attrs["params"]["steps"] == 2000 and res.attrs["stable"]


def test_nonneg_gains_whiten_only_high_variance_directions(x64):
    """Mercedes-Benz frame, variance 4 along w_1 and 0.5 orthogonal to it: g >= 0 can only
    shrink, so the optimum is g = (2 - 1, 0, 0): the first direction is whitened and the
    second left at 0.5 (KKT: the other interneurons see 1/4 + 3/4 * 0.5 < 1). Unconstrained
    gains whiten both."""
    W = wh.mercedes_benz_frame(dtype=np.float64)
    u1 = np.asarray(W)[:, 0]
    u2 = np.array([-u1[1], u1[0]])
    c = 4.0 * np.outer(u1, u1) + 0.5 * np.outer(u2, u2)
    pos = wh.adapt_offline(W, c, lr=0.2, steps=3000, nonneg=True)
    np.testing.assert_allclose(pos.gains.values, [1.0, 0.0, 0.0], atol=1e-8)
    c_rr = np.asarray(wh.output_covariance(W, pos.gains.values, c))
    assert u1 @ c_rr @ u1 == pytest.approx(1.0, abs=1e-8)
    assert u2 @ c_rr @ u2 == pytest.approx(0.5, abs=1e-8)  # untouched
    free = wh.adapt_offline(W, c, lr=0.2, steps=3000)
    assert float(free.error[-1]) < 1e-8 and free.gains.values.min() < 0


def test_dynamics_reach_steady_state(x64, rng):
    c = _covariance(rng, 3)
    W = wh.random_frame(3, 6, key=jax.random.key(2), dtype=np.float64)
    g = wh.optimal_gains(W, c)
    x = rng.standard_normal(3)
    ds = wh.dynamics(W, g, x, dt=0.05, steps=2000)
    # Euler's fixed point is exact; the transient decays as exp(-lambda_min(M) t), t = 100 tau
    np.testing.assert_allclose(ds.r.values[-1], ds.steady_state.values, atol=1e-10)
    np.testing.assert_allclose(ds.steady_state.values, wh.respond(W, g, x[None]).values[0])
    assert ds.r.dims == ("time", "neuron") and ds.z.dims == ("time", "interneuron")


def test_float32_by_default(rng):
    W = wh.random_frame(3, key=jax.random.key(0))
    X = rng.standard_normal((500, 3))
    res = wh.adapt(W, X, lr=0.01, batch_size=5)
    assert W.dtype == np.float32 and res.gains.dtype == np.float32
    assert wh.respond(W, res.gains, X).dtype == np.float32
    assert res.attrs["model"] == "whitening.adapt" and "brainmodels_version" in res.attrs


def test_bad_input_errors(rng):
    W = wh.random_frame(3, key=jax.random.key(0))
    X = rng.standard_normal((100, 3))
    with pytest.raises(ValueError, match=r"full whitening of 3 neurons needs K >= N\(N\+1\)/2 = 6"):
        wh.adapt(wh.random_frame(3, 4, key=jax.random.key(0)), X, lr=0.1)
    for lr in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="lr must be a positive"):
            wh.adapt(W, X, lr=lr)
    with pytest.raises(ValueError, match=r"X must be 2-D \(sample, neuron\) with 3 neurons"):
        wh.adapt(W, rng.standard_normal((100, 4)), lr=0.1)
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        wh.adapt(W, rng.standard_normal(100), lr=0.1)
    with pytest.raises(ValueError, match="X must hold at least one sample and only finite"):
        wh.adapt(W, np.full((10, 3), np.nan), lr=0.1)
    with pytest.raises(ValueError, match="unit-norm columns"):
        wh.adapt(2 * W, X, lr=0.1)
    with pytest.raises(ValueError, match=r"gains must have shape \(n_interneurons,\) = \(6,\)"):
        wh.respond(W, np.zeros(5), X)
    with pytest.raises(ValueError, match="batch_size = 200 exceeds the 100 samples"):
        wh.adapt(W, X, lr=0.1, batch_size=200)
    with pytest.raises(ValueError, match="cov must be positive definite"):
        wh.adapt_offline(W, -np.eye(3), lr=0.1)
    with pytest.raises(ValueError, match="n_interneurons must be a positive integer"):
        wh.random_frame(3, 0, key=jax.random.key(0))
