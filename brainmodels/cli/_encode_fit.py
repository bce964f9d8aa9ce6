"""The fitting half of ``brainmodels encode``: the encoders it offers (:data:`MODELS`), the
inputs it reads (feature spaces, a spatial feature map, repeat-averaged betas), the
held-out split, the ridge and gradient-trained fits and their per-voxel scores.

:mod:`brainmodels.cli.encode` parses the command line and writes the results; this module
holds what lies between (:func:`encode_ridge`, :func:`encode_neural`, each returning a
:class:`Fitted`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from brainmodels.cli._common import load_npy, progress

#: Chance level used in the table (printed with it).
CHANCE = ("one-sided t-test of r > 0 over the held-out trials, Benjamini-Hochberg FDR q = 0.05 "
          "across voxels")


@dataclasses.dataclass(frozen=True)
class EncodeModel:
    """An encoder ``brainmodels encode --model`` can fit."""

    estimator: str  #: class name in :mod:`brainmodels.encoders`
    inputs: str  #: "flat" (stimulus, feature) spaces or a spatial "map"
    summary: str  #: one line for ``--help``
    example: str  #: one command line for ``--help``

    @property
    def default_features(self) -> str:
        return MAP if self.inputs == "map" else "retinotopic,category"


#: ``--features`` value naming the dataset's spatial (Gabor-energy) feature map
MAP = "map"

#: The encoders of ``--model``, by name.
MODELS = {
    "ridge": EncodeModel(
        "RidgeEncoder", "flat", "ridge regression per voxel, alpha by cross-validation "
        "(closed form; --banded: one penalty per feature space)",
        "brainmodels encode --data synthetic --features retinotopic,category --out enc"),
    "attention": EncodeModel(
        "AttentionRoutingEncoder", "map", "learned ROI queries read the feature map by "
        "cross-attention (where an ROI looks is learned; writes attention.nc)",
        "brainmodels encode --model attention --features map --max-steps 1500 --out enc_att"),
    "factorized": EncodeModel(
        "FactorizedReadout", "map", "per voxel a spatial mask times feature weights "
        "(receptive field rf_x, rf_y, rf_size per voxel)",
        "brainmodels encode --model factorized --out enc_fact"),
    "in-context": EncodeModel(
        "InContextEncoder", "flat", "a transformer meta-trained over the voxels writes each "
        "voxel's linear weights from context examples",
        "brainmodels encode --model in-context --features retinotopic,category --out enc_icl"),
}



class DaskClient:
    """The dask client of ``--scheduler`` (None without it), closed on exit with its local
    cluster."""

    def __init__(self, spec):
        self.spec, self.client, self.cluster = spec, None, None

    def __enter__(self):
        if self.spec is None:
            return None
        from brainmodels._deps import require

        distributed = require("dask.distributed", purpose="--scheduler")
        kind, value = self.spec
        if kind == "local":
            self.cluster = distributed.LocalCluster(n_workers=value, threads_per_worker=1,
                                                    processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(value, timeout="30s")
            except OSError as err:
                raise ValueError(f"--scheduler: no dask scheduler answers at {value} ({err})") \
                    from None
        print(f"dask cluster: {len(self.client.scheduler_info().get('workers', {}))} workers "
              f"({value if kind == 'address' else 'local'})", flush=True)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


# ----------------------------------------------------------------------------- the job


def _n_stimuli(ds) -> int:
    return ds.sizes["stimulus"] if "stimulus" in ds.dims else int(ds["stimulus_id"].max()) + 1


def _feature_matrix(ds, spaces) -> tuple[Any, list[str], list[int]]:
    """(stimulus, feature) design from names (``features_<name>``) or .npy paths, the feature
    names and the number of features of each space."""
    import numpy as np

    n_stim = _n_stimuli(ds)
    blocks, names = [], []
    for space in spaces:
        if isinstance(space, str) and f"features_{space}" in ds:
            block = np.asarray(ds[f"features_{space}"].values, dtype=np.float32)
        elif isinstance(space, str | Path) and str(space).endswith(".npy"):
            block = load_npy(space, "feature file").astype(np.float32)
        else:
            known = [v[len("features_"):] for v in ds.data_vars if str(v).startswith("features_")]
            hint = (f"; {MAP!r} is the spatial feature map of --model attention or factorized"
                    if str(space) == MAP else "")
            raise ValueError(f"feature space {space!r} is neither a features_<name> variable of "
                             f"the dataset (known: {known}) nor a .npy file{hint}")
        if block.ndim != 2 or block.shape[0] != n_stim:
            raise ValueError(f"feature space {space!r} must be (stimulus, feature) with "
                             f"{n_stim} stimuli, got shape {block.shape}")
        blocks.append(block)
        names += [f"{Path(str(space)).stem}:{i}" for i in range(block.shape[1])]
    if not blocks:
        raise ValueError("give at least one feature space")
    labels = [Path(str(space)).stem for space in spaces]
    if len(set(labels)) != len(labels):
        raise ValueError(f"feature spaces must have distinct names, got {labels}")
    return np.concatenate(blocks, axis=1), names, [b.shape[1] for b in blocks]


def _feature_map(ds, space) -> Any:
    """The spatial feature map ``(stimulus, y, x, channel)``: the dataset's Gabor-energy map
    (a DataArray, positions in degrees) for ``"map"``, else a 4-D .npy (grid positions)."""
    import numpy as np

    if str(space) == MAP:
        from brainmodels.datasets import feature_map

        try:
            return feature_map(ds, "gabor")
        except ValueError as err:
            raise ValueError(f"--features {MAP} is the Gabor-energy map of the dataset's images, "
                             f"which this dataset cannot give ({err}); pass a 4-D .npy "
                             f"(stimulus, y, x, channel) instead") from None
    block = load_npy(space, "feature map file")
    n_stim = _n_stimuli(ds)
    if block.ndim != 4 or block.shape[0] != n_stim:
        raise ValueError(f"feature map file {space} must be 4-D (stimulus, y, x, channel) with "
                         f"{n_stim} stimuli, got shape {block.shape}; a (stimulus, feature) "
                         f"matrix is for --model ridge or in-context")
    return block.astype(np.float32)


def _take(X, idx):
    """Rows ``idx`` of the stimulus axis of a numpy array or DataArray."""
    return X.isel({X.dims[0]: idx}) if hasattr(X, "isel") else X[idx]


def _split(n_stim: int, test_fraction: float, seed: int):
    import numpy as np

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n_stim)
    n_test = max(1, round(test_fraction * n_stim))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _fit(ds, X, train, *, cv, alphas, voxel_batch, bands=None, n_iter=20, seed=0,
         client=None, voxel_chunk=None):
    import numpy as np

    from brainmodels.encoders import BandedRidgeEncoder, RidgeEncoder

    sid = ds["stimulus_id"].values
    Y = _average_repeats(np.asarray(ds["betas"].values, dtype=np.float32), sid, train)
    mu, sd = X[train].mean(0), X[train].std(0)
    sd[sd == 0] = 1.0
    runs = None
    if cv == "runs":  # one "run" per stimulus block is not defined for averaged betas
        raise ValueError("cv='runs' needs time series; use 'loo' or K folds for betas")
    Xz = (X[train] - mu) / sd
    if bands is None:
        enc = RidgeEncoder(alphas=alphas, cv=cv, voxel_batch=voxel_batch, drop_constant=True)
        enc.fit(Xz, Y, runs=runs,
                progress=lambda batches: progress(batches, desc="ridge CV (voxel batches)"))
        return enc, mu, sd
    enc = BandedRidgeEncoder(alphas=alphas, cv=cv, n_iter=n_iter, seed=seed,
                             voxel_batch=voxel_batch, drop_constant=True)
    desc = "banded ridge (voxel chunks)" if client is not None or voxel_chunk else \
        "banded ridge (band-weight candidates)"
    enc.fit(_bands(Xz, bands), Y, client=client, voxel_chunk=voxel_chunk,
            progress=lambda items: progress(items, desc=desc))
    return enc, mu, sd


def _bands(X, bands: dict[str, int]) -> dict[str, Any]:
    """Split the columns of X into the named feature spaces (sizes in order)."""
    import numpy as np

    edges = np.cumsum([0, *bands.values()])
    return {name: X[:, a:b] for name, (a, b) in zip(bands, zip(edges[:-1], edges[1:],
                                                               strict=True), strict=True)}


def _average_repeats(betas, sid, stimuli):
    """Mean response over the trials of each of ``stimuli`` (sorted ids) -> (stimulus, voxel)."""
    import numpy as np

    trials = np.flatnonzero(np.isin(sid, stimuli))
    order = trials[np.argsort(sid[trials], kind="stable")]
    ids = sid[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    missing = np.setdiff1d(stimuli, ids[starts])
    if missing.size:
        raise ValueError(f"stimuli {missing[:10].tolist()} have no trials in betas")
    counts = np.diff(np.r_[starts, ids.size])
    sums = np.add.reduceat(betas[order], starts, axis=0, dtype=np.float64)
    return (sums / counts[:, None]).astype(np.float32)


def _held_out(ds, test):
    """Stimulus ids and betas ``(trial, voxel)`` of the single trials of the ``test`` stimuli."""
    import numpy as np

    sid = ds["stimulus_id"].values
    held = np.isin(sid, test)
    return sid[held], np.asarray(ds["betas"].values[held], dtype=np.float32)


def _scores(ds, Y, pred, split=None, band_weights=None) -> dict:
    """Per-voxel scores of predictions ``pred`` of the held-out single trials ``Y`` (trial,
    voxel); ``split``/``band_weights`` (banded ridge) add the split R^2 and band weight of each
    space."""
    import warnings

    import numpy as np

    from brainmodels.encoders import (
        correlation,
        correlation_pvalues,
        explainable_variance,
        fdr_bh,
        noise_ceiling,
        normalized_score,
        r2,
        repeats_from_trials,
    )

    sid = ds["stimulus_id"].values
    with warnings.catch_warnings():  # constant voxels / tiny ceilings are reported in the table
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.nan_to_num(correlation(Y, pred))
        out = {"correlation": r, "r2": np.nan_to_num(r2(Y, pred))}
        data, _ = repeats_from_trials(ds["betas"].values, sid)
        out["noise_ceiling"] = noise_ceiling(explainable_variance(data, constant="zero"))
        out["normalized_score"] = normalized_score(r, out["noise_ceiling"], min_ceiling=0.1)
    for name, part in (split or {}).items():  # the parts sum to the joint R^2
        out[f"r2_split_{name}"] = np.nan_to_num(part)
        out[f"band_weight_{name}"] = band_weights[name]
    out["pvalue"] = correlation_pvalues(r, int(Y.shape[0]))
    out["above_chance"] = fdr_bh(out["pvalue"], q=0.05)
    if "noise_ceiling" in ds:
        out["true_noise_ceiling"] = np.asarray(ds["noise_ceiling"].values, dtype=np.float64)
    return out


@dataclasses.dataclass
class Fitted:
    """What one model's fit leaves for the shared report: scores and the files' contents."""

    encoder: Any
    scores: dict
    n_held: int
    test: Any
    model: Any  # xr.Dataset for model.nc, over all voxels
    attrs: dict
    voxel_vars: dict  # extra (voxel,) variables of scores.nc
    extra: dict  # file name -> Dataset/DataArray
    log_alpha: Any = None  # (voxel,) for the log10_alpha map (ridge)


def encode_ridge(ds, feature_spaces, *, cv, alphas, seed, test_fraction, voxel_batch, banded,
                  n_iter, client, voxel_chunk, say) -> Fitted:
    import numpy as np

    from brainmodels.data import provenance

    alphas = np.logspace(-2, 6, 17) if alphas is None else np.asarray(alphas)
    X, _, sizes = _feature_matrix(ds, feature_spaces)
    bands = dict(zip((Path(str(s)).stem for s in feature_spaces), sizes, strict=True)) \
        if banded else None
    if banded and (cv == "loo" or len(sizes) < 2):
        raise ValueError("banded=True needs two or more feature spaces and cv = K folds")
    if not banded and (client is not None or voxel_chunk is not None):
        raise ValueError("client= and voxel_chunk= fit the chunks of a banded ridge: pass "
                         "banded=True")
    train, test = _split(X.shape[0], test_fraction, seed)
    what = (f"banded ridge over {len(sizes)} feature spaces ({n_iter} band-weight candidates)"
            if banded else "ridge")
    say(f"fitting {what} on {train.size} repeat-averaged training stimuli, {X.shape[1]} "
        f"features, {ds.sizes['voxel']} voxels, {alphas.size} alphas, cv={cv!r} ...", flush=True)
    enc, mu, sd = _fit(ds, X, train, cv=cv, alphas=alphas, voxel_batch=voxel_batch, bands=bands,
                       n_iter=n_iter, seed=seed, client=client, voxel_chunk=voxel_chunk)
    ids, Y = _held_out(ds, test)
    Xh = (X[ids] - mu) / sd
    split = weights = None
    if bands is None:
        pred = enc.predict(Xh)
    else:  # held-out R^2 split over the spaces
        pred = enc.predict(_bands(Xh, bands))
        parts = np.asarray(enc.score_voxels(_bands(Xh, bands), Y, split=True))
        split = dict(zip(bands, parts, strict=True))
        weights = {name: np.asarray(enc.band_weights_)[i].astype(np.float64)
                   for i, name in enumerate(bands)}
    scores = _scores(ds, Y, pred, split=split, band_weights=weights)
    attrs = provenance("BandedRidgeEncoder" if banded else "RidgeEncoder", seed=seed, params={
        "feature_spaces": [str(s) for s in feature_spaces], "cv": str(cv),
        "alphas": alphas, "test_fraction": test_fraction,
        **({"n_iter": n_iter} if banded else {})}, chance=CHANCE,
        test_stimuli=test.tolist())
    model = enc.to_dataset()  # the dataset's voxel coords are added on writing
    return Fitted(enc, scores, int(Y.shape[0]), test, model, attrs,
                   {"alphas": np.asarray(model["alphas"].values)}, {},
                   log_alpha=np.log10(model["alphas"].values))


def encode_neural(ds, model_name, feature_spaces, *, seed, test_fraction, max_steps,
                   show_progress, say) -> Fitted:
    """Fit one of the gradient-trained encoders on the non-constant voxels and score it."""
    import numpy as np
    import xarray as xr

    from brainmodels import encoders
    from brainmodels.data import provenance

    spec = MODELS[model_name]
    spatial = spec.inputs == "map"
    if spatial:
        X = _feature_map(ds, feature_spaces[0])
        h, w, c = X.shape[1:]
        units = "degrees" if hasattr(X, "isel") else "grid units"
        inputs = f"a feature map of {h} x {w} positions ({units}) x {c} channels"
    else:
        X, _, _ = _feature_matrix(ds, feature_spaces)
        inputs = f"{X.shape[1]} features"
    train, test = _split(X.shape[0], test_fraction, seed)
    sid = ds["stimulus_id"].values
    Y = _average_repeats(np.asarray(ds["betas"].values, dtype=np.float32), sid, train)
    n_vox = Y.shape[1]
    keep = np.flatnonzero(np.ptp(Y, axis=0) > 0)  # as ridge's drop_constant=True
    if keep.size == 0:
        raise ValueError(f"all {n_vox} voxels are constant over the training stimuli; there "
                         f"is nothing to fit")
    vcoords = {k: c for k, c in ds.coords.items() if c.dims == ("voxel",)}
    Yfit = xr.DataArray(Y[:, keep], dims=("stimulus", "voxel"),
                        coords={k: ("voxel", np.asarray(v.values)[keep])
                                for k, v in vcoords.items()})
    kwargs = {"seed": seed, "progress": bool(show_progress)}
    if max_steps is not None:
        kwargs["max_steps"] = int(max_steps)
    enc = getattr(encoders, spec.estimator)(**kwargs)
    if model_name == "in-context":
        need = int(enc.context_sizes[1]) + int(enc.n_query)
        if train.size < need:
            raise ValueError(f"--model in-context meta-trains on episodes of {need} distinct "
                             f"training stimuli (contexts of up to {enc.context_sizes[1]} and "
                             f"{enc.n_query} queries), but the split leaves {train.size}: use "
                             f"more stimuli or a lower test fraction")
    skipped = n_vox - keep.size
    say(f"fitting {model_name} ({spec.estimator}) on {train.size} repeat-averaged training "
        f"stimuli, {inputs}, {keep.size} voxels"
        + (f" ({skipped} constant over them not fitted)" if skipped else "")
        + f", at most {enc.max_steps} steps ...", flush=True)
    if spatial:
        fit_kw = {}
        if model_name == "attention" and "roi" not in Yfit.coords:
            fit_kw["rois"] = np.full(keep.size, "all")
        enc.fit(_take(X, train), Yfit, **fit_kw)
        pred_test = np.asarray(enc.predict(_take(X, test)))
    else:  # z-scored on the training stimuli, as for ridge
        mu, sd = X[train].mean(0), X[train].std(0)
        sd[sd == 0] = 1.0
        enc.fit((X[train] - mu) / sd, Yfit)
        pred_test = np.asarray(enc.predict((X[test] - mu) / sd))
    history = enc.history_
    if history.sizes.get("step") and "test_r" in history:
        say(f"trained {enc.n_steps_} steps; validation r {float(history['test_r'].max()):.3f} "
            f"at the kept step {enc.best_step_}")
    # unfitted (constant) voxels predict their constant, as ridge's do, and score 0
    full = np.broadcast_to(Y.mean(0), (test.size, n_vox)).astype(np.float32)
    full[:, keep] = pred_test
    ids, Yheld = _held_out(ds, test)
    scores = _scores(ds, Yheld, full[np.searchsorted(test, ids)])
    params = {k: v for k, v in enc.get_params().items() if k not in ("checkpoint_dir", "progress")}
    attrs = provenance(spec.estimator, seed=seed, params={
        "model": model_name, "feature_spaces": [str(s) for s in feature_spaces],
        "test_fraction": test_fraction, **params}, chance=CHANCE, test_stimuli=test.tolist(),
        fitted_voxels=int(keep.size))
    model = _all_voxels(enc.to_dataset(), keep, n_vox)
    voxel_vars, extra = {}, {"history.nc": history}
    if model_name == "factorized":
        rf = enc.receptive_fields_
        for name in ("rf_x", "rf_y", "rf_size"):
            values = np.full(n_vox, np.nan)  # unfitted voxels have no receptive field
            values[keep] = rf[name].values
            voxel_vars[name] = xr.Variable("voxel", values, rf[name].attrs)
            model[name] = voxel_vars[name]
    if model_name == "attention":
        shown = test[:16]
        maps = enc.attention_maps(_take(X, shown)).assign_coords(stimulus=shown)
        maps.attrs["stimuli"] = (f"the first {shown.size} held-out stimuli (stimulus: "
                               f"their index in the dataset)")
        extra["attention.nc"] = maps
    return Fitted(enc, scores, int(Yheld.shape[0]), test, model, attrs, voxel_vars, extra)


def _all_voxels(model, keep, n_vox: int):
    """``model``'s voxel variables, fitted on voxels ``keep``, over all ``n_vox`` voxels: the
    unfitted ones hold 0 (-1 for integers) and ``fitted`` False. The voxel coords are left to
    the caller (the dataset's)."""
    import numpy as np
    import xarray as xr

    out = xr.Dataset(attrs=dict(model.attrs))
    for name, var in model.data_vars.items():
        values = np.asarray(var.values)
        if "voxel" in var.dims:
            axis = var.dims.index("voxel")
            shape = list(values.shape)
            shape[axis] = n_vox
            full = np.full(shape, -1 if values.dtype.kind in "iu" else 0, dtype=values.dtype)
            index: list[Any] = [slice(None)] * values.ndim
            index[axis] = keep
            full[tuple(index)] = values
            values = full
        out[name] = xr.Variable(var.dims, values, var.attrs)
    for name, coord in model.coords.items():
        if "voxel" not in coord.dims and name not in out.coords:
            out = out.assign_coords({name: coord.variable})
    fitted = np.zeros(n_vox, bool)
    fitted[keep] = True
    out["fitted"] = ("voxel", fitted)
    return out

