"""Voxelwise ridge regression with one regularisation strength per voxel.

:class:`RidgeEncoder` follows the scikit-learn estimator contract (``fit`` / ``predict`` /
``score``). It picks one alpha per voxel by cross-validation and refits on all the data:

* ``cv=int`` (contiguous K-fold, no shuffling, as :class:`sklearn.model_selection.KFold`),
  any scikit-learn splitter, ``"runs"`` (leave-one-run-out: the right choice for BOLD time
  series, whose samples are autocorrelated) or ``"loo"`` (exact leave-one-out in closed form,
  valid only for independent samples such as single-trial or repeat-averaged betas).
* One SVD per fold serves every alpha and every voxel; voxels are processed in batches of
  ``voxel_batch`` under ``jax.jit`` so that memory stays bounded.
* The dual (kernel) form is used automatically when features outnumber samples.

References
----------
Hoerl, A. E. & Kennard, R. W. (1970). Ridge regression. Technometrics 12(1), eq. 2.3.
Golub, G. H., Heath, M. & Wahba, G. (1979). Generalized cross-validation as a method for
choosing a good ridge parameter. Technometrics 21(2), eqs. 1.5, 2.2.
Dupré la Tour, T., Eickenberg, M., Nunez-Elizalde, A. O. & Gallant, J. L. (2022).
Feature-space selection with banded ridge regression. NeuroImage 264 (himalaya).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike
from brainmodels.data import provenance
from brainmodels.encoders import _solvers
from brainmodels.encoders._cv import (
    CV_AVERAGES,
    CV_STRATEGIES,
    SOLVERS,
    _cv_scores,
    _dtype,
    _fit_bytes,
    _refit,
    _resolve_splits,
    _select,
    _warn_if_time_series,
    kfold_splits,
)
from brainmodels.encoders._estimator import ScoreMixin
from brainmodels.encoders._validation import (
    check_x,
    check_xy,
    constant_columns,
    format_indices,
    sample_dim,
    voxel_coords,
)
from brainmodels.encoders.scoring import SCORES

__all__ = ["RidgeEncoder", "CV_STRATEGIES", "SOLVERS", "kfold_splits"]


# ----------------------------------------------------------------------------- estimator


#: alphas tried when ``RidgeEncoder(alphas=None)``
DEFAULT_ALPHAS = np.logspace(-2, 8, 20)


class RidgeEncoder(ScoreMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression from features to voxels with one alpha per voxel chosen by CV.

    Parameters
    ----------
    alphas : array of shape (alpha,), optional
        Positive regularisation strengths to try (default, None: :data:`DEFAULT_ALPHAS`,
        ``np.logspace(-2, 8, 20)``).
    cv : int, splitter, ``"runs"`` or ``"loo"``
        Cross-validation used to pick alphas. An int is a contiguous K-fold (no shuffle, as
        scikit-learn's ``KFold``); ``"runs"`` is leave-one-run-out (pass ``runs=`` to ``fit``
        or give ``X`` a ``run`` coordinate): use it for BOLD time series. ``"loo"`` is exact
        leave-one-out in closed form (one SVD for everything); it is valid only when samples
        are independent (single-trial or repeat-averaged betas), never for time series.
    fit_intercept : bool
        Fit an unpenalised intercept per voxel (X and Y are centred on the training data).
    scoring : {"r2", "correlation", "neg_mse"}
        Score used to pick alphas and returned by :meth:`score`. (Named ``scoring`` as in
        scikit-learn, because an attribute ``score`` would hide the method.)
    cv_average : {"pooled", "folds"}
        How K folds' held-out errors become one score per alpha. ``"pooled"`` (default): the
        score of all out-of-fold predictions together (squared errors summed over folds),
        which does not let a small or nearly constant fold dominate, and is what
        ``cross_val_predict`` followed by the score gives. ``"folds"``: the mean of the
        per-fold scores, as himalaya and ``GridSearchCV`` do; with it the selected alphas are
        himalaya's. Correlation scores are averaged over folds either way; ``cv="loo"`` has
        one sample per fold and pools.
    solver : {"auto", "svd", "dual", "primal"}
        How the design is diagonalised: thin SVD, eigendecomposition of the kernel
        ``X X^T`` (dual form, used by ``"auto"`` when features outnumber samples) or of
        ``X^T X``.
    voxel_batch : int
        Voxels processed per jitted call; bounds memory (about
        ``4 * n_samples * voxel_batch`` bytes per buffer in float32).
    drop_constant : bool
        If False (default), constant voxels raise a ``ValueError``. If True they are not fitted:
        ``coef_ = 0``, ``intercept_`` = their value, ``alphas_`` = the largest alpha (the limit of
        an infinitely regularised fit) and ``cv_scores_ = 0``; their indices are in
        ``constant_voxels_``. Constant *features* are harmless (they get zero weight).

    Attributes
    ----------
    alphas_ : (voxel,) selected alpha per voxel.
    coef_ : (feature, voxel) coefficients refit on all data with ``alphas_``.
    intercept_ : (voxel,)
    cv_scores_ : (alpha, voxel) mean cross-validated score of every alpha.
    best_cv_scores_ : (voxel,) the cross-validated score of the selected alpha.
    n_features_in_ : int
    solver_ : str, the decomposition used.

    Numpy in gives numpy out; a DataArray ``Y`` gives DataArray attributes that keep its voxel
    coordinates (``roi``, ``i, j, k`` ...). Computation is float32 unless JAX runs in 64-bit mode
    and the inputs are float64.

    References
    ----------
    Hoerl & Kennard (1970), eq. 2.3 (the ridge estimator); Golub, Heath & Wahba (1979), eq. 1.5
    and 2.2 (closed-form leave-one-out through the hat matrix); Dupre la Tour et al. (2022)
    (per-voxel alphas by K-fold CV with one decomposition per fold, as in himalaya).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5)); Y = X @ rng.standard_normal((5, 3))
    >>> enc = RidgeEncoder(alphas=np.logspace(-3, 3, 7), cv=5).fit(X, Y)
    >>> enc.coef_.shape
    (5, 3)
    """

    # unannotated on purpose: __init__ stores anything; fit validates (scikit-learn's contract)
    def __init__(self, alphas=None, cv=5, fit_intercept=True, scoring="r2", solver="auto",
                 voxel_batch=1024, drop_constant=False, cv_average="pooled"):
        # scikit-learn's contract: store the arguments verbatim, validate in fit
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver = solver
        self.voxel_batch = voxel_batch
        self.drop_constant = drop_constant
        self.cv_average = cv_average

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    def _check_params(self) -> np.ndarray:
        alphas = np.atleast_1d(np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas,
                                          dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(
            alphas <= 0
        ):
            raise ValueError(f"alphas must be a 1-D array of positive numbers, got {self.alphas!r}")
        if self.scoring not in SCORES or self.scoring not in _solvers.FOLD_SCORES:
            raise ValueError(f"scoring must be one of {sorted(_solvers.FOLD_SCORES)}, got "
                             f"{self.scoring!r}")
        if self.cv_average not in CV_AVERAGES:
            raise ValueError(f"cv_average must be one of {list(CV_AVERAGES)}, got "
                             f"{self.cv_average!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {self.solver!r}")
        if int(self.voxel_batch) < 1:
            raise ValueError(f"voxel_batch must be a positive int, got {self.voxel_batch!r}")
        return alphas

    def _runs(self, runs, Xt, Yt, n):
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

    def fit(self, X: ArrayLike, Y: ArrayLike, runs: ArrayLike | None = None,
            progress: Callable | None = None) -> RidgeEncoder:
        """Pick one alpha per voxel by cross-validation, then refit on all the data.

        ``progress`` (optional) wraps the iterable of voxel batches of the cross-validation,
        e.g. ``tqdm.tqdm``: the library draws no bar itself (each batch runs every fold).

        Raises
        ------
        ValueError
            NaN/inf values, mismatched lengths, constant voxels (unless ``drop_constant``),
            all features constant, fewer samples than folds, ``runs`` of the wrong length.
        """
        alphas = self._check_params()
        X, Y, Xt, Yt, y1d = check_xy(X, Y)
        n, p = X.shape
        runs = self._runs(runs, Xt, Yt, n)
        splits = _resolve_splits(self.cv, n, runs)
        if splits == "loo":
            _warn_if_time_series(Xt, Yt, runs)
        if np.all(np.ptp(X, axis=0) == 0):
            raise ValueError(f"all {p} features of X are constant; there is nothing to fit")
        const = constant_columns(Y)
        if const.size and not self.drop_constant:
            raise ValueError(
                f"Y has {const.size} voxel(s) with zero variance (indices {format_indices(const)}); "
                "drop them or pass drop_constant=True"
            )
        dtype = _dtype(X, Y)
        keep = np.setdiff1d(np.arange(Y.shape[1]), const)
        Yfit = Y if keep.size == Y.shape[1] else Y[:, keep]
        live = np.flatnonzero(np.ptp(X, axis=0) > 0) if self.fit_intercept else np.arange(p)
        Xfit = X if live.size == p else X[:, live]  # constant features get exactly zero weight
        method = SOLVERS[self.solver](n if splits == "loo" else min(len(a) for a, _ in splits), p)
        batch = max(1, min(int(self.voxel_batch), max(Yfit.shape[1], 1)))
        n_folds = 1 if splits == "loo" else len(splits)
        check_memory(_fit_bytes(n, p, Y.shape[1], alphas.size, batch, n_folds,
                                np.dtype(dtype).itemsize),
                     what=f"RidgeEncoder.fit on {n} samples x {p} features x {Y.shape[1]} "
                          f"voxels with {alphas.size} alphas in voxel batches of {batch}",
                     knob=f"lower voxel_batch (now {batch}; the held-out predictions of every "
                          "alpha are held per batch), use fewer alphas, or fit the voxels in "
                          "chunks")
        kw = dict(method=method, fit_intercept=self.fit_intercept, batch=batch, dtype=dtype)
        cv = _cv_scores(Xfit, Yfit, alphas, splits, score=self.scoring,
                        average=self.cv_average, progress=progress, **kw)
        best = _select(cv, alphas)
        coef_fit = np.zeros((p, keep.size), dtype=dtype)
        coef_fit[live] = _refit(Xfit, Yfit, alphas[best].astype(dtype), **kw)
        self._store(X, Y, alphas, keep, cv, best, coef_fit, dtype, method)
        self._label(Xt, Yt, y1d, alphas)
        return self

    def _store(self, X, Y, alphas, keep, cv, best, coef_fit, dtype, method):
        v = Y.shape[1]
        self._coef = np.zeros((X.shape[1], v), dtype=dtype)
        self._coef[:, keep] = coef_fit
        if self.fit_intercept:
            self._intercept = (Y.mean(0) - X.mean(0) @ self._coef).astype(dtype)
        else:
            self._intercept = np.zeros(v, dtype=dtype)
        self._alphas = np.full(v, alphas.max())
        self._alphas[keep] = alphas[best]
        self._cv = np.zeros((alphas.size, v))
        self._cv[:, keep] = cv
        self._best_cv = np.zeros(v)
        self._best_cv[keep] = cv[best, np.arange(keep.size)]
        self._alpha_grid = alphas
        self.constant_voxels_ = np.setdiff1d(np.arange(v), keep)
        self.n_features_in_ = X.shape[1]
        self.solver_ = method

    def _label(self, Xt, Yt, y1d, alphas):
        """Expose the fitted arrays as numpy or (if Y was a DataArray) labelled DataArrays."""
        self._y1d = y1d
        self._vcoords = voxel_coords(Yt)
        self._feature_coords = (
            {"feature": Xt.coords[Xt.dims[1]].values}
            if Xt is not None and Xt.dims[1] in Xt.coords else {}
        )
        if y1d:
            self.coef_, self.intercept_ = self._coef[:, 0], float(self._intercept[0])
            self.alphas_, self.cv_scores_ = self._alphas[0], self._cv[:, 0]
            self.best_cv_scores_ = float(self._best_cv[0])
            return
        if Yt is None:
            self.coef_, self.intercept_, self.alphas_ = self._coef, self._intercept, self._alphas
            self.cv_scores_, self.best_cv_scores_ = self._cv, self._best_cv
            return
        ds = self.to_dataset()
        self.coef_, self.intercept_, self.alphas_ = ds["coef"], ds["intercept"], ds["alphas"]
        self.cv_scores_, self.best_cv_scores_ = ds["cv_scores"], ds["best_cv_score"]

    def _check_fitted(self):
        check_is_fitted(self, "n_features_in_")

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as a labelled Dataset (coef, intercept, alphas, cv scores)."""
        self._check_fitted()
        coords = {**self._vcoords, **self._feature_coords,
                  "alpha": self._alpha_grid}
        ds = xr.Dataset(
            {
                "coef": (("feature", "voxel"), self._coef),
                "intercept": (("voxel",), self._intercept),
                "alphas": (("voxel",), self._alphas),
                "cv_scores": (("alpha", "voxel"), self._cv),
                "best_cv_score": (("voxel",), self._best_cv),
            },
            coords=coords,
        )
        ds.attrs = provenance("RidgeEncoder", params={k: v for k, v in self.get_params().items()
                                                      if k != "cv" or not hasattr(v, "split")},
                              solver=self.solver_, cv_description=str(self.cv))
        return ds

    def predict(self, X: ArrayLike) -> Any:
        """Predicted responses ``X @ coef_ + intercept_`` (sample, voxel)."""
        self._check_fitted()
        Xv, Xt = check_x(X)
        if Xv.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xv.shape[1]} features, but RidgeEncoder is expecting "
                             f"{self.n_features_in_} features as input")
        pred = Xv.astype(self._coef.dtype, copy=False) @ self._coef + self._intercept
        if self._y1d:
            pred = pred[:, 0]
        if Xt is None or self._y1d:
            return pred
        dim = sample_dim(Xt)
        coords = {k: c for k, c in Xt.coords.items() if c.dims == (dim,)}
        return xr.DataArray(pred, dims=(dim, "voxel"), coords={**coords, **self._vcoords},
                            name="prediction")
