"""Feature spaces as labelled data for banded ridge: several spaces stacked into one
``(sample, feature)`` DataArray with a ``feature_space`` coordinate (each space's own feature
coordinates kept), the spaces read back from any accepted form, and the random-search
candidates of band weights on the simplex.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainmodels.encoders._validation import check_x


def stack_feature_spaces(spaces: Mapping[str, Any], *, feature_dim: str = "feature"
                         ) -> xr.DataArray:
    """Several feature spaces as one ``(sample, feature)`` DataArray with a ``feature_space``
    coordinate.

    ``spaces`` maps a name to a 2-D array or DataArray ``(sample, <its feature dim>)``. Sample
    coordinates (``stimulus``, ``run``, ...) must agree across the spaces (they travel on);
    each space's own feature coordinates (``rf_x``, ``category`` ...) are kept, filled with
    NaN (numbers) or ``""`` (text) on the other spaces' features, where ``xr.concat`` would
    refuse them. Select one space back with ``X.sel(feature=X.feature_space == name)``.
    """
    if not isinstance(spaces, Mapping) or not spaces:
        raise ValueError("spaces must be a non-empty mapping name -> (sample, feature) array, "
                         f"got {type(spaces).__name__}")
    pieces, sample_coords, dim0, n = [], {}, None, None
    for name, X in spaces.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"feature space names must be non-empty strings, got {name!r}")
        values, t = check_x(X, name=f"spaces[{name!r}]")
        if n is not None and values.shape[0] != n:
            raise ValueError(f"every feature space needs the same samples: spaces[{name!r}] "
                             f"has {values.shape[0]} rows, the first space {n}")
        n = values.shape[0]
        own = {}
        if t is not None:
            d0, d1 = t.dims
            if dim0 is None:
                dim0 = d0
            elif d0 != dim0:
                raise ValueError(f"feature spaces disagree on the sample dimension: {dim0!r} "
                                 f"and {d0!r} (spaces[{name!r}])")
            for cname, c in t.coords.items():
                if c.dims == (d0,):
                    if cname in sample_coords and not np.array_equal(sample_coords[cname],
                                                                     c.values):
                        raise ValueError(f"feature spaces disagree on sample coordinate "
                                         f"{cname!r} (spaces[{name!r}]); align them first")
                    sample_coords[cname] = np.asarray(c.values)
                elif c.dims == (d1,) and cname != d1:
                    own[cname] = np.asarray(c.values)
            if d1 in t.coords:
                own[f"{name}_{d1}" if d1 == feature_dim else d1] = np.asarray(t.coords[d1].values)
        pieces.append((name, values, own))
    coords: dict[str, Any] = {
        k: ((dim0 or "sample",), v) for k, v in sample_coords.items()}
    sizes = [v.shape[1] for _, v, _ in pieces]
    coords["feature_space"] = ((feature_dim,), np.repeat([p[0] for p in pieces], sizes))
    coords[feature_dim] = np.arange(sum(sizes))
    names = {c for _, _, own in pieces for c in own}
    for cname in sorted(names - set(coords)):
        parts = []
        for (_, _values, own) in pieces:
            if cname in own:
                parts.append(own[cname])
            else:
                parts.append(None)
        kinds = {p.dtype.kind for p in parts if p is not None}
        text = bool(kinds & {"U", "S", "O"})
        filled = [p if p is not None else (np.full(s, "", dtype=object) if text
                                           else np.full(s, np.nan))
                  for p, s in zip(parts, sizes, strict=True)]
        coords[cname] = ((feature_dim,), np.concatenate(
            [np.asarray(f, dtype=object) if text else np.asarray(f, dtype=float)
             for f in filled]))
    values = np.concatenate([v for _, v, _ in pieces], axis=1)
    return xr.DataArray(values, dims=(dim0 or "sample", feature_dim), coords=coords,
                        name="features")


def _spaces(Xs: Any, *, where: str) -> tuple[list[str], list[np.ndarray], xr.DataArray | None]:
    """Names, values and (if labelled) a sample template of the feature spaces ``Xs``."""
    if isinstance(Xs, xr.DataArray):
        if Xs.ndim != 2 or "feature_space" not in Xs.coords or \
                Xs.coords["feature_space"].dims != Xs.dims[1:]:
            raise ValueError(
                f"{where}: a DataArray of feature spaces must be (sample, feature) with a "
                "`feature_space` coordinate on its feature dimension (see "
                "stack_feature_spaces); got dims "
                f"{Xs.dims} and coords {list(Xs.coords)}")
        values, t = check_x(Xs, name="Xs")
        labels = np.asarray(Xs.coords["feature_space"].values).astype(str)
        names = list(dict.fromkeys(labels))  # order of first appearance
        for name in names:
            cols = np.flatnonzero(labels == name)
            if np.any(np.diff(cols) != 1):
                raise ValueError(f"{where}: the features of space {name!r} are not contiguous; "
                                 "sort the feature dimension by feature_space")
        return names, [values[:, labels == nm] for nm in names], t
    if isinstance(Xs, Mapping):
        items = list(Xs.items())
    elif isinstance(Xs, Sequence) and not isinstance(Xs, str | bytes):
        items = [(f"space{i}", X) for i, X in enumerate(Xs)]
    else:
        raise TypeError(f"{where}: Xs must be a list of (sample, feature) arrays, a dict name -> "
                        f"array or a DataArray with a `feature_space` coordinate; got "
                        f"{type(Xs).__name__}")
    if not items:
        raise ValueError(f"{where}: Xs holds no feature space")
    names, values, template = [], [], None
    for name, X in items:
        v, t = check_x(X, name=f"Xs[{name!r}]")
        if values and v.shape[0] != values[0].shape[0]:
            raise ValueError(f"{where}: every feature space needs the same samples; "
                             f"Xs[{name!r}] has {v.shape[0]} rows, Xs[{names[0]!r}] "
                             f"{values[0].shape[0]}")
        names.append(str(name))
        values.append(v)
        template = template if template is not None else t
    return names, values, template


def band_candidates(n_spaces: int, n_iter: int, *, concentration: Any = (0.1, 1.0),
                    seed: int = 0) -> np.ndarray:
    """``(n_iter, n_spaces)`` band weights on the simplex: the first uniform, the others
    Dirichlet samples whose concentration cycles through ``concentration`` (small values
    favour one space, 1 is uniform on the simplex), from ``numpy.random.default_rng(seed)``."""
    conc = np.atleast_1d(np.asarray(concentration, dtype=float))
    if conc.ndim != 1 or conc.size == 0 or np.any(conc <= 0) or not np.all(np.isfinite(conc)):
        raise ValueError(f"concentration must be positive numbers, got {concentration!r}")
    if n_spaces < 1 or n_iter < 1:
        raise ValueError(f"need n_spaces >= 1 and n_iter >= 1, got {n_spaces} and {n_iter}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_iter, n_spaces))
    out[0] = 1.0 / n_spaces
    for i in range(1, n_iter):
        out[i] = rng.dirichlet(np.full(n_spaces, conc[(i - 1) % conc.size]))
    return out


