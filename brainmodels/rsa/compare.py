"""Comparing RDMs: cosine, Pearson, Spearman, Kendall tau-a, rho-a and the whitened comparisons.

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

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax import lax

from brainmodels._types import ArrayLike
from brainmodels.data import provenance, unwrap
from brainmodels.rsa._utils import label_pairs_matrix, n_cond_from_pairs, rdm_vectors

__all__ = ["compare_rdms", "COMPARE_METHODS", "rank_average"]


# ----------------------------------------------------------------------------- building blocks


def _cosine_matrix(a, b):
    na = jnp.sqrt(jnp.sum(a * a, axis=1, keepdims=True))
    nb = jnp.sqrt(jnp.sum(b * b, axis=1, keepdims=True))
    return (a / na) @ (b / nb).T


def _center(v):
    return v - jnp.mean(v, axis=-1, keepdims=True)


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


@jax.jit
def _cosine(a, b):
    return _cosine_matrix(a, b)


@jax.jit
def _pearson(a, b):
    return _cosine_matrix(_center(a), _center(b))


def _rank_rows_host(v: np.ndarray) -> np.ndarray:
    """Average ranks per row on the host: numpy's (SIMD) argsort, the inverse permutation as
    ranks, and scipy's tie averaging only for rows that have ties."""
    n = v.shape[1]
    order = np.argsort(v, axis=1)
    out = np.empty(v.shape, np.float64)
    np.put_along_axis(out, order, np.broadcast_to(np.arange(1.0, n + 1), v.shape), axis=1)
    sv = np.take_along_axis(v, order, axis=1)
    tied = np.flatnonzero(np.any(sv[:, 1:] == sv[:, :-1], axis=1))
    if tied.size:
        out[tied] = scipy.stats.rankdata(v[tied], axis=1)
    return out


_WORKERS = min(4, os.cpu_count() or 1)


@functools.cache
def _host_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WORKERS, thread_name_prefix="brainmodels-rsa")


def _host_map(fn, v: np.ndarray) -> np.ndarray:
    """Apply a row-wise numpy function in row chunks on a small thread pool (numpy's sorts
    release the GIL); one chunk for small inputs."""
    if _WORKERS == 1 or v.size < 100_000 or v.shape[0] < 2:
        return fn(v)
    chunks = np.array_split(v, min(4 * _WORKERS, v.shape[0]))  # small chunks stay in cache
    return np.concatenate(list(_host_pool().map(fn, chunks)))


def _ranks_any(v):
    """Average ranks per row: numpy for concrete arrays (XLA's CPU sort is slow), JAX inside
    a caller's jit."""
    if isinstance(v, jax.core.Tracer):
        return _rank_rows(v)
    return jnp.asarray(_host_map(_rank_rows_host, np.asarray(v)), v.dtype)


def _ranks_pair(a, b):
    """Average ranks of both stacks (one host pass over both when they are concrete)."""
    if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
        return _ranks_any(a), _ranks_any(b)
    r = _host_map(_rank_rows_host, np.concatenate([np.asarray(a), np.asarray(b)]))
    return r[: a.shape[0]].astype(a.dtype, copy=False), r[a.shape[0]:].astype(b.dtype, copy=False)


def _spearman(a, b):
    return _pearson(*_ranks_pair(a, b))


@jax.jit
def _rho_a_ranked(ra, rb):
    n = ra.shape[1]
    return _center(ra) @ _center(rb).T * (12.0 / (n**3 - n))


def _rho_a(a, b):
    return _rho_a_ranked(*_ranks_pair(a, b))


def _double_centered(v, sigma_sqrt):
    """-D/2 double-centred (the second moment of the centred patterns), whitened by the
    pattern variances, as the vector [sqrt(2) * off-diagonal entries, diagonal entries] whose
    inner products are Frobenius inner products (Diedrichsen et al. 2021, eqs. 9-11)."""
    k = n_cond_from_pairs(v.shape[-1])
    i, j = np.triu_indices(k, 1)
    # row sums of the square RDMs: each pair adds to the rows of both its conditions
    vt = v.T
    row = (jax.ops.segment_sum(vt, i, k, indices_are_sorted=True)
           + jax.ops.segment_sum(vt, j, k)).T / k
    tot = jnp.mean(row, axis=1, keepdims=True)
    off = ((v - row[:, i] - row[:, j] + tot) * (-0.5 * np.sqrt(2.0))
           / (sigma_sqrt[i] * sigma_sqrt[j])[None, :])
    diag = -0.5 * (tot - 2 * row) / (sigma_sqrt**2)[None, :]
    return jnp.concatenate([off, diag], axis=1)


@jax.jit
def _cosine_cov(a, b, sigma_sqrt):
    return _cosine_matrix(_double_centered(a, sigma_sqrt), _double_centered(b, sigma_sqrt))


@jax.jit
def _corr_cov(a, b, sigma_sqrt):
    return _cosine_matrix(_double_centered(_center(a), sigma_sqrt),
                          _double_centered(_center(b), sigma_sqrt))


