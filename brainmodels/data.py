"""The project's data convention: labelled xarray objects in, out and on disk.

Public functions across brainmodels accept numpy, JAX or xarray input and return xarray where
a result has named axes. This module is the one place that

* names the dimensions (:data:`DIMS`) and validates them,
* turns arrays into labelled :class:`xarray.DataArray` objects and back,
* stamps results with provenance attributes (units, model, parameters, version, seed),
* saves and loads netCDF files (h5netcdf engine) losslessly and atomically.

Dimension names are the same everywhere: ``stimulus`` (a presented condition/image), ``trial``
(a repeat), ``run``, ``time``, ``voxel``, ``neuron``, ``oscillator``, ``feature``, ``layer``,
``roi``; a few more cover model outputs (``alpha``, ``fold``, ``seed``, ``coupling``, ``network``,
``model``, ``subject``, ``delay``, ``channel``, ``height``, ``width``, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainmodels._deps import require
from brainmodels._io import atomic_path

__all__ = [
    "DIMS",
    "as_dataarray",
    "validate_dims",
    "to_numpy",
    "to_jax",
    "unwrap",
    "provenance",
    "save_netcdf",
    "load_netcdf",
]

#: The dimension names of the data convention. Extend per call with ``extra_dims=``.
DIMS: frozenset[str] = frozenset(
    {
        # core neuroscience axes (DESIGN.md)
        "stimulus", "trial", "run", "time", "voxel", "neuron", "oscillator",
        "feature", "layer", "roi",
        # models, sweeps and inference
        "alpha", "fold", "seed", "coupling", "network", "network_a", "network_b", "model",
        "reference", "subject", "sample", "bootstrap", "permutation", "delay", "channel",
        "unit", "condition", "condition_a", "condition_b", "pair", "event", "step", "epoch",
        "component", "space", "class", "param",
        # images and volumes
        "height", "width", "color", "x", "y", "z",
    }
)

_JSON_PREFIX = "__json__:"
_KIND_ATTR = "_brainmodels_kind"


# ----------------------------------------------------------------------------- conversion


def to_numpy(x: Any, *, name: str = "x") -> np.ndarray:
    """Return ``x`` (numpy, JAX, xarray, list) as a numpy array (no copy where possible)."""
    if isinstance(x, xr.DataArray):
        return np.asarray(x.values)
    if isinstance(x, xr.Dataset):
        raise TypeError(f"{name} must be an array or a DataArray, got an xarray.Dataset")
    try:
        return np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from err


def to_jax(x: Any, *, dtype: Any = None, name: str = "x"):
    """Return ``x`` as a JAX array (optionally cast to ``dtype``)."""
    import jax.numpy as jnp

    if isinstance(x, xr.DataArray):
        x = x.values
    arr = jnp.asarray(x)
    return arr if dtype is None else arr.astype(dtype)


def unwrap(x: Any, *, name: str = "x") -> tuple[np.ndarray, xr.DataArray | None]:
    """Split ``x`` into its values and, if it was a DataArray, the DataArray itself.

    Functions that follow "numpy in -> numpy out, xarray in -> xarray out" call this on the way
    in and use the returned template to relabel their output.
    """
    if isinstance(x, xr.DataArray):
        return np.asarray(x.values), x
    return to_numpy(x, name=name), None


# ----------------------------------------------------------------------------- validation


def validate_dims(
    obj: xr.DataArray | xr.Dataset | Sequence[Hashable],
    *,
    required: Iterable[str] = (),
    extra_dims: Iterable[str] = (),
    name: str = "data",
) -> None:
    """Check that every dimension of ``obj`` is a known name and that ``required`` ones exist.

    Raises
    ------
    ValueError
        Naming the unknown or missing dimensions and the known ones.
    """
    dims = tuple(obj.dims) if isinstance(obj, xr.DataArray | xr.Dataset) else tuple(obj)
    allowed = DIMS | frozenset(extra_dims)
    unknown = [d for d in dims if d not in allowed]
    if unknown:
        raise ValueError(
            f"{name} has unknown dimension name(s) {unknown}; expected names from the data "
            f"convention: {sorted(allowed)} (pass extra_dims= to allow others)"
        )
    missing = [d for d in required if d not in dims]
    if missing:
        raise ValueError(f"{name} must have dimension(s) {missing}; it has {list(dims)}")


def as_dataarray(
    x: Any,
    dims: Sequence[str],
    *,
    coords: Mapping[str, Any] | None = None,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    extra_dims: Iterable[str] = (),
) -> xr.DataArray:
    """Label an array with the project's dimension names.

    Parameters
    ----------
    x : array-like or DataArray
        Values. A DataArray is checked (its dims must equal ``dims``) and returned with
        ``coords``/``attrs`` added.
    dims : sequence of str
        One name per axis, from :data:`DIMS` (or ``extra_dims``).
    coords : mapping, optional
        Coordinates, as accepted by :class:`xarray.DataArray`.
    name, attrs : optional
        Variable name and attributes.

    Raises
    ------
    ValueError
        If the rank does not match ``len(dims)`` or a dimension name is unknown.

    Examples
    --------
    >>> da = as_dataarray(np.zeros((3, 2)), ("stimulus", "voxel"))
    >>> da.dims
    ('stimulus', 'voxel')
    """
    dims = tuple(dims)
    validate_dims(dims, extra_dims=extra_dims, name=name or "array")
    if isinstance(x, xr.DataArray):
        if tuple(x.dims) != dims:
            raise ValueError(f"{name or 'array'} has dims {x.dims}, expected {dims}")
        out = x.assign_coords(coords or {})
        if name is not None:
            out = out.rename(name)
        out.attrs.update(attrs or {})
        return out
    values = to_numpy(x, name=name or "array")
    if values.ndim != len(dims):
        raise ValueError(
            f"{name or 'array'} must have {len(dims)} dimension(s) {dims}, got shape {values.shape}"
        )
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=dict(attrs or {}))


def provenance(
    model: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    units: str | Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Attributes that every result carries: model, parameters, seed, units, package version."""
    from brainmodels import __version__

    out: dict[str, Any] = {"brainmodels_version": __version__}
    if model is not None:
        out["model"] = model
    if params is not None:
        out["params"] = {k: _jsonable(v) for k, v in params.items()}
    if seed is not None:
        out["seed"] = int(seed)
    if units is not None:
        out["units"] = units if isinstance(units, str) else dict(units)
    out.update(extra)
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "shape") and hasattr(v, "tolist"):
        arr = np.asarray(v)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(v, tuple):
        return [_jsonable(i) for i in v]
    if isinstance(v, list):
        return [_jsonable(i) for i in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(i) for k, i in v.items()}
    return v


