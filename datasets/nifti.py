"""NSD-style single-trial betas stored as 4D NIfTI volumes, read through nilearn's masker."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainmodels.data import provenance

from . import _validate as V

__all__ = ["load_nifti_betas"]

ImgLike = Any  # a path, a nibabel image, or (for betas) a list of them


def _load(img: ImgLike, what: str):
    import nibabel as nib
    from nilearn.image import load_img

    if isinstance(img, str | os.PathLike):
        V.existing_file(img, what)
        try:
            return load_img(str(img))
        except (nib.filebasedimages.ImageFileError, OSError, EOFError) as err:
            raise ValueError(f"{what} {img} is not a readable NIfTI image: {err}") from err
    return load_img(img)


def _binary_mask(mask_img: ImgLike):
    import nibabel as nib

    img = _load(mask_img, "mask_img")
    data = np.asarray(img.get_fdata())
    if data.ndim != 3:
        raise ValueError(f"mask_img must be a 3D volume, got shape {data.shape}")
    mask = np.isfinite(data) & (data > 0)
    if not mask.any():
        where = f" ({mask_img})" if isinstance(mask_img, str | os.PathLike) else ""
        raise ValueError(f"mask_img{where} is empty: no voxel > 0")
    return nib.Nifti1Image(mask.astype(np.uint8), img.affine), mask


def _trial_labels(stimulus_order, stimulus_column: str) -> dict[str, np.ndarray]:
    """Stimulus ids (and run/session if the table has them) from an array or a table file."""
    if isinstance(stimulus_order, str | os.PathLike):
        table = V.read_table(stimulus_order, "stimulus_order table")
        if stimulus_column not in table:
            raise ValueError(f"stimulus_order table {stimulus_order} has no column "
                             f"{stimulus_column!r}; columns: {list(table.columns)}")
        out = {"stimulus_id": table[stimulus_column].to_numpy()}
        out |= {c: table[c].to_numpy() for c in ("run", "session") if c in table}
        return out
    ids = np.asarray(stimulus_order)
    if ids.ndim != 1:
        raise ValueError(f"stimulus_order must be 1D (one id per volume), got shape {ids.shape}")
    return {"stimulus_id": ids}


def load_nifti_betas(
    betas_img: ImgLike | Sequence[ImgLike],
    stimulus_order: Sequence[int] | np.ndarray | str | os.PathLike,
    mask_img: ImgLike,
    *,
    stimulus_column: str = "stimulus_id",
    runs: Any = None,
    scale: float = 1.0,
    roi_img: ImgLike | None = None,
    roi_labels: Mapping[int, str] | None = None,
    on_bad_voxels: str = "raise",
) -> xr.Dataset:
    """Load single-trial betas from 4D NIfTI volume(s) (one volume per trial) inside a mask.

    Parameters
    ----------
    betas_img : path, image or list of them
        4D image(s), one volume per trial; a list (e.g. one file per NSD session) is read in
        order and concatenated along trials.
    stimulus_order : array-like or path
        One stimulus id per trial, or a .tsv/.csv table with a ``stimulus_column`` column
        (and optionally ``run``/``session`` columns, kept as trial coords).
    mask_img : path or image
        3D mask on the betas' grid (voxels > 0 are kept; nilearn's ``NiftiMasker``).
    runs : array-like, optional
        Run label per trial (overrides a ``run`` column of the table).
    scale : float
        Multiply the stored values (NSD's int16 betas are percent signal change x 300: pass
        ``1 / 300``).
    roi_img, roi_labels : optional
        A 3D integer label image on the same grid and the names of its labels; sets the voxel
        coord ``roi`` ("none" for label 0 or unnamed labels).
    on_bad_voxels : {"raise", "drop"}
        NaN/inf or constant voxels raise a ValueError (default) or are dropped.

    Returns
    -------
    xarray.Dataset
        ``betas (trial, voxel)`` float32; trial coords ``stimulus_id`` (and ``run``,
        ``session``); voxel coords ``i, j, k`` (indices into the mask grid, in nilearn's
        masker order), ``x, y, z`` (mm) and ``roi``; attrs ``affine``, ``volume_shape``.

    Raises
    ------
    FileNotFoundError
        A file that does not exist (named).
    ValueError
        An empty or non-3D mask, trial counts of betas and ``stimulus_order`` (or ``runs``)
        that differ, an image that is not 4D, or bad voxels with ``on_bad_voxels="raise"``.
    """
    from nilearn.maskers import NiftiMasker

    mask, mask_bool = _binary_mask(mask_img)
    imgs = list(betas_img) if isinstance(betas_img, list | tuple) else [betas_img]
    masker = NiftiMasker(mask_img=mask, standardize=None).fit()
    blocks, nonfinite = [], []
    for n, img in enumerate(imgs):
        what = "betas_img" if len(imgs) == 1 else f"betas_img[{n}]"
        loaded = _load(img, what)
        if loaded.ndim != 4:
            raise ValueError(f"{what} must be a 4D image (one volume per trial), got shape "
                             f"{loaded.shape}")
        if loaded.shape[:3] != mask_bool.shape:
            raise ValueError(f"{what} has a {loaded.shape[:3]} grid but mask_img has "
                             f"{mask_bool.shape}; resample one onto the other first")
        # nilearn's masker silently turns NaN into 0: look at the raw in-mask values first
        raw = np.asarray(loaded.dataobj)[mask_bool]
        if not np.isfinite(raw).all() and on_bad_voxels == "raise":
            V.check_voxels(raw.T, name=what, on_bad=on_bad_voxels)
        nonfinite.append(~np.isfinite(raw).all(1))
        blocks.append(np.asarray(masker.transform(loaded), dtype=np.float64))
    values = np.concatenate(blocks) * float(scale)
    values[:, np.any(nonfinite, axis=0)] = np.nan  # restore what the masker zeroed
    labels = _trial_labels(stimulus_order, stimulus_column)
    sources = dict.fromkeys(labels, "stimulus_order")
    if runs is not None:
        labels["run"], sources["run"] = np.asarray(runs), "runs"
    for key, lab in labels.items():
        V.check_trial_count(values.shape[0], len(lab), data="betas_img", labels=sources[key])
    keep = V.check_voxels(values, name="betas_img", on_bad=on_bad_voxels)
    coords = V.mask_voxel_coords(mask_bool, np.asarray(mask.affine))
    coords["roi"] = ("voxel", _roi_names(roi_img, roi_labels, mask_bool))
    coords = {k: (d, v[keep]) for k, (d, v) in coords.items()}
    source = [str(i) if isinstance(i, str | os.PathLike) else "<image>" for i in imgs]
    attrs = provenance("load_nifti_betas", params={"scale": scale, "on_bad_voxels": on_bad_voxels})
    attrs |= {"affine": np.asarray(mask.affine).tolist(), "volume_shape": list(mask_bool.shape),
              "source": source, "n_dropped_voxels": int(mask_bool.sum() - keep.size)}
    return V.betas_dataset(values[:, keep], labels, coords, attrs)


def _roi_names(roi_img, roi_labels, mask_bool) -> np.ndarray:
    if roi_img is None:
        return np.full(int(mask_bool.sum()), "none")
    data = np.asarray(_load(roi_img, "roi_img").get_fdata())
    if data.shape[:3] != mask_bool.shape:
        raise ValueError(f"roi_img has a {data.shape} grid but mask_img has {mask_bool.shape}")
    codes = np.rint(data[mask_bool]).astype(int)
    names = {int(k): str(v) for k, v in (roi_labels or {}).items()}
    return np.array([names.get(c, "none" if c == 0 else str(c)) for c in codes])

