"""Host kernels for RDM comparisons on CPU: counts compiled by numba, ranks in numpy.

* :func:`inversions`: Kendall's tau-a numerators, inversion counts of many permutations;
  :func:`weighted_inversions` the same for bootstrap samples (entries with multiplicities).
* :func:`row_sums`: the per-RDM pieces of the whitened comparisons (``*_cov``).
* :func:`average_ranks`: ranks with ties averaged (spearman, rho-a), numpy.

For every pair (order of an RDM A, ranks of an RDM B) the number of inversions of
``rank_b[order_a]`` is counted in one left-to-right pass. The values already seen are kept as a
bitset of 64-bit words plus a Fenwick tree over the words, so "how many earlier values are
smaller" costs one popcount and ~log2(n / 64) additions: O(n log n) per pair, like scipy's
merge count that rsatoolbox calls, but on a working set that stays in L1 and without the merge's
unpredictable branches (benchmarks/rsa.py records the comparison with scipy).
The pairs are split over a small thread pool; the kernel releases the GIL.

The row sums are one pass over each RDM vector with the (K,) accumulators in L1; they run on
the calling thread (a pool there contends with the BLAS threads of the matmul that follows).

numba is imported on first use only, and its compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Callable

import numpy as np

from brainmodels._types import Float, Int, NDArray

_KERNELS: dict[str, Callable] = {}
_KERNELS_LOCK = threading.Lock()


def _kernels() -> dict[str, Callable]:
    """The numba kernels, defined once: a pool's threads may ask for them at the same time
    (each definition would compile its own copy)."""
    with _KERNELS_LOCK:
        if not _KERNELS:
            _KERNELS.update(_define_kernels())
    return _KERNELS


def _define_kernels() -> dict[str, Callable]:
    import numba

    @numba.njit(nogil=True, cache=True, boundscheck=False)
    @typing.no_type_check  # numba compiles it; the test type-check hook must not wrap it
    def count(order_a, rank_b, out, lo, hi):
        n = order_a.shape[1]
        mb = rank_b.shape[0]
        nw = (n + 63) >> 6
        words = np.empty(nw, np.uint64)
        tree = np.empty(nw + 1, np.int64)
        one = np.uint64(1)
        for p in range(lo, hi):
            oa = order_a[p // mb]
            rb = rank_b[p % mb]
            words[:] = 0
            tree[:] = 0
            inv = 0
            for k in range(n):
                v = rb[oa[k]]
                w = v >> 6
                bit = one << np.uint64(v & 63)
                # earlier values smaller than v: bits below v in word w (SWAR popcount, which
                # LLVM turns into popcnt), then the whole words below w from the tree
                c = words[w] & (bit - one)
                c = c - ((c >> np.uint64(1)) & np.uint64(0x5555555555555555))
                c = ((c & np.uint64(0x3333333333333333))
                     + ((c >> np.uint64(2)) & np.uint64(0x3333333333333333)))
                c = (c + (c >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
                smaller = np.int64((c * np.uint64(0x0101010101010101)) >> np.uint64(56))
                x = w
                while x > 0:
                    smaller += tree[x]
                    x -= x & (-x)
                inv += k - smaller
                words[w] |= bit
                x = w + 1
                while x <= nw:
                    tree[x] += 1
                    x += x & (-x)
            out[p // mb, p % mb] = inv

    @numba.njit(nogil=True, cache=True, boundscheck=False, fastmath=True)
    @typing.no_type_check  # numba compiles it; the test type-check hook must not wrap it
    def rows(v, u, weighted, total, r, q):
        m_rdm, n = v.shape
        k = u.shape[0]
        rl = np.empty(k)
        ql = np.empty(k)
        for a in range(m_rdm):
            rl[:] = 0.0
            ql[:] = 0.0
            tot = 0.0
            p = 0
            for i in range(k - 1):
                seg = v[a, p:p + k - 1 - i]
                acc = 0.0
                for j in range(seg.shape[0]):
                    acc += seg[j]
                    rl[i + 1 + j] += seg[j]
                rl[i] += acc
                tot += acc
                if weighted:
                    ui = u[i]
                    accq = 0.0
                    for j in range(seg.shape[0]):
                        accq += u[i + 1 + j] * seg[j]
                        ql[i + 1 + j] += ui * seg[j]
                    ql[i] += accq
                p += k - 1 - i
            total[a] = tot
            r[a] = rl
            q[a] = ql if weighted else rl

    @numba.njit(nogil=True, cache=True, boundscheck=False)
    @typing.no_type_check  # numba compiles it; the test type-check hook must not wrap it
    def count_weighted(order_a, rank_b, weights, out, lo, hi):
        n = order_a.shape[1]
        ta, tb = order_a.shape[0], rank_b.shape[0]
        tree = np.empty(n + 1, np.int64)
        kept = np.empty(n, np.int32)
        kept_w = np.empty(n, np.int64)
        for s in range(lo, hi):
            wrow = weights[s]
            for ia in range(ta):
                # the entries drawn in this sample, in A's order (no branch per entry below)
                oa = order_a[ia]
                m = 0
                for k in range(n):
                    p = oa[k]
                    if wrow[p] != 0:
                        kept[m] = p
                        kept_w[m] = wrow[p]
                        m += 1
                for ib in range(tb):
                    rb = rank_b[ib]
                    tree[:] = 0
                    seen = 0
                    inv = 0
                    for k in range(m):
                        w = kept_w[k]
                        v = rb[kept[k]] + 1
                        below = 0  # weight seen so far at ranks <= v
                        x = v
                        while x > 0:
                            below += tree[x]
                            x -= x & (-x)
                        inv += w * (seen - below)
                        seen += w
                        x = v
                        while x <= n:
                            tree[x] += w
                            x += x & (-x)
                    out[s, ia, ib] = inv

    return {"count": count, "rows": rows, "count_weighted": count_weighted}


def average_ranks(v: Float[NDArray, "row entry"], shift: float = 0.0
                  ) -> Float[NDArray, "row entry"]:
    """Average ranks along rows (``scipy.stats.rankdata``: 1-based, ties share their mean
    rank) minus ``shift``, float64. numpy (argsort, then accumulations over the tie groups of
    the rows that have ties): within 1.2-2x of a compiled pass, and no numba import (~0.25 s)
    on a first call."""
    v = np.asarray(v)
    m, n = v.shape
    order = np.argsort(v, axis=1)  # any order of equal entries: they share one rank
    sv = np.take_along_axis(v, order, axis=1)
    ranked = np.empty((m, n))
    ranked[:] = np.arange(1.0 - shift, n + 1.0 - shift)
    tied = sv[:, 1:] == sv[:, :-1]
    rows = np.flatnonzero(tied.any(axis=1))
    if rows.size:  # tie groups: the mean of their first and last position
        idx = np.broadcast_to(np.arange(n), (rows.size, n))
        first = np.ones((rows.size, n), bool)
        first[:, 1:] = ~tied[rows]
        last = np.ones((rows.size, n), bool)
        last[:, :-1] = first[:, 1:]
        start = np.maximum.accumulate(np.where(first, idx, 0), axis=1)
        end = np.minimum.accumulate(np.where(last, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
        ranked[rows] = (start + end) / 2.0 + (1.0 - shift)
    out = np.empty((m, n))
    out[np.arange(m)[:, None], order] = ranked
    return out


def _split(pool_map, workers: int, total: int, fn, big: bool) -> None:
    if pool_map is None or workers < 2 or total < 2 or not big:
        fn((0, total))
        return
    edges = np.linspace(0, total, min(4 * workers, total) + 1).astype(int)
    list(pool_map(fn, zip(edges[:-1], edges[1:], strict=True)))


def row_sums(v: Float[NDArray, "rdm pair"], u: Float[NDArray, " condition"]
             ) -> tuple[Float[NDArray, " rdm"], Float[NDArray, "rdm condition"],
                        Float[NDArray, "rdm condition"]]:
    """Per RDM (rows of ``v``, condensed, float64): the sum of its entries and the row sums
    of the square RDM (zero diagonal), plain (``r``) and weighted by ``u`` of the other
    condition (``q_i = sum_j u_j D_ij``; ``q`` is ``r`` when ``u`` is all ones). One pass
    over the entries; the row sums live in L1."""
    v = np.ascontiguousarray(v, np.float64)
    u = np.ascontiguousarray(u, np.float64)
    m_rdm, k = v.shape[0], u.shape[0]
    total = np.empty(m_rdm)
    r = np.empty((m_rdm, k))
    q = np.empty((m_rdm, k))
    _kernels()["rows"](v, u, bool(np.any(u != 1.0)), total, r, q)
    return total, r, q


def weighted_inversions(order_a: Int[NDArray, "a entry"], rank_b: Int[NDArray, "b entry"],
                        weights: Int[NDArray, "sample entry"],
                        pool_map: Callable | None = None, workers: int = 1
                        ) -> Int[NDArray, "sample a b"]:
    """Weighted inversions for every weight row s and pair (i, j): the sum of
    ``w_p w_q`` over pairs of entries p before q in ``order_a[i]`` with
    ``rank_b[j][p] > rank_b[j][q]``; an (s, ma, mb) int64 array. Entry p stands for ``w_p``
    copies of itself (a bootstrap sample); copies never count. A Fenwick tree of weights over
    the ranks, entries of weight 0 skipped."""
    order_a = np.ascontiguousarray(order_a, np.int32)
    rank_b = np.ascontiguousarray(rank_b, np.int32)
    weights = np.ascontiguousarray(weights, np.int64)
    out = np.empty((weights.shape[0], order_a.shape[0], rank_b.shape[0]), np.int64)
    kernel = _kernels()["count_weighted"]
    _split(pool_map, workers, weights.shape[0],
           lambda lh: kernel(order_a, rank_b, weights, out, lh[0], lh[1]), True)
    return out


def inversions(order_a: Int[NDArray, "a entry"], rank_b: Int[NDArray, "b entry"],
               pool_map: Callable | None = None, workers: int = 1) -> Int[NDArray, "a b"]:
    """Inversions of ``rank_b[j][order_a[i]]`` for every (i, j): an (ma, mb) int64 array.

    ``order_a`` (ma, n) are permutations (argsorts), ``rank_b`` (mb, n) their inverses' kind:
    the ordinal rank of every entry. ``pool_map`` (``executor.map``) spreads the pairs over
    ``workers`` threads.
    """
    order_a = np.ascontiguousarray(order_a, np.int32)
    rank_b = np.ascontiguousarray(rank_b, np.int32)
    ma, mb = order_a.shape[0], rank_b.shape[0]
    out = np.empty((ma, mb), np.int64)
    count = _kernels()["count"]
    _split(pool_map, workers, ma * mb, lambda lh: count(order_a, rank_b, out, lh[0], lh[1]),
           order_a.shape[1] >= 256)
    return out
