"""Input checks shared by the loaders: files, trial counts, bad voxels, masks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

#: What to do with NaN or constant voxels: a registry of policies.
BAD_VOXEL_POLICIES = ("raise", "drop")


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path; FileNotFoundError naming ``what`` if it does not exist."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def bad_voxels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of voxels (columns) with any NaN/inf and of constant voxels."""
    finite = np.isfinite(values)
    nonfinite = ~finite.all(0)
    filled = np.where(finite, values, 0.0)
    constant = (~nonfinite) & (np.ptp(filled, axis=0) == 0) if len(values) else ~nonfinite
    return nonfinite, constant


def check_voxels(values: np.ndarray, *, name: str, on_bad: str) -> np.ndarray:
    """Validate the voxel columns of ``values (trial, voxel)``; return the columns to keep.

    Raises
    ------
    ValueError
        If ``on_bad == "raise"`` and some voxels contain NaN/inf or are constant over trials
        (naming how many and the first indices), or if ``on_bad`` is unknown or nothing is left.
    """
    if on_bad not in BAD_VOXEL_POLICIES:
        raise ValueError(f"on_bad_voxels must be one of {BAD_VOXEL_POLICIES}, got {on_bad!r}")
    nonfinite, constant = bad_voxels(values)
    bad = nonfinite | constant
    if bad.any() and on_bad == "raise":
        parts = []
        for label, sel in (("NaN/inf values", nonfinite), ("zero variance", constant)):
            idx = np.flatnonzero(sel)
            if idx.size:
                parts.append(f"{idx.size} voxel(s) with {label} (indices {idx[:8].tolist()}"
                             f"{' ...' if idx.size > 8 else ''})")
        raise ValueError(f"{name} has {'; '.join(parts)}; drop them from the mask or pass "
                         "on_bad_voxels='drop'")
    keep = np.flatnonzero(~bad)
    if keep.size == 0:
        raise ValueError(f"{name} has no voxel with finite, non-constant values")
    return keep


def check_trial_count(n_trials: int, n_labels: int, *, data: str, labels: str) -> None:
    if n_trials != n_labels:
        raise ValueError(
            f"{labels} lists {n_labels} trial(s) but {data} has {n_trials}; they must match "
            "one to one (one stimulus id per volume/row)"
        )


def read_table(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """Read a .tsv/.csv table (separator from the extension)."""
    p = existing_file(path, what)
    sep = "," if p.suffix.lower() == ".csv" else "\t"
    try:
        return pd.read_csv(p, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {p} is not a readable table: {err}") from err


def stimulus_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids (indices into the sorted unique labels) and the unique labels."""
    names, ids = np.unique(np.asarray(labels), return_inverse=True)
    return ids.astype(np.int64), names


def mask_voxel_coords(mask_bool: np.ndarray, affine: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """Voxel coords ``i, j, k, x, y, z`` of a boolean volume, in nilearn's masker (C) order."""
    ijk = np.argwhere(mask_bool)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    out = {c: ("voxel", ijk[:, n].astype(np.int64)) for n, c in enumerate("ijk")}
    out |= {c: ("voxel", xyz[:, n]) for n, c in enumerate("xyz")}
    return out


def betas_dataset(betas, trial_coords, voxel_coords, attrs) -> xr.Dataset:
    """The common loader output: ``betas (trial, voxel)`` with trial and voxel coords."""
    ds = xr.Dataset({"betas": (("trial", "voxel"), np.asarray(betas, dtype=np.float32))})
    ds = ds.assign_coords({k: ("trial", np.asarray(v)) for k, v in trial_coords.items()})
    ds = ds.assign_coords(voxel_coords)
    ds = ds.assign_coords(voxel=np.arange(ds.sizes["voxel"]), trial=np.arange(ds.sizes["trial"]))
    ds.attrs.update(attrs)
    return ds
