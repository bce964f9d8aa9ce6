"""Wave-RNNs and their wave-free baselines (Keller, Muller, Sejnowski & Welling, ICLR 2024).

:class:`WaveRNN` keeps its hidden state on ``n_channels`` circular 1-D sheets of ``n_neurons``
neurons and updates it by a circular convolution (eq. 1 of the paper),

    h_t = ReLU(W_x x_t + b_x + u * h_{t-1} + b_u),      y_t = W_y h_t + b_y,

where ``u *`` is a circular ``Conv1d(n_channels, n_channels, kernel_size)``. With the
``"shift"`` initialisation the kernel is the identity rolled by one neuron, so activity
travels one neuron per step around the ring. :class:`IRNN` is the wave-free counterpart (dense
recurrence initialised to the identity, Le et al. 2015); :class:`GRU` and :class:`LSTM` wrap
flax's cells. Every model maps ``(batch, time, input)`` to ``(batch, time, output)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["WaveRNN", "IRNN", "GRU", "LSTM", "MODELS", "count_params"]

INITS = ("shift", "identity", "random")
ENCODERS = ("single_source", "dense")


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_inputs(x, n_inputs: int, model: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 3 or x.shape[-1] != n_inputs:
        raise ValueError(f"{model} expects inputs of shape (batch, time, {n_inputs}), "
                         f"got {tuple(x.shape)}")
    return x


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves) of ``model``."""
    state = nnx.state(model, nnx.Param)
    return int(sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(state)))


class _Readout(nnx.Module):
    """Linear readout, or a one-hidden-layer ReLU MLP when ``hidden`` is given."""

    def __init__(self, n_in, n_out, hidden, *, param_dtype, rngs):
        kw = dict(param_dtype=param_dtype, bias_init=nnx.initializers.zeros, rngs=rngs)
        if hidden is None:
            self.layers = nnx.List([nnx.Linear(n_in, n_out, **kw)])
        else:
            hidden = _check_size("decoder_hidden", hidden)
            self.layers = nnx.List([nnx.Linear(n_in, hidden, **kw), nnx.Linear(hidden, n_out, **kw)])

    def __call__(self, h):
        for i, layer in enumerate(self.layers):
            h = layer(jax.nn.relu(h) if i else h)
        return h


