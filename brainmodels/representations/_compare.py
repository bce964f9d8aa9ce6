"""Models meet the brain: every layer x ROI, by voxelwise encoding and by RSA, with ceilings."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

from brainmodels._types import PRNGKeyArray
from brainmodels.data import provenance
from brainmodels.representations._core import layer_matrix, layers_of

__all__ = ["compare_to_brain", "stack_layers"]

#: default ridge penalties (features are z-scored; the range covers p >> n layers)
DEFAULT_ALPHAS = np.logspace(-1, 7, 17)


def stack_layers(reps: xr.Dataset | Mapping[str, xr.Dataset]) -> dict[str, np.ndarray]:
    """``{"model/layer": (stimulus, feature) matrix}`` from one or several representations
    (sample-averaged; time flattened into features). Stimulus coords must agree."""
    sets = {"": reps} if isinstance(reps, xr.Dataset) else dict(reps)
    if not sets:
        raise ValueError("reps is empty: pass a representations Dataset or {model: Dataset}")
    out, stimuli = {}, None
    for model, ds in sets.items():
        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"reps[{model!r}] must be an xarray Dataset from representations(), "
                            f"got {type(ds).__name__}")
        s = np.asarray(ds["stimulus"].values)
        if stimuli is None:
            stimuli = s
        elif s.shape != stimuli.shape or not np.array_equal(s, stimuli):
            raise ValueError(f"reps[{model!r}] covers other stimuli (or another order) than the "
                             "first representations; compute all on the same stimuli")
        for layer in layers_of(ds):
            out[f"{model}/{layer}" if model else layer] = layer_matrix(ds, layer)
    return out


def _align(stimuli: np.ndarray, ds: xr.Dataset) -> np.ndarray:
    """Row of each dataset stimulus id in the representations (refuses missing ones)."""
    sid = np.asarray(ds["stimulus_id"].values)
    ids = np.unique(sid)
    pos = {v: i for i, v in enumerate(stimuli.tolist())}
    missing = [v for v in ids.tolist() if v not in pos]
    if missing:
        raise ValueError(f"the representations lack {len(missing)} stimuli the dataset shows "
                         f"(stimulus ids {missing[:5]} ...); compute them on the dataset's "
                         "images (their 'stimulus' coord must be the dataset's stimulus_id)")
    return np.array([pos[v] for v in ids.tolist()])


def _zscore(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    mu, sd = x[train].mean(0), x[train].std(0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column of (..., sample, voxel) arrays (0 where a side is constant)."""
    a = a - a.mean(-2, keepdims=True)
    b = b - b.mean(-2, keepdims=True)
    den = np.sqrt((a * a).sum(-2) * (b * b).sum(-2))
    return np.where(den > 0, (a * b).sum(-2) / np.where(den > 0, den, 1.0), 0.0)


