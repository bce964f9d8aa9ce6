"""Numerics of brainmodels.kuramoto: integrator orders, scipy reference, implementations agree,
exact small systems, compilation, data convention and errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.sparse
import xarray as xr
from jax.experimental import sparse as jsparse

from brainmodels import kuramoto as km
from brainmodels.data import load_netcdf, save_netcdf
from brainmodels.integrators import INTEGRATORS
from brainmodels.kuramoto import engine
from brainmodels.testing import compilations


def _angle_diff(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


def _rhs_numpy(t, theta, omega, k, adj, lag, forcing, f_freq, f_phase):
    """Pairwise reference: K sum_j A_ij sin(theta_j - theta_i - alpha) + F sin(Omega t + phi - theta)."""
    diff = theta[None, :] - theta[:, None] - lag
    return (omega + k * np.sum(adj * np.sin(diff), axis=1)
            + forcing * np.sin(f_freq * t + f_phase - theta))


@pytest.fixture(scope="module")
def small_system():
    rng = np.random.default_rng(5)
    n = 12
    adj = rng.random((n, n)) * (rng.random((n, n)) < 0.5)  # weighted, directed
    return dict(n=n, omega=rng.normal(0.0, 1.0, n), theta0=rng.uniform(-np.pi, np.pi, n),
                adj=adj, k=1.3, lag=0.4, forcing=0.7, f_freq=0.9, f_phase=0.2)


def _scipy_reference(sysd, t_end, adj=None):
    adj = np.full((sysd["n"],) * 2, 1.0 / sysd["n"]) if adj is None else adj
    sol = scipy.integrate.solve_ivp(
        _rhs_numpy, (0.0, t_end), sysd["theta0"], method="DOP853", rtol=1e-13, atol=1e-13,
        args=(sysd["omega"], sysd["k"], adj, sysd["lag"], sysd["forcing"], sysd["f_freq"],
              sysd["f_phase"]))
    return sol.y[:, -1]


def _params(sysd, adjacency):
    return km.KuramotoParams(coupling=sysd["k"], omega=sysd["omega"], adjacency=adjacency,
                             lag=sysd["lag"], forcing=sysd["forcing"],
                             forcing_frequency=sysd["f_freq"], forcing_phase=sysd["f_phase"])


# ----------------------------------------------------------------------------- integrators


@pytest.mark.parametrize(("method", "dts"), [
    ("euler", [0.02, 0.01, 0.005]),
    ("heun", [0.1, 0.05, 0.025]),
    ("rk4", [0.2, 0.1, 0.05]),
])
def test_convergence_order(small_system, method, dts, x64):
    """Global error ~ dt^p against a DOP853 (rtol 1e-13) solution, float64, forced + lagged."""
    t_end = 2.0
    ref = _scipy_reference(small_system, t_end)
    errors = []
    for dt in dts:
        ds = km.simulate(_params(small_system, None), small_system["theta0"], dt=dt,
                         steps=round(t_end / dt), record_every=round(t_end / dt), method=method)
        errors.append(_angle_diff(ds.phase.values[-1], ref).max())
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    # measured orders come out within ~0.1 of the nominal ones in this asymptotic range
    assert slope == pytest.approx(INTEGRATORS[method].order, abs=0.25), (errors, slope)


def test_network_matches_scipy_pairwise(small_system, x64):
    """Weighted directed network + lag + forcing: RK4 vs scipy DOP853 on the pairwise sum."""
    t_end, dt = 3.0, 0.005
    ref = _scipy_reference(small_system, t_end, adj=small_system["adj"])
    ds = km.simulate(_params(small_system, small_system["adj"]), small_system["theta0"], dt=dt,
                     steps=600, record_every=600)
    # RK4 global error ~ C dt^4 ~ 1e-9 here; 1e-8 leaves a margin
    assert _angle_diff(ds.phase.values[-1], ref).max() < 1e-8


def test_all_implementations_agree(small_system, x64):
    """Mean field == dense ones/N == BCOO == EdgeList == scipy.sparse (same vector field),
    and a sparse network run equals the dense one (same equations, different summation)."""
    n = small_system["n"]
    ones = np.full((n, n), 1.0 / n)
    adjacencies = {
        "mean field": None, "dense": ones, "bcoo": jsparse.BCOO.fromdense(jnp.asarray(ones)),
        "edges": km.edge_list(ones), "scipy": scipy.sparse.csr_matrix(ones),
    }
    thetas = np.random.default_rng(1).uniform(-np.pi, np.pi, (3, n))
    ref = np.array([_rhs_numpy(0.7, th, small_system["omega"], small_system["k"], ones,
                               small_system["lag"], small_system["forcing"],
                               small_system["f_freq"], small_system["f_phase"]) for th in thetas])
    for name, adjacency in adjacencies.items():
        params = km.params._prepare(_params(small_system, adjacency), n, jnp.float64)
        got = np.array([engine.velocity(params, jnp.asarray(th), 0.7) for th in thetas])
        # float64 round-off of an O(1) sum of 12 terms
        np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=name)
    run = dict(dt=0.01, steps=300, record_every=100, method="euler")
    adj = small_system["adj"]
    dense = km.simulate(_params(small_system, adj), small_system["theta0"], **run)
    sparse = km.simulate(_params(small_system, scipy.sparse.coo_matrix(adj)),
                         small_system["theta0"], **run)
    assert _angle_diff(sparse.phase.values, dense.phase.values).max() < 1e-10


def test_float32_default_close_to_float64(small_system):
    """Default float32 run tracks the float64 reference to ~1e-4 over t = 2."""
    ref = _scipy_reference(small_system, 2.0)
    ds = km.simulate(_params(small_system, None), small_system["theta0"], dt=0.01, steps=200)
    assert ds.phase.dtype == np.float32
    # float32 round-off (~6e-8 per op) accumulated over 200 steps, amplified by the dynamics
    assert _angle_diff(ds.phase.values[-1], ref).max() < 2e-4


# ----------------------------------------------------------------------------- exact small systems


def test_two_identical_oscillators_phase_lock(x64):
    """N = 2, equal omega: Delta' = -K sin(Delta), tan(Delta/2) = tan(Delta0/2) e^{-K t}."""
    k, delta0 = 1.5, 2.0
    ds = km.simulate(km.KuramotoParams(coupling=k, omega=np.full(2, 0.7)),
                     np.array([0.0, delta0]), dt=0.01, steps=800, record_every=10)
    delta = ds.phase.values[:, 1] - ds.phase.values[:, 0]
    expected = 2 * np.arctan(np.tan(delta0 / 2) * np.exp(-k * ds.time.values))
    # RK4 with dt = 0.01: error ~1e-10; the locked state has r = 1
    assert _angle_diff(delta, expected).max() < 1e-8
    assert ds.order_parameter.values[-1] == pytest.approx(1.0, abs=1e-5)


