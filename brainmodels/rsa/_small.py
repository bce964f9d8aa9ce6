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

#: the weighted bootstrap as one GEMM when its columns hold at most this many entries (256 MB)
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
    Pearson, a_m, b_r and 1) is one column of a matrix ``cols``, so each block of samples is
    one matrix product (pair weights) @ cols: the work of a bootstrap is a GEMM."""
    if center:  # shift invariance: remove the plain means first (better conditioned moments)
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    n_s, (ma, n), mb = counts.shape[0], a.shape, b.shape[0]
    if (ma * mb + 2 * (ma + mb) + 1) * n > GEMM_MAX_ENTRIES:
        return _weighted_per_model(a, b, counts, center)
    parts = [(a[:, None, :] * b[None, :, :]).reshape(ma * mb, n), a * a, b * b]
    if center:
        parts += [a, b, np.ones((1, n))]
    cols = np.concatenate(parts).T  # (pair, column)
    i, j = np.triu_indices(counts.shape[1], 1)
    out = np.empty((n_s, ma, mb))
    block = max(1, min(n_s, 4_000_000 // n))
    for lo in range(0, n_s, block):
        c = counts[lo:lo + block]
        sums = (c[:, i] * c[:, j]) @ cols  # (block, column)
        sab = sums[:, :ma * mb].reshape(-1, ma, mb)
        saa, sbb = sums[:, ma * mb:ma * mb + ma], sums[:, ma * mb + ma:ma * mb + ma + mb]
        if center:
            at = ma * mb + ma + mb
            sa, sb, sw = sums[:, at:at + ma], sums[:, at + ma:at + ma + mb], sums[:, -1:]
            sab = sab - sa[:, :, None] * (sb / sw)[:, None, :]
            saa = saa - sa * sa / sw
            sbb = sbb - sb * sb / sw
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:lo + block] = sab / np.sqrt(saa[:, :, None] * sbb[:, None, :])
    return out


def _weighted_per_model(a, b, counts, center: bool) -> np.ndarray:
    """:func:`_weighted` for many RDM pairs (``a``, ``b`` centred already for Pearson): per
    block of samples, (weights x a) @ b.T, which needs no column per pair."""
    n_s, (ma, n), mb = counts.shape[0], a.shape, b.shape[0]
    i, j = np.triu_indices(counts.shape[1], 1)
    out = np.empty((n_s, ma, mb))
    a2, b2 = a * a, b * b
    block = max(1, min(n_s, 4_000_000 // max(1, ma * n)))
    for lo in range(0, n_s, block):
        c = counts[lo:lo + block]
        w = c[:, i] * c[:, j]
        sab = ((w[:, None, :] * a[None]).reshape(-1, n) @ b.T).reshape(w.shape[0], ma, mb)
        saa, sbb = w @ a2.T, w @ b2.T
        if center:
            sw = w.sum(axis=1)[:, None]
            sa, sb = w @ a.T, w @ b.T
            sab -= sa[:, :, None] * (sb / sw)[:, None, :]
            saa -= sa * sa / sw
            sbb -= sb * sb / sw
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:lo + block] = sab / np.sqrt(saa[:, :, None] * sbb[:, None, :])
    return out


#: method -> weighted form on the host (models (m, pair), data (s, pair), counts (sample, K))
WEIGHTED = {"cosine": lambda a, b, c: _weighted(a, b, c, center=False),
            "corr": lambda a, b, c: _weighted(a, b, c, center=True),
            "pearson": lambda a, b, c: _weighted(a, b, c, center=True)}
