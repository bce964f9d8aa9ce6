"""Hyper-gradient refinement of banded ridge penalties (implicit differentiation, ``jax.grad``).

Per voxel the parameters are the log penalties ``theta_k = log(alpha / gamma_k)`` of the ``m``
feature spaces. The cross-validation loss is the held-out squared error of every fold (pooled
over folds, or each fold's error over its total sum of squares, averaged), with the ridge
solution of each fold

    primal:  (X^T X + diag(exp(theta)[space of feature])) beta = X^T y
    dual:    (sum_k exp(-theta_k) X_k X_k^T + I) w = y,   beta_k = exp(-theta_k) X_k^T w

whichever system is smaller. ``jax.grad`` differentiates through ``jnp.linalg.solve`` by the
implicit function theorem (one more solve with the same factorisation), and every voxel's
system is solved in a ``vmap`` batch. Adam steps (optax) start from the random-search best;
each voxel keeps the best penalties it has seen, so its CV loss never ends above the start.

The cost is one ``d x d`` factorisation per voxel, fold and step (``d = min(p, n_train)``):
cheap on an accelerator, heavy on a CPU at ``d`` in the thousands.

Reference: Bengio (2000), Gradient-based optimization of hyperparameters, Neural Computation
12(8); Dupre la Tour et al. (2022), NeuroImage 264, section 2.5 (hyper-gradient for banded /
multiple-kernel ridge).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

THETA_RANGE = (-25.0, 40.0)

#: Folds are separate programs, run one after the other: XLA's CPU runtime (jaxlib 0.10.2, two
#: cores) deadlocked, every thread parked, on one program holding the LU solves of four or more
#: folds side by side (reproduced in every run at 4 and 5 folds, never at 1 to 3, and never with
#: XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false, which a library cannot set
#: once JAX has started; the same option per jit did not help).


def _fold_data(X, splits, bounds, fit_intercept, dual, dtype):
    from brainmodels.encoders._cv import fold_features

    return [_system(Xtr, Xte, bounds, dual, dtype) + (train, test)
            for train, test, Xtr, Xte in fold_features(X, splits, fit_intercept)]


def _system(Xtr, Xte, bounds, dual, dtype):
    """What one fold's solves need: the Gram matrix (primal) or the per-space kernels (dual)."""
    Xtr64 = np.asarray(Xtr, np.float64)
    if dual:
        blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        K = np.stack([Xtr64[:, s] @ Xtr64[:, s].T for s in blocks])
        return (jnp.asarray(K, dtype), jnp.zeros((0,), dtype), jnp.asarray(Xtr, dtype),
                jnp.asarray(Xte, dtype))
    G = Xtr64.T @ Xtr64
    return (jnp.asarray(G, dtype), jnp.zeros((0,), dtype), jnp.asarray(Xtr, dtype),
            jnp.asarray(Xte, dtype))


def _solve_one(theta, ytr, system, space, dual):
    """Ridge coefficients of one voxel for log penalties ``theta`` (m,)."""
    G_or_K, _, Xtr, _ = system
    if dual:
        scale = jnp.exp(-theta)
        K = jnp.tensordot(scale, G_or_K, axes=1) + jnp.eye(G_or_K.shape[-1], dtype=ytr.dtype)
        w = jnp.linalg.solve(K, ytr)
        return scale[space] * (Xtr.T @ w)
    lam = jnp.exp(theta)[space]
    return jnp.linalg.solve(G_or_K + jnp.diag(lam), Xtr.T @ ytr)


def _fold_sse(theta, ytr, yte, system, space, dual):
    beta = _solve_one(theta, ytr, system, space, dual)
    return jnp.sum((yte - system[3] @ beta) ** 2)


def _fold_weights(Y, folds, pooled):
    """Per fold, the weight (voxel,) of its held-out SSE in the CV loss.

    pooled: 1 / sum over folds of SST; fold-averaged: 1 / (n_folds * SST of the fold). The loss
    ``sum_f weight_f * SSE_f`` is then 1 - (CV R^2) either way.
    """
    sst = []
    for _, _, test in folds:
        Yte = Y[test]
        sst.append(jnp.sum((Yte - jnp.mean(Yte, axis=0, keepdims=True)) ** 2, axis=0))
    safe = lambda x: jnp.where(x > 0, x, 1.0)  # noqa: E731  a constant voxel: loss 0, not NaN
    if pooled:
        total = safe(sum(sst))
        return [1.0 / total for _ in folds]
    return [1.0 / (len(folds) * safe(s)) for s in sst]


def _centred(Y, train, test, fit_intercept):
    Ytr, Yte = Y[train], Y[test]
    if fit_intercept:
        mu = jnp.mean(Ytr, axis=0, keepdims=True)
        Ytr, Yte = Ytr - mu, Yte - mu
    return Ytr, Yte


def _fold_loss(theta, Y, weight, system, train, test, space, dual, fit_intercept):
    Ytr, Yte = _centred(Y, train, test, fit_intercept)
    sse = jax.vmap(_fold_sse, in_axes=(0, 1, 1, None, None, None))(
        theta, Ytr, Yte, system, space, dual)
    return weight * sse


@partial(jax.jit, static_argnames=("dual", "fit_intercept"))
def _fold_loss_grad(theta, Y, weight, system, train, test, space, *, dual, fit_intercept):
    """One fold's share of every voxel's CV loss (voxel,), and its gradient in theta."""
    def total(t):
        loss = _fold_loss(t, Y, weight, system, train, test, space, dual, fit_intercept)
        return jnp.sum(loss), loss

    (_, loss), grad = jax.value_and_grad(total, has_aux=True)(theta)
    return loss, grad


