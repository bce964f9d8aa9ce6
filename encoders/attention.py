"""The transformer brain encoder: ROI queries read a feature map by cross-attention.

Each ROI (or group of neighbouring voxels within an ROI) owns a learned query. The queries
read the tokens of a spatial feature map (plus a positional encoding) through pre-norm
multi-head cross-attention and a feed-forward layer, and each voxel is a linear function of
its query's output. Where an ROI looks is learned: a retinotopic ROI's queries settle on fixed
places, a category ROI's follow the object wherever it is (routing by content), which a fixed
linear readout of the same features cannot do.

References
----------
Adeli, H., Sun, M. & Kriegeskorte, N. (2025). Transformer brain encoders explain human high-level
visual responses. (Cross-attention from learned ROI queries to backbone tokens; one decoder
layer; voxels read linearly from their ROI's output token.)
Vaswani, A. et al. (2017). Attention is all you need (multi-head attention); Xiong, R. et al.
(2020). On layer normalization in the transformer architecture (pre-norm).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx

from brainmodels._types import ArrayLike
from brainmodels.encoders._layers import Block
from brainmodels.encoders._neural import (
    MapEncoder,
    apply_in_batches,
    fourier_positions,
    mean_correlation,
    store_params,
)

__all__ = ["AttentionRoutingEncoder", "plot_attention", "voxel_groups"]


def voxel_groups(rois: np.ndarray, coords: np.ndarray | None, voxels_per_query: int | None,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One group per ROI, or ROIs cut into spatially compact groups of about
    ``voxels_per_query`` voxels (k-means on voxel coordinates, seeded).

    Returns ``(group (voxel,), group_roi (group,))``.
    """
    rois = np.asarray(rois).astype(str)
    names = np.unique(rois)
    group = np.empty(rois.size, np.int64)
    group_roi: list[str] = []
    for name in names:
        sel = np.flatnonzero(rois == name)
        k = 1 if voxels_per_query is None else max(1, round(sel.size / voxels_per_query))
        if k == 1:
            labels = np.zeros(sel.size, np.int64)
        else:
            from sklearn.cluster import KMeans

            labels = KMeans(k, n_init=3, random_state=seed).fit_predict(coords[sel])
            labels = np.unique(labels, return_inverse=True)[1]
        group[sel] = len(group_roi) + labels
        group_roi += [name] * (int(labels.max()) + 1)
    return group, np.asarray(group_roi)


