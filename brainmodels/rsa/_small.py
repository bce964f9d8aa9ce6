"""numpy forms of RDM comparisons on the host: tau-a of small stacks, the weighted bootstrap.

At the sizes of a notebook (tens of conditions) a comparison takes microseconds; what a first
call pays is set up: numba's import and kernel load (~0.2 s), XLA's compilation (~0.1-1 s).
These forms need neither. Each is exact (the same definition as the kernel it stands in for,
to round-off) and is taken below a size set where the compiled kernels start to win
(``benchmarks/rsa.py`` measures both sides).
"""

from __future__ import annotations

import numpy as np

__all__ = ["tau_a", "WEIGHTED", "SMALL_TAU_PAIRS", "GEMM_MAX_ENTRIES"]

#: the weighted bootstrap's columns hold at most this many entries (256 MB); larger stacks
#: go in groups of RDMs
GEMM_MAX_ENTRIES = 32_000_000
#: tau-a by sign products when (rows of both stacks) x n (n - 1) / 2 is at most this
SMALL_TAU_PAIRS = 2_000_000


def _signs(v: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(v.shape[1], 1)
    return np.sign(v[:, j] - v[:, i])


def tau_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a of all row pairs (ma, mb): the mean product of the signs of all entry
    pairs (ties give 0), one matrix product; integer counts, exact in float64."""
    n = a.shape[1]
    return (_signs(a) @ _signs(b).T) / (n * (n - 1) / 2)


def small_tau(a: np.ndarray, b: np.ndarray) -> bool:
    n = a.shape[1]
    return (a.shape[0] + b.shape[0]) * n * (n - 1) // 2 <= SMALL_TAU_PAIRS


def _pair_weights(counts: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(counts.shape[1], 1)
    return counts[:, i] * counts[:, j]


def _weighted(a: np.ndarray, b: np.ndarray, counts: np.ndarray, center: bool) -> np.ndarray:
    """(sample, ma, mb) weighted cosine (``center=False``) or Pearson of all row pairs, pair
    (i, j) weighted by c_i c_j: the definitions of :mod:`brainmodels.rsa._weighted` in
    numpy/BLAS. Every weighted sum the comparisons need (of a_m b_r, a_m^2, b_r^2 and, for
    Pearson, a_m, b_r and 1) is one column of a matrix, so each block of samples is one
    matrix product (pair weights) @ columns: the work of a bootstrap is a GEMM. Groups of
    RDMs keep the columns within :data:`GEMM_MAX_ENTRIES`."""
    if center:  # shift invariance: remove the plain means first (better conditioned moments)
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    n_s, (ma, n), mb = counts.shape[0], a.shape, b.shape[0]
    # the largest groups (ga of a's rows, gb of b's) whose columns fit
    per = (GEMM_MAX_ENTRIES // n) if n else ma * mb
    gb = max(1, min(mb, per // 4))
    ga = max(1, min(ma, (per - 2 * gb - 1) // (gb + 2)))
    i, j = np.triu_indices(counts.shape[1], 1)
    block = max(1, min(n_s, 4_000_000 // max(n, 1)))
    out = np.empty((n_s, ma, mb))
    for a0 in range(0, ma, ga):
        for b0 in range(0, mb, gb):
            sa, sb = a[a0:a0 + ga], b[b0:b0 + gb]
            out[:, a0:a0 + sa.shape[0], b0:b0 + sb.shape[0]] = _weighted_group(
                sa, sb, counts, i, j, block, center)
    return out


def _weighted_group(a, b, counts, i, j, block: int, center: bool) -> np.ndarray:
    ma, mb, n = a.shape[0], b.shape[0], a.shape[1]
    parts = [(a[:, None, :] * b[None, :, :]).reshape(ma * mb, n), a * a, b * b]
    if center:
        parts += [a, b, np.ones((1, n))]
    cols = np.concatenate(parts).T  # (pair, column)
    out = np.empty((counts.shape[0], ma, mb))
    at = ma * mb
    for lo in range(0, counts.shape[0], block):
        c = counts[lo:lo + block]
        sums = (c[:, i] * c[:, j]) @ cols  # (block, column)
        sab = sums[:, :at].reshape(-1, ma, mb)
        saa, sbb = sums[:, at:at + ma], sums[:, at + ma:at + ma + mb]
        if center:
            sa = sums[:, at + ma + mb:at + 2 * ma + mb]
            sb = sums[:, at + 2 * ma + mb:at + 2 * ma + 2 * mb]
            sw = sums[:, -1:]
            sab = sab - sa[:, :, None] * (sb / sw)[:, None, :]
            saa = saa - sa * sa / sw
            sbb = sbb - sb * sb / sw
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:lo + block] = sab / np.sqrt(saa[:, :, None] * sbb[:, None, :])
    return out


#: method -> weighted form on the host (models (m, pair), data (s, pair), counts (sample, K))
WEIGHTED = {"cosine": lambda a, b, c: _weighted(a, b, c, center=False),
            "corr": lambda a, b, c: _weighted(a, b, c, center=True),
            "pearson": lambda a, b, c: _weighted(a, b, c, center=True)}
