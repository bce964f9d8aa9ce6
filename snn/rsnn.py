"""Discrete-time LIF layers and recurrent spiking networks (RSNN) as ``flax.nnx`` modules.

The deep-learning LIF neuron, one step of ``dt``:

    U[t] = beta U[t-1] + I[t] - S[t-1] theta          (reset by subtraction)
    U[t] = beta U[t-1] (1 - S[t-1]) + I[t]             (reset to zero)
    S[t] = H(U[t] - theta),    beta = exp(-dt / tau)

with the reset term detached from the gradient (``lax.stop_gradient``) and ``H`` a surrogate
spike function (:mod:`brainmodels.snn.surrogate`). A *heterogeneous* RSNN draws one membrane
time constant per neuron from a distribution (:func:`draw_time_constants`).

Models handle batches ``(batch, time, feature)``; time loops are ``lax.scan``.

References
----------
Eshraghian et al. (2023), Training spiking neural networks using lessons from deep learning,
Proc. IEEE 111(9), eqs. 4-5 (discrete LIF, reset by subtraction / to zero, detached reset).
Perez-Nieves et al. (2021), Neural heterogeneity promotes robust learning, Nat. Commun. 12, 5791
(per-neuron time constants drawn from a gamma distribution).
Chakraborty et al. (2024), Sparse spiking neural network: exploiting heterogeneity in timescales
for pruning recurrent SNN, ICLR, sec. 2 (HRSNN: gamma-distributed time constants).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, PRNGKeyArray
from brainmodels.snn.surrogate import get_surrogate

__all__ = [
    "TAU_DISTRIBUTIONS",
    "RESETS",
    "Mask",
    "TimeConstant",
    "draw_time_constants",
    "lif_step",
    "LIFLayer",
    "RSNN",
    "RSNNConfig",
    "RSNNOutput",
    "select_neurons",
    "record",
]


class Mask(nnx.Variable):
    """A fixed 0/1 mask (pruned synapses); not trained."""


class TimeConstant(nnx.Variable):
    """Membrane time constants in ms; not trained unless declared as ``nnx.Param``."""


# ----------------------------------------------------------------------------- time constants


def _tau_constant(key, n, mean, cv):
    return jnp.full((n,), mean)


def _tau_gamma(key, n, mean, cv):
    shape = 1.0 / cv**2
    return jax.random.gamma(key, shape, (n,)) * mean / shape


def _tau_lognormal(key, n, mean, cv):
    sigma2 = jnp.log1p(cv**2)
    return jnp.exp(jnp.log(mean) - sigma2 / 2 + jnp.sqrt(sigma2) * jax.random.normal(key, (n,)))


def _tau_uniform(key, n, mean, cv):
    half = jnp.sqrt(3.0) * cv * mean  # uniform with the requested mean and CV
    return jax.random.uniform(key, (n,), minval=mean - half, maxval=mean + half)


#: name -> sampler ``(key, n, mean_ms, cv) -> tau_ms``.
TAU_DISTRIBUTIONS: dict[str, Callable] = {
    "constant": _tau_constant,
    "gamma": _tau_gamma,
    "lognormal": _tau_lognormal,
    "uniform": _tau_uniform,
}


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_tau(name: str, tau, dt_ms: float) -> np.ndarray:
    arr = np.asarray(tau, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite (ms), got min {arr.min()!r}")
    if np.any(arr < dt_ms):
        raise ValueError(
            f"{name} must be >= dt_ms = {dt_ms} ms (a time constant shorter than the step is "
            f"not resolved), got min {arr.min():.4g} ms"
        )
    return arr


def draw_time_constants(
    n: int,
    *,
    key: PRNGKeyArray,
    distribution: str = "gamma",
    mean_ms: float = 20.0,
    cv: float = 0.5,
    dt_ms: float = 1.0,
    max_ms: float | None = None,
) -> Float[Array, " neuron"]:
    """Draw ``n`` membrane time constants (ms) from ``distribution``.

    Samples are clipped to ``[dt_ms, max_ms]`` (default ``max_ms = 10 mean_ms``) so that every
    neuron is resolved by the time step.

    Parameters
    ----------
    n : int
        Number of neurons.
    key : PRNG key
        Randomness (keyword-only).
    distribution : {"constant", "gamma", "lognormal", "uniform"}
        Shape of the distribution; all are parametrised by their mean and coefficient of
        variation ``cv`` (std / mean).

    Raises
    ------
    ValueError
        Unknown distribution, non-positive ``mean_ms``/``dt_ms``, ``cv < 0``, or
        ``mean_ms < dt_ms``.
    """
    if distribution not in TAU_DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {sorted(TAU_DISTRIBUTIONS)}, "
                         f"got {distribution!r}")
    mean_ms = _check_positive("mean_ms", mean_ms)
    dt_ms = _check_positive("dt_ms", dt_ms)
    _check_tau("mean_ms", mean_ms, dt_ms)
    if not cv >= 0 or (cv == 0 and distribution != "constant"):
        raise ValueError(f"cv must be > 0 for distribution {distribution!r}, got {cv!r}")
    hi = 10.0 * mean_ms if max_ms is None else _check_positive("max_ms", max_ms)
    return _draw_tau(key, mean_ms, float(cv), dt_ms, hi, n=int(n), distribution=distribution)


@partial(jax.jit, static_argnames=("n", "distribution"))
def _draw_tau(key, mean, cv, lo, hi, *, n, distribution):
    tau = TAU_DISTRIBUTIONS[distribution](key, n, mean, cv)
    return jnp.clip(tau, lo, hi).astype(jnp.float32)


# ----------------------------------------------------------------------------- LIF step


def _reset_subtract(u, s_prev, beta, theta):
    return beta * u - s_prev * theta


def _reset_zero(u, s_prev, beta, theta):
    return beta * u * (1.0 - s_prev)


#: name -> ``(u, s_prev, beta, theta) -> leaked and reset potential``.
RESETS: dict[str, Callable] = {"subtract": _reset_subtract, "zero": _reset_zero}


def lif_step(u, s_prev, current, *, beta, theta, reset: str = "subtract", spike_fn: Callable):
    """One step of the discrete LIF neuron (detached reset).

    ``U[t] = reset(beta U[t-1], S[t-1]) + I[t]``, ``S[t] = spike_fn(U[t] - theta)``.

    Returns
    -------
    (u, s) : arrays
        New membrane potential and spikes.
    """
    u = RESETS[reset](u, jax.lax.stop_gradient(s_prev), beta, theta) + current
    return u, spike_fn(u - theta)


def _check_choice(name: str, value: str, registry) -> str:
    if value not in registry:
        raise ValueError(f"{name} must be one of {sorted(registry)}, got {value!r}")
    return value


def _init_tau(n, tau_mem_ms, tau_distribution, tau_cv, dt_ms, rngs, name="tau_mem_ms"):
    if np.ndim(tau_mem_ms) == 0:
        _check_tau(name, tau_mem_ms, dt_ms)
        tau = draw_time_constants(n, key=rngs.params(), distribution=tau_distribution,
                                  mean_ms=float(tau_mem_ms), cv=tau_cv, dt_ms=dt_ms)
    else:
        arr = _check_tau(name, tau_mem_ms, dt_ms)
        if arr.shape != (n,):
            raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
        tau = jnp.asarray(arr, jnp.float32)
    return tau


# ----------------------------------------------------------------------------- modules


class _SpikeFnMixin:
    @property
    def spike_fn(self) -> Callable:
        """The surrogate spike function (rebuilt from the static name and slope, so that two
        models with the same configuration share compiled code)."""
        return get_surrogate(self.surrogate, self.surrogate_slope)


class LIFLayer(_SpikeFnMixin, nnx.Module):
    """A feed-forward layer of LIF neurons: ``I[t] = x[t] W + b``.

    Parameters
    ----------
    n_in, n_out : int
        Inputs and neurons.
    tau_mem_ms : float or array (n_out,)
        Membrane time constant(s); with ``tau_distribution`` other than ``"constant"`` a scalar
        is the mean of the distribution.
    dt_ms : float
        Time step; ``beta = exp(-dt/tau)``.
    threshold : float
        ``theta``.
    reset : {"subtract", "zero"}
    surrogate : {"fast_sigmoid", "arctan", "triangle"}
    rngs : nnx.Rngs
        Keyword-only randomness for the weights (and time constants).
    """

    def __init__(self, n_in: int, n_out: int, *, tau_mem_ms=20.0, dt_ms: float = 1.0,
                 threshold: float = 1.0, reset: str = "subtract", surrogate: str = "fast_sigmoid",
                 surrogate_slope: float | None = None, tau_distribution: str = "constant",
                 tau_cv: float = 0.0, weight_scale: float = 1.0, rngs: nnx.Rngs):
        self.dt_ms = _check_positive("dt_ms", dt_ms)
        self.threshold = _check_positive("threshold", threshold)
        self.reset = _check_choice("reset", reset, RESETS)
        self.surrogate, self.surrogate_slope = surrogate, surrogate_slope
        get_surrogate(surrogate, surrogate_slope)  # validate now, not at the first call
        self.tau_mem_ms = TimeConstant(
            _init_tau(n_out, tau_mem_ms, tau_distribution, tau_cv, self.dt_ms, rngs))
        std = weight_scale / np.sqrt(n_in)
        self.w = nnx.Param(std * jax.random.normal(rngs.params(), (n_in, n_out)))
        self.b = nnx.Param(jnp.zeros((n_out,)))

    def __call__(self, x: Float[ArrayLike, "batch time feature"]) -> Float[Array, "batch time unit"]:
        current = jnp.einsum("btf,fu->tbu", x, self.w[...]) + self.b[...][None, None, :]
        beta = jnp.exp(-self.dt_ms / self.tau_mem_ms[...])[None, :]
        step = _make_lif_scan_step(beta, self.threshold, self.reset, self.spike_fn)
        zeros = jnp.zeros(current.shape[1:], current.dtype)
        _, spikes = jax.lax.scan(step, (zeros, zeros), current)
        return jnp.swapaxes(spikes, 0, 1)


def _make_lif_scan_step(beta, theta, reset, spike_fn):
    def step(carry, i_t):
        u, s = lif_step(*carry, i_t, beta=beta, theta=theta, reset=reset, spike_fn=spike_fn)
        return (u, s), s

    return step


@partial(jax.jit, static_argnames=("shapes",))
def _init_rsnn_weights(key, in_scale, rec_scale, *, shapes):
    n_in, n_hidden, n_out = shapes
    k_in, k_rec, k_out = jax.random.split(key, 3)
    return (in_scale / np.sqrt(n_in) * jax.random.normal(k_in, (n_in, n_hidden)),
            rec_scale / np.sqrt(n_hidden) * jax.random.normal(k_rec, (n_hidden, n_hidden)),
            jax.random.normal(k_out, (n_hidden, n_out)) / np.sqrt(n_hidden))


class RSNNOutput(NamedTuple):
    """What :class:`RSNN` returns: readout potentials and hidden spikes, both batch-major."""

    readout: Float[Array, "batch time unit"]
    spikes: Float[Array, "batch time neuron"]


@dataclasses.dataclass(frozen=True)
class RSNNConfig:
    """Neurons and initialisation of an :class:`RSNN` (see its docstring for each field)."""

    tau_mem_ms: Any = 20.0
    tau_out_ms: float = 20.0
    dt_ms: float = 1.0
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    surrogate_slope: float | None = None
    tau_distribution: str = "constant"
    tau_cv: float = 0.0
    in_scale: float = 1.0
    rec_scale: float = 0.5
    tau_syn_ms: Any = None
    tau_syn_cv: float = 0.0


class RSNN(_SpikeFnMixin, nnx.Module):
    """Recurrent spiking network: input -> recurrent LIF layer -> leaky (non-spiking) readout.

    ``I[t] = x[t] W_in + S[t-1] (W_rec * M) + b``; hidden LIF neurons as in :func:`lif_step`;
    readout ``Y[t] = beta_out Y[t-1] + S[t] W_out + b_out``. ``M`` (:class:`Mask`) marks kept
    synapses (no autapses by default); pruning edits it. Heterogeneous time constants:
    ``tau_distribution="gamma"`` (HRSNN) with ``tau_cv``. With ``tau_syn_ms`` the recurrent
    current is filtered by per-neuron synapses, ``R[t] = alpha R[t-1] + (1 - alpha) S[t-1]
    (W_rec * M)`` with ``alpha = exp(-dt / tau_syn)`` (unit area: the filter changes the timing,
    not the total charge of a spike), and ``R[t]`` replaces ``S[t-1] (W_rec * M)`` in ``I[t]``.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
    config : RSNNConfig, optional
        Neurons and initialisation; keyword arguments override its fields
        (``RSNN(8, 32, 10, tau_cv=0.5, rngs=...)``), and a misspelt one is a TypeError.
    rngs : nnx.Rngs

    Fields of :class:`RSNNConfig`
    -----------------------------
    tau_mem_ms, dt_ms, threshold, reset, surrogate, surrogate_slope, tau_distribution, tau_cv
        As in :class:`LIF` (for the hidden layer).
    tau_out_ms : float
        Readout leak time constant.
    in_scale, rec_scale : float
        Standard deviations of the input and recurrent weights times ``sqrt(fan_in)``.
    tau_syn_ms, tau_syn_cv : float or array (n_hidden,), float
        Synaptic time constant(s) of the recurrent current, drawn like ``tau_mem_ms`` (from
        ``tau_distribution`` when ``tau_syn_cv > 0``, else constant) with keys drawn after the
        weights', so the weights do not depend on it. ``None`` (default): instantaneous
        synapses, the network above without the filter.

    Examples
    --------
    >>> net = RSNN(8, 32, 10, tau_distribution="gamma", tau_cv=0.5, rngs=nnx.Rngs(0))
    >>> out = net(jnp.ones((4, 16, 8)))
    >>> out.readout.shape, out.spikes.shape
    ((4, 16, 10), (4, 16, 32))
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, config: RSNNConfig | None = None,
                 *, rngs: nnx.Rngs, **overrides):
        try:
            c = dataclasses.replace(config or RSNNConfig(), **overrides)
        except TypeError as err:
            fields = [f.name for f in dataclasses.fields(RSNNConfig)]
            raise TypeError(f"RSNN got an unknown argument ({err}); its fields are {fields}") \
                from None
        tau_mem_ms, tau_out_ms, dt_ms, threshold, reset = (c.tau_mem_ms, c.tau_out_ms, c.dt_ms,
                                                           c.threshold, c.reset)
        surrogate, surrogate_slope, tau_distribution, tau_cv = (
            c.surrogate, c.surrogate_slope, c.tau_distribution, c.tau_cv)
        in_scale, rec_scale = c.in_scale, c.rec_scale
        self.n_in, self.n_hidden, self.n_out = int(n_in), int(n_hidden), int(n_out)
        self.dt_ms = _check_positive("dt_ms", dt_ms)
        self.threshold = _check_positive("threshold", threshold)
        self.reset = _check_choice("reset", reset, RESETS)
        self.surrogate, self.surrogate_slope = surrogate, surrogate_slope
        get_surrogate(surrogate, surrogate_slope)  # validate now, not at the first call
        _check_tau("tau_out_ms", tau_out_ms, self.dt_ms)
        self.tau_out_ms = float(tau_out_ms)
        self.tau_mem_ms = TimeConstant(
            _init_tau(n_hidden, tau_mem_ms, tau_distribution, tau_cv, self.dt_ms, rngs))
        w_in, w_rec, w_out = _init_rsnn_weights(rngs.params(), float(in_scale), float(rec_scale),
                                                shapes=(self.n_in, self.n_hidden, self.n_out))
        self.w_in, self.w_rec, self.w_out = nnx.Param(w_in), nnx.Param(w_rec), nnx.Param(w_out)
        self.rec_mask = Mask(jnp.asarray(1.0 - np.eye(n_hidden, dtype=np.float32)))
        self.b = nnx.Param(jnp.asarray(np.zeros(n_hidden, np.float32)))
        self.b_out = nnx.Param(jnp.asarray(np.zeros(n_out, np.float32)))
        self.tau_syn_ms = nnx.data(None if c.tau_syn_ms is None else TimeConstant(_init_tau(
            n_hidden, c.tau_syn_ms, tau_distribution if c.tau_syn_cv > 0 else "constant",
            c.tau_syn_cv, self.dt_ms, rngs, name="tau_syn_ms")))

    @property
    def beta(self) -> Float[Array, " neuron"]:
        """Per-neuron leak factor ``exp(-dt / tau)``."""
        return jnp.exp(-self.dt_ms / self.tau_mem_ms[...])

    @property
    def syn_alpha(self) -> Float[Array, " neuron"] | None:
        """Per-neuron synaptic decay ``exp(-dt / tau_syn)``; None for instantaneous synapses."""
        return None if self.tau_syn_ms is None else jnp.exp(-self.dt_ms / self.tau_syn_ms[...])

    def effective_w_rec(self) -> Float[ArrayLike, "neuron neuron"]:
        """Recurrent weights with pruned synapses zeroed (presynaptic rows, postsynaptic cols)."""
        return self.w_rec[...] * self.rec_mask[...]

    def __call__(self, x: Float[ArrayLike, "batch time feature"]) -> RSNNOutput:
        x = jnp.asarray(x)
        if x.ndim != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"x must have shape (batch, time, {self.n_in}), got {x.shape}")
        drive = jnp.einsum("btf,fn->tbn", x, self.w_in[...]) + self.b[...][None, None, :]
        w_rec, beta = self.effective_w_rec(), self.beta[None, :]
        beta_out = float(np.exp(-self.dt_ms / self.tau_out_ms))
        w_out, b_out = self.w_out[...], self.b_out[...][None, :]
        theta, reset, spike_fn = self.threshold, self.reset, self.spike_fn
        alpha = self.syn_alpha

        def step(carry, d_t):
            u, s, y = carry[:3]
            rec = s @ w_rec
            if alpha is not None:  # filtered synapses: one more state, R
                rec = alpha[None, :] * carry[3] + (1.0 - alpha[None, :]) * rec
            u, s_new = lif_step(u, s, d_t + rec, beta=beta, theta=theta, reset=reset,
                                spike_fn=spike_fn)
            y = beta_out * y + s_new @ w_out + b_out
            return (u, s_new, y, *(() if alpha is None else (rec,))), (y, s_new)

        batch = drive.shape[1]
        init = (jnp.zeros((batch, self.n_hidden), drive.dtype),
                jnp.zeros((batch, self.n_hidden), drive.dtype),
                jnp.zeros((batch, self.n_out), drive.dtype))
        if alpha is not None:
            init = (*init, jnp.zeros((batch, self.n_hidden), drive.dtype))
        _, (ys, spikes) = jax.lax.scan(step, init, drive)
        return RSNNOutput(jnp.swapaxes(ys, 0, 1), jnp.swapaxes(spikes, 0, 1))


