"""Neuron models: analytic rates, integrator accuracy, resets, refractoriness, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels import snn
from brainmodels.snn.neurons import INTEGRATORS

CURRENTS = np.array([11.0, 12.0, 15.0, 20.0, 30.0])  # nA with r_m = 1 MOhm -> mV of drive


def _single(model, currents, v0=-60.0):
    pop = snn.Population("P", len(currents), model, v0=v0, i_ext=np.asarray(currents))
    return snn.Network((pop,), name="single")


@pytest.mark.parametrize("t_ref", [0.0, 2.0])
def test_lif_fires_at_analytic_rate_within_one_step(t_ref):
    dt = 0.1
    model = snn.LIF(tau_m=20.0, v_rest=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=t_ref)
    res = snn.simulate(_single(model, CURRENTS), 500.0, dt)
    for k, i_ext in enumerate(CURRENTS):
        t = res.spike_time.values[res.spike_neuron.values == k]
        period = 1000.0 / snn.analytic_lif_rate(i_ext, t_ref=t_ref)
        isi = np.diff(t)
        # spikes sit on the time grid, detected at the first step after the crossing: every ISI
        # lies within one step of the analytic period (float32 adds ~1e-5 ms)
        assert isi.size > 3
        assert np.all(np.abs(isi - period) <= dt + 1e-4), (i_ext, isi[:5], period)
    # below rheobase (E_l + R I <= V_th): silent
    silent = snn.simulate(_single(model, [9.9]), 200.0, dt)
    assert silent.spike_time.size == 0


def test_lif_rate_converges_to_analytic_as_dt_shrinks():
    model = snn.LIF(t_ref=2.0)
    errors = []
    for dt in (0.1, 0.01):
        res = snn.simulate(_single(model, [15.0]), 1000.0, dt)
        rate = 1000.0 / np.mean(np.diff(res.spike_time.values))  # from the ISIs, not counts
        errors.append(abs(rate - snn.analytic_lif_rate(15.0, t_ref=2.0)))
    # the rate error is O(dt) (grid-aligned spikes): 10x smaller dt, >= 5x smaller error
    assert errors[1] < errors[0] / 5 + 0.05, errors


def test_exact_propagator_matches_fine_rk4(x64):
    """The exact LIF + exponential-current step equals the ODE solution (RK4, tiny steps)."""
    model = snn.LIF(tau_m=20.0, v_rest=-60.0, v_th=1e9, syn=snn.current_synapses((5.0, 20.0)))
    state = model.init_state(1, v0=-55.0, dtype=jnp.float64)
    state = state._replace(g=jnp.array([[3.0], [-2.0]]))
    big = model.update(state, 0.5, 1.0, 0)

    def f(y):
        v, ge, gi = y
        return ((-60.0 - v + 0.5 + ge + gi) / 20.0, -ge / 5.0, -gi / 20.0)

    y = (state.v, state.g[0], state.g[1])
    y = jax.lax.fori_loop(0, 1000, lambda _, y: INTEGRATORS["rk4"].step(lambda y, t: f(y), y, 0.0, 1e-3), y)
    # RK4 with h = 1e-3 ms has error ~h^4: agreement to 1e-10 mV
    np.testing.assert_allclose(big.v, y[0], atol=1e-10)
    np.testing.assert_allclose(big.g[0], y[1], atol=1e-10)


@pytest.mark.parametrize("method, order", [("euler", 1), ("rk2", 2), ("rk4", 4)])
def test_integrator_convergence_order(x64, method, order):
    def f(y):
        return (-y[0] / 3.0,)

    errs = []
    for h in (0.1, 0.05):
        y = (jnp.array(1.0),)
        for _ in range(int(round(1.0 / h))):
            y = INTEGRATORS[method].step(lambda y, t: f(y), y, 0.0, h)
        errs.append(abs(float(y[0]) - np.exp(-1.0 / 3.0)))
    observed = np.log2(errs[0] / errs[1])
    assert abs(observed - order) < 0.2, observed
    assert INTEGRATORS[method].order == order  # the registry states what was measured


def test_refractory_period_clamps_v_and_bounds_isi():
    model = snn.LIF(t_ref=5.0)
    rec = snn.Recording(traces=("v",), neurons=[0], every_ms=0.1)
    res = snn.simulate(_single(model, [100.0]), 100.0, 0.1, recording=rec)
    t = res.spike_time.values
    assert np.all(np.diff(t) >= 5.0 - 1e-6)
    v = res["v"].values[:, 0]
    k0 = int(round(t[0] / 0.1)) + 1  # the step after the first spike: v held at v_reset
    np.testing.assert_array_equal(v[k0:k0 + 49], -60.0)


def test_reset_by_subtraction_keeps_overshoot():
    value = snn.LIF(reset_mode="value")
    sub = snn.LIF(reset_mode="subtract")
    state = value.init_state(1, v0=-49.0)
    spikes = jnp.array([True])
    assert float(value.reset(state, spikes, 3).v[0]) == -60.0
    # subtract (v_th - v_reset) = 10 mV: the 1 mV overshoot is kept
    assert float(sub.reset(state, spikes, 3).v[0]) == pytest.approx(-59.0)
    # subtraction resets give higher rates than value resets at strong drive
    rv = snn.simulate(_single(value, [100.0]), 200.0, 1.0).spike_time.size
    rs = snn.simulate(_single(sub, [100.0]), 200.0, 1.0).spike_time.size
    assert rs > rv


def test_izhikevich_regular_spiking_adapts():
    model = snn.Izhikevich()  # regular spiking: a=0.02, b=0.2, c=-65, d=8
    res = snn.simulate(_single(model, [10.0], v0=-65.0), 500.0, 0.1)
    isi = np.diff(res.spike_time.values)
    assert isi.size > 3 and isi[-1] > isi[0]  # spike-frequency adaptation


def test_adaptive_lif_adapts():
    model = snn.AdaptiveLIF(a=0.0, b=0.05, tau_w=100.0)
    res = snn.simulate(_single(model, [0.5], v0=-70.0), 500.0, 0.1)
    isi = np.diff(res.spike_time.values)
    assert isi.size > 3 and isi[-1] > 1.5 * isi[0]


def test_heterogeneous_parameters_per_neuron():
    tau = np.array([10.0, 20.0, 40.0], np.float32)
    model = snn.LIF(tau_m=tau, t_ref=0.0)
    res = snn.simulate(_single(model, [15.0, 15.0, 15.0]), 500.0, 0.1)
    rates = [1000.0 / np.mean(np.diff(res.spike_time.values[res.spike_neuron.values == k]))
             for k in range(3)]
    expected = [snn.analytic_lif_rate(15.0, tau_m=t) for t in tau]
    # ISIs are within one step (0.1 ms) of the analytic period: rate error <= rate^2 * dt
    np.testing.assert_allclose(rates, expected, atol=max(expected) ** 2 * 1e-4 * 1.01)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau_m": 0.0}, "tau_m"),
        ({"tau_m": -5.0}, "tau_m"),
        ({"t_ref": -1.0}, "t_ref"),
        ({"syn": snn.current_synapses((0.05, 10.0))}, "dt_ms"),
        ({"syn": snn.current_synapses((-1.0, 10.0))}, "tau"),
        ({"reset_mode": "bounce"}, "reset"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        snn.simulate(_single(snn.LIF(**kwargs), [15.0]), 10.0, 0.1)


@pytest.mark.parametrize("dt, match", [(0.0, "dt_ms"), (-0.1, "dt_ms"), (50.0, "dt_ms")])
def test_bad_dt_raises(dt, match):
    with pytest.raises(ValueError, match=match):
        snn.simulate(_single(snn.LIF(), [15.0]), 100.0, dt)


def test_unknown_integrator_raises():
    with pytest.raises(ValueError, match="method"):
        snn.simulate(_single(snn.Izhikevich(method="rk45"), [10.0]), 10.0, 0.1)


def test_step_functions_are_pure_and_jittable():
    model = snn.LIF(t_ref=2.0)
    state = model.init_state(4, v0=jnp.array([-60.0, -55.0, -50.5, -49.0]))
    step = jax.jit(lambda s: model.update(s, 0.0, 0.1, 0))
    out1, out2 = step(state), step(state)
    np.testing.assert_array_equal(out1.v, out2.v)
    np.testing.assert_array_equal(state.v, [-60.0, -55.0, -50.5, -49.0])  # input untouched
