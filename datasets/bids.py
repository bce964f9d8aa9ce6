"""Single-trial betas from raw BIDS BOLD runs + events, with nilearn's first-level GLM.

Two estimators of one response per stimulus (Mumford et al. 2012):

* ``"lsa"`` (least squares - all, default): one GLM per run with one regressor per stimulus
  shown in that run; the stimulus' effect size is its beta.
* ``"lss"`` (least squares - separate): one GLM per event, with the event as the target
  regressor and all other events of the run collapsed into one; slower, more robust when
  events overlap strongly.

References
----------
Mumford, J. A., Turner, B. O., Ashby, F. G. & Poldrack, R. A. (2012). Deconvolving BOLD
activation in event-related designs for multivoxel pattern classification analyses.
NeuroImage 59, 2636-2643 (LS-A and LS-S, Fig. 1).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainmodels.data import provenance

from . import _validate as V
from .nifti import _binary_mask, _load

__all__ = ["betas_from_bids", "find_bids_runs"]

_REQUIRED_EVENT_COLUMNS = ("onset", "duration")


def find_bids_runs(bids_root: str | os.PathLike, subject: str, task: str) -> pd.DataFrame:
    """BOLD runs of ``sub-<subject>`` for ``task``: columns bold, events, session, run, tr.

    Raises
    ------
    FileNotFoundError
        If ``bids_root`` or the subject folder does not exist or no BOLD run matches.
    """
    root = V.existing_file(bids_root, "bids_root")
    sub = str(subject).removeprefix("sub-")
    V.existing_file(root / f"sub-{sub}", f"subject folder of subject {sub!r}")
    bolds = sorted((root / f"sub-{sub}").glob(f"**/func/sub-{sub}_*task-{task}_*bold.nii*"))
    if not bolds:
        raise FileNotFoundError(
            f"no BOLD run for subject {sub!r}, task {task!r} under {root} (expected "
            f"sub-{sub}/[ses-*/]func/sub-{sub}_[ses-*_]task-{task}_[run-*_]bold.nii.gz)"
        )
    rows = []
    for n, bold in enumerate(bolds):
        stem = re.sub(r"_bold\.nii(\.gz)?$", "", bold.name)
        run = re.search(r"_run-(\d+)", stem)
        ses = re.search(r"_ses-([A-Za-z0-9]+)", stem)
        rows.append({"bold": bold, "events": bold.with_name(stem + "_events.tsv"),
                     "sidecar": bold.with_name(stem + "_bold.json"),
                     "run": int(run.group(1)) if run else n + 1,
                     "session": ses.group(1) if ses else ""})
    table = pd.DataFrame(rows)
    top = root / f"task-{task}_bold.json"
    table["tr"] = [_sidecar_tr(s, top) for s in table["sidecar"]]
    return table


def _sidecar_tr(sidecar: Path, top: Path) -> float | None:
    for path in (sidecar, top):  # BIDS inheritance: the run's sidecar wins
        if path.exists():
            try:
                meta = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"sidecar {path} is not valid JSON: {err}") from err
            if "RepetitionTime" in meta:
                return float(meta["RepetitionTime"])
    return None


def _read_events(path: Path, stimulus_column: str, n_frames: int, tr: float) -> pd.DataFrame:
    events = V.read_table(path, "events file")
    missing = [c for c in (*_REQUIRED_EVENT_COLUMNS, stimulus_column) if c not in events]
    if missing:
        raise ValueError(f"events file {path} lacks column(s) {missing}; it has "
                         f"{list(events.columns)}")
    events = events.dropna(subset=[stimulus_column]).reset_index(drop=True)
    if events.empty:
        raise ValueError(f"events file {path} has no event with a {stimulus_column!r} value")
    end = n_frames * tr
    late = events["onset"].to_numpy() >= end
    if late.any():
        raise ValueError(
            f"events file {path} has {int(late.sum())} onset(s) at or after the end of its run "
            f"({n_frames} volumes x TR {tr} s = {end} s): the events and the BOLD run do not match"
        )
    return events


def _fit_glm(img, events: pd.DataFrame, tr: float, mask, options: dict[str, Any]):
    """nilearn's FirstLevelModel fitted to one run (events: onset, duration, trial_type)."""
    from nilearn.glm.first_level import FirstLevelModel

    glm = FirstLevelModel(t_r=tr, mask_img=mask, minimize_memory=True, **options)
    with warnings.catch_warnings():  # nilearn notes that the given mask is used: it is meant
        warnings.filterwarnings("ignore", message=".*mask was given at masker creation")
        return glm.fit(img, events=events[["onset", "duration", "trial_type"]])