def compare_to_brain(
    reps: xr.Dataset | Mapping[str, xr.Dataset],
    dataset: xr.Dataset,
    *,
    key: PRNGKeyArray,
    encoder=None,
    rsa_method: str = "corr",
    rsa_over: str = "stimulus",
    rdm_metric: str = "correlation",
    model_metric: str | Mapping[str, str] | None = None,
    rois: list[str] | None = None,
    test_fraction: float = 0.2,
    n_bootstrap: int = 200,
    min_ceiling: float = 0.1,
    banded: int | None = None,
    progress: Callable | None = None,
) -> xr.Dataset:
    """Score every model layer against every ROI by voxelwise encoding and by RSA.

    The stimuli are split once (seeded by ``key``) into training and held-out test stimuli.

    * **Encoding:** for each layer, a ridge encoder (default: a
      :class:`~brainmodels.encoders.RidgeEncoder` with exact leave-one-out alphas per voxel;
      any scikit-learn style estimator may be passed) is fitted on the repeat-averaged
      responses to the training stimuli. It predicts the held-out stimuli, and each voxel is
      scored by the correlation with their repeat-averaged responses. An ROI's score is the
      median over its voxels. Its ceiling is the median noise ceiling of the repeat average
      (from the repeats' explainable variance), and ``encoding_normalized`` is the median of
      r / ceiling over voxels whose ceiling is at least ``min_ceiling``. The interval is the
      2.5-97.5 % percentile of the median over ``n_bootstrap`` resamples of the test stimuli.
    * **RSA:** on the same held-out stimuli, one data RDM per repeat and ROI (``rdm_metric``).
      Each layer's RDM is compared with ``rsa_method`` (the mean over the repeats' RDMs),
      with a percentile interval from a bootstrap over the held-out stimuli
      (:func:`~brainmodels.rsa.compare_models_by_roi`, ``rsa_over``) and the lower/upper
      noise ceiling from the repeats.

    Parameters
    ----------
    reps : Dataset or mapping of name -> Dataset
        Output of :func:`representations`; several models are named ``model/layer``. Their
        ``stimulus`` coord must hold the dataset's stimulus ids (as it does for
        ``representations(model, ds.images)``).
    dataset : xarray.Dataset
        ``betas (trial, voxel)`` with ``stimulus_id`` and ``repeat`` on the trial dim and a
        voxel coord ``roi`` (e.g. :func:`~brainmodels.datasets.make_synthetic_fmri`).
    key : jax PRNG key
        Seeds the split and the bootstraps: same key, same result.
    encoder : scikit-learn style regressor, optional
        Cloned and fitted per layer (default: ``RidgeEncoder(alphas=DEFAULT_ALPHAS,
        cv="loo")``).
    rsa_method : str
        A comparison method of :data:`brainmodels.rsa.COMPARE_METHODS`.
    rsa_over : {"stimulus", "both"}
        What the RSA bootstrap resamples. ``"stimulus"`` (default): the held-out stimuli, the
        repeats held fixed. The repeats are measurements of one subject, not a sample of
        subjects: resampling them as well (``"both"``, the dual bootstrap) gives a t interval
        with ``repeats - 1`` degrees of freedom, +-12.7 SE with two repeats, wider than the
        range of a correlation.
    rdm_metric : str
        The RDM metric of the data (one RDM per repeat) and, by default, of the layers.
    model_metric : str or mapping of layer -> str, optional
        Another metric for the layers' RDMs (e.g. ``{"model/onehot": "euclidean"}`` for a
        layer with constant rows, where correlation distance is undefined).
    rois : list of str, optional
        The ROIs to score (default: every ROI but ``"none"``).
    test_fraction, n_bootstrap, min_ceiling
        Held-out share of the stimuli; bootstrap samples for the intervals; smallest ceiling
        a voxel needs to enter ``encoding_normalized``.
    banded : int, optional
        Also fit all layers *jointly*, as the feature spaces of one
        :class:`~brainmodels.encoders.BandedRidgeEncoder` (``banded`` random-search candidates
        of band weights, 5-fold CV on the training stimuli), and split its held-out R^2 over
        the layers (product measure): which layer explains a voxel when the layers compete
        for it, rather than one at a time. Adds ``banded_r2`` (layer, roi: the mean over the
        ROI's voxels of each layer's share; means keep the shares additive, so they sum to
        ``banded_joint_r2`` (roi), the mean joint held-out R^2), ``banded_weight`` (layer,
        roi: median band weight) and ``best_layer_banded`` (roi).
    progress : callable, optional
        Wraps the iterable of layers (e.g. ``tqdm.tqdm``).

    Returns
    -------
    xarray.Dataset
        Over (layer, roi): ``encoding_r``, ``encoding_ci_low/high``, ``encoding_normalized``,
        ``rsa``, ``rsa_ci_low/high``. Over roi: ``encoding_ceiling``, ``rsa_ceiling_low/high``,
        ``n_voxels``, ``best_layer_encoding`` and ``best_layer_rsa``. Over (layer, voxel):
        ``voxel_r`` with the dataset's voxel coords (for brain maps; their ROI label is
        ``voxel_roi``). Over voxel: ``voxel_ceiling``. Only voxels of the scored ROIs are kept.

    Examples
    --------
    >>> import jax
    >>> from brainmodels.datasets import make_synthetic_fmri
    >>> from brainmodels.representations import GaborEnergy, representations
    >>> ds = make_synthetic_fmri(150, 2, resolution_mm=12, seed=0)
    >>> reps = representations(GaborEnergy(), ds.images)
    >>> res = compare_to_brain(reps, ds, key=jax.random.key(0), n_bootstrap=20)
    >>> str(res.best_layer_encoding.sel(roi="V1").values)
    'energy'

    """
    import jax

    from brainmodels.encoders import (
        RidgeEncoder,
        explainable_variance,
        noise_ceiling,
        repeats_from_trials,
    )
    from brainmodels.rsa import compare_models_by_roi, roi_rdms

    for need in ("betas", "stimulus_id", "repeat"):
        if need not in dataset:
            raise ValueError(f"dataset needs {need!r} on the trial dim (betas (trial, voxel), "
                             f"stimulus_id, repeat); it has {sorted(map(str, dataset.variables))}")
    if "roi" not in dataset.coords:
        raise ValueError("dataset needs a voxel coord 'roi'")
    if not 0.05 <= test_fraction <= 0.5:
        raise ValueError(f"test_fraction must be in [0.05, 0.5], got {test_fraction}")
    if rsa_over not in ("stimulus", "both"):
        raise ValueError(f"rsa_over must be 'stimulus' or 'both', got {rsa_over!r}")
    features = stack_layers(reps)
    first = reps if isinstance(reps, xr.Dataset) else next(iter(reps.values()))
    rows = _align(np.asarray(first["stimulus"].values), dataset)  # per sorted stimulus id
    names = list(features)

    roi_all = np.asarray(dataset["roi"].values).astype(str)
    available = sorted(set(roi_all) - {"none"})
    rois = available if rois is None else list(rois)
    unknown = sorted(set(rois) - set(available))
    if unknown:
        raise ValueError(f"rois {unknown} are not in the dataset; it has {available}")
    vox = np.flatnonzero(np.isin(roi_all, rois))

    data, stim_ids = repeats_from_trials(dataset["betas"].values[:, vox],
                                         dataset["stimulus_id"].values)
    n_rep, n_stim = data.shape[0], data.shape[1]
    at = rows[np.searchsorted(np.unique(dataset["stimulus_id"].values), stim_ids)]
    features = {k: v[at] for k, v in features.items()}  # rows follow stim_ids
    mean = data.mean(0)  # (stimulus, voxel): repeat-averaged responses
    k_split, k_boot, k_rsa = jax.random.split(key, 3)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_split)).ravel().tolist())
    n_test = max(int(round(test_fraction * n_stim)), 5)
    perm = rng.permutation(n_stim)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ceiling = np.asarray(noise_ceiling(explainable_variance(data[:, test], constant="zero"),
                                             n_average=n_rep))
    boot_rng = np.random.default_rng(np.asarray(jax.random.key_data(k_boot)).ravel().tolist())
    boots = boot_rng.integers(0, n_test, (n_bootstrap, n_test))
    roi_v = roi_all[vox]

    voxel_r = np.zeros((len(names), vox.size))
    enc = np.zeros((len(names), len(rois), 3))
    norm = np.full((len(names), len(rois)), np.nan)
    iterator = progress(range(len(names))) if progress is not None else range(len(names))
    for li in iterator:
        x = _zscore(features[names[li]], train)
        model = _clone(encoder) if encoder is not None else RidgeEncoder(
            alphas=DEFAULT_ALPHAS, cv="loo")
        model.fit(x[train].astype(np.float32), mean[train].astype(np.float32))
        pred = np.asarray(model.predict(x[test].astype(np.float32)), np.float64)
        y = mean[test].astype(np.float64)
        voxel_r[li] = _corr_rows(y, pred)
        boot_r = _corr_rows(y[boots], pred[boots])  # (bootstrap, voxel)
        for ri, roi in enumerate(rois):
            sel = roi_v == roi
            lo, hi = np.percentile(np.median(boot_r[:, sel], 1), [2.5, 97.5])
            enc[li, ri] = np.median(voxel_r[li, sel]), lo, hi
            ok = sel & (ceiling >= min_ceiling)
            if ok.any():
                norm[li, ri] = np.median(voxel_r[li, ok] / ceiling[ok])

    joint = None
    if banded is not None:
        if isinstance(banded, bool) or not isinstance(banded, int) or banded < 1:
            raise ValueError(f"banded must be a number of band-weight candidates >= 1, got "
                             f"{banded!r}")
        if len(names) < 2:
            raise ValueError(f"banded needs two or more layers to share out; reps has {names}")
        joint = _banded(features, names, mean, train, test, roi_v, rois, banded,
                        seed=int(rng.integers(2**31)))

    held = np.isin(dataset["stimulus_id"].values, stim_ids[test])
    sub = dataset[["betas"]].isel(trial=held).assign_coords(
        stimulus_id=dataset["stimulus_id"][held], repeat=dataset["repeat"][held])
    data_rdms = roi_rdms(sub, rdm_metric, rois=rois, folds="repeat")
    from brainmodels.rsa import model_rdms

    if isinstance(model_metric, Mapping):
        extra = sorted(set(model_metric) - set(names))
        if extra:
            raise ValueError(f"model_metric names layers {extra} that are not in reps: {names}")
        metrics = {n: model_metric.get(n, rdm_metric) for n in names}
    else:
        metrics = model_metric or rdm_metric
    models = model_rdms({n: features[n][test] for n in names}, metrics)
    rsa, _ = compare_models_by_roi(data_rdms, models, rsa_method, key=k_rsa,
                                   n_bootstrap=n_bootstrap, over=rsa_over)
    rsa = rsa.sel(model=names)

    # the voxels' ROI labels become ``voxel_roi``: ``roi`` is the ROI dim of the scores
    vcoords = {("voxel_roi" if k == "roi" else k): ("voxel", np.asarray(c.values)[vox])
               for k, c in dataset.coords.items() if c.dims == ("voxel",) and k != "voxel"}
    out = xr.Dataset(
        {
            "encoding_r": (("layer", "roi"), enc[..., 0]),
            "encoding_ci_low": (("layer", "roi"), enc[..., 1]),
            "encoding_ci_high": (("layer", "roi"), enc[..., 2]),
            "encoding_normalized": (("layer", "roi"), norm),
            "encoding_ceiling": ("roi", [float(np.median(ceiling[roi_v == r])) for r in rois]),
            "n_voxels": ("roi", [int(np.sum(roi_v == r)) for r in rois]),
            "rsa": (("layer", "roi"), rsa["evaluation"].transpose("model", "roi").values),
            "rsa_ci_low": (("layer", "roi"), rsa["ci_low"].transpose("model", "roi").values),
            "rsa_ci_high": (("layer", "roi"), rsa["ci_high"].transpose("model", "roi").values),
            "voxel_r": (("layer", "voxel"), voxel_r.astype(np.float32)),
            "voxel_ceiling": ("voxel", ceiling.astype(np.float32)),
        },
        coords={"layer": names, "roi": rois, "voxel": np.asarray(dataset["voxel"].values)[vox]
                if "voxel" in dataset.coords else vox, **vcoords},
    )
    if "noise_ceiling_lower" in rsa:
        out["rsa_ceiling_low"] = ("roi", rsa["noise_ceiling_lower"].values)
        out["rsa_ceiling_high"] = ("roi", rsa["noise_ceiling_upper"].values)
    if joint is not None:
        shares, weights, total = joint
        out["banded_r2"] = (("layer", "roi"), shares)
        out["banded_weight"] = (("layer", "roi"), weights)
        out["banded_joint_r2"] = ("roi", total)
        out["best_layer_banded"] = ("roi", [names[i] for i in np.argmax(shares, 0)])
    out["best_layer_encoding"] = ("roi", [names[i] for i in np.argmax(enc[..., 0], 0)])
    out["best_layer_rsa"] = ("roi", [names[i] for i in np.argmax(out["rsa"].values, 0)])
    out.attrs.update(provenance("compare_to_brain", params={
        "rsa_method": rsa_method, "rsa_over": rsa_over, "rdm_metric": rdm_metric, "test_fraction": test_fraction,
        "n_bootstrap": n_bootstrap, "min_ceiling": min_ceiling, "n_test": int(n_test),
        "banded": banded,
        "n_train": int(train.size), "n_repeats": int(n_rep),
        "encoder": type(model).__name__}, units="correlation"))
    out.attrs["test_stimuli"] = stim_ids[test].tolist()
    return out


