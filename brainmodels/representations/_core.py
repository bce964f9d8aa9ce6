"""The representations registry: model type -> function giving its layers for some stimuli.

Every adapter returns ``{layer: (array, dims)}`` with ``dims`` ending in the feature axis;
:func:`representations` labels them in the data convention (``stimulus`` first, optional
``sample`` and ``time``, then ``feature_<layer>``) and stamps provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.data import provenance, to_numpy

__all__ = ["representations", "register", "layer_matrix", "layers_of", "as_images"]

#: type -> adapter(model, images, key, **options) -> (layers, info)
_ADAPTERS: dict[type, Callable] = {}

_ORDER = ("sample", "time")


def register(kind: type) -> Callable:
    """Register ``fn(model, images, *, key, **options) -> (layers, info)`` for ``kind``.

    ``layers`` maps a layer name to ``(array, dims)``: the array's first axis is the stimulus,
    its last the feature; ``dims`` names the axes between them (``"sample"``, ``"time"``).
    ``info`` is a dict of parameters recorded in the result's attrs (``stochastic`` says
    whether the model draws random numbers).
    """

    def wrap(fn: Callable) -> Callable:
        _ADAPTERS[kind] = fn
        return fn

    return wrap


def _adapter(model: Any) -> Callable:
    for kind in type(model).__mro__:
        if kind in _ADAPTERS:
            return _ADAPTERS[kind]
    known = sorted(k.__name__ for k in _ADAPTERS)
    raise TypeError(f"model must be one of {known} (or a mapping from layer names to "
                    f"(stimulus, ...) arrays), got {type(model).__name__}")


def as_images(stimuli: ArrayLike, *, name: str = "stimuli") -> tuple[np.ndarray, dict]:
    """Images ``(stimulus, height, width[, color])`` in [0, 1] as float32, and their coords.

    A DataArray keeps its ``stimulus`` coordinate and every coordinate along it (category,
    position ...), so the representations line up with a dataset's stimuli.
    """
    coords: dict = {}
    if isinstance(stimuli, xr.DataArray):
        if stimuli.dims[0] != "stimulus":
            raise ValueError(f"{name} must have 'stimulus' as its first dim, got {stimuli.dims}")
        coords = {k: ("stimulus", np.asarray(c.values)) for k, c in stimuli.coords.items()
                  if c.dims == ("stimulus",)}
    x = to_numpy(stimuli, name=name)
    if x.ndim not in (3, 4) or x.shape[0] < 1:
        raise ValueError(f"{name} must be images (stimulus, height, width[, color]), got shape "
                         f"{x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"{name} must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must be intensities in [0, 1], got values in [{lo:g}, {hi:g}]")
    coords.setdefault("stimulus", ("stimulus", np.arange(x.shape[0])))
    return x, coords


def _dataset(layers: Mapping[str, tuple[np.ndarray, tuple[str, ...]]], coords: dict,
             n: int, attrs: dict) -> xr.Dataset:
    data = {}
    clash = sorted(set(layers) & set(coords))
    if clash:
        raise ValueError(f"layer names {clash} are also stimulus coordinates; name the layers "
                         "otherwise (e.g. '<name>_features')")
    for name, (arr, dims) in layers.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f" and arr.dtype != np.float64:
            arr = arr.astype(np.float32)
        dims = tuple(dims)
        if arr.ndim != len(dims) + 2 or arr.shape[0] != n:
            raise ValueError(f"layer {name!r} has shape {arr.shape}; expected (stimulus={n}, "
                             f"{', '.join(dims) + ', ' if dims else ''}feature)")
        if not np.all(np.isfinite(arr)):
            raise FloatingPointError(f"layer {name!r} has NaN or infinite values")
        feature = f"feature_{name}"
        data[name] = xr.DataArray(arr, dims=("stimulus", *dims, feature),
                                  coords={feature: np.arange(arr.shape[-1])})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(attrs)
    return ds


def representations(model: Any, stimuli: ArrayLike | None = None, *,
                    key: PRNGKeyArray | None = None, **options) -> xr.Dataset:
    """A model's states for some stimuli: one variable per layer or stage.

    Parameters
    ----------
    model
        One of the registered model types: an :class:`~brainmodels.akorn.AKOrN`, a
        :class:`~brainmodels.wave_rnn.WaveRNN` (or IRNN/GRU/LSTM), a spiking
        :class:`~brainmodels.snn.Network`, a :class:`WhiteningCircuit`, a
        :class:`KuramotoGrid`, the :class:`GaborEnergy` or :class:`RandomFeatures` baselines,
        or a mapping ``{layer: (stimulus, ...) array}`` of features computed elsewhere.
    stimuli : array or DataArray (stimulus, height, width[, color])
        Images with intensities in [0, 1] (e.g. a synthetic dataset's ``images``, whose
        stimulus coords are kept). Optional for a mapping of precomputed features.
    key : jax PRNG key
        Needed by stochastic models (spiking networks, noisy Kuramoto, AKOrN's random
        initial oscillators); same key, same result.
    **options
        Passed to the model's adapter (e.g. ``n_samples``, ``duration_ms``, ``pool``); an
        unknown option is a TypeError.

    Returns
    -------
    xarray.Dataset
        One variable per layer, dims ``(stimulus, [sample,] [time,] feature_<layer>)``;
        stochastic models carry a ``sample`` dim of repeated draws. Attrs: the model, its
        options and provenance. :func:`layer_matrix` gives one layer as a
        (stimulus, feature) matrix for an encoder or an RDM.

    Raises
    ------
    TypeError
        An unregistered model type or an unknown option.
    ValueError
        Stimuli that are not images in [0, 1], or that do not fit the model.

    Examples
    --------
    >>> import numpy as np
    >>> from brainmodels.representations import GaborEnergy, representations
    >>> images = np.random.default_rng(0).random((5, 32, 32))
    >>> reps = representations(GaborEnergy(grid=4), images)
    >>> reps["energy"].dims
    ('stimulus', 'feature_energy')
    """
    if isinstance(model, Mapping):
        return _from_arrays(model, stimuli)
    if stimuli is None:
        raise ValueError("stimuli must be given (images (stimulus, height, width))")
    fn = _adapter(model)
    images, coords = as_images(stimuli)
    layers, info = fn(model, images, key=key, **options)
    stochastic = bool(info.pop("stochastic", False))
    attrs = provenance("representations", params={"model": type(model).__name__, **info},
                       units="model units (see each layer)")
    attrs["stochastic"] = int(stochastic)
    return _dataset(layers, coords, images.shape[0], attrs)


def _from_arrays(features: Mapping[str, Any], stimuli) -> xr.Dataset:
    if not features:
        raise ValueError("model is an empty mapping: pass {layer: (stimulus, ...) array}")
    coords: dict = {}
    if stimuli is not None:
        _, coords = as_images(stimuli)
    layers = {}
    n = None
    for name, arr in features.items():
        dims: tuple[str, ...] = ()
        if isinstance(arr, xr.DataArray):
            dims = tuple(d for d in arr.dims[1:-1])
            if arr.dims[0] != "stimulus" or any(d not in _ORDER for d in dims):
                raise ValueError(f"features[{name!r}] must have dims (stimulus, [sample,] "
                                 f"[time,] feature), got {arr.dims}")
        x = to_numpy(arr, name=f"features[{name!r}]")
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != len(dims) + 2:
            raise ValueError(f"features[{name!r}] must be (stimulus, feature) (or a DataArray "
                             f"with sample/time dims), got shape {x.shape}")
        n = x.shape[0] if n is None else n
        if x.shape[0] != n:
            raise ValueError(f"every layer must cover the same stimuli: features[{name!r}] has "
                             f"{x.shape[0]}, another {n}")
        layers[str(name)] = (x, dims)
    coords.setdefault("stimulus", ("stimulus", np.arange(n)))
    if len(coords["stimulus"][1]) != n:
        raise ValueError(f"stimuli has {len(coords['stimulus'][1])} stimuli, the features {n}")
    attrs = provenance("representations", params={"model": "precomputed"}, units="as given")
    attrs["stochastic"] = 0
    return _dataset(layers, coords, n, attrs)


def layers_of(reps: xr.Dataset) -> list[str]:
    """The layer variables of a representations Dataset (those with a ``stimulus`` dim)."""
    out = [str(v) for v, da in reps.data_vars.items()
           if da.dims and da.dims[0] == "stimulus" and da.dims[-1].startswith("feature_")]
    if not out:
        raise ValueError("reps has no layer variables (stimulus, ..., feature_<layer>); build "
                         "it with brainmodels.representations.representations")
    return out


def layer_matrix(reps: xr.Dataset, layer: str, *, time: str = "flatten",
                 sample: str = "mean") -> np.ndarray:
    """One layer as a (stimulus, feature) matrix for an encoder or an RDM.

    ``time``: ``"flatten"`` (time x feature become features), ``"mean"`` or ``"last"``;
    ``sample``: ``"mean"`` (the expected representation) or ``"first"``.
    """
    if layer not in reps:
        raise ValueError(f"layer must be one of {layers_of(reps)}, got {layer!r}")
    da = reps[layer]
    if "sample" in da.dims:
        if sample not in ("mean", "first"):
            raise ValueError(f"sample must be 'mean' or 'first', got {sample!r}")
        da = da.mean("sample") if sample == "mean" else da.isel(sample=0)
    if "time" in da.dims:
        if time not in ("flatten", "mean", "last"):
            raise ValueError(f"time must be 'flatten', 'mean' or 'last', got {time!r}")
        if time == "mean":
            da = da.mean("time")
        elif time == "last":
            da = da.isel(time=-1)
    x = np.asarray(da.values, dtype=np.float64)
    return x.reshape(x.shape[0], -1)
