"""Input checks shared by the encoders: clear errors naming the argument and the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainmodels.data import unwrap

__all__ = ["check_xy", "constant_columns", "format_indices", "sample_dim", "voxel_coords"]


def format_indices(idx: np.ndarray, limit: int = 10) -> str:
    """``[3, 17, 90]`` or ``[3, 17, ... (120 in all)]`` for error messages."""
    idx = np.asarray(idx).ravel()
    head = ", ".join(str(int(i)) for i in idx[:limit])
    return f"[{head}]" if idx.size <= limit else f"[{head}, ... ({idx.size} in all)]"


def sample_dim(da: xr.DataArray | None, default: str = "sample") -> str:
    """Name of the first (sample) axis of a DataArray, or ``default``."""
    return default if da is None else str(da.dims[0])


def voxel_coords(da: xr.DataArray | None) -> dict[str, Any]:
    """The coordinates of ``da`` that live on its ``voxel`` dimension (kept on outputs)."""
    if da is None or "voxel" not in da.dims:
        return {}
    return {
        name: (("voxel",), np.asarray(c.values))
        for name, c in da.coords.items()
        if c.dims == ("voxel",)
    }


def _check_finite(values: np.ndarray, name: str, axis_name: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0)) if values.ndim == 2 else np.flatnonzero(bad)
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite value(s) in {axis_name} "
            f"{format_indices(cols)}; remove or impute them before fitting"
        )


def _array(X: Any, name: str, *, ensure_2d: bool) -> np.ndarray:
    """scikit-learn's own checks for a plain array (sparse, complex, object, empty and 1-D
    input get the errors its estimator checks expect); NaN is left to our fuller message.
    A plain non-empty real ndarray of the right rank passes as it is, as scikit-learn would
    pass it, without the check: its first call in a process scans every installed package's
    entry points (narwhals' plugins, ~14 ms), more than a whole small fit."""
    if (type(X) is np.ndarray and X.dtype.kind in "fiu" and X.size
            and X.ndim == (2 if ensure_2d else X.ndim) and X.ndim in (1, 2)):
        return X
    from sklearn.utils.validation import check_array

    return check_array(X, accept_sparse=False, dtype="numeric", ensure_all_finite=False,
                       ensure_2d=ensure_2d, input_name=name)


def check_x(X: Any, *, name: str = "X") -> tuple[np.ndarray, xr.DataArray | None]:
    """A finite 2-D (sample, feature) array."""
    ndim = getattr(X, "ndim", None)
    if ndim is not None and ndim != 2:  # before scikit-learn's check, which prints the array
        raise ValueError(f"{name} must be 2-D (sample, feature), got shape {np.shape(X)}; "
                         f"Reshape your data with {name}.reshape(-1, 1) for a single feature")
    if not isinstance(X, xr.DataArray):
        X = _array(X, name, ensure_2d=True)
    values, template = unwrap(X, name=name)
    if values.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (sample, feature), got shape {values.shape}"
        )
    if values.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
    _check_finite(values, name, "feature column(s)")
    return values, template


def check_xy(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray, xr.DataArray | None,
                                      xr.DataArray | None, bool]:
    """Validate a design ``X (sample, feature)`` and targets ``Y (sample, voxel)`` or ``(sample,)``.

    Returns ``(X, Y2d, X_template, Y_template, y_was_1d)``; a DataArray ``Y`` whose first
    dimension is ``voxel`` is transposed to ``(sample, voxel)``.
    """
    if Y is None:
        raise ValueError("RidgeEncoder requires y to be passed, but the target y is None")
    Xv, Xt = check_x(X)
    if isinstance(Y, xr.DataArray) and Y.ndim == 2 and Y.dims[0] == "voxel":
        Y = Y.transpose(Y.dims[1], "voxel")
    if not isinstance(Y, xr.DataArray):
        Y = _array(Y, "Y", ensure_2d=False)
    Yv, Yt = unwrap(Y, name="Y")
    if Yv.ndim not in (1, 2):
        raise ValueError(f"Y must be 1-D (sample,) or 2-D (sample, voxel), got shape {Yv.shape}")
    if Yv.dtype.kind not in "fiub":
        raise TypeError(f"Y must be numeric, got dtype {Yv.dtype}")
    if Xv.shape[0] != Yv.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of samples (rows); X has {Xv.shape[0]}, "
            f"Y has {Yv.shape[0]}"
        )
    y1d = Yv.ndim == 1
    Y2 = Yv[:, None] if y1d else Yv
    _check_finite(Y2, "Y", "voxel(s)")
    if Xv.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to fit, got {Xv.shape[0]} sample")
    return Xv, Y2, Xt, Yt, y1d


def constant_columns(values: np.ndarray) -> np.ndarray:
    """Indices of the columns of a 2-D array with zero variance (all values equal)."""
    return np.flatnonzero(np.ptp(values, axis=0) == 0)
