"""FIR delays and per-run z-scoring for BOLD time series.

The BOLD response lags the stimulus by a few seconds. Instead of assuming a haemodynamic
response function, a finite-impulse-response (FIR) model gives every feature one weight per
delay: the design at time ``t`` holds the features at ``t - d`` for each ``d`` in ``delays``
(in samples, i.e. TRs). Delays never cross run boundaries (the first ``d`` samples of a run get
zeros).

References
----------
Huth, A. G., de Heer, W. A., Griffiths, T. L., Theunissen, F. E. & Gallant, J. L. (2016).
Natural speech reveals the semantic maps that tile human cerebral cortex. Nature 532
(FIR delays of 1-4 TRs at TR = 2 s; per-run z-scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike, Float
from brainmodels.data import provenance, unwrap
from brainmodels.encoders._validation import check_x

__all__ = ["Delayer", "reshape_by_delays", "zscore_runs"]


def _runs_of(runs: ArrayLike | None, template: xr.DataArray | None, n: int) -> np.ndarray:
    if runs is None and template is not None and "run" in template.coords \
            and template.coords["run"].dims == template.dims[:1]:
        runs = template.coords["run"].values
    if runs is None:
        return np.zeros(n, dtype=int)
    runs = np.asarray(runs)
    if runs.shape != (n,):
        raise ValueError(f"runs must have one entry per sample, shape ({n},); got shape "
                         f"{runs.shape}")
    return runs


def _run_slices(runs: np.ndarray) -> list[np.ndarray]:
    """Sample indices of every run (runs need not be contiguous; order within a run is kept)."""
    return [np.flatnonzero(runs == r) for r in np.unique(runs)]


def zscore_runs(X: Float[ArrayLike, "time feature"], runs: ArrayLike | None = None) -> Any:
    """Z-score every column within each run (mean 0, sd 1 over the run's samples).

    Columns that are constant within a run become 0 there. ``runs`` defaults to a ``run``
    coordinate of a DataArray, else one run. Numpy in -> numpy out, DataArray in -> DataArray.
    """
    values, template = unwrap(X, name="X")
    if values.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D or 2-D (time, feature), got shape {values.shape}")
    runs = _runs_of(runs, template, values.shape[0])
    out = np.empty(values.shape, dtype=np.result_type(values.dtype, np.float32))
    for idx in _run_slices(runs):
        block = values[idx].astype(np.float64)
        sd = block.std(axis=0)
        out[idx] = (block - block.mean(axis=0)) / np.where(sd > 0, sd, 1.0) * (sd > 0)
    return out if template is None else template.copy(data=out)


def reshape_by_delays(coef: Float[ArrayLike, "feature ..."], n_delays: int) -> Any:
    """Inverse of the delay stacking: ``(delay * feature, ...)`` -> ``(delay, feature, ...)``.

    A DataArray ``(feature, voxel)`` from a delayed design becomes ``(delay, feature, voxel)``.
    """
    values, template = unwrap(coef, name="coef")
    if values.shape[0] % n_delays:
        raise ValueError(f"coef has {values.shape[0]} rows, not a multiple of n_delays={n_delays}")
    out = values.reshape(n_delays, values.shape[0] // n_delays, *values.shape[1:])
    if template is None:
        return out
    coords = {k: c for k, c in template.coords.items()
              if template.dims[0] not in c.dims}
    return xr.DataArray(out, dims=("delay", "feature", *template.dims[1:]), coords=coords,
                        name=template.name, attrs=template.attrs)


class Delayer:
    """Stack delayed copies of the features: ``[X(t - d1), X(t - d2), ...]`` (FIR model).

    Parameters
    ----------
    delays : sequence of int
        Delays in samples (TRs); may include 0 or negative values (features ahead in time).

    Examples
    --------
    >>> X = np.arange(6.0)[:, None]
    >>> Delayer(delays=(0, 1)).fit_transform(X)[:, 1]
    array([0., 0., 1., 2., 3., 4.])
    """

    def __init__(self, delays: Sequence[int] = (1, 2, 3, 4)):
        self.delays = delays

    def _delays(self) -> np.ndarray:
        d = np.asarray(self.delays)
        if d.ndim != 1 or d.size == 0 or d.dtype.kind not in "iu":
            raise ValueError(f"delays must be a non-empty sequence of ints, got {self.delays!r}")
        return d

    def fit(self, X: Float[ArrayLike, "time feature"], y: Any = None,
            runs: ArrayLike | None = None) -> Delayer:
        """Record the number of features (no parameters are learned)."""
        self._delays()
        self.n_features_in_ = check_x(X)[0].shape[1]
        return self

    def transform(self, X: Float[ArrayLike, "time feature"], runs: ArrayLike | None = None) -> Any:
        """Delayed design ``(time, delay * feature)``, delay-major (all features of delay 1...).

        Delays stay within runs: ``runs`` (or a ``run`` coordinate of ``X``) marks them.
        """
        delays = self._delays()
        values, template = check_x(X)
        if hasattr(self, "n_features_in_") and values.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {values.shape[1]} features, but the Delayer was fitted with "
                             f"{self.n_features_in_}")
        runs = _runs_of(runs, template, values.shape[0])
        n, p = values.shape
        out = np.zeros((n, delays.size * p), dtype=values.dtype)
        for idx in _run_slices(runs):
            block = values[idx]
            for j, d in enumerate(delays):
                cols = slice(j * p, (j + 1) * p)
                if d >= 0 and d < idx.size:
                    out[idx[d:], cols] = block[: idx.size - d]
                elif d < 0 and -d < idx.size:
                    out[idx[: d], cols] = block[-d:]
        return out if template is None else self._label(out, template, delays)

    def fit_transform(self, X: Float[ArrayLike, "time feature"], y: Any = None,
                      runs: ArrayLike | None = None) -> Any:
        return self.fit(X, runs=runs).transform(X, runs=runs)

    def reshape_by_delays(self, coef: Float[ArrayLike, "feature ..."]) -> Any:
        """``(delay * feature, voxel)`` coefficients -> ``(delay, feature, voxel)``."""
        return reshape_by_delays(coef, self._delays().size)

    @staticmethod
    def _label(out: np.ndarray, template: xr.DataArray, delays: np.ndarray) -> xr.DataArray:
        dim, fdim = template.dims
        p = template.shape[1]
        feat = template.coords[fdim].values if fdim in template.coords else np.arange(p)
        coords = {k: c for k, c in template.coords.items() if c.dims == (dim,)}
        coords["delay"] = ("feature", np.repeat(delays, p))
        coords["source_feature"] = ("feature", np.tile(feat, delays.size))
        return xr.DataArray(out, dims=(dim, "feature"), coords=coords, name=template.name,
                            attrs={**template.attrs, **provenance("Delayer",
                                                                  params={"delays": delays})})
