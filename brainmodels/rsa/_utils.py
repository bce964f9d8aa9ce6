"""Private helpers shared by the RSA modules: RDM layouts, input checks, labelling."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels.data import unwrap

#: Dimension names of a square RDM.
RDM_DIMS = ("condition_a", "condition_b")


def n_cond_from_pairs(n_pairs: int, *, name: str = "rdm") -> int:
    """Number of conditions K of a condensed RDM with ``K (K - 1) / 2`` entries."""
    n_pairs = int(n_pairs)
    k = (1 + math.isqrt(1 + 8 * n_pairs)) // 2 if n_pairs >= 0 else 0
    if k * (k - 1) // 2 != n_pairs:
        raise ValueError(
            f"{name} has {n_pairs} entries, which is not K (K - 1) / 2 for any K; pass a square "
            "RDM or the upper triangle (row-major, as rsatoolbox and scipy's squareform store it)"
        )
    return k


def triu_indices(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major upper-triangle indices (the order of rsatoolbox and ``squareform``)."""
    return np.triu_indices(k, 1)


def to_condensed(square: np.ndarray) -> np.ndarray:
    """(..., K, K) -> (..., K (K - 1) / 2)."""
    i, j = triu_indices(square.shape[-1])
    return square[..., i, j]


def to_square(vec: np.ndarray) -> np.ndarray:
    """(..., K (K - 1) / 2) -> (..., K, K) symmetric with a zero diagonal."""
    k = n_cond_from_pairs(vec.shape[-1])
    i, j = triu_indices(k)
    out = np.zeros((*vec.shape[:-1], k, k), dtype=vec.dtype)
    out[..., i, j] = vec
    out[..., j, i] = vec
    return out


def to_square_jax(vec):
    """:func:`to_square` for a JAX stack of condensed RDMs ``(m, K (K - 1) / 2)`` (traceable)."""
    k = n_cond_from_pairs(vec.shape[-1])
    i, j = triu_indices(k)
    return jnp.zeros((vec.shape[0], k, k), vec.dtype).at[:, i, j].set(vec).at[:, j, i].set(vec)


#: Relative tolerance of the square-RDM checks: |D - D^T| and |diag D| at most this times
#: max |D|. 1e-5 is ~84 float32 eps: round-off of any float32 RDM passes, while a similarity
#: matrix (diagonal 1) or a hand-edited asymmetric matrix does not.
SQUARE_RTOL = 1e-5

#: Accepted values of ``layout=``.
LAYOUTS = ("square", "condensed")


