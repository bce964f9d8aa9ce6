"""Cross-validation of voxelwise ridge: splits, the batched per-alpha scores, alpha choice, refit.

The estimator (:class:`brainmodels.encoders.RidgeEncoder`) validates and labels; this module
runs the numbers: one decomposition per fold serves every alpha and every voxel, and voxels go
through ``jax.jit`` in fixed-size batches so memory stays bounded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels.encoders import _host, _solvers
from brainmodels.encoders._validation import format_indices

# ----------------------------------------------------------------------------- CV splits


def kfold_splits(n_samples: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous K-fold splits without shuffling (the first ``n % k`` folds get one extra)."""
    if n_folds < 2:
        raise ValueError(f"cv must be >= 2 folds, got {n_folds}")
    if n_samples < n_folds:
        raise ValueError(
            f"cv={n_folds} folds needs at least {n_folds} samples, got {n_samples}"
        )
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    idx = np.arange(n_samples)
    return [
        (np.concatenate([idx[:a], idx[b:]]), idx[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _leave_one_run_out(n_samples: int, runs: np.ndarray | None):
    if runs is None:
        raise ValueError(
            'cv="runs" needs the run of every sample: call fit(X, Y, runs=...) or give X a '
            "`run` coordinate"
        )
    labels = np.unique(runs)
    if labels.size < 2:
        raise ValueError(f'cv="runs" needs at least 2 distinct runs, got {labels.tolist()}')
    idx = np.arange(n_samples)
    return [(idx[runs != r], idx[runs == r]) for r in labels]


#: String values of ``cv``; ``"loo"`` is handled by the closed-form solver.
CV_STRATEGIES: dict[str, Callable | None] = {"runs": _leave_one_run_out, "loo": None}


def _resolve_splits(cv: Any, n_samples: int, runs: np.ndarray | None):
    if isinstance(cv, str):
        if cv not in CV_STRATEGIES:
            raise ValueError(
                f"cv must be an int, a scikit-learn splitter or one of {sorted(CV_STRATEGIES)}, "
                f"got {cv!r}"
            )
        return "loo" if cv == "loo" else CV_STRATEGIES[cv](n_samples, runs)
    if isinstance(cv, int | np.integer) and not isinstance(cv, bool):
        return kfold_splits(n_samples, int(cv))
    if hasattr(cv, "split"):
        splits = [(np.asarray(a), np.asarray(b))
                  for a, b in cv.split(np.zeros((n_samples, 1)), groups=runs)]
        if any(len(a) == 0 or len(b) == 0 for a, b in splits):
            raise ValueError("cv produced an empty training or validation set")
        return splits
    raise TypeError(
        f"cv must be an int, a scikit-learn splitter, 'runs' or 'loo'; got {type(cv).__name__}"
    )


# ----------------------------------------------------------------------------- solvers


def _auto_method(n_samples: int, n_features: int) -> str:
    """Dual (kernel) form when features outnumber samples, primal eigh when samples are at
    least twice the features (a p x p eigendecomposition is several times cheaper than the
    SVD; the ridge weights ``1/(s^2 + alpha)`` keep it well conditioned), else the SVD."""
    if n_features > n_samples:
        return "dual"
    return "primal" if n_samples >= 2 * n_features else "svd"


#: ``solver=`` values: the decomposition of the design matrix (``"auto"`` picks one per shape).
SOLVERS: dict[str, Callable[[int, int], str]] = {
    "auto": _auto_method,
    "svd": lambda n, p: "svd",
    "dual": lambda n, p: "dual",
    "primal": lambda n, p: "primal",
}


def _decompose(X: np.ndarray, *, method: str, dtype) -> _solvers.Decomposition:
    """The decomposition of the (centred) design, in ``dtype``.

    The eigen-routes (``primal``: ``X^T X``; ``dual``: ``X X^T``) square the condition
    number: in float32 the eigenvalues carry an absolute error of ~eps * s_max^2, which on a
    design of condition number 1e3 (real CNN features, word embeddings) moves predictions by
    ~1e-2. On CPU they are therefore formed and solved in float64 on the host (numpy/LAPACK,
    faster there than XLA's eigh) and the factors cast to ``dtype``; accurate to float32
    storage up to condition numbers ~1e6. Elsewhere (accelerators) and for ``svd`` the JAX
    kernels run as before.
    """
    if method == "svd" or jax.default_backend() != "cpu":
        return _solvers.decompose(jnp.asarray(X, dtype=dtype), method=method)
    U, s, V = _host.decompose(X, method)
    return _solvers.Decomposition(*(jnp.asarray(a, dtype=dtype) for a in (U, s, V)))


def device_mesh(devices: Any = None) -> jax.sharding.Mesh | None:
    """A 1-D ``voxel`` mesh over ``devices`` (None: every visible JAX device; an int: the
    first that many; or a list of devices), or None when that is a single device.

    Voxel batches are then placed with their columns split over the devices (``NamedSharding``,
    ``PartitionSpec(None, "voxel")``) and the fold factors replicated, so one jitted call runs
    on all devices at once; each device computes exactly the columns it would compute alone.
    """
    if devices is None:
        devs = jax.devices()
    elif isinstance(devices, int | np.integer) and not isinstance(devices, bool):
        avail = jax.devices()
        if not 1 <= int(devices) <= len(avail):
            raise ValueError(f"devices must be between 1 and the {len(avail)} visible JAX "
                             f"device(s), got {devices}")
        devs = avail[: int(devices)]
    else:
        devs = list(devices)
        if not devs:
            raise ValueError("devices must name at least one JAX device")
    return None if len(devs) == 1 else jax.sharding.Mesh(np.array(devs), ("voxel",))


def _place(x, mesh, spec=()):
    """``x`` on ``mesh`` with ``PartitionSpec(*spec)`` (replicated by default); as is without
    a mesh."""
    if mesh is None:
        return x
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(x, NamedSharding(mesh, PartitionSpec(*spec)))


def _batches(n_voxels: int, size: int):
    for start in range(0, n_voxels, size):
        yield slice(start, min(start + size, n_voxels))


def _padded(Y: np.ndarray, sl: slice, size: int, dtype) -> jax.Array:
    """Columns ``sl`` of ``Y`` zero-padded to ``size`` so every batch compiles once."""
    block = np.asarray(Y[:, sl], dtype=dtype)
    if block.shape[1] < size:
        block = np.pad(block, ((0, 0), (0, size - block.shape[1])))
    return jnp.asarray(block)


def _warn_if_time_series(Xt, Yt, runs) -> None:
    """Leave-one-out assumes independent samples; BOLD time points are autocorrelated, so a
    left-out volume is predicted from its neighbours and the chosen alphas are too small."""
    timed = [t for t in (Xt, Yt) if t is not None and t.dims[0] == "time"]
    if runs is None and not timed:
        return
    why = "has a 'time' dimension" if timed else "comes with runs"
    warnings.warn(
        f"cv='loo' on data that {why}: leave-one-out is valid only for independent samples "
        "(single-trial or repeat-averaged betas); BOLD time series are autocorrelated, so "
        "it picks too little regularisation. Use cv='runs' (leave-one-run-out).",
        UserWarning, stacklevel=3)


def _fit_bytes(n: int, p: int, v: int, n_alphas: int, batch: int, n_folds: int,
               itemsize: int) -> float:
    """Peak memory of :meth:`RidgeEncoder.fit`: every alpha's predictions for one voxel batch
    (and their scores), one decomposition per fold, the coefficients, a copy of Y, and the
    float64 (alpha, voxel) CV scores."""
    per_batch = 2 * n_alphas * n * batch
    decompositions = (n_folds + 1) * n * min(n, p)
    return itemsize * (per_batch + decompositions + p * v + n * v) + 8.0 * n_alphas * v


def fold_features(X, splits, fit_intercept):
    """Per split: ``(train, test, X_train, X_test)``, centred on the training mean if asked."""
    for train, test in splits:
        Xtr, Xte = X[train], X[test]
        if fit_intercept:
            mu = Xtr.mean(0)
            Xtr, Xte = Xtr - mu, Xte - mu
        yield train, test, Xtr, Xte


def _cv_scores(X, Y, alphas, splits, *, method, score, fit_intercept, batch, dtype,
               average="pooled", progress=None, mesh=None):
    """(alpha, voxel) mean held-out scores (float64 accumulation over folds).

    With a device ``mesh`` every jitted call takes ``batch`` voxels per device."""
    n_vox = Y.shape[1]
    if _host.use_host(*X.shape, mesh):
        return _host_cv_scores(X, Y, alphas, splits, method=method, score=score,
                               fit_intercept=fit_intercept, dtype=dtype, average=average,
                               progress=progress, batch=batch)
    if mesh is not None:
        batch *= mesh.size
    batches = list(_batches(n_vox, batch))
    if progress is not None:
        batches = progress(batches)
    out = np.zeros((len(alphas), n_vox), dtype=np.float64)
    a = jnp.asarray(alphas, dtype=dtype)
    if splits == "loo":
        Xc = X - X.mean(0) if fit_intercept else X
        dec = _decompose(Xc, method=method, dtype=dtype)
        for sl in batches:
            res = _solvers.loo_scores_batch(_place(dec.U, mesh), _place(dec.s, mesh),
                                            _place(_padded(Y, sl, batch, dtype), mesh,
                                                   (None, "voxel")), _place(a, mesh),
                                            score=score, fit_intercept=fit_intercept)
            out[:, sl] = np.asarray(res, dtype=np.float64)[:, : sl.stop - sl.start]
        return out
    folds = []
    for train, test, Xtr, Xte in fold_features(X, splits, fit_intercept):
        dec = _decompose(Xtr, method=method, dtype=dtype)
        A = jnp.asarray(Xte, dtype=dtype) @ dec.V
        folds.append(_place((jnp.asarray(train), jnp.asarray(test), dec.U, dec.s, A), mesh))
    statistic = "correlation" if score == "correlation" else "sse"
    a = _place(a, mesh)
    for sl in batches:
        Yb = _place(_padded(Y, sl, batch, dtype), mesh, (None, "voxel"))
        res = [_solvers.fold_scores_batch(f, Yb, a, statistic=statistic,
                                          fit_intercept=fit_intercept) for f in folds]
        m = sl.stop - sl.start
        stats = np.stack([np.asarray(r[0], dtype=np.float64)[:, :m] for r in res])
        sst = np.stack([np.asarray(r[1], dtype=np.float64)[:m] for r in res])
        out[:, sl] = _combine_folds(stats, sst, splits, score, average)
    return out


def _combine_folds(stats, sst, splits, score, average):
    """(fold, alpha, voxel) statistics and (fold, voxel) test sums of squares -> one
    (alpha, voxel) CV score (``cv_average``: pooled over folds, or the mean of the folds')."""
    sizes = np.array([len(t) for _, t in splits], dtype=np.float64)
    if average == "folds":
        return np.mean([FOLD_COMBINE[score](stats[f][None], sst[f], sizes[f])
                        for f in range(len(splits))], axis=0)
    return FOLD_COMBINE[score](stats, sst.sum(0), int(sizes.sum()))


def _host_cv_scores(X, Y, alphas, splits, *, method, score, fit_intercept, dtype, average,
                    progress, batch):
    """:func:`_cv_scores` on the host (small designs: :mod:`_host`): the same decompositions
    once per fold, the same voxel batches (memory stays bounded by ``voxel_batch``)."""
    n_vox = Y.shape[1]
    batches = list(_batches(n_vox, batch))
    if progress is not None:
        batches = progress(batches)
    alphas = np.asarray(alphas, dtype=np.float64)
    out = np.zeros((len(alphas), n_vox), dtype=np.float64)
    if splits == "loo":
        Xc = X - X.mean(0) if fit_intercept else X
        U, s, _ = _host.decompose(Xc, method)
        for sl in batches:
            out[:, sl] = _host.loo_scores(U, s, np.asarray(Y[:, sl]), alphas, score=score,
                                          fit_intercept=fit_intercept, dtype=dtype)
        return out
    statistic = "correlation" if score == "correlation" else "sse"
    folds = []
    for train, test, Xtr, Xte in fold_features(X, splits, fit_intercept):
        U, s, V = _host.decompose(Xtr, method)
        folds.append((train, test, U, s, np.asarray(Xte, dtype=np.float64) @ V))
    for sl in batches:
        Yb = np.asarray(Y[:, sl])
        res = [_host.fold_scores(f, Yb, alphas, statistic=statistic,
                                 fit_intercept=fit_intercept, dtype=dtype) for f in folds]
        stats = np.stack([r[0] for r in res])
        sst = np.stack([r[1] for r in res])
        out[:, sl] = _combine_folds(stats, sst, splits, score, average)
    return out


def _combine_r2(sse, sst, n_test):
    """R^2 of the pooled out-of-fold predictions: 1 - sum_f SSE_f / sum_f SST_f."""
    total = sse.sum(0)
    return np.where(sst > 0, 1.0 - total / np.where(sst > 0, sst, 1.0), 0.0)


#: ``cv_average=`` values: how the folds' held-out errors become one score per alpha.
CV_AVERAGES = ("pooled", "folds")


#: How per-fold statistics become one CV score per (alpha, voxel) (float64 accumulation).
#: With ``cv_average="pooled"`` (the default) ``r2`` and ``neg_mse`` pool squared errors over
#: folds: the alpha minimising the total held-out squared error, i.e. the R^2 of the
#: concatenated out-of-fold predictions. himalaya instead averages the per-fold scores
#: (``cv_average="folds"``), which weighs a small or low-variance fold as much as a large
#: one. ``correlation`` is the mean of the per-fold correlations either way.
FOLD_COMBINE: dict[str, Callable] = {
    "r2": _combine_r2,
    "neg_mse": lambda sse, sst, n_test: -sse.sum(0) / n_test,
    "correlation": lambda corr, sst, n_test: corr.mean(0),
}


def _refit(X, Y, best_alphas, *, method, fit_intercept, batch, dtype, mesh=None):
    Xc = X - X.mean(0) if fit_intercept else X
    if _host.use_host(*X.shape, mesh):
        U, s, V = _host.decompose(Xc, method)
        coef = np.zeros((X.shape[1], Y.shape[1]), dtype=dtype)
        for sl in _batches(Y.shape[1], batch):
            coef[:, sl] = _host.refit(U, s, V, np.asarray(Y[:, sl]), best_alphas[sl],
                                      fit_intercept=fit_intercept, dtype=dtype)
        return coef
    dec = _place(_decompose(Xc, method=method, dtype=dtype), mesh)
    if mesh is not None:
        batch *= mesh.size
    coef = np.zeros((X.shape[1], Y.shape[1]), dtype=dtype)
    for sl in _batches(Y.shape[1], batch):
        alpha = np.ones(batch, dtype=dtype)
        alpha[: sl.stop - sl.start] = best_alphas[sl]
        res = _solvers.refit_batch(dec, _place(_padded(Y, sl, batch, dtype), mesh,
                                               (None, "voxel")),
                                   _place(jnp.asarray(alpha), mesh, ("voxel",)),
                                   fit_intercept=fit_intercept)
        coef[:, sl] = np.asarray(res)[:, : sl.stop - sl.start]
    return coef


def _select(cv_scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Best alpha index per voxel; exact ties go to the larger alpha (as himalaya).

    A non-finite CV score (an alpha so small that the LOO hat matrix is numerically singular)
    counts as -inf, so it is never picked; ``cv_scores`` is updated in place.
    """
    bad = ~np.isfinite(cv_scores)
    if bad.any():
        cv_scores[bad] = -np.inf
        hopeless = np.flatnonzero(bad.all(axis=0))
        if hopeless.size:
            raise ValueError(
                f"no alpha gives a finite cross-validation score for voxel(s) "
                f"{format_indices(hopeless)}; use larger alphas"
            )
    return np.argmax(cv_scores + 1e-10 * np.log(alphas)[:, None], axis=0)


def _dtype(*arrays: np.ndarray):
    """float64 only when JAX runs in 64-bit mode and an input is float64; else float32."""
    wide = jax.config.jax_enable_x64 and any(a.dtype == np.float64 for a in arrays)
    return np.float64 if wide else np.float32
