"""The registry of RDM comparison methods: one record per method.

Each :class:`Comparison` holds

* ``weighted`` - the method's one definition, as a function of condition counts
  (:mod:`brainmodels.rsa._weighted`): all-ones counts give the plain comparison (the JAX form
  of :func:`~brainmodels.rsa.compare_rdms` on accelerators and inside a caller's ``jit``),
  resampled counts the bootstrap (:func:`~brainmodels.rsa.bootstrap_compare`);
* ``host`` - an optional accelerator for concrete arrays on CPU (numpy/BLAS, numba), the same
  numbers faster; :mod:`brainmodels.rsa._backend` decides when it runs;
* ``jax`` - a JAX form where the weighted definition does not serve: tau-a's array inversion
  count (its weighted form is a host count); the whitened methods' explicit double centring,
  which takes ``sigma_k`` and stays exact for near-constant RDMs, where the weighted form's
  closed-form least squares loses ~1e-9 (the weighted form serves the bootstrap); methods
  with no weighted form (Bures);
* ``uses_sigma`` - whether ``sigma_k`` applies.

Adding a method is one record (and its functions). Every method is pinned host == JAX ==
rsatoolbox by one parametrised test (``tests/rsa/test_rsa_methods.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels.rsa import _geometry, _host, _kendall, _whitened
from brainmodels.rsa._backend import WORKERS, gram_one_thread, host_pool, on_host
from brainmodels.rsa._utils import n_cond_from_pairs
from brainmodels.rsa._weighted import WEIGHTED

__all__ = ["Comparison", "COMPARISONS", "plain", "weighted_plain"]


class Comparison(NamedTuple):
    """One RDM comparison method (see the module docstring)."""

    name: str
    weighted: Callable | None
    host: Callable | None = None
    jax: Callable | None = None
    uses_sigma: bool = False
    bootstrap: bool = True


# ----------------------------------------------------------------------------- host accelerators


def _centered_ranks(a, b):
    """Ranks minus their mean (n + 1) / 2, which ties do not change, on the host: small
    stacks on the calling thread, from 20,000 entries in row chunks on the pool (numpy's
    sorts release the GIL; the hand-off costs ~50 us)."""
    c = (a.shape[1] + 1) / 2
    a, b = np.asarray(a), np.asarray(b)
    if WORKERS == 1 or a.size + b.size < 20_000 or a.shape[0] + b.shape[0] < 2:
        return _host.average_ranks(a, c), _host.average_ranks(b, c)
    ra, rb = np.empty(a.shape), np.empty(b.shape)
    jobs = []
    for v, r in ((a, ra), (b, rb)):
        edges = np.linspace(0, v.shape[0], min(2 * WORKERS, v.shape[0]) + 1).astype(int)
        jobs += [(v[lo:hi], r[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]

    def job(rows):
        rows[1][:] = _host.average_ranks(rows[0], c)

    list(host_pool().map(job, jobs))
    return ra, rb


#: columns per block of :func:`_gram` (two blocks of 10 RDMs: 0.6 MB, within L2)
GRAM_BLOCK = 4096


def _gram(x, y):
    """x @ y.T. A few long vectors (10 RDMs of 500 conditions: 124,750 pairs) go in blocks of
    columns: BLAS runs such a product ~2x slower in one call than summed over blocks that
    stay in cache (measured by ``benchmarks/profiles.py``, rsa)."""
    n = x.shape[1]
    if not _blocked(x, y):
        return x @ y.T
    out = x[:, :GRAM_BLOCK] @ y[:, :GRAM_BLOCK].T
    for lo in range(GRAM_BLOCK, n, GRAM_BLOCK):
        out += x[:, lo:lo + GRAM_BLOCK] @ y[:, lo:lo + GRAM_BLOCK].T
    return out


def _cosine_host(a, b, sigma_sqrt=None, gram=_gram):
    """Cosines of all row pairs; tiny stacks without BLAS (its first call in a process costs
    ~70 us, more than the whole comparison)."""
    a, b = np.asarray(a), np.asarray(b)
    na = np.sqrt(np.einsum("ij,ij->i", a, a))
    nb = np.sqrt(np.einsum("ij,ij->i", b, b))
    ab = np.einsum("ik,jk->ij", a, b) if a.size + b.size <= 2_000 else gram(a, b)
    if na.all() and nb.all():  # (errstate costs ~5 us, which counts at small RDMs)
        return (ab / (na[:, None] * nb[None, :])).astype(a.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero RDM: NaN, refused upstream
        return (ab / (na[:, None] * nb[None, :])).astype(a.dtype, copy=False)


def _blocked(a, b) -> bool:
    """Whether :func:`_gram` sums ``a @ b.T`` over column blocks (long vectors, few rows)."""
    return a.shape[1] >= 4 * GRAM_BLOCK and a.shape[0] * b.shape[0] <= 4096


def _pearson_blocks(a, b):
    """Pearson of all row pairs of long vectors, centred one column block at a time: the
    centred copies, their product and their norms stay in cache, so the inputs are read
    twice (means, then blocks) instead of ~12 times (2.1x faster at 500 conditions)."""
    ma = np.add.reduce(a, axis=1) / a.shape[1]
    mb = np.add.reduce(b, axis=1) / b.shape[1]
    g = np.zeros((a.shape[0], b.shape[0]))
    na, nb = np.zeros(a.shape[0]), np.zeros(b.shape[0])
    for lo in range(0, a.shape[1], GRAM_BLOCK):
        ac = a[:, lo:lo + GRAM_BLOCK] - ma[:, None]
        bc = b[:, lo:lo + GRAM_BLOCK] - mb[:, None]
        g += ac @ bc.T
        na += np.einsum("ij,ij->i", ac, ac)
        nb += np.einsum("ij,ij->i", bc, bc)
    na, nb = np.sqrt(na), np.sqrt(nb)
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant RDM: NaN, refused upstream
        return (g / (na[:, None] * nb[None, :])).astype(a.dtype, copy=False)


def _pearson_host(a, b, sigma_sqrt=None):
    a, b = np.asarray(a), np.asarray(b)
    if _blocked(a, b):
        return _pearson_blocks(a, b)
    # add.reduce / n: the mean without np.mean's wrapper (~5 us, which counts at small RDMs)
    return _cosine_host(a - np.add.reduce(a, axis=1, keepdims=True) / a.shape[1],
                        b - np.add.reduce(b, axis=1, keepdims=True) / b.shape[1])


def _spearman_host(a, b, sigma_sqrt=None):
    # BLAS on one thread: its threads would spin into the next call's rank pool
    return _cosine_host(*_centered_ranks(a, b), gram=gram_one_thread).astype(
        np.asarray(a).dtype, copy=False)


def _rho_a_host(a, b, sigma_sqrt=None):
    n = a.shape[1]
    ra, rb = _centered_ranks(a, b)
    return (gram_one_thread(ra, rb) * (12.0 / (n**3 - n))).astype(np.asarray(a).dtype,
                                                                  copy=False)


def _whitened_host(center: bool):
    def host(a, b, sigma_sqrt):
        return _whitened.whitened_host(np.asarray(a), np.asarray(b), sigma_sqrt, center)

    return host


def _no_sigma(fn):
    def wrapped(a, b, sigma_sqrt=None):
        del sigma_sqrt
        return fn(a, b)

    return wrapped


#: method name -> :class:`Comparison`
COMPARISONS: dict[str, Comparison] = {c.name: c for c in (
    Comparison("cosine", WEIGHTED["cosine"], _cosine_host),
    Comparison("pearson", WEIGHTED["pearson"], _pearson_host),
    Comparison("corr", WEIGHTED["corr"], _pearson_host),
    Comparison("spearman", WEIGHTED["spearman"], _spearman_host),
    Comparison("rho-a", WEIGHTED["rho-a"], _rho_a_host),
    Comparison("tau-a", _kendall.tau_a_resampled, _no_sigma(_kendall.tau_a),
               _no_sigma(_kendall.tau_a)),
    Comparison("tau-b", None, _no_sigma(_kendall.tau_b), _no_sigma(_kendall.tau_b),
               bootstrap=False),
    Comparison("cosine_cov", WEIGHTED["cosine_cov"], _whitened_host(center=False),
               _whitened.cosine_cov, uses_sigma=True),
    Comparison("corr_cov", WEIGHTED["corr_cov"], _whitened_host(center=True),
               _whitened.corr_cov, uses_sigma=True),
    Comparison("bures", None, _no_sigma(_geometry.bures_host), _no_sigma(_geometry.bures),
               bootstrap=False),
    Comparison("bures_metric", None, _no_sigma(_geometry.bures_metric_host),
               _no_sigma(_geometry.bures_metric), bootstrap=False),
    Comparison("neg_riem_dist", None, _geometry.neg_riem_dist, _geometry.neg_riem_dist,
               uses_sigma=True, bootstrap=False),
)}


@functools.partial(jax.jit, static_argnums=0)
def _weighted_ones(name: str, a, b):
    ones = jnp.ones((1, n_cond_from_pairs(a.shape[1])), a.dtype)
    return WEIGHTED[name](a, b, ones)[0]


def weighted_plain(name: str, a, b):
    """The plain comparison as the weighted definition with all-ones counts (JAX)."""
    return _weighted_ones(name, jnp.asarray(a), jnp.asarray(b))


def plain(name: str, a, b, sigma_sqrt):
    """All (a, b) row-pair comparisons under method ``name``: the host accelerator for
    concrete CPU input, else the JAX form (the record's ``jax``, or the weighted definition
    with all-ones counts)."""
    rec = COMPARISONS[name]
    if rec.host is not None and on_host(a, b):
        out = rec.host(a, b, sigma_sqrt)
        if out is not None:  # None: the host expansion would lose digits here
            return out
    if rec.jax is not None:
        return rec.jax(a, b, sigma_sqrt)
    return weighted_plain(name, a, b)
