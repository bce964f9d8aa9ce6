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


#: RGB -> YIQ (NTSC); a hue shift is a rotation of the (I, Q) chroma plane
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                np.float32)
_YIQ_INV = np.linalg.inv(_YIQ).astype(np.float32)

#: the crop recipe: crop area (fraction of the image), log aspect-ratio range, the largest
#: hue rotation (fraction of a turn) and the grayscale probability
CROP_SCALE = (0.35, 1.0)
CROP_LOG_RATIO = (float(np.log(3 / 4)), float(np.log(4 / 3)))
HUE_JITTER = 0.1
GRAYSCALE_P = 0.2


def _crops_one(img: Array, key: PRNGKeyArray) -> Array:
    """Random resized crop (bilinear), horizontal flip, hue rotation, random grayscale."""
    k = jax.random.split(key, 6)
    h, w, c = img.shape
    area = jax.random.uniform(k[0], (), minval=CROP_SCALE[0], maxval=CROP_SCALE[1])
    ratio = jnp.exp(jax.random.uniform(k[1], (), minval=CROP_LOG_RATIO[0],
                                       maxval=CROP_LOG_RATIO[1]))
    ch = jnp.clip(jnp.sqrt(area / ratio) * h, 2.0, h)
    cw = jnp.clip(jnp.sqrt(area * ratio) * w, 2.0, w)
    top = jax.random.uniform(k[2], ()) * (h - ch)
    left = jax.random.uniform(k[3], ()) * (w - cw)
    scale = jnp.stack([h / ch, w / cw])
    img = jax.image.scale_and_translate(img, (h, w, c), (0, 1), scale,
                                        -jnp.stack([top, left]) * scale, method="linear",
                                        antialias=False)
    img = jnp.where(jax.random.bernoulli(k[4]), img[:, ::-1], img)  # no vertical flip
    if c == 3:
        kh, kg = jax.random.split(k[5])
        theta = 2 * jnp.pi * jax.random.uniform(kh, (), minval=-HUE_JITTER, maxval=HUE_JITTER)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        rot = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) \
            .at[1, 1].set(cos).at[1, 2].set(-sin).at[2, 1].set(sin).at[2, 2].set(cos)
        img = img @ (jnp.asarray(_YIQ_INV) @ rot @ jnp.asarray(_YIQ)).T
        gray = jnp.broadcast_to(img @ jnp.asarray(_YIQ[0])[:, None], img.shape)
        img = jnp.where(jax.random.bernoulli(kg, GRAYSCALE_P), gray, img)
    return jnp.clip(img, 0.0, 1.0)


#: augmentation recipes of :func:`augment`
RECIPES = ("shift", "crops")


def augment(images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
            shift: int = 4, permute_colors: bool = False, recipe: str = "shift") -> Array:
    """SimCLR-style views, independent per image.

    ``recipe="shift"``: random horizontal and vertical flips, translation by up to ``shift``
    px (zero fill), brightness scaling and optionally a colour-channel permutation.
    ``recipe="crops"``: the AKOrN authors' recipe for objects (Miyato et al. 2025): random
    resized crops (area :data:`CROP_SCALE`, aspect 3/4-4/3, bilinear), horizontal flips
    only, hue jitter (a rotation of the YIQ chroma plane by up to :data:`HUE_JITTER` of a
    turn) and grayscale with probability :data:`GRAYSCALE_P`. The paper gives the kinds, not
    the ranges: these are torchvision's usual SimCLR values, with a larger smallest crop for
    small images of a few objects.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    keys = jax.random.split(key, images.shape[0])
    if recipe == "crops":
        return jax.vmap(_crops_one)(jnp.asarray(images), keys)
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
                     permute_colors: bool = False, recipe: str = "shift") -> Callable:
    """The SimCLR objective as ``loss(model, (images, key)) -> NT-Xent`` of two
    :func:`augment` views (one function object per setting, so compiled steps are reused)."""

    def loss(model, batch):
        images, key = batch
        ka, kb, kx1, kx2 = jax.random.split(key, 4)
        views = [augment(images, key=k, shift=shift, permute_colors=permute_colors,
                         recipe=recipe) for k in (ka, kb)]
        return nt_xent(model(views[0], key=kx1).out, model(views[1], key=kx2).out, temperature)

    return loss


def make_contrastive_step(temperature: float = 0.1, *, shift: int = 4,
                          permute_colors: bool = False, recipe: str = "shift"):
    """An ``nnx.jit``-ed step ``step(model, optimizer, images, key) -> loss`` of
    :func:`contrastive_loss`, for custom loops (:func:`train_contrastive` runs the package's)."""
    objective = contrastive_loss(temperature, shift=shift, permute_colors=permute_colors,
                                 recipe=recipe)

    @nnx.jit
    def step(model, optimizer, images, key):
        loss, grads = nnx.value_and_grad(objective)(model, (images, key))
        optimizer.update(model, grads)
        return loss

    return step


def train_contrastive(model: nnx.Module, images: Float[ArrayLike, "sample height width color"],
                      config=None, *, temperature: float = 0.1, shift: int = 4,
                      permute_colors: bool = False, recipe: str = "shift", checkpoint_dir=None,
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
    temperature, shift, permute_colors, recipe
        Of :func:`contrastive_loss` (``recipe``: :func:`augment`'s).
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

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    loss = contrastive_loss(temperature, shift=shift, permute_colors=permute_colors,
                            recipe=recipe)
    return training.fit(model, loss, batch, config, checkpoint_dir=checkpoint_dir,
                        progress=progress)
