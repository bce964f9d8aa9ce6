"""Synthetic fMRI with ground truth, shaped like a Natural Scenes Dataset subject.

:func:`make_synthetic_fmri` draws procedural images (:mod:`brainmodels.datasets.stimuli`),
places voxels on nilearn's MNI152 brain mask, gives retinotopic voxels (V1-V4) a linear
readout of local oriented energy near their pRF and category voxels a readout of the object
category (invariant to position, size and rotation), and adds independent Gaussian noise to
each of the repeats. Everything is known: the features, the weights, the noiseless signal,
the noise level and hence the noise ceiling.

Generative model (per voxel ``v``, stimulus ``s``, trial ``t`` showing stimulus ``s(t)``)::

    signal[s, v] = sum_space features_space[s] @ weights_space[:, v] + intercept[v]
    betas[t, v]  = signal[s(t), v] + noise_sd[v] * eps[t, v],   eps ~ N(0, 1)

with ``signal`` standardised over the stimuli of responsive voxels (mean 0, variance 1) and
zero elsewhere. The single-trial explainable variance is ``true_ev = var(signal) /
(var(signal) + noise_sd**2)`` and the noise ceiling (the expected correlation of the noiseless
signal, the best possible prediction, with a held-out single-trial beta) is ``sqrt(true_ev)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from brainmodels._memory import check_memory
from brainmodels.data import provenance

from . import _brain
from .stimuli import SHAPE_CATEGORIES, category_code, gabor_energy, make_stimuli, render_stimuli

__all__ = ["make_synthetic_fmri", "ground_truth_features", "FEATURE_SPACES", "FIELD_OF_VIEW_DEG"]

#: Ground-truth feature spaces stored by the synthetic datasets.
FEATURE_SPACES = ("retinotopic", "category")

#: Visual angle subtended by the images, as NSD's (image units -1..1 -> -4.2..4.2 degrees).
FIELD_OF_VIEW_DEG = 8.4

# Tags of the per-subject random streams (subject > 0); subject 0 keeps the original streams.
_VOXEL_STREAM, _NOISE_STREAM = 1, 7

#: Mean single-trial explainable variance per ROI kind (modulated by a smooth field).
_EV_MEAN = {"V1": 0.5, "V2": 0.45, "V3": 0.4, "V4": 0.35, "category": 0.35}


@dataclass(frozen=True)
class _GroundTruth:
    """Everything stimulus- and voxel-level that the fMRI and BOLD variants share."""

    stimuli: pd.DataFrame
    images: np.ndarray
    features: dict[str, np.ndarray]  # space -> (stimulus, feature)
    feature_coords: dict[str, dict[str, np.ndarray]]
    weights: dict[str, np.ndarray]  # space -> (feature, voxel)
    intercept: np.ndarray
    signal: np.ndarray  # (stimulus, voxel), float32
    target_ev: np.ndarray  # (voxel,)
    voxels: pd.DataFrame
    affine: np.ndarray
    volume_shape: tuple[int, int, int]


def _retinotopic_weights(rng, vox, fields, grid, n_ori, wavelengths) -> np.ndarray:
    """(feature, voxel) weights: Gaussian pRF x orientation tuning x wavelength preference."""
    sel = np.flatnonzero(vox["roi_kind"].to_numpy() == "retinotopic")
    px, py, sigma = _brain.prf_parameters(vox.iloc[sel], fields[:3, sel])
    centers = (np.arange(grid) + 0.5) / grid * 2 - 1
    gx, gy = np.meshgrid(centers, -centers)  # cell (row, col) -> image units, y up
    d2 = (gx.ravel()[None] - px[:, None]) ** 2 + (gy.ravel()[None] - py[:, None]) ** 2
    spatial = np.exp(-d2 / (2 * sigma[:, None] ** 2))
    spatial /= spatial.sum(1, keepdims=True)
    pref = 0.5 * np.arctan2(fields[4, sel], fields[3, sel])
    strength = 0.6 * np.tanh(np.hypot(fields[3, sel], fields[4, sel]))
    ori = np.pi * np.arange(n_ori) / n_ori
    tuning = 1 + strength[:, None] * np.cos(2 * (ori[None] - pref[:, None]))
    level = vox["roi"].to_numpy()[sel]
    bias = pd.Series(level).map({"V1": 1.0, "V2": 0.4, "V3": -0.2, "V4": -0.8}).to_numpy()
    short = 1 / (1 + np.exp(-(bias + 0.7 * fields[5, sel])))  # preference for the short wavelength
    sf = np.stack([short] + [(1 - short) / max(len(wavelengths) - 1, 1)] * (len(wavelengths) - 1), 1)
    chan = (sf[:, :, None] * tuning[:, None, :]).reshape(len(sel), -1)  # wavelength-major
    w = (spatial[:, :, None] * chan[:, None, :]).reshape(len(sel), -1)
    out = np.zeros((w.shape[1], len(vox)), dtype=np.float32)
    out[:, sel] = w.T
    return out


def _category_weights(vox, fields, categories) -> np.ndarray:
    """(category, voxel) weights: the ROI's category preferred, smooth variations, mean zero."""
    pref = {name: cat for name, (cat, _) in _brain.CATEGORY_ROIS.items()}
    out = np.zeros((len(categories), len(vox)))
    roi = vox["roi"].to_numpy()
    for name, cat in pref.items():
        sel = np.flatnonzero(roi == name)
        if cat not in categories or not sel.size:
            continue
        w = 0.35 * fields[: len(categories), sel]
        w[list(categories).index(cat)] += 1.0
        out[:, sel] = w - w.mean(0, keepdims=True)
    return out


