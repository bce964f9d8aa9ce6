"""Object discovery with AKOrN features: k-means over positions, scored with FG-ARI."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, Int, PRNGKeyArray
from brainmodels.akorn.layer import _EPS
from brainmodels.akorn.network import AKOrNOutput


def _kmeans_pp_init(points: Array, k: int, key: PRNGKeyArray) -> Array:
    keys = jax.random.split(key, k)
    centers = [points[jax.random.randint(keys[0], (), 0, points.shape[0])]]
    for i in range(1, k):
        d2 = jnp.min(jnp.stack([jnp.sum((points - c[None]) ** 2, -1) for c in centers]), 0)
        p = d2 / jnp.maximum(jnp.sum(d2), _EPS)
        centers.append(points[jax.random.choice(keys[i], points.shape[0], p=p)])
    return jnp.stack(centers)


def _lloyd(points: Array, centers: Array, iters: int):
    k = centers.shape[0]

    def body(_, cen):
        lab = jnp.argmin(jnp.sum((points[:, None] - cen[None]) ** 2, -1), axis=1)
        one = jax.nn.one_hot(lab, k, dtype=points.dtype)
        cnt = one.sum(0)
        new = (one.T @ points) / jnp.maximum(cnt, 1.0)[:, None]
        return jnp.where((cnt > 0)[:, None], new, cen)

    cen = jax.lax.fori_loop(0, iters, body, centers)
    d = jnp.sum((points[:, None] - cen[None]) ** 2, -1)
    return jnp.argmin(d, axis=1), jnp.sum(jnp.min(d, axis=1)), cen


def _kmeans_single(points, key, k, iters, n_init):
    def one(kk):
        return _lloyd(points, _kmeans_pp_init(points, k, kk), iters)[:2]

    labels, inertia = jax.vmap(one)(jax.random.split(key, n_init))
    best = jnp.argmin(inertia)
    return labels[best], inertia[best]


@partial(jax.jit, static_argnames=("k", "iters", "n_init"))
def _kmeans_batch(points, keys, k: int, iters: int = 30, n_init: int = 4):
    return jax.vmap(lambda p, kk: _kmeans_single(p, kk, k, iters, n_init))(points, keys)


def kmeans(points: Float[ArrayLike, "... sample feature"], k: int, *, key: PRNGKeyArray,
           iters: int = 30, n_init: int = 4) -> tuple[Array, Array]:
    """k-means (k-means++ seeding, Lloyd iterations, best of ``n_init`` runs) in JAX.

    Parameters
    ----------
    points : array (sample, feature) or (batch, sample, feature)
        A batch is clustered image by image (one jitted, vmapped call).
    k, iters, n_init : int
        Clusters, Lloyd iterations, restarts (static: one compilation per value).
    key : jax PRNG key

    Returns
    -------
    labels : int array (..., sample)
    inertia : array (...,)
        Sum of squared distances to the assigned centres.
    """
    pts = jnp.asarray(points)
    if pts.ndim not in (2, 3) or not 1 <= k <= pts.shape[-2]:
        raise ValueError(f"points must be (sample, feature) or (batch, sample, feature) with "
                         f">= k={k} samples, got shape {pts.shape}")
    batch = pts[None] if pts.ndim == 2 else pts
    labels, inertia = _kmeans_batch(batch, jax.random.split(key, batch.shape[0]), k=k,
                                    iters=iters, n_init=n_init)
    return (labels[0], inertia[0]) if pts.ndim == 2 else (labels, inertia)


class PatchColour(nnx.Module):
    """The reference every object-discovery score should sit beside: the mean colour of each
    patch, up-tiled and clustered exactly as a model's features (no learning at all).

    Examples
    --------
    >>> import jax
    >>> from brainmodels.datasets.multi_objects import make_tetrominoes
    >>> ds = make_tetrominoes(4, seed=0)
    >>> img = np.pad(ds["image"].values, ((0, 0), (0, 1), (0, 1), (0, 0)))  # 36 = 9 x 4
    >>> masks = np.pad(ds["mask"].values, ((0, 0), (0, 1), (0, 1)))
    >>> pred = discover_objects(PatchColour(4), img, n_clusters=4, key=jax.random.key(0),
    ...                         uptile=4)
    >>> bool(fg_ari(masks, pred).mean() > 0.9)
    True
    """

    def __init__(self, patch: int):
        self.patch = patch

    def __call__(self, images, *, key=None, T=None):
        del key, T
        b, h, w, c = images.shape
        p = self.patch
        feats = images.reshape(b, h // p, p, w // p, p, c).mean((2, 4))
        return AKOrNOutput(None, feats, None, [])


@partial(nnx.jit, static_argnames=("T", "use"))
def _features(model, images, key, T=None, use="features"):
    return getattr(model(images, key=key, T=T), use)


def _uptiled_features(model, images, key, T, uptile, use="features"):
    """Features on a grid ``uptile`` times finer than the patches: shifted copies of the image
    (zero padding) run through the model and interleaved (the paper's "saccades")."""
    b, h, w, _ = images.shape
    p = model.patch
    s = p // uptile
    padded = jnp.pad(images, ((0, 0), (0, p), (0, p), (0, 0)))
    rows = []
    for dy in range(uptile):
        cols = [_features(model, padded[:, dy * s:dy * s + h, dx * s:dx * s + w], key, T=T,
                          use=use) for dx in range(uptile)]
        rows.append(jnp.stack(cols, axis=3))  # (b, hp, wp, dx, ch)
    f = jnp.stack(rows, axis=2)  # (b, hp, dy, wp, dx, ch)
    return f.reshape(b, f.shape[1] * uptile, f.shape[3] * uptile, f.shape[-1])


def _centred(f: np.ndarray, uptile: int) -> np.ndarray:
    """The up-tiled grid moved so that each cell holds the feature of the window centred on
    it.

    Cell ``g`` of :func:`_uptiled_features` is the window of pixels ``[g s, g s + p)`` (``s =
    p / uptile``), centred ``(p - s) / 2`` pixels below and right of the cell ``[g s, g s +
    s)`` it would label: at uptile 4 every mask moved 1.5 pixels up and left. Cell ``c`` gets
    the window centred on it, ``g = c - (uptile - 1) / 2``, linearly interpolated between the
    two nearest windows when that is a half cell (the nearest window at the top and left
    borders)."""
    d = (uptile - 1) / 2.0
    for axis in (1, 2):
        n = f.shape[axis]
        pos = np.clip(np.arange(n) - d, 0.0, n - 1.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        frac = (pos - lo).reshape([-1 if a == axis else 1 for a in range(f.ndim)])
        f = np.take(f, lo, axis=axis) * (1 - frac) + np.take(f, hi, axis=axis) * frac
    return f


#: clustering methods of :func:`discover_objects`
CLUSTERING = ("kmeans", "agglomerative")


def _cluster(f: np.ndarray, k: np.ndarray, method: str, key) -> np.ndarray:
    """(b, n, ch) normalised features -> (b, n) labels with ``k[i]`` clusters for image i."""
    b, n, _ = f.shape
    lab = np.empty((b, n), np.int64)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        for i in range(b):
            lab[i] = AgglomerativeClustering(int(k[i]), linkage="ward").fit_predict(f[i])
        return lab
    keys = jax.random.split(key, b)
    for kk in np.unique(k):  # one compiled k-means per distinct k
        sel = np.flatnonzero(k == kk)
        out, _ = _kmeans_batch(jnp.asarray(f[sel]), keys[sel], k=int(kk))
        lab[sel] = np.asarray(out)
    return lab


def discover_objects(model: nnx.Module, images: Float[ArrayLike, "batch height width color"], *,
                     n_clusters: int | Int[ArrayLike, " batch"], key: PRNGKeyArray,
                     T: int | None = None, uptile: int = 1, use: str = "features",
                     method: str = "kmeans",
                     batch_size: int = 64) -> Int[np.ndarray, "batch height width"]:
    """Segment images by clustering the model's final features (L2-normalised per position).

    Parameters
    ----------
    model : AKOrN (or any nnx module with a ``patch`` size whose call returns features)
    n_clusters : int or array (batch,)
        Clusters per image (one number for all, or each image's own, e.g. its number of
        objects plus the background, as the authors evaluate).
    use : {"features", "states"}
        The last readout (what the paper clusters) or the final oscillator states.
    uptile : int
        A divisor of the patch size: ``uptile**2`` shifted copies give features every
        ``patch // uptile`` pixels, each moved onto the cell its window is centred on
        (:func:`_centred`).
    method : {"kmeans", "agglomerative"}
        k-means (k-means++, best of 4) or Ward agglomerative clustering (scikit-learn).

    Returns
    -------
    Integer masks at image resolution (nearest upsampling of the feature grid).
    """
    if uptile < 1 or model.patch % uptile:
        raise ValueError(f"uptile must divide the patch size {model.patch}, got {uptile}")
    if use not in ("features", "states"):
        raise ValueError(f"use must be 'features' or 'states', got {use!r}")
    if method not in CLUSTERING:
        raise ValueError(f"method must be one of {CLUSTERING}, got {method!r}")
    images = jnp.asarray(images, jnp.float32)
    k_all = np.broadcast_to(np.asarray(n_clusters), (images.shape[0],))
    if k_all.dtype.kind not in "iu" or (k_all < 1).any():
        raise ValueError(f"n_clusters must be positive integers (one, or one per image), got "
                         f"{np.asarray(n_clusters)!r}")
    kf, kc = jax.random.split(key)
    out = []
    for i in range(0, images.shape[0], batch_size):
        f = np.asarray(_uptiled_features(model, images[i:i + batch_size],
                                         jax.random.fold_in(kf, i), T, uptile, use))
        f = _centred(f, uptile) if uptile > 1 else f
        f = f / np.sqrt(np.sum(f * f, -1, keepdims=True) + _EPS)
        b, h, w, ch = f.shape
        if (k_all[i:i + b] > h * w).any():
            raise ValueError(f"n_clusters must be at most the {h * w} feature positions")
        lab = _cluster(f.reshape(b, h * w, ch), k_all[i:i + b], method,
                       jax.random.fold_in(kc, i))
        out.append(lab.reshape(b, h, w))
    lab = np.concatenate(out)
    s = model.patch // uptile
    return np.repeat(np.repeat(lab, s, axis=1), s, axis=2)


def _ari(true: np.ndarray, pred: np.ndarray) -> float:
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    cont = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(cont, (t, p), 1)
    n = true.size
    sum_sq = np.sum(cont.astype(np.float64) ** 2)
    a, b = cont.sum(1).astype(np.float64), cont.sum(0).astype(np.float64)
    tp = sum_sq - n
    fp = np.sum(b**2) - sum_sq
    fn = np.sum(a**2) - sum_sq
    tn = float(n) * n - fp - fn - sum_sq
    if fn == 0 and fp == 0:  # identical partitions (incl. the single-cluster case)
        return 1.0
    return float(2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


def fg_ari(true_masks: Int[ArrayLike, "batch height width"],
           pred_masks: Int[ArrayLike, "batch height width"]) -> np.ndarray:
    """Foreground adjusted Rand index per image: ARI over pixels whose true label is > 0.

    Raises
    ------
    ValueError
        If the shapes differ or an image has no foreground pixel (ARI undefined).
    """
    true, pred = np.asarray(true_masks), np.asarray(pred_masks)
    if true.shape != pred.shape or true.ndim != 3:
        raise ValueError(f"true_masks and pred_masks must both be (batch, height, width), got "
                         f"{true.shape} and {pred.shape}")
    scores = np.empty(true.shape[0])
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        fg = t > 0
        if not fg.any():
            raise ValueError(f"true_masks[{i}] has no foreground pixel; FG-ARI is undefined")
        scores[i] = _ari(t[fg], p[fg])
    return scores