# ----------------------------------------------------------------------------- Kendall tau-a
#
# tau-a = (concordant - discordant) / (n (n - 1) / 2). With ties, a tied pair contributes 0.
# Breaking the ties of a vector once by index order and once by reverse index order gives two
# permutations whose sign matrices agree on untied pairs and are opposite on tied pairs, so the
# average over the (up to) four tie-breakings of the permutation tau equals tau-a exactly.
# The permutation tau is 1 - 4 inv(pi) / (n (n - 1)) with pi the ordinal ranks of B taken in
# the order of A; inv(pi) is counted in O(n^1.5) with array operations only (no per-pair sort):
# blocks of S positions x buckets of S values; pairs in the same position block and pairs in
# the same value bucket are compared directly, all other pairs are counted from the 2D
# histogram of (position block, value bucket).

def _tau_block(n: int) -> int:
    """Block size: 48 for RDMs up to ~180 conditions (measured 8-10 % faster than 32 and 64 at
    100 conditions: in-block compares against the t^3 grid matmuls), ~sqrt(n) beyond."""
    if n <= 16384:
        return 48
    return int(2 ** np.round(np.log2(np.sqrt(n) / 2)))


def _ordinal(v, reverse_ties: bool):
    n = v.shape[0]
    idx = jnp.arange(n)
    order = jnp.lexsort((-idx, v)) if reverse_ties else jnp.argsort(v, stable=True)
    order = order.astype(jnp.int32)
    ranks = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    return order, ranks


def _block_counts(g):
    """Per-block counts of a (blocks, B, B) boolean array (int32). Rows of B <= 128 entries
    are summed in int8 first: XLA vectorises the narrow sums ~2.5x faster on CPU."""
    if g.shape[-1] <= 128:
        return jnp.sum(jnp.sum(g.astype(jnp.int8), axis=2, dtype=jnp.int8), axis=1,
                       dtype=jnp.int32)
    return jnp.sum(g, axis=(1, 2), dtype=jnp.int32)


