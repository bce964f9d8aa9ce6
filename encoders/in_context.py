"""In-context voxel encoder: a transformer that writes a voxel's weights from a few examples.

Given a context set of (stimulus features, response) pairs of one voxel, a set transformer (no
positional encoding: the pairs are unordered) with register tokens outputs that voxel's linear
weights on the features. It is meta-trained across many voxels (of several subjects), with
context sizes drawn at random, to predict each voxel's responses to other stimuli. A new
subject's voxels are then encoded from a few dozen stimuli with no gradient step: the model has
learned the prior over voxel weights that ridge's isotropic penalty does not know.

Each context token is ``A x + y (B x + u)``: the features, the response, and their product,
whose mean over the context is ``X^T y / k``, the statistic a linear regression needs; the
attention layers refine it (the rest of ``X^T X`` enters through the features' tokens).

References
----------
Yu, M. et al. (2025). Meta-learning an in-context transformer model of human higher visual
cortex (BraInCoRL). (A transformer reads (image embedding, voxel response) pairs and outputs the
voxel's response function; meta-trained over voxels and subjects with variable context sizes.)
Darcet, T. et al. (2024). Vision transformers need registers (register tokens).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx

from brainmodels._random import host_generators
from brainmodels.encoders._layers import Block
from brainmodels.encoders._neural import (
    GradientEncoder,
    apply_jit,
    check_responses,
    mean_correlation,
    store_params,
)
from brainmodels.encoders._validation import check_x

__all__ = ["InContextEncoder"]


class _WeightWriter(nnx.Module):
    def __init__(self, n_features: int, *, d_model: int, heads: int, layers: int,
                 registers: int, rngs: nnx.Rngs):
        self.embed_x = nnx.Linear(n_features, d_model, rngs=rngs)
        self.embed_xy = nnx.Linear(n_features, d_model, use_bias=False, rngs=rngs)
        self.embed_y = nnx.Param(0.02 * jax.random.normal(rngs.params(), (d_model,)))
        self.registers = nnx.Param(0.02 * jax.random.normal(rngs.params(),
                                                            (registers, d_model)))
        self.blocks = nnx.List([Block(d_model, heads, rngs=rngs) for _ in range(layers)])
        self.norm = nnx.LayerNorm(d_model, rngs=rngs)
        # the head writes, per voxel, additive weights, a bias and a per-feature gain on
        # X^T y / k (the direct, heavily shrunk least-squares estimate, which a rank-d_model
        # head could not carry feature by feature): which features to trust is voxel-specific
        self.head = nnx.Linear(d_model, 2 * n_features + 1, rngs=rngs,
                               kernel_init=nnx.initializers.normal(1e-3))

    def __call__(self, cx: jax.Array, cy: jax.Array, mask: jax.Array) -> jax.Array:
        """Weights and bias ``(B, feature + 1)`` from context features ``cx (K, feature)``,
        responses ``cy (B, K)`` and ``mask (K,)`` (True = a context pair)."""
        b = cy.shape[0]
        tokens = (self.embed_x(cx)[None] + cy[..., None]
                  * (self.embed_xy(cx) + self.embed_y[...][None])[None])
        regs = jnp.broadcast_to(self.registers[...][None], (b, *self.registers.shape))
        seq = jnp.concatenate([regs, tokens], 1)
        keep = jnp.concatenate([jnp.ones(self.registers.shape[0], bool), mask])
        keep = jnp.broadcast_to(keep[None], (b, keep.size))
        for block in self.blocks:
            seq, _ = block(seq, mask=keep)
        out = self.head(self.norm(seq[:, :self.registers.shape[0]]).mean(1))
        p = cx.shape[1]
        direct = cy @ cx / jnp.maximum(mask.sum(), 1)  # (B, feature): masked pairs are zeros
        weights = out[:, :p] + out[:, p:2 * p] * direct
        return jnp.concatenate([weights, out[:, 2 * p:]], 1)


def _normalise(cy: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responses z-scored by their context's mean and sd, per voxel (row)."""
    k = mask.sum()
    mean = (cy * mask).sum(1) / k
    sd = np.sqrt(((cy - mean[:, None]) ** 2 * mask).sum(1) / k)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return ((cy - mean[:, None]) / sd[:, None] * mask).astype(np.float32), mean, sd