class _Router(nnx.Module):
    def __init__(self, n_channels: int, positional: np.ndarray, group: np.ndarray, *,
                 d_model: int, heads: int, layers: int, rngs: nnx.Rngs):
        n_groups = int(group.max()) + 1
        sizes = np.bincount(group, minlength=n_groups)
        width = int(sizes.max())
        # voxel v is slot (group, rank within group) of a (group, width) table of readouts
        rank = np.zeros(group.size, np.int64)
        for g in range(n_groups):
            sel = np.flatnonzero(group == g)
            rank[sel] = np.arange(sel.size)
        self.slot = nnx.Variable(jnp.asarray(group * width + rank, jnp.int32))
        self.positional = nnx.Variable(jnp.asarray(positional))
        self.embed = nnx.Linear(n_channels, d_model, rngs=rngs)
        self.embed_pos = nnx.Linear(positional.shape[1], d_model, rngs=rngs)
        self.queries = nnx.Param(0.02 * jax.random.normal(rngs.params(), (n_groups, d_model)))
        self.blocks = nnx.List([Block(d_model, heads, rngs=rngs) for _ in range(layers)])
        self.norm = nnx.LayerNorm(d_model, rngs=rngs)
        self.readout = nnx.Param(jax.random.normal(rngs.params(), (n_groups, width, d_model))
                                 / np.sqrt(d_model) * 0.1)
        self.bias = nnx.Param(jnp.zeros(group.size))

    def route(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Query outputs ``(B, group, d)`` and the last layer's attention ``(B, heads, group,
        token)``."""
        tokens = self.embed(x) + self.embed_pos(self.positional[...])[None]
        q = jnp.broadcast_to(self.queries[...][None], (x.shape[0], *self.queries.shape))
        w = None
        for block in self.blocks:
            q, w = block(q, tokens)
        return self.norm(q), w

    def __call__(self, x: jax.Array) -> jax.Array:
        q, _ = self.route(x)
        table = jnp.einsum("bgd,gmd->bgm", q, self.readout[...])
        return table.reshape(x.shape[0], -1)[:, self.slot[...]] + self.bias[...][None]

    def attention(self, x: jax.Array) -> jax.Array:
        return self.route(x)[1]


class AttentionRoutingEncoder(MapEncoder):
    """Transformer brain encoder: learned ROI queries read a feature map by cross-attention.

    Parameters
    ----------
    d_model : int
        Width of the tokens and queries.
    heads : int
        Attention heads (``d_model`` divisible by it).
    layers : int
        Decoder layers (cross-attention + feed-forward, pre-norm); 1 as in Adeli et al.
    voxels_per_query : int or None
        None: one query per ROI. An int: each ROI is cut into spatially compact groups of
        about this many voxels (k-means on the voxel coordinates ``x, y, z`` of ``Y``), one
        query each, so that a retinotopic ROI can read several places of the visual field.
    n_frequencies : int
        Octaves of the sine/cosine positional encoding of the token positions.
    max_steps, batch_size, lr, weight_decay, validation_fraction, patience, eval_every,
    scoring, seed, checkpoint_dir, progress
        Training, as described in :class:`~brainmodels.encoders._neural.GradientEncoder`.

    Attributes
    ----------
    groups_ : (voxel,) query index of every voxel; ``group_rois_`` the ROI of every query.
    history_ : xarray.Dataset of the training (``train_loss``, ``test_r`` on the validation
        stimuli) over ``step``.
    best_step_, n_steps_, n_traces_ : the chosen step, the steps run, the step's traces (1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 4, 4, 3)).astype("float32")
    >>> Y = X[:, :2, :2, 0].mean((1, 2))[:, None] + 0.1 * rng.standard_normal((120, 2))
    >>> enc = AttentionRoutingEncoder(d_model=16, heads=2, max_steps=60, eval_every=20)
    >>> enc = enc.fit(X, Y, rois=["V1", "V1"])
    >>> enc.attention_maps(X[:3]).dims
    ('stimulus', 'query', 'y', 'x')
    """

    _name = "AttentionRoutingEncoder"

    def __init__(self, d_model=64, heads=4, layers=1, voxels_per_query=None, n_frequencies=4,
                 max_steps=2000, batch_size=64, lr=1e-3, weight_decay=0.05,
                 validation_fraction=0.1, patience=8, eval_every=50, scoring="correlation",
                 seed=0, checkpoint_dir=None, progress=False):
        store_params(self, locals())  # scikit-learn: stored verbatim, checked in fit

    def fit(self, X: Any, Y: Any, rois: ArrayLike | None = None,
            positions: ArrayLike | None = None) -> AttentionRoutingEncoder:
        """Train on a feature map ``X`` and responses ``Y (stimulus, voxel)``.

        ``rois`` (voxel,) names each voxel's ROI (default: ``Y``'s ``roi`` coord);
        ``positions`` (token, 2) places the tokens of a ``(stimulus, token, channel)`` map.

        Raises
        ------
        ValueError
            A feature map of the wrong rank, NaN/inf, different stimuli in X and Y, constant
            voxels, missing ROI labels.
        """
        fm, x, y, Yt, train, val, config = self._prepare(X, Y, positions)
        rois = self._rois(rois, Yt, y.shape[1])
        coords = None
        if self.voxels_per_query is not None:
            if Yt is None or not {"x", "y", "z"} <= set(Yt.coords):
                raise ValueError("voxels_per_query groups voxels by their position: give Y as "
                                 "a DataArray with voxel coords x, y, z")
            coords = np.stack([np.asarray(Yt[c].values, float) for c in "xyz"], 1)
        self.groups_, self.group_rois_ = voxel_groups(rois, coords, self.voxels_per_query,
                                                      int(self.seed))
        model = _Router(x.shape[2], fourier_positions(fm.positions, int(self.n_frequencies)),
                        self.groups_, d_model=int(self.d_model), heads=int(self.heads),
                        layers=int(self.layers), rngs=nnx.Rngs(int(self.seed)))

        def loss(m, batch):
            return jnp.mean((m(batch[0]) - batch[1]) ** 2)

        def evaluate(m, data):
            return {"r": mean_correlation(data[1], m(data[0]))}

        self._run(model, loss, (x[train], y[train]), (x[val], y[val]), evaluate, config)
        return self

    @staticmethod
    def _rois(rois, Yt, n_voxels) -> np.ndarray:
        if rois is None:
            if Yt is None or "roi" not in Yt.coords:
                raise ValueError("AttentionRoutingEncoder needs the ROI of every voxel: pass "
                                 "rois=(voxel,) labels or Y as a DataArray with a 'roi' coord")
            rois = Yt["roi"].values
        rois = np.asarray(rois)
        if rois.shape != (n_voxels,):
            raise ValueError(f"rois must have one label per voxel, shape ({n_voxels},), got "
                             f"shape {rois.shape}")
        return rois

    def attention_maps(self, X: Any, positions: ArrayLike | None = None) -> xr.DataArray:
        """Where each query looks: the last layer's attention, averaged over heads, as
        ``(stimulus, query, y, x)`` for a 4-D map (``(stimulus, query, token)`` otherwise),
        with query coord ``roi`` and the token positions as ``x``/``y`` coords."""
        fm, x = self._inputs(X, positions)
        w = apply_in_batches(_AttentionView(self.model_), 256, x)
        w = w.mean(1)  # heads
        coords = {"query": np.arange(w.shape[1]), "roi": ("query", self.group_rois_)}
        if fm.grid is not None:
            h, wd = fm.grid
            xs, ys = self.positions_[:wd, 0], self.positions_[::wd, 1]
            return xr.DataArray(w.reshape(w.shape[0], w.shape[1], h, wd),
                                dims=("stimulus", "query", "y", "x"),
                                coords={**coords, "x": xs, "y": ys}, name="attention",
                                attrs={"units": "attention weight (sums to 1 over tokens)",
                                       "position_units": self._units})
        return xr.DataArray(w, dims=("stimulus", "query", "token"),
                            coords={**coords, "x": ("token", self.positions_[:, 0]),
                                    "y": ("token", self.positions_[:, 1])}, name="attention")

    def to_dataset(self) -> xr.Dataset:
        """The voxel readout (weights on the query outputs), groups and training history."""
        self._check_fitted()
        slot = np.asarray(self.model_.slot[...])
        table = np.asarray(self.model_.readout[...])
        weights = table.reshape(-1, table.shape[-1])[slot]
        ds = xr.Dataset({"readout": (("voxel", "latent"), weights),
                         "bias": ("voxel", np.asarray(self.model_.bias[...])),
                         "group": ("voxel", self.groups_)},
                        coords={**self._vcoords, "group_roi": ("query", self.group_rois_)})
        ds.attrs = self._provenance()
        return ds


class _AttentionView(nnx.Module):
    """Calls the router's ``attention`` (so the jitted batch helper can run it)."""

    def __init__(self, router: _Router):
        self.router = router

    def __call__(self, x):
        return self.router.attention(x)


