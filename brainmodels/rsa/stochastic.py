"""Stochastic shape metrics: distances between noisy representations (Duong et al. 2023).

Each network's response to stimulus k is a distribution. The Gaussian metric compares means and
covariances; the energy metric compares samples without a Gaussian assumption. Both align the
networks by the best orthogonal transform T, found by alternating Procrustes steps
(accelerated by SQUAREM) from several starts: the objective is not convex in T.

References
----------
Duong, Zhou, Nassar, Berman, Olieslagers & Williams (2023), "Representational dissimilarity
metric spaces for stochastic neural networks", ICLR (eq. 5: the Gaussian metric with alpha;
eq. 6: the energy metric; section 3: alternating / iteratively reweighted Procrustes).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import PRNGKeyArray
from brainmodels.data import unwrap

__all__ = ["stochastic_shape_distance", "gaussian_moments", "STOCHASTIC_METHODS"]


def _polar(m):
    """Orthogonal factor of m (maximises tr(T^T m) over orthogonal T)."""
    u, _, vt = jnp.linalg.svd(m)
    return u @ vt


def _zero_floor(lam, a):
    """Eigenvalues of A^T A (ascending) with the numerically zero ones (below dim * eps *
    largest) set to 0: zero-padded units, rank-deficient covariances."""
    floor = a.shape[-1] * jnp.finfo(a.dtype).eps * lam[..., -1:]
    return jnp.where(lam > floor, lam, 0.0)


def _gram_eig(a):
    """Eigen-decomposition of A^T A per matrix (see :func:`_zero_floor`)."""
    lam, v = jnp.linalg.eigh(jnp.swapaxes(a, -1, -2) @ a)
    return _zero_floor(lam, a), v


def _polar_batched(a):
    """Polar factor U = A (A^T A)^{-1/2} of each matrix in a batch (pseudo-inverse square root:
    directions of zero singular value map to 0, which leaves tr(U^T A) = |A|_* unchanged), and
    the eigenvalues of A^T A (|A|_* = sum of their square roots). One symmetric eigensolver per
    matrix: cheaper on CPU than a batched SVD or Newton-Schulz iterations (benchmarks/rsa.py),
    and accurate to the conditioning of A."""
    lam, v = _gram_eig(a)
    inv = jnp.where(lam > 0, 1.0 / jnp.sqrt(jnp.where(lam > 0, lam, 1.0)), 0.0)
    return a @ ((v * inv[..., None, :]) @ jnp.swapaxes(v, -1, -2)), lam


def _nuclear(a):
    """|A|_* = sum of singular values = sum sqrt(eig(A^T A)), per matrix (eigenvalues only:
    half the cost of the full eigensolver)."""
    lam = jnp.linalg.eigvalsh(jnp.swapaxes(a, -1, -2) @ a)
    return jnp.sum(jnp.sqrt(_zero_floor(lam, a)), axis=-1)


def _sqrtm_psd(c):
    lam, v = jnp.linalg.eigh(c)
    return (v * jnp.sqrt(jnp.maximum(lam, 0.0))[..., None, :]) @ jnp.swapaxes(v, -1, -2)


def _gauss_objective(t, mx, my, sx, sy, trx, try_, alpha, nuclear=None):
    """d^2(T) = mean_k [alpha |mx - T my|^2 + (2 - alpha) B^2(Sx, T Sy T^T)]; ``nuclear``:
    the |Sx T Sy|_* per stimulus where the caller has them already."""
    mean_term = jnp.sum((mx - my @ t.T) ** 2, axis=1)
    if nuclear is None:
        nuclear = _nuclear(sx @ t @ sy)
    bures = trx + try_ - 2 * nuclear
    return jnp.mean(alpha * mean_term + (2.0 - alpha) * bures)


def _iterate(step, t0, n_iter: int):
    """Iterate the alignment update ``step(t) -> (F(t), f(t))`` (the update and the objective
    at t, which the update computes anyway) until t moves by less than 10 sqrt(eps) (largest
    entry change) or ``n_iter`` updates are spent. The objective is stationary at the fixed
    point, so the distance is then accurate to ~eps; under ``vmap`` (restarts, pairs)
    converged entries stay fixed while the others finish.

    Each update alone is a majorise-minimise step (it never raises the objective) that
    converges linearly, at a rate ~0.98 per step on random networks. SQUAREM (Varadhan &
    Roland 2008) accelerates it: t1 = F(t0), t2 = F(t1), r = t1 - t0, v = t2 - 2 t1 + t0;
    the extrapolation t0 - 2 a r + a^2 v (a = -|r| / |v|, at most -1) is mapped back onto the
    orthogonal group by its polar factor and stabilised by one more update. Where the
    objective at the extrapolation exceeds f(t0), the plain t2 is kept, so the objective
    never increases; the extrapolation converges in far fewer updates than the plain ones
    (tests/rsa/test_rsa_stochastic.py checks that it reaches the global minimum)."""
    tol = 10 * float(np.sqrt(np.finfo(t0.dtype).eps))

    def cycle(c):
        i, t, _ = c
        t1, f0 = step(t)
        t2, _ = step(t1)
        r, v = t1 - t, t2 - 2.0 * t1 + t
        a = jnp.minimum(-jnp.linalg.norm(r) / jnp.maximum(jnp.linalg.norm(v), 1e-300), -1.0)
        t3, f_ext = step(_polar(t - 2.0 * a * r + a * a * v))
        # F never raises f: f(t3) <= f_ext <= f0 when the extrapolation did not go uphill
        t_new = jnp.where(f_ext <= f0, t3, t2)  # (a NaN extrapolation also keeps t2)
        return i + 3, t_new, jnp.max(jnp.abs(t_new - t))

    init = (jnp.zeros((), jnp.int32), t0, jnp.asarray(jnp.inf, t0.dtype))
    _, t, _ = jax.lax.while_loop(lambda c: (c[0] < n_iter) & (c[2] > tol), cycle, init)
    return t


def _gauss_align(t0, mx, my, sx, sy, trx, try_, alpha, n_iter: int):
    """Alternating Procrustes: per-stimulus polar factors U_k, then T = polar(M)."""
    cross_means = mx.T @ my  # sum_k mx_k my_k^T

    def step(t):
        u_k, lam = _polar_batched(jnp.swapaxes(sx @ t @ sy, -1, -2))  # max tr(U_k A_k)
        m = alpha * cross_means + (2.0 - alpha) * jnp.sum(
            sx @ jnp.swapaxes(u_k, -1, -2) @ sy, axis=0)
        # the objective at t from the same eigenvalues (|A_k|_* = sum sqrt(lam))
        return _polar(m), _gauss_objective(t, mx, my, sx, sy, trx, try_, alpha,
                                           nuclear=jnp.sum(jnp.sqrt(lam), axis=-1))

    return _iterate(step, t0, n_iter)


def _starts(mx, my, key, n_restarts: int):
    """Starting alignments: the means' Procrustes solution and its best reflection (the best
    T of the other connected component of O(n): the updates rarely cross from det +1 to
    det -1, and the optimum can lie on either side), then random orthogonal matrices."""
    n = mx.shape[1]
    u, _, vt = jnp.linalg.svd(mx.T @ my)
    flip = jnp.ones(n, mx.dtype).at[-1].set(-1.0)
    return jnp.concatenate([(u @ vt)[None], ((u * flip[None, :]) @ vt)[None],
                            _random_orth(key, n, n_restarts).astype(mx.dtype)])


def _random_orth(key, n, count):
    q, r = jnp.linalg.qr(jax.random.normal(key, (count, n, n)))
    return q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]


def _gauss_distance(key, mx, my, sx, sy, alpha, n_iter: int, n_restarts: int):
    inits = _starts(mx, my, key, n_restarts)
    trx = jnp.trace(sx @ sx, axis1=-2, axis2=-1)
    try_ = jnp.trace(sy @ sy, axis1=-2, axis2=-1)

    def run(t0):
        t = _gauss_align(t0, mx, my, sx, sy, trx, try_, alpha, n_iter)
        return _gauss_objective(t, mx, my, sx, sy, trx, try_, alpha), t

    obj, ts = jax.vmap(run)(inits)
    best = jnp.argmin(obj)
    return jnp.sqrt(jnp.maximum(obj[best], 0.0)), ts[best]


_gauss_jit = jax.jit(_gauss_distance, static_argnums=(6, 7))


def _energy_terms(x, y, t):
    """Per stimulus: E|x - T y|, E|x - x'|, E|y - y'| (distinct sample pairs)."""
    def mean_dist(a, b, distinct):
        d = jnp.sqrt(jnp.maximum(jnp.sum((a[:, None] - b[None]) ** 2, -1), 1e-30))
        if distinct:
            r = a.shape[0]
            return (jnp.sum(d) - jnp.sum(jnp.diagonal(d))) / (r * (r - 1))
        return jnp.mean(d)

    yt = y @ t.T
    cross = jax.vmap(lambda a, b: mean_dist(a, b, False))(x, yt)
    wx = jax.vmap(lambda a: mean_dist(a, a, True))(x)
    wy = jax.vmap(lambda a: mean_dist(a, a, True))(y)
    return cross, wx, wy


def _energy_distance(key, x, y, n_iter: int, n_restarts: int):
    mx, my = jnp.mean(x, axis=1), jnp.mean(y, axis=1)
    inits = _starts(mx, my, key, n_restarts)

    def step(t):
        diff = x[:, :, None, :] - (y @ t.T)[:, None, :, :]
        dist = jnp.sqrt(jnp.sum(diff**2, -1))  # (k, r, r')
        w = 1.0 / jnp.maximum(dist, 1e-8)
        m = jnp.einsum("kij,kiu,kjv->uv", w, x, y)
        return _polar(m), jnp.mean(dist)  # the T-dependent part of d^2 at t

    def run(t0):
        t = _iterate(step, t0, n_iter)
        cross, wx, wy = _energy_terms(x, y, t)
        return jnp.mean(cross - 0.5 * wx - 0.5 * wy), t

    obj, ts = jax.vmap(run)(inits)
    best = jnp.argmin(obj)
    return jnp.sqrt(jnp.maximum(obj[best], 0.0)), ts[best]


_energy_jit = jax.jit(_energy_distance, static_argnums=(3, 4))

#: method name -> what it needs
STOCHASTIC_METHODS = {"gaussian": "means and covariances (or samples)", "energy": "samples"}


def gaussian_moments(samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """Means (stimulus, unit) and covariances (stimulus, unit, unit) of samples (stimulus,
    repeat, unit), with the unbiased (repeat - 1) normalisation."""
    s = np.asarray(unwrap(samples, name="samples")[0], dtype=float)
    if s.ndim != 3 or s.shape[1] < 2:
        raise ValueError(f"samples must have shape (stimulus, repeat >= 2, unit), got {s.shape}")
    mu = s.mean(axis=1)
    c = s - mu[:, None]
    return mu, np.einsum("kri,krj->kij", c, c) / (s.shape[1] - 1)


def _as_gaussian(x: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, tuple | list) and len(x) == 2:
        mu = np.asarray(unwrap(x[0], name=f"{name} means")[0], dtype=float)
        cov = np.asarray(unwrap(x[1], name=f"{name} covariances")[0], dtype=float)
    else:
        mu, cov = gaussian_moments(x)
    if mu.ndim != 2 or cov.shape != (*mu.shape, mu.shape[1]):
        raise ValueError(f"{name}: means must be (stimulus, unit) and covariances (stimulus, "
                         f"unit, unit); got {mu.shape} and {cov.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise ValueError(f"{name} contains NaN/infinite values")
    return mu, cov


def _pad_units(arrs: list[np.ndarray], width: int, unit_axes: tuple[int, ...]) -> list:
    out = []
    for a in arrs:
        pad = [(0, 0)] * a.ndim
        for ax in unit_axes:
            pad[ax] = (0, width - a.shape[ax])
        out.append(np.pad(a, pad))
    return out


def _prep_gaussian(rep, width, name):
    mu, cov = _as_gaussian(rep, name)
    mu, = _pad_units([mu], width, (1,))
    cov, = _pad_units([cov], width, (1, 2))
    dtype = jnp.result_type(float)
    return jnp.asarray(mu, dtype), _sqrtm_psd(jnp.asarray(cov, dtype))


def _width(rep, kind) -> int:
    if kind == "gaussian" and isinstance(rep, tuple | list) and len(rep) == 2:
        return np.shape(rep[0])[-1]
    return np.shape(unwrap(rep)[0])[-1]


def stochastic_shape_distance(
    X: Any,
    Y: Any,
    alpha: float = 1.0,
    method: str = "gaussian",
    *,
    key: PRNGKeyArray | None = None,
    n_iter: int = 50,
    n_restarts: int = 2,
    return_alignment: bool = False,
):
    """Stochastic shape distance between two noisy representations (Duong et al. 2023).

    Parameters
    ----------
    X, Y : tuple (means, covariances) or array (stimulus, repeat, unit)
        ``means`` (stimulus, unit) and ``covariances`` (stimulus, unit, unit) of each network's
        response distribution, or repeated samples (Gaussian moments are then estimated).
        The ``energy`` method needs samples. Narrower networks are zero-padded.
    alpha : float in [0, 2]
        Gaussian metric: ``d^2 = min_T mean_k [alpha |mu_k^X - T mu_k^Y|^2 + (2 - alpha)
        B^2(Sigma_k^X, T Sigma_k^Y T^T)]`` with B the Bures distance. alpha = 0:
        covariances only; 1: the 2-Wasserstein distance; 2: means only, i.e. sqrt(2) times
        the Procrustes Euclidean shape distance of the means. Ignored by ``energy``.
    method : {"gaussian", "energy"}
        ``energy``: ``d^2 = min_T mean_k (E|x - T y| - E|x - x'|/2 - E|y - y'|/2)``, with T
        by iteratively reweighted Procrustes.
    key : jax PRNG key, optional
        For the random orthogonal restarts (default ``jax.random.key(0)``).
    n_iter, n_restarts : int
        Most alignment updates per start (alternating / iteratively reweighted Procrustes,
        accelerated by SQUAREM in cycles of 3; a start stops earlier once the alignment
        moves by less than ``10 sqrt(eps)``); random starts added to the means' Procrustes
        solution and its best reflection.
    return_alignment : bool
        Also return T (unit, unit), mapping Y into X's space (``T @ y``).

    Returns
    -------
    float or (float, ndarray)

    Raises
    ------
    ValueError
        Unknown method, alpha outside [0, 2], mismatched stimuli, malformed moments, NaNs.
    """
    if method not in STOCHASTIC_METHODS:
        raise ValueError(f"method must be one of {sorted(STOCHASTIC_METHODS)}, got {method!r}")
    if not 0.0 <= alpha <= 2.0:
        raise ValueError(f"alpha must be in [0, 2], got {alpha}")
    if n_iter < 1 or n_restarts < 0:
        raise ValueError(f"n_iter must be >= 1 and n_restarts >= 0, got {n_iter}, {n_restarts}")
    key = jax.random.key(0) if key is None else key
    width = max(_width(X, method), _width(Y, method))
    if method == "gaussian":
        (mx, sx), (my, sy) = _prep_gaussian(X, width, "X"), _prep_gaussian(Y, width, "Y")
        if mx.shape[0] != my.shape[0]:
            raise ValueError(f"X and Y must describe the same stimuli: {mx.shape[0]} vs "
                             f"{my.shape[0]}")
        d, t = _gauss_jit(key, mx, my, sx, sy, jnp.asarray(alpha, mx.dtype), n_iter, n_restarts)
    else:
        x, y = (_check_samples(v, n) for v, n in ((X, "X"), (Y, "Y")))
        x, y = _pad_units([x, y], width, (2,))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"X and Y must describe the same stimuli: {x.shape[0]} vs "
                             f"{y.shape[0]}")
        dtype = jnp.result_type(float)
        d, t = _energy_jit(key, jnp.asarray(x, dtype), jnp.asarray(y, dtype), n_iter, n_restarts)
    d = float(d)
    return (d, np.asarray(t)) if return_alignment else d


def _check_samples(v, name):
    s = np.asarray(unwrap(v, name=name)[0], dtype=float)
    if s.ndim != 3 or s.shape[1] < 2:
        raise ValueError(f"{name} must be samples (stimulus, repeat >= 2, unit), got shape "
                         f"{s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains NaN/infinite values")
    return s


def _pairwise_stochastic(reps, metric: str, alpha: float, *, key=None, n_iter: int = 50,
                         n_restarts: int = 2):
    """All pairs; the Gaussian metric computes each network's covariance square roots once."""
    key = jax.random.key(0) if key is None else key
    n = len(reps)
    out = np.zeros((n, n))
    if metric == "gaussian":
        width = max(_width(r, metric) for r in reps)
        prepped = [_prep_gaussian(r, width, f"representations[{i}]") for i, r in enumerate(reps)]
        mus = jnp.stack([p[0] for p in prepped])
        sqs = jnp.stack([p[1] for p in prepped])
        i, j = np.triu_indices(n, 1)
        keys = jnp.stack([key] * len(i))  # the same restarts for every pair, as single calls
        d = _pairwise_gauss_jit(keys, mus[i], mus[j], sqs[i], sqs[j],
                                jnp.asarray(alpha, mus.dtype), n_iter, n_restarts)
        out[i, j] = out[j, i] = np.asarray(d)
        return out
    for a in range(n):
        for b in range(a + 1, n):
            out[a, b] = out[b, a] = stochastic_shape_distance(
                reps[a], reps[b], alpha, "energy", key=jax.random.fold_in(key, a * n + b),
                n_iter=n_iter, n_restarts=n_restarts)
    return out


def _pairwise_gauss(keys, mx, my, sx, sy, alpha, n_iter: int, n_restarts: int):
    return jax.lax.map(lambda a: _gauss_distance(*a, alpha, n_iter, n_restarts)[0],
                       (keys, mx, my, sx, sy))


_pairwise_gauss_jit = jax.jit(_pairwise_gauss, static_argnums=(6, 7))
