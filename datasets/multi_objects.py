"""Synthetic multi-object images with ground-truth instance masks (for object discovery).

A few coloured shapes (squares, discs, triangles, diamonds, tetrominoes) on a black background,
in the spirit of the Tetrominoes / Multi-dSprites benchmarks, generated locally and
deterministically: image ``i`` depends only on ``(seed, i)``, so any subset can be regenerated.
Later objects occlude earlier ones; every object keeps at least ``min_pixels`` visible pixels.

Example
-------
>>> ds = make_multi_objects(4, seed=0)
>>> ds["image"].dims, ds["mask"].dims
(('stimulus', 'height', 'width', 'color'), ('stimulus', 'height', 'width'))
"""

from __future__ import annotations

import colorsys

import numpy as np
import xarray as xr

from brainmodels.data import provenance

__all__ = ["SHAPES", "COLOR_MODES", "make_multi_objects", "make_tetrominoes"]

_TETROMINOES = (
    ((0, 0), (0, 1), (0, 2), (0, 3)),  # I
    ((0, 0), (0, 1), (1, 0), (1, 1)),  # O
    ((0, 0), (0, 1), (0, 2), (1, 1)),  # T
    ((0, 0), (1, 0), (2, 0), (2, 1)),  # L
    ((0, 1), (1, 1), (2, 1), (2, 0)),  # J
    ((0, 1), (0, 2), (1, 0), (1, 1)),  # S
    ((0, 0), (0, 1), (1, 1), (1, 2)),  # Z
)


def _square(rng, lo, hi):
    s = rng.integers(lo, hi + 1)
    return np.ones((s, s), bool)


def _disc(rng, lo, hi):
    s = rng.integers(lo, hi + 1)
    r = (s - 1) / 2
    yy, xx = np.mgrid[:s, :s]
    return (yy - r) ** 2 + (xx - r) ** 2 <= (r + 0.3) ** 2


def _triangle(rng, lo, hi):
    s = rng.integers(lo, hi + 1)
    yy, xx = np.mgrid[:s, :s]
    half = (yy + 1) * (s / 2) / s  # half-width grows linearly from the apex
    return np.abs(xx - (s - 1) / 2) <= half


def _diamond(rng, lo, hi):
    s = rng.integers(lo, hi + 1)
    s -= 1 - s % 2  # odd, so the diamond is centred on a pixel
    r = s // 2
    yy, xx = np.mgrid[:s, :s]
    return np.abs(yy - r) + np.abs(xx - r) <= r