def plot_attention(encoder: AttentionRoutingEncoder, X: Any, images: ArrayLike, stimulus: int = 0,
                   rois: list[str] | None = None, ax=None, extent: float | None = None):
    """The attention of each ROI's queries over one stimulus, drawn over the image.

    One panel per ROI (the mean map of its queries), the image in gray and the attention as a
    translucent heat map over the same extent.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    maps = encoder.attention_maps(X)
    if "y" not in maps.dims:
        raise ValueError("plot_attention needs a (stimulus, y, x, channel) feature map")
    if not 0 <= stimulus < maps.sizes["stimulus"]:
        raise ValueError(f"stimulus must be in [0, {maps.sizes['stimulus']}), got {stimulus}")
    per_roi = maps.isel(stimulus=stimulus).groupby("roi").mean("query")
    names = list(per_roi["roi"].values) if rois is None else list(rois)
    image = np.asarray(images)[stimulus]
    half = float(extent if extent is not None else
                 np.abs(np.r_[maps["x"].values, maps["y"].values]).max()
                 * (1 + 1 / maps.sizes["x"]))
    fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names), 2.4), squeeze=False)
    for a, name in zip(axes[0], names, strict=True):
        a.imshow(image, cmap="gray", extent=(-half, half, -half, half))
        a.imshow(per_roi.sel(roi=name).values, cmap="magma", alpha=0.6,
                 extent=(-half, half, -half, half))
        a.set_title(str(name), fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"attention over stimulus {stimulus}", fontsize=10)
    fig.tight_layout()
    return fig
