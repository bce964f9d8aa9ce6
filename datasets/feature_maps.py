"""Stimulus feature maps: the synthetic datasets' features before spatial pooling.

:func:`feature_map` returns a stimulus representation laid out on the visual field, dims
``(stimulus, y, x, channel)``, with ``x`` and ``y`` in degrees of visual angle, so a
nonlinear (e.g. receptive-field) encoder can learn where each voxel looks and compare it with
the ground-truth ``prf_x_deg`` / ``prf_y_deg`` voxel coords of the dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from brainmodels.data import provenance, validate_dims

from .stimuli import gabor_energy
from .synthetic import FIELD_OF_VIEW_DEG

__all__ = ["feature_map", "FEATURE_MAP_KINDS"]


def _images(ds: xr.Dataset) -> np.ndarray:
    if "images" not in ds.data_vars:
        raise ValueError("ds has no `images` variable (stimulus, height, width); feature maps "
                         "need the stimuli, as make_synthetic_fmri stores them")
    images = ds["images"]
    if images.ndim != 3 or images.dims[0] != "stimulus":
        raise ValueError(f"ds.images must have dims (stimulus, height, width), got {images.dims}")
    return images.values


def _stored_features(ds: xr.Dataset, required: bool) -> xr.DataArray | None:
    """The stimulus-level retinotopic features (``stimulus_features_...`` in the BOLD variant);
    None if absent and not ``required``."""
    for name in ("features_retinotopic", "stimulus_features_retinotopic"):
        if name in ds.data_vars and ds[name].dims[0] == "stimulus":
            return ds[name]
    if not required:
        return None
    if "features_retinotopic" in ds.data_vars:
        raise ValueError(f"ds.features_retinotopic has dims {ds['features_retinotopic'].dims}, "
                         "not ('stimulus', ...): a time series (the BOLD variant?) and no "
                         "stimulus-level `stimulus_features_retinotopic`; pass grid, "
                         "n_orientations and wavelengths to recompute them from ds.images")
    raise ValueError("ds has no `features_retinotopic` (stimulus, feature); pass grid, "
                     "n_orientations and wavelengths to compute the map from ds.images")


def _stored_layout(feats: xr.DataArray, required: bool) -> tuple[int, int, tuple] | None:
    """(grid, n_orientations, wavelengths) of stored features, read from their coords."""
    missing = [c for c in ("wavelength_px", "orientation_deg") if c not in feats.coords]
    if missing and not required:
        return None
    if missing:
        raise ValueError(f"{feats.name} lacks the feature coords {missing}; pass grid, "
                         "n_orientations and wavelengths")
    wl = feats["wavelength_px"].values
    wavelengths = tuple(float(w) for w in dict.fromkeys(wl.tolist()))
    n_ori = len(np.unique(feats["orientation_deg"].values))
    grid = round(np.sqrt(wl.size / (n_ori * len(wavelengths))))
    if grid**2 * n_ori * len(wavelengths) != wl.size:
        if not required:
            return None
        raise ValueError(f"{feats.name} has {wl.size} features, not grid**2 x {n_ori} "
                         f"orientations x {len(wavelengths)} wavelengths")
    return grid, n_ori, wavelengths


def _gabor(ds, grid, n_orientations, wavelengths):
    """(stimulus, grid, grid, channel) local oriented energy and its channel coords."""
    given = (grid, n_orientations, wavelengths)
    required = any(v is None for v in given)  # the dataset's own settings are needed
    feats = _stored_features(ds, required)
    stored = None if feats is None else _stored_layout(feats, required)
    if stored is not None:
        grid, n_orientations, wavelengths = (s if v is None else v
                                             for v, s in zip(given, stored, strict=True))
    wavelengths = tuple(float(w) for w in wavelengths)
    if stored is not None and (grid, n_orientations, wavelengths) == stored:
        # stored flat as (row, col, channel): undo the reshape, copy so ds stays untouched
        values = np.array(feats.values.reshape(feats.shape[0], grid, grid, -1), np.float32)
    else:
        images = _images(ds)
        _check_grid(images.shape[-1], grid)
        if int(n_orientations) != n_orientations or n_orientations < 1 or not wavelengths:
            raise ValueError(f"need n_orientations >= 1 and at least one wavelength, got "
                             f"n_orientations={n_orientations!r}, wavelengths={wavelengths!r}")
        values = gabor_energy(images, n_orientations=n_orientations, wavelengths=wavelengths,
                              grid=grid)
    wl, ori = np.meshgrid(wavelengths, 180.0 * np.arange(n_orientations) / n_orientations,
                          indexing="ij")  # wavelength-major channels, as gabor_energy
    channel = {"wavelength_px": ("channel", wl.ravel()), "orientation_deg": ("channel", ori.ravel())}
    attrs = {"units": "a.u. (quadrature Gabor amplitude)", "grid": int(grid),
             "n_orientations": int(n_orientations), "wavelengths": list(wavelengths)}
    return values.astype(np.float32, copy=False), channel, attrs


def _pixels(ds, grid, n_orientations, wavelengths):
    """(stimulus, height, width, 1): the images minus their 0.5 background."""
    if any(v is not None for v in (grid, n_orientations, wavelengths)):
        raise ValueError("grid, n_orientations and wavelengths apply to kind='gabor' only")
    values = (_images(ds).astype(np.float32) - np.float32(0.5))[..., None]
    return values, {}, {"units": "contrast (image - 0.5 background)"}


#: Feature-map kinds: name -> function of (ds, grid, n_orientations, wavelengths).
FEATURE_MAP_KINDS: dict[str, Callable] = {"gabor": _gabor, "pixels": _pixels}


def _check_grid(size: int, grid) -> None:
    if int(grid) != grid or grid < 1 or size % grid:
        raise ValueError(f"grid must be a positive integer dividing the image size {size}, "
                         f"got {grid!r}")


def feature_map(
    ds: xr.Dataset,
    kind: str = "gabor",
    *,
    grid: int | None = None,
    n_orientations: int | None = None,
    wavelengths: Sequence[float] | None = None,
    field_of_view_deg: float | None = None,
) -> xr.DataArray:
    """A synthetic dataset's stimuli as a map on the visual field, (stimulus, y, x, channel).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`~brainmodels.datasets.make_synthetic_fmri` (or any dataset with
        ``images (stimulus, height, width)`` in [0, 1] on a 0.5 background).
        :func:`~brainmodels.datasets.make_synthetic_bold` works too (its stimulus-level
        ``stimulus_features_retinotopic``).
    kind : {"gabor", "pixels"}
        ``"gabor"``: local oriented energy (:func:`~brainmodels.datasets.gabor_energy`) on a
        ``grid x grid`` layout, i.e. ``features_retinotopic`` before it was flattened into one
        vector (read from ``ds`` when the settings are the dataset's own, else recomputed from
        ``ds.images``). ``"pixels"``: the images minus the 0.5 background, one channel.
    grid, n_orientations, wavelengths
        Gabor settings (``kind="gabor"`` only); None takes the dataset's own, read from the
        coords of ``features_retinotopic``.
    field_of_view_deg : float, optional
        Visual angle of the image side; default ``ds.attrs["field_of_view_deg"]`` or 8.4
        (NSD's).

    Returns
    -------
    xarray.DataArray
        float32, dims ``(stimulus, y, x, channel)``. ``x`` and ``y`` are the cell centres in
        degrees of visual angle (x right, y up: ``y`` decreases with the row), i.e. the
        features' ``rf_x``/``rf_y`` (image units, -1..1) times ``field_of_view_deg / 2``; the
        voxel pRFs are on the same scale (``prf_x_deg = prf_x * field_of_view_deg / 2``).
        Channel coords ``wavelength_px`` and ``orientation_deg`` for ``"gabor"`` (wavelength-
        major, as :func:`~brainmodels.datasets.gabor_energy`); all of ``ds``'s stimulus
        coords; attrs ``kind``, ``field_of_view_deg``, ``units`` and provenance.

    Raises
    ------
    ValueError
        For an unknown ``kind``; a dataset without ``images`` (or ``features_retinotopic``
        when the settings are left to the dataset), or whose features are a time series
        without a stimulus axis; a ``grid`` that does not divide the image size; Gabor
        settings with ``kind="pixels"``.

    Examples
    --------
    >>> from brainmodels.datasets import make_synthetic_fmri
    >>> ds = make_synthetic_fmri(60, 2, resolution_mm=8, seed=0)
    >>> fmap = feature_map(ds)
    >>> fmap.dims, fmap.shape
    (('stimulus', 'y', 'x', 'channel'), (60, 8, 8, 8))
    >>> fmap.x.values[[0, -1]].round(3).tolist(), fmap.y.values[[0, -1]].round(3).tolist()
    ([-3.675, 3.675], [3.675, -3.675])
    >>> bool((fmap.values.reshape(60, -1) == ds.features_retinotopic.values).all())
    True
    >>> feature_map(ds, "pixels").shape
    (60, 32, 32, 1)
    """
    if kind not in FEATURE_MAP_KINDS:
        raise ValueError(f"kind must be one of {sorted(FEATURE_MAP_KINDS)}, got {kind!r}")
    if "stimulus" not in ds.dims:
        raise ValueError(f"ds has no 'stimulus' axis (dims {tuple(ds.dims)}); feature maps are "
                         "per stimulus: use make_synthetic_fmri's dataset (or the BOLD "
                         "variant's stimulus-level variables)")
    fov = float(ds.attrs.get("field_of_view_deg", FIELD_OF_VIEW_DEG)
                if field_of_view_deg is None else field_of_view_deg)
    if not fov > 0:
        raise ValueError(f"field_of_view_deg must be > 0 degrees, got {fov!r}")
    values, channel, attrs = FEATURE_MAP_KINDS[kind](ds, grid, n_orientations, wavelengths)
    n = values.shape[1]
    centres = ((np.arange(n) + 0.5) / n * 2 - 1) * (fov / 2)  # image units -> degrees
    stim = {c: ds.coords[c] for c in ds.coords if ds.coords[c].dims == ("stimulus",)}
    out = xr.DataArray(
        values, dims=("stimulus", "y", "x", "channel"), name=f"feature_map_{kind}",
        coords=stim | channel | {"y": -centres, "x": centres,
                                 "channel": np.arange(values.shape[-1])},
    )
    out.x.attrs["units"] = out.y.attrs["units"] = "deg"
    out.attrs.update(provenance("feature_map", params={"kind": kind, **{
        k: v for k, v in attrs.items() if k != "units"}}, seed=ds.attrs.get("seed")),
        kind=kind, field_of_view_deg=fov, units=attrs["units"])
    validate_dims(out, name="feature_map")
    return out
