"""Every comparison method as a function of weights: the one definition of each method.

A resampled RDM (bootstrap over stimuli) is the original RDM with condition ``i`` drawn
``c_i`` times; pair ``(i, j)`` then stands for ``c_i c_j`` entries. Each method here maps
(models (m, pair), references (s, pair), condition counts (sample, K)) to comparisons
(sample, m, s). All-ones counts give the plain comparison, which is how
:mod:`brainmodels.rsa.methods` evaluates the JAX form of :func:`~brainmodels.rsa.compare_rdms`;
the bootstrap maps the same functions over resampled counts.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels.rsa._utils import to_square_jax

__all__ = ["WEIGHTED"]




def _moments(a, b, w):
    """Weighted sums over pairs for every bootstrap sample: w (sample, pair)."""
    sab = (w[:, None, :] * a[None]).reshape(-1, a.shape[1]) @ b.T  # (sample * model, ref)
    sab = sab.reshape(w.shape[0], a.shape[0], b.shape[0])
    return sab, w @ a.T, w @ b.T, w @ (a * a).T, w @ (b * b).T, jnp.sum(w, axis=1)


def _wcos(a, b, w):
    sab, _, _, saa, sbb, _ = _moments(a, b, w)
    return sab / jnp.sqrt(saa[:, :, None] * sbb[:, None, :])


def _wcorr(a, b, w):
    sab, sa, sb, saa, sbb, sw = _moments(a, b, w)
    sw = sw[:, None]
    cov = sab - sa[:, :, None] * sb[:, None, :] / sw[:, :, None]
    va = saa - sa * sa / sw
    vb = sbb - sb * sb / sw
    return cov / jnp.sqrt(va[:, :, None] * vb[:, None, :])


def _rank_groups(v):
    """Per row: sort order and tie-group index of each sorted entry (independent of weights)."""
    order = jnp.argsort(v, axis=1)
    vs = jnp.take_along_axis(v, order, axis=1)
    new = jnp.concatenate([jnp.ones((v.shape[0], 1), bool), vs[:, 1:] != vs[:, :-1]], axis=1)
    return order, jnp.cumsum(new, axis=1) - 1


def _wranks_one(order, grp, w):
    """Average ranks of each entry in the sample where entry p appears w_p times."""
    n = w.shape[0]
    ws = w[order]
    cum = jnp.cumsum(ws)
    gsum = jax.ops.segment_sum(ws, grp, num_segments=n)
    gend = jax.ops.segment_max(cum, grp, num_segments=n)
    rank = gend[grp] - gsum[grp] + (gsum[grp] + 1) / 2
    return jnp.zeros_like(w).at[order].set(rank)


def _wranks(v, w):
    """(sample, row, pair) weighted average ranks."""
    order, grp = _rank_groups(v)
    per_row = jax.vmap(_wranks_one, in_axes=(0, 0, None))
    return jax.vmap(per_row, in_axes=(None, None, 0))(order, grp, w)


def _wcorr_rows(ra, rb, w):
    """Weighted Pearson between per-sample rows: ra (sample, m, p), rb (sample, s, p)."""
    sw = jnp.sum(w, axis=1)[:, None, None]
    ca = ra - jnp.sum(ra * w[:, None, :], axis=2, keepdims=True) / sw
    cb = rb - jnp.sum(rb * w[:, None, :], axis=2, keepdims=True) / sw
    num = jnp.einsum("bmp,bsp->bms", ca * w[:, None, :], cb)
    na = jnp.sum(ca * ca * w[:, None, :], axis=2)
    nb = jnp.sum(cb * cb * w[:, None, :], axis=2)
    return num, na, nb, sw


def _wspearman(a, b, w):
    num, na, nb, _ = _wcorr_rows(_wranks(a, w), _wranks(b, w), w)
    return num / jnp.sqrt(na[:, :, None] * nb[:, None, :])


def _wrho_a(a, b, w):
    num, _, _, sw = _wcorr_rows(_wranks(a, w), _wranks(b, w), w)
    return num * 12.0 / (sw**3 - sw)


# The whitened comparisons (corr_cov, cosine_cov) of a resampled RDM. rsatoolbox drops the
# pairs of a condition with its own copy and double-centres what is left by least squares:
# with x the RDM entries (times -1/2) and the diagonal (0), rows e_s + e_t for pairs and e_s
# for the diagonal, weights 1/2 and 1, the residual is x - W S (S'WS)^-1 S'x. Copies of a
# condition are exchangeable, so in the original conditions with counts c (C = sum c) the
# normal equations are (1 + C/2 - c_i) b_i + z/2 = -(D c)_i / 2 with z = sum_i c_i b_i:
# solved in closed form (Sherman-Morrison; at most one coefficient can vanish, handled
# apart). The residuals are -(D_ij + b_i + b_j) / 2 for pairs (weight c_i c_j, doubled: the
# off-diagonal entries count twice) and -b_i for the diagonal (weight c_i). All c = 1 gives
# the plain double centring of compare_rdms. corr_cov first removes the weighted mean of
# the entries. Only sigma_k = identity (compare_rdms' default).


def _cov_parts(x, sq, c, center: bool):
    """Per RDM: (D c), the least-squares row effects b, z = c'b and the weighted mean."""
    big_c = jnp.sum(c)
    g = sq @ c
    if center:
        w_total = 0.5 * (big_c**2 - jnp.sum(c**2))
        mu = 0.5 * (g @ c) / w_total
        g = g - mu[:, None] * (big_c - c)[None, :]
    else:
        mu = jnp.zeros(x.shape[0], x.dtype)
    a = 1.0 + 0.5 * big_c - c
    zero = a == 0
    safe = jnp.where(zero, 1.0, a)
    zero_r, safe_r, c_r = zero[None, :], safe[None, :], c[None, :]
    z = jnp.where(jnp.any(zero), -jnp.sum(jnp.where(zero_r, g, 0.0), axis=1),
                  -0.5 * jnp.sum(c_r * g / safe_r, axis=1) / (1.0 + 0.5 * jnp.sum(c / safe)))
    b = jnp.where(zero_r, 0.0, (-0.5 * g - 0.5 * z[:, None]) / safe_r)
    c_zero = jnp.sum(jnp.where(zero, c, 0.0))
    b = jnp.where(zero_r, ((z - b @ c) / jnp.where(c_zero > 0, c_zero, 1.0))[:, None], b)
    return g, b, z, mu


