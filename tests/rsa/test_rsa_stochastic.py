"""Stochastic shape metrics: limits (alpha = 2, alpha = 0), invariances, triangle inequality."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from brainmodels.rsa import (
    gaussian_moments,
    pairwise_distances,
    shape_distance,
    stochastic_shape_distance,
)


def _orth(rng, n):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q


# one (stimulus, unit) shape everywhere: the jitted alignment compiles once for the module
K, U = 5, 3


def _random_gaussians(rng, k=K, u=U):
    mu = rng.standard_normal((k, u))
    a = rng.standard_normal((k, u, u))
    return mu, a @ a.transpose(0, 2, 1) / u + 0.1 * np.eye(u)


def test_alpha2_is_the_deterministic_metric(x64):
    # alpha = 2 keeps only the means: d^2 = 2 min_T mean_k |mu_x - T mu_y|^2, i.e. sqrt(2) x
    # the Procrustes (alpha = 1) Euclidean shape distance of the (centred) means
    rng = np.random.default_rng(0)
    mx, cx = _random_gaussians(rng)
    my, cy = _random_gaussians(rng)
    mx, my = mx - mx.mean(0), my - my.mean(0)
    d = stochastic_shape_distance((mx, cx), (my, cy), alpha=2.0)
    assert d / np.sqrt(2) == pytest.approx(shape_distance(mx, my, 1.0, "euclidean"), abs=1e-8)


def test_alpha0_equal_means_is_bures_closed_form(x64):
    # commuting (diagonal) covariances with eigenvalues sorted alike for every stimulus: the
    # identity is the optimal rotation and B^2 = sum_i (sqrt(a_i) - sqrt(b_i))^2
    rng = np.random.default_rng(1)
    k, u = K, U
    a = np.sort(rng.random((k, u)) + 0.1, axis=1)
    b = np.sort(rng.random((k, u)) + 0.1, axis=1)
    mu = rng.standard_normal((k, u))
    d = stochastic_shape_distance((mu, a[:, :, None] * np.eye(u)),
                                  (mu, b[:, :, None] * np.eye(u)), alpha=0.0)
    bures2 = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2, axis=1)
    assert d == pytest.approx(np.sqrt(2 * bures2.mean()), abs=1e-8)


def test_zero_for_rotated_copy_and_alignment(x64):
    rng = np.random.default_rng(2)
    mx, cx = _random_gaussians(rng)
    q = _orth(rng, U)
    y = (mx @ q, np.einsum("ji,kjl,lm->kim", q, cx, q))  # y = Q^T x
    d, t = stochastic_shape_distance((mx, cx), y, alpha=1.0, return_alignment=True)
    assert d < 1e-6
    np.testing.assert_allclose(mx, y[0] @ t.T, atol=1e-6)


def test_triangle_inequality_random_triples(x64):
    rng = np.random.default_rng(3)
    for alpha in (0.5, 1.0):
        for _ in range(3):
            a, b, c = (_random_gaussians(rng) for _ in range(3))
            dab = stochastic_shape_distance(a, b, alpha)
            dbc = stochastic_shape_distance(b, c, alpha)
            dac = stochastic_shape_distance(a, c, alpha)
            # the alignment is a non-convex search with restarts; allow a small slack
            assert dac <= dab + dbc + 1e-6


def test_gaussian_alignment_reaches_the_global_minimum(x64):
    # 2 units: O(2) is an angle and a reflection, so the global minimum of d^2(T) comes from a
    # fine grid refined by a bounded scalar search (scipy). The accelerated alternating
    # Procrustes (SQUAREM, see _iterate) from its starts reaches it to 1e-9, and further
    # iterations change nothing (early stop at convergence).
    import scipy.linalg
    import scipy.optimize

    rng = np.random.default_rng(12)
    (mx, cx), (my, cy) = _random_gaussians(rng, k=6, u=2), _random_gaussians(rng, k=6, u=2)
    alpha = 1.0
    rx = [scipy.linalg.sqrtm(c).real for c in cx]

    def d2(theta, flip):
        c, s = np.cos(theta), np.sin(theta)
        t = np.array([[c, -s], [s, c]]) @ np.diag([1.0, flip])
        out = 0.0
        for k in range(6):
            cross = scipy.linalg.sqrtm(rx[k] @ t @ cy[k] @ t.T @ rx[k]).real
            bures = np.trace(cx[k]) + np.trace(cy[k]) - 2 * np.trace(cross)
            out += alpha * np.sum((mx[k] - t @ my[k]) ** 2) + (2 - alpha) * bures
        return out / 6

    best = np.inf
    for flip in (1.0, -1.0):
        grid = np.linspace(0, 2 * np.pi, 721)
        vals = [d2(th, flip) for th in grid]
        th0 = grid[int(np.argmin(vals))]
        res = scipy.optimize.minimize_scalar(lambda th, f=flip: d2(th, f),
                                             bounds=(th0 - 0.01, th0 + 0.01), method="bounded",
                                             options={"xatol": 1e-12})
        best = min(best, res.fun)
    d = stochastic_shape_distance((mx, cx), (my, cy), alpha, n_iter=300)
    assert d == pytest.approx(np.sqrt(best), abs=1e-9)
    assert stochastic_shape_distance((mx, cx), (my, cy), alpha, n_iter=600) == d


def test_energy_metric(x64):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 20, 3)) * np.array([1.0, 2.0, 0.5]) + rng.standard_normal((6, 1, 3))
    q = _orth(rng, 3)
    # the same samples rotated: distance 0 (all terms cancel exactly at the optimum)
    assert stochastic_shape_distance(x, x @ q, method="energy", n_iter=60) < 1e-3
    far = stochastic_shape_distance(x, 3 * x + 1.0, method="energy", n_iter=60)
    assert far > 0.5


def test_samples_give_gaussian_moments(x64):
    rng = np.random.default_rng(5)
    s = rng.standard_normal((K, 30, U))
    mu, cov = gaussian_moments(s)
    np.testing.assert_allclose(cov[2], np.cov(s[2].T), atol=1e-12)
    assert stochastic_shape_distance(s, (mu, cov)) == pytest.approx(0.0, abs=1e-6)


def test_pairwise_gaussian_matches_single_calls(x64):
    rng = np.random.default_rng(6)
    nets = [_random_gaussians(rng) for _ in range(3)]
    out = pairwise_distances(nets, "gaussian", alpha=1.0, key=jax.random.key(0))
    np.testing.assert_allclose(out.values, out.values.T)
    single = stochastic_shape_distance(nets[0], nets[2], 1.0)
    # same key -> same restarts and iterations as the single call
    assert out.values[0, 2] == pytest.approx(single, abs=1e-8)


def test_bad_input():
    rng = np.random.default_rng(0)
    g = _random_gaussians(rng)
    with pytest.raises(ValueError, match="alpha must be in"):
        stochastic_shape_distance(g, g, alpha=3.0)
    with pytest.raises(ValueError, match="method must be one of"):
        stochastic_shape_distance(g, g, method="kl")
    with pytest.raises(ValueError, match="covariances"):
        stochastic_shape_distance((g[0], g[1][:, :2]), g)
    with pytest.raises(ValueError, match="samples"):
        stochastic_shape_distance(g[0], g[0], method="energy")