def _lsa(img, events, is_stim, labels, tr, mask, options, masker):
    """One GLM, one regressor per stimulus label: (betas (label, voxel), labels, first onset)."""
    names = {lab: f"s{n:05d}" for n, lab in enumerate(pd.unique(labels[is_stim]))}
    kind = [names[lab] if s else "nuisance" for lab, s in zip(labels, is_stim, strict=True)]
    ev = events.assign(trial_type=kind)
    glm = _fit_glm(img, ev, tr, mask, options)
    betas = [masker.transform(glm.compute_contrast(c, output_type="effect_size")).ravel()
             for c in names.values()]
    onsets = [events["onset"][is_stim & (labels == lab)].min() for lab in names]
    return np.stack(betas), np.asarray(list(names), dtype=object), np.asarray(onsets)


def _lss(img, events, is_stim, labels, tr, mask, options, masker):
    """One GLM per stimulus event (target vs all other events): one beta per event."""
    betas, labs, onsets = [], [], []
    for n in np.flatnonzero(is_stim):
        kind = np.where(is_stim, "others", "nuisance").astype(object)
        kind[n] = "target"
        glm = _fit_glm(img, events.assign(trial_type=kind), tr, mask, options)
        betas.append(masker.transform(glm.compute_contrast("target",
                                                           output_type="effect_size")).ravel())
        labs.append(labels[n])
        onsets.append(events["onset"].iloc[n])
    return np.stack(betas), np.asarray(labs, dtype=object), np.asarray(onsets)


#: Single-trial estimators (a registry; see the module docstring).
ESTIMATORS: dict[str, Callable] = {"lsa": _lsa, "lss": _lss}


