"""Surrogate spike functions: a Heaviside step forward, a smooth derivative backward.

A spiking neuron emits ``S = H(U - theta)``; the step has zero derivative almost everywhere, so
backpropagation through time learns nothing. A *surrogate gradient* keeps the exact step in
the forward pass and replaces its derivative by a smooth bump in the backward pass
(``jax.custom_vjp``). Three standard shapes, all functions of ``x = U - theta``:

===============  ========================================  =====================================
name             surrogate derivative ``g(x)``             reference
===============  ========================================  =====================================
fast_sigmoid     ``1 / (1 + k |x|)^2``                     Zenke & Ganguli 2018 (SuperSpike), eq. 4
arctan           ``(k / 2) / (1 + (pi k x / 2)^2)``        Fang et al. 2021 (PLIF), snnTorch ``atan``
triangle         ``max(0, 1 - |k x|)``                     Esser et al. 2016; Bellec et al. 2018
===============  ========================================  =====================================

``k`` is the slope (sharpness). ``H(0) = 1``: a neuron spikes when ``U >= theta``.

Each surrogate also has a *smooth* counterpart (:data:`SMOOTH`), a sigmoid in ``[0, 1]`` whose
derivative is proportional to the surrogate derivative; it defines the smoothed dynamics whose
Jacobians the Lyapunov analysis (:mod:`brainmodels.snn.lnp`) uses.

References
----------
Neftci, Mostafa & Zenke (2019). Surrogate gradient learning in spiking neural networks.
IEEE Signal Processing Magazine 36(6), 51-63.
Zenke & Ganguli (2018). SuperSpike. Neural Computation 30(6), 1514-1541, eq. 4.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from brainmodels._types import Array, ArrayLike, Float

__all__ = [
    "SURROGATES",
    "SMOOTH",
    "DEFAULT_SLOPES",
    "fast_sigmoid",
    "arctan",
    "triangle",
    "surrogate_derivative",
    "get_surrogate",
    "get_smooth",
]

#: The slope ``k`` used when none is given.
DEFAULT_SLOPES: dict[str, float] = {"fast_sigmoid": 25.0, "arctan": 2.0, "triangle": 1.0}


def _heaviside(x):
    return (x >= 0).astype(x.dtype)


def _d_fast_sigmoid(x, k):
    return 1.0 / (1.0 + k * jnp.abs(x)) ** 2


def _d_arctan(x, k):
    return (k / 2.0) / (1.0 + (jnp.pi * k * x / 2.0) ** 2)


def _d_triangle(x, k):
    return jnp.maximum(0.0, 1.0 - jnp.abs(k * x))


_DERIVATIVES: dict[str, Callable] = {
    "fast_sigmoid": _d_fast_sigmoid,
    "arctan": _d_arctan,
    "triangle": _d_triangle,
}


def _make_spike_fn(name: str) -> Callable:
    deriv = _DERIVATIVES[name]

    @partial(jax.custom_vjp, nondiff_argnums=(1,))
    def spike(x, k):
        return _heaviside(x)

    def fwd(x, k):
        return _heaviside(x), x

    def bwd(k, x, g):
        return (g * deriv(x, k).astype(g.dtype),)

    spike.defvjp(fwd, bwd)
    return spike


_fast_sigmoid = _make_spike_fn("fast_sigmoid")
_arctan = _make_spike_fn("arctan")
_triangle = _make_spike_fn("triangle")


def fast_sigmoid(x: Float[ArrayLike, "*shape"] | float, slope: float = 25.0
                 ) -> Float[Array, "*shape"]:
    """Heaviside spike with the fast-sigmoid surrogate derivative ``1 / (1 + k|x|)^2``.

    Parameters
    ----------
    x : array
        Distance to threshold, ``U - theta``.
    slope : float
        ``k`` (static; a Python float).

    Returns
    -------
    array
        ``1.0`` where ``x >= 0``, else ``0.0`` (same dtype as ``x``).

    References
    ----------
    Zenke & Ganguli (2018), Neural Computation 30(6), eq. 4.
    """
    return _fast_sigmoid(jnp.asarray(x), float(_check_slope(slope)))


def arctan(x: Float[ArrayLike, "*shape"], slope: float = 2.0) -> Float[Array, "*shape"]:
    """Heaviside spike with the arctan surrogate ``(k/2) / (1 + (pi k x / 2)^2)`` (unit area).

    References
    ----------
    Fang et al. (2021), Incorporating learnable membrane time constant (PLIF), ICCV, sec. 3.
    """
    return _arctan(jnp.asarray(x), float(_check_slope(slope)))


def triangle(x: Float[ArrayLike, "*shape"], slope: float = 1.0) -> Float[Array, "*shape"]:
    """Heaviside spike with the triangular surrogate ``max(0, 1 - |k x|)``.

    References
    ----------
    Bellec et al. (2018), Long short-term memory and learning-to-learn in networks of spiking
    neurons, NeurIPS, eq. (pseudo-derivative) with dampening factor 1.
    """
    return _triangle(jnp.asarray(x), float(_check_slope(slope)))


#: name -> spike function ``f(x, slope)`` (Heaviside forward, surrogate backward).
SURROGATES: dict[str, Callable] = {
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "triangle": triangle,
}


def _smooth_fast_sigmoid(x, k):
    # d/dx = (k/2) / (1 + k|x|)^2
    return 0.5 * (1.0 + k * x / (1.0 + k * jnp.abs(x)))


def _smooth_arctan(x, k):
    # d/dx = (k/2) / (1 + (pi k x/2)^2): exactly the arctan surrogate
    return 0.5 + jnp.arctan(jnp.pi * k * x / 2.0) / jnp.pi


def _smooth_triangle(x, k):
    # d/dx = k max(0, 1 - |k x|): a piecewise quadratic CDF on [-1/k, 1/k]
    z = jnp.clip(k * x, -1.0, 1.0)
    return 0.5 + z - 0.5 * z * jnp.abs(z)


#: name -> smooth sigmoid ``f(x, slope)`` in [0, 1] whose derivative is proportional to the
#: surrogate derivative (factor k/2 for fast_sigmoid, 1 for arctan, k for triangle).
SMOOTH: dict[str, Callable] = {
    "fast_sigmoid": _smooth_fast_sigmoid,
    "arctan": _smooth_arctan,
    "triangle": _smooth_triangle,
}


def _check_slope(slope):
    if not isinstance(slope, int | float) or isinstance(slope, bool) or not slope > 0:
        raise ValueError(f"slope must be a positive Python number, got {slope!r}")
    return slope


def _check_name(name: str) -> str:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; known: {sorted(SURROGATES)}")
    return name


def surrogate_derivative(name: str, x: Float[ArrayLike, "*shape"], slope: float | None = None):
    """The analytic surrogate derivative ``g(x)`` of surrogate ``name`` (for tests and plots)."""
    _check_name(name)
    k = DEFAULT_SLOPES[name] if slope is None else _check_slope(slope)
    return _DERIVATIVES[name](jnp.asarray(x), k)


def get_surrogate(name: str = "fast_sigmoid", slope: float | None = None) -> Callable:
    """Return the spike function ``x -> H(x)`` of surrogate ``name`` with a fixed slope.

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones) or a non-positive slope.

    Examples
    --------
    >>> spike = get_surrogate("arctan", slope=2.0)
    >>> float(spike(jnp.array(0.3)))
    1.0
    """
    _check_name(name)
    k = float(DEFAULT_SLOPES[name] if slope is None else _check_slope(slope))
    fn = SURROGATES[name]
    return lambda x: fn(x, k)


def get_smooth(name: str = "fast_sigmoid", slope: float | None = None) -> Callable:
    """Return the smooth sigmoid ``x -> f(x)`` in ``[0, 1]`` matching surrogate ``name``."""
    _check_name(name)
    k = float(DEFAULT_SLOPES[name] if slope is None else _check_slope(slope))
    fn = SMOOTH[name]
    return lambda x: fn(jnp.asarray(x), k)
