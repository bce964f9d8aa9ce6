"""The ridge kernels on the host (numpy/LAPACK) for problems too small to repay compilation.

A jitted kernel costs 0.1-0.3 s to compile per shape on CPU, while a 300 x 10 design with 300
voxels takes milliseconds in numpy: a notebook-sized fit would spend ~95 % of its first call
compiling. Below :data:`HOST_MAX_DESIGN` (``n_samples x min(n_samples, n_features)``), on the
CPU backend and without a device mesh, the cross-validation and refit of ``_cv`` run these
numpy versions of the kernels of :mod:`brainmodels.encoders._solvers` instead, over the same
voxel batches. They compute the
same quantities: the decomposition in float64 (as the CPU path does for the eigen-routes), the
products over voxels in the working dtype (float32 by default), scores accumulated in float64.

The choice depends on the design's shape only, never on the number of voxels, so a fit split
into voxel chunks takes the same path as the whole fit.
"""

from __future__ import annotations

import numpy as np

#: Designs with ``n_samples * min(n_samples, n_features)`` up to this run on the host (CPU
#: backend only). Measured on 2 cores, 15 alphas, first call / warm, host vs jitted:
#: 300 x 10 x 300 voxels, 5-fold 0.013 / 0.003 s vs 0.29 / 0.006 s; 1,000 x 100 x 2,000,
#: 5-fold 0.09 / 0.08 s vs 0.34 / 0.10 s, LOO 0.13 / 0.13 s vs 0.22 / 0.07 s; 500 x 300 x
#: 5,000 (150,000) 5-fold 0.30 / 0.29 s vs 0.80 / 0.36 s; above it (2,000 x 100 x 5,000) the
#: jitted kernels win warm and nearly cold (LOO 0.62 s host vs 0.40 / 0.27 s).
HOST_MAX_DESIGN = 150_000


def use_host(n: int, p: int, mesh) -> bool:
    """Whether a fit with this design runs on the host (see the module docstring)."""
    from brainmodels._platform import cpu_backend

    return mesh is None and n * min(n, p) <= HOST_MAX_DESIGN and cpu_backend()


def decompose(X: np.ndarray, method: str):
    """Thin SVD ``(U, s, V)`` of ``X`` in float64 by ``method``, triplets below the numerical
    rank zeroed (the thresholds of :func:`_solvers._mask_small`)."""
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    eps = np.finfo(np.float64).eps
    if method == "svd":
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        V = Vt.T
        keep = s > (s[0] if s.size else 0.0) * max(n, p) * eps
    elif method == "primal":
        w, V = np.linalg.eigh(X.T @ X)
        w, V = w[::-1], V[:, ::-1]
        s = np.sqrt(np.clip(w, 0.0, None))
        keep = s > s[0] * np.sqrt(max(n, p) * eps)
        U = np.zeros((n, s.size))
        U[:, keep] = (X @ V[:, keep]) / s[keep]
    else:  # dual
        w, U = np.linalg.eigh(X @ X.T)
        w, U = w[::-1], U[:, ::-1]
        s = np.sqrt(np.clip(w, 0.0, None))
        keep = s > s[0] * np.sqrt(max(n, p) * eps)
        V = np.zeros((p, s.size))
        V[:, keep] = (X.T @ U[:, keep]) / s[keep]
    s = np.where(keep, s, 0.0)
    return U * keep[None, :], s, V * keep[None, :]


def _centre(Y):
    return Y - Y.mean(0, keepdims=True)


def _r2(y, pred):
    return _r2_from_sums(((y - pred) ** 2).sum(0), (_centre(y) ** 2).sum(0))


def _r2_from_sums(resid, total):
    """1 - resid / total per column; 0 where the column is constant (total 0)."""
    return np.where(total > 0, 1.0 - resid / np.where(total > 0, total, 1.0), 0.0)


def _correlation(y, pred):
    yc, pc = _centre(y), _centre(pred)
    den = np.sqrt((yc**2).sum(0) * (pc**2).sum(0))
    return np.where(den > 0, (yc * pc).sum(0) / np.where(den > 0, den, 1.0), 0.0)


def _neg_mse(y, pred):
    return -((y - pred) ** 2).mean(0)


SCORES = {"r2": _r2, "correlation": _correlation, "neg_mse": _neg_mse}


def _sse(y, pred):
    return ((y - pred) ** 2).sum(0)


STATS = {"sse": _sse, "correlation": _correlation}


def fold_scores(fold, Y, alphas, *, statistic: str, fit_intercept: bool, dtype):
    """Host :func:`_solvers.fold_scores_batch` on a voxel batch: (alpha, voxel) statistic and
    the (voxel,) sum of squares of the test fold. Products and per-sample arithmetic in
    ``dtype`` (as the jitted kernel), the statistics returned as float64."""
    train, test, U, s, A = fold
    Ytr, Yte = Y[train].astype(dtype, copy=False), Y[test].astype(dtype, copy=False)
    if fit_intercept:
        mu = Ytr.mean(0, keepdims=True)
        Ytr, Yte = Ytr - mu, Yte - mu
    B = U.astype(dtype).T @ Ytr
    A = A.astype(dtype)
    out = np.empty((len(alphas), Y.shape[1]))
    for i, alpha in enumerate(alphas):
        d = (s / (s**2 + alpha)).astype(dtype)
        out[i] = STATS[statistic](Yte, (A * d[None, :]) @ B)
    return out, (_centre(Yte) ** 2).sum(0, dtype=np.float64)


def loo_scores(U, s, Y, alphas, *, score: str, fit_intercept: bool, dtype):
    """Host :func:`_solvers.loo_scores_batch` on a voxel batch: (alpha, voxel) as float64;
    the arithmetic in ``dtype`` (as the jitted kernel) except the leverages (float64)."""
    n = Y.shape[0]
    Yc = (_centre(Y) if fit_intercept else Y).astype(dtype, copy=False)
    Ud = U.astype(dtype)
    B = Ud.T @ Yc
    U2 = U * U
    offset = 1.0 / n if fit_intercept else 0.0
    out = np.empty((len(alphas), Y.shape[1]))
    # r2 and neg_mse need only the sum of squared LOO residuals per alpha (the total sum of
    # squares does not depend on alpha): one pass over the residuals, not ~8
    total = (_centre(Yc) ** 2).sum(0) if score == "r2" else None
    for i, alpha in enumerate(alphas):
        f = s**2 / (s**2 + alpha)
        scale = (1.0 / (1.0 - (U2 @ f + offset))).astype(dtype)  # inf where h = 1: not picked
        fitted = Ud @ (f.astype(dtype)[:, None] * B)
        with np.errstate(over="ignore", invalid="ignore"):
            fitted -= Yc
            fitted *= scale[:, None]  # minus the LOO residuals
            if score == "r2":
                out[i] = _r2_from_sums(np.einsum("ij,ij->j", fitted, fitted), total)
            elif score == "neg_mse":
                out[i] = -np.einsum("ij,ij->j", fitted, fitted) / n
            else:
                out[i] = SCORES[score](Yc, Yc + fitted)
    return out


def refit(U, s, V, Y, alpha, *, fit_intercept: bool, dtype):
    """Host :func:`_solvers.refit_batch` on a voxel batch: (feature, voxel) in ``dtype``."""
    Yc = (_centre(Y) if fit_intercept else Y).astype(dtype, copy=False)
    B = U.astype(dtype).T @ Yc
    d = (s[:, None] / (s[:, None] ** 2 + np.asarray(alpha, np.float64)[None, :])).astype(dtype)
    return (V.astype(dtype) @ (d * B)).astype(dtype, copy=False)
