"""The whitened comparisons (cosine_cov, corr_cov) of Diedrichsen et al. (2021).

The RDM is turned into its double-centred second moment (-D/2), whitened by the pattern
variances (entrywise, ``sigma_k`` of shape (K,)) or by a full pattern covariance (``sigma_k``
of shape (K, K)), and compared with the cosine. This module holds the sigma-aware JAX kernels,
the host expansion that skips building the double-centred vectors on CPU, and the exact full-
covariance weighting. With ``sigma_k`` the identity the weighted definition
(:mod:`brainmodels.rsa._weighted`, all-ones counts) is the JAX form.

References
----------
Diedrichsen et al. (2021), "Comparing representational geometries using whitened unbiased-
distance-matrix similarity", Neurons, Behavior, Data analysis and Theory 5(3) (eqs. 9-13).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from brainmodels.rsa import _host
from brainmodels.rsa._utils import n_cond_from_pairs, to_square_jax

__all__ = ["cosine_cov", "corr_cov", "whitened_host", "full_sigma", "cov_full"]


def _center(v):
    return v - jnp.mean(v, axis=-1, keepdims=True)


def _cosine_matrix(a, b):
    na = jnp.sqrt(jnp.sum(a * a, axis=1, keepdims=True))
    nb = jnp.sqrt(jnp.sum(b * b, axis=1, keepdims=True))
    return (a / na) @ (b / nb).T


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
def cosine_cov(a, b, sigma_sqrt):
    """cosine_cov of all row pairs with entrywise whitening by ``sigma_sqrt`` (K,)."""
    return _cosine_matrix(_double_centered(a, sigma_sqrt), _double_centered(b, sigma_sqrt))


@jax.jit
def corr_cov(a, b, sigma_sqrt):
    """corr_cov of all row pairs with entrywise whitening by ``sigma_sqrt`` (K,)."""
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


#: stacks of RDM vectors up to this many entries take their row sums from a sparse product
#: (no numba import on a first call; 20 RDMs of 500 conditions: 4 ms, numba 0.75 ms); larger
#: ones from the numba pass
_SPARSE_ROW_SUMS = 4_000_000


@functools.lru_cache(maxsize=8)
def _pair_incidence(k: int):
    """(K, pairs) CSR matrix with a 1 at (i, p) and (j, p) for every pair p = (i, j)."""
    import scipy.sparse

    i, j = np.triu_indices(k, 1)
    p = np.arange(i.size)
    return scipy.sparse.csr_matrix((np.ones(2 * p.size), (np.r_[i, j], np.r_[p, p])),
                                   shape=(k, p.size)), i, j


def _row_sums_sparse(v, u):
    """:func:`brainmodels.rsa._host.row_sums` as sparse products."""
    import scipy.sparse

    v = np.asarray(v, np.float64)
    inc, i, j = _pair_incidence(u.shape[0])
    r = np.asarray(inc @ v.T).T
    if np.any(u != 1.0):  # q_i = sum_j u_j D_ij: the incidence weighted by the other end
        p = np.arange(i.size)
        weighted = scipy.sparse.csr_matrix((np.r_[u[j], u[i]], (np.r_[i, j], np.r_[p, p])),
                                           shape=inc.shape)
        q = np.asarray(weighted @ v.T).T
    else:
        q = r
    return v.sum(axis=1), r, q


def _cov_stats(v, u):
    k = u.shape[0]
    n = v.shape[1]
    big_u, u2 = u.sum(), np.sum(u**2)
    total, rsum, qraw = (_host.row_sums if v.size > _SPARSE_ROW_SUMS else _row_sums_sparse)(v, u)
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


def _double_centered_host(v, sigma_sqrt, center: bool):
    """numpy twin of :func:`_double_centered` (float64), for small stacks."""
    if center:
        v = v - np.add.reduce(v, axis=1, keepdims=True) / v.shape[1]
    k = sigma_sqrt.shape[0]
    i, j = np.triu_indices(k, 1)
    sq = np.zeros((v.shape[0], k, k))
    sq[:, i, j] = v
    sq[:, j, i] = v
    row = np.add.reduce(sq, axis=2) / k
    tot = np.add.reduce(row, axis=1, keepdims=True) / k
    off = (v - row[:, i] - row[:, j] + tot) * ((-0.5 * np.sqrt(2.0)) / (sigma_sqrt[i]
                                                                        * sigma_sqrt[j]))
    diag = -0.5 * (tot - 2 * row) / sigma_sqrt**2
    w = np.concatenate([off, diag], axis=1)
    return w / np.sqrt(np.einsum("ij,ij->i", w, w))[:, None]


#: Below this many RDM entries (both stacks) the whitened comparison builds the double-centred
#: vectors explicitly (a few numpy calls, exact); above it the expansion's BLAS product wins.
SMALL_ENTRIES = 20_000


def whitened_host(a, b, sigma_sqrt, center: bool):
    """The whitened comparison of all pairs on the host: explicit for small stacks, else by
    the expansion (None where it would lose digits: the caller takes the jitted path)."""
    if (a.shape[0] + b.shape[0]) * a.shape[1] <= SMALL_ENTRIES:
        s = np.asarray(sigma_sqrt, np.float64)
        wa = _double_centered_host(np.asarray(a, np.float64), s, center)
        wb = _double_centered_host(np.asarray(b, np.float64), s, center)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (wa @ wb.T).astype(a.dtype, copy=False)
    return whitened_expansion(a, b, sigma_sqrt, center)


def whitened_expansion(a, b, sigma_sqrt, center: bool):
    """The whitened comparison by the expansion above, or None where it would lose digits."""
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
def cov_full(a, b, l_inv, u, center: bool):
    """The exact full-covariance whitened comparison of all row pairs."""
    if center:
        a, b = _center(a), _center(b)
    return _cosine_matrix(_whiten_full(a, l_inv, u), _whiten_full(b, l_inv, u))


def full_sigma(sig: np.ndarray, method: str):
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