def _banded(features, names, mean, train, test, roi_v, rois, n_iter, *, seed):
    """All layers as the bands of one banded ridge: the held-out R^2 split over the layers
    (mean per ROI: additive), the median band weights and the mean joint R^2."""
    import warnings

    from brainmodels.encoders import BandedRidgeEncoder

    Xs = {n: _zscore(features[n], train).astype(np.float32) for n in names}
    y = mean.astype(np.float32)
    model = BandedRidgeEncoder(alphas=DEFAULT_ALPHAS, cv=5, n_iter=n_iter, seed=seed,
                               drop_constant=True)
    model.fit({n: x[train] for n, x in Xs.items()}, y[train])
    with warnings.catch_warnings():  # a constant held-out voxel has no share (NaN, skipped)
        warnings.simplefilter("ignore", RuntimeWarning)
        split = np.asarray(model.score_voxels({n: x[test] for n, x in Xs.items()}, y[test],
                                              split=True))
    gamma = np.asarray(model.band_weights_)
    defined = np.isfinite(split).all(0)  # constant held-out voxels have no shares
    shares = np.array([[np.mean(split[i, (roi_v == r) & defined]) for r in rois]
                       for i in range(len(names))])
    weights = np.array([[np.median(gamma[i, roi_v == r]) for r in rois]
                        for i in range(len(names))])
    total = np.array([np.mean(split[:, (roi_v == r) & defined].sum(0)) for r in rois])
    return shares, weights, total


def _clone(encoder):
    from sklearn.base import clone

    return clone(encoder)
