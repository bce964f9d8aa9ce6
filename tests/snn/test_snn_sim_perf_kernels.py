"""Fast spike-delivery kernels equal plain references exactly (performance work, issue 5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainmodels import snn
from brainmodels.snn import connectivity as conn_mod
from brainmodels.snn import network as network_mod


@pytest.fixture(scope="module")
def first_spikes_fn():
    return jax.jit(conn_mod._first_spikes, static_argnums=1)


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
    before = network_mod._run_jit._cache_size()
    snn.simulate(snn.cuba(seed=4, n=1200), 20.0, 0.1)  # same shapes only if K agrees
    assert network_mod._run_jit._cache_size() - before <= 1
