"""Discrete LIF / RSNN dynamics against analytic results and a float64 numpy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from brainmodels.snn.rsnn import RSNN, LIFLayer, draw_time_constants, lif_step, select_neurons
from brainmodels.snn.surrogate import get_surrogate


def _run_single(current, beta, theta, reset, n_steps):
    spike = get_surrogate("fast_sigmoid")
    u, s, out = jnp.zeros(()), jnp.zeros(()), []
    for _ in range(n_steps):
        u, s = lif_step(u, s, current, beta=beta, theta=theta, reset=reset, spike_fn=spike)
        out.append(float(s))
    return np.array(out)


@pytest.mark.parametrize("current", [0.3, 0.55, 1.2])
def test_single_lif_zero_reset_fires_at_the_analytic_rate(current, x64):
    # reset to zero: U_n = I (1 - beta^(n+1)) / (1 - beta) until the first spike at n*, after
    # which the neuron restarts from U = I: period n* + 1 steps (exact, no tolerance)
    beta, theta = np.exp(-1.0 / 10.0), 1.0
    n = np.arange(200)
    n_star = int(np.argmax(current * (1 - beta ** (n + 1)) / (1 - beta) >= theta))
    spikes = _run_single(current, beta, theta, "zero", 200)
    t = np.flatnonzero(spikes)
    assert t[0] == n_star
    np.testing.assert_array_equal(np.diff(t), n_star + 1)


def test_subtract_reset_conserves_charge(x64):
    # beta = 1 (no leak) with reset by subtraction: spikes = floor(total charge / theta)
    spikes = _run_single(0.375, 1.0, 1.0, "subtract", 100)  # exact in binary
    assert spikes.sum() == np.floor(0.375 * 100 / 1.0)


def test_reset_is_detached():
    spike = get_surrogate("fast_sigmoid")
    g = jax.grad(lambda s: lif_step(0.4, s, 0.2, beta=0.9, theta=1.0, reset="subtract",
                                    spike_fn=spike)[0])(1.0)
    assert float(g) == 0.0


def test_heterogeneous_time_constants_follow_scipy_gamma():
    tau = np.asarray(draw_time_constants(20000, key=jax.random.key(0), distribution="gamma",
                                         mean_ms=20.0, cv=0.5, dt_ms=0.1))
    # shape 1/cv^2 = 4, scale mean cv^2 = 5; clipping at dt = 0.1 ms affects < 1e-6 of draws
    ks = scipy.stats.kstest(tau, scipy.stats.gamma(a=4.0, scale=5.0).cdf)
    assert ks.pvalue > 1e-3
    for dist in ("lognormal", "uniform"):
        t = np.asarray(draw_time_constants(20000, key=jax.random.key(1), distribution=dist,
                                           mean_ms=20.0, cv=0.3, dt_ms=0.1))
        # 20000 draws: SE of the mean = 20 * 0.3 / sqrt(20000) ~ 0.04 ms; CV SE ~ 0.002
        assert t.mean() == pytest.approx(20.0, abs=0.2)
        assert t.std() / t.mean() == pytest.approx(0.3, abs=0.01)


def _numpy_rsnn(net, x):
    """Float64 reference of the RSNN equations, written out step by step."""
    w_in, w_rec = np.asarray(net.w_in[...], float), np.asarray(net.effective_w_rec(), float)
    w_out, b, b_out = (np.asarray(a, float) for a in (net.w_out[...], net.b[...], net.b_out[...]))
    beta = np.exp(-net.dt_ms / np.asarray(net.tau_mem_ms[...], float))
    beta_out = np.exp(-net.dt_ms / net.tau_out_ms)
    u = np.zeros((x.shape[0], net.n_hidden))
    s, y = np.zeros_like(u), np.zeros((x.shape[0], net.n_out))
    ys, ss = [], []
    for t in range(x.shape[1]):
        u = beta * u - s * net.threshold + x[:, t] @ w_in + b + s @ w_rec
        s = (u >= net.threshold).astype(float)
        y = beta_out * y + s @ w_out + b_out
        ys.append(y)
        ss.append(s)
    return np.stack(ys, 1), np.stack(ss, 1)


def test_rsnn_matches_float64_numpy_reference(rng, x64):
    net = RSNN(5, 24, 3, tau_distribution="gamma", tau_cv=0.5, rec_scale=1.0,
               rngs=nnx.Rngs(3))
    x = rng.uniform(0, 1.5, (4, 40, 5))
    out = net(jnp.asarray(x))
    y_ref, s_ref = _numpy_rsnn(net, x)
    assert 0.02 < s_ref.mean() < 0.9  # the check is not vacuous
    np.testing.assert_array_equal(np.asarray(out.spikes), s_ref)
    np.testing.assert_allclose(np.asarray(out.readout), y_ref, rtol=1e-10, atol=1e-10)


def test_select_neurons_equals_silencing_the_rest(rng):
    net = RSNN(4, 16, 2, tau_distribution="lognormal", tau_cv=0.4, rngs=nnx.Rngs(1))
    keep = np.array([0, 2, 3, 7, 11, 15])
    drop = np.setdiff1d(np.arange(16), keep)
    # zero what the dropped neurons send: they no longer influence anything
    net.w_rec[...] = net.w_rec[...].at[drop].set(0.0)
    net.w_out[...] = net.w_out[...].at[drop].set(0.0)
    x = jnp.asarray(rng.uniform(0, 2, (3, 30, 4)), jnp.float32)
    small = select_neurons(net, keep)
    a, b = net(x), small(x)
    np.testing.assert_array_equal(np.asarray(a.spikes)[..., keep], np.asarray(b.spikes))
    # float32, same sums in a different order: 1e-5 relative
    np.testing.assert_allclose(np.asarray(a.readout), np.asarray(b.readout), rtol=1e-5,
                               atol=1e-5)


def test_lif_layer_and_surrogate_gradient_flow(rng):
    layer = LIFLayer(6, 10, tau_mem_ms=5.0, weight_scale=3.0, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.uniform(0, 1, (2, 20, 6)), jnp.float32)
    g = nnx.grad(lambda m: m(x).sum())(layer)
    assert float(jnp.abs(g["w"][...]).sum()) > 0  # surrogate gradient reaches the weights


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="tau_mem_ms must be >= dt_ms"):
        RSNN(2, 4, 2, tau_mem_ms=0.5, dt_ms=1.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dt_ms must be a positive number"):
        RSNN(2, 4, 2, dt_ms=-1.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="tau_mem_ms must be positive"):
        RSNN(2, 4, 2, tau_mem_ms=np.array([1.0, -2.0, 3.0, 4.0]), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="reset must be one of"):
        RSNN(2, 4, 2, reset="hold", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="distribution must be one of"):
        draw_time_constants(3, key=jax.random.key(0), distribution="beta")
    net = RSNN(2, 4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, 2\)"):
        net(jnp.ones((1, 5, 3)))
    with pytest.raises(ValueError, match="keep must hold"):
        select_neurons(net, [0, 4])


def test_record_returns_labelled_activity_with_provenance(rng, tmp_path):
    import xarray as xr

    from brainmodels.data import load_netcdf, save_netcdf
    from brainmodels.snn.rsnn import record

    net = RSNN(3, 10, 2, rngs=nnx.Rngs(0))
    x = xr.DataArray(rng.uniform(0, 2, (5, 12, 3)).astype(np.float32),
                     dims=("stimulus", "time", "feature"), coords={"stimulus": list("abcde")})
    ds = record(net, x, batch_size=4)  # 5 samples in batches of 4: padding path
    direct = net(jnp.asarray(x.values))
    np.testing.assert_array_equal(ds["spikes"].values, np.asarray(direct.spikes))
    np.testing.assert_allclose(ds["readout"].values, np.asarray(direct.readout), rtol=1e-6)
    assert ds["spikes"].dims == ("stimulus", "time", "neuron")
    assert list(ds["stimulus"].values) == list("abcde")
    assert ds.attrs["model"] == "RSNN" and ds.attrs["units"]["time"] == "ms"
    back = load_netcdf(save_netcdf(ds, tmp_path / "act.nc"))
    assert back.attrs["params"]["n_hidden"] == 10


def test_rsnn_settings_are_one_config_object():
    """RSNN(n_in, n_hidden, n_out, config, rngs=, **overrides): keywords override the config,
    a misspelt one is refused, and config and keywords build the same network."""
    from brainmodels.snn import RSNN, RSNNConfig

    cfg = RSNNConfig(tau_distribution="gamma", tau_cv=0.5, surrogate="arctan")
    a = RSNN(4, 16, 3, cfg, rngs=nnx.Rngs(0))
    b = RSNN(4, 16, 3, tau_distribution="gamma", tau_cv=0.5, surrogate="arctan",
             rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(a.tau_mem_ms[...], b.tau_mem_ms[...])
    np.testing.assert_array_equal(a.w_rec[...], b.w_rec[...])
    assert a.surrogate == "arctan"
    with pytest.raises(TypeError, match="unknown argument"):
        RSNN(4, 16, 3, tau_cvv=0.5, rngs=nnx.Rngs(0))
