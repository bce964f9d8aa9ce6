"""MPBN: training-mode equations vs a numpy reference; folded thresholds give identical spikes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from brainmodels.snn.mpbn import MPBNLIF, fold_mpbn


def _numpy_mpbn_train(layer, x):
    """Float64 reference of Guo et al. (2023) eqs. 8-10 with per-step batch statistics."""
    cur = x @ np.asarray(layer.w[...], float)
    lam, beta = np.asarray(layer.scale[...], float), np.asarray(layer.bias[...], float)
    u = np.zeros(cur.shape[::2])
    s = np.zeros_like(u)
    out, means = [], []
    for t in range(cur.shape[1]):
        u = 0.25 * u * (1 - s) + cur[:, t]  # hard reset on the un-normalised potential
        m, v = u.mean(0), u.var(0)
        s = (lam * (u - m) / np.sqrt(v + layer.eps) + beta >= layer.threshold).astype(float)
        out.append(s)
        means.append(m)
    return np.stack(out, 1), np.mean(means, 0)


def test_training_mode_matches_reference_and_updates_running_stats(rng, x64):
    layer = MPBNLIF(6, 16, momentum=0.0, rngs=nnx.Rngs(0))
    layer.scale[...] = jnp.asarray(rng.uniform(0.5, 2.0, 16))
    layer.bias[...] = jnp.asarray(rng.normal(0, 0.3, 16))
    x = rng.uniform(0, 1, (32, 12, 6))
    spikes = layer(jnp.asarray(x))
    ref, mean = _numpy_mpbn_train(layer, x)
    assert 0.05 < ref.mean() < 0.95
    np.testing.assert_array_equal(np.asarray(spikes), ref)
    np.testing.assert_allclose(np.asarray(layer.mean[...]), mean, rtol=1e-12)  # momentum 0


@pytest.fixture
def trained_layer(rng):
    layer = MPBNLIF(6, 24, rngs=nnx.Rngs(1))
    for _ in range(3):  # a few training-mode passes set the running statistics
        layer(jnp.asarray(rng.uniform(0, 1, (16, 10, 6))))
    lam = rng.uniform(0.3, 2.0, 24) * np.where(np.arange(24) % 3 == 0, -1.0, 1.0)
    lam[[5, 10]] = 0.0  # lambda = 0: a constant BN output
    beta = rng.normal(0, 0.5, 24)
    beta[5], beta[10] = 1.0, -1.0  # neuron 5 always fires, neuron 10 never
    layer.scale[...] = jnp.asarray(lam, layer.scale[...].dtype)
    layer.bias[...] = jnp.asarray(beta, layer.bias[...].dtype)
    layer.use_running_average = True
    return layer


def test_folded_network_emits_identical_spikes_including_negative_lambda(trained_layer, rng,
                                                                          x64):
    x = jnp.asarray(rng.uniform(0, 1, (20, 30, 6)))
    layer = trained_layer
    for var in (layer.w, layer.scale, layer.bias, layer.mean, layer.var):
        var.set_value(jnp.asarray(var[...], jnp.float64))
    folded = fold_mpbn(layer)
    a, b = np.asarray(layer(x)), np.asarray(folded(x))
    assert 0 < a[..., ::3].mean() < 1  # lambda < 0 neurons fire, but not always
    assert np.all(a[..., 5] == 1) and np.all(a[..., 10] == 0)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.asarray(folded.sign[...])[::3] == -1)


def test_folded_float32_agrees(trained_layer, rng):
    x = jnp.asarray(rng.uniform(0, 1, (20, 30, 6)), jnp.float32)
    a, b = np.asarray(trained_layer(x)), np.asarray(fold_mpbn(trained_layer)(x))
    # float32 rounding can flip a comparison only within ~1e-7 of the threshold: <0.1% of spikes
    assert np.mean(a != b) < 1e-3


def test_bad_decay():
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        MPBNLIF(2, 3, decay=1.5, rngs=nnx.Rngs(0))


def test_mpbn_classifier_trains_and_folds_without_changing_predictions():
    from brainmodels.datasets.tasks import sequential_digits
    from brainmodels.snn.mpbn import MPBNClassifier
    from brainmodels.snn.train import TrainConfig, evaluate, train_classifier

    task = sequential_digits(order="row", repeat=2, seed=0)
    net = MPBNClassifier(task.n_inputs, 48, 10, rngs=nnx.Rngs(0))
    train_classifier(net, task.x_train, task.y_train,
                     config=TrainConfig(epochs=2, batch_size=64, learning_rate=5e-3))
    net.hidden.use_running_average = True
    acc = evaluate(net, task.x_test, task.y_test)["accuracy"]
    assert acc > 0.3  # 2 epochs (~44 steps): ~0.5 measured; chance 0.1
    folded = net.fold()
    assert evaluate(folded, task.x_test, task.y_test)["accuracy"] == pytest.approx(acc, abs=0.01)
    a = np.asarray(net(task.x_test[:64]).spikes)
    b = np.asarray(folded(task.x_test[:64]).spikes)
    assert np.mean(a != b) < 1e-3  # float32 threshold rounding only
