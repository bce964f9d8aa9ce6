"""representations(): each model family's layers against the model run directly, an analytic
result or an invariance; the data convention; bad input refused."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import xarray as xr
from flax import nnx

from brainmodels import akorn, snn, wave_rnn
from brainmodels.datasets.stimuli import gabor_energy
from brainmodels.representations import (
    GaborEnergy,
    KuramotoGrid,
    RandomFeatures,
    WhiteningCircuit,
    layer_matrix,
    representations,
)
from brainmodels.representations._baselines import lattice


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.random((12, 16, 16)).astype(np.float32)
    return xr.DataArray(x, dims=("stimulus", "height", "width"),
                        coords={"stimulus": np.arange(100, 112),
                                "category": ("stimulus", np.array(list("abcd") * 3))})


def _perm_equivariant(model, imgs, **kw):
    """Permuting the stimuli permutes every layer's rows (batching and padding are per row)."""
    perm = np.random.default_rng(1).permutation(imgs.sizes["stimulus"])
    a = representations(model, imgs, **kw)
    b = representations(model, imgs.isel(stimulus=perm), **kw)
    for v in a.data_vars:
        np.testing.assert_allclose(b[v].values, a[v].values[perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(b["stimulus"].values, a["stimulus"].values[perm])
    return a


def test_convention_and_coords_kept(images):
    reps = representations(GaborEnergy(grid=4), images)
    assert reps["energy"].dims == ("stimulus", "feature_energy")
    assert reps["energy"].shape == (12, 4 * 4 * 8)
    np.testing.assert_array_equal(reps["category"].values, images["category"].values)
    assert reps.attrs["params"]["model"] == "GaborEnergy" and reps.attrs["stochastic"] == 0


def test_gabor_energy_is_the_local_energy_and_its_mean(images):
    reps = _perm_equivariant(GaborEnergy(grid=4), images)
    e = gabor_energy(images.values, grid=4)
    np.testing.assert_array_equal(reps["energy"].values, e.reshape(12, -1))
    np.testing.assert_allclose(reps["pooled"].values, e.mean((1, 2)), rtol=1e-6)


def test_random_features_are_seeded_and_nonnegative(images):
    a = _perm_equivariant(RandomFeatures(n_features=64, depth=3, seed=3), images)
    b = representations(RandomFeatures(n_features=64, depth=3, seed=3), images)
    c = representations(RandomFeatures(n_features=64, depth=3, seed=4), images)
    assert list(a.data_vars) == ["layer1", "layer2", "layer3"]
    np.testing.assert_array_equal(a["layer3"].values, b["layer3"].values)
    assert not np.allclose(a["layer1"].values, c["layer1"].values)
    assert (a["layer1"].values >= 0).all()


def test_whitening_circuit_whitens_the_patches_it_was_fitted_to():
    """The layer is the circuit's steady state (``whitening.respond``), and with the optimal
    gains (Duong et al. 2023, eq. 9) for these images' patch statistics its responses to
    the images' tiles have identity covariance up to sampling error."""
    from brainmodels.whitening import respond

    rng = np.random.default_rng(2)
    # correlated images: smoothed noise, so the raw patch covariance is far from identity
    raw = rng.random((300, 17, 17))
    imgs = ((raw[:, 1:, 1:] + raw[:, :-1, 1:] + raw[:, 1:, :-1]) / 3).astype(np.float32)
    circuit = WhiteningCircuit.fit(imgs, 4, key=jax.random.key(0), n_patches=40000)
    reps = representations(circuit, imgs)
    x = reps["input"].values.reshape(-1, 16).astype(np.float64)
    r = reps["response"].values.reshape(-1, 16).astype(np.float64)
    direct = respond(circuit.frame.astype(np.float32), circuit.gains.astype(np.float32),
                     x.astype(np.float32)).values
    np.testing.assert_allclose(r, direct, rtol=1e-4, atol=1e-4 * np.abs(r).max())
    err_in = np.linalg.norm(np.cov(x.T, bias=True) - np.eye(16), 2)
    err_out = np.linalg.norm(np.cov(r.T, bias=True) - np.eye(16), 2)
    # 4,800 tiles against 40,000 fitting crops: a covariance sampling error of ~sqrt(16/4800)
    # relative, amplified by the whitening of near-degenerate directions; the input is ~1 off
    assert err_in > 0.9 and err_out < 0.25, (err_in, err_out)


def test_kuramoto_grid_without_coupling_is_free_rotation(images):
    """K = 0: theta_i(T) = theta0_i + omega_i T exactly (rk4 on a constant velocity)."""
    model = KuramotoGrid(grid=4, coupling=0.0, omega0=1.0, gain=2.0, dt=0.05, steps=40)
    key = jax.random.key(5)
    reps = representations(model, images, key=key, n_samples=2)
    assert reps["phase"].dims == ("stimulus", "sample", "feature_phase")
    k_init, _ = jax.random.split(jax.random.fold_in(key, 1))
    theta0 = np.asarray(jax.random.uniform(k_init, (16,), minval=-np.pi, maxval=np.pi),
                        np.float64)
    level = images.values.reshape(12, 4, 4, 4, 4).mean((2, 4)).reshape(12, 16)
    theta = theta0 + (1.0 + 2.0 * (level - 0.5)) * 40 * 0.05
    psi = np.angle(np.exp(1j * theta).mean(1, keepdims=True))
    want = np.concatenate([np.cos(theta - psi), np.sin(theta - psi)], 1)
    np.testing.assert_allclose(reps["phase"].values[:, 1], want, atol=2e-5)
    z = np.abs((lattice(4) @ np.exp(1j * theta).T).T) / lattice(4).sum(1)
    np.testing.assert_allclose(reps["synchrony"].values[:, 1], z, atol=2e-5)
    assert not np.allclose(reps["phase"].values[:, 0], reps["phase"].values[:, 1])


def test_kuramoto_grid_uniform_image_locks():
    """Equal frequencies and strong coupling: the lattice synchronises (local order -> 1)."""
    flat = np.full((2, 16, 16), 0.7, np.float32)
    reps = representations(KuramotoGrid(grid=4, coupling=4.0, steps=600), flat,
                           key=jax.random.key(0))
    assert reps["synchrony"].values.min() > 0.999


@pytest.fixture(scope="module")
def small_akorn():
    return akorn.AKOrN(image_size=16, in_channels=1, patch=2, channels=8, n=4, T=2,
                       rngs=nnx.Rngs(0))


def test_akorn_block_states_are_the_networks_states(small_akorn, images):
    key = jax.random.key(3)
    reps = representations(small_akorn, images, key=key, pool=8, batch=5)
    # batch b of sample s uses fold_in(fold_in(key, s), b); the first 5 stimuli are batch 0
    out = small_akorn(images.values[:5, :, :, None], key=jax.random.fold_in(
        jax.random.fold_in(key, 0), 0))
    got = reps["block1_states"].values[:5, 0]
    np.testing.assert_allclose(got, np.asarray(out.states).reshape(5, -1), rtol=1e-5,
                               atol=1e-6)
    sync = reps["block1_synchrony"].values
    # one position per cell: every group's mean oscillator is a unit vector
    np.testing.assert_allclose(sync, 1.0, atol=1e-5)
    coarse = representations(small_akorn, images, key=key, pool=2)
    assert coarse["block1_synchrony"].shape == (12, 1, 2 * 2 * 8 // 4)
    assert 0 <= coarse["block1_synchrony"].values.min() <= coarse[
        "block1_synchrony"].values.max() <= 1 + 1e-6


def test_akorn_same_key_same_result(small_akorn, images):
    a = representations(small_akorn, images, key=jax.random.key(1), n_samples=2)
    b = representations(small_akorn, images, key=jax.random.key(1), n_samples=2)
    np.testing.assert_array_equal(a["block1_states"].values, b["block1_states"].values)
    assert not np.allclose(a["block1_states"].values[:, 0], a["block1_states"].values[:, 1])
    assert a.attrs["stochastic"] == 1


@pytest.mark.parametrize("kind", ["wave", "irnn", "gru"])
def test_rnn_hidden_states_are_the_models_states(kind, images):
    rngs = nnx.Rngs(0)
    model = {"wave": lambda: wave_rnn.WaveRNN(16, 8, 2, 3, rngs=rngs),
             "irnn": lambda: wave_rnn.IRNN(16, 12, 3, rngs=rngs),
             "gru": lambda: wave_rnn.GRU(16, 12, 3, rngs=rngs)}[kind]()
    reps = _perm_equivariant(model, images, batch=5)
    _, states = model(jax.numpy.asarray(images.values), return_states=True)
    states = np.asarray(states).reshape(12, 16, -1)
    assert reps["hidden"].dims == ("stimulus", "time", "feature_hidden")
    np.testing.assert_allclose(reps["hidden"].values, states, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reps["final"].values, states[:, -1], rtol=1e-5, atol=1e-6)
    binned = representations(model, images, time_bins=4)
    np.testing.assert_allclose(binned["hidden"].values,
                               states.reshape(12, 4, 4, -1).mean(2), rtol=1e-5, atol=1e-6)


def test_rnn_pixel_scan(images):
    model = wave_rnn.IRNN(1, 6, 2, rngs=nnx.Rngs(0))
    reps = representations(model, images.isel(height=slice(0, 4), width=slice(0, 4)))
    assert reps["hidden"].shape == (12, 16, 6) and reps.attrs["params"]["scan"] == "pixels"
    with pytest.raises(ValueError, match="scan"):
        representations(wave_rnn.IRNN(5, 6, 2, rngs=nnx.Rngs(0)), images)


def _stim_net(net, row):
    pop = dataclasses.replace(net.populations[0], i_ext=row)
    return dataclasses.replace(net, populations=(pop,))


def test_spiking_counts_match_a_direct_simulation(images):
    """A deterministic network: the union of stimuli spikes as each network run alone."""
    net = snn.coba(seed=0, n=64, drive_mv=8.0)
    reps = representations(net, images, duration_ms=60.0, bin_ms=20.0, gain=15.0, chunk=5)
    assert reps["P"].dims == ("stimulus", "sample", "time", "feature_P")
    flat = images.values.reshape(12, -1)
    for s in (0, 7):
        row = 8.0 + 15.0 * flat[s, (np.arange(64) * 256) // 64]
        res = snn.simulate(_stim_net(net, row.astype(np.float32)), duration_ms=60.0)
        want = np.zeros((3, 64))
        t = res["spike_time"].values
        np.add.at(want, (np.minimum((t / 20.0).astype(int), 2), res["spike_neuron"].values), 1)
        np.testing.assert_array_equal(reps["P"].values[s, 0], want)
    assert reps["P"].values.sum() > 0


def test_spiking_samples_differ_with_poisson_input_and_repeat_with_the_key(images):
    net = snn.coba(seed=1, n=48, drive_mv=5.0)
    net = dataclasses.replace(net, inputs=(snn.PoissonInput("P", "e", 20, 20.0, 0.5),))
    kw = dict(duration_ms=40.0, n_samples=2, gain=15.0)
    a = representations(net, images.isel(stimulus=slice(0, 3)), key=jax.random.key(0), **kw)
    b = representations(net, images.isel(stimulus=slice(0, 3)), key=jax.random.key(0), **kw)
    np.testing.assert_array_equal(a["P"].values, b["P"].values)
    assert not np.array_equal(a["P"].values[:, 0], a["P"].values[:, 1])
    assert a.attrs["stochastic"] == 1
    with pytest.raises(ValueError, match="Poisson inputs"):
        representations(snn.coba(seed=0, n=32), images, n_samples=2)
    with pytest.raises(ValueError, match="key"):
        representations(net, images)


def test_precomputed_layers_and_layer_matrix(images):
    rng = np.random.default_rng(0)
    t = xr.DataArray(rng.random((12, 3, 5)), dims=("stimulus", "time", "feature"))
    reps = representations({"a": rng.random((12, 4)), "seq": t}, images)
    assert reps["seq"].dims == ("stimulus", "time", "feature_seq")
    assert layer_matrix(reps, "seq").shape == (12, 15)
    np.testing.assert_allclose(layer_matrix(reps, "seq", time="mean"), t.values.mean(1))
    with pytest.raises(ValueError, match="stimulus coordinates"):
        representations({"category": rng.random((12, 4))}, images)
    with pytest.raises(ValueError, match="same stimuli"):
        representations({"a": rng.random((12, 4)), "b": rng.random((11, 4))})


@pytest.mark.parametrize("bad, match", [
    (np.full((3, 8, 8), 2.0), r"\[0, 1\]"),
    (np.full((3, 8, 8), np.nan), "NaN"),
    (np.zeros((8, 8)), "images"),
])
def test_bad_stimuli_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        representations(GaborEnergy(grid=2), bad)


def test_unknown_model_and_option_are_type_errors(images):
    with pytest.raises(TypeError, match="model must be one of"):
        representations(object(), images)
    with pytest.raises(TypeError, match="n_smaples"):
        representations(KuramotoGrid(grid=4), images, key=jax.random.key(0), n_smaples=2)
    with pytest.raises(ValueError, match="key"):
        representations(KuramotoGrid(grid=4), images)
