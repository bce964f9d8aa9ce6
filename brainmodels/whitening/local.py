"""Local (convolutional) whitening of images: small spatial frames shared across positions.

For an image of H x W pixels (N = H W neurons), the local frame has one interneuron per pixel
(w = e_p) and one per pixel pair (p, q) inside an h x w window (w = (e_p + e_q) / sqrt 2), the
same pattern at every position (Duong et al. 2023, Sec. 6). At the fixed point every interneuron
has unit variance, so C_rr[p, p] = 1 and C_rr[p, q] = 0 for every pair inside the window: the
responses are whitened locally; correlations beyond the window are left free.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.whitening.frames import _positive_int


def _window(window) -> tuple[int, int]:
    h, w = (window, window) if isinstance(window, int | np.integer) else tuple(window)
    return _positive_int(h, "window height"), _positive_int(w, "window width")


def local_pairs(height: int, width: int, window: int | tuple[int, int] = 2) -> np.ndarray:
    """The (p, q) pixel pairs, p < q in raster order, whose offsets fit in an h x w window."""
    hh, ww = _positive_int(height, "height"), _positive_int(width, "width")
    wh, wwid = _window(window)
    offsets = [(dy, dx) for dy in range(wh) for dx in range(-wwid + 1, wwid)
               if dy > 0 or dx > 0]
    pairs = []
    for dy, dx in offsets:
        ys, xs = np.mgrid[0:hh, 0:ww]
        ok = (ys + dy < hh) & (xs + dx >= 0) & (xs + dx < ww)
        p = (ys * ww + xs)[ok]
        pairs.append(np.stack([p, p + dy * ww + dx], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), int)


def local_frame(height: int, width: int, window: int | tuple[int, int] = 2,
                dtype=None) -> jax.Array:
    """The convolutional frame of an H x W image: pixels plus pixel pairs within the window.

    Returns W (N, K) with N = H W and K = N + the number of pairs; columns have unit norm
    (pair weights 1/sqrt 2). Adapt it with ``full=False``.

    Examples
    --------
    >>> local_frame(4, 4, window=2).shape   # 16 pixels + 42 pairs (8-neighbourhood)
    (16, 58)
    """
    pairs = local_pairs(height, width, window)
    n = height * width
    w = np.zeros((n, n + len(pairs)))
    w[np.arange(n), np.arange(n)] = 1.0
    cols = n + np.arange(len(pairs))
    w[pairs[:, 0], cols] = w[pairs[:, 1], cols] = 1 / np.sqrt(2)
    return jnp.asarray(w, dtype=dtype or jnp.float32)


def local_error(cov: ArrayLike, height: int, width: int,
                window: int | tuple[int, int] = 2) -> float:
    """max |C - I| over the diagonal and every pixel pair inside the window."""
    c = np.asarray(cov, dtype=np.float64)
    n = height * width
    if c.shape != (n, n):
        raise ValueError(f"cov must be ({n}, {n}) for a {height} x {width} image, got {c.shape}")
    pairs = local_pairs(height, width, window)
    diag = np.abs(np.diag(c) - 1).max()
    return float(max(diag, np.abs(c[pairs[:, 0], pairs[:, 1]]).max(initial=0.0)))


def pink_noise_images(n_images: int, size: int, *, key: PRNGKeyArray,
                      exponent: float = 1.0) -> np.ndarray:
    """Natural-image-like Gaussian images: amplitude spectrum 1/f^exponent (power 1/f^2).

    White noise filtered in the Fourier domain (DC removed), each image scaled to unit pixel
    variance. Returns float64 (n_images, size, size).
    """
    n_images = _positive_int(n_images, "n_images")
    size = _positive_int(size, "size")
    noise = np.asarray(jax.random.normal(key, (n_images, size, size), dtype=jnp.float32),
                       dtype=np.float64)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    f[0, 0] = np.inf
    img = np.fft.ifft2(np.fft.fft2(noise) / f**exponent).real
    img -= img.mean(axis=(1, 2), keepdims=True)
    return img / img.std(axis=(1, 2), keepdims=True)


def image_patches(images: ArrayLike, patch: int, *, key: PRNGKeyArray,
                  n_patches: int) -> np.ndarray:
    """Random patch x patch crops of ``images`` (n, H, W), flattened in raster order and
    centred: (sample, neuron) with neuron = patch * patch."""
    imgs = np.asarray(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be 3-D (image, height, width), got shape {imgs.shape}")
    patch = _positive_int(patch, "patch")
    if patch > min(imgs.shape[1:]):
        raise ValueError(f"patch = {patch} exceeds the image size {imgs.shape[1:]}")
    k1, k2, k3 = jax.random.split(key, 3)
    n_patches = _positive_int(n_patches, "n_patches")
    i = np.asarray(jax.random.randint(k1, (n_patches,), 0, imgs.shape[0]))
    y = np.asarray(jax.random.randint(k2, (n_patches,), 0, imgs.shape[1] - patch + 1))
    x = np.asarray(jax.random.randint(k3, (n_patches,), 0, imgs.shape[2] - patch + 1))
    grid = np.arange(patch)
    out = imgs[i[:, None, None], y[:, None, None] + grid[:, None], x[:, None, None] + grid]
    out = out.reshape(n_patches, patch * patch)
    return out - out.mean(axis=0)
