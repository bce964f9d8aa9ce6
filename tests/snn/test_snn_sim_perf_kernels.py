"""Fast spike-delivery kernels equal plain references exactly (performance work, issue 5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels import snn
from brainmodels.snn import _testing
from brainmodels.testing import compilations


@pytest.fixture(scope="module")
def first_spikes_fn():
    return jax.jit(_testing.first_spikes, static_argnums=1)


@pytest.mark.parametrize("n", [4000, 4003, 60])
@pytest.mark.parametrize("m", [4, 16, 64])
def test_first_spikes_equals_numpy_nonzero(first_spikes_fn, n, m, rng):
    """Both forms (two-level and one ``top_k``) return the first ``m`` spiking neurons in
    ascending order, padding with ``n``: integer results, compared exactly. (The kernel
    never asks for ``m >= n``: that is its full branch.)"""
    m = min(m, n - 1)
    for count in (0, 1, m - 1, m, m + 5, n // 3):
        spikes = np.zeros(n, bool)
        spikes[rng.choice(n, size=min(count, n), replace=False)] = True
        idx, valid = first_spikes_fn(jnp.asarray(spikes), m)
        expected = np.flatnonzero(spikes)[:m]
        np.testing.assert_array_equal(np.asarray(idx)[: expected.size], expected)
        np.testing.assert_array_equal(np.asarray(idx)[expected.size:], n)
        np.testing.assert_array_equal(np.asarray(valid), np.arange(m) < expected.size)


@pytest.fixture(scope="module")
def cuba_runs():
    net = snn.cuba(seed=3, n=1200)
    return net, {mode: snn.simulate(net, 200.0, 0.1, mode=mode) for mode in ("event", "dense")}


def test_event_kernel_matches_dense_on_cuba(cuba_runs):
    """At 1,200 neurons the event kernel uses the two-level spike search (4 m B <= N for the
    small branches); same floats summed in the same order as the dense product up to the
    order of additions: the spike trains agree exactly."""
    _, runs = cuba_runs
    assert runs["event"].attrs["kernels"] == ["EventKernel"]
    assert runs["event"].spike_time.size > 500
    assert snn.spike_time_agreement(runs["event"], runs["dense"]) == 1.0


def test_event_kernel_bound_one_is_exact(cuba_runs):
    """max_spikes=1 sends nearly every step through the exact full branch."""
    net, runs = cuba_runs
    tiny = snn.simulate(net, 200.0, 0.1, mode="event", max_spikes=1)
    assert snn.spike_time_agreement(tiny, runs["event"]) == 1.0


def test_plan_run_is_compiled_once(cuba_runs):
    net, _ = cuba_runs
    snn.simulate(net, 20.0, 0.1)
    other = snn.cuba(seed=3, n=1200)  # new arrays, same shapes
    with compilations() as compiled:
        snn.simulate(other, 20.0, 0.1)
    assert compiled.count == 0, compiled.names


def test_chunked_delivery_under_vmap_matches_single_runs():
    """``simulate_many(method="vmap")`` delivers in ``while_loop`` chunks of spikes (8, or
    ``max_spikes`` if smaller; exact for any count): spike trains equal the single-network
    ``lax.switch`` runs exactly, also with chunks of 2 where steps need several iterations."""
    nets = [snn.cuba(seed=s, n=1200) for s in (5, 6)]
    plan = _testing.build_plan(nets[0], 0.1, snn.Recording(), _testing.Delivery(chunk=8))
    assert plan.kernels[0].chunk == 8
    singles = [snn.simulate(net, 100.0, 0.1) for net in nets]
    _, per_step = np.unique(singles[0].spike_time.values, return_counts=True)
    assert per_step.max() > 2  # some steps take 2+ iterations of 2-spike chunks
    for bound in (None, 2):
        many = snn.simulate_many(nets, 100.0, 0.1, method="vmap", max_spikes=bound)
        for s, one in enumerate(singles):
            sel = many.spike_network.values == s
            assert one.spike_time.size > 200
            np.testing.assert_array_equal(many.spike_time.values[sel], one.spike_time.values)
            np.testing.assert_array_equal(many.spike_neuron.values[sel],
                                          one.spike_neuron.values)


def test_plans_are_cached_on_the_network_object_and_go_with_it():
    """simulate builds the device plan once per network object and settings (like brian2's
    setup). The plans live on the network object: a cache keyed by ``id(net)`` hands a new
    network the plan of a collected one whenever CPython reuses the id."""
    import gc
    import weakref

    net = snn.cuba(seed=5, n=200)
    a = snn.simulate(net, 20.0, 0.1)
    plans = _testing.plans_of(net)
    assert len(plans) == 1
    b = snn.simulate(net, 20.0, 0.1)
    assert len(plans) == 1  # reused
    assert snn.spike_time_agreement(a, b) == 1.0
    snn.simulate(net, 20.0, 0.05)
    assert len(plans) == 2  # another dt, another plan
    ref = weakref.ref(net)
    del net, plans
    gc.collect()
    assert ref() is None  # nothing global keeps the network (or its plans) alive


def test_a_new_network_never_gets_a_stale_plan():
    """Networks built and dropped in a loop (CPython reuses their ids): each run reflects its
    own drive. The rate of one driven LIF must rise with its external current every time."""
    rates = []
    for i_ext in np.linspace(15.0, 30.0, 12):
        pop = snn.Population("P", 1, snn.LIF(tau_m=20.0, v_rest=-60.0, v_th=-50.0), i_ext=i_ext)
        res = snn.simulate(snn.Network((pop,)), 200.0, 0.1)
        rates.append(res.spike_time.size)
    assert np.all(np.diff(rates) >= 0) and rates[-1] > rates[0]