def _check_square(values: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the failed check unless ``values`` are (..., K, K) RDMs."""
    shape = values.shape
    if values.ndim < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{name} was given as square RDMs (..., K, K) but has shape {shape}")
    scale = max(float(np.max(np.abs(values))) if values.size else 0.0, 1e-300)
    asym = float(np.max(np.abs(values - np.swapaxes(values, -1, -2)))) / scale
    diag = np.diagonal(values, axis1=-2, axis2=-1)
    off = float(np.max(np.abs(diag))) / scale
    hint = ("; if it holds stacked condensed RDMs (one upper triangle per row), pass "
            "layout='condensed' or a DataArray whose last dim is 'pair'")
    if off > SQUARE_RTOL:
        similarity = bool(np.allclose(diag, diag.flat[0])) and float(diag.flat[0]) != 0.0
        raise ValueError(
            f"{name} of shape {shape} is read as square RDMs, but its diagonal is not zero "
            f"(max |diag| = {off:.3g} of max |entry|, tolerance {SQUARE_RTOL:g})"
            + ("; it looks like a similarity matrix (e.g. np.corrcoef): pass 1 - similarity"
               if similarity else "") + hint)
    if asym > SQUARE_RTOL:
        raise ValueError(
            f"{name} of shape {shape} is read as square RDMs, but it is not symmetric "
            f"(max |D - D^T| = {asym:.3g} of max |entry|, tolerance {SQUARE_RTOL:g}); "
            f"symmetrise it ((D + D.T) / 2) if the asymmetry is noise" + hint)


def _is_square(values: np.ndarray, template, layout: str | None, name: str) -> bool:
    """The layout: explicit (``layout=`` or a DataArray's dims), else square iff the last two
    axes are equal. Never guessed from the values: a wrong reading is an error, not a number."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)} or None, got {layout!r}")
    labelled = None
    if template is not None and tuple(template.dims[-2:]) == RDM_DIMS:
        labelled = "square"
    elif template is not None and template.dims[-1] == "pair":
        labelled = "condensed"
    if layout is not None and labelled is not None and layout != labelled:
        raise ValueError(f"layout={layout!r} contradicts {name}'s dims {template.dims}")
    layout = layout or labelled
    if layout is None:
        layout = "square" if values.ndim >= 2 and values.shape[-1] == values.shape[-2] else (
            "condensed")
    return layout == "square"


def rdm_vectors(x: Any, *, name: str, layout: str | None = None
                ) -> tuple[np.ndarray, tuple[int, ...], tuple[str, ...] | None, dict[str, Any]]:
    """Normalise RDM input to condensed vectors.

    ``layout`` is ``"square"`` ((..., K, K)), ``"condensed"`` ((..., K (K - 1) / 2)) or None:
    a DataArray's dims decide (``condition_a, condition_b`` or a last dim ``pair``), else an
    input whose last two axes are equal is square. Square input must be symmetric with a zero
    diagonal to :data:`SQUARE_RTOL`.

    Returns ``(vectors, lead_shape, lead_dims, lead_coords)``: vectors has shape
    ``(prod(lead_shape), n_pairs)``; ``lead_dims`` are the names of the leading axes when ``x``
    was a DataArray (else None).

    Raises
    ------
    ValueError
        For NaN or infinite entries, fewer than 3 conditions, or a malformed layout.
    """
    values, template = unwrap(x, name=name)
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {values.dtype}")
    if values.ndim == 0:
        raise ValueError(f"{name} must be an RDM (square or condensed), got a scalar")
    square = _is_square(values, template, layout, name)
    # a finite sum is the cheap proof (small RDMs are called in loops); else look closer
    if not (values.dtype.kind in "iub" or math.isfinite(np.add.reduce(values, axis=None))
            or np.isfinite(values).all()):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(
            f"{name} contains {bad} NaN/infinite entries; RDM comparisons need finite "
            "dissimilarities (drop the conditions with missing data first)"
        )
    if square:
        _check_square(values, name)
    vec = to_condensed(values) if square else values
    n_lead = values.ndim - (2 if square else 1)
    lead_shape = values.shape[:n_lead]
    k = n_cond_from_pairs(vec.shape[-1], name=f"{name} (shape {values.shape}, read as condensed)"
                          if not square else name)
    if k < 3:
        raise ValueError(f"{name} has {k} conditions; RDM comparisons need at least 3")
    lead_dims = tuple(template.dims[:n_lead]) if template is not None else None
    lead_coords = {}
    if template is not None:
        for d in lead_dims:
            if d in template.coords:
                lead_coords[d] = template.coords[d].values
    return vec.reshape(-1, vec.shape[-1]), lead_shape, lead_dims, lead_coords


def label_pairs_matrix(values: np.ndarray, a_info, b_info, attrs: dict[str, Any]):
    """Shape and label an (m, r) matrix of comparisons following the inputs' leading axes.

    numpy inputs: scalars for single RDMs, arrays otherwise. DataArray inputs: a DataArray with
    A's leading dims followed by B's (B's names get a ``_b`` suffix... unless distinct).
    """
    a_shape, a_dims, a_coords = a_info
    b_shape, b_dims, b_coords = b_info
    out = values.reshape((*a_shape, *b_shape))
    if a_dims is None and b_dims is None:
        return out.item() if out.ndim == 0 else out
    a_dims = a_dims if a_dims is not None else tuple(f"model{i or ''}" for i in range(len(a_shape)))
    b_dims = b_dims if b_dims is not None else tuple(
        f"reference{i or ''}" for i in range(len(b_shape)))
    b_dims = tuple(d if d not in a_dims else ("reference" if d in ("model",) else f"{d}_b")
                   for d in b_dims)
    coords = {**a_coords}
    for old, new in zip(b_info[1] or (), b_dims, strict=False):
        if old in b_coords:
            coords[new] = b_coords[old]
    return xr.DataArray(out, dims=(*a_dims, *b_dims), coords=coords, attrs=attrs)