def _inversions(pi, rho, block: int, dtype):
    """Number of pairs k < l with pi[k] > pi[l]; rho is the inverse permutation."""
    n = pi.shape[0]
    t = -(-n // block)
    npad = t * block
    tail = jnp.arange(n, npad, dtype=jnp.int32)
    p = jnp.concatenate([pi, tail]).reshape(t, block)
    r = jnp.concatenate([rho, tail]).reshape(t, block)
    upper = jnp.asarray(np.triu(np.ones((block, block), bool), 1))[None]
    # per-block partial counts, summed in `dtype` (no int32 overflow for big RDMs)
    within = _block_counts(upper & (p[:, :, None] > p[:, None, :]))
    rblk = r // block
    same_val = _block_counts(upper & (r[:, :, None] > r[:, None, :])
                             & (rblk[:, :, None] != rblk[:, None, :]))
    hist = jnp.zeros((t, t), jnp.float32).at[jnp.arange(npad) // block,
                                              p.reshape(-1) // block].add(1.0)
    # strictly earlier position blocks with strictly higher value buckets, as two matmuls
    # (integers < 2^24: exact in float32)
    lower = jnp.asarray(np.tril(np.ones((t, t), np.float32), -1))
    higher = lower @ hist @ lower
    coarse = jnp.sum((hist * higher).astype(jnp.int32), axis=1)
    return (jnp.sum(within.astype(dtype)) + jnp.sum(same_val.astype(dtype))
            + jnp.sum(coarse.astype(dtype)))


def _orders(v, ties: bool):
    fwd = jax.vmap(lambda x: _ordinal(x, False))(v)
    if not ties:
        return fwd
    rev = jax.vmap(lambda x: _ordinal(x, True))(v)
    return tuple(jnp.concatenate([f, r]) for f, r in zip(fwd, rev, strict=True))


def _ordinal_host(v: np.ndarray, reverse_ties: bool, stable: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Host version of :func:`_ordinal` for rows of ``v`` with numpy's argsort (XLA's CPU sort
    took a fifth of the tau-a time); ``stable=False`` only for rows without ties."""
    n = v.shape[1]
    if reverse_ties:  # a stable sort of the reversed row: ties in descending index order
        order = n - 1 - np.argsort(v[:, ::-1], axis=1, kind="stable")
    else:  # without ties any sort gives the same order; numpy's default one is ~5x faster
        order = np.argsort(v, axis=1, kind="stable" if stable else None)
    order = order.astype(np.int32)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n, dtype=np.int32)[None], axis=1)
    return order, ranks


def _orders_host(v: np.ndarray, ties: bool):
    if not ties:
        both = _host_map(lambda x: np.concatenate(_ordinal_host(x, False, stable=False), 1), v)
        return both[:, :v.shape[1]], both[:, v.shape[1]:]
    fwd = _ordinal_host(v, False)
    rev = _ordinal_host(v, True)
    return tuple(np.concatenate([f, r]) for f, r in zip(fwd, rev, strict=True))


def _tau_core(a, b, a_ties: bool, b_ties: bool, block: int):
    return _tau_from_orders(_orders(a, a_ties), _orders(b, b_ties), a.shape[0], b.shape[0],
                            a.dtype, block)


def _tau_from_orders(oa, ob, ma: int, mb: int, dtype, block: int):
    """tau-a of all (a, b) pairs from (order, ranks) stacks: (tie-breakings x RDMs, n) each."""
    na, nb = oa[0].shape[0] // ma, ob[0].shape[0] // mb
    n = oa[0].shape[1]

    def one_model(args):
        order_a, rank_a = args
        t = -(-n // block)
        batch = int(max(1, min(64, ob[0].shape[0], 2**22 // (t * t))))
        return lax.map(lambda o: _inversions(o[1][order_a], rank_a[o[0]], block, dtype), ob,
                       batch_size=batch)

    inv = lax.map(one_model, oa)
    tau = 1.0 - 4.0 * inv / (n * (n - 1))
    tau = tau.reshape(na, ma, nb, mb)
    return jnp.mean(tau, axis=(0, 2))


_tau_jit = jax.jit(_tau_core, static_argnums=(2, 3, 4))
_tau_orders_jit = jax.jit(_tau_from_orders, static_argnums=(2, 3, 4, 5))


def _has_ties(v) -> bool:
    if isinstance(v, jax.core.Tracer):  # inside a caller's jit: assume ties (exact anyway)
        return True
    s = np.sort(np.asarray(v), axis=1)
    return bool(np.any(s[:, 1:] == s[:, :-1]))


def _tau_a(a, b):
    block = _tau_block(a.shape[1])
    if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
        return _tau_jit(a, b, _has_ties(a), _has_ties(b), block)
    a, b = np.asarray(a), np.asarray(b)
    oa, ob = _orders_host(a, _has_ties(a)), _orders_host(b, _has_ties(b))
    return _tau_orders_jit(oa, ob, a.shape[0], b.shape[0], np.dtype(a.dtype), block)


# ----------------------------------------------------------------------------- registry


def _no_sigma(fn):
    def wrapped(a, b, sigma_sqrt):
        del sigma_sqrt
        return fn(a, b)

    return wrapped


#: method name -> function (vectors_a, vectors_b, sqrt(sigma_k)) -> (m, r) similarity matrix
COMPARE_METHODS: dict[str, Callable] = {
    "cosine": _no_sigma(_cosine),
    "pearson": _no_sigma(_pearson),
    "corr": _no_sigma(_pearson),
    "spearman": _no_sigma(_spearman),
    "rho-a": _no_sigma(_rho_a),
    "tau-a": _no_sigma(_tau_a),
    "cosine_cov": _cosine_cov,
    "corr_cov": _corr_cov,
}


def compare_rdms(
    A: ArrayLike,
    B: ArrayLike,
    method: str = "cosine",
    *,
    sigma_k: ArrayLike | None = None,
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
        ``"spearman"``, ``"tau-a"``, ``"rho-a"``, ``"cosine_cov"``, ``"corr_cov"``.
    sigma_k : array-like, shape (K,), optional
        Variances of the pattern estimates for the whitened comparisons (``*_cov``);
        default: i.i.d. patterns.

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
    tau-a runs in O(n^1.5) array operations per pair (n = K (K - 1) / 2) without per-pair
    sorting; see the comment above ``_inversions``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random(45), rng.random(45)
    >>> round(float(compare_rdms(a, a, "tau-a")), 6)
    1.0
    """
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {sorted(COMPARE_METHODS)}, got {method!r}")
    va, *a_info = rdm_vectors(A, name="A")
    vb, *b_info = rdm_vectors(B, name="B")
    if va.shape[1] != vb.shape[1]:
        ka, kb = n_cond_from_pairs(va.shape[1]), n_cond_from_pairs(vb.shape[1])
        raise ValueError(f"A and B must be RDMs of the same conditions: A has {ka} conditions "
                         f"({va.shape[1]} pairs), B has {kb} ({vb.shape[1]} pairs)")
    dtype = jnp.result_type(float)
    k = n_cond_from_pairs(va.shape[1])
    if sigma_k is None:
        sig = np.ones(k, dtype)
    else:
        sig = np.asarray(unwrap(sigma_k, name="sigma_k")[0], dtype=float)
        if sig.shape != (k,) or np.any(sig <= 0):
            raise ValueError(f"sigma_k must be {k} positive pattern variances, got shape "
                             f"{sig.shape}")
        sig = np.sqrt(sig).astype(dtype)
    # numpy in: the jitted methods transfer once, the host paths (ranks) need no round trip
    dtype = np.dtype(dtype)
    out = COMPARE_METHODS[method](np.asarray(va, dtype), np.asarray(vb, dtype), sig)
    out = np.asarray(out)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"comparison {method!r} is undefined for a constant RDM (zero "
                         "variance); drop constant RDMs or use another method")
    attrs = provenance("compare_rdms", params={"method": method}, units="similarity")
    return label_pairs_matrix(out, a_info, b_info, attrs)
