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
import scipy.linalg
from jax import lax

from brainmodels._types import ArrayLike, Float, NDArray
from brainmodels.data import provenance, unwrap
from brainmodels.rsa import _host
from brainmodels.rsa._utils import (
    label_pairs_matrix,
    n_cond_from_pairs,
    rdm_vectors,
    to_square_jax,
)

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
    """Average ranks per row: numpy + numba for concrete arrays (XLA's CPU sort is slow), JAX
    inside a caller's jit."""
    if isinstance(v, jax.core.Tracer):
        return _rank_rows(v)
    return jnp.asarray(_host_map(_host.average_ranks, np.asarray(v)), v.dtype)


def _on_host(*arrays) -> bool:
    """Concrete inputs on a CPU backend: the small dense steps run in numpy / BLAS, which
    skips XLA's dispatch and transfers (~1 ms per call at 50 x 50 RDMs of 100 conditions)."""
    return (jax.default_backend() == "cpu"
            and not any(isinstance(x, jax.core.Tracer) for x in arrays))


@functools.cache
def _blas_control():
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def _gram_one_thread(x, y):
    """x @ y.T with BLAS on one thread: the product of two rank stacks is too small to pay for
    BLAS's threads, and the threads spin after each call (~0.1 s), starving the rank pool of
    the next call (measured: spearman 11 ms -> 7.6 ms at 50 x 50 RDMs of 100 conditions)."""
    with _blas_control().limit(limits=1, user_api="blas"):
        return x @ y.T