# ----------------------------------------------------------------------------- netCDF I/O


def _encode_attrs(attrs: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bool | np.bool_) or value is None or isinstance(
            value, Mapping | list | tuple
        ):
            out[key] = _JSON_PREFIX + json.dumps(_jsonable(value))
        elif isinstance(value, str | int | float | np.integer | np.floating):
            out[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim <= 1:
            out[key] = value
        else:
            try:
                out[key] = _JSON_PREFIX + json.dumps(_jsonable(value))
            except TypeError as err:
                raise TypeError(
                    f"attribute {key!r} of {where} has type {type(value).__name__}, which "
                    "cannot be stored in netCDF; use str, numbers, lists or dicts"
                ) from err
    return out


def _decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as saved; ``__json__:`` ones parsed as JSON only (never evaluated as code).

    A value that is not valid JSON comes back as the plain string.
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith(_JSON_PREFIX):
            try:
                value = json.loads(value[len(_JSON_PREFIX):])
            except (ValueError, RecursionError):
                pass
        out[key] = value
    return out


def _check_storable(ds: xr.Dataset) -> None:
    for name, var in ds.variables.items():
        if var.dtype.kind == "c":
            raise TypeError(
                f"variable {name!r} is complex ({var.dtype}); netCDF cannot store complex "
                "numbers: save its real and imaginary parts (or abs and angle) separately"
            )


def save_netcdf(obj: xr.Dataset | xr.DataArray, path: str | os.PathLike, *,
                compress: bool = True) -> Path:
    """Save a Dataset or DataArray to netCDF (h5netcdf engine), atomically and losslessly.

    Attributes that netCDF cannot hold natively (dicts, lists, booleans, None) are stored as
    JSON strings and restored by :func:`load_netcdf`. dtypes (float32 stays float32) and
    string coordinates are preserved.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
    path : path-like
        Destination; written through a temporary file and renamed, so a failure leaves no
        half file.
    compress : bool
        Compress numeric variables losslessly (HDF5 byte shuffle + zlib level
        :data:`COMPRESSION_LEVEL`), which any netCDF4/HDF5 reader decodes transparently. Maps
        that are zero outside a region shrink ~10x; noise-like float32 data by ~15 %. Pass
        False for the fastest write.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, xarray as xr
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> da = xr.DataArray(np.zeros((1000, 500), np.float32), dims=("stimulus", "voxel"))
    >>> small = save_netcdf(da, folder / "zeros.nc")
    >>> raw = save_netcdf(da, folder / "zeros_raw.nc", compress=False)
    >>> small.stat().st_size < raw.stat().st_size / 10
    True
    >>> load_netcdf(small).dtype
    dtype('float32')
    """
    if isinstance(obj, xr.DataArray):
        name = obj.name if obj.name is not None else "__data__"
        ds = obj.to_dataset(name=name)
        ds.attrs = {_KIND_ATTR: "DataArray", "_brainmodels_name": str(name)}
        ds[name].attrs = dict(obj.attrs)
    elif isinstance(obj, xr.Dataset):
        ds = obj.copy(deep=False)
        ds.attrs = {**obj.attrs, _KIND_ATTR: "Dataset"}
    else:
        raise TypeError(f"obj must be an xarray Dataset or DataArray, got {type(obj).__name__}")
    _check_storable(ds)
    ds.attrs = _encode_attrs(ds.attrs, "the dataset")
    for name in ds.variables:
        ds[name].attrs = _encode_attrs(ds[name].attrs, f"variable {name!r}")
    _netcdf_backend()
    encoding = _compression(ds) if compress else None
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return Path(path)


def _netcdf_backend() -> None:
    for module in ("h5netcdf", "h5py"):
        require(module, purpose="reading and writing netCDF files (xarray's h5netcdf engine)")


#: zlib level of :func:`save_netcdf` (4: within 1 % of level 9's size on the demo's betas at half its time)
COMPRESSION_LEVEL = 4


def _compression(ds: xr.Dataset) -> dict[Hashable, dict[str, Any]]:
    """Shuffle + zlib for every numeric or boolean variable of more than one element."""
    return {
        name: {"zlib": True, "complevel": COMPRESSION_LEVEL, "shuffle": True}
        for name, var in ds.variables.items()
        if var.size > 1 and var.dtype.kind in "biuf"
    }


def load_netcdf(path: str | os.PathLike) -> xr.Dataset | xr.DataArray:
    """Load a file written by :func:`save_netcdf` fully into memory (the file is closed).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a readable netCDF file (truncated, corrupted, another format), naming it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such netCDF file: {path}")
    _netcdf_backend()
    try:
        ds = xr.load_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as err:  # truncated, corrupted or not netCDF/HDF5 at all
        raise ValueError(f"{path} is not a readable netCDF file: {err}") from err
    ds.attrs = _decode_attrs(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = _decode_attrs(ds[name].attrs)
        ds[name].encoding = {}
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str) if name in ds.data_vars else ds[name]
    kind = ds.attrs.pop(_KIND_ATTR, "Dataset")
    if kind == "DataArray":
        name = ds.attrs.pop("_brainmodels_name")
        da = ds[name]
        if name == "__data__":
            da = da.rename(None)
        return da
    return ds
