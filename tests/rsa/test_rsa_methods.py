"""Every comparison method of the registry: host accelerator == JAX form == rsatoolbox.

One parametrised test over :data:`brainmodels.rsa.methods.COMPARISONS`, in float64 on RDMs of
squared distances between random patterns (12 conditions, 20 channels: full-rank second
moments, as the Riemannian distance needs). Tolerances: closed forms 1e-10 (a few hundred
float64 roundings on O(1) values); the Bures forms 1e-7 (the double-centred second moments
have a null eigenvalue, computed as ~eps |G|, whose square root adds up to ~sqrt(eps) ~ 1.5e-8
per matrix on values of ~3); neg_riem_dist 1e-3 (a Nelder-Mead minimum, rsatoolbox's own stopping tolerance
of 1e-4 on the parameters and the value).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import rsatoolbox

from brainmodels.rsa import compare_rdms
from brainmodels.rsa.methods import COMPARISONS, plain, weighted_plain

RSATOOLBOX_NAME = {"pearson": "corr"}
TOL = {"bures": 1e-7, "bures_metric": 1e-7, "neg_riem_dist": 1e-3}
HOST_ONLY = {"tau-b", "neg_riem_dist"}


@pytest.fixture(scope="module")
def rdms():
    rng = np.random.default_rng(4)
    k = 12
    i, j = np.triu_indices(k, 1)

    def stack(n):
        x = rng.normal(size=(n, k, 20))
        return np.sum((x[:, i] - x[:, j]) ** 2, axis=-1) / 20

    return stack(3), stack(2)


def _rsatoolbox(a, b, method):
    r1 = rsatoolbox.rdm.RDMs(dissimilarities=a)
    r2 = rsatoolbox.rdm.RDMs(dissimilarities=b)
    return rsatoolbox.rdm.compare(r1, r2, method=RSATOOLBOX_NAME.get(method, method))


@pytest.mark.parametrize("method", sorted(COMPARISONS))
def test_host_equals_jax_equals_rsatoolbox(method, rdms, x64):
    a, b = rdms
    rec = COMPARISONS[method]
    sig = np.ones(12)
    ref = _rsatoolbox(a, b, method)
    tol = TOL.get(method, 1e-10)
    got = compare_rdms(a, b, method)
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    if rec.host is not None:
        np.testing.assert_allclose(rec.host(a, b, sig), ref, atol=tol, rtol=0)
    if method in HOST_ONLY:
        with pytest.raises(ValueError, match="runs on the host"):
            jax.jit(lambda x, y: plain(method, x, y, sig))(a, b)
        return
    traced = np.asarray(jax.jit(lambda x, y: plain(method, x, y, sig))(a, b))
    np.testing.assert_allclose(traced, ref, atol=tol, rtol=0)
    if rec.weighted is not None and method != "tau-a":  # the one definition, all-ones weights
        np.testing.assert_allclose(weighted_plain(method, a, b), ref, atol=tol, rtol=0)


def test_sigma_k_only_where_it_applies(rdms):
    a, b = rdms
    with pytest.raises(ValueError, match="sigma_k applies to the whitened methods"):
        compare_rdms(a, b, "spearman", sigma_k=np.ones(12))


def test_methods_without_a_resampled_form_refuse_the_stimulus_bootstrap(rdms):
    from brainmodels.rsa import bootstrap_compare

    a, b = rdms
    with pytest.raises(ValueError, match="has no form for resampled stimuli"):
        bootstrap_compare(a, b, "bures", key=jax.random.key(0), over="stimulus")
