"""WaveRNN and baselines: travelling bump, peer convolution, gradients, parameter counts, errors."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from brainmodels.wave_rnn import GRU, IRNN, LSTM, WaveRNN, circular_conv, count_params


def test_shift_kernel_moves_a_bump_one_neuron_per_step_and_wraps():
    n, c, steps = 7, 3, 20  # 20 steps: the bump goes round the ring of 7 almost three times
    m = WaveRNN(1, n, c, 2, rngs=nnx.Rngs(0))
    x = np.zeros((1, steps, 1), np.float32)
    x[0, 0, 0] = 1.0  # single impulse into neuron 0 of every channel (single-source encoder)
    _, h = m(x, return_states=True)
    h = np.asarray(h)[0]
    for t in range(steps):
        expected = np.zeros((c, n), np.float32)
        expected[:, t % n] = 1.0
        np.testing.assert_array_equal(h[t], expected)  # exact: one 1.0 moved, nothing else


def test_identity_kernel_keeps_the_bump_in_place():
    m = WaveRNN(1, 5, 2, 1, init="identity", rngs=nnx.Rngs(0))
    x = np.zeros((1, 6, 1), np.float32)
    x[0, 0, 0] = 1.0
    _, h = m(x, return_states=True)
    np.testing.assert_array_equal(np.asarray(h)[0, :, :, 0], 1.0)
    np.testing.assert_array_equal(np.asarray(h)[0, :, :, 1:], 0.0)


def _torch_style_circular_conv(h, w):
    """Peer: PyTorch's Conv1d(padding=K//2, padding_mode='circular') written as explicit loops."""
    b, c, n = h.shape
    o, _, k = w.shape
    p = k // 2
    hp = np.concatenate([h[..., n - p:], h, h[..., :p]], axis=-1)  # circular padding
    out = np.zeros((b, o, n))
    for i in range(n):
        out[:, :, i] = np.einsum("ock,bck->bo", w, hp[:, :, i:i + k])
    return out


@pytest.mark.parametrize("k", [1, 3, 5])
def test_circular_conv_matches_padded_loop_peer(k, x64):
    rng = np.random.default_rng(0)
    h, w = rng.normal(size=(2, 3, 9)), rng.normal(size=(4, 3, k))
    got = np.asarray(circular_conv(jnp.asarray(h), jnp.asarray(w)))
    np.testing.assert_allclose(got, _torch_style_circular_conv(h, w), rtol=1e-13, atol=1e-13)


def test_forward_matches_numpy_recurrence(x64):
    """The whole WaveRNN forward pass against a numpy transcription of eq. 1 (float64)."""
    rng = np.random.default_rng(1)
    m = WaveRNN(3, 8, 2, 4, init="random", encoder="dense", param_dtype=jnp.float64,
                rngs=nnx.Rngs(1))
    x = rng.normal(size=(2, 6, 3))
    y = np.asarray(m(jnp.asarray(x)))
    we, be = np.asarray(m.encode.kernel.value), np.asarray(m.encode.bias.value)
    wk, bk = np.asarray(m.kernel.value), np.asarray(m.bias.value)
    ro = m.readout.layers[0]
    h = np.zeros((2, 2, 8))
    for t in range(6):
        u = (x[:, t] @ we + be).reshape(2, 2, 8)
        h = np.maximum(u + _torch_style_circular_conv(h, wk) + bk[:, None], 0.0)
        yt = h.reshape(2, 16) @ np.asarray(ro.kernel.value) + np.asarray(ro.bias.value)
        np.testing.assert_allclose(y[:, t], yt, rtol=1e-12, atol=1e-12)


def test_parameter_counts_match_the_paper():
    # Keller et al. 2024, copy task: wRNN 100 x 6 has 12,724 parameters, iRNN-100 12,210
    assert count_params(WaveRNN(10, 100, 6, 10, rngs=nnx.Rngs(0))) == 12_724
    assert count_params(IRNN(10, 100, 10, rngs=nnx.Rngs(0))) == 12_210


@pytest.mark.parametrize("make", [
    lambda r: WaveRNN(3, 5, 2, 2, init="random", encoder="dense", param_dtype=jnp.float64,
                      rngs=r),
    lambda r: IRNN(3, 5, 2, param_dtype=jnp.float64, rngs=r),
], ids=["wave-random-dense", "irnn"])
def test_gradients_match_central_finite_differences(make, x64):
    model = make(nnx.Rngs(3))
    # random weights and inputs: no pre-activation sits on the ReLU kink at 0
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 7, 3)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def loss(p):
        return jnp.sum(jnp.tanh(nnx.merge(graphdef, p, rest)(x)) ** 2)

    grads = jax.grad(loss)(params)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    gflat, _ = jax.flatten_util.ravel_pytree(grads)
    eps = 1e-6
    idx = np.random.default_rng(5).choice(flat.size, size=min(25, flat.size), replace=False)
    for i in idx:
        e = jnp.zeros_like(flat).at[i].set(eps)
        fd = (loss(unravel(flat + e)) - loss(unravel(flat - e))) / (2 * eps)
        # central differences: O(eps^2) truncation + O(1e-16/eps) rounding ~ 1e-10
        np.testing.assert_allclose(gflat[i], fd, rtol=1e-6, atol=1e-8)


def test_states_shapes_of_every_model():
    x = np.zeros((2, 4, 3), np.float32)
    _, h = WaveRNN(3, 6, 2, 5, rngs=nnx.Rngs(0))(x, return_states=True)
    assert h.shape == (2, 4, 2, 6)
    for cls in (IRNN, GRU, LSTM):
        y, h = cls(3, 6, 5, rngs=nnx.Rngs(0))(x, return_states=True)
        assert y.shape == (2, 4, 5) and h.shape == (2, 4, 6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_neurons=0), "n_neurons must be a positive integer"),
    (dict(n_channels=-1), "n_channels must be a positive integer"),
    (dict(n_inputs=True), "n_inputs must be a positive integer"),
    (dict(kernel_size=4), "kernel_size must be odd"),
    (dict(init="wave"), "init must be one of"),
    (dict(encoder="sparse"), "encoder must be one of"),
])
def test_bad_constructor_arguments_are_named(kwargs, match):
    args = dict(n_inputs=3, n_neurons=5, n_channels=2, n_outputs=2) | kwargs
    with pytest.raises(ValueError, match=match):
        WaveRNN(**args, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("cls", [IRNN, GRU, LSTM])
def test_bad_baseline_sizes(cls):
    with pytest.raises(ValueError, match="n_outputs must be a positive integer"):
        cls(3, 5, 0, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("model", [WaveRNN(3, 5, 2, 2, rngs=nnx.Rngs(0)),
                                   IRNN(3, 5, 2, rngs=nnx.Rngs(0))])
@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 3)])
def test_wrong_input_width_is_rejected(model, shape):
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, time, 3\)"):
        model(np.zeros(shape, np.float32))
