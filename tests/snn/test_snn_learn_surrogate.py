"""Surrogate spike functions: exact step forward, analytic surrogate derivative backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels.snn.surrogate import (
    DEFAULT_SLOPES,
    SMOOTH,
    SURROGATES,
    get_smooth,
    get_surrogate,
    surrogate_derivative,
)

NAMES = sorted(SURROGATES)


def _analytic(name, x, k):
    # written out independently of the implementation (SuperSpike eq. 4; atan; triangle)
    table = {
        "fast_sigmoid": 1.0 / (1.0 + k * np.abs(x)) ** 2,
        "arctan": (k / 2.0) / (1.0 + (np.pi * k * x / 2.0) ** 2),
        "triangle": np.maximum(0.0, 1.0 - np.abs(k * x)),
    }
    return table[name]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("slope", [0.5, 2.0, 25.0])
def test_forward_is_heaviside_and_gradient_is_surrogate(name, slope, rng, x64):
    x = rng.uniform(-2, 2, 257)
    x[0] = 0.0  # H(0) = 1: a neuron at threshold spikes
    spike = get_surrogate(name, slope)
    np.testing.assert_array_equal(np.asarray(spike(jnp.asarray(x))), (x >= 0).astype(float))
    grad = jax.vmap(jax.grad(lambda v: spike(v)))(jnp.asarray(x))
    # float64 on both sides: agreement to a few ulp (rtol 1e-12)
    np.testing.assert_allclose(np.asarray(grad), _analytic(name, x, slope), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(surrogate_derivative(name, x, slope)),
                               _analytic(name, x, slope), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_chains_through_upstream_ops(name, rng):
    # d/dw sum H(w x - 1) = sum x g(w x - 1): the custom VJP composes with the chain rule
    x = jnp.asarray(rng.uniform(0, 2, 64), jnp.float32)
    w, k = 0.8, DEFAULT_SLOPES[name]
    spike = get_surrogate(name)
    g = jax.grad(lambda w: spike(w * x - 1.0).sum())(w)
    expected = np.sum(np.asarray(x) * _analytic(name, 0.8 * np.asarray(x) - 1.0, k))
    # float32 sums of 64 terms: relative error ~ 64 eps32 ~ 1e-5
    np.testing.assert_allclose(float(g), expected, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_smooth_version_is_a_cdf_matching_the_surrogate(name, x64):
    # the smooth sigmoid goes 0 -> 1 and its derivative is proportional to the surrogate
    k = DEFAULT_SLOPES[name]
    x = jnp.linspace(-0.9 / k, 0.9 / k, 101)
    f = get_smooth(name)
    d = jax.vmap(jax.grad(f))(x)
    ratio = np.asarray(d) / np.asarray(surrogate_derivative(name, x))
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)  # constant factor
    assert float(f(-1e6)) == pytest.approx(0.0, abs=1e-6)
    assert float(f(1e6)) == pytest.approx(1.0, abs=1e-6)
    assert set(SMOOTH) == set(SURROGATES)


def test_bad_names_and_slopes():
    with pytest.raises(ValueError, match="unknown surrogate 'sigmoid'.*arctan"):
        get_surrogate("sigmoid")
    with pytest.raises(ValueError, match="slope must be a positive"):
        get_surrogate("arctan", slope=-1.0)
