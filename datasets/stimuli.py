"""Procedural visual stimuli and their ground-truth feature spaces.

Two kinds of grayscale images on a mid-gray background, all vectorised over stimuli:

* ``"grating"``: a sinusoidal grating in a soft circular aperture (orientation, spatial
  frequency, phase, contrast, position, size);
* ``"shape"``: a silhouette of one of a few categories (``face``, ``house``, ``body``,
  ``tool``), drawn from signed-distance functions at a random position, size and rotation and
  with a random contrast polarity.

Feature spaces used as ground truth by :func:`brainmodels.datasets.make_synthetic_fmri`:

* :func:`gabor_energy`: local oriented energy (quadrature Gabor amplitude) pooled on a coarse
  grid, the textbook model of early visual cortex (Adelson & Bergen 1985; Kay et al. 2008).
* :func:`category_code`: a one-hot code of the shape category (zeros for gratings), i.e. a
  response to the category wherever and at whatever size and rotation it appears.

References
----------
Adelson, E. H. & Bergen, J. R. (1985). Spatiotemporal energy models for the perception of
motion. JOSA A 2(2), 284-299 (energy = squared sum of a quadrature pair, eq. 8).
Kay, K. N., Naselaris, T., Prenger, R. J. & Gallant, J. L. (2008). Identifying natural images
from human brain activity. Nature 452, 352-355 (Gabor wavelet pyramid encoding model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import fft as sfft

from brainmodels._types import ArrayLike, Float, NDArray

__all__ = ["SHAPE_CATEGORIES", "make_stimuli", "render_stimuli", "gabor_energy", "category_code"]

_Sdf = Callable[[NDArray, NDArray], NDArray]


# ----------------------------------------------------------------------------- SDF primitives
# Signed distances in canonical shape coordinates (u right, v up, shape inside radius ~1);
# negative inside. Unions are minima, subtractions max(a, -b).


def _disk(u, v, cu, cv, r):
    return np.hypot(u - cu, v - cv) - r


def _box(u, v, cu, cv, hu, hv):
    du, dv = np.abs(u - cu) - hu, np.abs(v - cv) - hv
    outside = np.hypot(np.maximum(du, 0.0), np.maximum(dv, 0.0))
    return outside + np.minimum(np.maximum(du, dv), 0.0)


def _capsule(u, v, a, b, r):
    (au, av), (bu, bv) = a, b
    pu, pv, eu, ev = u - au, v - av, bu - au, bv - av
    h = np.clip((pu * eu + pv * ev) / (eu * eu + ev * ev), 0.0, 1.0)
    return np.hypot(pu - h * eu, pv - h * ev) - r


def _triangle(u, v, vertices):
    # intersection of the three inner half-planes (exact inside, a lower bound outside)
    d = []
    pts = np.asarray(vertices, dtype=float)
    centroid = pts.mean(axis=0)
    for idx in range(3):
        (au, av), (bu, bv) = pts[idx], pts[(idx + 1) % 3]
        nu, nv = bv - av, -(bu - au)
        norm = np.hypot(nu, nv)
        nu, nv = nu / norm, nv / norm
        if (centroid[0] - au) * nu + (centroid[1] - av) * nv > 0:  # make the normal point out
            nu, nv = -nu, -nv
        d.append((u - au) * nu + (v - av) * nv)
    return np.maximum(np.maximum(d[0], d[1]), d[2])


def _face(u, v):
    head = _disk(u, v, 0.0, 0.0, 0.85)
    holes = np.minimum(
        np.minimum(_disk(u, v, -0.32, 0.25, 0.16), _disk(u, v, 0.32, 0.25, 0.16)),
        _box(u, v, 0.0, -0.38, 0.38, 0.09),
    )
    return np.maximum(head, -holes)


def _house(u, v):
    body = _box(u, v, 0.0, -0.35, 0.6, 0.5)
    roof = _triangle(u, v, [(-0.85, 0.15), (0.85, 0.15), (0.0, 0.9)])
    return np.minimum(body, roof)


def _body(u, v):
    parts = [
        _disk(u, v, 0.0, 0.72, 0.2),
        _capsule(u, v, (0.0, 0.5), (0.0, -0.2), 0.11),
        _capsule(u, v, (-0.6, 0.3), (0.6, 0.3), 0.08),
        _capsule(u, v, (0.0, -0.2), (-0.4, -0.9), 0.09),
        _capsule(u, v, (0.0, -0.2), (0.4, -0.9), 0.09),
    ]
    out = parts[0]
    for p in parts[1:]:
        out = np.minimum(out, p)
    return out


def _tool(u, v):
    handle = _capsule(u, v, (0.0, -0.9), (0.0, 0.45), 0.1)
    head = _box(u, v, 0.0, 0.6, 0.5, 0.16)
    return np.minimum(handle, head)


#: Shape categories and their signed-distance functions (a registry; add entries to extend).
SHAPE_CATEGORIES: dict[str, _Sdf] = {
    "face": _face,
    "house": _house,
    "body": _body,
    "tool": _tool,
}


# ----------------------------------------------------------------------------- sampling


def make_stimuli(
    n_stimuli: int,
    *,
    seed: int | np.random.Generator,
    categories: Sequence[str] = tuple(SHAPE_CATEGORIES),
    grating_fraction: float = 0.25,
) -> pd.DataFrame:
    """Draw stimulus parameters (one row per stimulus).

    Parameters
    ----------
    n_stimuli : int
        Number of unique stimuli.
    seed : int or numpy Generator
        Randomness (keyword-only).
    categories : sequence of str
        Shape categories from :data:`SHAPE_CATEGORIES`; shapes cycle through them in equal
        numbers before shuffling.
    grating_fraction : float
        Fraction of stimuli that are gratings (the rest are shapes).

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``category`` (``"grating"`` for gratings), ``orientation`` (deg; the
        grating orientation or the shape rotation), ``position_x``, ``position_y`` (image
        units, [-1, 1], x right, y up), ``size`` (radius, image units), ``spatial_frequency``
        (cycles per image width; 0 for shapes), ``phase`` (rad), ``contrast`` (signed for
        shapes: the sign is the polarity).

    Raises
    ------
    ValueError
        If ``n_stimuli`` < 1, ``grating_fraction`` is outside [0, 1] or a category is unknown.
    """
    if int(n_stimuli) < 1:
        raise ValueError(f"n_stimuli must be >= 1, got {n_stimuli}")
    if not 0.0 <= grating_fraction <= 1.0:
        raise ValueError(f"grating_fraction must be in [0, 1], got {grating_fraction}")
    unknown = [c for c in categories if c not in SHAPE_CATEGORIES]
    if unknown or not categories:
        raise ValueError(
            f"categories must be a non-empty subset of {sorted(SHAPE_CATEGORIES)}, got "
            f"{list(categories)}"
        )
    rng = np.random.default_rng(seed)
    n = int(n_stimuli)
    n_grating = int(round(grating_fraction * n))
    shape_cats = [categories[i % len(categories)] for i in range(n - n_grating)]
    labels = np.array(["grating"] * n_grating + shape_cats)
    labels = labels[rng.permutation(n)]
    is_grating = labels == "grating"
    size = rng.uniform(0.25, 0.8, n)
    # keep most of the object inside the image: the centre stays within 1 - size/2
    limit = 1.0 - 0.5 * size
    pos = rng.uniform(-1.0, 1.0, (n, 2)) * limit[:, None]
    # a wide, log-uniform contrast range makes the overall energy a poor cue to the category
    contrast = np.exp(rng.uniform(np.log(0.15), 0.0, n)) * np.where(rng.random(n) < 0.5, -1, 1)
    orientation = np.where(is_grating, rng.uniform(0, 180, n), rng.uniform(0, 360, n))
    return pd.DataFrame(
        {
            "kind": np.where(is_grating, "grating", "shape"),
            "category": labels,
            "orientation": orientation,
            "position_x": pos[:, 0],
            "position_y": pos[:, 1],
            "size": size,
            "spatial_frequency": np.where(is_grating, rng.uniform(2.0, 6.0, n), 0.0),
            "phase": rng.uniform(0, 2 * np.pi, n),
            "contrast": np.where(is_grating, np.abs(contrast), contrast),
        }
    )


# ----------------------------------------------------------------------------- rendering


def render_stimuli(
    params: pd.DataFrame, image_size: int = 32
) -> Float[NDArray, "stimulus height width"]:
    """Render the stimuli described by :func:`make_stimuli` as float32 images in [0, 1].

    Edges are anti-aliased analytically (coverage from the signed distance), so the images
    are smooth functions of the parameters. Row 0 of the image is the top (y = +1).
    """
    if int(image_size) < 8:
        raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
    size = int(image_size)
    centers = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    gx, gy = np.meshgrid(centers, -centers)  # y up, first row at the top
    pixel = 2.0 / size
    n = len(params)
    px = params["position_x"].to_numpy()[:, None, None]
    py = params["position_y"].to_numpy()[:, None, None]
    radius = params["size"].to_numpy()[:, None, None]
    theta = np.deg2rad(params["orientation"].to_numpy())[:, None, None]
    dx, dy = gx[None] - px, gy[None] - py
    # rotate into the object's frame
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / radius
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) / radius
    images = np.full((n, size, size), 0.5)
    contrast = params["contrast"].to_numpy()
    kinds = params["category"].to_numpy()
    for name, sdf in SHAPE_CATEGORIES.items():
        idx = np.flatnonzero(kinds == name)
        if idx.size:
            dist = sdf(u[idx], v[idx]) * radius[idx]
            cover = np.clip(0.5 - dist / pixel, 0.0, 1.0)
            images[idx] = 0.5 + 0.5 * contrast[idx, None, None] * cover
    idx = np.flatnonzero(kinds == "grating")
    if idx.size:
        freq = params["spatial_frequency"].to_numpy()[idx, None, None]
        phase = params["phase"].to_numpy()[idx, None, None]
        # u runs across the bars (perpendicular to the stripes): one cycle per 2/freq units
        wave = np.cos(np.pi * freq * u[idx] * radius[idx] + phase)
        aperture = np.clip(0.5 - (np.hypot(u[idx], v[idx]) - 1.0) * radius[idx] / pixel, 0, 1)
        images[idx] = 0.5 + 0.5 * contrast[idx, None, None] * wave * aperture
    return np.clip(images, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- features


def _quadrature_filters(size: int, orientations: NDArray, wavelengths: NDArray) -> NDArray:
    """One-sided Gaussian filters in the Fourier domain (complex Gabor quadrature pairs)."""
    freqs = np.fft.fftfreq(size)  # cycles per pixel
    fy, fx = np.meshgrid(freqs, freqs, indexing="ij")
    out = []
    for lam in wavelengths:
        f0 = 1.0 / lam
        bandwidth = 0.35 * f0  # ~1.2 octave full width at half maximum
        for ori in orientations:
            cx, cy = f0 * np.cos(ori), f0 * np.sin(ori)
            out.append(np.exp(-((fx - cx) ** 2 + (fy - cy) ** 2) / (2 * bandwidth**2)))
    return np.stack(out)


def gabor_energy(
    images: Float[NDArray, "stimulus height width"],
    *,
    n_orientations: int = 4,
    wavelengths: Sequence[float] = (4.0, 8.0),
    grid: int = 8,
    batch: int = 256,
) -> Float[NDArray, "stimulus grid_y grid_x channel"]:
    """Local oriented energy: quadrature Gabor amplitude pooled on a ``grid x grid`` layout.

    For each orientation and wavelength the image (minus its background 0.5) is filtered with
    a complex Gabor (a one-sided Gaussian in the Fourier domain, whose real and imaginary parts
    are the even and odd filters of a quadrature pair); the amplitude ``|even + i odd|`` is the
    phase-invariant energy of Adelson & Bergen (1985, eq. 8, square-rooted) and is averaged
    over the pixels of each grid cell.

    Returns
    -------
    ndarray, float32, shape (n_stimuli, grid, grid, len(wavelengths) * n_orientations)
        Channels are ordered wavelength-major (``channel = w * n_orientations + o``);
        orientation ``o`` is ``180 * o / n_orientations`` degrees (grating bars' normal).
    """
    images = np.asarray(images, dtype=np.float32)
    n, height, width = images.shape
    if height != width or height % grid:
        raise ValueError(
            f"images must be square with a side divisible by grid={grid}, got {height}x{width}"
        )
    orientations = np.pi * np.arange(n_orientations) / n_orientations
    filt = _quadrature_filters(height, orientations, np.asarray(wavelengths, dtype=float))
    cell = height // grid
    out = np.empty((n, grid, grid, filt.shape[0]), dtype=np.float32)
    for start in range(0, n, batch):
        chunk = sfft.fft2(images[start : start + batch] - 0.5, workers=-1)
        amp = np.abs(sfft.ifft2(chunk[:, None] * filt[None], workers=-1))  # (b, c, h, w)
        pooled = amp.reshape(amp.shape[0], amp.shape[1], grid, cell, grid, cell).mean((3, 5))
        out[start : start + batch] = pooled.transpose(0, 2, 3, 1)
    return out


def category_code(
    labels: ArrayLike, categories: Sequence[str]
) -> Float[NDArray, "stimulus category"]:
    """One-hot code of ``labels`` over ``categories`` (all zeros for labels not listed)."""
    labels = np.asarray(labels)
    return (labels[:, None] == np.asarray(categories)[None, :]).astype(np.float32)
