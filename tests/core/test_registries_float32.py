"""One float32-in, float32-out check over every registry of the package (as optax's alias
tests do), run under JAX's strict dtype promotion: no entry silently widens a float32 input
to float64 or mixes dtypes inside."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels import rsa
from brainmodels.integrators import INTEGRATORS
from brainmodels.snn.surrogate import SURROGATES

F32 = np.float32


def _dtype(out):
    values = getattr(out, "values", out)
    return np.asarray(values).dtype


@pytest.fixture(scope="module")
def patterns():
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 12, 20)).astype(F32)  # runs x conditions x channels


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_integrators(name, strict_dtypes):
    y = (jnp.ones(4, F32), jnp.zeros(4, F32))
    out = INTEGRATORS[name].step(lambda y, t: (y[1], -y[0]), y, F32(0.0), F32(0.01))
    assert [a.dtype for a in out] == [F32, F32]


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogates_forward_and_gradient(name, strict_dtypes):
    x = jnp.linspace(-1, 1, 9, dtype=F32)
    spike = SURROGATES[name]
    assert spike(x).dtype == F32
    assert jax.grad(lambda v: spike(v).sum())(x).dtype == F32


@pytest.mark.parametrize("metric", sorted(rsa.RDM_METRICS))
def test_rdm_metrics(metric, patterns, strict_dtypes):
    kw = {}
    if metric in ("crossnobis", "cv_euclidean", "poisson_cv"):
        kw["runs"] = np.repeat([0, 1], 12)
        X = patterns.reshape(24, 20)
        kw["conditions"] = np.tile(np.arange(12), 2)
    else:
        X = patterns[0]
    if metric == "poisson" or metric == "poisson_cv":
        X = np.abs(X) + F32(0.1)
    out = rsa.rdm(X, metric, **kw)
    assert _dtype(out) == F32


@pytest.mark.parametrize("method", sorted(rsa.COMPARE_METHODS))
def test_comparison_methods(method, patterns, strict_dtypes):
    # stacks of RDMs, so the result is an array (a single comparison returns a Python float)
    a = rsa.rdm(patterns, "euclidean")
    b = rsa.rdm(patterns[::-1], "euclidean")
    assert _dtype(rsa.compare_rdms(a, b, method)) == F32


@pytest.mark.parametrize("kernel", sorted(rsa.CKA_KERNELS))
def test_cka_kernels(kernel, patterns, strict_dtypes):
    assert _dtype(rsa.cka(patterns, patterns[::-1], kernel)) == F32