def test_two_different_oscillators_lock_at_arcsin():
    """|omega_1 - omega_2| < K: locked phase difference arcsin(d omega / K) (float32)."""
    k, d_omega = 2.0, 1.2
    ds = km.simulate(km.KuramotoParams(coupling=k, omega=np.array([-d_omega / 2, d_omega / 2])),
                     np.zeros(2), dt=0.05, steps=400)
    delta = ds.phase.values[-1, 1] - ds.phase.values[-1, 0]
    assert _angle_diff(delta, math.asin(d_omega / k)) < 1e-4  # float32 fixed point


def test_forcing_adler_locking_and_beating():
    """One uncoupled oscillator under F sin(Omega t - theta): mean frequency from Adler's law."""
    f, big_omega = 1.0, 0.5
    omega = np.array([0.2, 1.2, 3.0])  # detunings -0.3, 0.7 (locked), 2.5 (drifts)
    dt, steps = 0.02, 20_000
    ds = km.simulate(km.KuramotoParams(coupling=0.0, omega=omega, forcing=f,
                                       forcing_frequency=big_omega),
                     np.zeros(3), dt=dt, steps=steps, record_every=5)
    unwrapped = np.unwrap(ds.phase.values, axis=0)
    mean_freq = (unwrapped[-1] - unwrapped[0]) / (dt * steps)
    detune = omega - big_omega
    beat = np.sign(detune) * np.sqrt(np.clip(detune**2 - f**2, 0, None))
    # a partial beat period at the end biases the estimate by < 2 pi / T = 0.016
    np.testing.assert_allclose(mean_freq, big_omega + beat, atol=0.02)


