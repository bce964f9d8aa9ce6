"""Brain maps: put per-voxel results back into the volume, save NIfTI, draw them with nilearn.

Every voxel-level dataset in brainmodels carries voxel coordinates ``i, j, k`` (indices into the
volume) and the attributes ``affine`` (4x4, voxel -> mm) and ``volume_shape`` (``[I, J, K]``).
That is all :func:`to_nifti` needs, so any per-voxel vector (a score, an alpha, a noise ceiling)
becomes an image in one call, and :func:`plot_brain_map` draws it on the MNI152 template that
nilearn ships.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainmodels._io import atomic_path, savefig_atomic
from brainmodels.data import to_numpy

__all__ = ["volume_geometry", "to_nifti", "mask_image", "save_nifti", "plot_brain_map",
           "plot_surface_map", "volume_to_surface"]


def volume_geometry(dataset: xr.Dataset | xr.DataArray) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """Return ``(affine, volume_shape, ijk)`` of a voxel dataset.

    Raises
    ------
    ValueError
        If the dataset lacks the ``i, j, k`` voxel coordinates or the ``affine``/``volume_shape``
        attributes, or if an index falls outside the volume.
    """
    missing = [c for c in ("i", "j", "k") if c not in dataset.coords]
    if missing:
        raise ValueError(
            f"dataset must carry voxel coordinates i, j, k (indices into the volume); missing {missing}"
        )
    for attr in ("affine", "volume_shape"):
        if attr not in dataset.attrs:
            raise ValueError(f"dataset must have the attribute {attr!r} to be mapped onto the brain")
    affine = np.asarray(dataset.attrs["affine"], dtype=float)
    if affine.shape != (4, 4):
        raise ValueError(f"dataset.attrs['affine'] must be 4x4, got shape {affine.shape}")
    shape = tuple(int(s) for s in np.asarray(dataset.attrs["volume_shape"]).ravel())
    if len(shape) != 3:
        raise ValueError(f"dataset.attrs['volume_shape'] must have 3 entries, got {shape}")
    ijk = np.stack([np.asarray(dataset[c].values, dtype=np.int64) for c in ("i", "j", "k")], axis=-1)
    if (ijk < 0).any() or (ijk >= np.asarray(shape)).any():
        raise ValueError(f"voxel indices i, j, k fall outside the volume of shape {shape}")
    return affine, shape, ijk


def to_nifti(values: Any, dataset: xr.Dataset | xr.DataArray, *, fill: float = 0.0):
    """Put per-voxel values back into a NIfTI image.

    Parameters
    ----------
    values : array-like or DataArray, shape (voxel,) or (n, voxel)
        One value per voxel of ``dataset`` (a DataArray's ``voxel`` dim may come first or last).
        A 2-D input gives a 4-D image with ``n`` volumes.
    dataset : Dataset or DataArray
        Carries ``i, j, k`` voxel coords and ``affine``/``volume_shape`` attrs.
    fill : float
        Value outside the dataset's voxels.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image.

    Raises
    ------
    ValueError
        If the number of values differs from the dataset's number of voxels.
    """
    import nibabel as nib

    affine, shape, ijk = volume_geometry(dataset)
    if isinstance(values, xr.DataArray) and "voxel" in values.dims:
        values = values.transpose(..., "voxel")
    arr = to_numpy(values, name="values").astype(np.float32)
    n_vox = ijk.shape[0]
    if arr.ndim not in (1, 2) or arr.shape[-1] != n_vox:
        raise ValueError(
            f"values must have shape (voxel,) or (n, voxel) with voxel = {n_vox} (the dataset's "
            f"voxels), got shape {arr.shape}"
        )
    if arr.ndim == 1:
        vol = np.full(shape, fill, dtype=np.float32)
        vol[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = arr
    else:
        vol = np.full((*shape, arr.shape[0]), fill, dtype=np.float32)
        vol[ijk[:, 0], ijk[:, 1], ijk[:, 2], :] = arr.T
    img = nib.Nifti1Image(vol, affine)
    img.header.set_data_dtype(np.float32)
    return img


def mask_image(dataset: xr.Dataset | xr.DataArray):
    """Binary (uint8) NIfTI mask of the dataset's voxels."""
    import nibabel as nib

    affine, shape, ijk = volume_geometry(dataset)
    vol = np.zeros(shape, dtype=np.uint8)
    vol[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = 1
    return nib.Nifti1Image(vol, affine)


def save_nifti(img, path: str | os.PathLike) -> Path:
    """Save a nibabel image atomically (``.nii`` or ``.nii.gz`` from the file name)."""
    import nibabel as nib

    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"path must end with .nii or .nii.gz, got {path.name!r}")
    with atomic_path(path, suffix=".nii.gz" if path.name.endswith(".gz") else ".nii") as tmp:
        nib.save(img, tmp)
    return path


def plot_brain_map(
    values: Any,
    dataset: xr.Dataset | xr.DataArray,
    *,
    kind: str = "stat",
    title: str | None = None,
    output_file: str | os.PathLike | None = None,
    axes=None,
    threshold: float | None = None,
    vmax: float | None = None,
    cmap: Any = None,
    **kwargs: Any,
):
    """Draw a per-voxel map with nilearn on the MNI152 template.

    Parameters
    ----------
    values, dataset
        As for :func:`to_nifti`.
    kind : {"stat", "glass"}
        ``"stat"``: orthogonal slices over the template (``nilearn.plotting.plot_stat_map``);
        ``"glass"``: a glass brain (``plot_glass_brain``).
    title, threshold, vmax, cmap
        Passed to nilearn (``cmap``: a name or a matplotlib ``Colormap``). ``threshold=None``
        hides only the exact zeros outside the voxels.
    output_file : path, optional
        Save the figure there (atomically; format from the extension).
    axes : matplotlib Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from nilearn import plotting

    plotters = {"stat": plotting.plot_stat_map, "glass": plotting.plot_glass_brain}
    if kind not in plotters:
        raise ValueError(f"kind must be one of {sorted(plotters)}, got {kind!r}")
    arr = to_numpy(values, name="values")
    if np.isnan(arr).any():
        warnings.warn(
            f"values has {int(np.isnan(arr).sum())} NaN entries; they are drawn as 0", stacklevel=2
        )
        arr = np.nan_to_num(arr)
    img = to_nifti(arr, dataset)
    fig = None
    if axes is None:
        fig = plt.figure(figsize=(9, 3.2))
    else:
        fig = axes.figure
    if threshold is None:  # hide the exact zeros outside the dataset's voxels
        threshold = 1e-6 * float(np.abs(arr).max() or 1.0)
    options = dict(title=title, threshold=threshold, vmax=vmax, figure=fig, axes=axes)
    if cmap is not None:
        options["cmap"] = cmap
    if kind == "stat":
        options["draw_cross"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # nilearn's "empty threshold" chatter
        plotters[kind](img, **options, **kwargs)
    if output_file is not None:
        savefig_atomic(fig, output_file, dpi=110)
    return fig


def volume_to_surface(values: Any, dataset: xr.Dataset | xr.DataArray, *, mesh=None):
    """A per-voxel map sampled on the fsaverage5 pial surface (a nilearn ``SurfaceImage``;
    ``.data.parts["left"]`` / ``["right"]`` hold one value per vertex). NaN is drawn as 0."""
    from nilearn import datasets
    from nilearn.surface import SurfaceImage

    arr = np.nan_to_num(to_numpy(values, name="values").astype(float))
    mesh = datasets.load_fsaverage("fsaverage5") if mesh is None else mesh
    return SurfaceImage.from_volume(mesh=mesh["pial"], volume_img=to_nifti(arr, dataset))


#: (hemisphere, view) panels of :func:`plot_surface_map`
SURFACE_PANELS = (("left", "lateral"), ("left", "medial"), ("right", "medial"),
                  ("right", "lateral"))


def plot_surface_map(
    values: Any,
    dataset: xr.Dataset | xr.DataArray,
    *,
    title: str | None = None,
    threshold: float | None = None,
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    output_file: str | os.PathLike | None = None,
):
    """Project a per-voxel map onto nilearn's fsaverage5 surface and draw both hemispheres.

    The volume (:func:`to_nifti`) is sampled along the pial mesh (``SurfaceImage.from_volume``)
    and drawn on the inflated mesh over the sulcal depth, lateral and medial views of each
    hemisphere, with a colormap centred on zero (``vmax`` symmetric: positive and negative
    values read alike). fsaverage5 ships with nilearn: nothing is downloaded.

    Parameters
    ----------
    values, dataset
        As for :func:`to_nifti`.
    title : str, optional
    threshold : float, optional
        Values with ``|value| <= threshold`` are not coloured; say so in the title.
    vmax : float, optional
        Colour range ``[-vmax, vmax]``; default: the largest ``|value|`` on the surface.
    cmap : str
        A diverging colormap (default ``"RdBu_r"``).
    output_file : path, optional
        Save the figure there (atomically).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from nilearn import datasets, plotting

    mesh = datasets.load_fsaverage("fsaverage5")
    sulcal = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal")
    surf = volume_to_surface(values, dataset, mesh=mesh)
    top = vmax if vmax is not None else max(
        float(np.abs(np.asarray(part)).max()) for part in surf.data.parts.values()) or 1.0
    fig, axes = plt.subplots(1, len(SURFACE_PANELS), figsize=(12, 3.2),
                             subplot_kw={"projection": "3d"})
    for n, (ax, (hemi, view)) in enumerate(zip(axes, SURFACE_PANELS, strict=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            plotting.plot_surf_stat_map(
                surf_mesh=mesh["inflated"], stat_map=surf, bg_map=sulcal, hemi=hemi, view=view,
                cmap=cmap, threshold=threshold, vmin=-top, vmax=top, symmetric_cbar=True,
                colorbar=n == len(SURFACE_PANELS) - 1, axes=ax, figure=fig,
                title=f"{hemi} {view}")
    if title:
        fig.suptitle(title)
    if output_file is not None:
        savefig_atomic(fig, output_file, dpi=100)
    return fig