def _tetromino(rng, lo, hi):
    cell = max(2, int(rng.integers(lo, hi + 1)) // 3)
    cells = np.zeros((4, 4), bool)
    for r, c in _TETROMINOES[rng.integers(len(_TETROMINOES))]:
        cells[r, c] = True
    cells = np.rot90(cells, rng.integers(4))
    cells = cells[cells.any(1)][:, cells.any(0)]
    return np.kron(cells, np.ones((cell, cell), bool))


#: Shape registry: name -> stamp(rng, min_size, max_size) -> boolean array.
SHAPES = {
    "square": _square,
    "disc": _disc,
    "triangle": _triangle,
    "diamond": _diamond,
    "tetromino": _tetromino,
}


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


COLOR_MODES = {
    # independent random hue per object (two objects may look alike)
    "random": lambda rng, k: [_hsv(rng.random(), rng.uniform(0.6, 1), rng.uniform(0.6, 1))
                              for _ in range(k)],
    # hues spread evenly around the circle (easy: colour alone separates objects)
    "distinct": lambda rng, k: [_hsv(rng.random() + j / k, 1.0, 1.0) for j in range(k)],
    # all objects share one colour (hard: only shape and position separate them)
    "same": lambda rng, k: [_hsv(rng.random(), 0.8, 0.9)] * k,
}


def _render(rng, size, n_obj, shapes, colors, sizes, min_pixels, occlusion=True,
            max_tries=100):
    for _ in range(max_tries):
        mask = np.zeros((size, size), np.int16)
        placed = True
        for j in range(n_obj):
            stamp = SHAPES[shapes[rng.integers(len(shapes))]](rng, *sizes)[:size, :size]
            h, w = stamp.shape
            for _ in range(max_tries if not occlusion else 1):
                top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
                if occlusion or not mask[top:top + h, left:left + w][stamp].any():
                    break
            else:  # no free place for this object: start the image again
                placed = False
                break
            mask[top:top + h, left:left + w][stamp] = j + 1
        counts = np.bincount(mask.ravel(), minlength=n_obj + 1)[1:]
        if placed and counts.min() >= min_pixels:
            break
    else:
        raise ValueError(f"could not place {n_obj} objects with >= {min_pixels} visible pixels "
                         f"in a {size}x{size} image; lower min_pixels or the object count")
    palette = np.stack([np.zeros(3), *COLOR_MODES[colors](rng, n_obj)])
    return palette[mask].astype(np.float32), mask


def make_multi_objects(n_images: int, *, size: int = 32, objects: tuple[int, int] = (2, 4),
                       shapes: tuple[str, ...] = tuple(SHAPES), colors: str = "random",
                       object_size: tuple[int, int] | None = None, min_pixels: int = 12,
                       noise: float = 0.0, occlusion: bool = True,
                       seed: int = 0) -> xr.Dataset:
    """Generate images of a few shapes with instance masks.

    Parameters
    ----------
    n_images : int
        Number of images (``stimulus`` axis).
    size : int
        Side of the square images in pixels (32 or 64 for the AKOrN experiment).
    objects : (int, int)
        Inclusive range of the number of objects per image.
    shapes : tuple of str
        Names from :data:`SHAPES`.
    colors : {"random", "distinct", "same"}
        How objects are coloured (:data:`COLOR_MODES`).
    object_size : (int, int), optional
        Range of a shape's bounding-box side in pixels (default ``size//5 .. size//3``).
    min_pixels : int
        Minimum visible pixels of every object after occlusion.
    noise : float
        Standard deviation of Gaussian pixel noise (clipped to [0, 1]).
    occlusion : bool
        Later objects may cover earlier ones (default); ``False`` places every object on
        free pixels only.
    seed : int
        Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.

    Returns
    -------
    xarray.Dataset
        ``image (stimulus, height, width, color)`` float32 in [0, 1]; ``mask (stimulus,
        height, width)`` int16 with 0 = background and 1..k the objects (drawing order);
        ``n_objects (stimulus)``. Attributes carry the generator's parameters.

    Raises
    ------
    ValueError
        On unknown shapes or colour modes, or impossible size / count settings.
    """
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        raise ValueError(f"shapes must be non-empty names from {sorted(SHAPES)}, got {shapes!r}")
    if colors not in COLOR_MODES:
        raise ValueError(f"colors must be one of {sorted(COLOR_MODES)}, got {colors!r}")
    lo_n, hi_n = objects
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"objects must be (min, max) with 1 <= min <= max, got {objects}")
    sizes = object_size or (max(3, size // 5), max(4, size // 3))
    if not 2 <= sizes[0] <= sizes[1] <= size:
        raise ValueError(f"object_size must satisfy 2 <= min <= max <= size={size}, got {sizes}")
    if n_images < 1 or noise < 0:
        raise ValueError(f"need n_images >= 1 and noise >= 0, got {n_images} and {noise}")
    images = np.empty((n_images, size, size, 3), np.float32)
    masks = np.empty((n_images, size, size), np.int16)
    counts = np.empty(n_images, np.int16)
    for i in range(n_images):
        rng = np.random.default_rng([seed, i])
        counts[i] = rng.integers(lo_n, hi_n + 1)
        images[i], masks[i] = _render(rng, size, int(counts[i]), shapes, colors, sizes, min_pixels,
                                      occlusion)
        if noise:
            images[i] = np.clip(images[i] + noise * rng.standard_normal(images[i].shape), 0, 1)
    params = dict(size=size, objects=list(objects), shapes=list(shapes), colors=colors,
                  object_size=list(sizes), min_pixels=min_pixels, noise=noise,
                  occlusion=occlusion)
    return xr.Dataset(
        {"image": (("stimulus", "height", "width", "color"), images),
         "mask": (("stimulus", "height", "width"), masks),
         "n_objects": (("stimulus",), counts)},
        coords={"stimulus": np.arange(n_images), "color": ["r", "g", "b"]},
        attrs=provenance("multi_objects", params=params, seed=seed),
    )


def make_tetrominoes(n_images: int, *, seed: int = 0, colors: str = "random",
                     noise: float = 0.0) -> xr.Dataset:
    """Tetrominoes-like images: three tetrominoes of 5 x 5-pixel cells on a 35 x 35 black
    image, without occlusion (the setting of the Tetrominoes benchmark of Greff et al. 2019
    that AKOrN reports object discovery on). Every object has 100 visible pixels; a fixed
    object count, so k = 4 clusters (three objects and the background) fits every image.

    Examples
    --------
    >>> ds = make_tetrominoes(2, seed=0)
    >>> ds["image"].shape, ds["n_objects"].values.tolist()
    ((2, 35, 35, 3), [3, 3])
    """
    return make_multi_objects(n_images, size=35, objects=(3, 3), shapes=("tetromino",),
                              colors=colors, object_size=(15, 17), min_pixels=100,
                              noise=noise, occlusion=False, seed=seed)