def test_noise_needs_key_and_is_reproducible():
    p = km.KuramotoParams(coupling=1.0, omega=np.zeros(50), noise=0.1)
    with pytest.raises(ValueError, match="key"):
        km.simulate(p, np.zeros(50), steps=10, record_every=5)
    a = km.simulate(p, np.zeros(50), steps=10, record_every=5, key=jax.random.key(1))
    b = km.simulate(p, np.zeros(50), steps=10, record_every=5, key=jax.random.key(1))
    c = km.simulate(p, np.zeros(50), steps=10, record_every=5, key=jax.random.key(2))
    np.testing.assert_array_equal(a.phase.values, b.phase.values)
    assert np.abs(a.phase.values - c.phase.values).max() > 1e-3


# ----------------------------------------------------------------------------- measures


def test_order_parameter_numpy_and_xarray():
    theta = np.array([[0.0, 0.0, 0.0], [0.0, 2 * np.pi / 3, 4 * np.pi / 3], [0.3, 0.5, 0.4]])
    r, psi = km.order_parameter(theta)
    np.testing.assert_allclose(r[:2], [1.0, 0.0], atol=1e-12)
    # three phases symmetric about 0.4: psi = 0.4, r = (1 + 2 cos 0.1) / 3
    assert psi[2] == pytest.approx(0.4) and r[2] == pytest.approx((1 + 2 * math.cos(0.1)) / 3)
    da = xr.DataArray(theta, dims=("time", "oscillator"), coords={"time": [0.0, 1.0, 2.0]})
    r_da, psi_da = km.order_parameter(da)
    assert r_da.dims == ("time",) and np.allclose(r_da.values, r)
    assert np.allclose(psi_da.time.values, [0.0, 1.0, 2.0])


def test_local_order_two_cliques():
    """Two disconnected synchronised cliques in antiphase: local r = 1, global r = 0."""
    n = 10
    adj = np.zeros((n, n))
    adj[:5, :5] = adj[5:, 5:] = 1.0
    theta = np.r_[np.full(5, 0.3), np.full(5, 0.3 + np.pi)]
    local = km.local_order(theta, adj)
    np.testing.assert_allclose(local, 1.0, atol=1e-6)
    assert km.order_parameter(theta)[0] < 1e-6
    np.testing.assert_allclose(km.local_order(theta, km.edge_list(adj)), local, atol=1e-6)
    # random phases: matches the direct formula |sum_j A_ij e^{i theta_j}| / sum_j |A_ij|
    rng = np.random.default_rng(0)
    w = rng.random((n, n))
    th = rng.uniform(-np.pi, np.pi, (3, n))
    direct = np.abs(np.exp(1j * th) @ w.T) / w.sum(1)
    np.testing.assert_allclose(km.local_order(th, scipy.sparse.csr_matrix(w)), direct, atol=1e-5)


def test_frequency_quantiles_and_samples():
    omega = np.asarray(km.natural_frequencies(1001, "gaussian", width=2.0, center=1.0))
    assert np.all(np.diff(omega) > 0) and omega[500] == pytest.approx(1.0, abs=1e-6)
    assert np.std(omega) == pytest.approx(2.0, rel=0.01)  # quantile std -> sigma
    u = np.asarray(km.natural_frequencies(4, "uniform", width=1.0))
    np.testing.assert_allclose(u, [-0.75, -0.25, 0.25, 0.75], atol=1e-7)
    draws = np.asarray(km.natural_frequencies(20_000, "lorentzian", width=0.5,
                                              key=jax.random.key(0)))
    # sample median |omega| of a Cauchy(0, gamma) is gamma; 3 s.e. ~ 0.02
    assert np.median(np.abs(draws)) == pytest.approx(0.5, abs=0.02)


def test_initial_phases_order_parameter():
    theta = km.initial_phases(5000, key=jax.random.key(0), r0=0.3)
    r, psi = km.order_parameter(np.asarray(theta))
    assert r == pytest.approx(0.3, abs=1e-4) and abs(psi) < 1e-3  # quantiles: O(1/N)


