"""Jitted kernels of the voxelwise ridge solvers.

Every kernel works on one batch of voxels (the columns of ``Y``); the caller loops over
batches so that memory stays bounded whatever the number of voxels. The expensive part, the
decomposition of the design matrix, is computed once per fold (or once for the whole data set)
and reused for every alpha and every voxel batch.

Notation: ``X = U diag(s) V^T`` (thin SVD, ``k = rank``); the ridge solution for one alpha is
``coef = V diag(s / (s^2 + alpha)) U^T y`` and its fitted values are
``U diag(s^2 / (s^2 + alpha)) U^T y`` (Hoerl & Kennard 1970; Golub, Heath & Wahba 1979, eq. 2.2).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from brainmodels._types import Array, Float

__all__ = [
    "DECOMPOSITIONS",
    "FOLD_SCORES",
    "FOLD_STATS",
    "Decomposition",
    "decompose",
    "fold_scores_batch",
    "loo_scores_batch",
    "refit_batch",
]


class Decomposition(NamedTuple):
    """Thin SVD of a (centred) design matrix: ``X = U diag(s) V^T``."""

    U: Float[Array, "sample k"]
    s: Float[Array, " k"]
    V: Float[Array, "feature k"]


def _mask_small(U, s, V, *, squared: bool = False):
    """Zero the singular triplets below the numerical rank (their ridge weight becomes 0).

    ``squared``: ``s`` came from eigenvalues of ``X X^T`` or ``X^T X``, whose rounding error is
    ``eps * s_max^2``, so the threshold on ``s`` is ``s_max * sqrt(size * eps)``.
    """
    n, p = U.shape[0], V.shape[0]
    eps = jnp.finfo(s.dtype).eps
    tol = jnp.max(s) * (jnp.sqrt(max(n, p) * eps) if squared else max(n, p) * eps)
    keep = s > tol
    s = jnp.where(keep, s, 0.0)
    return Decomposition(U * keep[None, :], s, V * keep[None, :])


def _svd(X):
    U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    return _mask_small(U, s, Vt.T)


def _dual(X):
    """Eigendecomposition of the kernel ``X X^T`` (n x n): the cheap route when p > n."""
    w, U = jnp.linalg.eigh(X @ X.T)
    w, U = w[::-1], U[:, ::-1]
    s = jnp.sqrt(jnp.clip(w, 0.0))
    safe = jnp.where(s > 0, s, 1.0)
    U, s, V = _mask_small(U, s, (X.T @ U) / safe[None, :], squared=True)
    return Decomposition(U, s, V)


def _primal(X):
    """Eigendecomposition of the covariance ``X^T X`` (p x p): the cheap route when n >> p."""
    w, V = jnp.linalg.eigh(X.T @ X)
    w, V = w[::-1], V[:, ::-1]
    s = jnp.sqrt(jnp.clip(w, 0.0))
    safe = jnp.where(s > 0, s, 1.0)
    return _mask_small((X @ V) / safe[None, :], s, V, squared=True)


#: Ways to diagonalise the design matrix; all return the same thin SVD (up to signs).
DECOMPOSITIONS: dict[str, Callable] = {"svd": _svd, "dual": _dual, "primal": _primal}


@partial(jax.jit, static_argnames=("method",))
def decompose(X: Float[Array, "sample feature"], *, method: str = "svd") -> Decomposition:
    """Thin SVD of ``X`` by ``method`` (a key of :data:`DECOMPOSITIONS`)."""
    return DECOMPOSITIONS[method](X)


# ----------------------------------------------------------------------------- scores


def _r2(y, pred):
    """Coefficient of determination per column; 0 where the column of ``y`` is constant."""
    resid = jnp.sum((y - pred) ** 2, axis=0)
    total = jnp.sum((y - jnp.mean(y, axis=0, keepdims=True)) ** 2, axis=0)
    return _r2_from_sums(resid, total)


def _r2_from_sums(resid, total):
    """1 - resid / total per column; 0 where the column is constant (total 0)."""
    return jnp.where(total > 0, 1.0 - resid / jnp.where(total > 0, total, 1.0), 0.0)


def _correlation(y, pred):
    """Pearson correlation per column; 0 where either column is constant."""
    yc = y - jnp.mean(y, axis=0, keepdims=True)
    pc = pred - jnp.mean(pred, axis=0, keepdims=True)
    den = jnp.sqrt(jnp.sum(yc**2, axis=0) * jnp.sum(pc**2, axis=0))
    return jnp.where(den > 0, jnp.sum(yc * pc, axis=0) / jnp.where(den > 0, den, 1.0), 0.0)


def _neg_mse(y, pred):
    return -jnp.mean((y - pred) ** 2, axis=0)


#: Per-voxel scores used to pick alphas (higher is better).
FOLD_SCORES: dict[str, Callable] = {"r2": _r2, "correlation": _correlation, "neg_mse": _neg_mse}


# ----------------------------------------------------------------------------- kernels


def _sse(y, pred):
    return jnp.sum((y - pred) ** 2, axis=0)


#: Per-fold statistics returned by :func:`kfold_scores_batch` (combined over folds by the caller).
FOLD_STATS: dict[str, Callable] = {"sse": _sse, "correlation": _correlation}


@partial(jax.jit, static_argnames=("statistic", "fit_intercept"))
def fold_scores_batch(
    fold: tuple,
    Y: Float[Array, "sample voxel"],
    alphas: Float[Array, " alpha"],
    *,
    statistic: str,
    fit_intercept: bool,
) -> tuple[Float[Array, "alpha voxel"], Float[Array, " voxel"]]:
    """Held-out statistic of every alpha in one fold for one batch of voxels.

    ``fold`` is ``(train_idx, test_idx, U, s, A)`` with ``U, s`` the SVD of the (train-centred)
    training design and ``A = X_test V`` the test design in the same basis. Cost: one
    ``n_train x k`` product for ``U^T Y`` and one ``n_test x k`` product per alpha, instead of
    one ridge solve per alpha. Returns the statistic (:data:`FOLD_STATS`) and the total sum of
    squares of the test fold (about its mean). Folds of equal size share one compilation.
    """
    stat = FOLD_STATS[statistic]
    train, test, U, s, A = fold
    Ytr, Yte = Y[train], Y[test]
    if fit_intercept:
        mu = jnp.mean(Ytr, axis=0, keepdims=True)
        Ytr, Yte = Ytr - mu, Yte - mu
    B = U.T @ Ytr

    def one(alpha):
        d = s / (s**2 + alpha)
        return stat(Yte, (A * d[None, :]) @ B)

    sst = jnp.sum((Yte - jnp.mean(Yte, axis=0, keepdims=True)) ** 2, axis=0)
    return lax.map(one, alphas), sst


@partial(jax.jit, static_argnames=("score", "fit_intercept"))
def loo_scores_batch(
    U: Float[Array, "sample k"],
    s: Float[Array, " k"],
    Y: Float[Array, "sample voxel"],
    alphas: Float[Array, " alpha"],
    *,
    score: str,
    fit_intercept: bool,
) -> Float[Array, "alpha voxel"]:
    """Exact leave-one-out scores for every alpha, from one SVD of the whole design.

    The LOO residual of sample ``i`` is ``e_i / (1 - h_ii)`` with ``e`` the in-sample residual
    and ``h_ii`` the diagonal of the hat matrix ``1/n + U diag(s^2/(s^2+alpha)) U^T`` (the
    ``1/n`` for the unpenalised intercept); Golub, Heath & Wahba (1979), eq. 1.5 / 2.3.
    Valid only for exchangeable (independent) samples.
    """
    scorer = FOLD_SCORES[score]
    n = Y.shape[0]
    Yc = Y - jnp.mean(Y, axis=0, keepdims=True) if fit_intercept else Y
    B = U.T @ Yc
    U2 = U * U
    offset = 1.0 / n if fit_intercept else 0.0

    # r2 needs only the sum of squared LOO residuals per alpha: the total sum of squares is
    # computed once, outside the loop (XLA does not hoist it out of the map's body)
    if score == "r2":
        total = jnp.sum((Yc - jnp.mean(Yc, axis=0, keepdims=True)) ** 2, axis=0)

    def one(alpha):
        f = s**2 / (s**2 + alpha)
        h = U2 @ f + offset
        resid = Yc - U @ (f[:, None] * B)
        loo = resid / (1.0 - h)[:, None]
        if score == "r2":
            return _r2_from_sums(jnp.sum(loo * loo, axis=0), total)
        return scorer(Yc, Yc - loo)

    return lax.map(one, alphas)


@partial(jax.jit, static_argnames=("fit_intercept",))
def refit_batch(
    dec: Decomposition,
    Y: Float[Array, "sample voxel"],
    alpha: Float[Array, " voxel"],
    *,
    fit_intercept: bool,
) -> Float[Array, "feature voxel"]:
    """Coefficients on the whole data with one alpha per voxel (one product for all alphas)."""
    Yc = Y - jnp.mean(Y, axis=0, keepdims=True) if fit_intercept else Y
    B = dec.U.T @ Yc
    d = dec.s[:, None] / (dec.s[:, None] ** 2 + alpha[None, :])
    return dec.V @ (d * B)


@jax.jit
def predict_batch(X, coef, intercept):
    """``X @ coef + intercept`` (jitted so predictions on big voxel counts stay fast)."""
    return X @ coef + intercept[None, :]
