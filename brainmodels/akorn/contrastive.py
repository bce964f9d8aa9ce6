"""SimCLR contrastive training of AKOrN networks (Chen et al. 2020) on the package's loop."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, PRNGKeyArray
from brainmodels.akorn.layer import _EPS


def _augment_one(img: Array, key: PRNGKeyArray, shift: int, permute_colors: bool) -> Array:
    k = jax.random.split(key, 5)
    img = jnp.where(jax.random.bernoulli(k[0]), img[:, ::-1], img)
    img = jnp.where(jax.random.bernoulli(k[1]), img[::-1], img)
    h, w, _ = img.shape
    padded = jnp.pad(img, ((shift, shift), (shift, shift), (0, 0)))
    off = jax.random.randint(k[2], (2,), 0, 2 * shift + 1)
    img = jax.lax.dynamic_slice(padded, (off[0], off[1], 0), (h, w, img.shape[2]))
    if permute_colors:
        img = img[..., jax.random.permutation(k[3], img.shape[2])]
    return jnp.clip(img * jax.random.uniform(k[4], (), img.dtype, 0.6, 1.2), 0.0, 1.0)


def augment(images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
            shift: int = 4, permute_colors: bool = False) -> Array:
    """SimCLR-style views: random flips, translation by up to ``shift`` px (zero fill),
    brightness scaling and optionally a colour-channel permutation; independent per image."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_augment_one, in_axes=(0, 0, None, None))(images, keys, shift, permute_colors)


def nt_xent(z1: Float[Array, "batch feature"], z2: Float[Array, "batch feature"],
            temperature: float = 0.1) -> Array:
    """SimCLR's normalised-temperature cross entropy (Chen et al. 2020, eq. 1), mean over 2B."""
    z = jnp.concatenate([z1, z2])
    z = z / jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True) + _EPS)
    sim = z @ z.T / temperature
    m = z1.shape[0]
    sim = jnp.where(jnp.eye(2 * m, dtype=bool), -jnp.inf, sim)
    target = jnp.concatenate([jnp.arange(m, 2 * m), jnp.arange(m)])
    return optax.softmax_cross_entropy_with_integer_labels(sim, target).mean()


@functools.lru_cache(maxsize=16)
def contrastive_loss(temperature: float = 0.1, *, shift: int = 4,
                     permute_colors: bool = False) -> Callable:
    """The SimCLR objective as ``loss(model, (images, key)) -> NT-Xent`` of two
    :func:`augment` views (one function object per setting, so compiled steps are reused)."""

    def loss(model, batch):
        images, key = batch
        ka, kb, kx1, kx2 = jax.random.split(key, 4)
        views = [augment(images, key=k, shift=shift, permute_colors=permute_colors)
                 for k in (ka, kb)]
        return nt_xent(model(views[0], key=kx1).out, model(views[1], key=kx2).out, temperature)

    return loss


def make_contrastive_step(temperature: float = 0.1, *, shift: int = 4,
                          permute_colors: bool = False):
    """An ``nnx.jit``-ed step ``step(model, optimizer, images, key) -> loss`` of
    :func:`contrastive_loss`, for custom loops (:func:`train_contrastive` runs the package's)."""
    objective = contrastive_loss(temperature, shift=shift, permute_colors=permute_colors)

    @nnx.jit
    def step(model, optimizer, images, key):
        loss, grads = nnx.value_and_grad(objective)(model, (images, key))
        optimizer.update(model, grads)
        return loss

    return step


def train_contrastive(model: nnx.Module, images: Float[ArrayLike, "sample height width color"],
                      config=None, *, temperature: float = 0.1, shift: int = 4,
                      permute_colors: bool = False, checkpoint_dir=None,
                      progress: Callable | None = None):
    """SimCLR training with :func:`brainmodels.training.fit`.

    Each step draws ``config.batch_size`` images without replacement and an augmentation key,
    both from ``fold_in(key(config.seed), step)``, so any step's batch is known on resume.

    Parameters
    ----------
    model : AKOrN (or any module called as ``model(images, key=key).out``)
    images : array (sample, height, width, color) in [0, 1]
    config : brainmodels.training.TrainConfig, optional
        Default: AdamW (weight decay 1e-4), lr 1e-3, 64 images per step, 1,000 steps; the
        training loss is recorded at every step (``eval_every=1``).
    temperature, shift, permute_colors
        Of :func:`contrastive_loss`.
    checkpoint_dir, progress
        As in :func:`brainmodels.training.fit`.

    Returns
    -------
    brainmodels.training.TrainResult
        ``history.train_loss`` is the NT-Xent loss per step.
    """
    from brainmodels import training

    if config is None:
        config = training.TrainConfig(steps=1000, batch_size=64, lr=1e-3, optimizer="adamw",
                                      weight_decay=1e-4, eval_every=1)
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (sample, height, width, color), got shape "
                         f"{images.shape}")
    n, bs = images.shape[0], config.batch_size
    if bs > n:
        raise ValueError(f"batch_size ({bs}) exceeds the {n} images")

    def batch(key, step):
        pick, aug = jax.random.split(key)
        idx = np.asarray(jax.random.choice(pick, n, (bs,), replace=False))
        return images[idx], aug

    loss = contrastive_loss(temperature, shift=shift, permute_colors=permute_colors)
    return training.fit(model, loss, batch, config, checkpoint_dir=checkpoint_dir,
                        progress=progress)
