"""Stimulus-driven models defined for representations: two baselines, a whitening circuit
looking at image patches and a Kuramoto oscillator grid whose frequencies the image sets."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import PRNGKeyArray
from brainmodels.representations._core import register

__all__ = ["GaborEnergy", "RandomFeatures", "WhiteningCircuit", "KuramotoGrid"]


def _gray(images: np.ndarray) -> np.ndarray:
    return images.mean(-1) if images.ndim == 4 else images


def _pool(images: np.ndarray, grid: int, name: str) -> np.ndarray:
    """Mean intensity in each cell of a ``grid x grid`` layout: (stimulus, grid, grid)."""
    n, h, w = images.shape
    if h % grid or w % grid:
        raise ValueError(f"{name}: the image side ({h}x{w}) must be divisible by grid={grid}")
    return images.reshape(n, grid, h // grid, grid, w // grid).mean((2, 4))


def _no_options(name: str, options: dict) -> None:
    if options:
        raise TypeError(f"{name} takes no options, got {sorted(options)}")


# ----------------------------------------------------------------------------- baselines


@dataclasses.dataclass(frozen=True)
class GaborEnergy:
    """Local oriented energy (Adelson & Bergen 1985; Kay et al. 2008), a V1 baseline.

    Layers: ``energy`` (quadrature Gabor amplitude per grid cell, orientation and wavelength)
    and ``pooled`` (its mean over the image: position-invariant orientation/frequency energy).
    """

    n_orientations: int = 4
    wavelengths: Sequence[float] = (4.0, 8.0)
    grid: int = 8


@register(GaborEnergy)
def _gabor(model: GaborEnergy, images, *, key=None, **options):
    from brainmodels.datasets.stimuli import gabor_energy

    _no_options("GaborEnergy", options)
    e = gabor_energy(_gray(images), n_orientations=model.n_orientations,
                     wavelengths=tuple(model.wavelengths), grid=model.grid)
    layers = {"energy": (e.reshape(e.shape[0], -1), ()), "pooled": (e.mean((1, 2)), ())}
    return layers, dataclasses.asdict(model)


@dataclasses.dataclass(frozen=True)
class RandomFeatures:
    """A random ReLU network on the pixels (He-scaled Gaussian weights), a chance baseline.

    Layers ``layer1`` ... ``layer<depth>``, each ``n_features`` wide; the weights are a
    deterministic function of ``seed``.
    """

    n_features: int = 512
    depth: int = 2
    seed: int = 0


@register(RandomFeatures)
def _random(model: RandomFeatures, images, *, key=None, **options):
    _no_options("RandomFeatures", options)
    if model.n_features < 1 or model.depth < 1:
        raise ValueError(f"RandomFeatures needs n_features, depth >= 1, got {model}")
    rng = np.random.default_rng(model.seed)
    x = images.reshape(images.shape[0], -1) - 0.5
    layers = {}
    for i in range(model.depth):
        w = rng.standard_normal((x.shape[1], model.n_features)).astype(np.float32)
        x = np.maximum(x @ (w * np.float32(np.sqrt(2.0 / x.shape[1]))), 0.0)
        layers[f"layer{i + 1}"] = (x, ())
    return layers, dataclasses.asdict(model)


# ----------------------------------------------------------------------------- whitening


@dataclasses.dataclass(frozen=True, eq=False)
class WhiteningCircuit:
    """An adaptive whitening circuit (Duong et al. 2023) looking at image patches.

    Each image is tiled into non-overlapping ``patch x patch`` patches; each patch (minus
    ``mean``) is the input ``x`` of the circuit with frame ``frame`` (N = patch^2 neurons, K
    interneurons) and gains ``gains``, whose steady-state response is
    ``r = (I + W diag(g) W^T)^{-1} x``. Build one adapted to some images with :meth:`fit`.

    Layers: ``input`` (the centred patches) and ``response`` (the whitened responses), both
    (stimulus, n_patches * N) in raster order of patches.
    """

    frame: np.ndarray
    gains: np.ndarray
    mean: np.ndarray
    patch: int

    @classmethod
    def fit(cls, images, patch: int = 4, *, key: PRNGKeyArray, n_patches: int = 20000,
            n_interneurons: int | None = None) -> WhiteningCircuit:
        """A random frame with the optimal (closed-form, eq. 9) gains for these images'
        patch covariance: the circuit adapted to their statistics."""
        from brainmodels.representations._core import as_images
        from brainmodels.whitening import image_patches, optimal_gains, random_frame

        imgs, _ = as_images(images, name="images")
        imgs = _gray(imgs)
        k1, k2 = jax.random.split(key)
        x = image_patches(imgs, patch, key=k1, n_patches=n_patches)  # centred over samples
        mean = _patch_mean(imgs, patch)
        w = np.asarray(random_frame(patch * patch, n_interneurons, key=k2), np.float64)
        w /= np.linalg.norm(w, axis=0)  # unit norm in float64, as optimal_gains checks
        cov = x.T.astype(np.float64) @ x / x.shape[0]
        return cls(w, optimal_gains(w, cov), mean, int(patch))


def _tiles(images: np.ndarray, patch: int) -> np.ndarray:
    n, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"WhiteningCircuit: the image side ({h}x{w}) must be divisible by "
                         f"patch={patch}")
    t = images.reshape(n, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)
    return t.reshape(n, (h // patch) * (w // patch), patch * patch)


def _patch_mean(images: np.ndarray, patch: int) -> np.ndarray:
    return _tiles(images, patch).reshape(-1, patch * patch).mean(0)


@register(WhiteningCircuit)
def _whitening(model: WhiteningCircuit, images, *, key=None, **options):
    _no_options("WhiteningCircuit", options)
    w = np.asarray(model.frame, np.float64)
    g = np.asarray(model.gains, np.float64)
    if w.shape[0] != model.patch**2 or g.shape != (w.shape[1],):
        raise ValueError(f"WhiteningCircuit: frame {w.shape} and gains {g.shape} do not fit "
                         f"patch={model.patch} ({model.patch**2} neurons)")
    x = _tiles(_gray(images), model.patch) - np.asarray(model.mean)  # (stimulus, tile, N)
    m = np.eye(w.shape[0]) + (w * g) @ w.T
    r = np.linalg.solve(m, x.reshape(-1, w.shape[0]).T).T.reshape(x.shape)
    n = images.shape[0]
    layers = {"input": (x.reshape(n, -1), ()), "response": (r.reshape(n, -1), ())}
    return layers, {"patch": model.patch, "n_interneurons": int(w.shape[1])}


# ----------------------------------------------------------------------------- Kuramoto


@dataclasses.dataclass(frozen=True)
class KuramotoGrid:
    """Kuramoto oscillators on a ``grid x grid`` lattice whose frequencies the image sets.

    Oscillator ``i`` sits on a grid cell and has the natural frequency
    ``omega0 + gain * (I_i - 0.5)`` with ``I_i`` the cell's mean intensity; it couples to its
    four nearest neighbours, ``dtheta_i/dt = omega_i + (K / 4) sum_j A_ij sin(theta_j -
    theta_i) + noise``. Bright and dark regions lock into separate frequency clusters, so the
    phase pattern segments the image. The initial phases (and the noise) are drawn from the key,
    the same for every stimulus within a sample.

    Layers: ``phase`` (cos and sin of each oscillator's phase relative to the global phase
    ``psi`` at the end of the run) and ``synchrony`` (local order ``r_i`` over each
    oscillator's neighbours, Restrepo, Ott & Hunt 2005).
    """

    grid: int = 8
    coupling: float = 2.0
    omega0: float = 1.0
    gain: float = 2.0
    dt: float = 0.1
    steps: int = 200
    noise: float = 0.0
    method: str = "rk4"


def lattice(grid: int) -> np.ndarray:
    """4-neighbour adjacency of a ``grid x grid`` lattice (open boundaries), row-major."""
    idx = np.arange(grid * grid).reshape(grid, grid)
    a = np.zeros((grid * grid, grid * grid), np.float32)
    for di, dj in ((0, 1), (1, 0)):
        src = idx[: grid - di, : grid - dj].ravel()
        dst = idx[di:, dj:].ravel()
        a[src, dst] = a[dst, src] = 1.0
    return a


@functools.partial(jax.jit, static_argnames=("steps", "method"))
def _kuramoto_run(omegas, theta0, adjacency, coupling, noise, dt, key, *, steps, method):
    from brainmodels.kuramoto import KuramotoParams
    from brainmodels.kuramoto import engine as _engine

    def one(omega):
        p = KuramotoParams(coupling=coupling, omega=omega, adjacency=adjacency, noise=noise)
        phases, _, psi = _engine.integrate(p, theta0, dt, key, steps=steps, record_every=steps,
                                           method=method)
        theta = phases[-1]
        rel = theta - psi[-1]
        z = adjacency @ jnp.exp(1j * theta.astype(jnp.complex64))
        local = jnp.abs(z) / jnp.sum(adjacency, axis=1)
        return jnp.concatenate([jnp.cos(rel), jnp.sin(rel)]), local

    return jax.vmap(one)(omegas)


@register(KuramotoGrid)
def _kuramoto(model: KuramotoGrid, images, *, key=None, n_samples: int = 1, **options):
    from brainmodels.kuramoto.params import _check_run

    _no_options("KuramotoGrid (besides n_samples)", options)
    _check_run(model.dt, model.steps, model.steps, model.method)
    if model.grid < 2:
        raise ValueError(f"KuramotoGrid needs grid >= 2, got {model.grid}")
    if model.noise < 0:
        raise ValueError(f"KuramotoGrid needs noise >= 0, got {model.noise}")
    if key is None:
        raise ValueError("KuramotoGrid draws its initial phases: pass key= (a jax PRNG key)")
    n_samples = _positive(n_samples, "n_samples")
    level = _pool(_gray(images), model.grid, "KuramotoGrid").reshape(images.shape[0], -1)
    omegas = jnp.asarray(model.omega0 + model.gain * (level - 0.5), jnp.float32)
    a = jnp.asarray(lattice(model.grid) / 4.0)
    phase, sync = [], []
    for s in range(n_samples):
        k_init, k_noise = jax.random.split(jax.random.fold_in(key, s))
        theta0 = jax.random.uniform(k_init, (model.grid**2,), jnp.float32, -np.pi, np.pi)
        p, r = _kuramoto_run(omegas, theta0, a, jnp.float32(model.coupling),
                             jnp.float32(model.noise), jnp.float32(model.dt),
                             k_noise if model.noise > 0 else None, steps=int(model.steps),
                             method=model.method)
        phase.append(np.asarray(p))
        sync.append(np.asarray(r))
    layers = {"phase": (np.stack(phase, 1), ("sample",)),
              "synchrony": (np.stack(sync, 1), ("sample",))}
    return layers, {**dataclasses.asdict(model), "n_samples": n_samples, "stochastic": True}


def _positive(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)