# ----------------------------------------------------------------------------- sweep, jit, data


def test_sweep_matches_simulate_and_labels():
    omega = km.natural_frequencies(300, "lorentzian", width=0.5)
    ds = km.sweep([0.5, 2.0, 3.0], omega=omega, seeds=[0, 1], dt=0.05, steps=100,
                  record_every=20)
    assert ds.order_parameter.dims == ("coupling", "seed", "time")
    np.testing.assert_allclose(ds.time.values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    # the same run through simulate (seed 1 -> its own initial phases)
    _, k_theta, _ = jax.random.split(jax.random.PRNGKey(1), 3)
    theta0 = km.dynamics._initial_phases(k_theta, 300, jnp.asarray(0.0))
    one = km.simulate(km.KuramotoParams(coupling=2.0, omega=omega), theta0, dt=0.05, steps=100,
                      record_every=20)
    # float32; identical ops up to vmap batching (reduction order): 1e-5
    np.testing.assert_allclose(ds.order_parameter.sel(coupling=2.0, seed=1).values,
                               one.order_parameter.values, atol=1e-5)
    assert ds.attrs["model"] == "kuramoto.sweep"


def test_sweep_theory_curve_attached():
    ds = km.sweep([0.5, 3.0], n=100, distribution="gaussian", width=1.0, seeds=[0], steps=20,
                  record_every=10, sampling="random")
    np.testing.assert_allclose(ds.order_parameter_theory.values,
                               km.stationary_order_parameter([0.5, 3.0], "gaussian"), atol=1e-6)
    assert ds.attrs["critical_coupling"] == pytest.approx(math.sqrt(8 / math.pi))
    assert "natural_frequency" not in ds  # random frequencies differ per seed


def test_second_call_does_not_recompile():
    omega = np.linspace(-1, 1, 64)
    km.simulate(km.KuramotoParams(coupling=1.0, omega=omega), np.zeros(64), steps=20)
    with compilations() as compiled:
        km.simulate(km.KuramotoParams(coupling=2.5, omega=omega * 2, lag=0.3), np.ones(64),
                    steps=20, dt=0.01)
    assert compiled.count == 0, compiled.names


def test_xarray_in_and_netcdf_round_trip(tmp_path):
    theta0 = xr.DataArray(np.zeros(4), dims=("oscillator",),
                          coords={"oscillator": ["a", "b", "c", "d"]})
    ds = km.simulate(km.KuramotoParams(coupling=1.0, omega=np.arange(4.0)), theta0, steps=20)
    assert list(ds.oscillator.values) == ["a", "b", "c", "d"]
    assert ds.attrs["params"]["coupling"] == 1.0 and ds.attrs["model"] == "kuramoto"
    back = load_netcdf(save_netcdf(ds, tmp_path / "k.nc"))
    xr.testing.assert_identical(back, ds)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(dt=-0.1), "dt must be a positive"),
    (dict(dt=float("nan")), "dt must be a positive"),
    (dict(steps=10, record_every=3), "record_every must be a positive integer dividing"),
    (dict(method="rk45"), "method must be one of"),
    (dict(steps=0), "steps must be a positive integer"),
])
def test_bad_run_arguments(kwargs, match):
    p = km.KuramotoParams(coupling=1.0, omega=np.zeros(3))
    with pytest.raises(ValueError, match=match):
        km.simulate(p, np.zeros(3), **{"steps": 10, "record_every": 5, **kwargs})


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"omega must have shape \(3,\)"):
        km.simulate(km.KuramotoParams(coupling=1.0, omega=np.zeros(4)), np.zeros(3))
    with pytest.raises(ValueError, match="omega must be finite"):
        km.simulate(km.KuramotoParams(coupling=1.0, omega=np.array([0.0, np.nan])), np.zeros(2))
    with pytest.raises(ValueError, match="adjacency must have shape"):
        km.simulate(km.KuramotoParams(coupling=1.0, omega=np.zeros(3), adjacency=np.ones((2, 2))),
                    np.zeros(3))
    with pytest.raises(ValueError, match="noise must be >= 0"):
        km.simulate(km.KuramotoParams(coupling=1.0, omega=np.zeros(3), noise=-1.0), np.zeros(3))
    with pytest.raises(ValueError, match="distribution must be one of"):
        km.critical_coupling("cauchy")
    with pytest.raises(ValueError, match="lorentzian' only"):
        km.stationary_order_parameter(2.0, "gaussian", lag=0.1)
    with pytest.raises(ValueError, match="sweep needs n="):
        km.sweep([1.0])


