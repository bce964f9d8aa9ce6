"""Banded ridge regression: one regularisation per feature space and per voxel.

Encoding studies compare feature spaces (low-level vs semantic, model layer A vs layer B).
Banded ridge (Nunez-Elizalde, Huth & Gallant 2019; Dupre la Tour et al. 2022) gives each
feature space ``X_i`` its own penalty ``alpha / gamma_i`` with band weights ``gamma`` on the
simplex. It is ridge on the rescaled design ``Z = [sqrt(gamma_1) X_1, ..., sqrt(gamma_m) X_m]``:

    coef_i = sqrt(gamma_i) * w_i,   w = argmin ||Y - Z w||^2 + alpha ||w||^2

so for each candidate ``gamma`` every alpha and every voxel is scored from one decomposition
of ``Z`` per fold (the machinery of :class:`~brainmodels.encoders.RidgeEncoder`), and each
voxel keeps the candidate and alpha with the best cross-validated score (random search over
the simplex, as himalaya's ``GroupRidgeCV``). Candidates are Dirichlet samples, the first one
uniform (so the search never does worse than plain ridge on the concatenation, up to the
alpha grid).

:func:`stack_feature_spaces` combines labelled feature spaces into one DataArray with a
``feature_space`` coordinate (each space's own feature coordinates kept), and
:func:`variance_partitioning` turns the scores of models fitted on subsets of the spaces into
unique and shared variance.

References
----------
Nunez-Elizalde, A. O., Huth, A. G. & Gallant, J. L. (2019). Voxelwise encoding models with
non-spherical multivariate normal priors. NeuroImage 197, 482-492.
Dupre la Tour, T., Eickenberg, M., Nunez-Elizalde, A. O. & Gallant, J. L. (2022).
Feature-space selection with banded ridge regression. NeuroImage 264, 119728 (eq. 4, the
product-measure split of R^2, eq. 8).
Lescroart, M. D., Stansbury, D. E. & Gallant, J. L. (2015). Fourier power, subjective distance,
and object categories all provide plausible models of BOLD responses in scene-selective visual
areas. Front. Comput. Neurosci. 9:135 (variance partitioning).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike
from brainmodels.data import provenance
from brainmodels.encoders import _solvers
from brainmodels.encoders._banded_scale import (
    _check_store,
    _lazy_targets,
    _ModelStore,
    _open_store,
    _per_voxel,
    _run_chunks,
    _StoredCoef,
    _voxel_chunks,
)
from brainmodels.encoders._cv import (
    CV_AVERAGES,
    SOLVERS,
    _cv_scores,
    _dtype,
    _fit_bytes,
    _refit,
    _resolve_splits,
    _select,
    _warn_if_time_series,
    device_mesh,
)
from brainmodels.encoders._validation import (
    check_xy,
    format_indices,
    sample_dim,
    voxel_coords,
)
from brainmodels.encoders.feature_spaces import _spaces, band_candidates
from brainmodels.encoders.scoring import SCORES, r2_split

__all__ = ["BandedRidgeEncoder", "variance_partitioning"]

#: alphas tried when ``BandedRidgeEncoder(alphas=None)`` (penalty of the concatenation; the
#: band weights then spread it over the spaces)
DEFAULT_ALPHAS = np.logspace(-2, 8, 20)


# ----------------------------------------------------------------------------- estimator


def _runs(runs, Xt, Yt, n):
    """``runs=`` or else the ``run`` coordinate of the sample axis of ``Xs`` or ``Y``."""
    if runs is None:
        for t in (Xt, Yt):
            if t is not None and "run" in t.coords and t.coords["run"].dims == t.dims[:1]:
                runs = t.coords["run"].values
                break
    if runs is None:
        return None
    runs = np.asarray(runs)
    if runs.shape != (n,):
        raise ValueError(f"runs must have one entry per sample, shape ({n},); got shape "
                         f"{runs.shape}")
    return runs


class BandedRidgeEncoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge with one penalty per feature space and per voxel (random search on the simplex).

    Parameters
    ----------
    alphas : array (alpha,), optional
        Overall penalties tried with every band-weight candidate (default
        ``np.logspace(-2, 8, 20)``). Space ``i`` is penalised by ``alpha / gamma_i``.
    cv : int, splitter, ``"runs"`` or ``"loo"``
        As :class:`~brainmodels.encoders.RidgeEncoder` (``"runs"`` for BOLD time series).
    n_iter : int or array (candidate, feature_space)
        Band-weight candidates: their number (:func:`band_candidates`, first one uniform) or the
        candidates themselves (rows are normalised to sum to 1).
    concentration : float or sequence
        Dirichlet concentrations cycled through when sampling candidates.
    seed : int
        Seeds the candidates.
    per_voxel : bool
        True (default): every voxel picks its own band weights and alpha. False: one
        candidate and one alpha for all voxels, the best by the mean CV score over voxels.
    solver : {"random_search", "hyper_gradient"}
        ``"random_search"``: the best of the candidates (and alphas) per voxel.
        ``"hyper_gradient"``: then ``hyper_steps`` Adam steps (rate ``hyper_lr``, on log
        penalties) down the gradient of the CV loss, through the ridge solution by implicit
        differentiation (``jax.grad``); each voxel keeps the best penalties seen, so its CV
        score is at least the random search's. It solves one ``d x d`` system per voxel,
        fold and step (``d = min(features, training samples)``): made for accelerators; on a
        CPU keep ``d`` in the hundreds. Needs K-fold or run splits and ``scoring="r2"``.
    decomposition : {"auto", "svd", "dual", "primal"}
        How the random search diagonalises each rescaled design (``solver`` of
        :class:`~brainmodels.encoders.RidgeEncoder`; ``"auto"`` picks from the shapes).
    fit_intercept, scoring, cv_average, voxel_batch, drop_constant
        As :class:`~brainmodels.encoders.RidgeEncoder`.
    devices : None, int or list of JAX devices
        Voxel batches are split over these devices in each jitted call (default: every
        visible device, e.g. all GPUs of the machine; ``voxel_batch`` voxels per device).
        Results equal a single-device fit.

    Attributes
    ----------
    band_weights_ : (feature_space, voxel) selected ``gamma`` (sums to 1 over spaces).
    alphas_ : (voxel,) selected overall alpha.
    band_alphas_ : (feature_space, voxel) the effective per-space penalty ``alpha / gamma``.
    coef_ : (feature, voxel) on the original (unscaled) features, spaces concatenated.
    intercept_ : (voxel,)
    cv_scores_ : (candidate, voxel) CV score of every candidate at its best alpha.
    best_cv_scores_ : (voxel,)
    candidates_ : (candidate, feature_space) the band weights tried.
    feature_spaces_ : list of names; n_features_in_ : int

    A DataArray ``Y`` gives DataArray attributes with ``Y``'s voxel coordinates and a
    ``feature_space`` dimension.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((200, 5)), rng.standard_normal((200, 30))
    >>> Y = A @ rng.standard_normal((5, 4)) + 0.1 * rng.standard_normal((200, 4))
    >>> enc = BandedRidgeEncoder(n_iter=10, cv=4).fit({"low": A, "high": B}, Y)
    >>> bool((enc.band_weights_[0] > 0.5).all())   # every voxel leans on the true space
    True
    """

    def __init__(self, alphas=None, cv=5, n_iter=20, concentration=(0.1, 1.0), seed=0,
                 per_voxel=True, fit_intercept=True, scoring="r2", cv_average="pooled",
                 solver="random_search", hyper_steps=20, hyper_lr=0.2, decomposition="auto",
                 voxel_batch=1024, drop_constant=False, devices=None):
        self.alphas = alphas
        self.cv = cv
        self.n_iter = n_iter
        self.concentration = concentration
        self.seed = seed
        self.per_voxel = per_voxel
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.cv_average = cv_average
        self.solver = solver
        self.hyper_steps = hyper_steps
        self.hyper_lr = hyper_lr
        self.decomposition = decomposition
        self.voxel_batch = voxel_batch
        self.drop_constant = drop_constant
        self.devices = devices

    # ------------------------------------------------------------------ checks

    def _check_params(self, n_spaces: int) -> tuple[np.ndarray, np.ndarray]:
        alphas = np.atleast_1d(np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas,
                                          dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(
                alphas <= 0):
            raise ValueError(f"alphas must be a 1-D array of positive numbers, got {self.alphas!r}")
        if self.scoring not in _solvers.FOLD_SCORES:
            raise ValueError(f"scoring must be one of {sorted(_solvers.FOLD_SCORES)}, got "
                             f"{self.scoring!r}")
        if self.cv_average not in CV_AVERAGES:
            raise ValueError(f"cv_average must be one of {list(CV_AVERAGES)}, got "
                             f"{self.cv_average!r}")
        if self.decomposition not in SOLVERS:
            raise ValueError(f"decomposition must be one of {sorted(SOLVERS)}, got "
                             f"{self.decomposition!r}")
        if self.solver not in ("random_search", "hyper_gradient"):
            raise ValueError(f"solver must be 'random_search' or 'hyper_gradient', got "
                             f"{self.solver!r}")
        if self.solver == "hyper_gradient":
            if self.scoring != "r2":
                raise ValueError(f"solver='hyper_gradient' descends the held-out squared error: "
                                 f"it needs scoring='r2', got {self.scoring!r}")
            if self.cv == "loo":
                raise ValueError("solver='hyper_gradient' needs K-fold or run splits, not "
                                 "cv='loo'")
            if int(self.hyper_steps) < 1 or not float(self.hyper_lr) > 0:
                raise ValueError(f"hyper_steps must be >= 1 and hyper_lr > 0, got "
                                 f"{self.hyper_steps!r} and {self.hyper_lr!r}")
            if not self.per_voxel:
                raise ValueError("solver='hyper_gradient' refines each voxel's penalties; it "
                                 "needs per_voxel=True")
        if int(self.voxel_batch) < 1:
            raise ValueError(f"voxel_batch must be a positive int, got {self.voxel_batch!r}")
        n_iter = self.n_iter
        if isinstance(n_iter, int | np.integer) and not isinstance(n_iter, bool):
            if n_iter < 1:
                raise ValueError(f"n_iter must be >= 1, got {n_iter}")
            cands = band_candidates(n_spaces, int(n_iter), concentration=self.concentration,
                                    seed=self.seed)
        else:
            cands = np.asarray(n_iter, dtype=np.float64)
            if cands.ndim != 2 or cands.shape[1] != n_spaces or cands.shape[0] < 1:
                raise ValueError(f"n_iter must be an int or an array (candidate, feature_space) "
                                 f"with {n_spaces} columns; got shape {cands.shape}")
            if not np.all(np.isfinite(cands)) or np.any(cands < 0) or np.any(
                    cands.sum(1) <= 0):
                raise ValueError("n_iter candidates must be non-negative band weights with a "
                                 "positive sum per row")
            cands = cands / cands.sum(1, keepdims=True)
        return alphas, cands

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, Xs: Any, Y: ArrayLike, runs: ArrayLike | None = None,
            progress: Callable | None = None, client: Any = None,
            voxel_chunk: int | None = None,
            store: str | os.PathLike | None = None) -> BandedRidgeEncoder:
        """Pick band weights and alpha per voxel by cross-validation; refit on all the data.

        Parameters
        ----------
        Xs : list of (sample, feature) arrays, dict name -> array, or DataArray
            The feature spaces; a DataArray needs a ``feature_space`` coordinate
            (:func:`stack_feature_spaces`).
        Y : (sample, voxel) array or DataArray
            May be dask-backed (``xr.open_dataset(..., chunks=...)`` or ``open_zarr``): it is
            then read one voxel chunk at a time (``voxel_chunk``, default Y's own chunks), so
            memory holds one chunk of Y, the design and the results.
        progress : callable, optional
            Wraps the iterable of candidates (one process) or of voxel chunks (chunked).
        client : dask.distributed.Client, optional
            Fit voxel chunks on the cluster's workers (each runs the jitted solver on its
            chunk; the design travels in the task, so a lost worker loses nothing the scheduler
            cannot recompute); dask retries a chunk whose worker dies.
            Results are the single-process fit's: every voxel's choice depends on that voxel
            alone.
        voxel_chunk : int, optional
            Voxels per chunk for ``client`` or a dask-backed ``Y`` (default: Y's chunks, or an
            even split over twice the workers).
        store : path to a ``.nc`` file, optional
            Write the fitted model (the variables of :meth:`to_dataset`) into this netCDF file
            voxel chunk by voxel chunk as the chunks finish, so that memory never holds all the
            coefficients (fits chunked, as with ``voxel_chunk``). The file is written under a
            temporary name and renamed when complete: it is whole or absent, never half. The
            fitted ``coef_`` is then read from it lazily, and :meth:`predict` and
            :meth:`score` stream voxel chunks of it.
        """
        names, spaces, Xt = _spaces(Xs, where="fit")
        alphas, cands = self._check_params(len(spaces))
        for name, sp in zip(names, spaces, strict=True):
            if sp.shape[1] == 0:
                raise ValueError(f"feature space {name!r} has no features")
        lazy = _lazy_targets(Y)
        if store is not None:
            store = _check_store(store)
        if lazy is None and client is None and voxel_chunk is None and store is None:
            X, Yv, _, Yt, y1d = check_xy(np.concatenate(spaces, axis=1), Y)
        else:
            X = check_xy(np.concatenate(spaces, axis=1), np.zeros(spaces[0].shape[0]))[0]
            if lazy is None:
                _, Yv, _, Yt, y1d = check_xy(X, Y)
            else:
                Yv, Yt, y1d = lazy
                if Yv.shape[0] != X.shape[0]:
                    raise ValueError(f"Xs and Y must have the same number of samples (rows); "
                                     f"Xs has {X.shape[0]}, Y has {Yv.shape[0]}")
            if not self.per_voxel:
                raise ValueError("per_voxel=False chooses one candidate for all voxels at once; "
                                 "it does not run chunked (client=, voxel_chunk=, store= or a "
                                 "dask-backed Y)")
        n, p = X.shape
        runs = _runs(runs, Xt, Yt, n)
        splits = _resolve_splits(self.cv, n, runs)
        if splits == "loo":
            _warn_if_time_series(Xt, Yt, runs)
        if np.all(np.ptp(X, axis=0) == 0):
            raise ValueError(f"all {p} features are constant; there is nothing to fit")
        sizes = [sp.shape[1] for sp in spaces]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        dtype = _dtype(X, np.zeros(1, dtype=getattr(Yv, "dtype", np.float32)))
        method = SOLVERS[self.decomposition](
            n if splits == "loo" else min(len(a) for a, _ in splits), p)
        job = _BlockJob(X=X, sizes=sizes, cands=cands, alphas=alphas, splits=splits,
                        method=method, dtype=dtype, params=self.get_params())
        v = Yv.shape[1]
        if store is not None:
            chunks = _voxel_chunks(v, voxel_chunk, lazy, client)
            x_mean = X.mean(0) if self.fit_intercept else np.zeros(p)
            writer = _ModelStore(store, p=p, v=v, m=len(sizes), n_cands=len(cands),
                                 dtype=dtype, chunk=chunks[0].stop - chunks[0].start,
                                 x_mean=x_mean, fit_intercept=self.fit_intercept)
            try:
                res = _run_chunks(job, Yv, chunks, client=client, progress=progress,
                                  sink=writer.write)
                self._store(X, res, names, bounds, cands, alphas, dtype, method)
                self._vcoords = voxel_coords(Yt)
                writer.finish(self._metadata())
            except BaseException:
                writer.abort()
                raise
            self._coef = _StoredCoef(store, p, v, dtype, writer.chunk)
            self._label(Xt, Yt, y1d)
            return self
        if lazy is None and client is None and voxel_chunk is None:
            batch = max(1, min(int(self.voxel_batch), max(v, 1)))
            check_memory(_fit_bytes(n, p, v, alphas.size, batch,
                                    1 if splits == "loo" else len(splits),
                                    np.dtype(dtype).itemsize) + 8.0 * len(cands) * v,
                         what=f"BandedRidgeEncoder.fit on {n} samples x {p} features x "
                              f"{v} voxels", knob="lower voxel_batch, or pass voxel_chunk=")
            res = job(Yv, 0, progress=progress)
        else:
            chunks = _voxel_chunks(v, voxel_chunk, lazy, client)
            res = _run_chunks(job, Yv, chunks, client=client, progress=progress)
        self._store(X, res, names, bounds, cands, alphas, dtype, method)
        self._label(Xt, Yt, y1d)
        return self

    def _store(self, X, res, names, bounds, cands, alphas, dtype, method):
        self._coef = res.get("coef")  # None when written to a store (set after it is complete)
        v = res["alphas"].shape[0]
        self._x_mean = X.mean(0) if self.fit_intercept else np.zeros(X.shape[1])
        self._y_mean = res["y_mean"] if self.fit_intercept else np.zeros(v)
        self._intercept = res["intercept"] if "intercept" in res else \
            (self._y_mean - self._x_mean @ self._coef).astype(dtype)
        self._gamma = res["gamma"]
        self._alphas = res["alphas"]
        self._cv = res["cv"]
        self._best_cv = res["best_cv"]
        self._bounds = bounds
        self.candidates_ = cands
        self.alpha_grid_ = alphas
        self.feature_spaces_ = list(names)
        self.constant_voxels_ = np.flatnonzero(res["constant"])
        self.n_features_in_ = X.shape[1]
        self.solver_ = method

    def _label(self, Xt, Yt, y1d):
        self._y1d = y1d
        self._vcoords = voxel_coords(Yt)
        self._labelled = Yt is not None
        band_alphas = self._alphas[None, :] / np.where(self._gamma > 0, self._gamma, np.nan)
        band_alphas = np.where(self._gamma > 0, band_alphas, np.inf)
        stored = isinstance(self._coef, _StoredCoef)
        arrays = dict(coef=self._coef, intercept=self._intercept, alphas=self._alphas,
                      band_weights=self._gamma, band_alphas=band_alphas,
                      cv_scores=self._cv, best_cv_scores=self._best_cv)
        if stored:  # coef_: the store's variable, read when used (never all of it at once here)
            lazy = self.to_dataset()["coef"]
            arrays["coef"] = lazy[:, 0] if y1d else lazy
            if y1d or not self._labelled:
                for k, a in arrays.items():
                    if k != "coef":
                        setattr(self, f"{k}_", a[..., 0] if y1d and a.ndim > 1 else
                                a[0] if y1d else a)
                self.coef_ = arrays["coef"]
                return
        if y1d:
            for k, a in arrays.items():
                setattr(self, f"{k}_", a[..., 0] if a.ndim > 1 else a[0])
            return
        if not self._labelled:
            for k, a in arrays.items():
                setattr(self, f"{k}_", a)
            return
        ds = self.to_dataset()
        for k in arrays:
            setattr(self, f"{k}_", ds[k])

    def _metadata(self) -> xr.Dataset:
        """Everything of :meth:`to_dataset` but the per-voxel variables: coordinates, the
        candidates and the provenance."""
        sizes = np.diff(self._bounds)
        coords = {**self._vcoords, "feature_space": self.feature_spaces_,
                  "space_of_feature": ("feature", np.repeat(self.feature_spaces_, sizes))}
        ds = xr.Dataset({"candidates": (("candidate", "feature_space"), self.candidates_)},
                        coords=coords)
        params = {k: v for k, v in self.get_params().items()
                  if k != "cv" or not hasattr(v, "split")}
        ds.attrs = provenance("BandedRidgeEncoder", params=params, solver=self.solver_,
                              cv_description=str(self.cv))
        return ds

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as a labelled Dataset (coef, band weights, alphas, CV scores).
        After ``fit(..., store=path)`` it is the store, opened lazily (read on access)."""
        check_is_fitted(self, "n_features_in_")
        if isinstance(self._coef, _StoredCoef):
            return _open_store(self._coef.path)
        band_alphas = np.where(self._gamma > 0, self._alphas[None, :]
                               / np.where(self._gamma > 0, self._gamma, 1.0), np.inf)
        ds = self._metadata()
        for name, dims, values in _per_voxel(self._coef, self._intercept, self._alphas,
                                             self._gamma, band_alphas, self._cv,
                                             self._best_cv):
            ds[name] = (dims, values)
        return ds[["coef", "intercept", "alphas", "band_weights", "band_alphas", "cv_scores",
                   "best_cv_scores", "candidates"]]

    # ------------------------------------------------------------------ predict / score

    def _design(self, Xs, where):
        check_is_fitted(self, "n_features_in_")
        names, spaces, Xt = _spaces(Xs, where=where)
        sizes = [int(s.shape[1]) for s in spaces]
        fitted = [int(k) for k in np.diff(self._bounds)]
        if isinstance(Xs, Mapping | xr.DataArray) and names != self.feature_spaces_:
            raise ValueError(f"{where}: feature spaces {names} differ from those fitted, "
                             f"{self.feature_spaces_}")
        if sizes != fitted:
            raise ValueError(
                f"{where}: Xs must hold {len(fitted)} feature spaces of {fitted} features (as "
                f"in fit: {self.feature_spaces_}); got {len(spaces)} of {sizes}")
        return spaces, Xt

    def _wrap(self, values, Xt, *, split):
        if self._y1d:
            values = values[..., 0]
        if Xt is None or self._y1d or not self._labelled:
            return values
        dim = sample_dim(Xt)
        coords = {k: c for k, c in Xt.coords.items() if c.dims == (dim,)}
        dims = (dim, "voxel")
        if split:
            dims = ("feature_space", *dims)
            coords["feature_space"] = self.feature_spaces_
        return xr.DataArray(values, dims=dims, coords={**coords, **self._vcoords},
                            name="prediction")

    def predict(self, Xs: Any, split: bool = False) -> Any:
        """Predicted responses (sample, voxel). ``split=True``: the contribution of each space,
        ``(X_i - mean_i) @ coef_i`` with training means, as (feature_space, sample, voxel);
        their sum plus the training mean of ``Y`` is the joint prediction."""
        spaces, Xt = self._design(Xs, "predict")
        dtype = self._coef.dtype
        if not split:
            X = np.concatenate(spaces, axis=1).astype(dtype, copy=False)
            return self._wrap(self._times_coef(X, slice(None)) + self._intercept, Xt,
                              split=False)
        parts = []
        for i, s in enumerate(spaces):
            sl = slice(self._bounds[i], self._bounds[i + 1])
            parts.append(self._times_coef((s - self._x_mean[sl]).astype(dtype, copy=False), sl))
        return self._wrap(np.stack(parts), Xt, split=True)

    def _times_coef(self, A: np.ndarray, rows: slice) -> np.ndarray:
        """``A @ coef[rows]``; from a store, one voxel chunk of it at a time."""
        if not isinstance(self._coef, _StoredCoef):
            return A @ self._coef[rows]
        out = np.empty((A.shape[0], self._coef.shape[1]), dtype=np.result_type(A, self._coef))
        for sl in self._coef.chunks():
            out[:, sl] = A @ self._coef[rows, sl]
        return out

    def score_voxels(self, Xs: Any, Y: ArrayLike, split: bool = False) -> Any:
        """Per-voxel score of the joint prediction (``self.scoring``), or with ``split=True``
        the product-measure split of R^2 over the spaces, (feature_space, voxel), from
        :func:`~brainmodels.encoders.r2_split`."""
        if not split:
            pred = self.predict(Xs)
            if isinstance(Y, xr.DataArray):
                return SCORES[self.scoring](Y.astype(float), pred)
            Yv = np.asarray(Y, dtype=float)
            if Yv.ndim == 1:
                return SCORES[self.scoring](Yv[:, None], np.asarray(pred)[:, None])
            return SCORES[self.scoring](Yv, pred)
        parts = self.predict(Xs, split=True)
        Yv = np.asarray(Y.values if isinstance(Y, xr.DataArray) else Y, dtype=float)
        P = np.asarray(parts, dtype=np.float64)
        if Yv.ndim == 1:
            Yv, P = Yv[:, None], P[..., None]
        out = r2_split(Yv - self._y_mean if not self._y1d else Yv - self._y_mean[0], P)
        if self._labelled and not self._y1d:
            return xr.DataArray(out, dims=("feature_space", "voxel"),
                                coords={"feature_space": self.feature_spaces_,
                                        **self._vcoords}, name="r2_split")
        return out[:, 0] if self._y1d else out

    def score(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None,
              split: bool = False) -> Any:
        """Mean over voxels of :meth:`score_voxels` (a float, as scikit-learn needs), or with
        ``split=True`` the per-voxel split scores (feature_space, voxel)."""
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by BandedRidgeEncoder.score")
        if split:
            return self.score_voxels(X, y, split=True)
        per_voxel = np.asarray(self.score_voxels(X, y), dtype=np.float64)
        defined = np.isfinite(per_voxel)
        if not defined.any():
            raise ValueError("no voxel of Y has a defined score (all are constant)")
        return float(np.mean(per_voxel[defined]))


class _BlockJob:
    """The banded fit of one block of voxels (picklable: it runs on dask workers too).

    Every voxel's choice depends on that voxel alone, so blocks give the same numbers as one
    fit of all voxels (the jitted kernels compute each column on its own).
    """

    def __init__(self, *, X, sizes, cands, alphas, splits, method, dtype, params):
        self.X, self.sizes, self.cands, self.alphas = X, sizes, cands, alphas
        self.splits, self.method, self.dtype, self.params = splits, method, dtype, params

    def __call__(self, Y, offset: int, progress=None) -> dict[str, np.ndarray]:
        P = self.params
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != self.X.shape[0]:
            raise ValueError(f"Y block must be (sample, voxel) with {self.X.shape[0]} samples, "
                             f"got {Y.shape}")
        if Y.dtype.kind not in "fiub":
            raise TypeError(f"Y must be numeric, got dtype {Y.dtype}")
        bad = ~np.isfinite(Y)
        if bad.any():
            cols = np.flatnonzero(bad.any(0)) + offset
            raise ValueError(f"Y contains {int(bad.sum())} NaN or infinite value(s) in voxel(s) "
                             f"{format_indices(cols)}; remove or impute them before fitting")
        const = np.ptp(Y, axis=0) == 0 if Y.shape[0] else np.zeros(Y.shape[1], bool)
        if const.any() and not P["drop_constant"]:
            idx = np.flatnonzero(const) + offset
            raise ValueError(f"Y has {idx.size} voxel(s) with zero variance (indices "
                             f"{format_indices(idx)}); drop them or pass drop_constant=True")
        keep = np.flatnonzero(~const)
        Yfit = Y if keep.size == Y.shape[1] else Y[:, keep]
        X, cands, alphas, dtype = self.X, self.cands, self.alphas, self.dtype
        m, p, v = len(self.sizes), X.shape[1], Yfit.shape[1]
        mesh = device_mesh(P.get("devices"))
        batch = max(1, min(int(P["voxel_batch"]), max(v, 1)))
        kw = dict(method=self.method, fit_intercept=P["fit_intercept"], batch=batch,
                  dtype=dtype, mesh=mesh)
        scale = np.repeat(np.arange(m), self.sizes)
        cv_best = np.full((len(cands), v), -np.inf)
        alpha_idx = np.zeros((len(cands), v), dtype=int)
        it = range(len(cands)) if progress is None else progress(range(len(cands)))
        for c in it:
            if v == 0:
                continue
            Z = X * np.sqrt(cands[c])[scale][None, :]
            cv = _cv_scores(Z, Yfit, alphas, self.splits, score=P["scoring"],
                            average=P["cv_average"], **kw)
            if P["per_voxel"]:
                best = _select(cv, alphas)
            else:
                mean = np.mean(np.where(np.isfinite(cv), cv, -np.inf), axis=1)
                best = np.full(v, int(np.argmax(mean + 1e-10 * np.log(alphas))))
            alpha_idx[c] = best
            cv_best[c] = cv[best, np.arange(v)]
        if P["per_voxel"]:
            # the first candidate (uniform) wins ties; a later one must beat it by eps (himalaya)
            eps = np.finfo(dtype).eps
            chosen = np.zeros(v, dtype=int)
            current = cv_best[0].copy()
            for c in range(1, len(cands)):
                better = cv_best[c] > current + eps
                chosen[better] = c
                current[better] = cv_best[c][better]
        else:
            chosen = np.full(v, int(np.argmax(cv_best.mean(axis=1))) if v else 0)
        best_alpha = alphas[alpha_idx[chosen, np.arange(v)]]
        coef = np.zeros((p, Y.shape[1]), dtype=dtype)
        out = dict(coef=coef, constant=const, y_mean=Y.mean(0),
                   gamma=np.full((m, Y.shape[1]), 1.0 / m),
                   alphas=np.full(Y.shape[1], alphas.max()),
                   cv=np.zeros((len(cands), Y.shape[1])), best_cv=np.zeros(Y.shape[1]))
        out["cv"][:, keep] = cv_best
        if P["solver"] == "hyper_gradient" and v:
            from brainmodels.encoders._banded_hyper import refine

            bounds = np.concatenate([[0], np.cumsum(self.sizes)])
            gamma, alpha, score, w = refine(
                X, Yfit, bounds, self.splits, cands[chosen].T, best_alpha,
                fit_intercept=P["fit_intercept"], average=P["cv_average"],
                steps=P["hyper_steps"], lr=P["hyper_lr"], dtype=dtype)
            coef[:, keep] = w
            out["gamma"][:, keep] = gamma
            out["alphas"][keep] = alpha
            out["best_cv"][keep] = score
            return out
        for c in np.unique(chosen):
            cols = np.flatnonzero(chosen == c)
            root = np.sqrt(cands[c])[scale]
            w = _refit(X * root[None, :], Yfit[:, cols], best_alpha[cols].astype(dtype), **kw)
            coef[:, keep[cols]] = w * root[:, None].astype(dtype)
        out["gamma"][:, keep] = cands[chosen].T
        out["alphas"][keep] = best_alpha
        out["best_cv"][keep] = cv_best[chosen, np.arange(v)]
        return out


# ----------------------------------------------------------------------------- partitioning


def variance_partitioning(scores: Mapping[Any, Any]) -> dict[tuple[str, ...], Any]:
    """Unique and shared variance of feature spaces from the scores of subset models.

    ``scores`` maps every non-empty subset of the spaces (a tuple or frozenset of names, or a
    ``"+"``-joined string such as ``"low+high"``) to the held-out R^2 of the model fitted on
    that subset (per voxel arrays or DataArrays). Returns, for every non-empty subset ``T``,
    the variance explained jointly by exactly the spaces in ``T`` and no other: ``(a,)`` is
    the unique variance of ``a``; ``(a, b)`` what ``a`` and ``b`` share (and ``c`` does not).
    With ``f(W) = R^2(all) - R^2(all minus W)``, the part of ``T`` is the Moebius inversion
    ``sum over W in T of (-1)^(|T|-|W|) f(W)``; with two spaces: unique a = R^2(ab) - R^2(b),
    shared = R^2(a) + R^2(b) - R^2(ab). The parts sum to R^2(all).
    """
    table: dict[frozenset, Any] = {}
    for key, value in scores.items():
        names = key.split("+") if isinstance(key, str) else list(key)
        subset = frozenset(str(k) for k in names)
        if not subset or len(subset) != len(names):
            raise ValueError(f"scores keys must be non-empty sets of distinct space names, got "
                             f"{key!r}")
        table[subset] = value
    spaces = sorted(set().union(*table))
    if len(spaces) > 6:
        raise ValueError(f"variance partitioning of {len(spaces)} spaces needs "
                         f"{2 ** len(spaces) - 1} models; at most 6 spaces are supported")
    everything = frozenset(spaces)
    missing = [sorted(s) for r in range(1, len(spaces) + 1)
               for s in map(frozenset, itertools.combinations(spaces, r)) if s not in table]
    if missing:
        raise ValueError(f"scores lacks the models of subsets {missing}; every non-empty subset "
                         f"of {spaces} is needed")
    total = table[everything]

    def f(W):
        rest = everything - W
        return total - table[rest] if rest else total

    out: dict[tuple[str, ...], Any] = {}
    for r in range(1, len(spaces) + 1):
        for T in itertools.combinations(spaces, r):
            part = 0
            for k in range(1, r + 1):
                for W in itertools.combinations(T, k):
                    part = part + (-1) ** (r - k) * f(frozenset(W))
            out[T] = part
    return out
