"""Spiking neuron models: frozen parameter dataclasses with pure step functions.

Units everywhere: time in ms, voltages in mV, external currents in nA (turned into mV by the
membrane resistance ``r_m`` in MOhm), rates in Hz. Every parameter may be a scalar or one value
per neuron (heterogeneous populations); every model can be ``vmap``-ed over its parameters.

A model implements the step of one population in brian2's order (``Network.schedule``:
groups -> thresholds -> synapses -> resets), split into pure functions:

``init_state(n, v0=None)``
    state dict: ``v`` (mV), ``g`` (channel, neuron) synaptic variables, ``last_spike`` (the
    step of the last spike, int32), plus model variables (``w`` nA, ``u`` mV/ms).
``update(state, i_ext, dt, step)``
    integrate one step ``dt``; neurons in their refractory period keep ``v`` (brian2's
    ``(unless refractory)``), the rest integrate. Refractory at step ``n`` means
    ``n - last_spike < round(t_ref / dt)`` (brian2's ``timestep`` rule).
``spikes(state, step)``
    ``v > v_th`` and not refractory (evaluated after the update, as brian2 does).
``reset(state, spikes, step)``
    reset to ``v_reset`` (``reset="value"``) or subtract ``v_th - v_reset``
    (``reset="subtract"``); adaptive models increment their adaptation variable.

Integration: :class:`LIF` with current synapses is linear, so it uses the exact propagator
(brian2 ``method='exact'``); :class:`LIF` with conductance synapses is linear in ``v`` for
fixed conductances and uses exponential Euler (brian2 ``method='exponential_euler'``);
:class:`AdaptiveLIF` and :class:`Izhikevich` use an explicit Runge-Kutta method chosen from
:data:`INTEGRATORS` (``"euler"``, ``"rk2"``, ``"rk4"`` as brian2's state updaters). Synaptic
variables always decay exactly.

References
----------
Brette, R. et al. (2007). Simulation of networks of spiking neurons. J. Comput. Neurosci. 23,
349-398 (LIF benchmarks, eqs. 1-3). Rotter & Diesmann (1999). Exact digital simulation of
time-invariant linear systems. Biol. Cybern. 81, 381-402 (exact propagator).
Brette & Gerstner (2005). Adaptive exponential integrate-and-fire model. J. Neurophysiol. 94,
3637-3642 (adaptation: eq. 2). Izhikevich (2003). Simple model of spiking neurons. IEEE TNN 14,
1569-1572 (eqs. 1-4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import struct

from brainmodels._types import Array, ArrayLike, Float
from brainmodels.integrators import INTEGRATORS as _REGISTRY
from brainmodels.snn.synapses import ExpSynapses, _channel_sum, current_synapses

__all__ = ["LIF", "AdaptiveLIF", "Izhikevich", "LIFState", "AdaptiveLIFState", "IzhikevichState",
           "INTEGRATORS", "RESETS", "NEURON_UNITS"]

#: Units of the state variables and parameters (stored in result attrs).
NEURON_UNITS = {
    "time": "ms", "v": "mV", "g_current": "mV", "g_conductance": "1 (relative to leak)",
    "i_ext": "nA", "r_m": "MOhm", "w": "nA", "u": "mV/ms", "rate": "Hz",
}
_NEVER = -(2**30)  # last_spike before any spike: never refractory


class LIFState(NamedTuple):
    """State of :class:`LIF` neurons: membrane potential (mV), synaptic variables
    (channel, neuron) and the step of the last spike (for refractoriness)."""

    v: Array
    g: Array
    last_spike: Array


class AdaptiveLIFState(NamedTuple):
    """State of :class:`AdaptiveLIF` neurons: :class:`LIFState` plus the adaptation current
    ``w`` (nA)."""

    v: Array
    g: Array
    last_spike: Array
    w: Array


class IzhikevichState(NamedTuple):
    """State of :class:`Izhikevich` neurons: :class:`LIFState` plus the recovery variable
    ``u`` (mV/ms)."""

    v: Array
    g: Array
    last_spike: Array
    u: Array


#: The explicit methods the nonlinear models offer (brian2's state updaters of the same name),
#: from the package's one registry, :data:`brainmodels.integrators.INTEGRATORS`.
INTEGRATORS = {name: _REGISTRY[name] for name in ("euler", "rk2", "rk4")}


def _integrate(method: str, f, y, dt):
    """One step of ``dy/dt = f(y)`` (autonomous: ``t`` is unused) with ``INTEGRATORS[method]``."""
    return INTEGRATORS[method].step(lambda y, t: f(y), y, 0.0, dt)


def _reset_value(model, v):
    return jnp.broadcast_to(jnp.asarray(model.v_reset, v.dtype), v.shape)


def _reset_subtract(model, v):
    return v - (jnp.asarray(model.v_th, v.dtype) - jnp.asarray(model.v_reset, v.dtype))


#: How ``v`` is reset after a spike.
RESETS: dict[str, Callable] = {"value": _reset_value, "subtract": _reset_subtract}


def _check_positive(name: str, value, *, allow_zero: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        kind = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {kind} ms, got {arr.min() if arr.ndim else arr}")
    return arr


def _check_dt(dt: float, **taus) -> None:
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt_ms must be a positive number of ms, got {dt}")
    for name, tau in taus.items():
        arr = _check_positive(name, tau)
        if np.any(dt > arr):
            raise ValueError(
                f"dt_ms={dt} is larger than the time constant {name}={arr.min()} ms; "
                "use a smaller dt"
            )


class _Base:
    """Shared state handling (refractoriness, synapses, resets) of the neuron models."""

    def ref_steps(self, dt: float):
        return jnp.floor(jnp.asarray(self.t_ref) / dt + 1e-3).astype(jnp.int32)

    def not_refractory(self, state, step, dt):
        return (step - state.last_spike) >= self.ref_steps(dt)

    def _common_state(self, n: int, v0: ArrayLike | None, dtype) -> LIFState:
        v = jnp.full((n,), self.v_rest if v0 is None else 0.0, dtype)
        if v0 is not None:
            v0 = jnp.asarray(v0, dtype)
            if v0.shape not in ((), (n,)):
                raise ValueError(f"v0 must be a scalar or have shape ({n},), got {v0.shape}")
            v = jnp.broadcast_to(v0, (n,)).astype(dtype)
        return LIFState(v, jnp.zeros((len(self.syn.names), n), dtype),
                        jnp.full((n,), _NEVER, jnp.int32))

    def init_state(self, n: int, v0: ArrayLike | None = None, dtype=jnp.float32) -> LIFState:
        """Initial state of ``n`` neurons (``v0`` in mV, default ``v_rest``)."""
        return self._common_state(n, v0, dtype)

    def spikes(self, state, step, dt) -> Array:
        """Boolean spike vector: ``v > v_th`` and not refractory."""
        return (state.v > self.v_th) & self.not_refractory(state, step, dt)

    def reset(self, state, spikes, step, dt: float | None = None):
        """Apply the reset to the neurons that spiked at ``step`` (``dt``: needed by delta
        synapses, whose arrivals during refractoriness are dropped)."""
        if self.reset_mode not in RESETS:
            raise ValueError(f"reset must be one of {sorted(RESETS)}, got {self.reset_mode!r}")
        v = jnp.where(spikes, RESETS[self.reset_mode](self, state.v), state.v)
        last = jnp.where(spikes, step, state.last_spike).astype(jnp.int32)
        if self.syn.kind == "delta":
            # jumps that arrive while the neuron is refractory at this step (it spiked now or
            # earlier) are lost, as brian2's v_post += w * int(not_refractory_post)
            if dt is None:
                raise ValueError("reset of a neuron with delta synapses needs dt")
            free = (step - last) >= self.ref_steps(dt)
            return state._replace(v=v, last_spike=last, g=jnp.where(free, state.g, 0.0))
        return state._replace(v=v, last_spike=last)

    # the two-variable models (v and one recovery variable, integrated with ``method``)

    def _validate_nonlinear(self, dt: float, **taus) -> None:
        _check_dt(dt, **taus)
        _check_positive("t_ref", self.t_ref, allow_zero=True)
        self.syn.validate(dt)
        if self.method not in INTEGRATORS:
            raise ValueError(f"method must be one of {sorted(INTEGRATORS)}, got {self.method!r}")

    def _advance(self, state, f, var: str, dt: float, step):
        """One step of ``(v, var)' = f((v, var))`` after any delta jumps; ``v`` held while
        refractory."""
        # delta jumps: the reset has emptied g of every neuron refractory when they arrived
        v_in = self.syn.jump(state.g, state.v)
        v_new, x_new = _integrate(self.method, f, (v_in, getattr(state, var)), dt)
        v_new = jnp.where(self.not_refractory(state, step, dt), v_new, state.v)
        return state._replace(v=v_new, g=self.syn.decay(state.g, dt), **{var: x_new})

    def _reset_with_jump(self, state, spikes, step, var: str, jump, dt=None):
        """The reset of ``v``, and ``var`` jumps by ``jump`` at a spike."""
        out = _Base.reset(self, state, spikes, step, dt)
        x = getattr(out, var)
        return out._replace(**{var: jnp.where(spikes, x + jump, x)})

    def traces(self, state) -> dict:
        """Recordable variables by name (``v``, ``g_<channel>``, model variables)."""
        out = {k: v for k, v in state._asdict().items() if k not in ("g", "last_spike")}
        for c, name in enumerate(self.syn.names):
            out[f"g_{name}"] = state.g[c]
        return out


@struct.dataclass
class LIF(_Base):
    """Leaky integrate-and-fire neuron with exponential current or conductance synapses.

    ``tau_m dv/dt = (E_l - v) + r_m i_ext + sum_c g_c`` (current synapses) or
    ``... + sum_c g_c (E_c - v)`` (conductance synapses; ``g`` relative to the leak);
    spike when ``v > v_th``; reset to ``v_reset`` (or subtract); refractory ``t_ref`` ms.
    Brette et al. (2007), eqs. 1-3.

    Parameters
    ----------
    tau_m : float or (neuron,)
        Membrane time constant, ms.
    v_rest : float or (neuron,)
        Leak reversal potential ``E_l``, mV.
    v_th, v_reset : float or (neuron,)
        Threshold and reset potential, mV.
    t_ref : float or (neuron,)
        Absolute refractory period, ms (``v`` is clamped, synapses keep integrating).
    r_m : float
        Membrane resistance, MOhm (1 nA of ``i_ext`` drives ``r_m`` mV).
    syn : ExpSynapses
        Synaptic channels (:func:`~brainmodels.snn.synapses.current_synapses` by default).
    reset_mode : {"value", "subtract"}
        Static.
    """

    tau_m: ArrayLike = 20.0
    v_rest: ArrayLike = -60.0
    v_th: ArrayLike = -50.0
    v_reset: ArrayLike = -60.0
    t_ref: ArrayLike = 0.0
    r_m: ArrayLike = 1.0
    syn: ExpSynapses = struct.field(default_factory=current_synapses)
    reset_mode: str = struct.field(pytree_node=False, default="value")

    def validate(self, dt: float) -> None:
        """Raise ValueError for non-positive time constants or a too large ``dt``."""
        _check_dt(dt, tau_m=self.tau_m)
        _check_positive("t_ref", self.t_ref, allow_zero=True)
        self.syn.validate(dt)
        if self.reset_mode not in RESETS:
            raise ValueError(f"reset must be one of {sorted(RESETS)}, got {self.reset_mode!r}")

    def update(self, state: LIFState, i_ext: Float[ArrayLike, "*neuron"] | float, dt: float,
               step) -> LIFState:
        """Integrate one step (exact for current synapses, exponential Euler otherwise)."""
        v, g = state.v, state.g
        if self.syn.kind == "delta":  # jumps first, then the exact leak (no synaptic current)
            v_new = self._exact_current(self.syn.jump(g, v), g[:0], i_ext, dt)
        elif self.syn.kind == "current":
            v_new = self._exact_current(v, g, i_ext, dt)
        else:
            v_new = self._exp_euler_conductance(v, g, i_ext, dt)
        v_new = jnp.where(self.not_refractory(state, step, dt), v_new, v)
        return state._replace(v=v_new, g=self.syn.decay(g, dt))

    def _exact_current(self, v, g, i_ext, dt):
        tau_m = jnp.asarray(self.tau_m, v.dtype)
        em = jnp.exp(-dt / tau_m)
        u_inf = jnp.asarray(self.v_rest, v.dtype) + self.r_m * i_ext
        v_new = u_inf + (v - u_inf) * em
        for c in range(g.shape[0]):  # propagator of dv/dt = (g_c - u)/tau_m, g_c decaying
            tau_c = jnp.asarray(self.syn.tau, v.dtype)[c]
            ec = jnp.exp(-dt / tau_c)
            same = jnp.abs(tau_c - tau_m) < 1e-6 * tau_m
            denom = jnp.where(same, 1.0, tau_c - tau_m)
            coef = jnp.where(same, dt / tau_m * em, tau_c / denom * (ec - em))
            v_new = v_new + coef * g[c]
        return v_new

    def _exp_euler_conductance(self, v, g, i_ext, dt):
        e_rev = jnp.asarray(self.syn.e_rev, v.dtype)
        b = 1.0 + _channel_sum(g)
        a = (jnp.asarray(self.v_rest, v.dtype) + self.r_m * i_ext
             + _channel_sum(g, lambda c, gc: gc * e_rev[c]))
        v_inf = a / b
        return v_inf + (v - v_inf) * jnp.exp(-b * dt / jnp.asarray(self.tau_m, v.dtype))


@struct.dataclass
class AdaptiveLIF(_Base):
    """LIF with a spike-triggered and subthreshold adaptation current ``w`` (nA).

    ``tau_m dv/dt = E_l - v + r_m (i_ext - w) + syn``, ``tau_w dw/dt = a (v - E_l) - w``;
    at a spike ``v -> v_reset``, ``w -> w + b`` (Brette & Gerstner 2005, eq. 2 without the
    exponential term). ``a`` in uS, ``b`` in nA. Integrated with ``method`` (static).
    """

    tau_m: ArrayLike = 20.0
    v_rest: ArrayLike = -70.0
    v_th: ArrayLike = -50.0
    v_reset: ArrayLike = -58.0
    t_ref: ArrayLike = 0.0
    r_m: ArrayLike = 100.0
    tau_w: ArrayLike = 100.0
    a: ArrayLike = 0.0
    b: ArrayLike = 0.05
    syn: ExpSynapses = struct.field(default_factory=current_synapses)
    reset_mode: str = struct.field(pytree_node=False, default="value")
    method: str = struct.field(pytree_node=False, default="rk2")

    def validate(self, dt: float) -> None:
        self._validate_nonlinear(dt, tau_m=self.tau_m, tau_w=self.tau_w)

    def init_state(self, n: int, v0: ArrayLike | None = None,
                   dtype=jnp.float32) -> AdaptiveLIFState:
        return AdaptiveLIFState(*self._common_state(n, v0, dtype), jnp.zeros((n,), dtype))

    def update(self, state, i_ext, dt: float, step):
        syn = self.syn.drive(state.g, state.v)

        def f(y):
            v, w = y
            dv = (self.v_rest - v + self.r_m * (i_ext - w) + syn) / self.tau_m
            return dv, (self.a * (v - self.v_rest) - w) / self.tau_w

        return self._advance(state, f, "w", dt, step)

    def reset(self, state, spikes, step, dt: float | None = None):
        return self._reset_with_jump(state, spikes, step, "w", self.b, dt)


@struct.dataclass
class Izhikevich(_Base):
    """Izhikevich (2003) neuron, eqs. 1-3 (time in ms, v in mV).

    ``dv/dt = 0.04 v^2 + 5 v + 140 - u + r_m i_ext + syn``, ``du/dt = a (b v - u)``;
    when ``v > v_th`` (30 mV): ``v -> c`` (``v_reset``), ``u -> u + d``. ``r_m`` turns nA into
    mV/ms. Defaults are the regular-spiking cell. Integrated with ``method`` (static).
    """

    a: ArrayLike = 0.02
    b: ArrayLike = 0.2
    v_reset: ArrayLike = -65.0
    d: ArrayLike = 8.0
    v_th: ArrayLike = 30.0
    v_rest: ArrayLike = -65.0
    t_ref: ArrayLike = 0.0
    r_m: ArrayLike = 1.0
    syn: ExpSynapses = struct.field(default_factory=current_synapses)
    reset_mode: str = struct.field(pytree_node=False, default="value")
    method: str = struct.field(pytree_node=False, default="euler")

    def validate(self, dt: float) -> None:
        self._validate_nonlinear(dt)

    def init_state(self, n: int, v0: ArrayLike | None = None,
                   dtype=jnp.float32) -> IzhikevichState:
        state = self._common_state(n, v0, dtype)
        return IzhikevichState(*state, (self.b * state.v).astype(dtype))

    def update(self, state, i_ext, dt: float, step):
        syn = self.syn.drive(state.g, state.v)

        def f(y):
            v, u = y
            dv = 0.04 * v * v + 5.0 * v + 140.0 - u + self.r_m * i_ext + syn
            return dv, self.a * (self.b * v - u)

        return self._advance(state, f, "u", dt, step)

    def reset(self, state, spikes, step, dt: float | None = None):
        return self._reset_with_jump(state, spikes, step, "u", self.d, dt)


def analytic_lif_rate(
    i_ext_na: ArrayLike, *, tau_m: ArrayLike = 20.0, v_rest: ArrayLike = -60.0,
    v_th: ArrayLike = -50.0, v_reset: ArrayLike = -60.0, t_ref: ArrayLike = 0.0,
    r_m: ArrayLike = 1.0,
) -> Any:
    """Firing rate (Hz) of a LIF neuron under constant current, from ``v_reset``.

    ``T = t_ref + tau_m ln((E_l + R I - v_reset) / (E_l + R I - v_th))``; 0 if ``E_l + R I <= v_th``.
    """
    v_inf = v_rest + r_m * i_ext_na
    if v_inf <= v_th:
        return 0.0
    return 1000.0 / (t_ref + tau_m * float(np.log((v_inf - v_reset) / (v_inf - v_th))))
