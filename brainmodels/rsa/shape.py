"""Generalized shape metrics between representations (deterministic).

The distance between two representations X, Y of the same stimuli is the distance left after
(partially) whitening each and aligning Y to X by the best transformation of a group (rotations
and reflections, or permutations). Angular and Euclidean versions are metrics: symmetric,
zero for a transformed copy, and they satisfy the triangle inequality.

References
----------
Williams, Kunz, Kornblith & Linderman (2021), "Generalized shape metrics on neural
representations", NeurIPS (eq. 3: partial whitening; eqs. 4-5: Procrustes alignment and the
angular / Euclidean scores; section 3.2: alpha = 0 gives a CCA-based metric).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from brainmodels._types import ArrayLike
from brainmodels.data import provenance, unwrap

__all__ = ["shape_distance", "pairwise_distances", "SHAPE_SCORES", "SHAPE_GROUPS"]

_EIG_TOL = 1e-10


def _whiten(x, alpha):
    """Center columns; Z = V diag(alpha + (1 - alpha) lambda^-1/2) V^T from eig(X^T X)."""
    x = x - jnp.mean(x, axis=0, keepdims=True)
    lam, v = jnp.linalg.eigh(x.T @ x)
    lam = jnp.maximum(lam, _EIG_TOL * jnp.maximum(jnp.max(lam), 1.0))
    d = alpha + (1.0 - alpha) / jnp.sqrt(lam)
    return x @ ((v * d[None, :]) @ v.T)


def _angular(x, y, nuc):
    cos = nuc / (jnp.linalg.norm(x) * jnp.linalg.norm(y))
    return jnp.arccos(jnp.clip(cos, -1.0, 1.0))


def _euclidean(x, y, nuc):
    sq = jnp.sum(x * x) + jnp.sum(y * y) - 2 * nuc
    return jnp.sqrt(jnp.maximum(sq, 0.0) / x.shape[0])


#: score name -> (whitened X, whitened Y, max_T <X, Y T>_F) -> distance
SHAPE_SCORES = {"angular": _angular, "euclidean": _euclidean}


def _orthogonal_align(xw, yw):
    """T orthogonal maximising <X, Y T>_F: T = V U^T from X^T Y = U S V^T; returns (T, sum S)."""
    u, s, vt = jnp.linalg.svd(xw.T @ yw)
    return vt.T @ u.T, jnp.sum(s)


def _orth_distance(xw, yw, score: str):
    t, nuc = _orthogonal_align(xw, yw)
    return SHAPE_SCORES[score](xw, yw, nuc), t


_orth_jit = jax.jit(_orth_distance, static_argnums=2)
_whiten_jit = jax.jit(jax.vmap(_whiten, in_axes=(0, None)))


def _perm_distance(xw, yw, score: str):
    xw, yw = np.asarray(xw), np.asarray(yw)
    rows, cols = linear_sum_assignment(-(xw.T @ yw))
    t = np.zeros((xw.shape[1], xw.shape[1]))
    t[cols, rows] = 1.0  # Y @ t puts Y's unit cols[i] in X's slot rows[i]
    nuc = float(np.sum(xw * (yw @ t)))
    return SHAPE_SCORES[score](jnp.asarray(xw), jnp.asarray(yw), nuc), t


#: group name -> (whitened X, whitened Y, score) -> (distance, alignment T)
SHAPE_GROUPS = {"orthogonal": _orth_jit, "permutation": _perm_distance}


def _check_rep(x, name: str) -> np.ndarray:
    values = np.asarray(unwrap(x, name=name)[0])
    if values.ndim != 2:
        raise ValueError(f"{name} must have shape (stimulus, unit), got {values.shape}")
    if values.shape[0] < 3:
        raise ValueError(f"{name} has {values.shape[0]} stimuli; shape metrics need at least 3")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN/infinite values")
    if np.allclose(values, values.mean(axis=0)):
        raise ValueError(f"{name} is constant across stimuli; its shape is undefined")
    return values


def _check_args(alpha, score, group):
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (1 = Procrustes, 0 = CCA), got {alpha}")
    if score not in SHAPE_SCORES:
        raise ValueError(f"score must be one of {sorted(SHAPE_SCORES)}, got {score!r}")
    if group not in SHAPE_GROUPS:
        raise ValueError(f"group must be one of {sorted(SHAPE_GROUPS)}, got {group!r}")


def _prepare(reps: list[np.ndarray], alpha: float):
    """Pad to a common width and whiten each representation once: (network, stimulus, unit)."""
    width = max(r.shape[1] for r in reps)
    stack = np.stack([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in reps])
    dtype = jnp.result_type(float)
    return _whiten_jit(jnp.asarray(stack, dtype), jnp.asarray(alpha, dtype))


def shape_distance(
    X: ArrayLike,
    Y: ArrayLike,
    alpha: float = 1.0,
    score: str = "angular",
    *,
    group: str = "orthogonal",
    return_alignment: bool = False,
):
    """Generalized shape distance between two representations (Williams et al. 2021).

    Parameters
    ----------
    X, Y : array-like, shape (stimulus, unit)
        Representations of the same stimuli (unit counts may differ: the narrower one is
        zero-padded). Columns are centred.
    alpha : float in [0, 1]
        Partial whitening: 1 = no whitening (Procrustes shape metric), 0 = full whitening
        (a CCA-based metric: the angular distance is arccos of the mean canonical
        correlation).
    score : {"angular", "euclidean"}
        ``arccos(max_T <X, Y T> / (|X| |Y|))`` or ``sqrt(min_T |X - Y T|^2 / stimuli)``.
    group : {"orthogonal", "permutation"}
        Alignments allowed: rotations/reflections, or unit permutations.
    return_alignment : bool
        Also return T, the (unit, unit) matrix with whitened ``Y @ T`` aligned to whitened X.

    Returns
    -------
    float or (float, ndarray)

    Raises
    ------
    ValueError
        Different numbers of stimuli, fewer than 3 stimuli, NaNs, constant input, alpha outside
        [0, 1], unknown score or group.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10)); Q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    >>> shape_distance(X, X @ Q) < 1e-3
    True
    """
    _check_args(alpha, score, group)
    x, y = _check_rep(X, "X"), _check_rep(Y, "Y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"X and Y must describe the same stimuli: X has {x.shape[0]} rows, Y "
                         f"has {y.shape[0]}")
    w = _prepare([x, y], alpha)
    dist, t = SHAPE_GROUPS[group](w[0], w[1], score)
    dist = float(dist)
    return (dist, np.asarray(t)) if return_alignment else dist


def _pairwise_orth(w, score: str):
    n = w.shape[0]
    i, j = np.triu_indices(n, 1)
    d, _ = jax.vmap(lambda a, b: _orth_distance(a, b, score))(w[i], w[j])
    out = jnp.zeros((n, n), w.dtype).at[i, j].set(d)
    return out + out.T


_pairwise_orth_jit = jax.jit(_pairwise_orth, static_argnums=1)


def pairwise_distances(
    representations: Any,
    metric: str = "angular",
    *,
    alpha: float = 1.0,
    group: str = "orthogonal",
    names: list[str] | None = None,
    **stochastic_kwargs,
) -> xr.DataArray:
    """All pairwise shape distances among many networks, whitening each network once.

    Parameters
    ----------
    representations : sequence or mapping of array-like, or array (network, stimulus, unit)
        One representation per network. For ``metric="gaussian"`` each item is a
        ``(means, covariances)`` pair or samples (stimulus, repeat, unit); for ``"energy"``
        samples. A mapping's keys name the networks.
    metric : {"angular", "euclidean", "gaussian", "energy"}
        Deterministic shape metric score, or a stochastic metric
        (:func:`brainmodels.rsa.stochastic_shape_distance`).
    alpha : float
        Partial whitening for the deterministic metrics (0..1) or the mean/covariance weight
        of the Gaussian stochastic metric (0..2).
    group : {"orthogonal", "permutation"}
        Alignment group (deterministic metrics).
    names : list of str, optional
        Network names (default: mapping keys or "0", "1", ...).
    **stochastic_kwargs
        Passed to :func:`~brainmodels.rsa.stochastic_shape_distance` (``key``, ``n_iter``...).

    Returns
    -------
    DataArray, dims (network_a, network_b)
        Symmetric distance matrix with a zero diagonal and provenance attrs.
    """
    if isinstance(representations, dict):
        names = names or [str(k) for k in representations]
        reps = list(representations.values())
    else:
        reps = list(representations)
    names = names or [str(i) for i in range(len(reps))]
    if len(reps) < 2 or len(names) != len(reps):
        raise ValueError(f"pairwise_distances needs >= 2 representations and one name each, got "
                         f"{len(reps)} representations and {len(names)} names")
    if metric in ("gaussian", "energy"):
        from brainmodels.rsa.stochastic import _pairwise_stochastic

        out = _pairwise_stochastic(reps, metric, alpha, **stochastic_kwargs)
    elif metric in SHAPE_SCORES:
        _check_args(alpha, metric, group)
        arrays = [_check_rep(r, f"representations[{k}]") for k, r in enumerate(reps)]
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError("all representations must have the same number of stimuli, got "
                             f"{sorted({a.shape[0] for a in arrays})}")
        w = _prepare(arrays, alpha)
        if group == "orthogonal":
            out = np.asarray(_pairwise_orth_jit(w, metric))
        else:
            out = np.zeros((len(reps), len(reps)))
            for a in range(len(reps)):
                for b in range(a + 1, len(reps)):
                    out[a, b] = out[b, a] = float(_perm_distance(w[a], w[b], metric)[0])
    else:
        raise ValueError(f"metric must be one of {sorted([*SHAPE_SCORES, 'gaussian', 'energy'])}"
                         f", got {metric!r}")
    attrs = provenance("pairwise_distances", params={"metric": metric, "alpha": alpha,
                                                     "group": group}, units="distance")
    return xr.DataArray(np.asarray(out), dims=("network_a", "network_b"),
                        coords={"network_a": names, "network_b": names},
                        name=f"shape_distance_{metric}", attrs=attrs)
