"""The host (numpy) path of small ridge fits: the same numbers as the jitted kernels, and no
compilation at all (what makes a notebook-sized first call fast)."""

from __future__ import annotations

import numpy as np
import pytest

from brainmodels.encoders import BandedRidgeEncoder, RidgeEncoder, _host
from brainmodels.testing import compilations

ALPHAS = np.logspace(-2, 4, 9)


def _data(n, p, v, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    # an ill-conditioned design (condition number ~1e3), as real features are
    X[:, : p // 2] *= np.logspace(0, -3, p // 2, dtype=np.float32)
    Y = (X @ rng.standard_normal((p, v)) + rng.standard_normal((n, v))).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("cv", ["loo", 4])
@pytest.mark.parametrize("solver", ["svd", "primal", "dual"])
@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_host_path_equals_the_jitted_kernels(monkeypatch, cv, solver, scoring):
    """Same alphas chosen, CV scores and coefficients within float32 error of the jitted path
    (the host decomposes in float64 and multiplies in float32; the jitted path decomposes in
    float32 for svd): 1e-4 relative on scores and coefficients, measured up to 2e-5."""
    X, Y = _data(120, 12, 40)
    kw = dict(alphas=ALPHAS, cv=cv, solver=solver, scoring=scoring, voxel_batch=16)
    host = RidgeEncoder(**kw).fit(X, Y)
    monkeypatch.setattr(_host, "HOST_MAX_DESIGN", 0)  # every design to the jitted kernels
    jitted = RidgeEncoder(**kw).fit(X, Y)
    assert (host.alphas_ == jitted.alphas_).mean() >= 0.95  # near-ties may flip
    np.testing.assert_allclose(host.cv_scores_, jitted.cv_scores_, rtol=1e-4, atol=1e-4)
    same = host.alphas_ == jitted.alphas_
    scale = np.abs(jitted.coef_).max()
    np.testing.assert_allclose(host.coef_[:, same], jitted.coef_[:, same], rtol=0,
                               atol=1e-4 * scale)


def test_a_small_fit_compiles_nothing():
    """300 samples x 10 features x 300 voxels, 5-fold and LOO, plain and banded: no XLA
    compilation (the host path), whatever the shapes seen before."""
    X, Y = _data(300, 10, 300, seed=1)
    with compilations() as compiled:
        RidgeEncoder(alphas=ALPHAS, cv=5).fit(X, Y).predict(X)
        RidgeEncoder(alphas=ALPHAS, cv="loo").fit(X, Y)
        BandedRidgeEncoder(alphas=ALPHAS, cv=5, n_iter=4).fit([X[:, :4], X[:, 4:]], Y)
    assert compiled.count == 0, compiled.names


def test_the_choice_depends_on_the_design_not_on_the_voxels():
    assert _host.use_host(300, 10, None) and _host.use_host(300, 10, None)
    assert not _host.use_host(3000, 512, None)
    assert not _host.use_host(300, 10, mesh=object())  # a device mesh: the jitted kernels


def test_ridge_users_do_not_import_flax_or_optax():
    """The gradient-trained encoders load on first use: importing the package and fitting a
    small ridge leaves flax and optax unimported (~0.4 s of a cold start), and the lazy names
    still import."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from brainmodels.encoders import RidgeEncoder\n"
            "RidgeEncoder(alphas=[1.0], cv=3).fit(np.ones((12, 2)) + np.eye(12, 2), np.eye(12, 3))\n"
            "print(sorted(m for m in ('flax', 'optax') if m in sys.modules))\n"
            "from brainmodels.encoders import AttentionRoutingEncoder, InContextEncoder\n"
            "print('flax' in sys.modules, InContextEncoder.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split("\n")
    assert out[0] == "[]", out
    assert out[1] == "True InContextEncoder", out