class InContextEncoder(GradientEncoder):
    """Meta-trained transformer that writes a voxel's linear weights from context examples.

    ``fit(X, Y)`` meta-trains on the voxels of ``Y`` (concatenate the voxels of several
    subjects that saw the same stimuli), then conditions on them; :meth:`condition` encodes new
    voxels (a new subject) from a few stimuli with no gradient step; :meth:`predict` predicts
    the voxels last conditioned on.

    Parameters
    ----------
    d_model, heads, layers : int
        The set transformer (pre-norm blocks, self-attention over the context and registers).
    registers : int
        Register tokens; their mean output is mapped to the weights and bias.
    context_sizes : (int, int)
        Meta-training draws the context size of each step uniformly from this range.
    n_query : int
        Stimuli per step whose responses are predicted from the context (the loss).
    batch_size : int
        Voxels per step (they share the step's context stimuli).
    validation_fraction : float
        Share of the voxels held out to pick the stopping step (their context: the middle
        context size).
    max_steps, lr, weight_decay, patience, eval_every, scoring, seed, checkpoint_dir, progress
        Training, as described in :class:`~brainmodels.encoders._neural.GradientEncoder`.

    Attributes
    ----------
    coef_ : (feature, voxel) the weights written for the voxels last conditioned on, in
        ``X``'s units; ``intercept_`` (voxel,).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 6)).astype("float32")
    >>> W = rng.standard_normal((6, 80)) * (rng.random((6, 80)) < 0.3)  # sparse voxels
    >>> Y = X @ W + 0.3 * rng.standard_normal((200, 80))
    >>> enc = InContextEncoder(d_model=32, layers=1, context_sizes=(10, 40), n_query=32,
    ...                        max_steps=150, eval_every=50).fit(X, Y)
    >>> enc.condition(X[:20], Y[:20, :5]).coef_.shape  # five voxels from 20 stimuli
    (6, 5)
    """

    _name = "InContextEncoder"

    def __init__(self, d_model=64, heads=4, layers=2, registers=4, context_sizes=(20, 100),
                 n_query=64, max_steps=3000, batch_size=16, lr=5e-4, weight_decay=0.01,
                 validation_fraction=0.1, patience=8, eval_every=100, scoring="correlation",
                 seed=0, checkpoint_dir=None, progress=False):
        store_params(self, locals())  # scikit-learn: stored verbatim, checked in fit

    def _sizes(self, n_stimuli: int) -> tuple[int, int, int]:
        lo, hi = (int(v) for v in self.context_sizes)
        if not 2 <= lo <= hi:
            raise ValueError(f"context_sizes must be (low, high) with 2 <= low <= high, got "
                             f"{self.context_sizes!r}")
        nq = int(self.n_query)
        if hi + nq > n_stimuli:
            raise ValueError(f"meta-training needs context_sizes[1] + n_query = {hi + nq} "
                             f"distinct stimuli, but X has {n_stimuli}")
        return lo, hi, nq

    def fit(self, X: Any, Y: Any) -> InContextEncoder:
        """Meta-train on the voxels of ``Y (stimulus, voxel)`` with features ``X (stimulus,
        feature)``, then condition on them (at most ``context_sizes[1]`` stimuli as context).

        Raises
        ------
        ValueError
            NaN/inf, mismatched stimuli, constant voxels, too few stimuli for the context and
            query sizes, fewer than 4 voxels.
        """
        Xv, Xt = check_x(X)
        Y, Yt = check_responses(Y, Xv.shape[0], Xt)
        lo, hi, nq = self._sizes(Xv.shape[0])
        n_vox = Y.shape[1]
        if n_vox < 4:
            raise ValueError(f"meta-training needs voxels to learn from: Y has {n_vox}")
        mean, sd = Xv.mean(0), Xv.std(0)
        self._x_mean, self._x_sd = mean, np.where(sd > 0, sd, 1.0)
        x = ((Xv - mean) / self._x_sd).astype(np.float32)
        y = Y.astype(np.float32)
        n_val = max(2, round(float(self.validation_fraction) * n_vox))
        perm = np.random.default_rng([int(self.seed), 2]).permutation(n_vox)
        val_vox, train_vox = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        config = self._train_config(len(train_vox))
        b = config.batch_size
        n = x.shape[0]

        def episode(rng, voxels, k):
            stim = rng.permutation(n)
            ctx, query = stim[:k], stim[hi:hi + nq]  # the query never meets the context
            cx = np.zeros((hi, x.shape[1]), np.float32)
            cx[:k] = x[ctx]
            mask = np.arange(hi) < k
            cy = np.zeros((voxels.size, hi), np.float32)
            cy[:, :k] = y[ctx][:, voxels].T
            cy, m, s = _normalise(cy, mask)
            qy = ((y[query][:, voxels] - m) / s).astype(np.float32)
            return cx, cy, mask, x[query], qy

        def data(key, step):
            rng = host_generators(key, 1)[0]
            k = int(rng.integers(lo, hi + 1))
            return episode(rng, rng.choice(train_vox, size=b, replace=train_vox.size < b), k)

        val = episode(np.random.default_rng([int(self.seed), 3]), val_vox, (lo + hi) // 2)

        def predict(m, batch):
            cx, cy, mask, qx, _ = batch
            wb = m(cx, cy, mask)
            return qx @ wb[:, :-1].T + wb[None, :, -1]

        def loss(m, batch):
            return jnp.mean((predict(m, batch) - batch[4]) ** 2)

        def evaluate(m, batch):
            return {"r": mean_correlation(batch[4], predict(m, batch))}

        model = _WeightWriter(x.shape[1], d_model=int(self.d_model), heads=int(self.heads),
                              layers=int(self.layers), registers=int(self.registers),
                              rngs=nnx.Rngs(int(self.seed)))
        self._run(model, loss, data, val, evaluate, config)
        self.n_features_in_ = x.shape[1]
        self._max_context = hi
        return self.condition(X, Yt if Yt is not None else Y)

    def condition(self, X: Any, Y: Any, max_context: int | None = None) -> InContextEncoder:
        """Write the weights of the voxels of ``Y`` from the context ``(X, Y)``; no training.

        ``max_context`` (default: ``context_sizes[1]``, the largest size met in training)
        caps the context: a larger set is subsampled (seeded), since the transformer's cost
        grows with the square of the context and it has not learned larger ones.
        """
        self._check_fitted()
        Xv, Xt = check_x(X)
        if Xv.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xv.shape[1]} features, but the encoder was meta-trained "
                             f"on {self.n_features_in_}")
        Y, Yt = check_responses(Y, Xv.shape[0], Xt)
        cap = self._max_context if max_context is None else int(max_context)
        if Xv.shape[0] < 2:
            raise ValueError("the context needs at least 2 stimuli")
        rows = np.arange(Xv.shape[0])
        if rows.size > cap:
            rows = np.sort(np.random.default_rng([int(self.seed), 4]).choice(rows, cap,
                                                                            replace=False))
        k = rows.size
        cx = ((Xv[rows] - self._x_mean) / self._x_sd).astype(np.float32)
        mask = np.ones(k, bool)
        cy, mean, sd = _normalise(Y[rows].T.astype(np.float32), mask)
        graphdef, state = nnx.split(self.model_)
        chunk = min(64, cy.shape[0])  # one compiled shape: the last chunk is padded
        padded = np.concatenate([cy, np.zeros((-cy.shape[0] % chunk, k), np.float32)])
        wb = np.concatenate([np.asarray(apply_jit(graphdef, state, cx, padded[i:i + chunk],
                                                  mask))
                             for i in range(0, padded.shape[0], chunk)])[:cy.shape[0]]
        # back to X's and Y's units: y = mean + sd * (((x - mu) / s) @ w + b)
        coef = (wb[:, :-1] / self._x_sd).T * sd
        intercept = mean + sd * (wb[:, -1] - (self._x_mean / self._x_sd) @ wb[:, :-1].T)
        self._coef, self._intercept = coef.astype(np.float32), intercept.astype(np.float32)
        self._remember_voxels(Yt)
        self.coef_ = self._voxel_array(self._coef, ("feature", "voxel"), name="coef")
        self.intercept_ = self._voxel_array(self._intercept, ("voxel",), name="intercept")
        self.n_context_ = k
        return self

    def predict(self, X: Any) -> Any:
        """Responses ``(stimulus, voxel)`` of the voxels last conditioned on."""
        self._check_fitted()
        Xv, Xt = check_x(X)
        if Xv.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xv.shape[1]} features, but the encoder was meta-trained "
                             f"on {self.n_features_in_}")
        pred = Xv.astype(np.float32) @ self._coef + self._intercept
        return self._label_prediction(pred, Xt, standardised=False)

    def to_dataset(self) -> xr.Dataset:
        """The written weights of the voxels last conditioned on."""
        self._check_fitted()
        ds = xr.Dataset({"coef": (("feature", "voxel"), self._coef),
                         "intercept": ("voxel", self._intercept)}, coords=self._vcoords)
        ds.attrs = self._provenance(n_context=int(self.n_context_))
        return ds