def _standardise(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale each voxel (column) to unit variance over stimuli; return (scale, intercept)."""
    mean, sd = raw.mean(0), raw.std(0)
    if np.any(sd <= 1e-12):
        raise ValueError("a responsive voxel has a constant synthetic signal; use more stimuli")
    return 1.0 / sd, -mean / sd


def _check_subject(subject) -> int:
    """``subject`` as an int >= 0, or a ValueError."""
    if isinstance(subject, bool) or not isinstance(subject, int | np.integer) or subject < 0:
        raise ValueError(f"subject must be an integer >= 0, got {subject!r}")
    return int(subject)


def _subject_seed(seed: int, stream: int, subject: int) -> np.random.SeedSequence:
    """The seed of random stream ``stream`` of subject ``subject`` > 0 (subject 0 keeps the
    streams it always had; the tagged entropy ``[seed, stream, subject]`` never equals them)."""
    if subject <= 0:
        raise ValueError(f"subject 0 uses the original streams, got subject={subject}")
    return np.random.SeedSequence([int(seed), stream, int(subject)])


def _generate(n_stimuli, image_size, resolution_mm, seed, *, categories, grating_fraction,
              grid, n_orientations, wavelengths, mask, smoothness_mm,
              subject: int = 0) -> _GroundTruth:
    """Draw stimuli, voxels, weights and the noiseless signal (deterministic in ``seed``).

    The stimuli depend on ``seed`` only; subject ``k > 0`` draws its own voxel fields.
    """
    rng_stim, rng_vox = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if subject:
        rng_vox = np.random.default_rng(_subject_seed(seed, _VOXEL_STREAM, subject))
    stimuli = make_stimuli(n_stimuli, seed=rng_stim, categories=categories,
                           grating_fraction=grating_fraction)
    images = render_stimuli(stimuli, image_size)
    energy = gabor_energy(images, n_orientations=n_orientations, wavelengths=wavelengths, grid=grid)
    feats = {"retinotopic": energy.reshape(len(images), -1).astype(np.float32),
             "category": category_code(stimuli["category"], categories)}
    mask_img = _brain.load_mask(resolution_mm, mask)
    vox, affine, shape = _brain.voxel_table(mask_img)
    vox = _brain.assign_rois(vox)
    absent = [n for n, (cat, _) in _brain.CATEGORY_ROIS.items() if cat not in categories]
    vox.loc[vox["roi"].isin(absent), ["roi", "roi_kind"]] = "none"  # nothing to respond to
    if not (stimuli["kind"] == "shape").any():
        raise ValueError(f"grating_fraction={grating_fraction} leaves no shape stimuli for the "
                         "category ROIs; use a value < 1 or more stimuli")
    ijk = vox[["i", "j", "k"]].to_numpy()
    fields = _brain.smooth_fields(rng_vox, shape, ijk, 8 + len(categories),
                                  smoothness_mm / float(resolution_mm))
    raw_w = {"retinotopic": _retinotopic_weights(rng_vox, vox, fields, grid, n_orientations,
                                                 wavelengths),
             "category": _category_weights(vox, fields[8:], categories)}
    responsive = vox["roi_kind"].to_numpy() != "none"
    cols = np.flatnonzero(responsive)  # only responsive voxels have a signal
    raw = sum(feats[s].astype(np.float64) @ raw_w[s][:, cols] for s in FEATURE_SPACES)
    scale, intercept = np.zeros(len(vox)), np.zeros(len(vox))
    scale[cols], intercept[cols] = _standardise(raw)
    weights = {}
    for space, w in raw_w.items():
        weights[space] = np.zeros(w.shape, dtype=np.float32)
        weights[space][:, cols] = w[:, cols] * scale[cols]
    signal = np.zeros((len(images), len(vox)), dtype=np.float32)
    signal[:, cols] = raw * scale[cols] + intercept[cols]
    vox["prf_x"], vox["prf_y"], vox["prf_size"] = _prf_columns(vox, fields)
    for col in ("prf_x", "prf_y", "prf_size"):
        vox[f"{col}_deg"] = vox[col] * (FIELD_OF_VIEW_DEG / 2)
    level = vox["roi"].where(vox["roi_kind"] != "category", "category")
    ev = level.map(_EV_MEAN).to_numpy(float) * np.exp(0.25 * fields[6])
    target_ev = np.where(responsive, np.clip(ev, 0.05, 0.8), 0.0)
    return _GroundTruth(stimuli, images, feats, _feature_coords(grid, n_orientations, wavelengths,
                                                                categories),
                        weights, intercept.astype(np.float32), signal, target_ev, vox, affine,
                        shape)


def _prf_columns(vox, fields):
    sel = vox["roi_kind"].to_numpy() == "retinotopic"
    cols = [np.full(len(vox), np.nan) for _ in range(3)]
    if sel.any():
        for col, val in zip(cols, _brain.prf_parameters(vox[sel], fields[:3, sel]), strict=True):
            col[sel] = val
    return cols


def _feature_coords(grid, n_ori, wavelengths, categories) -> dict[str, dict[str, np.ndarray]]:
    centers = (np.arange(grid) + 0.5) / grid * 2 - 1
    row, col, wl, ori = np.meshgrid(np.arange(grid), np.arange(grid), np.arange(len(wavelengths)),
                                    np.arange(n_ori), indexing="ij")
    return {
        "retinotopic": {"rf_x": centers[col.ravel()], "rf_y": -centers[row.ravel()],
                        "wavelength_px": np.asarray(wavelengths, float)[wl.ravel()],
                        "orientation_deg": 180.0 * ori.ravel() / n_ori},
        "category": {"category_name": np.asarray(categories, dtype=str)},
    }


def _trial_table(n_stimuli, n_repeats, trials_per_run, runs_per_session, rng) -> pd.DataFrame:
    ids = rng.permutation(np.repeat(np.arange(n_stimuli), n_repeats))
    order = np.argsort(ids, kind="stable")
    repeat = np.empty_like(ids)
    repeat[order] = np.tile(np.arange(n_repeats), n_stimuli)
    run = np.arange(ids.size) // trials_per_run
    return pd.DataFrame({"stimulus_id": ids, "repeat": repeat, "run": run,
                         "session": run // runs_per_session})


def make_synthetic_fmri(
    n_stimuli: int = 1000,
    n_repeats: int = 3,
    *,
    image_size: int = 32,
    resolution_mm: float = 4.0,
    seed: int = 0,
    subject: int = 0,
    categories: Sequence[str] = tuple(SHAPE_CATEGORIES),
    grating_fraction: float = 0.25,
    feature_grid: int = 8,
    n_orientations: int = 4,
    wavelengths: Sequence[float] = (4.0, 8.0),
    trials_per_run: int = 75,
    runs_per_session: int = 10,
    mask: str = "brain",
    smoothness_mm: float = 8.0,
) -> xr.Dataset:
    """Synthetic single-trial fMRI betas with ground truth, like one NSD subject.

    Parameters
    ----------
    n_stimuli : int
        Unique images (default 1000).
    n_repeats : int
        Presentations of each image (default 3, as in NSD); >= 2 to estimate a noise ceiling.
    image_size : int
        Side of the square grayscale images in pixels (32 or 64; divisible by ``feature_grid``).
    resolution_mm : float
        Voxel size of the MNI152 mask (whole mm; 4 -> 29,398 voxels in the brain mask).
    seed : int
        Everything is a deterministic function of the seed (keyword-only).
    subject : int
        Which brain saw the stimuli (>= 0, keyword-only). Subjects of one ``seed`` share the
        stimuli, images, features and trial order; each has its own voxel parameter fields
        (pRFs, tuning, category weights, explainable variance: hence its own weights, signal
        and ``noise_sd``) and its own noise. Subject 0 is the dataset of earlier versions.
    categories : sequence of str
        Shape categories (subset of :data:`~brainmodels.datasets.stimuli.SHAPE_CATEGORIES`).
    grating_fraction : float
        Fraction of the stimuli that are gratings.
    feature_grid, n_orientations, wavelengths
        Layout of the retinotopic (local oriented energy) feature space:
        ``feature_grid**2 * n_orientations * len(wavelengths)`` features.
    trials_per_run, runs_per_session : int
        Trials are shuffled and cut into runs and sessions (NSD: ~62 trials per run, 12 runs
        per session).
    mask : {"brain", "gm"}
        nilearn's MNI152 brain or grey-matter mask.
    smoothness_mm : float
        Width (sd, mm) of the Gaussian random fields behind the smooth per-voxel parameters.

    Returns
    -------
    xarray.Dataset
        ``betas (trial, voxel)`` float32 with trial coords ``stimulus_id``, ``run``,
        ``session``, ``repeat``; ``images (stimulus, height, width)`` with stimulus coords
        ``category``, ``kind``, ``orientation``, ``position_x``, ``position_y``, ``size``,
        ``spatial_frequency``, ``contrast``; ``signal (stimulus, voxel)``; ``noise_sd``,
        ``true_ev``, ``noise_ceiling``, ``responsive``, ``intercept`` (voxel);
        ``features_<space> (stimulus, feature_<space>)`` and ``weights_<space>
        (feature_<space>, voxel)`` for ``retinotopic`` and ``category``; voxel coords ``i, j,
        k, x, y, z, roi, roi_kind, hemisphere, prf_x, prf_y, prf_size`` (image units,
        -1..1, y up) and ``prf_x_deg, prf_y_deg, prf_size_deg`` (degrees of visual angle: image
        units x ``field_of_view_deg / 2``); attrs ``affine``, ``volume_shape``,
        ``field_of_view_deg`` (8.4, as NSD), ``seed``, ``subject`` and provenance.

    Raises
    ------
    ValueError
        For a non-positive size, fewer than 1 repeat, an unknown category or mask, an image
        size not divisible by the feature grid, or a ``subject`` that is not an integer >= 0.

    References
    ----------
    Allen, E. J. et al. (2022). A massive 7T fMRI dataset to bridge cognitive neuroscience and
    artificial intelligence. Nat. Neurosci. 25, 116-126 (NSD design: 10,000 images x 3
    repeats, sessions of 12 runs).
    Kay, K. N. et al. (2008). Nature 452, 352-355 (Gabor-energy voxel encoding model).

    Examples
    --------
    >>> ds = make_synthetic_fmri(200, 2, resolution_mm=8, seed=0)
    >>> ds.betas.dims
    ('trial', 'voxel')
    >>> other = make_synthetic_fmri(200, 2, resolution_mm=8, seed=0, subject=1)
    >>> bool((other.images == ds.images).all()), bool((other.signal == ds.signal).all())
    (True, False)
    """
    subject = _check_subject(subject)
    _check_sizes(n_stimuli=n_stimuli, n_repeats=n_repeats, trials_per_run=trials_per_run,
                 runs_per_session=runs_per_session, feature_grid=feature_grid)
    n_features = feature_grid**2 * n_orientations * len(wavelengths) + len(categories)
    check_memory(synthetic_fmri_bytes(n_stimuli, n_repeats, resolution_mm, n_features,
                                      image_size),
                 what=f"make_synthetic_fmri(n_stimuli={n_stimuli}, n_repeats={n_repeats}, "
                      f"resolution_mm={resolution_mm:g})",
                 knob="lower n_stimuli or n_repeats, or raise resolution_mm (8 mm has 1/8 of "
                      "the voxels of 4 mm)")
    gt = _generate(n_stimuli, image_size, resolution_mm, seed, categories=tuple(categories),
                   grating_fraction=grating_fraction, grid=feature_grid,
                   n_orientations=n_orientations, wavelengths=tuple(wavelengths), mask=mask,
                   smoothness_mm=smoothness_mm, subject=subject)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    trials = _trial_table(n_stimuli, n_repeats, trials_per_run, runs_per_session, rng)
    noise_sd = _noise_sd(gt.signal, gt.target_ev)
    betas = _gaussian_noise((len(trials), len(noise_sd)), noise_sd, seed, subject=subject)
    cols = np.flatnonzero(gt.target_ev > 0)
    betas[:, cols] += gt.signal[:, cols][trials["stimulus_id"].to_numpy()]
    ds = _assemble(gt, noise_sd)
    ds["betas"] = xr.DataArray(betas, dims=("trial", "voxel"), attrs={"units": "a.u."})
    ds = ds.assign_coords({c: ("trial", trials[c].to_numpy()) for c in trials})
    ds.attrs.update(provenance(
        "make_synthetic_fmri",
        params=dict(n_stimuli=n_stimuli, n_repeats=n_repeats, image_size=image_size,
                    resolution_mm=resolution_mm, categories=list(categories),
                    grating_fraction=grating_fraction, feature_grid=feature_grid,
                    n_orientations=n_orientations, wavelengths=list(wavelengths),
                    trials_per_run=trials_per_run, runs_per_session=runs_per_session, mask=mask,
                    smoothness_mm=smoothness_mm, subject=subject),
        seed=seed, units="a.u. (signal has unit variance over stimuli)"))
    ds.attrs["subject"] = subject
    return ds


#: brain-mask volume in mm^3 (nilearn's MNI152 mask: 29,398 voxels of 4 mm)
_BRAIN_MM3 = 1.9e6


def synthetic_fmri_bytes(n_stimuli: int, n_repeats: int, resolution_mm: float,
                         n_features: int, image_size: int = 32) -> float:
    """Peak memory of :func:`make_synthetic_fmri`, estimated from its sizes (float32 betas and
    their noise, the signal and its gathered copy, weights, images).

    Examples
    --------
    >>> round(synthetic_fmri_bytes(1000, 3, 4.0, 516) / 1e9, 1)  # the 4 mm demo
    1.1
    """
    voxels = _BRAIN_MM3 / float(resolution_mm) ** 3
    trials = n_stimuli * n_repeats
    return 4.0 * (voxels * (2 * trials + 2 * n_stimuli + 2 * n_features)
                  + n_stimuli * image_size**2)


def _gaussian_noise(shape: tuple[int, int], sd: np.ndarray, seed: int, block: int = 256,
                    *, subject: int = 0):
    """float32 N(0, sd**2) noise, filled in row blocks on a thread pool.

    Each block has its own child seed, so the result does not depend on the number of threads.
    """
    out = np.empty(shape, dtype=np.float32)
    parent = (_subject_seed(seed, _NOISE_STREAM, subject) if subject
              else np.random.SeedSequence([int(seed), _NOISE_STREAM]))
    children = parent.spawn(-(-shape[0] // block))
    sd32 = sd.astype(np.float32)

    def fill(b: int) -> None:
        rows = out[b * block : (b + 1) * block]
        np.random.default_rng(children[b]).standard_normal(rows.shape, dtype=np.float32, out=rows)
        rows *= sd32

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(len(children))))
    return out


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        minimum = 2 if name == "n_stimuli" else 1
        if int(value) != value or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _noise_sd(signal: np.ndarray, target_ev: np.ndarray) -> np.ndarray:
    """Noise sd giving ``target_ev`` (responsive voxels) or 1 (non-responsive voxels)."""
    var = _signal_var(signal, target_ev > 0)
    safe_ev = np.where(target_ev > 0, target_ev, 1.0)
    return np.where(target_ev > 0, np.sqrt(var * (1 - safe_ev) / safe_ev), 1.0)


def _signal_var(signal: np.ndarray, responsive: np.ndarray) -> np.ndarray:
    """Variance over stimuli (float64), computed only where the signal is not zero."""
    var = np.zeros(signal.shape[1])
    var[responsive] = signal[:, responsive].astype(np.float64).var(0)
    return var


def _assemble(gt: _GroundTruth, noise_sd: np.ndarray) -> xr.Dataset:
    """The stimulus- and voxel-level part of the dataset (shared with the BOLD variant)."""
    var = _signal_var(gt.signal, gt.target_ev > 0)
    true_ev = var / (var + noise_sd**2)
    vox = gt.voxels
    stim = gt.stimuli
    data = {
        "images": (("stimulus", "height", "width"), gt.images),
        "signal": (("stimulus", "voxel"), gt.signal),
        "noise_sd": ("voxel", noise_sd.astype(np.float32)),
        "true_ev": ("voxel", true_ev.astype(np.float32)),
        "noise_ceiling": ("voxel", np.sqrt(true_ev).astype(np.float32)),
        "responsive": ("voxel", vox["roi_kind"].to_numpy() != "none"),
        "intercept": ("voxel", gt.intercept),
    }
    coords: dict = {"stimulus": np.arange(len(stim)), "voxel": np.arange(len(vox))}
    coords |= {c: ("stimulus", stim[c].to_numpy()) for c in stim.columns if c != "phase"}
    coords |= {c: ("voxel", vox[c].to_numpy()) for c in vox.columns}
    for space in FEATURE_SPACES:
        dim = f"feature_{space}"
        data[f"features_{space}"] = (("stimulus", dim), gt.features[space])
        data[f"weights_{space}"] = ((dim, "voxel"), gt.weights[space])
        coords[dim] = np.arange(gt.features[space].shape[1])
        coords |= {c: (dim, v) for c, v in gt.feature_coords[space].items()}
    ds = xr.Dataset(data, coords=coords)
    for c in ("kind", "category", "roi", "roi_kind", "hemisphere", "category_name"):
        ds.coords[c] = ds[c].astype(str)
    ds.attrs.update(affine=gt.affine.tolist(), volume_shape=list(gt.volume_shape),
                    field_of_view_deg=FIELD_OF_VIEW_DEG)
    return ds


def ground_truth_features(ds: xr.Dataset, space: str) -> xr.DataArray:
    """The true feature space ``space`` of a synthetic dataset as a (stimulus, feature) array.

    For the BOLD variant the array is (time, feature): stimulus features at TR resolution.

    Raises
    ------
    ValueError
        If ``space`` is not one of the spaces stored in ``ds``.
    """
    known = sorted(str(v)[len("features_"):] for v in ds.data_vars if str(v).startswith("features_"))
    if space not in known:
        raise ValueError(f"space must be one of {known}, got {space!r}")
    da = ds[f"features_{space}"]
    return da.rename({f"feature_{space}": "feature"}).rename(f"features_{space}")
