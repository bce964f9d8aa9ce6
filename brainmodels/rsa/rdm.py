"""Representational dissimilarity matrices (RDMs) from activity patterns.

Every metric has the definition and scaling of rsatoolbox (``rsatoolbox.rdm.calc_rdm``) where
rsatoolbox has the same name: squared distances are divided by the number of channels, rows
are first averaged per condition (conditions sorted), crossnobis is leave-one-run-out.

References
----------
Kriegeskorte, Mur & Bandettini (2008), "Representational similarity analysis", Front. Syst.
Neurosci. 2:4.
Walther et al. (2016), "Reliability of dissimilarity measures for multi-voxel pattern
analysis", NeuroImage 137: 188-200 (crossnobis, eq. 6).
Schütt et al. (2023), "Statistical inference on representational geometries", eLife 12:e82566.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels._platform import cpu_backend
from brainmodels._types import ArrayLike, Float
from brainmodels.data import provenance, unwrap
from brainmodels.rsa._utils import RDM_DIMS

__all__ = ["rdm", "RDM_METRICS", "noise_precision"]


# ----------------------------------------------------------------------------- kernels


# Each kernel is written once for a module ``xp``: jax.numpy (jitted and vmapped over the
# leading batch axis) or numpy (small concrete inputs on CPU, see ``_host_rdm``: no XLA
# compilation, which costs 0.1-0.5 s on a first call where the RDM itself takes microseconds).


def _sq_from_kernel(k, xp=jnp):
    """diag(K)_i + diag(K)_j - K_ij - K_ji for (..., K, K) kernel matrices."""
    d = xp.diagonal(k, axis1=-2, axis2=-1)
    return d[..., :, None] + d[..., None, :] - k - xp.swapaxes(k, -1, -2)


def _euclidean(m, prec, xp=jnp):
    del prec
    return _sq_from_kernel(m @ xp.swapaxes(m, -1, -2), xp) / m.shape[-1]


def _mahalanobis(m, prec, xp=jnp):
    return _sq_from_kernel(m @ prec @ xp.swapaxes(m, -1, -2), xp) / m.shape[-1]


def _correlation(m, prec, xp=jnp):
    del prec
    c = m - xp.mean(m, axis=-1, keepdims=True)
    c = c / xp.sqrt(xp.sum(c * c, axis=-1, keepdims=True))
    return 1.0 - c @ xp.swapaxes(c, -1, -2)


def _cosine(m, prec, xp=jnp):
    del prec
    c = m / xp.sqrt(xp.sum(m * m, axis=-1, keepdims=True))
    return 1.0 - c @ xp.swapaxes(c, -1, -2)


def _poisson(m, prior, xp=jnp):
    lam, w = prior[0], prior[1]
    m = (m + lam * w) / (1.0 + w)
    return _sq_from_kernel(m @ xp.swapaxes(xp.log(m), -1, -2), xp) / m.shape[-1]


def _sum_runs(a):
    """Sum over the (few) runs of the leading axis as adds of slices: XLA's CPU reduction over
    a leading axis cost more than the whole crossnobis product (benchmarks/rsa.py)."""
    out = a[0]
    for r in range(1, a.shape[0]):
        out = out + a[r]
    return out


def _fold_means(sums, counts, xp=jnp):
    """Leave-one-run-out train means and per-run test means: (R, K, P) each."""
    tot_s, tot_c = _sum_runs(sums), xp.sum(counts, axis=0)
    train = (tot_s[None] - sums) * (1.0 / (tot_c[None] - counts))[..., None]
    test = sums * (1.0 / counts)[..., None]
    if xp is jnp:
        # materialise the means before the product: fused into it, XLA's CPU backend runs
        # the elementwise work inside a library call, which is slower
        return jax.lax.optimization_barrier((train, test))
    return train, test


def _crossnobis(sums, counts, prec, xp=jnp):
    train, test = _fold_means(sums, counts, xp)
    k = (train if prec is None else train @ prec) @ xp.swapaxes(test, -1, -2)  # (R, K, K)
    return xp.mean(_sq_from_kernel(k, xp), axis=0) / sums.shape[-1]


def _crossnobis_host(sums, counts, prec):
    """numpy crossnobis. With the same count in every run and condition (the usual design),
    the leave-one-run-out kernels sum in closed form: with T = sum_r S_r,
    sum_r (T - S_r) M S_r' = T M T' - sum_r S_r M S_r', and the last sum is ONE product of
    the runs laid side by side, (K, R P) x (R P, K): one multithreaded GEMM instead of R
    small ones and their temporaries."""
    r, k, p = sums.shape
    c = counts.flat[0]
    if not np.all(counts == c):
        return _crossnobis(sums, counts, prec, xp=np)
    tot = _sum_runs(sums)
    side = sums.transpose(1, 0, 2).reshape(k, r * p)
    if prec is None:
        cross = tot @ tot.T - side @ side.T
    else:
        weighted = (sums @ prec).transpose(1, 0, 2).reshape(k, r * p)
        cross = tot @ prec @ tot.T - side @ weighted.T
    return _sq_from_kernel(cross / ((r - 1) * c * c * r), np) / p


def _crossnobis_run_noise(sums, counts, precs, xp=jnp):
    means = sums / counts[..., None]
    covs = xp.linalg.inv(precs)
    i, j = np.triu_indices(sums.shape[0], 1)
    pair_prec = xp.linalg.inv((covs[i] + covs[j]) / 2)
    k = xp.einsum("akp,apq,alq->akl", means[i], pair_prec, means[j])
    return xp.mean(_sq_from_kernel(k, xp), axis=0) / sums.shape[-1]


def _poisson_cv(sums, counts, prior, xp=jnp):
    lam, w = prior[0], prior[1]
    train, test = _fold_means(sums, counts, xp)
    train, test = (train + lam * w) / (1.0 + w), (test + lam * w) / (1.0 + w)
    k = train @ xp.swapaxes(xp.log(test), -1, -2)
    return xp.mean(_sq_from_kernel(k, xp), axis=0) / sums.shape[-1]


def _batched(fn: Callable) -> Callable:
    """jit(vmap(fn)) over a leading batch axis of the data; the second argument is shared."""
    return jax.jit(jax.vmap(fn, in_axes=(0, None)))


#: metric name -> (kernel on condition means or run sums, needs runs)
RDM_METRICS: dict[str, tuple[Callable, bool]] = {
    "euclidean": (_batched(_euclidean), False),
    "correlation": (_batched(_correlation), False),
    "cosine": (_batched(_cosine), False),
    "mahalanobis": (_batched(_mahalanobis), False),
    "poisson": (_batched(_poisson), False),
    "crossnobis": (None, True),  # dispatched on the noise layout below
    "poisson_cv": (None, True),
}

#: the same kernels in numpy (the batch axis rides along as a leading axis)
_HOST_KERNELS: dict[str, Callable] = {
    "euclidean": partial(_euclidean, xp=np), "correlation": partial(_correlation, xp=np),
    "cosine": partial(_cosine, xp=np), "mahalanobis": partial(_mahalanobis, xp=np),
    "poisson": partial(_poisson, xp=np),
}

_CV_KERNELS = {
    ("crossnobis", 2): jax.jit(jax.vmap(_crossnobis, in_axes=(0, None, None))),
    ("crossnobis", 0): jax.jit(jax.vmap(lambda s, c, p: _crossnobis(s, c, None),
                                        in_axes=(0, None, None))),
    ("crossnobis", 3): jax.jit(jax.vmap(_crossnobis_run_noise, in_axes=(0, None, None))),
    ("poisson_cv", 1): jax.jit(jax.vmap(_poisson_cv, in_axes=(0, None, None))),
}

_HOST_CV_KERNELS = {
    ("crossnobis", 2): _crossnobis_host,
    ("crossnobis", 0): lambda s, c, p: _crossnobis_host(s, c, None),
    ("crossnobis", 3): partial(_crossnobis_run_noise, xp=np),
    ("poisson_cv", 1): partial(_poisson_cv, xp=np),
}

#: inputs up to this many values (batch x observation x channel) run in numpy on CPU, in
#: float64 (a copy of at most 128 MB); they are as fast as the jitted kernels at every size
#: measured (2e4-1e7 values) and pay no compilation; larger inputs run jitted
HOST_MAX_VALUES = 16_000_000


# ----------------------------------------------------------------------------- input handling


def _labels_from(template: xr.DataArray | None, given, coord_names: tuple[str, ...], obs_dim):
    if given is not None:
        return np.asarray(unwrap(given)[0])
    if template is None:
        return None
    for c in coord_names:
        if c in template.coords and template.coords[c].dims == (obs_dim,):
            return np.asarray(template.coords[c].values)
    return None


def _group_index(labels: np.ndarray, n_obs: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    if labels.shape != (n_obs,):
        raise ValueError(f"{name} must have one label per observation ({n_obs}), got shape "
                         f"{labels.shape}")
    uniq, idx = np.unique(labels, return_inverse=True)
    return uniq, idx.reshape(-1)


def _check_prec(noise, n_channel: int, allow_runs: int | None):
    prec = np.asarray(unwrap(noise, name="noise")[0], dtype=np.float64)
    ok2 = prec.shape == (n_channel, n_channel)
    ok3 = allow_runs is not None and prec.shape == (allow_runs, n_channel, n_channel)
    if not (ok2 or ok3):
        expect = f"({n_channel}, {n_channel})"
        if allow_runs is not None:
            expect += f" or one per run ({allow_runs}, {n_channel}, {n_channel})"
        raise ValueError(f"noise must be a precision matrix of shape {expect}, got {prec.shape}")
    if not np.all(np.isfinite(prec)):
        raise ValueError("noise contains NaN/infinite entries")
    return prec


def _run_sums(x, cond_idx, run_idx, n_cond, runs_u, conds_u):
    n_runs = len(runs_u)
    if n_runs < 2:
        raise ValueError(f"runs must contain at least 2 distinct runs for cross-validation, got "
                         f"{n_runs}")
    counts = np.zeros((n_runs, n_cond))
    np.add.at(counts, (run_idx, cond_idx), 1.0)
    missing = np.argwhere(counts == 0)
    if missing.size:
        r, k = missing[0]
        raise ValueError(
            f"run {runs_u[r]} has no observation of condition {conds_u[k]} "
            f"({len(missing)} run/condition cells are empty); every run needs every condition "
            "for cross-validated distances: drop that condition or that run"
        )
    seg = run_idx * n_cond + cond_idx
    if isinstance(x, np.ndarray):  # host: sorted rows (one per cell), else a one-hot product
        if np.all(counts == 1):
            return x[:, np.argsort(seg, kind="stable")].reshape(x.shape[0], n_runs, n_cond,
                                                                 -1), counts
        return _host_segment_sums(x, seg, n_runs * n_cond).reshape(x.shape[0], n_runs,
                                                                     n_cond, -1), counts
    if np.all(counts == 1):  # one pattern per run and condition (the usual design): reorder
        order = np.argsort(seg, kind="stable")
        rows = x if np.array_equal(order, np.arange(order.size)) else _take_rows(
            x, jnp.asarray(order))  # (already sorted by run, then condition: no copy)
        sums = jnp.asarray(rows).reshape(x.shape[0], n_runs, n_cond, -1)
    else:
        sums = _segment_sums(x, jnp.asarray(seg), n_runs * n_cond).reshape(
            x.shape[0], n_runs, n_cond, -1)
    return sums, counts


@jax.jit
def _take_rows(x, order):
    return jnp.take(x, order, axis=1)


def _host_segment_sums(x: np.ndarray, seg: np.ndarray, n_seg: int,
                       weight: np.ndarray | None = None) -> np.ndarray:
    """:func:`_segment_sums` on the host, as one product with a (segment, observation)
    indicator (each row weighted by ``weight``, if given)."""
    onehot = np.zeros((n_seg, seg.size))
    onehot[seg, np.arange(seg.size)] = 1.0 if weight is None else weight
    return onehot @ x


@partial(jax.jit, static_argnums=2)
def _segment_sums(x, seg, n_seg: int):
    """Row sums per segment, batched: (batch, obs, channel) -> (batch, segment, channel)."""
    return jax.vmap(lambda v: jax.ops.segment_sum(v, seg, num_segments=n_seg))(x)


# ----------------------------------------------------------------------------- public API


def rdm(
    X: Float[ArrayLike, "*batch observation channel"],
    metric: str = "euclidean",
    *,
    conditions: ArrayLike | None = None,
    runs: ArrayLike | None = None,
    noise: ArrayLike | None = None,
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
) -> Any:
    """Representational dissimilarity matrix of activity patterns.

    Parameters
    ----------
    X : array-like or DataArray, shape (..., observation, channel)
        Activity patterns; leading axes (layers, models, subjects) are batched with ``vmap``.
        A DataArray's last two dims are (observation, channel).
    metric : str
        One of :data:`RDM_METRICS`: ``"euclidean"`` (squared distance / channels),
        ``"correlation"`` (1 - Pearson r), ``"cosine"`` (1 - cosine similarity),
        ``"mahalanobis"`` (squared, with ``noise`` precision, / channels), ``"crossnobis"``
        (leave-one-run-out cross-validated Mahalanobis, unbiased), ``"poisson"`` (symmetrised
        KL divergence of Poisson rates, / channels) and ``"poisson_cv"``.
    conditions : array-like, shape (observation,), optional
        Condition label of each row; rows are averaged per condition and the RDM's conditions
        are the sorted unique labels. Default: coord ``stimulus_id``/``stimulus``/``condition``
        on the observation dim of a DataArray, else one condition per row.
    runs : array-like, shape (observation,), optional
        Run (cross-validation fold) of each row, required by ``crossnobis``/``poisson_cv``.
        Default: coord ``run`` on the observation dim of a DataArray.
    noise : array-like, shape (channel, channel) or (run, channel, channel), optional
        Noise precision for ``mahalanobis``/``crossnobis`` (see :func:`noise_precision`);
        identity if omitted. With one precision per run, crossnobis averages all run pairs
        with the precision of the pair's mean, as rsatoolbox does.
    prior_lambda, prior_weight : float
        Prior rate and weight that regularise the Poisson metrics (rsatoolbox's defaults).

    Returns
    -------
    ndarray or DataArray, shape (..., condition, condition)
        Square symmetric RDM(s) with a zero diagonal; a DataArray (dims ``condition_a``,
        ``condition_b`` labelled with the conditions, provenance attrs) for DataArray input.

    Raises
    ------
    ValueError
        Unknown metric; fewer than 3 conditions; NaN input; a run missing a condition;
        a precision of the wrong shape; negative data for the Poisson metrics.

    Notes
    -----
    ``poisson_cv`` averages the estimate over all leave-one-run-out folds; rsatoolbox 0.3.2
    keeps only the last fold's estimate (its loop overwrites the result).

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((10, 50))
    >>> rdm(X, "correlation").shape
    (10, 10)
    """
    if metric not in RDM_METRICS:
        raise ValueError(f"metric must be one of {sorted(RDM_METRICS)}, got {metric!r}")
    values, template = unwrap(X, name="X")
    if values.ndim < 2:
        raise ValueError(f"X must have shape (..., observation, channel), got {values.shape}")
    if values.dtype.kind not in "fiu":
        raise TypeError(f"X must hold real numbers, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"X contains {int(np.sum(~np.isfinite(values)))} NaN/infinite values; "
                         "drop or impute them first")
    n_obs, n_channel = values.shape[-2:]
    obs_dim = template.dims[-2] if template is not None else None
    lead = values.shape[:-2]
    # the output dtype of the JAX path: float32 unless jax_enable_x64 and float64 input
    dtype = jax.dtypes.canonicalize_dtype(values.dtype if values.dtype.kind == "f"
                                          else np.float32)
    if values.size <= HOST_MAX_VALUES and cpu_backend():  # numpy, float64, no compilation
        x = values.reshape(-1, n_obs, n_channel).astype(np.float64)
    else:
        x = jnp.asarray(values.reshape(-1, n_obs, n_channel), dtype)
    cond = _labels_from(template, conditions, ("stimulus_id", "stimulus", "condition"), obs_dim)
    if cond is None:
        cond = np.arange(n_obs)
    conds_u, cond_idx = _group_index(cond, n_obs, "conditions")
    n_cond = len(conds_u)
    if n_cond < 3:
        raise ValueError(f"X has {n_cond} conditions; an RDM needs at least 3")
    if metric.startswith("poisson") and np.any(values < 0):
        raise ValueError(f"metric {metric!r} needs non-negative data (rates/counts), X has "
                         f"negative values (min {values.min():.3g})")
    if RDM_METRICS[metric][1]:  # cross-validated over runs
        out = _cv_rdm(metric, x, cond, cond_idx, conds_u, template, runs, obs_dim, noise,
                      (prior_lambda, prior_weight))
    else:
        counts = np.bincount(cond_idx, minlength=n_cond).astype(float)
        host = isinstance(x, np.ndarray)
        xp = np if host else jnp
        if host:
            means = _host_segment_sums(x, cond_idx, n_cond, 1.0 / counts[cond_idx])
        else:
            means = _segment_sums(x, jnp.asarray(cond_idx), n_cond) \
                / jnp.asarray(counts, x.dtype)[None, :, None]
        if metric == "mahalanobis" and noise is not None:
            arg = xp.asarray(_check_prec(noise, n_channel, None), x.dtype)
        elif metric == "poisson":
            arg = xp.asarray([prior_lambda, prior_weight], x.dtype)
        else:
            arg = xp.zeros((), x.dtype)
        name = "euclidean" if metric == "mahalanobis" and noise is None else metric
        kernel = _HOST_KERNELS[name] if host else RDM_METRICS[name][0]
        with np.errstate(divide="ignore", invalid="ignore"):  # constant patterns: below
            out = kernel(means, arg)
    out = np.asarray(out, dtype).reshape(*lead, n_cond, n_cond)
    if not np.all(np.isfinite(out)):
        # A constant pattern makes its whole row and column NaN, so the rows cannot tell which
        # condition it was; its own distance d(c, c) is NaN exactly when the pattern is.
        own = ~np.isfinite(np.diagonal(out, axis1=-2, axis2=-1)).reshape(-1, n_cond)
        bad = np.flatnonzero(own.any(axis=0))
        if bad.size == 0:  # pragma: no cover - every kernel's diagonal sees the pattern
            bad = np.unique(np.nonzero(~np.isfinite(out))[-1])
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise ValueError(
            f"metric {metric!r} is undefined for condition(s) {conds_u[bad][:10].tolist()}"
            f"{more}: their patterns are constant (zero variance or zero norm); use "
            "'euclidean' or drop them"
        )
    out = (out + np.swapaxes(out, -1, -2)) / 2  # exact symmetry
    idx = np.arange(n_cond)
    out[..., idx, idx] = 0.0
    if template is None:
        return out
    attrs = provenance("rdm", params={"metric": metric}, units="dissimilarity",
                       n_channel=int(n_channel))
    coords = {d: template.coords[d].values for d in template.dims[:-2] if d in template.coords}
    coords.update({RDM_DIMS[0]: conds_u, RDM_DIMS[1]: conds_u})
    return xr.DataArray(out, dims=(*template.dims[:-2], *RDM_DIMS), coords=coords,
                        name=f"rdm_{metric}", attrs=attrs)


def _cv_rdm(metric, x, cond, cond_idx, conds_u, template, runs, obs_dim, noise, prior):
    run_labels = _labels_from(template, runs, ("run",), obs_dim)
    if run_labels is None:
        raise ValueError(f"metric {metric!r} is cross-validated over runs: pass runs= (one run "
                         "label per observation) or a DataArray with a 'run' coord")
    runs_u, run_idx = _group_index(run_labels, x.shape[-2], "runs")
    sums, counts = _run_sums(x, cond_idx, run_idx, len(conds_u), runs_u, conds_u)
    n_channel = x.shape[-1]
    if metric == "crossnobis":
        if noise is None:  # identity precision: skip the (channel x channel) product
            arg = np.zeros(())
        else:
            arg = _check_prec(noise, n_channel, len(runs_u))
        which = ("crossnobis", arg.ndim)
    else:
        arg, which = np.asarray(prior, np.float64), ("poisson_cv", 1)
    if isinstance(x, np.ndarray):  # host: the batch (a few RDMs) one after the other
        fn = _HOST_CV_KERNELS[which]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.stack([fn(s, counts, arg) for s in sums])
    return _CV_KERNELS[which](sums, jnp.asarray(counts, x.dtype), jnp.asarray(arg, x.dtype))


def noise_precision(
    residuals: Float[ArrayLike, "observation channel"],
    *,
    shrinkage: str = "diag",
    dof: int | None = None,
) -> np.ndarray:
    """Noise precision matrix from residuals with Ledoit-Wolf-type shrinkage.

    Parameters
    ----------
    residuals : array-like, shape (observation, channel)
        Residuals of a first-level model (e.g. single-trial betas minus condition means).
    shrinkage : {"diag", "eye"}
        Shrink the sample covariance towards its diagonal (Schäfer & Strimmer 2005, target D)
        or towards a scaled identity (Ledoit & Wolf 2004), with the analytic optimal weight.
    dof : int, optional
        Degrees of freedom of the covariance estimate (default: observations - 1).

    Returns
    -------
    ndarray, shape (channel, channel)
        The inverse of the shrunk covariance; pass it as ``noise=`` to :func:`rdm`.

    References
    ----------
    Ledoit & Wolf (2004), J. Multivar. Anal. 88: 365-411; Schäfer & Strimmer (2005), Stat.
    Appl. Genet. Mol. Biol. 4(1):32 (target D, eq. in Table 1).
    """
    r = np.asarray(unwrap(residuals, name="residuals")[0], dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"residuals must have shape (observation >= 2, channel), got {r.shape}")
    if shrinkage not in _SHRINKAGE:
        raise ValueError(f"shrinkage must be one of {sorted(_SHRINKAGE)}, got {shrinkage!r}")
    r = r - r.mean(axis=0, keepdims=True)
    dof = r.shape[0] - 1 if dof is None else int(dof)
    if np.any(np.all(r == 0, axis=0)):
        raise ValueError("residuals have channels with zero variance; drop them first")
    return np.linalg.inv(_SHRINKAGE[shrinkage](r, dof))


def _shrink_eye(r, dof):
    """Ledoit & Wolf (2004) shrinkage towards m I (their Lemma 3.2 estimators m, d^2, b^2)."""
    n, p = r.shape
    s = r.T @ r / n
    b2 = np.sum(np.einsum("ni,nj->ij", r**2, r**2) / n - s * s) / n
    m = np.trace(s) / p
    d2 = np.sum((s - m * np.eye(p)) ** 2)
    b2 = min(b2, d2)
    shrunk = (b2 / d2) * m * np.eye(p) + ((d2 - b2) / d2) * s
    return shrunk * n / dof


def _shrink_diag(r, dof):
    """Schäfer & Strimmer (2005) shrinkage of the correlations towards 0 (target D)."""
    n, _ = r.shape
    s = r.T @ r / dof
    var = np.diag(s)
    std = np.sqrt(var)
    s_mean = (r.T @ r) / np.outer(std, std) / (n - 1)
    s2_mean = np.einsum("ni,nj->ij", r**2, r**2) / np.outer(var, var) / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    off = ~np.eye(len(std), dtype=bool)
    lam = float(np.clip(np.sum(var_hat[off]) / np.sum(s_mean[off] ** 2), 0.0, 1.0))
    return s * np.where(off, 1.0 - lam, 1.0)


_SHRINKAGE = {"eye": _shrink_eye, "diag": _shrink_diag}
