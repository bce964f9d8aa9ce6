"""What the gradient-trained (nonlinear) voxel encoders share.

:class:`GradientEncoder` is the base of :class:`~brainmodels.encoders.AttentionRoutingEncoder`,
:class:`~brainmodels.encoders.FactorizedReadout` and
:class:`~brainmodels.encoders.InContextEncoder`. It owns, once for all three:

* the input checks: a feature map ``(stimulus, y, x, channel)`` or ``(stimulus, token,
  channel)`` with token positions, responses ``(stimulus, voxel)``, the same stimuli in both;
* standardisation: channels by their mean and sd over the training stimuli and tokens, voxels
  z-scored (the loss weighs every voxel alike; predictions are returned in ``Y``'s units);
* a validation split of the stimuli, drawn from ``seed``;
* training through :func:`brainmodels.training.fit`: AdamW, warm-up and cosine decay,
  global-norm clipping, minibatches, early stopping on the validation correlation with the
  best state restored, orbax checkpoints that resume to the same parameters, and a progress bar
  showing the validation score;
* jitted batched prediction, and numpy or labelled (xarray) outputs as
  :class:`~brainmodels.encoders.RidgeEncoder` gives them.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from brainmodels.data import provenance
from brainmodels.encoders._estimator import ScoreMixin
from brainmodels.encoders._validation import (
    check_x,
    constant_columns,
    format_indices,
    sample_dim,
    voxel_coords,
)
from brainmodels.encoders.scoring import SCORES

__all__ = ["FeatureMap", "GradientEncoder", "MapEncoder", "apply_in_batches", "apply_jit", "check_feature_map",
           "check_responses", "fourier_positions", "mean_correlation", "store_params"]


# ------------------------------------------------------------------------------ inputs


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """A checked feature map: ``values (stimulus, token, channel)`` and token positions."""

    values: np.ndarray  # (stimulus, token, channel), float32
    positions: np.ndarray  # (token, 2): x, y
    grid: tuple[int, int] | None  # (height, width) of a 4-D map, row-major tokens
    template: xr.DataArray | None
    units: str

    @property
    def n_stimuli(self) -> int:
        return self.values.shape[0]


_LAYOUTS = ("(stimulus, y, x, channel)", "(stimulus, token, channel)")


def _grid_positions(height: int, width: int) -> np.ndarray:
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    ys = -((np.arange(height) + 0.5) / height * 2 - 1)  # y up
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


def check_feature_map(X: Any, positions: Any = None, *, name: str = "X") -> FeatureMap:
    """Validate a spatial feature map and find the position of every token.

    ``X`` is ``(stimulus, y, x, channel)`` or ``(stimulus, token, channel)``, numpy or an
    xarray DataArray. Positions come from ``positions`` (token, 2), else from a DataArray's
    ``x``/``y`` coords (degrees for :func:`brainmodels.datasets.feature_map`), else, for a 4-D
    numpy map, from the grid itself (units of half the map's side, -1..1). Tokens without
    positions are refused: the spatial encoders read them.
    """
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        X = np.asarray(X)
        ndim = X.ndim
    if ndim not in (3, 4):
        raise ValueError(f"{name} must be a feature map {_LAYOUTS[0]} or {_LAYOUTS[1]}, got "
                         f"shape {np.shape(X)}; for a (stimulus, feature) matrix use "
                         f"RidgeEncoder or InContextEncoder")
    template = X if isinstance(X, xr.DataArray) else None
    units = "grid"
    found = None
    if template is not None:
        if ndim == 4:
            if not {"y", "x"} <= set(X.dims):
                raise ValueError(f"a 4-D {name} DataArray needs dims named 'y' and 'x' (and a "
                                 f"stimulus and a channel dim), got {X.dims}")
            rest = [d for d in X.dims if d not in ("y", "x")]
            X = X.transpose(rest[0], "y", "x", rest[1])
            if "x" in X.coords and "y" in X.coords:
                gx, gy = np.meshgrid(np.asarray(X["x"].values, float),
                                     np.asarray(X["y"].values, float))
                found = np.stack([gx.ravel(), gy.ravel()], 1)
        elif "x" in X.coords and "y" in X.coords and X["x"].dims == (X.dims[1],) \
                and X["y"].dims == (X.dims[1],):
            found = np.stack([np.asarray(X["x"].values, float),
                              np.asarray(X["y"].values, float)], 1)
        if found is not None:
            units = str(X.attrs.get("position_units", X["x"].attrs.get("units", "degrees")))
        values = np.asarray(X.values)
    else:
        values = np.asarray(X)
    if values.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
    grid = tuple(values.shape[1:3]) if ndim == 4 else None
    values = values.reshape(values.shape[0], -1, values.shape[-1]).astype(np.float32)
    if values.shape[0] < 1 or values.shape[1] < 1 or values.shape[2] < 1:
        raise ValueError(f"{name} has an empty axis: shape {np.shape(X)}")
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.any((1, 2)))
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s) in "
                         f"stimuli {format_indices(rows)}; remove or impute them")
    if positions is not None:
        found = np.asarray(positions, dtype=float)
        units = "as given"
    elif found is None and grid is not None:
        found = _grid_positions(*grid)
    if found is None:
        raise ValueError(f"{name} is (stimulus, token, channel) without token positions: pass "
                         f"positions=(token, 2) or a DataArray with 'x' and 'y' coords on the "
                         f"token dim")
    if found.shape != (values.shape[1], 2) or not np.isfinite(found).all():
        raise ValueError(f"positions must be finite with shape (token, 2) = "
                         f"({values.shape[1]}, 2), got shape {found.shape}")
    return FeatureMap(values, found.astype(np.float32), grid, template, units)


def fourier_positions(positions: np.ndarray, n_frequencies: int) -> np.ndarray:
    """Sine and cosine features of token positions at octave frequencies, ``(token, 2 + 4 F)``.

    Positions are scaled by their largest absolute value to [-1, 1] first, so the encoding
    does not depend on the units (degrees or grid units).
    """
    p = np.asarray(positions, dtype=np.float64)
    p = p / max(float(np.abs(p).max()), 1e-12)
    freqs = np.pi * 2.0 ** np.arange(n_frequencies)
    arg = p[:, :, None] * freqs  # (token, 2, F)
    return np.concatenate([p, np.sin(arg).reshape(len(p), -1),
                           np.cos(arg).reshape(len(p), -1)], 1).astype(np.float32)


def check_responses(Y: Any, n_stimuli: int, X_template: xr.DataArray | None, *,
                    name: str = "Y") -> tuple[np.ndarray, xr.DataArray | None]:
    """``(stimulus, voxel)`` float32 responses for ``n_stimuli`` stimuli, finite, no constant
    voxel; a DataArray with stimulus labels must list the same stimuli as ``X``'s."""
    if Y is None:
        raise ValueError(f"{name} (stimulus, voxel) responses are required")
    if isinstance(Y, xr.DataArray) and Y.ndim == 2 and Y.dims[0] == "voxel":
        Y = Y.transpose(Y.dims[1], "voxel")
    values, template = check_x(Y, name=name)
    if values.shape[0] != n_stimuli:
        raise ValueError(f"X and {name} must hold the same stimuli: X has {n_stimuli}, {name} "
                         f"has {values.shape[0]} (average the repeats of each stimulus first)")
    if template is not None and X_template is not None:
        dx, dy = X_template.dims[0], template.dims[0]
        if dx in X_template.coords and dy in template.coords:
            a, b = np.asarray(X_template[dx].values), np.asarray(template[dy].values)
            if a.shape == b.shape and not np.array_equal(a, b):
                where = np.flatnonzero(a != b)
                raise ValueError(f"X and {name} list different stimuli (first mismatch at "
                                 f"position {int(where[0])}: {a[where[0]]!r} vs "
                                 f"{b[where[0]]!r}); align them, e.g. Y.sel({dy}=X.{dx})")
    const = constant_columns(values)
    if const.size:
        raise ValueError(f"{name} has {const.size} voxel(s) with zero variance (indices "
                         f"{format_indices(const)}); drop them")
    return values.astype(np.float32), template


# ------------------------------------------------------------------------------ compiled calls


@functools.partial(jax.jit, static_argnums=0)
def apply_jit(graphdef, state, *inputs):
    """``nnx.merge(graphdef, state)(*inputs)``, compiled once per graph and input shapes."""
    return nnx.merge(graphdef, state)(*inputs)


def apply_in_batches(model: nnx.Module, batch: int, *arrays, shared: tuple = ()) -> np.ndarray:
    """``model(*arrays[i:i+batch], *shared)`` over the leading axis, jitted, as one array.

    The last batch is padded to full size, so one program serves every batch.
    """
    graphdef, state = nnx.split(model)
    n = arrays[0].shape[0]
    out = []
    for start in range(0, n, batch):
        part = [a[start:start + batch] for a in arrays]
        short = batch - part[0].shape[0]
        if short and n > batch:
            part = [np.concatenate([p, np.repeat(p[-1:], short, 0)]) for p in part]
        res = np.asarray(apply_jit(graphdef, state, *part, *shared))
        out.append(res[:res.shape[0] - short] if short and n > batch else res)
    return np.concatenate(out)


def mean_correlation(y: jax.Array, pred: jax.Array) -> jax.Array:
    """Mean over voxels (columns) of the Pearson correlation, in the traced program."""
    yc = y - y.mean(0, keepdims=True)
    pc = pred - pred.mean(0, keepdims=True)
    den = jnp.sqrt((yc**2).sum(0) * (pc**2).sum(0))
    return jnp.mean(jnp.where(den > 0, (yc * pc).sum(0) / jnp.where(den > 0, den, 1.0), 0.0))


# ------------------------------------------------------------------------------ the estimator


def store_params(estimator: Any, params: dict) -> None:
    """Store ``__init__``'s arguments verbatim (scikit-learn's contract; ``fit`` checks them).

    Called as ``store_params(self, locals())`` first thing in ``__init__``."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class GradientEncoder(ScoreMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Base of the nonlinear encoders (not used directly): training and prediction plumbing.

    A subclass's ``fit`` checks and standardises its inputs, builds its ``nnx.Module`` and
    calls :meth:`_run` with its loss and validation score; the parameters below are shared.

    Parameters
    ----------
    max_steps : int
        Optimisation steps at most (early stopping may end sooner).
    batch_size : int
        Stimuli per step.
    lr : float
        Peak learning rate of AdamW (linear warm-up over ``max_steps // 20`` steps, then
        cosine decay).
    weight_decay : float
        AdamW's decoupled weight decay.
    validation_fraction : float
        Share of the training stimuli held out to pick the stopping step.
    patience : int
        Evaluations (every ``eval_every`` steps) without a better validation correlation
        before training stops; the best state is kept.
    eval_every : int
    scoring : {"r2", "correlation", "neg_mse"}
        What :meth:`score` and :meth:`score_voxels` return.
    seed : int
        Initial parameters, the validation split and the minibatches.
    checkpoint_dir : path or None
        orbax checkpoints; a second ``fit`` with the same directory and settings resumes.
    progress : bool
        A progress bar on stderr with the current validation correlation.
    """

    _name = "GradientEncoder"

    def _train_config(self, n_train: int):
        from brainmodels.training import TrainConfig

        for field in ("max_steps", "batch_size", "eval_every", "patience"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{field} must be a positive int, got {v!r}")
        if not 0.0 < float(self.validation_fraction) < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5), got "
                             f"{self.validation_fraction!r}")
        if self.scoring not in SCORES:
            raise ValueError(f"scoring must be one of {sorted(SCORES)}, got {self.scoring!r}")
        batch = min(int(self.batch_size), n_train)
        return TrainConfig(steps=int(self.max_steps), batch_size=batch, lr=float(self.lr),
                           optimizer="adamw", weight_decay=float(self.weight_decay),
                           schedule="cosine", warmup_steps=max(1, int(self.max_steps) // 20),
                           clip_norm=1.0, eval_every=min(int(self.eval_every),
                                                         int(self.max_steps)),
                           patience=int(self.patience), monitor="test_r", monitor_mode="max",
                           seed=int(self.seed), restore_best=True)

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        n_val = max(2, round(float(self.validation_fraction) * n))
        if n - n_val < 2:
            raise ValueError(f"need at least {n_val + 2} stimuli to train with a validation "
                             f"split of {self.validation_fraction}, got {n}")
        perm = np.random.default_rng([int(self.seed), 1]).permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _run(self, model: nnx.Module, loss_fn: Callable, data: Any, eval_data: Any,
             eval_fn: Callable, config) -> Any:
        from brainmodels.training import fit

        bar = {}

        def wrap(steps):
            from tqdm.auto import tqdm

            bar["bar"] = tqdm(steps, desc=f"{self._name} (validation r)", file=sys.stderr)
            return bar["bar"]

        def show(row, _model):
            if "bar" in bar:
                bar["bar"].set_postfix(val_r=f"{row['test_r']:.3f}")

        try:
            res = fit(model, loss_fn, data, config, eval_data=eval_data, eval_fn=eval_fn,
                      checkpoint_dir=self.checkpoint_dir,
                      progress=wrap if self.progress else None,
                      callback=show if self.progress else None)
        finally:
            if "bar" in bar:
                bar["bar"].close()
        self.history_ = res.history
        self.n_steps_ = int(res.history.step.values[-1]) if res.history.sizes["step"] else 0
        self.best_step_ = res.best_step
        self.n_traces_ = res.traces
        self.model_ = res.model
        return res

    def _standardise_y(self, Y: np.ndarray, train: np.ndarray) -> np.ndarray:
        self._y_mean = Y[train].mean(0)
        sd = Y[train].std(0)
        if np.any(sd == 0):
            bad = np.flatnonzero(sd == 0)
            raise ValueError(f"Y has voxel(s) constant over the training stimuli (indices "
                             f"{format_indices(bad)}); drop them")
        self._y_sd = sd
        return ((Y - self._y_mean) / sd).astype(np.float32)

    def _check_fitted(self):
        check_is_fitted(self, "model_")

    def _label_prediction(self, pred: np.ndarray, template: xr.DataArray | None, *,
                          standardised: bool = True) -> Any:
        """Predictions in ``Y``'s units, labelled like ``template``'s stimuli and ``Y``'s
        voxels (numpy when ``Y`` or ``X`` was not labelled)."""
        if standardised:
            pred = pred * self._y_sd + self._y_mean
        if template is None or not self._labelled:
            return pred
        dim = sample_dim(template)
        coords = {k: c for k, c in template.coords.items() if c.dims == (dim,)}
        return xr.DataArray(pred, dims=(dim, "voxel"), coords={**coords, **self._vcoords},
                            name="prediction")

    def _voxel_array(self, values: np.ndarray, dims: tuple, coords: dict | None = None,
                     name: str | None = None) -> Any:
        """numpy, or a DataArray with the voxel coords of the fitted ``Y``."""
        if not self._labelled:
            return values
        return xr.DataArray(values, dims=dims, coords={**self._vcoords, **(coords or {})},
                            name=name)

    def _remember_voxels(self, Yt: xr.DataArray | None) -> None:
        self._labelled = Yt is not None
        self._vcoords = voxel_coords(Yt)

    def _provenance(self, **extra) -> dict:
        params = {k: v for k, v in self.get_params().items() if k != "checkpoint_dir"}
        return provenance(self._name, params=params, seed=int(self.seed),
                          best_step=-1 if self.best_step_ is None else int(self.best_step_),
                          **extra)


class MapEncoder(GradientEncoder):
    """Base of the encoders that read a spatial feature map (attention routing, factorized
    readout): one preparation of the map and responses, one ``predict``."""

    def _prepare(self, X: Any, Y: Any, positions: Any):
        """Checked, standardised ``(x, y)``, the train/validation split and the config."""
        fm = check_feature_map(X, positions)
        Yv, Yt = check_responses(Y, fm.n_stimuli, fm.template)
        train, val = self._split(fm.n_stimuli)
        config = self._train_config(train.size)
        mean = fm.values[train].mean((0, 1))
        sd = fm.values[train].std((0, 1))
        self._x_mean, self._x_sd = mean, np.where(sd > 0, sd, 1.0)
        x = ((fm.values - mean) / self._x_sd).astype(np.float32)
        y = self._standardise_y(Yv, train)
        self.positions_, self._grid, self._units = fm.positions, fm.grid, fm.units
        self.n_features_in_ = x.shape[2]
        self._remember_voxels(Yt)
        return fm, x, y, Yt, train, val, config

    def _inputs(self, X: Any, positions: Any = None) -> tuple[FeatureMap, np.ndarray]:
        self._check_fitted()
        fm = check_feature_map(X, positions)
        if fm.values.shape[1:] != (self.positions_.shape[0], self.n_features_in_):
            raise ValueError(f"X has {fm.values.shape[1]} tokens x {fm.values.shape[2]} "
                             f"channels, but {self._name} was fitted on "
                             f"{self.positions_.shape[0]} x {self.n_features_in_}")
        if not np.allclose(fm.positions, self.positions_, atol=1e-5):
            raise ValueError(f"X's token positions differ from those {self._name} was fitted "
                             f"on")
        return fm, ((fm.values - self._x_mean) / self._x_sd).astype(np.float32)

    def predict(self, X: Any, positions: Any = None) -> Any:
        """Predicted responses ``(stimulus, voxel)`` in ``Y``'s units (a DataArray with its
        voxel coords, and ``X``'s stimulus coords, when both were labelled)."""
        fm, x = self._inputs(X, positions)
        return self._label_prediction(apply_in_batches(self.model_, 256, x), fm.template)
