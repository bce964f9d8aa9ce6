"""Recognise and summarise the dataset formats that brainmodels reads (``brainmodels data info``).

Summaries read headers and file listings only (memory-mapped arrays, lazily opened netCDF), so
they are quick even for a full NSD or Algonauts subject.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from . import _validate as V
from ._reliability import explainable_variance, repeats_array

__all__ = ["detect_format", "describe", "FORMATS"]


def _is_netcdf(p: Path) -> bool:
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(8)
    return head.startswith(b"\x89HDF") or head.startswith(b"CDF")


def _is_algonauts(p: Path) -> bool:
    subjects = [p] if re.fullmatch(r"subj\d+", p.name) else sorted(p.glob("subj[0-9]*"))
    return p.is_dir() and any((s / "training_split").is_dir() for s in subjects)


def _is_bids(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_description.json").exists() or any(p.glob("sub-*/")))


def _is_nifti(p: Path) -> bool:
    return p.is_file() and (p.name.endswith(".nii") or p.name.endswith(".nii.gz"))


def _describe_netcdf(p: Path, estimate_ceiling: bool = False) -> str:
    import xarray as xr

    with xr.open_dataset(p, engine="h5netcdf") as ds:
        attrs = dict(ds.attrs)  # model, seed and version are stored as plain values
        lines = [f"netCDF dataset {p} ({p.stat().st_size / 1e6:.1f} MB)",
                 "dims: " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items()),
                 "variables: " + ", ".join(f"{k}{tuple(v.dims)}" for k, v in ds.data_vars.items())]
        for key in ("model", "seed", "brainmodels_version"):
            if key in attrs:
                lines.append(f"{key}: {attrs[key]}")
        if "stimulus_id" in ds.coords:
            ids = ds["stimulus_id"].values
            counts = np.unique(np.unique(ids, return_counts=True)[1])
            lines.append(f"trials: {ids.size}, unique stimuli: {np.unique(ids).size}, repeats "
                         f"per stimulus: {counts.tolist()}")
        if "run" in ds.coords:
            lines.append(f"runs: {np.unique(ds['run'].values).size}")
        estimate = None
        if estimate_ceiling and "betas" in ds and "stimulus_id" in ds.coords:
            reps = repeats_array(ds["betas"].values, ds["stimulus_id"].values)
            estimate = np.sqrt(np.clip(explainable_variance(reps), 0, None))
        if "roi" in ds.coords:
            lines.append(_roi_table(ds, estimate))
    return "\n".join(lines)


def _roi_table(ds, estimate: np.ndarray | None) -> str:
    roi = pd.Series(ds["roi"].values.astype(str))
    rows = []
    for name, idx in roi.groupby(roi).groups.items():
        row = {"roi": name, "voxels": len(idx)}
        if "noise_ceiling" in ds:
            row["median true ceiling"] = float(np.median(ds["noise_ceiling"].values[idx]))
        if estimate is not None:
            row["median ceiling from repeats"] = float(np.nanmedian(estimate[idx]))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("voxels", ascending=False)
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def _describe_algonauts(p: Path) -> str:
    subjects = [p] if re.fullmatch(r"subj\d+", p.name) else sorted(p.glob("subj[0-9]*"))
    lines = [f"Algonauts 2023 folder {p}"]
    for sub in subjects:
        fmri = sub / "training_split" / "training_fmri"
        shapes = {}
        for h in ("lh", "rh"):
            f = fmri / f"{h}_training_fmri.npy"
            shapes[h] = np.load(f, mmap_mode="r").shape if f.exists() else None
        n_img = len(list((sub / "training_split" / "training_images").glob("*.png")))
        rois = sorted({f.name.split(".")[1].removesuffix("_challenge_space")
                       for f in (sub / "roi_masks").glob("lh.*_challenge_space.npy")})
        lines.append(f"{sub.name}: lh {shapes['lh']}, rh {shapes['rh']}, {n_img} training "
                     f"images, ROI classes: {', '.join(rois) or 'none'}")
    return "\n".join(lines)


def _describe_bids(p: Path) -> str:
    lines = [f"BIDS dataset {p}"]
    desc = p / "dataset_description.json"
    if desc.exists():
        lines[0] += f" ({json.loads(desc.read_text()).get('Name', 'unnamed')})"
    rows = []
    for bold in sorted(p.glob("sub-*/**/func/*_bold.nii*")):
        sub = re.search(r"sub-([A-Za-z0-9]+)", bold.name)
        task = re.search(r"task-([A-Za-z0-9]+)", bold.name)
        events = bold.with_name(re.sub(r"_bold\.nii(\.gz)?$", "_events.tsv", bold.name))
        rows.append({"subject": sub.group(1) if sub else "?", "task": task.group(1) if task
                     else "?", "events": events.exists()})
    if not rows:
        return lines[0] + "\nno BOLD runs found"
    table = pd.DataFrame(rows).groupby(["subject", "task"]).agg(
        runs=("events", "size"), with_events=("events", "sum")).reset_index()
    lines.append(table.to_string(index=False))
    return "\n".join(lines)


def _describe_nifti(p: Path) -> str:
    import nibabel as nib

    img = nib.load(str(p))
    zooms = ", ".join(f"{z:g}" for z in img.header.get_zooms())
    return f"NIfTI image {p}: shape {img.shape}, voxel size ({zooms}), dtype {img.get_data_dtype()}"


#: Formats in detection order: name -> (detector, summariser).
FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], str]]] = {
    "netcdf": (_is_netcdf, _describe_netcdf),
    "nifti": (_is_nifti, _describe_nifti),
    "algonauts2023": (_is_algonauts, _describe_algonauts),
    "bids": (_is_bids, _describe_bids),
}


def detect_format(path: str | os.PathLike) -> str:
    """The name (a key of :data:`FORMATS`) of the dataset format at ``path``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is none of the supported formats (listed in the message).
    """
    p = V.existing_file(path, "dataset path")
    for name, (detect, _) in FORMATS.items():
        if detect(p):
            return name
    raise ValueError(f"{p} is not a supported dataset; expected one of {list(FORMATS)} "
                     "(a .nc file, a .nii/.nii.gz image, an Algonauts folder, a BIDS folder)")


def describe(path: str | os.PathLike, *, estimate_ceiling: bool = False) -> str:
    """A short plain-text summary of the dataset at ``path`` (format detected).

    With ``estimate_ceiling=True`` a netCDF dataset with repeated stimuli also gets the median
    noise ceiling per ROI estimated from its repeats (reads the betas).
    """
    fmt = detect_format(path)
    try:
        if fmt == "netcdf":
            return _describe_netcdf(Path(path), estimate_ceiling)
        return FORMATS[fmt][1](Path(path))
    except OSError as err:  # a truncated or corrupted file: name it
        what = {"netcdf": "netCDF file", "nifti": "NIfTI image"}.get(fmt, f"{fmt} dataset")
        raise ValueError(f"{err.filename or path} is not a readable {what}: "
                         f"{err.strerror or err}") from err
