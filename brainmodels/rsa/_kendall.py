"""Kendall's tau between RDMs: tau-a (exact, ties included, in O(n log n) per pair) and tau-b.

tau-a counts discordant pairs: on CPU with a compiled bitset/Fenwick count over a thread pool
(:mod:`brainmodels.rsa._host`, numba), on accelerators and inside a caller's ``jit`` with
O(n^1.5) array operations (see the comment above :func:`_inversions`). The same count with
integer weights gives tau-a of resampled RDMs (:func:`tau_a_resampled`, the bootstrap's form).
tau-b (the classic Kendall coefficient, ``scipy.stats.kendalltau``) corrects for ties in both
rankings; rsatoolbox offers it for RDMs without tied predictions.

References
----------
Nili et al. (2014), PLoS Comput. Biol. 10(4): e1003553 (tau-a for models with tied
predictions). Kendall (1945), Biometrika 33(3), 239-251 (tau-b).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax import lax

from brainmodels._platform import cpu_backend
from brainmodels._types import ArrayLike, Float, NDArray
from brainmodels.rsa import _host, _small
from brainmodels.rsa._backend import WORKERS, host_map, host_pool, traced
from brainmodels.rsa._utils import n_cond_from_pairs

__all__ = ["tau_a", "tau_a_resampled", "tau_b"]


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
    """Block size: 48 for RDMs up to ~180 conditions (the balance of in-block compares against
    the t^3 grid matmuls, chosen on benchmarks/rsa.py), ~sqrt(n) beyond."""
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
    are summed in int8 first: XLA vectorises the narrow sums better on CPU."""
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
    finds the ties too (numpy's default sort is much faster than the stable one); with ties, one
    stable sort gives both tie-breakings."""
    order = host_map(lambda x: np.argsort(x, axis=1).astype(np.int32), v)
    sv = np.take_along_axis(v, order, axis=1)
    if np.any(sv[:, 1:] == sv[:, :-1]):
        fwd = host_map(lambda x: np.argsort(x, axis=1, kind="stable").astype(np.int32), v)
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
    if traced(v):  # inside a caller's jit: assume ties (exact anyway)
        return True
    s = np.sort(np.asarray(v), axis=1)
    return bool(np.any(s[:, 1:] == s[:, :-1]))


def tau_a(a, b):
    """tau-a of all (a, b) row pairs: (ma, mb)."""
    block = _tau_block(a.shape[1])
    if traced(a, b):
        return _tau_jit(a, b, _has_ties(a), _has_ties(b), block)
    a, b = np.asarray(a), np.asarray(b)
    if _small.small_tau(a, b):  # sign products: no numba import, no compilation
        return _small.tau_a(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)
    oa, ob = _orders_host(a), _orders_host(b)
    if not cpu_backend():  # the array kernel, on the accelerator
        return _tau_orders_jit(oa, ob, a.shape[0], b.shape[0], np.dtype(a.dtype), block)
    # on CPU: the compiled O(n log n) count per pair (brainmodels.rsa._host)
    inv = _host.inversions(oa[0], ob[1], host_pool().map, WORKERS)
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
    inv = _host.weighted_inversions(oa[0], ob[1], w, host_pool().map, WORKERS)
    big_n = w.sum(axis=1).astype(np.float64)
    pairs = 0.5 * (big_n**2 - np.sum(w.astype(np.float64) ** 2, axis=1))  # distinct entries
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = ((pairs[:, None, None] - 2.0 * inv) / (0.5 * big_n * (big_n - 1))[:, None, None])
    return _mean_over_tie_breakings(tau, a.shape[0], b.shape[0])




def tau_b(a, b):
    """Kendall's tau-b of all (a, b) row pairs, (ma, mb), on the host (as rsatoolbox, via
    ``scipy.stats.kendalltau``: O(n log n) per pair). Runs on concrete arrays only."""
    if traced(a, b):
        raise ValueError("method 'tau-b' runs on the host (scipy); call compare_rdms outside "
                         "jax.jit, or use 'tau-a', which has a JAX form")
    dtype = np.asarray(a).dtype
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty((a.shape[0], b.shape[0]))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = scipy.stats.kendalltau(x, y).statistic
    return out.astype(dtype)