def select_neurons(model: RSNN, keep: ArrayLike) -> RSNN:
    """A new :class:`RSNN` with only the hidden neurons ``keep`` (indices or a boolean mask).

    Weights, masks and time constants of the kept neurons are copied; the rest is dropped, so
    the smaller network computes exactly what the original computes with the other neurons
    silenced.

    Raises
    ------
    ValueError
        If ``keep`` is empty or indexes a neuron that does not exist.
    """
    keep = np.asarray(keep)
    if keep.dtype == bool:
        if keep.shape != (model.n_hidden,):
            raise ValueError(f"boolean keep must have shape ({model.n_hidden},), got {keep.shape}")
        keep = np.flatnonzero(keep)
    keep = keep.astype(int).ravel()
    if keep.size == 0 or keep.min() < 0 or keep.max() >= model.n_hidden:
        raise ValueError(f"keep must hold 1..{model.n_hidden} neuron indices in "
                         f"[0, {model.n_hidden}), got {keep.size} indices "
                         f"(range {keep.min() if keep.size else None}.."
                         f"{keep.max() if keep.size else None})")
    new = nnx.clone(model)
    new.n_hidden = int(keep.size)
    ix = jnp.asarray(keep)
    new.tau_mem_ms = TimeConstant(model.tau_mem_ms[...][ix])
    new.w_in = nnx.Param(model.w_in[...][:, ix])
    new.w_rec = nnx.Param(model.w_rec[...][ix][:, ix])
    new.rec_mask = Mask(model.rec_mask[...][ix][:, ix])
    new.b = nnx.Param(model.b[...][ix])
    new.w_out = nnx.Param(model.w_out[...][ix])
    if model.tau_syn_ms is not None:
        new.tau_syn_ms = TimeConstant(model.tau_syn_ms[...][ix])
    return new


