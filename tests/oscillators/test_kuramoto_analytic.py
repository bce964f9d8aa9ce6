"""Analytic anchors of the Kuramoto model (N -> inf theory) at N = 2 * 10^4.

Frequencies are deterministic quantiles omega_k = G^-1((k - 1/2) / N), which removes the
sampling noise; the remaining finite-N fluctuations of r are O(1/sqrt(N)) ~ 0.007 and are
averaged over the last part of each run. All stationary cases run in ONE vmapped, jitted call
(module fixture) to stay inside the test-time budget.

References: Kuramoto (1984); Strogatz (2000) eq. 6; Sakaguchi & Kuramoto (1986);
Ott & Antonsen (2008) eq. 11; Strogatz & Mirollo (1991); Restrepo, Ott & Hunt (2005) eq. 9.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.special

from brainmodels import kuramoto as km
from brainmodels.kuramoto import theory as _kuramoto_theory

N = 20_000
GAMMA = 0.5  # Lorentzian half-width: K_c = 1
SIGMA = 1.0  # Gaussian: K_c = sqrt(8 / pi) = 1.596
ALPHA = 0.6  # Sakaguchi lag: K_c = 2 gamma / cos(alpha) = 1.211

# (distribution, K, lag); stationary r from theory, all run together
CASES = [
    ("lorentzian", 0.5, 0.0), ("lorentzian", 2.0, 0.0), ("lorentzian", 4.0, 0.0),
    ("lorentzian", 1.05, ALPHA), ("lorentzian", 3.0, ALPHA),
    ("gaussian", 1.0, 0.0), ("gaussian", 1.7, 0.0), ("gaussian", 2.0, 0.0),
    ("gaussian", 3.0, 0.0),
]
WIDTH = {"lorentzian": GAMMA, "gaussian": SIGMA}


@pytest.fixture(scope="module")
def stationary():
    """Time-averaged r over the last 12 time units of a 48-unit RK4 run (dt = 0.2).

    dt = 0.2 is enough: halving it changes the averages by < 5e-4; from r0 = 0.6 the slowest
    case (lag, K = 1.05: decay rate 2 gamma - K cos(alpha) = 0.13) is at r ~ 0.005 by t = 36.
    """
    omegas = jnp.stack([km.natural_frequencies(N, d, width=WIDTH[d]) for d, _, _ in CASES])
    ks = jnp.asarray([k for _, k, _ in CASES])
    lags = jnp.asarray([a for _, _, a in CASES])
    theta0 = km.initial_phases(N, key=jax.random.key(1), r0=0.6)

    @jax.jit
    def run(omegas, ks, lags):
        def one(omega, k, lag):
            p = km.KuramotoParams(coupling=k, omega=omega, lag=lag)
            return km.integrate(p, theta0, dt=0.2, steps=240, record_every=4,
                                record_phase=False)[1]
        return jax.vmap(one)(omegas, ks, lags)

    r = np.asarray(run(omegas, ks, lags))  # (case, time); record step 0.8
    return {case: float(r[i, -15:].mean()) for i, case in enumerate(CASES)}


def _case(dist, k, lag=0.0):
    return dist, k, lag


# ----------------------------------------------------------------------------- theory values


def test_critical_couplings():
    assert km.critical_coupling("lorentzian", width=GAMMA) == pytest.approx(2 * GAMMA)
    assert km.critical_coupling("gaussian", width=SIGMA) == pytest.approx(
        SIGMA * math.sqrt(8 / math.pi))
    assert km.critical_coupling("uniform", width=2.0) == pytest.approx(8 / math.pi)
    assert km.critical_coupling("lorentzian", width=GAMMA, lag=ALPHA) == pytest.approx(
        2 * GAMMA / math.cos(ALPHA))
    # noise: K_c = 2 / int g D/(D^2+w^2); Lorentzian closed form 2 (gamma + D)
    assert km.critical_coupling("lorentzian", width=GAMMA, noise=0.3) == pytest.approx(1.6)
    # the quadrature route on a Gaussian tends to the noiseless value as D -> 0
    assert km.critical_coupling("gaussian", width=1.0, noise=1e-4) == pytest.approx(
        math.sqrt(8 / math.pi), rel=1e-3)


def test_gaussian_self_consistency_values():
    # values quoted in the issue (3 decimals) for sigma = 1
    r = km.stationary_order_parameter([1.5, 1.7, 2.0, 3.0], "gaussian", width=1.0)
    np.testing.assert_allclose(r, [0.0, 0.425, 0.715, 0.925], atol=6e-4)
    # the quadrature route on a Lorentzian reproduces the closed form: r = sqrt(1 - 2 gamma / K)
    k = np.array([1.5, 3.0])
    dist = km.DISTRIBUTIONS["lorentzian"]
    r_numeric = [scipy.optimize.brentq(_kuramoto_theory._self_consistency_gap, 1e-6, 1.0,
                                       args=(kk, dist, GAMMA)) for kk in k]
    np.testing.assert_allclose(r_numeric, np.sqrt(1 - 2 * GAMMA / k), atol=1e-7)


def test_uniform_first_order_jump():
    kc = km.critical_coupling("uniform", width=1.0)
    below, above = km.stationary_order_parameter([0.999 * kc, 1.001 * kc], "uniform")
    # Pazo (2005): r jumps from 0 to pi/4 at K_c for the uniform density
    assert below == 0.0 and above == pytest.approx(math.pi / 4, abs=0.02)


# ----------------------------------------------------------------------------- simulations


@pytest.mark.parametrize("k", [2.0, 4.0])
def test_lorentzian_stationary_r(stationary, k):
    # issue: within 0.01 at N = 2e4 (observed error ~1e-3)
    assert stationary[_case("lorentzian", k)] == pytest.approx(math.sqrt(1 - 2 * GAMMA / k),
                                                               abs=0.01)


def test_lorentzian_incoherent_below_kc(stationary):
    # incoherent state: r = O(1/sqrt(N)) = 0.007; 0.03 leaves room for slow fluctuations
    assert stationary[_case("lorentzian", 0.5)] < 0.03


@pytest.mark.parametrize("k", [1.7, 2.0, 3.0])
def test_gaussian_stationary_r(stationary, k):
    expected = km.stationary_order_parameter(k, "gaussian", width=SIGMA)
    # 0.01 as for the Lorentzian; K = 1.7 is close to K_c = 1.596 but still observed ~1e-3
    assert stationary[_case("gaussian", k)] == pytest.approx(float(expected), abs=0.01)


def test_gaussian_incoherent_below_kc(stationary):
    assert stationary[_case("gaussian", 1.0)] < 0.03  # K_c = 1.596; floor O(1/sqrt(N))


def test_sakaguchi_lag(stationary):
    k_above = 3.0
    r_theory = math.sqrt(1 - 2 * GAMMA / (k_above * math.cos(ALPHA)))
    assert stationary[_case("lorentzian", k_above, ALPHA)] == pytest.approx(r_theory, abs=0.01)
    # K = 1.05 is above 2 gamma = 1 but below K_c = 2 gamma / cos(alpha) = 1.21: incoherent
    assert stationary[_case("lorentzian", 1.05, ALPHA)] < 0.03


def test_ott_antonsen_transient():
    """From the OA manifold (wrapped-Cauchy phases independent of omega) r(t) follows eq. 11."""
    omega = km.natural_frequencies(N, "lorentzian", width=GAMMA)
    out = {}
    for k, r0 in [(2.5, 0.05), (0.6, 0.5)]:
        ds = km.sweep([k], omega=omega, seeds=[3], r0=r0, dt=0.1, steps=200, record_every=5)
        r_sim = ds.order_parameter.isel(coupling=0, seed=0).values
        out[k] = np.abs(r_sim - km.ott_antonsen_order_parameter(
            ds.time.values, k, width=GAMMA, r0=r0)).max()
    # observed max deviations ~0.014 for both. Growth from r0 = 0.05 amplifies the
    # O(1/sqrt(N)) = 0.007 deviations from the OA manifold by e^{(K/2 - gamma) t}: 0.03; the
    # decaying run ends on the finite-N incoherent floor (r ~ 0.01, theory -> 0): 0.025
    assert out[2.5] < 0.03
    assert out[0.6] < 0.025


def test_noise_identical_oscillators():
    """Identical oscillators with noise D: r = I1(K r / D) / I0(K r / D) (K_c = 2 D)."""
    d, n = 0.5, 5000
    ds = km.sweep([0.5, 2.0], params=km.KuramotoParams(coupling=0.0, omega=np.zeros(n),
                                                       noise=d), seeds=[0], r0=0.9, dt=0.05,
                  steps=800, record_every=20, method="euler")
    r = ds.order_parameter.isel(seed=0, time=slice(-20, None)).mean("time").values

    def gap(x):
        return scipy.special.i1e(2.0 * x / d) / scipy.special.i0e(2.0 * x / d) - x

    r_theory = scipy.optimize.brentq(gap, 1e-3, 1.0)
    # EM bias O(dt) plus finite-N fluctuations O(1/sqrt(N)) = 0.014 (time-averaged): 0.02
    assert r[1] == pytest.approx(r_theory, abs=0.02)
    assert r[0] < 0.06  # K = 0.5 < K_c = 1: incoherent, r = O(1/sqrt(N))


def test_noise_diffusion_rate():
    """Uncoupled phases from theta = 0 with noise D: r(t) = E cos(theta) = exp(-D t)."""
    d = 0.4
    ds = km.simulate(km.KuramotoParams(coupling=0.0, omega=np.zeros(N), noise=d),
                     np.zeros(N), dt=0.05, steps=60, record_every=10, method="euler",
                     key=jax.random.key(7), record_phase=False)
    # Monte-Carlo error of a mean of N cosines: < 1/sqrt(N) = 0.007; 3 sigma
    np.testing.assert_allclose(ds.order_parameter.values, np.exp(-d * ds.time.values), atol=0.021)


def test_restrepo_ott_hunt_network_onset():
    """On an Erdos-Renyi graph the onset is K_c = 2 / (pi g(0) lambda_max(A))."""
    n, p = 1000, 0.06
    rng = np.random.default_rng(11)
    upper = np.triu(rng.random((n, n)) < p, 1)
    adj = (upper | upper.T).astype(np.float64)  # dense: a GEMM beats scatter at this density
    kc = km.critical_coupling("lorentzian", width=GAMMA, adjacency=adj)
    lam = scipy.linalg.eigh(adj, eigvals_only=True)[-1]
    assert kc == pytest.approx(2 * GAMMA / lam, rel=1e-6)
    omega = km.natural_frequencies(n, "lorentzian", width=GAMMA)
    ds = km.sweep(np.array([0.6, 1.6, 3.0]) * kc, omega=omega,
                  params=km.KuramotoParams(coupling=0.0, omega=None, adjacency=adj), seeds=[0],
                  r0=0.3, dt=0.1, steps=400, record_every=10)
    r = ds.order_parameter.isel(seed=0, time=slice(-15, None)).mean("time").values
    # below the predicted onset: incoherent (finite-N floor 1/sqrt(1000) = 0.03)
    assert r[0] < 0.08
    # above it: synchronised, close to the mean-field curve sqrt(1 - K_c/K) with the
    # network's K_c (ER degrees are nearly homogeneous); observed 0.586 / 0.807 against
    # 0.612 / 0.816; 0.1 covers the degree spread and finite N
    np.testing.assert_allclose(r[1:], np.sqrt(1 - 1 / np.array([1.6, 3.0])), atol=0.1)
