"""Per-run pieces of :func:`brainmodels.datasets.bids.betas_from_bids`: events and confounds
read and checked, and the single-trial GLMs (LSA, LSS) fitted with nilearn's FirstLevelModel."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _validate as V

_REQUIRED_EVENT_COLUMNS = ("onset", "duration")

#: named confound strategies: nilearn's presets (``load_confounds_strategy``) and two named
#: ``load_confounds`` settings kept from earlier releases
CONFOUND_SETS: dict[str, dict[str, Any]] = {
    "simple": {"denoise_strategy": "simple"},
    "scrubbing": {"denoise_strategy": "scrubbing"},
    "compcor": {"denoise_strategy": "compcor"},
    "ica_aroma": {"denoise_strategy": "ica_aroma"},
    "motion": {"strategy": ("motion",), "motion": "basic"},
    "motion+wm_csf": {"strategy": ("motion", "wm_csf"), "motion": "basic", "wm_csf": "basic"},
}



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


def _read_confounds(path: Path, columns: Sequence[str], n_frames: int) -> pd.DataFrame:
    """The chosen columns of a run's fMRIPrep confounds table, one row per volume. The NaNs
    fMRIPrep writes in the first row of derivative columns become the column's mean."""
    V.existing_file(path, "confounds file")
    table = V.read_table(path, "confounds file")
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"confounds file {path} lacks column(s) {missing}; it has "
                         f"{len(table.columns)} columns, e.g. {list(table.columns[:8])}")
    if len(table) != n_frames:
        raise ValueError(f"confounds file {path} has {len(table)} rows, its run {n_frames} "
                         "volumes")
    out = table[list(columns)].astype(float)
    if out.isna().all().any():
        raise ValueError(f"confounds file {path}: column(s) "
                         f"{list(out.columns[out.isna().all()])} hold no values")
    return out.fillna(out.mean())


def _fit_glm(img, events: pd.DataFrame, tr: float, mask, options: dict[str, Any],
             confounds: pd.DataFrame | None = None, sample_mask=None):
    """nilearn's FirstLevelModel fitted to one run (events: onset, duration, trial_type);
    ``sample_mask`` (indices of the volumes kept, e.g. after scrubbing) censors the rest."""
    from nilearn.glm.first_level import FirstLevelModel

    glm = FirstLevelModel(t_r=tr, mask_img=mask, minimize_memory=True, **options)
    with warnings.catch_warnings():  # nilearn notes that the given mask is used: it is meant
        warnings.filterwarnings("ignore", message=".*mask was given at masker creation")
        return glm.fit(img, events=events[["onset", "duration", "trial_type"]],
                       confounds=confounds,
                       sample_masks=None if sample_mask is None else [sample_mask])


def _lsa(img, events, is_stim, labels, tr, mask, options, masker, confounds=None,
         sample_mask=None):
    """One GLM, one regressor per stimulus label: (betas (label, voxel), labels, first onset)."""
    names = {lab: f"s{n:05d}" for n, lab in enumerate(pd.unique(labels[is_stim]))}
    kind = [names[lab] if s else "nuisance" for lab, s in zip(labels, is_stim, strict=True)]
    ev = events.assign(trial_type=kind)
    glm = _fit_glm(img, ev, tr, mask, options, confounds, sample_mask)
    betas = [masker.transform(glm.compute_contrast(c, output_type="effect_size")).ravel()
             for c in names.values()]
    onsets = [events["onset"][is_stim & (labels == lab)].min() for lab in names]
    return np.stack(betas), np.asarray(list(names), dtype=object), np.asarray(onsets)


def _lss(img, events, is_stim, labels, tr, mask, options, masker, confounds=None,
         sample_mask=None):
    """One GLM per stimulus event (target vs all other events): one beta per event."""
    betas, labs, onsets = [], [], []
    for n in np.flatnonzero(is_stim):
        kind = np.where(is_stim, "others", "nuisance").astype(object)
        kind[n] = "target"
        glm = _fit_glm(img, events.assign(trial_type=kind), tr, mask, options, confounds,
                       sample_mask)
        betas.append(masker.transform(glm.compute_contrast("target",
                                                           output_type="effect_size")).ravel())
        labs.append(labels[n])
        onsets.append(events["onset"].iloc[n])
    return np.stack(betas), np.asarray(labs, dtype=object), np.asarray(onsets)


#: Single-trial estimators (a registry; see the module docstring).
ESTIMATORS: dict[str, Callable] = {"lsa": _lsa, "lss": _lss}


def _confound_spec(confounds, derivatives) -> tuple[str, Any] | None:
    """``("columns", names)`` or ``("nilearn", load_confounds keyword arguments)``."""
    if confounds is None:
        return None
    if derivatives is None:
        raise ValueError("confounds= reads fMRIPrep's confounds tables: pass derivatives= too")
    if isinstance(confounds, str):
        if confounds not in CONFOUND_SETS:
            raise ValueError(f"confounds must be a strategy, one of {sorted(CONFOUND_SETS)}, "
                             f"a dict of nilearn load_confounds arguments or column names; got "
                             f"{confounds!r}")
        return "nilearn", dict(CONFOUND_SETS[confounds])
    if isinstance(confounds, Mapping):
        return "nilearn", dict(confounds)
    columns = tuple(str(c) for c in confounds)
    if not columns:
        raise ValueError("confounds must name at least one column (or pass None)")
    return "columns", columns


def _run_confounds(spec, row, n_frames: int):
    """The run's nuisance regressors (volume, regressor) and its sample mask (the indices of
    the volumes kept; None keeps all), from nilearn's fMRIPrep interface or named columns."""
    if spec is None:
        return None, None
    kind, value = spec
    if kind == "columns":
        return _read_confounds(row.confounds, value, n_frames), None
    from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy

    kwargs = dict(value)
    strategy = kwargs.pop("denoise_strategy", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # nilearn's notes on defaults
            if strategy is not None:
                table, sample_mask = load_confounds_strategy(str(row.bold), strategy, **kwargs)
            else:
                table, sample_mask = load_confounds(str(row.bold), **kwargs)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        raise ValueError(f"confounds {dict(value)} for {row.bold}: {err}") from err
    if table is not None and len(table) != n_frames:
        raise ValueError(f"confounds file {row.confounds} has {len(table)} rows, its run "
                         f"{n_frames} volumes")
    if sample_mask is not None and len(sample_mask) == n_frames:
        sample_mask = None  # nothing censored
    return table, sample_mask
