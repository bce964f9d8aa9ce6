"""Comparing RDMs: every method of :mod:`brainmodels.rsa.methods`, for all pairs of two stacks.

Definitions follow rsatoolbox (``rsatoolbox.rdm.compare``) number for number. Every method is
vectorised over all (model, reference) pairs: two stacks of RDMs give the matrix of all
comparisons in one call, which is what comparing hundreds of model layers with every ROI needs.

References
----------
Nili et al. (2014), "A toolbox for representational similarity analysis", PLoS Comput. Biol.
10(4): e1003553 (tau-a for models with tied predictions).
Diedrichsen et al. (2021), "Comparing representational geometries using whitened unbiased-
distance-matrix similarity", Neurons, Behavior, Data analysis and Theory 5(3) (eqs. 9-13).
Schütt et al. (2023), eLife 12:e82566 (rho-a, eq. 4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from brainmodels._types import ArrayLike
from brainmodels.data import provenance, unwrap
from brainmodels.rsa import _whitened
from brainmodels.rsa._backend import default_float
from brainmodels.rsa._utils import label_pairs_matrix, n_cond_from_pairs, rdm_vectors
from brainmodels.rsa.methods import COMPARISONS, plain

__all__ = ["compare_rdms", "COMPARE_METHODS", "rank_average"]


def _rank_single(v):
    """Average ranks (1-based, ties share their mean rank), like ``scipy.stats.rankdata``."""
    n = v.shape[0]
    order = jnp.argsort(v, stable=True)
    vs = v[order]
    pos = jnp.arange(n)
    new = jnp.concatenate([jnp.ones(1, bool), vs[1:] != vs[:-1]])
    end = jnp.concatenate([vs[1:] != vs[:-1], jnp.ones(1, bool)])
    first = lax.cummax(jnp.where(new, pos, 0))
    last = lax.cummin(jnp.where(end, pos, n), reverse=True)
    avg = (first + last).astype(v.dtype) / 2 + 1
    return jnp.zeros_like(v).at[order].set(avg)


_rank_rows = jax.jit(jax.vmap(_rank_single))


def rank_average(v: ArrayLike) -> np.ndarray:
    """Average ranks along the last axis (``scipy.stats.rankdata`` with ``method='average'``)."""
    arr = jnp.asarray(unwrap(v, name="v")[0])
    return np.asarray(_rank_rows(arr.reshape(-1, arr.shape[-1])).reshape(arr.shape))


def _method(name: str) -> Callable:
    def compare(a, b, sigma_sqrt):
        return plain(name, a, b, sigma_sqrt)

    compare.__name__ = compare.__qualname__ = name.replace("-", "_")
    return compare


#: method name -> ``(vectors_a, vectors_b, sqrt(sigma_k)) -> (m, r)`` similarity matrix: the
#: records of :data:`brainmodels.rsa.methods.COMPARISONS`, dispatched host or JAX
COMPARE_METHODS: dict[str, Callable] = {name: _method(name) for name in COMPARISONS}


def compare_rdms(
    A: ArrayLike,
    B: ArrayLike,
    method: str = "cosine",
    *,
    sigma_k: ArrayLike | None = None,
    layout: str | None = None,
) -> Any:
    """Similarity of RDMs under a comparison method, for all pairs of two stacks.

    Parameters
    ----------
    A, B : array-like or DataArray
        RDMs: square ``(..., K, K)`` (symmetric, zero diagonal; a DataArray with dims
        ``condition_a``/``condition_b``) or condensed upper triangles ``(..., K (K - 1) / 2)``
        in rsatoolbox's (row-major) order (a DataArray's last dim named ``pair``). Leading axes
        stack RDMs (models, layers, ROIs, subjects).
    method : str
        One of :data:`COMPARE_METHODS`: ``"cosine"``, ``"pearson"`` (alias ``"corr"``),
        ``"spearman"``, ``"tau-a"``, ``"tau-b"``, ``"rho-a"``, ``"cosine_cov"``,
        ``"corr_cov"``, ``"bures"`` (similarity), ``"bures_metric"`` (squared distance),
        ``"neg_riem_dist"``; see :mod:`brainmodels.rsa.methods`.
    sigma_k : array-like, shape (K,) or (K, K), optional
        For the whitened comparisons (``*_cov``; ``neg_riem_dist`` takes the (K,) form): the
        variances of the pattern estimates
        (rsatoolbox's entrywise whitening of the double-centred RDM), or their full
        covariance (the exact V^-1 weighting that rsatoolbox approximates by conjugate
        gradients; see the comment above ``_whiten_full``). Default: i.i.d. patterns.
    layout : {"square", "condensed"}, optional
        How to read unlabelled arrays. By default a DataArray's dims decide, and an array
        whose last two axes are equal is square; pass ``"condensed"`` for a stack of upper
        triangles that happens to be square-shaped. Square input must be symmetric with a zero
        diagonal (to ``1e-5`` of its largest entry), else a ValueError says which check failed.

    Returns
    -------
    float, ndarray or DataArray
        A float for two single RDMs; otherwise the matrix with A's leading axes followed by
        B's (a DataArray labelled with the inputs' leading dims, e.g. ``(layer, roi)``).

    Raises
    ------
    ValueError
        Unknown method; RDMs of different sizes; fewer than 3 conditions; NaN entries.

    Notes
    -----
    tau-a counts discordant pairs in O(n log n) per pair (n = K (K - 1) / 2): on CPU with a
    compiled bitset/Fenwick count over a thread pool (``brainmodels.rsa._host``, numba),
    on accelerators and inside a caller's ``jit`` with O(n^1.5) array operations
    (:mod:`brainmodels.rsa._kendall`). Both are exact, ties included. ``tau-b`` and
    ``neg_riem_dist`` run on the host only (scipy), as in rsatoolbox.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random(45), rng.random(45)
    >>> round(float(compare_rdms(a, a, "tau-a")), 6)
    1.0
    """
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {sorted(COMPARE_METHODS)}, got {method!r}")
    va, *a_info = rdm_vectors(A, name="A", layout=layout)
    vb, *b_info = rdm_vectors(B, name="B", layout=layout)
    if va.shape[1] != vb.shape[1]:
        ka, kb = n_cond_from_pairs(va.shape[1]), n_cond_from_pairs(vb.shape[1])
        raise ValueError(f"A and B must be RDMs of the same conditions: A (shape "
                         f"{np.shape(unwrap(A, name='A')[0])}) has {ka} conditions, B (shape "
                         f"{np.shape(unwrap(B, name='B')[0])}) has {kb}")
    dtype = default_float()
    k = n_cond_from_pairs(va.shape[1])
    full = None
    if sigma_k is None:
        sig = np.ones(k, dtype)
    else:
        sig = np.asarray(unwrap(sigma_k, name="sigma_k")[0], dtype=float)
        if not COMPARISONS[method].uses_sigma:
            raise ValueError(f"sigma_k applies to the whitened methods (corr_cov, cosine_cov) "
                             f"and neg_riem_dist, not {method!r}")
        if sig.shape == (k, k):
            full = _whitened.full_sigma(sig, method)
        elif sig.shape != (k,) or np.any(sig <= 0):
            raise ValueError(f"sigma_k must be {k} positive pattern variances or a ({k}, {k}) "
                             f"pattern covariance, got shape {sig.shape}")
        sig = np.sqrt(sig).astype(dtype) if full is None else sig
    # numpy in: the jitted methods transfer once, the host paths (ranks) need no round trip
    dtype = np.dtype(dtype)
    if full is not None:
        out = _whitened.cov_full(np.asarray(va, dtype), np.asarray(vb, dtype), *full,
                                 method == "corr_cov")
    else:
        out = plain(method, np.asarray(va, dtype), np.asarray(vb, dtype), sig)
    out = np.asarray(out)
    if not np.isfinite(out).all():
        raise ValueError(f"comparison {method!r} is undefined for a constant RDM (zero "
                         "variance); drop constant RDMs or use another method")
    labelled = a_info[1] is not None or b_info[1] is not None
    attrs = provenance("compare_rdms", params={"method": method},
                       units="similarity") if labelled else {}
    return label_pairs_matrix(out, a_info, b_info, attrs)
