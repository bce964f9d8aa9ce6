"""The one integrator registry: each entry's measured convergence order equals its stated
order, on a pytree state, and a float32 state stays float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels.integrators import INTEGRATORS, get_integrator


def field(y, t):
    """A linear oscillator with forcing: x' = v, v' = -x + cos(2t); exact solution below."""
    x, v = y["x"], y["v"]
    return {"x": v, "v": -x + jnp.cos(2.0 * t)}


def exact(t):
    # x(0) = 1, v(0) = 0: x = (4/3) cos t - (1/3) cos 2t
    return 4.0 / 3.0 * np.cos(t) - 1.0 / 3.0 * np.cos(2.0 * t)


def solve(name, steps, t_end=2.0):
    step = INTEGRATORS[name].step
    dt = t_end / steps
    y = {"x": jnp.asarray(1.0, jnp.float64), "v": jnp.asarray(0.0, jnp.float64)}
    y = jax.lax.fori_loop(0, steps, lambda i, y: step(field, y, i * dt, dt), y)
    return float(y["x"])


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_measured_order_is_the_stated_order(name, x64):
    errors = [abs(solve(name, n) - exact(2.0)) for n in (40, 80, 160)]
    slopes = -np.diff(np.log(errors)) / np.log(2.0)
    assert slopes == pytest.approx([INTEGRATORS[name].order] * 2, abs=0.15), errors


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_float32_in_float32_out(name):
    y = {"x": jnp.ones(3, jnp.float32), "v": jnp.zeros(3, jnp.float32)}
    out = INTEGRATORS[name].step(field, y, jnp.float32(0.0), jnp.float32(0.1))
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(out))


def test_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"method must be one of \['euler', 'heun', 'rk2', 'rk4'\]"):
        get_integrator("rk45")
    with pytest.raises(ValueError, match=r"method must be one of \['euler', 'rk4'\], got 'heun'"):
        get_integrator("heun", allowed=("euler", "rk4"))