def test_fast_float32_sincos_and_wrap():
    """The vectorised float32 sin/cos and the phase wrap against float64 numpy."""
    x = np.linspace(-700.0, 700.0, 200_001).astype(np.float32)
    c, s = jax.jit(engine.sincos)(jnp.asarray(x))
    # Cephes-style polynomials: a few float32 ulps of 1 (eps = 1.2e-7); measured 9e-8
    np.testing.assert_allclose(np.asarray(c), np.cos(x.astype(np.float64)), atol=3e-7)
    np.testing.assert_allclose(np.asarray(s), np.sin(x.astype(np.float64)), atol=3e-7)
    w = np.asarray(jax.jit(engine.wrap)(jnp.asarray(x)))
    assert np.all(np.abs(w) <= np.pi + 1e-6)
    # same angle: the float32 input itself carries up to ulp(700) / 2 = 3e-5 of rounding
    assert _angle_diff(w.astype(np.float64), x.astype(np.float64)).max() < 5e-5


def test_fast_float64_sincos(x64):
    """The vectorised float64 sin/cos (Taylor polynomials after a three-part reduction by
    pi/2) against numpy: within 2 ulp of 1 (eps = 2.2e-16; measured 1.1e-16) from tiny to
    |x| = 1e6, and exact at the quadrant boundaries' signs."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-1e6, 1e6, 400_001), rng.uniform(-20, 20, 200_000),
                        np.arange(-8, 9) * np.pi / 4, [0.0, 1e-300, -1e-300]])
    c, s = jax.jit(engine.sincos)(jnp.asarray(x))
    assert c.dtype == jnp.float64
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(np.asarray(c), np.cos(x), rtol=0, atol=2 * eps)
    np.testing.assert_allclose(np.asarray(s), np.sin(x), rtol=0, atol=2 * eps)


def test_network_critical_coupling_accepts_every_format():
    rng = np.random.default_rng(3)
    upper = np.triu(rng.random((30, 30)) < 0.3, 1)
    adj = (upper | upper.T).astype(np.float64)
    lam = np.linalg.eigvalsh(adj)[-1]
    for a in (adj, scipy.sparse.csr_matrix(adj), km.edge_list(adj),
              jsparse.BCOO.fromdense(jnp.asarray(adj))):
        # float32 weights in EdgeList/BCOO: relative 1e-6
        assert km.critical_coupling("gaussian", width=1.0, adjacency=a) == pytest.approx(
            math.sqrt(8 / math.pi) / lam, rel=1e-6)


def test_sweep_takes_the_model_as_kuramoto_params():
    """The lag, noise, forcing and adjacency of a sweep come in one KuramotoParams (not
    re-spelled keywords); the frequencies are given once."""
    omega = np.linspace(-1, 1, 50)
    run = dict(seeds=[0], steps=40, record_every=10)
    lagged = km.sweep([1.0, 2.0], params=km.KuramotoParams(coupling=0.0, omega=omega, lag=0.4),
                      **run)
    plain = km.sweep([1.0, 2.0], omega=omega, **run)
    assert lagged.attrs["params"]["lag"] == pytest.approx(0.4)
    assert plain.attrs["params"]["lag"] == 0.0
    assert not np.allclose(lagged.mean_phase.values, plain.mean_phase.values)
    with pytest.raises(ValueError, match="give the natural frequencies once"):
        km.sweep([1.0], params=km.KuramotoParams(coupling=0.0, omega=omega), omega=omega)
    with pytest.raises(TypeError, match="params"):  # (the typecheck hook words it in tests)
        km.sweep([1.0], params={"lag": 0.4}, n=10)
