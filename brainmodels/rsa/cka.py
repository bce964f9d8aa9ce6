"""Centered kernel alignment (CKA), linear and RBF, biased and debiased.

References
----------
Kornblith, Norouzi, Lee & Hinton (2019), "Similarity of neural network representations
revisited", ICML (eqs. 3-4: HSIC and CKA; section 3: RBF bandwidth as a fraction of the median
distance).
Song et al. (2012), "Feature selection via dependence maximization", JMLR 13 (eq. 5: the
unbiased HSIC estimator); Székely & Rizzo (2014), Ann. Stat. 42(6) (U-centering).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import ArrayLike
from brainmodels.data import provenance, unwrap
from brainmodels.rsa._utils import label_pairs_matrix

__all__ = ["cka", "CKA_KERNELS"]


def _gram_linear(x, bandwidth):
    del bandwidth
    return x @ x.T


def _gram_rbf(x, bandwidth):
    sq = jnp.sum(x * x, axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    n = x.shape[0]
    off = d2[~np.eye(n, dtype=bool)]
    med = jnp.median(jnp.concatenate([off, jnp.zeros(n, d2.dtype)]))
    return jnp.exp(-d2 / (2 * bandwidth**2 * med))


#: kernel name -> Gram-matrix function (x (n, p), bandwidth) -> (n, n)
CKA_KERNELS: dict[str, Callable] = {"linear": _gram_linear, "rbf": _gram_rbf}


def _center_gram(k):
    return k - jnp.mean(k, 0, keepdims=True) - jnp.mean(k, 1, keepdims=True) + jnp.mean(k)


def _u_center_gram(k):
    """U-centering (Székely & Rizzo 2014): zero diagonal, unbiased HSIC as an inner product."""
    n = k.shape[0]
    eye = jnp.eye(n, dtype=bool)
    k = jnp.where(eye, 0.0, k)
    row = jnp.sum(k, axis=0) / (n - 2)
    row = row - jnp.sum(row) / (2 * (n - 1))
    return jnp.where(eye, 0.0, k - row[:, None] - row[None, :])


def _centered_grams(xs, kernel: str, debiased: bool, bandwidth):
    gram = jax.vmap(
        lambda x: CKA_KERNELS[kernel](x - jnp.mean(x, 0, keepdims=True), bandwidth))(xs)
    return jax.vmap(_u_center_gram if debiased else _center_gram)(gram)


def _cka_core(xs, ys, kernel: str, debiased: bool, bandwidth):
    gx = _centered_grams(xs, kernel, debiased, bandwidth).reshape(xs.shape[0], -1)
    gy = _centered_grams(ys, kernel, debiased, bandwidth).reshape(ys.shape[0], -1)
    hxy = gx @ gy.T
    hxx = jnp.sum(gx * gx, axis=1)
    hyy = jnp.sum(gy * gy, axis=1)
    return hxy / jnp.sqrt(hxx[:, None] * hyy[None, :])


_cka_jit = jax.jit(_cka_core, static_argnums=(2, 3))


def _stack(x, name: str):
    template = None
    if isinstance(x, list | tuple):
        shapes = {np.shape(v)[0] for v in x}
        if len(shapes) != 1:
            raise ValueError(f"{name}: all representations need the same number of stimuli, got "
                             f"{sorted(shapes)}")
        widths = [np.shape(v)[1] for v in x]
        width = max(widths)
        values = np.stack([np.pad(np.asarray(v, float), ((0, 0), (0, width - np.shape(v)[1])))
                           for v in x])
    else:
        values, template = unwrap(x, name=name)
    if values.ndim < 2:
        raise ValueError(f"{name} must have shape (..., stimulus, unit), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN/infinite values")
    lead = values.shape[:-2]
    dims = tuple(template.dims[:-2]) if template is not None else None
    coords = {}
    if template is not None:
        coords = {d: template.coords[d].values for d in dims if d in template.coords}
    return values.reshape(-1, *values.shape[-2:]), (lead, dims, coords)


def cka(
    X: ArrayLike,
    Y: ArrayLike,
    kernel: str = "linear",
    *,
    debiased: bool = False,
    bandwidth: float = 1.0,
) -> Any:
    """Centered kernel alignment between representations of the same stimuli.

    Parameters
    ----------
    X, Y : array-like or DataArray, shape (..., stimulus, unit)
        Representations (rows: stimuli). Leading axes stack representations (layers,
        networks); a list of arrays with different unit counts is also accepted.
    kernel : {"linear", "rbf"}
        Linear CKA, or an RBF kernel of width ``bandwidth`` times the median pairwise
        distance (Kornblith et al. 2019).
    debiased : bool
        Use the unbiased HSIC estimator (U-centred Gram matrices; Song et al. 2012), which
        removes the upward bias of CKA when units outnumber stimuli.
    bandwidth : float
        RBF width as a fraction of the median distance between stimuli.

    Returns
    -------
    float, ndarray or DataArray
        CKA in [0, 1] (debiased CKA can be slightly negative): a float for two single
        representations, else the (X stack, Y stack) matrix.

    Raises
    ------
    ValueError
        Unknown kernel; different numbers of stimuli; fewer than 4 stimuli for the debiased
        estimator; NaN input; a constant representation.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((50, 8))
    >>> round(float(cka(X, 3 * X)), 6)
    1.0
    """
    if kernel not in CKA_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(CKA_KERNELS)}, got {kernel!r}")
    xs, x_info = _stack(X, "X")
    ys, y_info = _stack(Y, "Y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"X and Y must describe the same stimuli: X has {xs.shape[1]} rows, "
                         f"Y has {ys.shape[1]}")
    n = xs.shape[1]
    if n < (4 if debiased else 2):
        raise ValueError(f"cka needs at least {4 if debiased else 2} stimuli, got {n}")
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    dtype = jnp.result_type(float)
    out = np.asarray(_cka_jit(jnp.asarray(xs, dtype), jnp.asarray(ys, dtype), kernel, debiased,
                              jnp.asarray(bandwidth, dtype)))
    if not np.all(np.isfinite(out)):
        raise ValueError("cka is undefined for a constant representation (zero variance)")
    attrs = provenance("cka", params={"kernel": kernel, "debiased": debiased,
                                      "bandwidth": bandwidth}, units="similarity")
    return label_pairs_matrix(out, x_info, y_info, attrs)
