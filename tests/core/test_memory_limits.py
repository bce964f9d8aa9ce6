"""Impossible sizes are refused before allocating, with the estimate and the knob that
shrinks it; a job just under the limit runs. The limit is set with BRAINMODELS_MEMORY_LIMIT,
so the tests do not depend on this machine's memory."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from brainmodels import kuramoto, snn
from brainmodels._memory import InsufficientMemoryError, available_bytes
from brainmodels.datasets import make_synthetic_fmri
from brainmodels.datasets.synthetic import synthetic_fmri_bytes
from brainmodels.rsa import bootstrap_compare


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", "512MiB")
    assert available_bytes() == 512 * 2**20
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="8GB or 512MiB"):
        available_bytes()
    monkeypatch.delenv("BRAINMODELS_MEMORY_LIMIT")
    assert available_bytes() > 2**28  # the machine's own figure


def test_synthetic_dataset_of_1e8_stimuli_is_refused():
    with pytest.raises(InsufficientMemoryError, match=r"n_stimuli=100000000.*TB.*lower n_stimuli"):
        make_synthetic_fmri(n_stimuli=10**8)


def test_synthetic_dataset_just_under_the_limit_runs(monkeypatch):
    need = synthetic_fmri_bytes(40, 2, 8.0, 8 * 8 * 4 * 2 + 4)
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 1.05)))
    assert make_synthetic_fmri(40, 2, resolution_mm=8, seed=0).sizes["trial"] == 80
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 0.95)))
    with pytest.raises(InsufficientMemoryError, match="raise resolution_mm"):
        make_synthetic_fmri(40, 2, resolution_mm=8, seed=0)


def test_long_simulation_recording_every_trace_is_refused():
    net = snn.cuba(seed=0)  # 4000 neurons, 10^4 s at 0.1 ms, every neuron's v traced
    rec = snn.Recording(traces=("v",), neurons=np.arange(net.n_neurons))
    with pytest.raises(InsufficientMemoryError, match=r"100000000 steps.*Recording.every_ms"):
        snn.simulate(net, duration_ms=1e7, dt_ms=0.1, recording=rec)


def test_simulation_just_under_the_limit_runs(monkeypatch):
    net = snn.cuba(seed=0, n=200)
    need = 2.0 * 500 * -(-200 // 8)  # 50 ms at 0.1 ms: packed spike bits, twice
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 1.05)))
    res = snn.simulate(net, duration_ms=50.0, dt_ms=0.1)
    assert res.attrs["duration_ms"] == 50.0
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 0.95)))
    with pytest.raises(InsufficientMemoryError):
        snn.simulate(net, duration_ms=50.0, dt_ms=0.1)


def test_kuramoto_phase_recording_is_refused_and_just_under_runs(monkeypatch):
    n, steps = 1000, 400
    params = kuramoto.KuramotoParams(coupling=1.0, omega=np.zeros(n, np.float32))
    theta0 = kuramoto.initial_phases(n, key=jax.random.key(0))
    need = 2.0 * (steps // 10 + 1) * n * 4
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 1.05)))
    kuramoto.simulate(params, theta0, steps=steps, record_every=10)
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 0.95)))
    with pytest.raises(InsufficientMemoryError, match="raise record_every"):
        kuramoto.simulate(params, theta0, steps=steps, record_every=10)
    # without the phases there is nothing big to record
    kuramoto.simulate(params, theta0, steps=steps, record_every=10, record_phase=False)


def test_huge_bootstrap_is_refused_and_just_under_runs(monkeypatch):
    rng = np.random.default_rng(0)
    models, data = rng.random((2, 45)), rng.random((3, 45))  # 10 conditions
    with pytest.raises(InsufficientMemoryError, match="lower n_bootstrap"):
        bootstrap_compare(models, data, key=jax.random.key(0), n_bootstrap=10**9)
    need = 8.0 * 200 * (2 * 10 + 2 * 3 + 3 * 2 * 3)
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 1.05)))
    res = bootstrap_compare(models, data, key=jax.random.key(0), n_bootstrap=200)
    assert res.sizes["bootstrap"] == 200
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 0.95)))
    with pytest.raises(InsufficientMemoryError):
        bootstrap_compare(models, data, key=jax.random.key(0), n_bootstrap=200)


def test_ridge_whose_batches_cannot_fit_is_refused_and_just_under_runs(monkeypatch):
    from brainmodels.encoders import RidgeEncoder
    from brainmodels.encoders._cv import _fit_bytes

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 5)), rng.standard_normal((60, 40))
    need = _fit_bytes(60, 5, 40, 7, 40, 3, 4)
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 1.05)))
    RidgeEncoder(alphas=np.logspace(-2, 4, 7), cv=3).fit(X, Y)
    monkeypatch.setenv("BRAINMODELS_MEMORY_LIMIT", str(int(need * 0.95)))
    with pytest.raises(InsufficientMemoryError, match=r"lower voxel_batch \(now 40"):
        RidgeEncoder(alphas=np.logspace(-2, 4, 7), cv=3).fit(X, Y)
    # the knob works: smaller batches fit under the same limit
    RidgeEncoder(alphas=np.logspace(-2, 4, 7), cv=3, voxel_batch=8).fit(X, Y)