@nnx.jit
def _forward(model, x):
    return model(x)


def record(model: RSNN, x, *, batch_size: int = 256):
    """Run ``model`` on ``x`` and return labelled activity (for RSA, encoders, plots).

    Parameters
    ----------
    model : RSNN
    x : array or DataArray (sample, time, feature)
        A DataArray's first dimension (e.g. ``stimulus``) and its coordinates are kept.
    batch_size : int
        Samples per compiled call (the last batch is padded, so one shape is compiled).

    Returns
    -------
    xarray.Dataset
        ``spikes`` (sample, time, neuron) and ``readout`` (sample, time, unit), time in ms,
        with :func:`brainmodels.data.provenance` attributes.
    """
    import xarray as xr

    from brainmodels.data import provenance, unwrap

    values, template = unwrap(x, name="x")
    values = np.asarray(values, np.float32)
    if values.ndim != 3 or values.shape[-1] != model.n_in:
        raise ValueError(f"x must have shape (sample, time, {model.n_in}), got {values.shape}")
    n, bs = values.shape[0], min(batch_size, values.shape[0])
    spikes, readout = [], []
    for start in range(0, n, bs):
        xb = values[start:start + bs]
        m = xb.shape[0]
        if m < bs:
            xb = np.concatenate([xb, np.zeros((bs - m, *xb.shape[1:]), np.float32)])
        out = _forward(model, xb)
        spikes.append(np.asarray(out.spikes[:m], np.uint8))
        readout.append(np.asarray(out.readout[:m]))
    first = template.dims[0] if template is not None else "sample"
    coords = {"time": model.dt_ms * np.arange(1, values.shape[1] + 1)}
    if template is not None and first in template.coords:
        coords[first] = template.coords[first].values
    tau = np.asarray(model.tau_mem_ms[...])
    attrs = provenance("RSNN", params={
        "n_hidden": model.n_hidden, "dt_ms": model.dt_ms, "threshold": model.threshold,
        "reset": model.reset, "surrogate": model.surrogate, "tau_mem_ms_mean": float(tau.mean()),
        "tau_mem_ms_cv": float(tau.std() / tau.mean()), "tau_out_ms": model.tau_out_ms,
        "n_synapses": int(np.count_nonzero(np.asarray(model.effective_w_rec())))},
        units={"time": "ms", "spikes": "spike per step", "readout": "a.u."})
    return xr.Dataset(
        {"spikes": ((first, "time", "neuron"), np.concatenate(spikes)),
         "readout": ((first, "time", "unit"), np.concatenate(readout))},
        coords=coords, attrs=attrs)