def _shift_kernel(c: int, k: int, offset: int, dtype) -> jax.Array:
    """``(c_out, c_in, k)``: channel-diagonal delta at tap ``k // 2 - offset``."""
    w = jnp.zeros((c, c, k), dtype)
    return w.at[jnp.arange(c), jnp.arange(c), k // 2 - offset].set(1.0)


def circular_conv(h: jax.Array, kernel: jax.Array) -> jax.Array:
    """Circular cross-correlation over the last axis, mixing channels.

    ``out[b, o, i] = sum_{c, k} kernel[o, c, k] h[b, c, (i + k - K // 2) mod N]``, as PyTorch's
    ``Conv1d(padding=K // 2, padding_mode="circular")``.
    """
    k = kernel.shape[-1]
    taps = jnp.stack([jnp.roll(h, k // 2 - j, axis=-1) for j in range(k)], axis=-1)
    return jnp.einsum("ock,bcnk->bon", kernel, taps)


class WaveRNN(nnx.Module):
    """Wave-RNN: ReLU units on ``n_channels`` rings of ``n_neurons``, circular-conv recurrence.

    Parameters
    ----------
    n_inputs, n_neurons, n_channels, n_outputs : int
        Input width, neurons per ring, rings (channels) and outputs; all positive.
    kernel_size : int
        Odd width of the recurrent convolution (3 in the paper).
    init : {"shift", "identity", "random"}
        Recurrent kernel: identity rolled by one neuron (waves travel one neuron per step),
        the identity (standing activity), or uniform ``+-1/sqrt(n_channels kernel_size)``
        (PyTorch's Conv1d default).
    encoder : {"single_source", "dense"}
        Initial input weights: 1 from each input into neuron 0 of every channel and 0
        elsewhere (the paper's code), or LeCun-normal over all neurons. Trainable either way.
    decoder_hidden : int, optional
        Width of a ReLU hidden layer in the readout (an MLP decoder); linear when ``None``.
    param_dtype : dtype
    rngs : nnx.Rngs

    Notes
    -----
    Parameter count: ``n_in (C N) + C N`` (encoder) ``+ C^2 K + C`` (recurrence) ``+ C N n_out
    + n_out`` (readout): 12,724 for the copy task's 100 x 6 network with 10 inputs and outputs.
    """

    def __init__(self, n_inputs: int, n_neurons: int, n_channels: int, n_outputs: int, *,
                 kernel_size: int = 3, init: str = "shift", encoder: str = "single_source",
                 decoder_hidden: int | None = None, param_dtype=jnp.float32, rngs: nnx.Rngs):
        for name, v in (("n_inputs", n_inputs), ("n_neurons", n_neurons),
                        ("n_channels", n_channels), ("n_outputs", n_outputs),
                        ("kernel_size", kernel_size)):
            _check_size(name, v)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        self.n_inputs, self.n_neurons, self.n_channels = n_inputs, n_neurons, n_channels
        self.n_outputs, self.init, self.encoder = n_outputs, init, encoder
        c, n, k = n_channels, n_neurons, kernel_size
        self.encode = nnx.Linear(n_inputs, c * n, param_dtype=param_dtype,
                                 bias_init=nnx.initializers.zeros, rngs=rngs)
        if encoder == "single_source":
            w = jnp.zeros((n_inputs, c, n), param_dtype).at[:, :, 0].set(1.0)
            self.encode.kernel[...] = w.reshape(n_inputs, c * n)
        if init == "shift":
            kernel = _shift_kernel(c, k, 1, param_dtype)
        elif init == "identity":
            kernel = _shift_kernel(c, k, 0, param_dtype)
        else:
            bound = 1.0 / math.sqrt(c * k)
            kernel = jax.random.uniform(rngs.params(), (c, c, k), param_dtype, -bound, bound)
        self.kernel = nnx.Param(kernel)
        self.bias = nnx.Param(jnp.zeros((c,), param_dtype))
        self.readout = _Readout(c * n, n_outputs, decoder_hidden, param_dtype=param_dtype,
                                rngs=rngs)

    def __call__(self, x, *, return_states: bool = False):
        """Run the network over ``x`` ``(batch, time, n_inputs)`` from a zero state.

        Returns ``y`` ``(batch, time, n_outputs)``, and with ``return_states`` also the hidden
        states ``(batch, time, n_channels, n_neurons)``.
        """
        x = _check_inputs(x, self.n_inputs, "WaveRNN")
        b, c, n = x.shape[0], self.n_channels, self.n_neurons
        drive = self.encode(x).reshape(b, x.shape[1], c, n)
        kernel, bias = self.kernel[...], self.bias[...][None, :, None]

        def step(h, u):
            h = jax.nn.relu(u + circular_conv(h, kernel) + bias)
            return h, h

        h0 = jnp.zeros((b, c, n), drive.dtype)
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(drive, 0, 1))
        hs = jnp.swapaxes(hs, 0, 1)
        y = self.readout(hs.reshape(b, x.shape[1], c * n))
        return (y, hs) if return_states else y


class IRNN(nnx.Module):
    """ReLU RNN with dense recurrence initialised to the identity (Le, Jaitly & Hinton 2015).

    ``h_t = ReLU(W_x x_t + b_x + W_h h_{t-1} + b_h)``, ``y_t = W_y h_t + b_y``; ``W_h = I``,
    biases zero. 12,210 parameters at 100 neurons with 10 inputs and outputs.
    """

    def __init__(self, n_inputs: int, n_neurons: int, n_outputs: int, *,
                 decoder_hidden: int | None = None, param_dtype=jnp.float32, rngs: nnx.Rngs):
        for name, v in (("n_inputs", n_inputs), ("n_neurons", n_neurons),
                        ("n_outputs", n_outputs)):
            _check_size(name, v)
        self.n_inputs, self.n_neurons, self.n_outputs = n_inputs, n_neurons, n_outputs
        kw = dict(param_dtype=param_dtype, bias_init=nnx.initializers.zeros, rngs=rngs)
        self.encode = nnx.Linear(n_inputs, n_neurons, **kw)
        self.recur = nnx.Linear(n_neurons, n_neurons, **kw)
        self.recur.kernel[...] = jnp.eye(n_neurons, dtype=param_dtype)
        self.readout = _Readout(n_neurons, n_outputs, decoder_hidden, param_dtype=param_dtype,
                                rngs=rngs)

    def __call__(self, x, *, return_states: bool = False):
        """``(batch, time, n_inputs)`` -> ``(batch, time, n_outputs)`` [, states (b, t, n)]."""
        x = _check_inputs(x, self.n_inputs, "IRNN")
        drive = self.encode(x)
        w, bh = self.recur.kernel[...], self.recur.bias[...]

        def step(h, u):
            h = jax.nn.relu(u + h @ w + bh[None])
            return h, h

        h0 = jnp.zeros((x.shape[0], self.n_neurons), drive.dtype)
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(drive, 0, 1))
        hs = jnp.swapaxes(hs, 0, 1)
        y = self.readout(hs)
        return (y, hs) if return_states else y


class _Gated(nnx.Module):
    """A flax recurrent cell run over time, with a linear readout of its hidden state."""

    name = "RNN"

    def __init__(self, n_inputs, n_neurons, n_outputs, *, decoder_hidden=None,
                 param_dtype=jnp.float32, rngs):
        for name, v in (("n_inputs", n_inputs), ("n_neurons", n_neurons),
                        ("n_outputs", n_outputs)):
            _check_size(name, v)
        self.n_inputs, self.n_neurons, self.n_outputs = n_inputs, n_neurons, n_outputs
        cell = self._cell(n_inputs, n_neurons, param_dtype=param_dtype, rngs=rngs)
        self.rnn = nnx.RNN(cell)
        self.readout = _Readout(n_neurons, n_outputs, decoder_hidden, param_dtype=param_dtype,
                                rngs=rngs)

    def __call__(self, x, *, return_states: bool = False):
        """``(batch, time, n_inputs)`` -> ``(batch, time, n_outputs)`` [, states (b, t, n)]."""
        x = _check_inputs(x, self.n_inputs, self.name)
        hs = self.rnn(x)
        y = self.readout(hs)
        return (y, hs) if return_states else y


class GRU(_Gated):
    """flax's ``nnx.GRUCell`` over time with a linear readout (wave-free gated baseline)."""

    name = "GRU"
    _cell = staticmethod(nnx.GRUCell)


class LSTM(_Gated):
    """flax's ``nnx.OptimizedLSTMCell`` over time with a linear readout."""

    name = "LSTM"
    _cell = staticmethod(nnx.OptimizedLSTMCell)


#: CLI name -> class
MODELS = {"wave-rnn": WaveRNN, "irnn": IRNN, "gru": GRU, "lstm": LSTM}
