"""Synthetic BOLD time series with ground truth: the synthetic fMRI signals through the SPM HRF.

Each stimulus is shown as a short event in one of several runs; the neural response of a
voxel to the event is its ground-truth ``signal`` for that stimulus (see
:mod:`brainmodels.datasets.synthetic`). The BOLD series is the event boxcars convolved with
nilearn's SPM canonical HRF (unit area, as in nilearn's ``compute_regressor``), sampled at
the frame times ``TR * n``, plus white Gaussian noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from brainmodels._types import ArrayLike
from brainmodels.data import provenance

from .stimuli import SHAPE_CATEGORIES
from .synthetic import (
    _NOISE_STREAM,
    FEATURE_SPACES,
    _assemble,
    _check_sizes,
    _check_subject,
    _generate,
    _subject_seed,
)

__all__ = ["make_synthetic_bold", "hrf_regressors"]


def hrf_regressors(
    onsets: ArrayLike, durations: ArrayLike, frame_times: ArrayLike,
    *, tr: float, oversampling: int = 50,
) -> np.ndarray:
    """One HRF-convolved boxcar per event, sampled at ``frame_times``: shape (time, event).

    The event ``[onset, onset + duration)`` convolved with the SPM HRF of unit area equals
    ``H(t - onset) - H(t - onset - duration)`` with ``H`` the HRF's cumulative integral; ``H``
    is tabulated from ``nilearn.glm.first_level.spm_hrf`` on a grid of ``tr / oversampling``
    seconds and interpolated, which is what nilearn's ``compute_regressor`` computes up to the
    rounding of onsets to that grid.

    References
    ----------
    Friston, K. J. et al. (1998). Event-related fMRI: characterizing differential responses.
    NeuroImage 7, 30-40 (canonical HRF as a difference of gammas).
    """
    from nilearn.glm.first_level import spm_hrf

    dt = tr / oversampling
    kernel = spm_hrf(tr, oversampling=oversampling)  # sums to 1 on the grid of step dt
    grid = np.arange(kernel.size + 1) * dt
    cumulative = np.concatenate([[0.0], np.cumsum(kernel)])
    on = np.asarray(onsets, float)[None, :]
    off = on + np.asarray(durations, float)[None, :]
    t = np.asarray(frame_times, float)[:, None]
    # the grid's last value is 1 (the whole kernel); beyond it the response has ended
    return np.interp(t - on, grid, cumulative, left=0.0, right=1.0) - np.interp(
        t - off, grid, cumulative, left=0.0, right=1.0
    )


def _event_table(n_stimuli, n_runs, n_repeats, tr, duration, soa, rng) -> tuple[pd.DataFrame, int]:
    """Shuffled events cut into runs; onsets within each run; frames per run."""
    ids = rng.permutation(np.repeat(np.arange(n_stimuli), n_repeats))
    runs = np.array_split(ids, n_runs)
    rows = []
    n_frames = 0
    for r, stims in enumerate(runs):
        gaps = soa + rng.uniform(0.0, soa / 2, stims.size)
        onsets = 8.0 + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
        rows.append(pd.DataFrame({"onset": onsets, "duration": duration,
                                  "event_stimulus": stims, "event_run": r}))
        n_frames = max(n_frames, int(np.ceil((onsets[-1] + 24.0) / tr)))
    return pd.concat(rows, ignore_index=True), n_frames


def _features_at_tr(events, feats, frame_times, tr) -> np.ndarray:
    """Stimulus features averaged over each TR bin [t, t + tr), weighted by event overlap."""
    start = frame_times[:, None]
    on = events["onset"].to_numpy()[None, :]
    off = on + events["duration"].to_numpy()[None, :]
    overlap = np.clip(np.minimum(start + tr, off) - np.maximum(start, on), 0.0, None) / tr
    return (overlap @ feats[events["event_stimulus"].to_numpy()]).astype(np.float32)


def make_synthetic_bold(
    n_stimuli: int = 240,
    n_runs: int = 4,
    *,
    n_repeats: int = 1,
    tr: float = 2.0,
    event_duration: float = 1.0,
    soa: float = 4.0,
    image_size: int = 32,
    resolution_mm: float = 4.0,
    seed: int = 0,
    subject: int = 0,
    categories: Sequence[str] = tuple(SHAPE_CATEGORIES),
    feature_grid: int = 8,
    mask: str = "brain",
) -> xr.Dataset:
    """A BOLD time series made from the synthetic fMRI ground truth and the SPM HRF.

    Parameters
    ----------
    n_stimuli, n_runs : int
        Unique stimuli and runs; each stimulus is shown ``n_repeats`` times, shuffled.
    tr : float
        Repetition time in seconds (> 0).
    event_duration, soa : float
        Event duration and mean stimulus-onset asynchrony in seconds (each gap is
        ``soa + U(0, soa / 2)``).
    image_size, resolution_mm, seed, categories, feature_grid, mask
        As in :func:`~brainmodels.datasets.make_synthetic_fmri` (same seed -> same stimuli,
        voxels and weights for the same sizes).
    subject : int
        As in :func:`~brainmodels.datasets.make_synthetic_fmri`: subjects of one ``seed`` share
        the stimuli and the event design; each has its own voxels' parameters and noise.

    Returns
    -------
    xarray.Dataset
        ``bold (time, voxel)`` float32 with ``time`` (s since the first run started, runs
        back to back), ``run (time)`` and ``frame_time (time)`` (s within the run);
        ``features_<space> (time, feature_<space>)``: stimulus features at TR resolution
        before the HRF; events ``onset`` (s within the run), ``duration``,
        ``event_stimulus``, ``event_run`` (dim ``event``); the stimulus-level ground truth
        (``images``, ``signal``, ``weights_<space>``, ``stimulus_features_<space>``) and the
        same voxel coords as the fMRI variant; ``noise_sd``, ``true_ev`` (explainable
        variance of the time series), ``noise_ceiling`` and ``responsive`` per voxel.

    Raises
    ------
    ValueError
        If ``tr``, ``event_duration`` or ``soa`` is not positive, sizes are invalid, or
        ``subject`` is not an integer >= 0.
    """
    subject = _check_subject(subject)
    for name, value in {"tr": tr, "event_duration": event_duration, "soa": soa}.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    _check_sizes(n_stimuli=n_stimuli, n_runs=n_runs, n_repeats=n_repeats,
                 feature_grid=feature_grid)
    gt = _generate(n_stimuli, image_size, resolution_mm, seed, categories=tuple(categories),
                   grating_fraction=0.25, grid=feature_grid, n_orientations=4,
                   wavelengths=(4.0, 8.0), mask=mask, smoothness_mm=8.0, subject=subject)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    events, n_frames = _event_table(n_stimuli, n_runs, n_repeats, tr, event_duration, soa, rng)
    frame_times = np.arange(n_frames) * tr
    responsive = np.flatnonzero(gt.target_ev > 0)
    bold_signal, tr_feats = [], {s: [] for s in FEATURE_SPACES}
    for r in range(n_runs):
        ev = events[events["event_run"] == r]
        reg = hrf_regressors(ev["onset"], ev["duration"], frame_times, tr=tr)
        bold_signal.append(reg @ gt.signal[ev["event_stimulus"].to_numpy()][:, responsive])
        for s in FEATURE_SPACES:
            tr_feats[s].append(_features_at_tr(ev, gt.features[s], frame_times, tr))
    clean = np.concatenate(bold_signal)
    var = clean.var(0)
    noise = np.ones(gt.signal.shape[1])
    noise[responsive] = np.sqrt(var * (1 - gt.target_ev[responsive]) / gt.target_ev[responsive])
    if subject:  # the same events, the subject's own noise
        rng = np.random.default_rng(_subject_seed(seed, _NOISE_STREAM, subject))
    bold = rng.standard_normal((clean.shape[0], noise.size), dtype=np.float32)
    bold *= noise.astype(np.float32)
    bold[:, responsive] += clean.astype(np.float32)
    return _bold_dataset(gt, bold, noise, clean, responsive, tr_feats, events, frame_times,
                         n_runs, dict(n_stimuli=n_stimuli, n_runs=n_runs, n_repeats=n_repeats,
                                      tr=tr, event_duration=event_duration, soa=soa,
                                      image_size=image_size, resolution_mm=resolution_mm,
                                      categories=list(categories), feature_grid=feature_grid,
                                      mask=mask, subject=subject), seed)


def _bold_dataset(gt, bold, noise, clean, responsive, tr_feats, events, frame_times, n_runs,
                  params, seed) -> xr.Dataset:
    ds = _assemble(gt, noise)
    ds = ds.rename({f"features_{s}": f"stimulus_features_{s}" for s in FEATURE_SPACES})
    var = np.zeros(noise.size)
    var[responsive] = clean.var(0)
    true_ev = var / (var + noise**2)
    ds["true_ev"] = ("voxel", true_ev.astype(np.float32))
    ds["noise_ceiling"] = ("voxel", np.sqrt(true_ev).astype(np.float32))
    n_frames = frame_times.size
    ds["bold"] = xr.DataArray(bold, dims=("time", "voxel"), attrs={"units": "a.u."})
    for s in FEATURE_SPACES:
        ds[f"features_{s}"] = (("time", f"feature_{s}"), np.concatenate(tr_feats[s]))
    ds = ds.assign_coords(
        time=np.arange(n_frames * n_runs) * params["tr"],
        run=("time", np.repeat(np.arange(n_runs), n_frames)),
        frame_time=("time", np.tile(frame_times, n_runs)),
        event=np.arange(len(events)),
    )
    for col in ("onset", "duration", "event_stimulus", "event_run"):
        ds[col] = ("event", events[col].to_numpy())
    ds["time"].attrs["units"] = "s"
    ds.attrs.update(provenance("make_synthetic_bold", params=params, seed=seed,
                               units={"time": "s", "bold": "a.u."}))
    ds.attrs["tr"] = float(params["tr"])
    ds.attrs["subject"] = params["subject"]
    return ds
