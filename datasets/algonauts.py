"""The Algonauts 2023 challenge layout (NSD responses on the fsaverage surface).

Per subject::

    subjXX/training_split/training_fmri/{lh,rh}_training_fmri.npy   (image, vertex) float
    subjXX/training_split/training_images/*.png                     one image per row, sorted
    subjXX/roi_masks/{lh,rh}.<roi_class>_challenge_space.npy         int label per vertex
    subjXX/roi_masks/mapping_<roi_class>.npy                         {label: name} (pickled dict,
                                                                     read by a restricted unpickler)
    subjXX/roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy        fsaverage vertex mask

The responses are already averaged over the (up to 3) repeats of each image, so each image is
one trial here (``stimulus_id == trial``).

References
----------
Gifford, A. T. et al. (2023). The Algonauts Project 2023 Challenge: how the human brain makes
sense of natural scenes. arXiv:2301.03198.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import xarray as xr

from brainmodels.data import provenance

from . import _validate as V
from ._npy import load_label_mapping

__all__ = ["load_algonauts2023", "ALGONAUTS_ROI_CLASSES", "algonauts_subject_dir"]

#: ROI classes in the order that decides a vertex's single ``roi`` label (first non-zero wins).
ALGONAUTS_ROI_CLASSES = ("prf-visualrois", "floc-faces", "floc-bodies", "floc-places",
                         "floc-words", "streams")
_HEMIS = ("lh", "rh")


def algonauts_subject_dir(path: str | os.PathLike, subject: int | str) -> Path:
    """``path/subjXX`` for ``subject`` given as 1, "01", "subj01"; checked to exist."""
    label = str(subject).removeprefix("subj")
    if not label.isdigit():
        raise ValueError(f"subject must be a number or 'subjXX', got {subject!r}")
    root = V.existing_file(path, "Algonauts folder")
    return V.existing_file(root / f"subj{int(label):02d}", f"subject folder of subject {subject!r}")


def _load_npy(path: Path, what: str):
    V.existing_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{what} {path} is not a readable .npy file: {err}") from err


def _roi_labels(sub: Path, hemi: str, n_vertices: int) -> dict[str, np.ndarray]:
    """Per ROI class, the ROI name of each challenge-space vertex ("" when unlabelled)."""
    out = {}
    for cls in ALGONAUTS_ROI_CLASSES:
        path = sub / "roi_masks" / f"{hemi}.{cls}_challenge_space.npy"
        if not path.exists():
            continue
        codes = np.rint(_load_npy(path, "ROI mask")).astype(int)
        if codes.shape != (n_vertices,):
            raise ValueError(f"ROI mask {path} has shape {codes.shape}, expected ({n_vertices},) "
                             f"to match {hemi}_training_fmri.npy")
        mapping = sub / "roi_masks" / f"mapping_{cls}.npy"
        # a pickled dict, read without running code from the file
        names = load_label_mapping(mapping, "ROI mapping") if mapping.exists() else {}
        out[cls] = np.array([names.get(c, str(c)) if c else "" for c in codes])
    return out


def _fsaverage_index(sub: Path, hemi: str, n_vertices: int) -> np.ndarray:
    path = sub / "roi_masks" / f"{hemi}.all-vertices_fsaverage_space.npy"
    if not path.exists():
        return np.full(n_vertices, -1)
    idx = np.flatnonzero(_load_npy(path, "fsaverage vertex mask"))
    if idx.size != n_vertices:
        raise ValueError(f"fsaverage vertex mask {path} selects {idx.size} vertices but "
                         f"{hemi}_training_fmri.npy has {n_vertices}")
    return idx


def _images(files: list[Path], image_size: int | None) -> np.ndarray:
    from PIL import Image

    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if image_size is not None:
                im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
            out.append(np.asarray(im, dtype=np.float32) / 255.0)
    return np.stack(out)


def load_algonauts2023(
    path: str | os.PathLike,
    subject: int | str,
    *,
    load_images: bool = False,
    image_size: int | None = None,
    on_bad_voxels: str = "raise",
) -> xr.Dataset:
    """Load one subject's Algonauts 2023 training split.

    Parameters
    ----------
    path : path
        Folder holding ``subjXX`` folders.
    subject : int or str
        1, "01" or "subj01".
    load_images : bool
        Also read the PNGs into ``images (stimulus, height, width, color)`` float32 in [0, 1]
        (off by default: ~9,000 images of 425 x 425 pixels); file names are always kept.
    image_size : int, optional
        Resize the images to ``image_size`` x ``image_size`` when loading them.
    on_bad_voxels : {"raise", "drop"}
        NaN/inf or constant vertices raise (default) or are dropped.

    Returns
    -------
    xarray.Dataset
        ``betas (trial, voxel)`` float32 (left then right hemisphere vertices) with trial
        coords ``stimulus_id`` (= trial), ``image_file``, ``nsd_id`` (-1 when not in the file
        name); voxel coords ``hemisphere``, ``vertex`` (challenge-space index within the
        hemisphere), ``fsaverage_vertex`` (-1 if unknown), ``roi`` (first labelled ROI class
        in :data:`ALGONAUTS_ROI_CLASSES`, "none" otherwise) and ``roi_<class>`` per class.

    Raises
    ------
    FileNotFoundError
        A missing folder or file (named).
    ValueError
        Hemispheres or images whose counts differ, ROI masks of the wrong length, unreadable
        files, or bad vertices with ``on_bad_voxels="raise"``.
    """
    sub = algonauts_subject_dir(path, subject)
    split = sub / "training_split"
    arrays = {h: _load_npy(split / "training_fmri" / f"{h}_training_fmri.npy", "fMRI file")
              for h in _HEMIS}
    for h, a in arrays.items():
        if a.ndim != 2:
            raise ValueError(f"{h}_training_fmri.npy must be 2D (image, vertex), got {a.shape}")
    n_lh, n_rh = (arrays[h].shape[0] for h in _HEMIS)
    if n_lh != n_rh:
        raise ValueError(f"lh_training_fmri.npy has {n_lh} images but rh_training_fmri.npy has "
                         f"{n_rh} in {split / 'training_fmri'}")
    image_dir = V.existing_file(split / "training_images", "training image folder")
    files = sorted(image_dir.glob("*.png"))
    V.check_trial_count(n_lh, len(files), data="training_fmri/*_training_fmri.npy",
                        labels=f"training_images ({image_dir})")
    values = np.concatenate([arrays[h] for h in _HEMIS], axis=1).astype(np.float32)
    voxel = _vertex_coords(sub, {h: arrays[h].shape[1] for h in _HEMIS})
    keep = V.check_voxels(values, name="the Algonauts fMRI arrays", on_bad=on_bad_voxels)
    voxel = {k: ("voxel", v[keep]) for k, v in voxel.items()}
    nsd = [re.search(r"nsd[-_](\d+)", f.name) for f in files]
    trial = {"stimulus_id": np.arange(n_lh), "image_file": np.array([f.name for f in files]),
             "nsd_id": np.array([int(m.group(1)) if m else -1 for m in nsd])}
    attrs = provenance("load_algonauts2023", params={"subject": str(subject)})
    attrs |= {"source": str(sub), "space": "fsaverage (challenge vertices)",
              "n_dropped_voxels": int(values.shape[1] - keep.size)}
    ds = V.betas_dataset(values[:, keep], trial, voxel, attrs)
    if load_images:
        ds["images"] = (("stimulus", "height", "width", "color"), _images(files, image_size))
        ds = ds.assign_coords(stimulus=np.arange(n_lh))
    return ds


def _vertex_coords(sub: Path, n_vertices: dict[str, int]) -> dict[str, np.ndarray]:
    cols: dict[str, list] = {"hemisphere": [], "vertex": [], "fsaverage_vertex": [], "roi": []}
    per_class: dict[str, list] = {c: [] for c in ALGONAUTS_ROI_CLASSES}
    for h, n in n_vertices.items():
        cols["hemisphere"].append(np.full(n, h))
        cols["vertex"].append(np.arange(n))
        cols["fsaverage_vertex"].append(_fsaverage_index(sub, h, n))
        labels = _roi_labels(sub, h, n)
        first = np.full(n, "none", dtype=object)
        for cls in ALGONAUTS_ROI_CLASSES:
            lab = labels.get(cls, np.full(n, ""))
            per_class[cls].append(np.where(lab == "", "none", lab))
            first = np.where((first == "none") & (lab != ""), lab, first)
        cols["roi"].append(first.astype(str))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out |= {f"roi_{c}": np.concatenate(v).astype(str) for c, v in per_class.items()}
    return out
