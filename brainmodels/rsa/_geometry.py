"""Comparisons of the second-moment matrices behind RDMs: Bures similarity and metric, and the
negative Riemannian distance (rsatoolbox's ``bures``, ``bures_metric`` and ``neg_riem_dist``).

An RDM of squared distances ``D`` determines its patterns' second moment up to a shift:
the double-centred ``G = -H D H / 2``. The Bures (fidelity) similarity is
``tr sqrt(sqrt(G_a) G_b sqrt(G_a)) / sqrt(tr G_a tr G_b)``, the squared Bures metric
``tr G_a + tr G_b - 2 tr sqrt(sqrt(G_a) G_b sqrt(G_a))``. The Bures formulas are written once
over an array module (numpy on the host, ``jax.numpy`` under ``jit``).

The negative Riemannian distance (Shahbazi et al. 2021) compares the second moments relative
to condition 0 (``G_ij = (d_0i + d_0j - d_ij) / 2``, i, j >= 1) by the affine-invariant
distance ``sqrt(sum log^2 eig(G_a', G_b))`` with ``G_a' = e^t0 G_a + e^t1 P Sigma P'``
minimised over the scalings (t0, t1) with Nelder-Mead from (0, 0), as rsatoolbox does; it
runs on the host (scipy).

References
----------
Bhatia, Jain & Lim (2019), On the Bures-Wasserstein distance between positive definite
matrices, Expo. Math. 37(2), eq. 1. Shahbazi, Shirali, Aghajan & Nili (2021), Using distance on
the Riemannian manifold to compare representations in brain and in models, NeuroImage 239.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize

from brainmodels.rsa._backend import traced
from brainmodels.rsa._utils import n_cond_from_pairs

__all__ = ["bures", "bures_host", "bures_metric", "bures_metric_host", "neg_riem_dist"]


def _second_moments(xp, v):
    """Double-centred -D/2 of each RDM vector: (rdm, K, K)."""
    k = n_cond_from_pairs(v.shape[-1])
    i, j = np.triu_indices(k, 1)
    d = xp.zeros((v.shape[0], k, k), v.dtype)
    if xp is np:
        d[:, i, j] = v
        d[:, j, i] = v
    else:
        d = d.at[:, i, j].set(v).at[:, j, i].set(v)
    g = -0.5 * d
    row = g.mean(axis=1, keepdims=True)
    return g - row - xp.swapaxes(row, 1, 2) + row.mean(axis=2, keepdims=True)


def _sqrt_psd(xp, g):
    w, u = xp.linalg.eigh(g)
    return (u * xp.sqrt(xp.maximum(w, 0.0))[..., None, :]) @ xp.swapaxes(u, -1, -2)


def _fidelity(xp, a, b):
    """(tr sqrt(sqrt(G_a) G_b sqrt(G_a)) for all pairs, tr G_a, tr G_b)."""
    ga, gb = _second_moments(xp, a), _second_moments(xp, b)
    root = _sqrt_psd(xp, ga)  # (m, K, K)
    inner = root[:, None] @ gb[None] @ root[:, None]  # (m, s, K, K)
    inner = 0.5 * (inner + xp.swapaxes(inner, -1, -2))  # symmetric to round-off
    fid = xp.sqrt(xp.maximum(xp.linalg.eigvalsh(inner), 0.0)).sum(axis=-1)
    return fid, xp.trace(ga, axis1=1, axis2=2), xp.trace(gb, axis1=1, axis2=2)


def _bures(xp, a, b):
    fid, ta, tb = _fidelity(xp, a, b)
    return fid / xp.sqrt(ta[:, None] * tb[None, :])


def _bures_metric(xp, a, b):
    fid, ta, tb = _fidelity(xp, a, b)
    return ta[:, None] + tb[None, :] - 2.0 * fid


def _host(fn):
    def run(a, b):
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return fn(np, a64, b64).astype(np.asarray(a).dtype)

    return run


#: Bures similarity of all row pairs, (m, s): JAX (jit) and host (numpy, float64) forms
bures = jax.jit(partial(_bures, jnp))
bures_host = _host(_bures)
#: squared Bures metric of all row pairs, (m, s)
bures_metric = jax.jit(partial(_bures_metric, jnp))
bures_metric_host = _host(_bures_metric)


def _relative_moments(v: np.ndarray) -> np.ndarray:
    """Second moments relative to condition 0: G_ij = (d_0i + d_0j - d_ij) / 2, (rdm, K-1, K-1)."""
    k = n_cond_from_pairs(v.shape[-1])
    i, j = np.triu_indices(k, 1)
    d = np.zeros((v.shape[0], k, k))
    d[:, i, j] = v
    d[:, j, i] = v
    d0 = d[:, 0, 1:]
    return 0.5 * (d0[:, :, None] + d0[:, None, :] - d[:, 1:, 1:])


def neg_riem_dist(a, b, sigma_sqrt=None):
    """Negative Riemannian distance of all row pairs, (m, s), on the host (scipy)."""
    if traced(a, b):
        raise ValueError("method 'neg_riem_dist' runs on the host (a scipy optimisation per "
                         "pair); call compare_rdms outside jax.jit")
    dtype = np.asarray(a).dtype
    ga = _relative_moments(np.asarray(a, np.float64))
    gb = _relative_moments(np.asarray(b, np.float64))
    k = ga.shape[1] + 1
    sigma = np.eye(k) if sigma_sqrt is None else np.diag(np.asarray(sigma_sqrt, np.float64) ** 2)
    p = np.block([-np.ones((k - 1, 1)), np.eye(k - 1)])
    sigma_hat = p @ sigma @ p.T
    out = np.empty((ga.shape[0], gb.shape[0]))
    for r, g1 in enumerate(ga):
        for c, g2 in enumerate(gb):
            def distance(theta, g1=g1, g2=g2):
                w = scipy.linalg.eigvalsh(np.exp(theta[0]) * g1 + np.exp(theta[1]) * sigma_hat,
                                          g2)
                return np.sqrt(np.sum(np.log(w) ** 2))

            out[r, c] = -scipy.optimize.minimize(distance, (0.0, 0.0),
                                                 method="Nelder-Mead").fun
    return out.astype(dtype)
