"""Exponential synapses: current-based and conductance-based channels of a population.

Every population has ``C`` synaptic channels (e.g. ``("e", "i")``). Channel ``c`` holds a
synaptic variable ``g_c`` per neuron that jumps by the synaptic weight when a presynaptic spike
arrives (after the transmission delay) and decays exponentially in between:

    dg_c/dt = -g_c / tau_c                                     (Brette et al. 2007, eqs. 2-3)

* current-based (``kind="current"``): ``g_c`` is a current in voltage units (mV, the
  current times the membrane resistance, as in brian2's ``examples/CUBA.py``) and enters the
  membrane equation as ``+ g_c``;
* conductance-based (``kind="conductance"``): ``g_c`` is a conductance relative to the leak
  conductance (dimensionless) and enters as ``+ g_c (E_c - v)`` with reversal potential ``E_c``
  in mV (Brette et al. 2007, COBA).
* delta (``kind="delta"``, :func:`delta_synapses`): a presynaptic spike makes ``v`` jump by the
  weight (mV), as brian2's ``on_pre='v_post += J'`` (Brunel 2000). ``g_c`` then holds the jumps
  that arrived during the last step; the neuron adds them to ``v`` at the start of its next
  update (unless refractory: Brunel's neurons ignore input while clamped at ``V_r``) and ``g``
  returns to zero. There is no time constant.

Transmission delays are per synapse and live in the connectivity
(:mod:`brainmodels.snn.connectivity`); the network keeps a ring buffer of future inputs.

References
----------
Brette, R. et al. (2007). Simulation of networks of spiking neurons: a review of tools and
strategies. J. Comput. Neurosci. 23, 349-398 (appendix: benchmarks 1 and 2, CUBA and COBA).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from flax import struct

from brainmodels._types import Array, ArrayLike, Float

__all__ = ["ExpSynapses", "current_synapses", "conductance_synapses", "delta_synapses",
           "SYNAPSE_KINDS"]

#: The coupling kinds and how each turns ``(g, v)`` into a membrane drive (mV).
SYNAPSE_KINDS = ("current", "conductance", "delta")


def _channel_sum(g, term=None):
    """sum_c term(c, g[c]) over the (few) synaptic channels, as elementwise adds: as a
    reduction, XLA's CPU backend turns ``sum(g * e_rev[:, None], axis=0)`` into a library dot
    call whose overhead dominates a step of a few thousand neurons (COBA; profiled)."""
    out = g[0] if term is None else term(0, g[0])
    for c in range(1, g.shape[0]):
        out = out + (g[c] if term is None else term(c, g[c]))
    return out


@struct.dataclass
class ExpSynapses:
    """Exponentially decaying synaptic channels of one population.

    Parameters
    ----------
    tau : array (C,)
        Decay time constant of each channel, ms (> 0).
    e_rev : array (C,)
        Reversal potentials, mV (used only when ``kind == "conductance"``).
    names : tuple of str
        Channel names, e.g. ``("e", "i")`` (static).
    kind : {"current", "conductance"}
        Coupling (static).
    """

    tau: Float[ArrayLike, "*network channel"]  # stacked networks: leading axes
    e_rev: Float[ArrayLike, "*network channel"]
    names: tuple[str, ...] = struct.field(pytree_node=False, default=("e", "i"))
    kind: str = struct.field(pytree_node=False, default="current")

    def index(self, name: str) -> int:
        """Index of channel ``name`` (ValueError listing the channels if unknown)."""
        if name not in self.names:
            raise ValueError(f"channel must be one of {list(self.names)}, got {name!r}")
        return self.names.index(name)

    def decay(self, g: Float[Array, "channel neuron"], dt: float) -> Float[Array, "channel neuron"]:
        """Exact exponential decay over one step ``dt`` (ms); delta channels empty."""
        if self.kind == "delta":
            return jnp.zeros_like(g)
        return g * jnp.exp(-dt / jnp.asarray(self.tau))[:, None]

    def jump(self, g: Float[Array, "channel neuron"], v: Float[Array, " neuron"]):
        """``v`` after the voltage jumps that arrived (delta channels; else ``v``)."""
        return v + _channel_sum(g) if self.kind == "delta" else v

    def drive(self, g: Float[Array, "channel neuron"], v: Float[Array, " neuron"]):
        """Membrane drive in mV (what is added to ``E_l - v`` in ``tau_m dv/dt``); delta
        channels act by :meth:`jump` instead."""
        if self.kind == "delta":
            return jnp.zeros_like(v)
        if self.kind == "current":
            return _channel_sum(g)
        e_rev = jnp.asarray(self.e_rev)
        return _channel_sum(g, lambda c, gc: gc * (e_rev[c] - v))

    def validate(self, dt: float) -> None:
        if self.kind not in SYNAPSE_KINDS:
            raise ValueError(f"kind must be one of {SYNAPSE_KINDS}, got {self.kind!r}")
        tau = np.asarray(self.tau, dtype=float)
        if tau.shape != (len(self.names),):
            raise ValueError(
                f"tau must have one value per channel {self.names}, got shape {tau.shape}"
            )
        if self.kind == "delta":  # no time constant
            return
        if np.any(tau <= 0):
            raise ValueError(f"synaptic time constants tau must be > 0 ms, got {tau.tolist()}")
        if np.any(dt > tau):
            raise ValueError(
                f"dt_ms={dt} is larger than a synaptic time constant (tau={tau.tolist()} ms); "
                "use a smaller dt"
            )


def current_synapses(
    tau_ms: Sequence[float] = (5.0, 10.0), names: Sequence[str] = ("e", "i")
) -> ExpSynapses:
    """Current-based exponential channels (``g`` in mV), e.g. CUBA's ``ge``/``gi``."""
    tau = np.asarray(tau_ms, dtype=np.float32)
    return ExpSynapses(tau=tau, e_rev=np.zeros_like(tau), names=tuple(names), kind="current")


def conductance_synapses(
    tau_ms: Sequence[float] = (5.0, 10.0),
    e_rev_mv: Sequence[float] = (0.0, -80.0),
    names: Sequence[str] = ("e", "i"),
) -> ExpSynapses:
    """Conductance-based channels (``g`` relative to the leak conductance), e.g. COBA."""
    tau = np.asarray(tau_ms, dtype=np.float32)
    e_rev = np.asarray(e_rev_mv, dtype=np.float32)
    if e_rev.shape != tau.shape:
        raise ValueError(
            f"e_rev_mv must have one value per channel ({tau.shape[0]}), got {e_rev.shape}"
        )
    return ExpSynapses(tau=tau, e_rev=e_rev, names=tuple(names), kind="conductance")


def delta_synapses(names: Sequence[str] = ("e", "i")) -> ExpSynapses:
    """Delta (voltage-jump) channels: a spike of weight ``J`` (mV) moves ``v`` by ``J``, as
    brian2's ``on_pre='v_post += J'``; the synapses of Brunel (2000).

    Examples
    --------
    >>> syn = delta_synapses(("e", "i"))
    >>> syn.kind, syn.names
    ('delta', ('e', 'i'))
    """
    tau = np.ones(len(tuple(names)), np.float32)  # unused: no time constant
    return ExpSynapses(tau=tau, e_rev=np.zeros_like(tau), names=tuple(names), kind="delta")
