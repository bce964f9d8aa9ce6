"""Single-trial betas from BIDS BOLD runs + events, with nilearn's first-level GLM.

The BOLD runs are either the raw ones or fMRIPrep's preprocessed ones (``derivatives=``: the
``space-<label>_desc-preproc_bold`` images, their brain masks and the
``desc-confounds_timeseries`` regressors); the events always come from the raw dataset.

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

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainmodels.data import provenance

from . import _validate as V
from ._glm import (
    CONFOUND_SETS,
    ESTIMATORS,
    _confound_spec,
    _fit_glm,
    _read_events,
    _run_confounds,
)
from .nifti import _binary_mask, _load

__all__ = ["betas_from_bids", "find_bids_runs", "GLMOptions", "CONFOUND_SETS"]


@dataclasses.dataclass(frozen=True)
class GLMOptions:
    """Settings of the first-level GLM (``nilearn.glm.first_level.FirstLevelModel``).

    Attributes
    ----------
    hrf_model : str
        ``"spm"``, ``"glover"`` and their derivative variants, as nilearn names them.
    drift_model : {"cosine", "polynomial"} or None
    high_pass : float
        Cut-off of the cosine drift basis, Hz.
    noise_model : {"ar1", "ols"}
    signal_scaling : int or bool
        ``0``: betas in percent signal change (scaled by each voxel's mean over time);
        ``False``: in the data's units.
    smoothing_fwhm : float or None
        Spatial smoothing before the fit, mm.
    """

    hrf_model: str = "spm"
    drift_model: str | None = "cosine"
    high_pass: float = 0.01
    noise_model: str = "ar1"
    signal_scaling: int | bool = 0
    smoothing_fwhm: float | None = None



#: entities fMRIPrep adds to a raw run's name (the raw files' names are the rest)
_DERIVATIVE_ENTITIES = ("space", "res", "den", "desc")



def find_bids_runs(bids_root: str | os.PathLike, subject: str, task: str, *,
                   derivatives: str | os.PathLike | None = None,
                   space: str | None = None) -> pd.DataFrame:
    """BOLD runs of ``sub-<subject>`` for ``task``: columns bold, events, session, run, tr
    (and, with fMRIPrep ``derivatives``, mask, confounds, space).

    Files are found and their entities (session, run, acquisition, space) read by nilearn's
    BIDS interface (``get_bids_files``, ``parse_bids_filename``).

    Raises
    ------
    FileNotFoundError
        If ``bids_root``, ``derivatives`` or the subject folder does not exist or no BOLD run
        matches.
    ValueError
        If the derivatives hold several spaces and ``space`` does not pick one.
    """
    root = V.existing_file(bids_root, "bids_root")
    sub = str(subject).removeprefix("sub-")
    V.existing_file(root / f"sub-{sub}", f"subject folder of subject {sub!r}")
    if derivatives is not None:
        return _derivative_runs(root, V.existing_file(derivatives, "derivatives"), sub, task,
                                space)
    bolds = [(b, e) for b, e in _bids_files(root, sub, [("task", task)]) if "desc" not in e]
    if not bolds:
        raise FileNotFoundError(
            f"no BOLD run for subject {sub!r}, task {task!r} under {root} (expected "
            f"sub-{sub}/[ses-*/]func/sub-{sub}_[ses-*_]task-{task}_[run-*_]bold.nii.gz)"
        )
    rows = []
    for n, (bold, entities) in enumerate(bolds):
        stem = _name(entities)
        rows.append({"bold": bold, "events": bold.with_name(stem + "_events.tsv"),
                     "sidecar": bold.with_name(stem + "_bold.json"),
                     **_run_entities(entities, n)})
    table = pd.DataFrame(rows)
    top = root / f"task-{task}_bold.json"
    table["tr"] = [_sidecar_tr([s], top) for s in table["sidecar"]]
    return table


def _bids_files(root: Path, sub: str, filters) -> list[tuple[Path, dict[str, str]]]:
    """BOLD images under ``root`` (nilearn's BIDS query) with their parsed entities."""
    from nilearn.interfaces.bids import get_bids_files, parse_bids_filename

    paths = get_bids_files(root, file_tag="bold", file_type="nii*", sub_label=sub,
                           modality_folder="func", filters=filters)
    return [(Path(p), dict(parse_bids_filename(p)["entities"])) for p in sorted(paths)]


def _name(entities: dict[str, str], **replace: str | None) -> str:
    """The BIDS file stem of ``entities`` (in their order), some replaced."""
    return "_".join(f"{k}-{v}" for k, v in {**entities, **replace}.items())


def _raw_entities(entities: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in entities.items() if k not in _DERIVATIVE_ENTITIES}


def _run_entities(entities: dict[str, str], n: int) -> dict[str, Any]:
    run = entities.get("run")
    return {"run": int(run) if run is not None and run.isdigit() else n + 1,
            "session": entities.get("ses", "")}


def _derivative_runs(root: Path, deriv: Path, sub: str, task: str, space: str | None):
    """fMRIPrep's preprocessed runs, their masks and confounds, and the raw runs' events."""
    bolds = _bids_files(deriv, sub, [("task", task), ("desc", "preproc")])
    if not bolds:
        raise FileNotFoundError(
            f"no preprocessed BOLD run for subject {sub!r}, task {task!r} under {deriv} "
            f"(expected sub-{sub}/[ses-*/]func/sub-{sub}_[ses-*_]task-{task}_[run-*_]"
            "space-<label>_desc-preproc_bold.nii.gz, as fMRIPrep writes)")
    found = sorted({e.get("space", "") for _, e in bolds})
    if space is None and len(found) > 1:
        raise ValueError(f"the derivatives hold several spaces {found}: pass space=")
    chosen = found[0] if space is None else space
    bolds = [(b, e) for b, e in bolds if e.get("space", "") == chosen]
    if not bolds:
        raise FileNotFoundError(f"no preprocessed BOLD run in space {space!r}; the "
                                f"derivatives have {found}")
    rows = []
    for n, (bold, entities) in enumerate(bolds):
        raw = _name(_raw_entities(entities))
        raw_dir = root / bold.parent.relative_to(deriv)
        confounds = bold.with_name(raw + "_desc-confounds_timeseries.tsv")
        if not confounds.exists():  # fMRIPrep < 20.2
            confounds = bold.with_name(raw + "_desc-confounds_regressors.tsv")
        rows.append({
            "bold": bold, "events": raw_dir / f"{raw}_events.tsv",
            "sidecar": bold.with_name(_name(entities) + "_bold.json"),
            "raw_sidecar": raw_dir / f"{raw}_bold.json",
            "mask": bold.with_name(_name(entities, desc="brain") + "_mask.nii.gz"),
            "confounds": confounds, "space": chosen, **_run_entities(entities, n)})
    table = pd.DataFrame(rows)
    top = root / f"task-{task}_bold.json"
    table["tr"] = [_sidecar_tr([d, r], top)
                   for d, r in zip(table["sidecar"], table["raw_sidecar"], strict=True)]
    return table


def _sidecar_tr(sidecars: list[Path], top: Path) -> float | None:
    for path in (*sidecars, top):  # BIDS inheritance: the run's sidecar wins
        if path.exists():
            try:
                meta = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"sidecar {path} is not valid JSON: {err}") from err
            if "RepetitionTime" in meta:
                return float(meta["RepetitionTime"])
    return None


def betas_from_bids(
    bids_root: str | os.PathLike,
    subject: str,
    task: str,
    *,
    method: str = "lsa",
    derivatives: str | os.PathLike | None = None,
    space: str | None = None,
    confounds: str | Mapping[str, Any] | Sequence[str] | None = None,
    mask_img: Any = None,
    stimulus_column: str = "trial_type",
    ignore: Sequence[str] = (),
    tr: float | None = None,
    glm: GLMOptions = GLMOptions(),
    on_bad_voxels: str = "raise",
    progress: Callable | None = None,
) -> xr.Dataset:
    """Estimate one beta per stimulus (per run) from BIDS BOLD and events files.

    Parameters
    ----------
    bids_root : path
        BIDS dataset root (``sub-<label>/[ses-<label>/]func/*_bold.nii.gz`` + ``*_events.tsv``).
    subject, task : str
        Subject label (with or without ``sub-``) and task label.
    method : {"lsa", "lss"}
        Least-squares-all (default) or least-squares-separate (see module docstring).
    derivatives : path, optional
        fMRIPrep output folder (e.g. ``<bids_root>/derivatives/fmriprep``): the GLM then reads
        its ``space-<space>_desc-preproc_bold`` runs (events still from ``bids_root``).
    space : str, optional
        Output space of the derivatives (e.g. ``"MNI152NLin2009cAsym"``); needed only when
        they hold several.
    confounds : str, dict or sequence of str, optional
        Nuisance regressors of every run's GLM from fMRIPrep's
        ``desc-confounds_timeseries.tsv`` (needs ``derivatives``), read by nilearn's fMRIPrep
        interface:

        * a strategy name from :data:`CONFOUND_SETS`: nilearn's presets ``"simple"``
          (motion with derivatives and squares, WM/CSF, high-pass cosines), ``"scrubbing"``
          (the same, and high-motion volumes censored by a sample mask), ``"compcor"``,
          ``"ica_aroma"`` (``load_confounds_strategy``); or ``"motion"`` (the six rigid-body
          parameters) and ``"motion+wm_csf"`` (plus white-matter and CSF signals);
        * a dict of ``nilearn.interfaces.fmriprep.load_confounds`` arguments, e.g.
          ``{"strategy": ("motion", "scrub"), "motion": "full", "fd_threshold": 0.3}``;
        * a list of column names, taken as they are.

        A sample mask (scrubbing, non-steady-state volumes) censors those volumes in the GLM.
        Strategies with ``high_pass`` bring fMRIPrep's cosine drift regressors, which then
        replace the GLM's own ``drift_model`` (the same basis twice is a singular design).
    mask_img : path or image, optional
        Brain mask on the BOLD grid; default: with ``derivatives``, the intersection of the
        runs' fMRIPrep brain masks; otherwise nilearn's EPI mask of the first run, reused.
    stimulus_column : str
        Events column naming the stimulus (default ``trial_type``).
    ignore : sequence of str
        Values of ``stimulus_column`` that are modelled as nuisance, not estimated.
    tr : float, optional
        Repetition time (s); default from the BIDS sidecar ``RepetitionTime`` or the header.
    glm : GLMOptions
        The settings of ``nilearn.glm.first_level.FirstLevelModel`` (HRF, drift, noise
        model, scaling, smoothing).
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
        Missing root, derivatives, subject, BOLD runs, events, masks or confounds files
        (named).
    ValueError
        Unknown ``method``; events lacking columns or extending past the run; confounds
        without derivatives, lacking columns or of the wrong length; several spaces and no
        ``space``; no TR; an empty mask; bad voxels with ``on_bad_voxels="raise"``.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"method must be one of {sorted(ESTIMATORS)}, got {method!r}")
    spec = _confound_spec(confounds, derivatives)
    runs = find_bids_runs(bids_root, subject, task, derivatives=derivatives, space=space)
    if not isinstance(glm, GLMOptions):
        raise TypeError(f"glm must be a GLMOptions, got {type(glm).__name__}")
    options = dataclasses.asdict(glm)
    if mask_img is not None:
        mask = _binary_mask(mask_img)[0]
    elif derivatives is not None:
        mask = _mask_intersection(runs["mask"])
    else:
        mask = None
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
        conf, sample_mask = _run_confounds(spec, row, img.shape[3])
        run_options = options
        if conf is not None and any(str(c).startswith("cosine") for c in conf.columns):
            # fMRIPrep's cosines are the same DCT drift basis: both would make X singular
            run_options = {**options, "drift_model": None}
        betas, labs, onsets = ESTIMATORS[method](img, events, is_stim, labels, run_tr, mask,
                                                 run_options, masker, conf, sample_mask)
        blocks.append((betas, labs, onsets, row.run, row.session, run_tr))
    params = dict(bids_root=str(bids_root), subject=str(subject), task=task, **options)
    if derivatives is not None:
        params |= {"derivatives": str(derivatives), "space": str(runs["space"].iloc[0]),
                   "confounds": _spec_record(spec)}
    return _bids_dataset(blocks, mask, method, on_bad_voxels, params)


def _spec_record(spec):
    """JSON-able record of the confound choice for the dataset's provenance."""
    if spec is None:
        return None
    kind, value = spec
    if kind == "columns":
        return list(value)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}


def _mask_intersection(paths) -> Any:
    """The voxels inside every run's brain mask (fMRIPrep's masks differ slightly by run)."""
    import nibabel as nib

    first = None
    inside = None
    for path in paths:
        V.existing_file(path, "brain mask")
        img, voxels = _binary_mask(path)
        if first is None:
            first, inside = img, voxels
            continue
        if img.shape != first.shape or not np.allclose(img.affine, first.affine):
            raise ValueError(f"brain mask {path} is not on the grid of {paths.iloc[0]}: the "
                             "runs are in different spaces or resolutions")
        inside &= voxels
    if not inside.any():
        raise ValueError("the runs' brain masks have no voxel in common")
    return nib.Nifti1Image(inside.astype(np.uint8), first.affine)


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
