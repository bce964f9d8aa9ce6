"""Lyapunov spectra (QR method) against analytic exponents; Lyapunov Noise Pruning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from brainmodels.snn.lnp import (
    _keep_probabilities,
    activity_prune,
    lyapunov_noise_prune,
    lyapunov_spectrum,
    neuron_noise_sensitivity,
    noise_drive,
    rsnn_lyapunov_spectrum,
    spectral_radius,
    synapse_importance,
    with_spectral_radius,
)
from brainmodels.snn.rsnn import RSNN, Mask


def _linear_step(h, x, a):
    return a @ h + x


@pytest.fixture(scope="module")
def linear_system():
    rng = np.random.default_rng(0)
    eig = np.array([1.1, -0.8, 0.5, 0.2, -0.05])
    p = rng.standard_normal((5, 5)) + 3 * np.eye(5)  # well conditioned (cond ~ 3)
    return p @ np.diag(eig) @ np.linalg.inv(p), np.log(np.abs(eig))


def test_linear_system_exponents_are_log_abs_eigenvalues(linear_system, x64):
    a, expected = linear_system
    t = 4000
    exps = lyapunov_spectrum(_linear_step, jnp.ones(5), jnp.zeros((t, 5)), params=jnp.asarray(a),
                             key=jax.random.key(0))
    # QR error is O(log cond(P) / T) ~ 1e-3 / few; 4e-3 leaves room
    np.testing.assert_allclose(np.asarray(exps), expected, atol=4e-3)
    top2 = lyapunov_spectrum(_linear_step, jnp.ones(5), jnp.zeros((t, 5)), params=jnp.asarray(a),
                             n_exponents=2, dt=0.5)
    np.testing.assert_allclose(np.asarray(top2), expected[:2] / 0.5, atol=8e-3)


def test_linear_system_float32_agrees(linear_system):
    a, expected = linear_system
    exps = lyapunov_spectrum(_linear_step, jnp.ones(5, jnp.float32), jnp.zeros((2000, 5)),
                             params=jnp.asarray(a, jnp.float32), n_discard=100)
    # float32 QR each step: per-step log errors ~1e-6, averaged; transient discarded
    np.testing.assert_allclose(np.asarray(exps), expected, atol=6e-3)


@pytest.fixture(scope="module")
def uncoupled():
    """Heterogeneous RSNN without recurrence, driven far below threshold (triangle surrogate:
    exactly zero slope there), so its Jacobian is diag(beta) exactly."""
    net = RSNN(3, 12, 2, tau_mem_ms=10.0, tau_distribution="gamma", tau_cv=0.5,
               surrogate="triangle", rngs=nnx.Rngs(0))
    net.rec_mask = Mask(jnp.zeros((12, 12)))
    drive = noise_drive(300, 12, key=jax.random.key(1), mean=-2.0, std=0.1)
    return net, drive


def test_uncoupled_rsnn_exponents_are_minus_inverse_tau(uncoupled):
    net, drive = uncoupled
    exps = rsnn_lyapunov_spectrum(net, drive, n_discard=10)
    expected = np.sort(-net.dt_ms / np.asarray(net.tau_mem_ms[...], np.float64))[::-1]
    # float32 mean of 290 identical logs: relative error < 1e-5
    np.testing.assert_allclose(np.asarray(exps), expected, rtol=1e-4)


def test_noise_sensitivity_of_uncoupled_neurons_is_geometric_sum(uncoupled):
    net, drive = uncoupled
    beta = np.exp(-net.dt_ms / np.asarray(net.tau_mem_ms[...], np.float64))
    sens = neuron_noise_sensitivity(net, drive, horizon=40, n_starts=3)
    expected = (beta[:, None] ** (2 * np.arange(1, 41))[None, :]).sum(1)
    np.testing.assert_allclose(np.asarray(sens), expected, rtol=1e-5)  # float32 products


def test_synapse_importance_and_keep_probabilities(rng):
    x = rng.standard_normal((500, 6))
    cov = np.cov(x.T)
    w = rng.standard_normal((6, 6))
    imp = np.asarray(synapse_importance(jnp.asarray(w), jnp.asarray(cov)))
    i, j = 1, 4
    by_hand = abs(w[i, j]) * (cov[i, i] + cov[j, j] - 2 * np.sign(w[i, j]) * cov[i, j])
    assert imp[i, j] == pytest.approx(by_hand, rel=1e-5)
    assert np.all(imp >= 0)  # (e_i - sign e_j)^T C (e_i - sign e_j) >= 0
    pi = _keep_probabilities(imp, 10)
    assert pi.sum() == pytest.approx(10, rel=1e-6)
    assert np.all((pi >= 0) & (pi <= 1))
    order = np.argsort(imp, axis=None)
    assert np.all(np.diff(pi.ravel()[order]) >= -1e-12)  # monotone in importance


@pytest.fixture(scope="module")
def lnp_result():
    net = RSNN(4, 40, 3, tau_mem_ms=10.0, tau_distribution="gamma", tau_cv=0.5, rec_scale=1.0,
               rngs=nnx.Rngs(0))
    res = lyapunov_noise_prune(net, key=jax.random.key(0), neuron_fraction=0.5,
                               synapse_fraction=0.3, n_steps=200, n_exponents=4,
                               n_candidates=2, horizon=30)
    return net, res


def test_lnp_prunes_to_the_requested_size_and_stabilises(lnp_result):
    net, res = lnp_result
    assert res.n_neurons == (40, 20)
    assert res.n_synapses[0] == 40 * 39
    # kept synapses ~ Binomial: 0.3 * 20 * 19 = 114 expected, sd ~ 8
    assert abs(res.n_synapses[1] - 114) < 40
    assert res.model.n_hidden == 20 and len(res.kept_neurons) == 20
    assert res.lambda_max[1] <= 0.0 + 1e-6  # lambda_target = 0: the sparse net is stable
    assert np.isfinite(res.lambda_max[0])
    out = res.model(jnp.ones((2, 10, 4)))
    assert np.all(np.isfinite(np.asarray(out.readout)))


def test_lnp_keeps_the_most_noise_sensitive_neurons(lnp_result):
    net, res = lnp_result
    drive = noise_drive(200, 40, key=jax.random.split(jax.random.key(0))[0])
    sens = np.asarray(neuron_noise_sensitivity(net, drive, horizon=30))
    dropped = np.setdiff1d(np.arange(40), res.kept_neurons)
    assert sens[res.kept_neurons].min() >= sens[dropped].max()


def test_controls_get_lnps_spectral_radius(lnp_result, rng):
    # the confound of issue 21: LNP's stabilisation scales its recurrent weights; a control
    # scaled to the same spectral radius differs from it in topology only
    _, res = lnp_result
    rho = spectral_radius(res.model)
    w = np.asarray(res.model.effective_w_rec(), np.float64)
    assert rho == pytest.approx(np.max(np.abs(np.linalg.eigvals(w))), rel=1e-12)
    control = RSNN(4, 20, 3, rngs=nnx.Rngs(5))
    matched = with_spectral_radius(control, rho)
    # float32 weights: eigenvalues to ~1e-6 relative
    assert spectral_radius(matched) == pytest.approx(rho, rel=1e-5)
    # a scale, nothing else: the same sparsity pattern and the same weight ratios
    a, b = np.asarray(control.effective_w_rec()), np.asarray(matched.effective_w_rec())
    np.testing.assert_array_equal(a != 0, b != 0)
    np.testing.assert_allclose(b, a * (rho / spectral_radius(control)), rtol=1e-5, atol=1e-7)
    assert spectral_radius(with_spectral_radius(control, 0.0)) == 0.0
    with pytest.raises(ValueError, match="rho must be"):
        with_spectral_radius(control, -1.0)


def test_activity_prune_keeps_the_most_active(rng):
    net = RSNN(4, 16, 3, rngs=nnx.Rngs(2))
    x = rng.uniform(0, 2, (20, 15, 4)).astype(np.float32)
    small = activity_prune(net, x, n_neurons=6, n_synapses=10)
    assert small.n_hidden == 6
    assert int(np.count_nonzero(np.asarray(small.effective_w_rec()))) == 10
    with pytest.raises(ValueError, match="n_neurons must be in"):
        activity_prune(net, x, n_neurons=17)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_exponents"):
        lyapunov_spectrum(_linear_step, jnp.ones(3), jnp.zeros((10, 3)), params=jnp.eye(3),
                          n_exponents=4)
    net = RSNN(2, 4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="neuron_fraction must be in"):
        lyapunov_noise_prune(net, key=jax.random.key(0), neuron_fraction=1.5)
    with pytest.raises(ValueError, match=r"drive must have shape \(time, 4\)"):
        rsnn_lyapunov_spectrum(net, jnp.zeros((10, 3)))


def test_spectrum_of_a_second_network_does_not_recompile(uncoupled):
    from brainmodels.testing import compilations

    net, drive = uncoupled
    rsnn_lyapunov_spectrum(net, drive, n_exponents=3)
    other = RSNN(3, 12, 2, tau_mem_ms=30.0, surrogate="triangle", rngs=nnx.Rngs(5))
    half = drive * 0.5
    with compilations() as compiled:
        rsnn_lyapunov_spectrum(other, half, n_exponents=3)  # new weights, same shapes
    assert compiled.count == 0, compiled.names