@partial(jax.jit, static_argnames=("dual", "fit_intercept"))
def _fold_loss_only(theta, Y, weight, system, train, test, space, *, dual, fit_intercept):
    return _fold_loss(theta, Y, weight, system, train, test, space, dual, fit_intercept)


@jax.jit
def _adam_step(theta, state, best, best_loss, loss, grad, lr):
    """Keep each voxel's best theta so far, then one Adam step on the log penalties."""
    better = loss < best_loss
    best = jnp.where(better[:, None], theta, best)
    best_loss = jnp.where(better, loss, best_loss)
    grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
    upd, state = optax.adam(lr).update(grad, state)
    theta = jnp.clip(optax.apply_updates(theta, upd), *THETA_RANGE)
    return theta, state, best, best_loss


def _refine_batch(theta0, Y, folds, space, lr, *, dual, pooled, steps, fit_intercept):
    """Adam on the CV loss of a batch of voxels; returns the best theta and its loss.

    Each step runs the folds as separate programs, in turn (see the note at the top), and
    sums their losses and gradients; steps are a Python loop (dispatches cost microseconds
    next to the solves).
    """
    kw = dict(dual=dual, fit_intercept=fit_intercept)
    weights = _fold_weights(Y, folds, pooled)

    def value_grad(theta):
        loss, grad = 0.0, 0.0
        for (system, train, test), w in zip(folds, weights, strict=True):
            lf, gf = _fold_loss_grad(theta, Y, w, system, train, test, space, **kw)
            loss, grad = jax.block_until_ready((loss + lf, grad + gf))
        return loss, grad

    theta = best = theta0
    state = optax.adam(lr).init(theta0)
    best_loss = jnp.full(theta0.shape[0], jnp.inf, theta0.dtype)
    for _ in range(steps):
        loss, grad = value_grad(theta)
        theta, state, best, best_loss = _adam_step(theta, state, best, best_loss, loss, grad, lr)
    last = 0.0
    for (system, train, test), w in zip(folds, weights, strict=True):
        last = jax.block_until_ready(
            last + _fold_loss_only(theta, Y, w, system, train, test, space, **kw))
    better = last < best_loss
    return jnp.where(better[:, None], theta, best), jnp.where(better, last, best_loss)


@partial(jax.jit, static_argnames=("dual", "fit_intercept"))
def _refit_batch(theta, Y, system, space, *, dual, fit_intercept):
    if fit_intercept:
        Y = Y - jnp.mean(Y, axis=0, keepdims=True)
    return jax.vmap(_solve_one, in_axes=(0, 1, None, None, None), out_axes=1)(
        theta, Y, system, space, dual)


def refine(X, Y, bounds, splits, gamma, alpha, *, fit_intercept, average, steps, lr,
           batch_bytes=2e8, dtype=np.float32):
    """Refine per-voxel band penalties from a random-search start.

    ``gamma`` (m, v) and ``alpha`` (v,) are the start. Returns ``(gamma, alpha, cv_r2, coef)``
    with the CV R^2 of the refined penalties (pooled or fold-averaged as ``average``) and the
    coefficients refit on all of ``X``.
    """
    n, p = X.shape
    m = len(bounds) - 1
    n_train = min(len(a) for a, _ in splits)
    dual = p > n_train
    d = n_train if dual else p
    itemsize = np.dtype(dtype).itemsize
    # per voxel in flight: the d x d system and its factorisation, for value and gradient
    batch = int(max(1, min(Y.shape[1], batch_bytes // (4 * d * d * itemsize))))
    space = jnp.asarray(np.repeat(np.arange(m), np.diff(bounds)))
    folds = [(sys_[:4], jnp.asarray(sys_[4]), jnp.asarray(sys_[5]))
             for sys_ in _fold_data(X, splits, bounds, fit_intercept, dual, dtype)]
    full = _system(X - X.mean(0) if fit_intercept else X, np.zeros((0, p)), bounds, dual, dtype)
    g = np.clip(gamma, 1e-12, None)
    theta_all = np.clip(np.log(alpha[None, :] / g), *THETA_RANGE).T.astype(dtype)  # (v, m)
    v = Y.shape[1]
    theta_out = np.empty((v, m), dtype=np.float64)
    loss_out = np.empty(v, dtype=np.float64)
    coef = np.empty((p, v), dtype=dtype)
    for start in range(0, v, batch):
        sl = slice(start, min(start + batch, v))
        w = sl.stop - sl.start
        Yb = np.zeros((n, batch), dtype=dtype)
        Yb[:, :w] = Y[:, sl]
        tb = np.zeros((batch, m), dtype=dtype)
        tb[:w] = theta_all[sl]
        Yb, tb = jnp.asarray(Yb), jnp.asarray(tb)
        best, loss = _refine_batch(tb, Yb, folds, space, jnp.asarray(lr, dtype), dual=dual,
                                   pooled=average == "pooled", steps=int(steps),
                                   fit_intercept=fit_intercept)
        theta_out[sl] = np.asarray(best, np.float64)[:w]
        loss_out[sl] = np.asarray(loss, np.float64)[:w]
        coef[:, sl] = np.asarray(_refit_batch(best, Yb, full, space, dual=dual,
                                              fit_intercept=fit_intercept))[:, :w]
    inv = np.exp(-theta_out.T)  # 1 / lambda_k = gamma_k / alpha
    alpha_new = 1.0 / inv.sum(0)
    gamma_new = inv * alpha_new[None, :]
    # pooled: 1 - sum SSE / sum SST; folds: 1 - mean(SSE_f / SST_f) = mean of fold R^2
    return gamma_new, alpha_new, 1.0 - loss_out, coef
