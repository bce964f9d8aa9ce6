"""Networks of spiking populations and projections, simulated with ``lax.scan``.

A :class:`Network` is host-side data: populations (a neuron model, a size, an initial state,
a constant external current), projections (a :class:`~brainmodels.snn.connectivity.Connectivity`
into a synaptic channel of the target) and Poisson inputs. :func:`simulate` compiles it into
a pytree *plan* (one delivery kernel per source population, sparse or dense) and runs one
jitted ``lax.scan``; :func:`simulate_many` stacks several networks (different seeds or
parameters, same shapes) and runs them at once under ``jax.vmap``.

Each step follows brian2's schedule (``groups, thresholds, synapses, resets``): integrate
every population, detect spikes (``v > v_th`` and not refractory), deliver spikes whose delay
is due (a ring buffer of future inputs, ``round(delay / dt)`` steps; delay 0 arrives in the
same step and acts from the next update), add Poisson inputs, then reset. Spike times are the
start of the step (brian2's ``SpikeMonitor`` convention).

Recording is chosen up front (:class:`Recording`): spikes as events (packed bits per step,
turned into ``(time, neuron)`` events on the host), population rates and state traces of
selected neurons every ``every_ms``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import xarray as xr

from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike
from brainmodels.snn import _engine, _many
from brainmodels.snn._delivery import Delivery
from brainmodels.snn.analysis import _to_dataset
from brainmodels.snn.connectivity import Connectivity

__all__ = [
    "Population", "Projection", "PoissonInput", "Network", "Recording", "Delivery",
    "simulate", "simulate_many",
]


@dataclasses.dataclass(frozen=True)
class Population:
    """A group of identical-model neurons.

    Parameters
    ----------
    name : str
    size : int
    model : LIF, AdaptiveLIF or Izhikevich
        Parameters (scalars or one value per neuron).
    v0 : float or array (size,), optional
        Initial membrane potential, mV (default: the model's ``v_rest``).
    i_ext : float or array (size,)
        Constant external current, nA.
    """

    name: str
    size: int
    model: object
    v0: object = None
    i_ext: object = 0.0


@dataclasses.dataclass(frozen=True)
class Projection:
    """Synapses from population ``pre`` into channel ``channel`` of population ``post``."""

    pre: str
    post: str
    channel: str
    conn: Connectivity
    name: str = ""


@dataclasses.dataclass(frozen=True)
class PoissonInput:
    """``n_sources`` independent Poisson sources at ``rate_hz`` per target neuron, each adding
    ``weight`` to channel ``channel`` (brian2's ``PoissonInput``; counts drawn per step)."""

    target: str
    channel: str
    n_sources: int | ArrayLike  # scalars: Python, numpy or JAX alike
    rate_hz: float | ArrayLike
    weight: float | ArrayLike


@dataclasses.dataclass(frozen=True)
class Network:
    """Populations, projections and inputs; ``seed`` is kept for provenance."""

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = ()
    inputs: tuple[PoissonInput, ...] = ()
    name: str = "network"
    seed: int | None = None

    @property
    def offsets(self) -> dict[str, tuple[int, int]]:
        """Global neuron index range ``[start, stop)`` of each population."""
        out, start = {}, 0
        for p in self.populations:
            out[p.name] = (start, start + p.size)
            start += p.size
        return out

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise ValueError(
            f"population must be one of {[p.name for p in self.populations]}, got {name!r}"
        )

    def validate(self, dt: float) -> None:
        """Check names, sizes and channels; each model checks its parameters against ``dt``."""
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"population names must be unique and non-empty, got {names}")
        for p in self.populations:
            p.model.validate(dt)
        for pr in self.projections:
            pre, post = self.population(pr.pre), self.population(pr.post)
            post.model.syn.index(pr.channel)
            if (pr.conn.n_pre, pr.conn.n_post) != (pre.size, post.size):
                raise ValueError(
                    f"projection {pr.name or (pr.pre, pr.post)} has shape "
                    f"({pr.conn.n_pre}, {pr.conn.n_post}), expected ({pre.size}, {post.size})"
                )
        for inp in self.inputs:
            self.population(inp.target).model.syn.index(inp.channel)
            if np.any(np.asarray(inp.rate_hz) < 0) or np.any(np.asarray(inp.n_sources) < 0):
                raise ValueError(f"Poisson input needs rate_hz, n_sources >= 0, got {inp}")


@dataclasses.dataclass(frozen=True)
class Recording:
    """What to record, chosen before the run.

    Parameters
    ----------
    spikes : bool
        Spike events ``(time, neuron)``.
    traces : tuple of str
        State variables to trace (``"v"``, ``"g_e"``, ``"w"``, ...).
    neurons : sequence of int
        Global indices of the traced neurons.
    every_ms : float
        Interval of traces and population-rate bins, ms (a multiple of ``dt``).
    """

    spikes: bool = True
    traces: tuple[str, ...] = ()
    neurons: Any = ()
    every_ms: float = 1.0


def _steps(duration_ms: float, dt_ms: float, recording: Recording) -> tuple[int, int]:
    if not np.isfinite(dt_ms) or dt_ms <= 0:
        raise ValueError(f"dt_ms must be a positive number of ms, got {dt_ms}")
    if not np.isfinite(duration_ms) or duration_ms <= 0:
        raise ValueError(f"duration_ms must be a positive number of ms, got {duration_ms}")
    n_steps = int(round(duration_ms / dt_ms))
    k = max(1, int(round(recording.every_ms / dt_ms)))
    if abs(k * dt_ms - recording.every_ms) > 1e-6 * dt_ms or n_steps % k:
        raise ValueError(
            f"recording.every_ms={recording.every_ms} must be a multiple of dt_ms={dt_ms} that "
            f"divides duration_ms={duration_ms} ({n_steps} steps)"
        )
    return n_steps, k


def _check_recording_memory(nets, n_steps: int, k: int, recording: Recording) -> None:
    """Refuse a run whose recording cannot fit: packed spike bits (device and host copies)
    and traces, per network."""
    n = sum(net.n_neurons for net in nets)
    spikes = 2.0 * n_steps * -(-n // 8) if recording.spikes else 0.0
    traced = len(np.atleast_1d(np.asarray(recording.neurons))) * len(recording.traces)
    traces = 2.0 * 4 * (n_steps // k) * traced * len(nets)
    check_memory(spikes + traces,
                 what=f"recording {n_steps} steps of {n} neurons"
                      + (f" with {traced} traces" if traced else ""),
                 knob="simulate a shorter duration_ms (and concatenate runs), record fewer "
                      "traces or neurons, raise Recording.every_ms, or pass "
                      "Recording(spikes=False)")


def _needs_key(nets, key):
    if key is None and any(n.inputs for n in nets):
        raise ValueError("this network has Poisson inputs: pass key=jax.random.key(...)")
    return jax.random.key(0) if key is None else key


def simulate(
    net: Network, duration_ms: float = 1000.0, dt_ms: float = 0.1, *, key=None,
    recording: Recording | None = None, mode: str | None = None, max_spikes: int | None = None,
    delivery: Delivery | None = None, progress: Callable | None = None,
) -> xr.Dataset:
    """Simulate ``net`` for ``duration_ms`` with time step ``dt_ms``.

    Parameters
    ----------
    net : Network
    duration_ms, dt_ms : float
        Simulated time and step, ms.
    key : jax PRNG key, optional
        Needed when the network has Poisson inputs (keyword-only).
    recording : Recording, optional
        Default: spikes and population rates every 1 ms, no traces.
    mode : {"auto", "event", "dense"}, optional
        Shorthand for ``delivery=Delivery(mode=...)``: the spike delivery kernel.
    max_spikes : int, optional
        Shorthand for ``delivery=Delivery(max_spikes=...)``: the largest bounded branch of
        the event kernel; steps with more spikes take the exact all-neurons branch.
    delivery : Delivery, optional
        All delivery settings in one object (:mod:`brainmodels.snn._delivery`); give either
        it or the shorthands.
    progress : callable, optional
        Wraps an iterable of ~20 segments of the run (e.g. ``tqdm.tqdm``), for long runs; the
        spikes are the same as without it. The library draws no bar itself.

    Returns
    -------
    xarray.Dataset
        ``spike_time`` (ms) and ``spike_neuron`` (global index) along ``event``;
        ``rate_<population>`` (Hz) along ``time``; traces ``(time, neuron)``; attrs with
        units, parameters, ``dt_ms``, ``duration_ms`` and population index ranges.

    Raises
    ------
    ValueError
        Bad ``dt_ms``/``duration_ms``/parameters, unknown channels or populations, recording
        of a neuron or variable that does not exist.

    Notes
    -----
    The device inputs (padded target lists, parameters) are built once per network object and
    settings and reused by later calls, as brian2 reuses its setup; networks are immutable.
    Build a new :class:`Network` instead of editing its arrays in place.

    Examples
    --------
    >>> from brainmodels import snn
    >>> res = snn.simulate(snn.cuba(seed=0, n=400), duration_ms=50.0)  # doctest: +SKIP
    """
    delivery = _delivery(mode, max_spikes, delivery)
    recording = recording or Recording()
    n_steps, k = _steps(duration_ms, dt_ms, recording)
    _check_recording_memory([net], n_steps, k, recording)
    key = _needs_key([net], key)
    return _simulate_one(net, n_steps, k, dt_ms, key[None], recording, delivery,
                         progress=progress)


def _delivery(mode, max_spikes, delivery) -> Delivery:
    """One :class:`Delivery` from the shorthands or the object (not both: ambiguous)."""
    if delivery is not None:
        if mode is not None or max_spikes is not None:
            raise ValueError("give delivery= or the shorthands mode=/max_spikes=, not both")
        return delivery
    return Delivery(mode="auto" if mode is None else mode, max_spikes=max_spikes)


def _simulate_one(net, n_steps, k, dt_ms, keys, recording, delivery, *, widths=None,
                  n_blocks=1, progress=None):
    """One compiled run of ``net`` (``keys``: one PRNG key per block of Poisson draws)."""
    plan = _engine.plan_for(net, dt_ms, recording, delivery, widths=widths, n_blocks=n_blocks)
    # equal compiled segments: a new duration reuses the program (no compilation)
    bits, counts, traces = _engine.run_segmented(plan, keys, progress, n_chunks=n_steps // k,
                                                 k=k, dt=float(dt_ms))
    return _to_dataset(net, dt_ms, n_steps, k, recording, bits, counts, traces, plan)


def simulate_many(
    nets: Sequence[Network], duration_ms: float = 1000.0, dt_ms: float = 0.1, *, key=None,
    recording: Recording | None = None, mode: str | None = None, max_spikes: int | None = None,
    delivery: Delivery | None = None, method: str = "auto",
) -> xr.Dataset:
    """Simulate several networks of the same structure at once.

    The networks may differ in connectivity, initial state, neuron parameters, Poisson rates
    and seeds; populations, channels, sizes and synaptic time constants must agree.

    Parameters
    ----------
    method : {"auto", "loop", "union", "vmap"}
        ``"loop"`` runs the networks one after the other through one compiled program
        (target lists padded to a common width); ``"union"`` simulates their disjoint union
        as one network (parameters become per-neuron arrays); ``"vmap"`` stacks the
        compiled plans and maps one simulation over them with ``jax.vmap`` (event kernels
        deliver in a ``lax.while_loop`` over chunks of spikes: under ``vmap`` every
        ``lax.switch`` branch would run, a loop costs the batch's largest chunk count). All
        give the same spikes for the same key, Poisson inputs included (network ``b`` draws
        from ``jax.random.split(key, len(nets))[b]`` in every method). On CPU the
        event-driven kernel's work follows the largest spike count in the batch, which
        makes ``"loop"`` the fastest there (benchmarks/snn.py); ``"auto"`` picks ``"loop"``
        on CPU and ``"vmap"`` on accelerators.
    mode, max_spikes, delivery
        As in :func:`simulate`.

    Returns
    -------
    xarray.Dataset
        :func:`simulate`'s variables with a leading ``network`` dimension; events carry
        ``spike_network``.
    """
    nets = list(nets)
    if not nets:
        raise ValueError("nets must contain at least one Network")
    _check_same_structure(nets)
    if method == "auto":
        method = "loop" if jax.default_backend() == "cpu" else "vmap"
    if method not in _many.METHODS:
        raise ValueError(f"method must be one of {sorted(_many.METHODS)}, got {method!r}")
    delivery = _delivery(mode, max_spikes, delivery)
    recording = recording or Recording()
    n_steps, k = _steps(duration_ms, dt_ms, recording)
    _check_recording_memory(nets, n_steps, k, recording)
    key = _needs_key(nets, key)
    return _many.METHODS[method](nets, n_steps, k, dt_ms, key, recording, delivery,
                                 _simulate_one)


def _check_same_structure(nets) -> None:
    def shape(n):
        return ([(p.name, p.size, type(p.model).__name__) for p in n.populations],
                [(r.pre, r.post, r.channel) for r in n.projections],
                [(i.target, i.channel) for i in n.inputs])

    ref = shape(nets[0])
    for i, n in enumerate(nets[1:], start=1):
        if shape(n) != ref:
            raise ValueError(f"simulate_many needs networks with the same populations, "
                             f"projections and inputs; network {i} has {shape(n)}, "
                             f"network 0 has {ref}")
