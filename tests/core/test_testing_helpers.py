"""brainmodels.testing: eps-based tolerances and the compilation counter the suite relies on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels.testing import assert_close, compilations, eps


def test_eps_is_numpys():
    assert eps(np.float32) == np.finfo(np.float32).eps
    assert eps("float64") == np.finfo(np.float64).eps
    assert eps(np.int32) == np.finfo(np.float32).eps


def test_assert_close_counts_ulps_of_the_actual_dtype():
    x = np.linspace(1.0, 2.0, 5, dtype=np.float32)
    one_ulp_up = np.nextafter(x, np.float32(3.0))
    assert_close(one_ulp_up, x, ulps=2)  # 1 ulp of x near 2 is 2 eps * |x| <= 2 eps * max
    with pytest.raises(AssertionError, match=r"differ by more than 0.5 ulps"):
        assert_close(x + np.float32(4 * eps(np.float32)), x, ulps=0.5)
    # the same absolute error is far beyond a float64 yardstick
    with pytest.raises(AssertionError):
        assert_close(one_ulp_up.astype(np.float64), x.astype(np.float64), ulps=100)


def test_assert_close_scales_and_nans():
    d = np.array([1e-6, 1.0, 1e6])
    a = d * (1 + 2 * eps(np.float64))
    assert_close(a, d, ulps=3, scale="element")
    with pytest.raises(AssertionError):
        assert_close(d + 1e-9, d, ulps=3, scale="element")  # 1e-9 is huge next to 1e-6
    assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), ulps=1)
    with pytest.raises(AssertionError):
        assert_close(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), ulps=1)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_close(np.ones(3), np.ones((3, 1)), ulps=1)


def test_compilations_counts_new_shapes_only():
    f = jax.jit(lambda x: jnp.sin(x) * 2.0)
    x3, x4 = jnp.ones(3), jnp.ones(4)
    f(x3)
    with compilations() as c:
        f(x3)
        f(x3 + 0)  # eager add compiles once (not f)
        f(x4)
    assert c.count == 2 and "jit(<lambda>)" in c.names
