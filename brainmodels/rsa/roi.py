"""RSA on a betas Dataset: one data RDM per ROI (and fold), model RDMs, a comparison table.

Works on any ``xarray.Dataset`` in the brainmodels convention: ``betas (trial, voxel)``,
``stimulus_id (trial)``, a voxel coord ``roi`` and a fold coord (``repeat`` or ``run``) on the
trial dim. It is what ``brainmodels rsa`` runs, importable from a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.data import provenance, to_numpy
from brainmodels.rsa.inference import bootstrap_compare
from brainmodels.rsa.rdm import rdm

__all__ = ["roi_rdms", "model_rdms", "compare_models_by_roi"]


def _fold_labels(ds: xr.Dataset, folds: str) -> np.ndarray:
    if folds not in ds.coords and folds not in ds.data_vars:
        raise ValueError(f"the dataset has no {folds!r} coordinate on the trial dim to split "
                         f"the trials into folds; available: {sorted(map(str, ds.coords))}")
    return np.asarray(ds[folds].values)


def roi_rdms(
    ds: xr.Dataset,
    metric: str = "correlation",
    *,
    rois: Sequence[str] | None = None,
    folds: str = "repeat",
    min_voxels: int = 5,
) -> xr.DataArray:
    """Data RDMs per ROI: (roi, fold, condition_a, condition_b).

    For ``crossnobis``/``poisson_cv`` the folds cross-validate one RDM per ROI (fold axis of
    length 1); for other metrics one RDM is computed per fold (e.g. per repeat), which gives
    the independent RDMs a noise ceiling needs.

    Raises
    ------
    ValueError
        Missing variables, an unknown or empty ROI, or folds that lack a stimulus.
    """
    for var in ("betas", "stimulus_id"):
        if var not in ds:
            raise ValueError(f"the dataset needs a {var!r} variable (betas (trial, voxel), "
                             "stimulus_id (trial))")
    if "roi" not in ds.coords:
        raise ValueError("the dataset needs a voxel coord 'roi' to group voxels")
    roi_labels = np.asarray(ds["roi"].values).astype(str)
    available = sorted(str(r) for r in set(roi_labels) - {"none"})  # plain str in messages
    rois = list(rois) if rois is not None else available
    fold = _fold_labels(ds, folds)
    cond = np.asarray(ds["stimulus_id"].values)
    betas = np.asarray(ds["betas"].values)
    out = []
    for roi in rois:
        sel = roi_labels == roi
        if sel.sum() < min_voxels:
            raise ValueError(f"ROI {roi!r} has {int(sel.sum())} voxels (< {min_voxels}); "
                             f"ROIs with voxels: {available}")
        x = betas[:, sel]
        if metric in ("crossnobis", "poisson_cv"):
            out.append(rdm(x, metric, conditions=cond, runs=fold)[None])
        else:
            per = []
            for f in np.unique(fold):
                keep = fold == f
                per.append(rdm(x[keep], metric, conditions=cond[keep]))
            shapes = {p.shape for p in per}
            if len(shapes) != 1:
                raise ValueError(f"fold {folds!r} values do not all contain every stimulus "
                                 f"(RDM sizes {sorted(shapes)}); use folds that each show "
                                 "every stimulus, e.g. 'repeat'")
            out.append(np.stack(per))
    conds = np.unique(cond)
    n_folds = out[0].shape[0]
    return xr.DataArray(
        np.stack(out), dims=("roi", "fold", "condition_a", "condition_b"),
        coords={"roi": rois, "fold": np.arange(n_folds), "condition_a": conds,
                "condition_b": conds},
        name="data_rdm",
        attrs=provenance("roi_rdms", params={"metric": metric, "folds": folds},
                         units="dissimilarity"),
    )


def model_rdms(models: Mapping[str, ArrayLike],
               metric: str | Mapping[str, str] = "correlation") -> xr.DataArray:
    """RDMs of model representations (stimulus, feature), stacked as (model, cond, cond).

    ``metric`` is one RDM metric for every model, or a mapping from each model's name to its
    metric (e.g. euclidean for a model with all-zero rows, where correlation is undefined).
    """
    if not models:
        raise ValueError("models is empty: pass {name: (stimulus, feature) array}")
    metrics = dict(metric) if isinstance(metric, Mapping) else dict.fromkeys(models, metric)
    if set(metrics) != set(models):
        raise ValueError(f"metric names models {sorted(metrics)}, but the models are "
                         f"{sorted(models)}")
    mats = []
    for name, rep in models.items():
        x = to_numpy(rep, name=f"models[{name!r}]").reshape(np.shape(rep)[0], -1)
        if np.allclose(x, x.mean(axis=0, keepdims=True)):
            raise ValueError(f"model {name!r} gives the same representation for every stimulus")
        mats.append(rdm(x.astype(float), metrics[name]))
    shapes = {m.shape for m in mats}
    if len(shapes) != 1:
        raise ValueError(f"model representations must cover the same stimuli, got RDM shapes "
                         f"{sorted(shapes)}")
    return xr.DataArray(np.stack(mats), dims=("model", "condition_a", "condition_b"),
                        coords={"model": list(models)}, name="model_rdm",
                        attrs=provenance("model_rdms", params={"metric": metrics},
                                         units="dissimilarity"))


#: fold coordinates whose values are a sample of a population (resampled by default)
SUBJECT_FOLDS = ("subject", "participant")


def default_over(data_rdms: xr.DataArray) -> str:
    """What :func:`compare_models_by_roi` resamples by default: ``"both"`` (stimuli and
    folds) where the data RDMs come from >= 2 folds that are subjects (``roi_rdms``'s
    ``folds`` named in :data:`SUBJECT_FOLDS`), else ``"stimulus"`` (folds held fixed)."""
    folds = data_rdms.attrs.get("params", {}).get("folds")
    n = data_rdms.sizes.get("fold", 1)
    return "both" if n >= 2 and folds in SUBJECT_FOLDS else "stimulus"


def compare_models_by_roi(
    data_rdms: xr.DataArray,
    models: xr.DataArray,
    method: str = "corr",
    *,
    key: PRNGKeyArray,
    n_bootstrap: int = 1000,
    progress=None,
    over: str | None = None,
    groups=None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Bootstrap comparison of every model with every ROI.

    ``over`` is passed to :func:`~brainmodels.rsa.bootstrap_compare`, as are ``groups`` of
    conditions. By default (:func:`default_over`) the folds are resampled too (``"both"``,
    the dual bootstrap with its t interval) only when they are subjects (``roi_rdms(...,
    folds="subject")`` or ``"participant"``), since only then are they a sample of a
    population; folds that are repeats or runs of one subject are held fixed
    (``"stimulus"``). Two repeats resampled as if they were subjects give a t interval with
    one degree of freedom: +-12.7 SE.
    Returns the results (``evaluation (roi, model)``, ``ci_low``, ``ci_high``, ``se``,
    ``noise_ceiling_lower/upper (roi)`` when there are >= 2 folds) and a tidy table.
    """
    import jax

    per_roi = []
    rois = list(data_rdms["roi"].values)
    keys = jax.random.split(key, len(rois))
    iterator = progress(range(len(rois))) if progress is not None else range(len(rois))
    how = over if over is not None else default_over(data_rdms)  # the same for every ROI
    for r in iterator:
        data = data_rdms.isel(roi=r).values
        res = bootstrap_compare(models.values, data, method, key=keys[r],
                                n_bootstrap=n_bootstrap, over=how, groups=groups,
                                model_names=[str(m) for m in models["model"].values])
        per_roi.append(res.drop_vars("samples"))
    result = xr.concat(per_roi, dim="roi").assign_coords(roi=rois)
    result.attrs = provenance("compare_models_by_roi", params={
        "method": method, "n_bootstrap": n_bootstrap,
        "data_metric": data_rdms.attrs.get("params", {}).get("metric")}, units="similarity")
    table = result[["evaluation", "se", "ci_low", "ci_high"]].to_dataframe().reset_index()
    if "noise_ceiling_lower" in result:
        nc = result[["noise_ceiling_lower", "noise_ceiling_upper"]].to_dataframe()
        table = table.merge(nc.reset_index(), on="roi")
    return result, table