def betas_from_bids(
    bids_root: str | os.PathLike,
    subject: str,
    task: str,
    *,
    method: str = "lsa",
    mask_img: Any = None,
    stimulus_column: str = "trial_type",
    ignore: Sequence[str] = (),
    tr: float | None = None,
    hrf_model: str = "spm",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    noise_model: str = "ar1",
    signal_scaling: int | bool = 0,
    smoothing_fwhm: float | None = None,
    on_bad_voxels: str = "raise",
    progress: Callable | None = None,
) -> xr.Dataset:
    """Estimate one beta per stimulus (per run) from raw BIDS BOLD and events files.

    Parameters
    ----------
    bids_root : path
        BIDS dataset root (``sub-<label>/[ses-<label>/]func/*_bold.nii.gz`` + ``*_events.tsv``).
    subject, task : str
        Subject label (with or without ``sub-``) and task label.
    method : {"lsa", "lss"}
        Least-squares-all (default) or least-squares-separate (see module docstring).
    mask_img : path or image, optional
        Brain mask on the BOLD grid; default: nilearn's EPI mask of the first run, reused.
    stimulus_column : str
        Events column naming the stimulus (default ``trial_type``).
    ignore : sequence of str
        Values of ``stimulus_column`` that are modelled as nuisance, not estimated.
    tr : float, optional
        Repetition time (s); default from the BIDS sidecar ``RepetitionTime`` or the header.
    hrf_model, drift_model, high_pass, noise_model, signal_scaling, smoothing_fwhm
        Passed to ``nilearn.glm.first_level.FirstLevelModel`` (``signal_scaling=0``: betas
        in percent signal change; ``False``: in the data's units).
    on_bad_voxels : {"raise", "drop"}
        What to do with voxels whose betas are NaN or constant.
    progress : callable, optional
        Wraps the iterable of runs (e.g. a tqdm progress bar).

    Returns
    -------
    xarray.Dataset
        ``betas (trial, voxel)``: one trial per (run, stimulus) for ``lsa``, per event for
        ``lss``; trial coords ``stimulus_id`` (index into the sorted unique stimulus labels),
        ``stimulus`` (label), ``run``, ``session``, ``onset``; voxel coords ``i, j, k, x, y,
        z``; attrs ``affine``, ``volume_shape``, ``tr``, ``method``.

    Raises
    ------
    FileNotFoundError
        Missing root, subject, BOLD runs or events files (named).
    ValueError
        Unknown ``method``, events lacking columns or extending past the run, no TR,
        an empty mask, or bad voxels with ``on_bad_voxels="raise"``.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"method must be one of {sorted(ESTIMATORS)}, got {method!r}")
    runs = find_bids_runs(bids_root, subject, task)
    options = dict(hrf_model=hrf_model, drift_model=drift_model, high_pass=high_pass,
                   noise_model=noise_model, signal_scaling=signal_scaling,
                   smoothing_fwhm=smoothing_fwhm)
    mask = _binary_mask(mask_img)[0] if mask_img is not None else None
    blocks = []
    iterator = runs.itertuples() if progress is None else progress(list(runs.itertuples()))
    for row in iterator:
        img = _load(row.bold, "BOLD run")
        if img.ndim != 4:
            raise ValueError(f"BOLD run {row.bold} must be 4D, got shape {img.shape}")
        run_tr = _run_tr(tr, row, img)
        V.existing_file(row.events, "events file")
        events = _read_events(row.events, stimulus_column, img.shape[3], run_tr)
        labels = events[stimulus_column].astype(str).to_numpy()
        is_stim = ~np.isin(labels, [str(i) for i in ignore])
        if mask is None:
            glm = _fit_glm(img, events.assign(trial_type="all"), run_tr, None, options)
            mask = _binary_mask(glm.masker_.mask_img_)[0]
        masker = _masker(mask)
        betas, labs, onsets = ESTIMATORS[method](img, events, is_stim, labels, run_tr, mask,
                                                 options, masker)
        blocks.append((betas, labs, onsets, row.run, row.session, run_tr))
    return _bids_dataset(blocks, mask, method, on_bad_voxels, dict(bids_root=str(bids_root),
                         subject=str(subject), task=task, **options))


def _run_tr(tr, row, img) -> float:
    value = tr if tr is not None else row.tr
    if value is None or not np.isfinite(value):
        value = float(img.header.get_zooms()[3]) if len(img.header.get_zooms()) > 3 else None
    if value is None or value <= 0:
        raise ValueError(f"no repetition time for {row.bold}: pass tr= or add RepetitionTime "
                         "to its JSON sidecar")
    return float(value)


def _masker(mask):
    from nilearn.maskers import NiftiMasker

    return NiftiMasker(mask_img=mask, standardize=None).fit()


def _bids_dataset(blocks, mask, method, on_bad_voxels, params) -> xr.Dataset:
    betas = np.concatenate([b[0] for b in blocks]).astype(np.float64)
    labels = np.concatenate([b[1] for b in blocks]).astype(str)
    ids, _ = V.stimulus_ids(labels)
    trial = {
        "stimulus_id": ids, "stimulus": labels,
        "onset": np.concatenate([b[2] for b in blocks]),
        "run": np.concatenate([np.full(len(b[1]), b[3]) for b in blocks]),
        "session": np.concatenate([np.full(len(b[1]), str(b[4])) for b in blocks]),
    }
    keep = V.check_voxels(betas, name="the estimated betas", on_bad=on_bad_voxels)
    mask_bool = np.asarray(mask.get_fdata()) > 0
    coords = {k: (d, v[keep]) for k, (d, v) in
              V.mask_voxel_coords(mask_bool, np.asarray(mask.affine)).items()}
    attrs = provenance("betas_from_bids", params=params)
    attrs |= {"affine": np.asarray(mask.affine).tolist(), "volume_shape": list(mask_bool.shape),
              "method": method, "tr": [float(b[5]) for b in blocks]}
    return V.betas_dataset(betas[:, keep], trial, coords, attrs)