def _cov_inner(pa, pb, x, y, c, w, cross: bool):
    """Inner products of the whitened residual vectors (all pairs, or matching rows)."""
    ga, ba, za, mua = pa
    gb, bb, zb, mub = pb
    if cross:
        dot, outer = (lambda u, v: u @ v.T), (lambda u, v: u[:, None] * v[None, :])
    else:
        dot, outer = (lambda u, v: jnp.sum(u * v, axis=1)), (lambda u, v: u * v)
    big_c = jnp.sum(c)
    w_total = 0.5 * (big_c**2 - jnp.sum(c**2))
    c_r = c[None, :]
    s_dd = dot(x * w[None, :], y) - w_total * outer(mua, mub)
    cb = dot(ba * c_r, bb)
    t = (dot(ga * c_r, bb) + dot(ba * c_r, gb) + big_c * cb + outer(za, zb)
         - 2.0 * dot(ba * c_r**2, bb))
    return 0.5 * (s_dd + t) + cb


def _wcov_one(a, b, c, center: bool):
    i, j = np.triu_indices(c.shape[0], 1)
    w = c[i] * c[j]
    pa, pb = _cov_parts(a, to_square_jax(a), c, center), _cov_parts(b, to_square_jax(b), c, center)
    num = _cov_inner(pa, pb, a, b, c, w, cross=True)
    na = _cov_inner(pa, pa, a, a, c, w, cross=False)
    nb = _cov_inner(pb, pb, b, b, c, w, cross=False)
    # a resampled RDM with no variance left (e.g. two distinct conditions drawn, corr_cov):
    # undefined, NaN (left out of the bootstrap statistics), not a ratio of round-off
    na = jnp.where(na > 1e-10 * jnp.sum(a * a * w[None, :], axis=1), na, jnp.nan)
    nb = jnp.where(nb > 1e-10 * jnp.sum(b * b * w[None, :], axis=1), nb, jnp.nan)
    return num / jnp.sqrt(na[:, None] * nb[None, :])


def _by_pairs(fn):
    """A weighted method of pair weights as a method of condition counts."""
    def method(a, b, counts):
        i, j = np.triu_indices(counts.shape[1], 1)
        if counts.shape[0] == 1:  # the bootstrap's vmapped call: a 1-D gather (the 2-D one
            return fn(a, b, _pair_weights(counts[0], i, j)[None])  # is slower on CPU)
        return fn(a, b, _pair_weights(counts, i, j))

    return method


def _by_counts(center: bool):
    def method(a, b, counts):
        return jax.vmap(lambda c: _wcov_one(a, b, c, center))(counts)

    return method


#: method -> weighted form (models (m, pair), data (s, pair), condition counts (sample, K))
#: -> (sample, m, s), in JAX. tau-a's weighted form counts weighted inversions on the host
#: (:func:`brainmodels.rsa._kendall.tau_a_resampled`).
WEIGHTED: dict[str, Callable] = {
    "cosine": _by_pairs(_wcos), "pearson": _by_pairs(_wcorr), "corr": _by_pairs(_wcorr),
    "spearman": _by_pairs(_wspearman), "rho-a": _by_pairs(_wrho_a),
    "corr_cov": _by_counts(center=True), "cosine_cov": _by_counts(center=False),
}


def _pair_weights(counts, i, j):
    return counts[..., i] * counts[..., j]


