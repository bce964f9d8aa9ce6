"""Voxel layout of the synthetic brain: MNI152 mask, ROIs, pRFs and smooth random fields.

ROIs are placed from MNI coordinates (mm):

* retinotopic ``V1``-``V4``: shells of increasing distance from the occipital pole of each
  hemisphere (V1 at the pole, then V2, V3, V4 outward), above the cerebellum. Each voxel has a
  population receptive field (pRF; Dumoulin & Wandell 2008) in the contralateral visual field:
  polar angle from its direction around the pole (upper bank -> lower field), eccentricity
  growing anteriorly, size growing with eccentricity and along the hierarchy.
* category ROIs (``face-like``, ``house-like``, ``body-like``, ``tool-like``): balls around the
  usual coordinates of FFA, PPA, EBA and lateral occipitotemporal tool areas.

Every per-voxel quantity that is not fixed by the ROI is a smooth function of voxel position:
Gaussian random fields made by smoothing white noise on the volume grid.

References
----------
Dumoulin, S. O. & Wandell, B. A. (2008). Population receptive field estimates in human visual
cortex. NeuroImage 39, 647-660 (Gaussian pRF model, eq. 1).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import ndimage

from brainmodels._types import NDArray

#: Retinotopic ROIs: (outer radius from the occipital pole in mm, pRF size factor).
RETINOTOPIC_ROIS: dict[str, tuple[float, float]] = {
    "V1": (18.0, 0.10),
    "V2": (26.0, 0.15),
    "V3": (34.0, 0.21),
    "V4": (42.0, 0.28),
}
#: Category ROIs: (preferred shape category, centre in the right hemisphere, mm).
CATEGORY_ROIS: dict[str, tuple[str, tuple[float, float, float]]] = {
    "face-like": ("face", (40.0, -52.0, -20.0)),
    "house-like": ("house", (26.0, -44.0, -8.0)),
    "body-like": ("body", (48.0, -70.0, 4.0)),
    "tool-like": ("tool", (46.0, -58.0, -8.0)),
}
_CATEGORY_RADIUS_MM = 12.0
_POLE = np.array([12.0, -100.0, 2.0])  # right-hemisphere occipital pole; x mirrored for left
_MIN_Z_RETINOTOPIC = -18.0  # keep the early visual ROIs out of the cerebellum


_MASKS = ("brain", "gm")


def load_mask(resolution_mm: float, mask: str = "brain"):
    """The MNI152 mask that ships with nilearn, at ``resolution_mm`` (no download)."""
    if mask not in _MASKS:
        raise ValueError(f"mask must be one of {list(_MASKS)}, got {mask!r}")
    res = float(resolution_mm)
    if res <= 0 or res != round(res):
        raise ValueError(f"resolution_mm must be a positive whole number of mm, got {resolution_mm}")
    return _cached_mask(int(res), mask)


@functools.lru_cache(maxsize=8)
def _cached_mask(resolution: int, mask: str):
    # resampling the 1 mm template takes ~1 s; the image is only read, never modified
    from nilearn import datasets as nd

    loaders = {"brain": nd.load_mni152_brain_mask, "gm": nd.load_mni152_gm_mask}
    return loaders[mask](resolution=resolution)


def voxel_table(mask_img) -> tuple[pd.DataFrame, NDArray, tuple[int, int, int]]:
    """Voxel indices (C order, as nilearn's maskers) and MNI coordinates of a mask image."""
    data = np.asarray(mask_img.get_fdata()) > 0
    ijk = np.argwhere(data)
    affine = np.asarray(mask_img.affine, dtype=float)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    table = pd.DataFrame(
        {"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2],
         "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    )
    return table, affine, tuple(int(s) for s in data.shape)


def smooth_fields(
    rng: np.random.Generator, shape: tuple[int, ...], ijk: NDArray, n: int, sigma_vox: float
) -> NDArray:
    """``n`` unit-variance Gaussian random fields on the volume, read at the voxels (n, voxel)."""
    out = np.empty((n, len(ijk)))
    for f in range(n):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
        vals = field[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        out[f] = (vals - vals.mean()) / max(vals.std(), 1e-12)
    return out


def assign_rois(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``roi``, ``roi_kind`` and ``hemisphere`` columns (category ROIs take precedence)."""
    xyz = table[["x", "y", "z"]].to_numpy()
    hemi = np.where(xyz[:, 0] < 0, -1.0, 1.0)
    roi = np.full(len(table), "none", dtype=object)
    kind = np.full(len(table), "none", dtype=object)
    # category ROIs: nearest centre within the radius
    centres = np.array([c for _, c in CATEGORY_ROIS.values()])
    names = list(CATEGORY_ROIS)
    mirrored = np.abs(xyz) * [1, 0, 0] + xyz * [0, 1, 1]
    dist = np.linalg.norm(mirrored[:, None, :] - centres[None], axis=-1)
    nearest = dist.argmin(1)
    is_cat = dist.min(1) <= _CATEGORY_RADIUS_MM
    roi[is_cat] = np.asarray(names, dtype=object)[nearest[is_cat]]
    kind[is_cat] = "category"
    # retinotopic shells around each hemisphere's occipital pole
    d_pole = np.linalg.norm(mirrored - _POLE, axis=1)
    lower = 0.0
    for name, (outer, _) in RETINOTOPIC_ROIS.items():
        sel = (~is_cat) & (d_pole >= lower) & (d_pole < outer) & (xyz[:, 2] > _MIN_Z_RETINOTOPIC)
        roi[sel] = name
        kind[sel] = "retinotopic"
        lower = outer
    out = table.copy()
    out["roi"] = roi.astype(str)
    out["roi_kind"] = kind.astype(str)
    out["hemisphere"] = np.where(hemi < 0, "left", "right")
    return out


def prf_parameters(table: pd.DataFrame, jitter: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """pRF centre (x, y in image units, [-1, 1]) and size for every voxel (NaN outside V1-V4).

    ``jitter`` is (3, voxel) smooth fields that perturb the centre and size slightly.
    """
    xyz = table[["x", "y", "z"]].to_numpy()
    hemi = np.where(xyz[:, 0] < 0, -1.0, 1.0)
    rel = np.abs(xyz) * [1, 0, 0] + xyz * [0, 1, 1] - _POLE
    # polar angle: direction around the pole in the (lateral, vertical) plane; upper -> lower field
    angle = np.arctan2(-rel[:, 2], np.abs(rel[:, 0]) + 6.0)
    ecc = np.clip(0.08 + rel[:, 1] / 30.0 + 0.08 * jitter[0], 0.03, 1.0)
    px = -hemi * ecc * np.cos(angle)  # contralateral visual field
    py = ecc * np.sin(angle)
    factor = table["roi"].map({k: v[1] for k, v in RETINOTOPIC_ROIS.items()}).to_numpy(float)
    sigma = factor * (1.0 + 1.5 * ecc) * np.exp(0.15 * jitter[1])
    return np.clip(px, -1, 1), np.clip(py + 0.05 * jitter[2], -1, 1), sigma