def _centered_ranks(a, b):
    """Ranks minus their mean (n + 1) / 2, which ties do not change, on the host: row chunks
    of both stacks on the pool, each written in place."""
    c = (a.shape[1] + 1) / 2
    a, b = np.asarray(a), np.asarray(b)
    ra, rb = np.empty(a.shape), np.empty(b.shape)
    jobs = []
    for v, r in ((a, ra), (b, rb)):
        parts = 1 if _WORKERS == 1 or v.size < 100_000 else min(2 * _WORKERS, v.shape[0])
        edges = np.linspace(0, v.shape[0], parts + 1).astype(int)
        jobs += [(v[lo:hi], r[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    list(_host_pool().map(lambda job: _host.average_ranks(job[0], c, out=job[1]), jobs))
    return ra, rb


def _cosine_host(a, b):
    na = np.sqrt(np.einsum("ij,ij->i", a, a))
    nb = np.sqrt(np.einsum("ij,ij->i", b, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (_gram_one_thread(a, b) / np.outer(na, nb)).astype(a.dtype, copy=False)


def _cosine_any(a, b):
    return _cosine_host(np.asarray(a), np.asarray(b)) if _on_host(a, b) else _cosine(a, b)


def _pearson_any(a, b):
    if not _on_host(a, b):
        return _pearson(a, b)
    a, b = np.asarray(a), np.asarray(b)
    return _cosine_host(a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True))


def _spearman(a, b):
    if not _on_host(a, b):
        return _pearson(_ranks_any(a), _ranks_any(b))
    return _cosine_host(*_centered_ranks(a, b)).astype(a.dtype, copy=False)


@jax.jit
def _rho_a_ranked(ra, rb):
    n = ra.shape[1]
    return _center(ra) @ _center(rb).T * (12.0 / (n**3 - n))


def _rho_a(a, b):
    if not _on_host(a, b):
        return _rho_a_ranked(_ranks_any(a), _ranks_any(b))
    n = a.shape[1]
    ra, rb = _centered_ranks(a, b)
    return (_gram_one_thread(ra, rb) * (12.0 / (n**3 - n))).astype(a.dtype, copy=False)


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


# On CPU with concrete inputs the whitened comparisons skip building the double-centred
# vectors: the Frobenius products <W_a, W_b> of the whitened double-centred matrices expand
# into the products of the RDM vectors (one BLAS matmul) plus corrections from each RDM's sum
# and row sums (numba, one pass). With u = 1 / sigma_k, U = sum(u), w_ij = u_i u_j, D0 the RDM
# with its mean m removed from the off-diagonal entries, r its row means, t = mean(r),
# q_i = sum_j u_j D0_ij and rho = sum_i u_i r_i, the double-centred matrix is
# H D H = C0 - m H with C0 = D0 - r 1' - 1 r' + t, and
#   <C0a, C0b>_u = sum_ij w_ij D0a_ij D0b_ij - (2 <u qa, rb> - tb <u, qa>)
#                  - (2 <ra, u qb> - ta <u, qb>)
#                  + 2 U <u ra, rb> + 2 rho_a rho_b - 2 U (tb rho_a + ta rho_b) + U^2 ta tb,
#   <C0, H>_u = -2 <u^2, r> + t sum(u^2) - (<u, q> - 2 U rho + U^2 t) / k,
#   <H, H>_u = (1 - 2 / k) sum(u^2) + U^2 / k^2.
# corr_cov uses C0 (the RDM vector is centred first); cosine_cov adds the m H terms. The first
# sum comes from the uncentred vectors, sum_p w_p Da_p Db_p - m_b sum_p w_p Da_p - ..., so it
# cancels when an RDM's double-centred part is tiny next to its entries (a near-constant RDM).
# The error is ~1e-16 * |D|^2 / |W|^2 relative; where that ratio exceeds 1e6 for any RDM the
# call falls back to the explicit double-centring (the jitted path): results stay within
# ~1e-9 of it (tests/rsa/test_rsa_compare.py pins that bound).

_COV_RATIO = 1e6


def _cov_stats(v, u):
    k = u.shape[0]
    n = v.shape[1]
    big_u, u2 = u.sum(), np.sum(u**2)
    total, rsum, qraw = _host.row_sums(v, u)
    m = total / n
    r = (rsum - m[:, None] * (k - 1)) / k  # row means of D0
    q = qraw - m[:, None] * (big_u - u)  # sum_j u_j D0_ij
    t = r.mean(axis=1)
    uq = q * u
    uq_sum = uq.sum(axis=1)
    rho = r @ u
    c_h = -2.0 * (r @ u**2) + t * u2 - (uq_sum - 2 * big_u * rho + big_u**2 * t) / k
    # sum_p w_p D_p: half of sum_i u_i q_i of the uncentred RDM
    return {"v": v, "m": m, "r": r, "t": t, "uq": uq, "uq_sum": uq_sum, "rho": rho,
            "c_h": c_h, "wsum": 0.5 * (qraw @ u)}


def _cov_products(sa, sb, u, w, center: bool, cross: bool):
    """(<W_a, W_b>, sum_p w_p Da_p Db_p) for all pairs (cross) or for matching rows (norms)."""
    if cross:
        dot, outer = (lambda x, y: x @ y.T), np.multiply.outer
    else:
        dot, outer = (lambda x, y: np.einsum("ij,ij->i", x, y)), np.multiply
    big_u, u2 = u.sum(), np.sum(u**2)
    w_total = 0.5 * (big_u**2 - u2)
    raw = dot(sa["v"] if w is None else sa["v"] * w, sb["v"])
    p = 2.0 * (raw - outer(sa["wsum"], sb["m"]) - outer(sa["m"], sb["wsum"])
               + w_total * outer(sa["m"], sb["m"]))
    p -= 2.0 * dot(sa["uq"], sb["r"]) - outer(sa["uq_sum"], sb["t"])
    p -= 2.0 * dot(sa["r"], sb["uq"]) - outer(sa["t"], sb["uq_sum"])
    p += (2.0 * big_u * dot(sa["r"] * u, sb["r"]) + 2.0 * outer(sa["rho"], sb["rho"])
          - 2.0 * big_u * (outer(sa["rho"], sb["t"]) + outer(sa["t"], sb["rho"]))
          + big_u**2 * outer(sa["t"], sb["t"]))
    if not center:
        k = u.shape[0]
        h_h = (1.0 - 2.0 / k) * u2 + big_u**2 / k**2
        p += (-outer(sa["c_h"], sb["m"]) - outer(sa["m"], sb["c_h"])
              + h_h * outer(sa["m"], sb["m"]))
    return p, raw


def _cov_host(a, b, sigma_sqrt, center: bool):
    """The whitened comparison of all pairs, or None where the expansion would lose digits."""
    u = 1.0 / np.asarray(sigma_sqrt, np.float64) ** 2
    w = None
    if np.any(u != 1.0):
        i, j = np.triu_indices(u.shape[0], 1)
        w = u[i] * u[j]
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa = _cov_stats(a64, u)
    sb = _cov_stats(b64, u)
    norm_a, raw_a = _cov_products(sa, sa, u, w, center, cross=False)
    norm_b, raw_b = _cov_products(sb, sb, u, w, center, cross=False)
    if (np.any(_COV_RATIO * norm_a <= 2.0 * raw_a)
            or np.any(_COV_RATIO * norm_b <= 2.0 * raw_b)):
        return None
    num, _ = _cov_products(sa, sb, u, w, center, cross=True)
    return (num / np.sqrt(np.multiply.outer(norm_a, norm_b))).astype(a.dtype, copy=False)


def _whitened(jitted, center: bool):
    def method(a, b, sigma_sqrt):
        if not _on_host(a, b):
            return jitted(a, b, sigma_sqrt)
        out = _cov_host(np.asarray(a), np.asarray(b), sigma_sqrt, center)
        return jitted(a, b, sigma_sqrt) if out is None else out

    return method


# A full (K, K) pattern covariance sigma_k: rsatoolbox then weights the RDM vectors by V^-1,
# V = Xi o Xi with Xi = C sigma_k C' (C: the pair contrasts), solved by conjugate gradients.
# V = K (sigma_k x sigma_k) K' where the rows of K are the pair contrasts' outer products, so
# v' V^-1 w is a generalised least-squares norm: the smallest ||L^-1 X L^-T||_F over the
# matrices X that give the RDM's distances (sigma_k = L L'). They are G + a 1' + 1 a' (plus
# antisymmetric parts, which do not help), G the double-centred -D/2, and the best a solves
# X sigma_k^-1 1 = 0: with u = sigma_k^-1 1 and s = 1'u, a = -(G u - (u'G u / 2 s) 1) / s.
# The comparison is then the cosine of the L^-1 X L^-T: exact, where rsatoolbox's CG stops
# at its tolerance (~1e-5). A (K,) sigma_k keeps rsatoolbox's entrywise whitening of G.


def _whiten_full(v, l_inv, u):
    d = to_square_jax(v)
    row = jnp.mean(d, axis=2)
    tot = jnp.mean(row, axis=1)
    g = -0.5 * (d - row[:, :, None] - row[:, None, :] + tot[:, None, None])
    s = jnp.sum(u)
    gu = g @ u
    a = -(gu - (gu @ u / (2.0 * s))[:, None]) / s
    x = g + a[:, :, None] + a[:, None, :]
    return (l_inv[None] @ x @ l_inv.T[None]).reshape(v.shape[0], -1)


@functools.partial(jax.jit, static_argnums=4)
def _cov_full(a, b, l_inv, u, center: bool):
    if center:
        a, b = _center(a), _center(b)
    return _cosine_matrix(_whiten_full(a, l_inv, u), _whiten_full(b, l_inv, u))


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


def _ranks_of(order: np.ndarray) -> np.ndarray:
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1], dtype=order.dtype)[None], axis=1)
    return ranks


def _reverse_tie_runs(v: np.ndarray, order: np.ndarray) -> np.ndarray:
    """From a stable order (ties in ascending index order), the order with every run of tied
    values reversed (ties in descending index order), in O(n) array passes instead of a
    second stable sort."""
    n = v.shape[1]
    sv = np.take_along_axis(v, order, axis=1)
    pos = np.arange(n)[None]
    diff = sv[:, 1:] != sv[:, :-1]
    first = np.concatenate([np.ones((v.shape[0], 1), bool), diff], axis=1)  # run starts
    last = np.concatenate([diff, np.ones((v.shape[0], 1), bool)], axis=1)  # run ends
    start = np.maximum.accumulate(np.where(first, pos, 0), axis=1)
    end = n - 1 - np.maximum.accumulate(np.where(last[:, ::-1], pos, 0), axis=1)[:, ::-1]
    return np.take_along_axis(order, start + end - pos, axis=1)


def _orders_host(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, ranks) of every row, (m, n) int32 each; rows of a stack with ties get both
    tie-breakings, stacked as (2 m, n): index order, then reverse index order. One argsort
    finds the ties too (numpy's default sort: ~5x faster than the stable one); with ties, one
    stable sort gives both tie-breakings."""
    order = _host_map(lambda x: np.argsort(x, axis=1).astype(np.int32), v)
    sv = np.take_along_axis(v, order, axis=1)
    if np.any(sv[:, 1:] == sv[:, :-1]):
        fwd = _host_map(lambda x: np.argsort(x, axis=1, kind="stable").astype(np.int32), v)
        rev = _reverse_tie_runs(v, fwd)
        both = np.concatenate([fwd, rev])
        return both, _ranks_of(both)
    return order, _ranks_of(order)


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
    oa, ob = _orders_host(a), _orders_host(b)
    if jax.default_backend() != "cpu":  # the array kernel, on the accelerator
        return _tau_orders_jit(oa, ob, a.shape[0], b.shape[0], np.dtype(a.dtype), block)
    # on CPU: the compiled O(n log n) count per pair (brainmodels.rsa._host), ~5x faster
    inv = _host.inversions(oa[0], ob[1], _host_pool().map, _WORKERS)
    n = a.shape[1]
    tau = _mean_over_tie_breakings(1.0 - 4.0 * inv / (n * (n - 1)), a.shape[0], b.shape[0])
    return tau.astype(a.dtype)


def _mean_over_tie_breakings(tau: np.ndarray, ma: int, mb: int) -> np.ndarray:
    """(..., tie-breakings of A x ma, tie-breakings of B x mb) -> (..., ma, mb): the mean
    over the tie-breakings is tau-a (see the comment above ``_tau_block``)."""
    *lead, ta, tb = tau.shape
    return tau.reshape(*lead, ta // ma, ma, tb // mb, mb).mean(axis=(-4, -2))


def tau_a_resampled(a: Float[ArrayLike, "model pair"], b: Float[ArrayLike, "reference pair"],
                    counts: Float[ArrayLike, "sample condition"]
                    ) -> Float[NDArray, "sample model reference"]:
    """tau-a of all (a, b) pairs for resampled conditions: counts (sample, K) of how often
    each condition was drawn. A pair (i, j) of distinct conditions stands for c_i c_j entries
    of the resampled RDM (pairs of a condition with its own copy are dropped, as rsatoolbox's
    ``subsample_pattern`` does); copies tie in both RDMs, so they count only in the
    denominator N (N - 1) / 2, N = sum of the weights. Host kernel (weighted Fenwick count,
    numba), exact in integers; returns (sample, ma, mb)."""
    a, b = np.asarray(a), np.asarray(b)
    k = n_cond_from_pairs(a.shape[1])
    i, j = np.triu_indices(k, 1)
    c = np.rint(np.asarray(counts)).astype(np.int64)
    w = c[:, i] * c[:, j]
    oa, ob = _orders_host(a), _orders_host(b)
    inv = _host.weighted_inversions(oa[0], ob[1], w, _host_pool().map, _WORKERS)
    big_n = w.sum(axis=1).astype(np.float64)
    pairs = 0.5 * (big_n**2 - np.sum(w.astype(np.float64) ** 2, axis=1))  # distinct entries
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = ((pairs[:, None, None] - 2.0 * inv) / (0.5 * big_n * (big_n - 1))[:, None, None])
    return _mean_over_tie_breakings(tau, a.shape[0], b.shape[0])


# ----------------------------------------------------------------------------- registry


def _no_sigma(fn):
    def wrapped(a, b, sigma_sqrt):
        del sigma_sqrt
        return fn(a, b)

    return wrapped


#: method name -> function (vectors_a, vectors_b, sqrt(sigma_k)) -> (m, r) similarity matrix
COMPARE_METHODS: dict[str, Callable] = {
    "cosine": _no_sigma(_cosine_any),
    "pearson": _no_sigma(_pearson_any),
    "corr": _no_sigma(_pearson_any),
    "spearman": _no_sigma(_spearman),
    "rho-a": _no_sigma(_rho_a),
    "tau-a": _no_sigma(_tau_a),
    "cosine_cov": _whitened(_cosine_cov, center=False),
    "corr_cov": _whitened(_corr_cov, center=True),
}


def _full_sigma(sig: np.ndarray, method: str):
    """(L^-1, sigma_k^-1 1) of a full pattern covariance, checked."""
    if method not in ("corr_cov", "cosine_cov"):
        raise ValueError(f"sigma_k applies to the whitened methods (corr_cov, cosine_cov), "
                         f"not {method!r}")
    if not np.allclose(sig, sig.T, rtol=1e-10, atol=1e-12 * np.abs(sig).max()):
        raise ValueError("sigma_k must be a symmetric pattern covariance")
    try:
        chol = np.linalg.cholesky(sig)
    except np.linalg.LinAlgError:
        raise ValueError("sigma_k must be positive definite (its Cholesky factor failed)") \
            from None
    dtype = jnp.result_type(float)
    l_inv = scipy.linalg.solve_triangular(chol, np.eye(sig.shape[0]), lower=True)
    u = scipy.linalg.cho_solve((chol, True), np.ones(sig.shape[0]))
    return l_inv.astype(dtype), u.astype(dtype)


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
        ``"spearman"``, ``"tau-a"``, ``"rho-a"``, ``"cosine_cov"``, ``"corr_cov"``.
    sigma_k : array-like, shape (K,) or (K, K), optional
        For the whitened comparisons (``*_cov``): the variances of the pattern estimates
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
    on accelerators and inside a caller's ``jit`` with O(n^1.5) array operations (see the
    comment above ``_inversions``). Both are exact, ties included.

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
    dtype = jnp.result_type(float)
    k = n_cond_from_pairs(va.shape[1])
    full = None
    if sigma_k is None:
        sig = np.ones(k, dtype)
    else:
        sig = np.asarray(unwrap(sigma_k, name="sigma_k")[0], dtype=float)
        if sig.shape == (k, k):
            full = _full_sigma(sig, method)
        elif sig.shape != (k,) or np.any(sig <= 0):
            raise ValueError(f"sigma_k must be {k} positive pattern variances or a ({k}, {k}) "
                             f"pattern covariance, got shape {sig.shape}")
        sig = np.sqrt(sig).astype(dtype) if full is None else sig
    # numpy in: the jitted methods transfer once, the host paths (ranks) need no round trip
    dtype = np.dtype(dtype)
    if full is not None:
        out = _cov_full(np.asarray(va, dtype), np.asarray(vb, dtype), *full,
                        method == "corr_cov")
    else:
        out = COMPARE_METHODS[method](np.asarray(va, dtype), np.asarray(vb, dtype), sig)
    out = np.asarray(out)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"comparison {method!r} is undefined for a constant RDM (zero "
                         "variance); drop constant RDMs or use another method")
    attrs = provenance("compare_rdms", params={"method": method}, units="similarity")
    return label_pairs_matrix(out, a_info, b_info, attrs)
