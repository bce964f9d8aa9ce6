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
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct

from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike
from brainmodels.snn.analysis import _concat_networks, _to_dataset
from brainmodels.snn.connectivity import Connectivity, build_kernel

__all__ = [
    "Population", "Projection", "PoissonInput", "Network", "Recording", "simulate",
    "simulate_many",
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
            if inp.rate_hz < 0 or inp.n_sources < 0:
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


@struct.dataclass
class _Plan:
    models: tuple
    v0: tuple
    i_ext: tuple
    kernels: tuple
    poisson: tuple  # (lam per step, weight) per input
    trace_idx: tuple  # local indices per population
    kernel_pre: tuple[int, ...] = struct.field(pytree_node=False)
    layout: tuple[tuple[int, int, int], ...] = struct.field(pytree_node=False)  # off, C, n
    poisson_at: tuple[tuple[int, int], ...] = struct.field(pytree_node=False)  # off, n
    n_slots: int = struct.field(pytree_node=False)
    n_inputs: int = struct.field(pytree_node=False)
    trace_vars: tuple[str, ...] = struct.field(pytree_node=False)
    record_spikes: bool = struct.field(pytree_node=False, default=True)


def _layout(net: Network):
    layout, off = [], 0
    for p in net.populations:
        c = len(p.model.syn.names)
        layout.append((off, c, p.size))
        off += c * p.size
    return tuple(layout), off


def _delay_steps(delay_ms, dt):
    return np.round(np.asarray(delay_ms, np.float64) / dt).astype(np.int32)


def _kernel_inputs(net: Network, dt: float, layout):
    """Per source population: (pre, flat targets, weight, delay steps)."""
    names = [p.name for p in net.populations]
    groups: dict[int, list] = {}
    for pr in net.projections:
        post_i = names.index(pr.post)
        off, _, n_post = layout[post_i]
        c = net.populations[post_i].model.syn.index(pr.channel)
        flat = off + c * n_post + pr.conn.post.astype(np.int64)
        groups.setdefault(names.index(pr.pre), []).append(
            (pr.conn.pre, flat, pr.conn.weight, _delay_steps(pr.conn.delay_ms, dt))
        )
    return {i: tuple(np.concatenate(parts) for parts in zip(*g, strict=True))
            for i, g in sorted(groups.items())}


def _trace_indices(net: Network, neurons) -> tuple:
    neurons = np.unique(np.asarray(neurons, np.int64).ravel())  # traces in sorted order
    if neurons.size and (neurons.min() < 0 or neurons.max() >= net.n_neurons):
        raise ValueError(
            f"recording.neurons must be global indices in [0, {net.n_neurons}), got "
            f"{neurons[(neurons < 0) | (neurons >= net.n_neurons)].tolist()}"
        )
    out = []
    for start, stop in net.offsets.values():
        sel = neurons[(neurons >= start) & (neurons < stop)] - start
        out.append(jnp.asarray(sel, jnp.int32))
    return tuple(out)


def _plan(net, dt, recording, *, mode="auto", max_spikes=None, k_pad=None,
          fallback=True, groups=1, chunk=0) -> _Plan:
    net.validate(dt)
    layout, n_inputs = _layout(net)
    inputs = _kernel_inputs(net, dt, layout)
    kernels, kernel_pre, max_delay = [], [], 0
    for i, (pre, flat, w, d) in inputs.items():
        n_pre = net.populations[i].size
        m = None if max_spikes is None else max_spikes.get(i)
        kp = None if k_pad is None else k_pad.get(i)
        kernels.append(build_kernel(n_pre, pre, flat, w, d, n_inputs, mode=mode, max_spikes=m,
                                    k=kp, fallback=fallback, groups=groups, chunk=chunk))
        kernel_pre.append(i)
        max_delay = max(max_delay, int(d.max(initial=0)))
    names = [p.name for p in net.populations]
    poisson, poisson_at = [], []
    for inp in net.inputs:
        pi = names.index(inp.target)
        off, _, n = layout[pi]
        c = net.populations[pi].model.syn.index(inp.channel)
        poisson.append((np.float32(inp.n_sources * inp.rate_hz * dt / 1000.0),
                        np.float32(inp.weight)))
        poisson_at.append((off + c * n, n))
    for var in recording.traces:
        _check_trace_var(net, var)
    return _Plan(
        models=tuple(p.model for p in net.populations),
        v0=tuple(_v0(p) for p in net.populations),
        i_ext=tuple(np.broadcast_to(np.asarray(p.i_ext, np.float32), (p.size,)).copy()
                    for p in net.populations),
        kernels=tuple(kernels), poisson=tuple(poisson),
        trace_idx=_trace_indices(net, recording.neurons),
        kernel_pre=tuple(kernel_pre), layout=layout, poisson_at=tuple(poisson_at),
        n_slots=max_delay + 1, n_inputs=n_inputs, trace_vars=tuple(recording.traces),
        record_spikes=bool(recording.spikes),
    )


#: Compiled-input plans per network object (id -> {settings: plan}); an entry goes when its
#: network is garbage-collected. Networks are immutable, so a plan (padded target lists on
#: the device, parameters) is built once per network and settings, like brian2's setup.
_PLANS: dict[int, dict] = {}
_PLANS_PER_NETWORK = 8


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(np.asarray(value).ravel().tolist())
    return value


def _plan_cached(net: Network, dt, recording: Recording, **kw) -> _Plan:
    """:func:`_plan`, built once per network object and settings."""
    key = (float(dt), recording.spikes, tuple(recording.traces), _freeze(recording.neurons),
           float(recording.every_ms), _freeze(kw))
    plans = _PLANS.get(id(net))
    if plans is None:
        plans = _PLANS[id(net)] = {}
        weakref.finalize(net, _PLANS.pop, id(net), None)
    if key not in plans:
        if len(plans) >= _PLANS_PER_NETWORK:
            plans.clear()
        plans[key] = _plan(net, dt, recording, **kw)
    return plans[key]


def _v0(p: Population) -> np.ndarray:
    v0 = p.model.v_rest if p.v0 is None else p.v0
    v0 = np.asarray(v0, np.float32)
    if v0.shape not in ((), (p.size,)):
        raise ValueError(f"v0 of population {p.name!r} must be a scalar or ({p.size},), "
                         f"got shape {v0.shape}")
    return np.broadcast_to(v0, (p.size,)).copy()


def _check_trace_var(net: Network, var: str) -> None:
    for p in net.populations:
        names = set(p.model.traces(p.model.init_state(p.size)))
        if var not in names:
            raise ValueError(f"recording.traces: population {p.name!r} has no variable "
                             f"{var!r}; it has {sorted(names)}")


def _step(plan: _Plan, dt: float, key, carry, n):
    states, buffer, overflow = carry
    states = tuple(m.update(s, i, dt, n) for m, s, i in zip(plan.models, states, plan.i_ext,
                                                            strict=True))
    spikes = tuple(m.spikes(s, n, dt) for m, s in zip(plan.models, states, strict=True))
    # without delays the ring buffer has one slot, always zero between steps: deliver into
    # fresh zeros (no clearing pass, no copy of the carried buffer)
    target = jnp.zeros_like(buffer) if plan.n_slots == 1 else buffer
    excess = []
    for kern, pi in zip(plan.kernels, plan.kernel_pre, strict=True):
        target, ov = kern.deliver(target, spikes[pi], n)
        excess.append(ov)
    if any(k.can_overflow for k in plan.kernels):  # largest excess over a kernel's bound
        overflow = jnp.maximum(overflow, jnp.stack(excess))
    slot = n % plan.n_slots
    row = target[slot]
    if plan.n_slots > 1:
        buffer = target.at[slot].set(0.0)
    if plan.poisson:
        keys = jax.random.split(jax.random.fold_in(key, n), len(plan.poisson))
        for kk, (lam, w), (off, size) in zip(keys, plan.poisson, plan.poisson_at, strict=True):
            counts = jax.random.poisson(kk, lam, (size,)).astype(row.dtype)
            row = row.at[off:off + size].add(w * counts)
    new_states = []
    for m, s, sp, (off, c, size) in zip(plan.models, states, spikes, plan.layout, strict=True):
        s = {**s, "g": s["g"] + row[off:off + c * size].reshape(c, size)}
        new_states.append(m.reset(s, sp, n))
    counts = jnp.stack([jnp.sum(sp, dtype=jnp.int32) for sp in spikes])
    bits = jnp.packbits(jnp.concatenate(spikes)) if plan.record_spikes else jnp.zeros((0,),
                                                                                     jnp.uint8)
    return (tuple(new_states), buffer, overflow), (bits, counts)


def _read_traces(plan: _Plan, states):
    out = {}
    for var in plan.trace_vars:
        parts = [m.traces(s)[var][idx] for m, s, idx in zip(plan.models, states, plan.trace_idx,
                                                           strict=True)]
        out[var] = jnp.concatenate(parts)
    return out


#: Steps per iteration of the inner scan: 2 was ~8 % faster than 1 for CUBA (4,000 neurons,
#: one pinned core, medians of 7 interleaved runs); 5 and 10 were no faster and compile longer.
_UNROLL = 2


def _init_carry(plan: _Plan):
    """(neuron states, delay buffer, overflow counters) at t = 0."""
    dtype = jnp.asarray(0.0).dtype
    states = tuple(m.init_state(v0.shape[0], v0, dtype) for m, v0 in zip(plan.models, plan.v0,
                                                                          strict=True))
    buffer = jnp.zeros((plan.n_slots, plan.n_inputs + 1), dtype)
    return states, buffer, jnp.zeros((max(1, len(plan.kernels)),), jnp.int32)


def _segment(plan: _Plan, key, carry, c0, *, n_chunks: int, k: int, dt: float):
    """Chunks ``c0 .. c0 + n_chunks`` of ``k`` steps from ``carry``: the carry after them and
    the recordings (packed spike bits, per-chunk spike counts, traces)."""
    step = partial(_step, plan, dt, key)

    def chunk(carry, c):
        traces = _read_traces(plan, carry[0])
        carry, (bits, counts) = jax.lax.scan(step, carry, c * k + jnp.arange(k),
                                             unroll=_UNROLL if k % _UNROLL == 0 else 1)
        return carry, (bits, jnp.sum(counts, axis=0), traces)

    return jax.lax.scan(chunk, carry, c0 + jnp.arange(n_chunks))


def _run(plan: _Plan, key, *, n_chunks: int, k: int, dt: float):
    (_, _, overflow), (bits, counts, traces) = _segment(plan, key, _init_carry(plan), 0,
                                                        n_chunks=n_chunks, k=k, dt=dt)
    return bits, counts, traces, overflow


_run_jit = jax.jit(_run, static_argnames=("n_chunks", "k", "dt"))
_segment_jit = jax.jit(_segment, static_argnames=("n_chunks", "k", "dt"))

#: a run with a progress meter goes in about this many segments (two compiled sizes at most)
_PROGRESS_SEGMENTS = 20


def _run_segmented(plan: _Plan, key, progress, *, n_chunks: int, k: int, dt: float):
    """:func:`_run` in segments, the meter wrapping them; the same steps and keys, so the same
    spikes (the step index, not the segment, seeds each step's noise)."""
    size = -(-n_chunks // _PROGRESS_SEGMENTS)
    carry, parts = _init_carry(plan), []
    for c0 in progress(range(0, n_chunks, size)):
        carry, out = _segment_jit(plan, key, carry, jnp.int32(c0),
                                  n_chunks=min(size, n_chunks - c0), k=k, dt=dt)
        parts.append(out)
    bits, counts, traces = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
    return bits, counts, traces, carry[2]
def _run_many(plans: _Plan, keys, *, n_chunks: int, k: int, dt: float):
    return jax.vmap(partial(_run, n_chunks=n_chunks, k=k, dt=dt))(plans, keys)


_run_many_jit = jax.jit(_run_many, static_argnames=("n_chunks", "k", "dt"))


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
    recording: Recording | None = None, mode: str = "auto", max_spikes: int | None = None,
    progress: Callable | None = None,
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
    mode : {"auto", "event", "dense"}
        Spike delivery kernel (see :mod:`brainmodels.snn.connectivity`).
    max_spikes : int, optional
        Bound on spikes per step of the event kernels' fast branch; steps with more spikes
        take the exact full branch (see :mod:`brainmodels.snn.connectivity`).
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
    return _simulate(net, duration_ms, dt_ms, key=key, recording=recording, mode=mode,
                     max_spikes=max_spikes, progress=progress)


def _simulate(net, duration_ms, dt_ms, *, key, recording, mode, max_spikes, groups=1,
              k_pad=None, progress=None):
    recording = recording or Recording()
    n_steps, k = _steps(duration_ms, dt_ms, recording)
    _check_recording_memory([net], n_steps, k, recording)
    key = _needs_key([net], key)
    bounds = None if max_spikes is None else dict.fromkeys(range(len(net.populations)),
                                                           max_spikes)
    while True:
        plan = _plan_cached(net, dt_ms, recording, mode=mode, max_spikes=bounds, groups=groups,
                     k_pad=k_pad)
        if progress is None:
            bits, counts, traces, overflow = _run_jit(plan, key, n_chunks=n_steps // k, k=k,
                                                      dt=float(dt_ms))
        else:
            bits, counts, traces, overflow = _run_segmented(plan, key, progress,
                                                            n_chunks=n_steps // k, k=k,
                                                            dt=float(dt_ms))
        if int(jnp.max(overflow)) == 0:
            break
        bounds = _grow_bounds(net, plan, overflow)
    return _to_dataset(net, dt_ms, n_steps, k, recording, bits, counts, traces, plan)


def _grow_bounds(net, plan, overflow):
    """New spike bounds: the old bound plus the largest excess seen, rounded up to 8."""
    excess = np.asarray(overflow).reshape(-1, len(plan.kernels)).max(axis=0)
    return {pi: min(net.populations[pi].size,
                    -(-(getattr(kern, "max_spikes", 0) + int(e)) // 8) * 8)
            for kern, pi, e in zip(plan.kernels, plan.kernel_pre, excess, strict=True)}


def simulate_many(
    nets: Sequence[Network], duration_ms: float = 1000.0, dt_ms: float = 0.1, *, key=None,
    recording: Recording | None = None, mode: str = "auto", max_spikes: int | None = None,
    method: str = "auto",
) -> xr.Dataset:
    """Simulate several networks of the same structure at once.

    The networks may differ in connectivity, initial state, neuron parameters and seeds;
    populations, channels, sizes and synaptic time constants must agree.

    Parameters
    ----------
    method : {"auto", "loop", "union", "vmap"}
        ``"loop"`` runs the networks one after the other through one compiled program
        (target lists padded to a common width); ``"union"`` simulates their disjoint union
        as one network (parameters become per-neuron arrays); ``"vmap"`` stacks the
        compiled plans and maps one simulation over them with ``jax.vmap`` (event kernels
        deliver in a ``lax.while_loop`` over chunks of spikes: under ``vmap`` every
        ``lax.switch`` branch would run, a loop costs the batch's largest chunk count). All give
        the same spikes (Poisson inputs draw different streams per method). On CPU the
        event-driven kernel's work follows the largest spike count in the batch, which
        makes ``"loop"`` the fastest there (benchmarks/snn.py); ``"auto"`` picks ``"loop"``
        on CPU and ``"vmap"`` on accelerators.

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
    if method not in _MANY_METHODS:
        raise ValueError(f"method must be one of {sorted(_MANY_METHODS)}, got {method!r}")
    recording = recording or Recording()
    n_steps, k = _steps(duration_ms, dt_ms, recording)
    _check_recording_memory(nets, n_steps, k, recording)
    key = _needs_key(nets, key)
    return _MANY_METHODS[method](nets, n_steps, k, dt_ms, key, recording, mode, max_spikes)


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


def _common_k(nets, dt_ms, recording, mode, max_spikes, fallback):
    """Widest target list per source population over ``nets`` (for one shared program)."""
    bounds = None if max_spikes is None else dict.fromkeys(range(len(nets[0].populations)),
                                                           max_spikes)
    plans = [_plan_cached(n, dt_ms, recording, mode=mode, max_spikes=bounds, fallback=fallback)
             for n in nets]
    return {pi: max(p.kernels[j].width if hasattr(p.kernels[j], "width") else 0
                    for p in plans) for j, pi in enumerate(plans[0].kernel_pre)}


def _many_loop(nets, n_steps, k, dt_ms, key, recording, mode, max_spikes):
    keys = jax.random.split(key, len(nets))
    k_pad = _common_k(nets, dt_ms, recording, mode, max_spikes, True)
    parts = [_simulate(n, n_steps * dt_ms, dt_ms, key=kk, recording=recording, mode=mode,
                       max_spikes=max_spikes, k_pad=k_pad) for n, kk in zip(nets, keys, strict=True)]
    return _concat_networks(parts, nets)


#: Spikes per ``while_loop`` iteration of the event kernels under ``vmap`` (measured best of
#: 8, 16, 32 for 32 CUBA networks of 4,000 neurons, benchmarks/snn.py).
_VMAP_CHUNK = 8


def _many_vmap(nets, n_steps, k, dt_ms, key, recording, mode, max_spikes):
    keys = jax.random.split(key, len(nets))
    chunk = _VMAP_CHUNK if max_spikes is None else max(1, min(_VMAP_CHUNK, int(max_spikes)))
    k_pad = _common_k(nets, dt_ms, recording, mode, max_spikes, False)
    bounds = None if max_spikes is None else dict.fromkeys(range(len(nets[0].populations)),
                                                           max_spikes)
    plans = [_plan_cached(n, dt_ms, recording, mode=mode, max_spikes=bounds, k_pad=k_pad,
                          fallback=False, chunk=chunk) for n in nets]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *plans)
    bits, counts, traces, overflow = _run_many_jit(stacked, keys, n_chunks=n_steps // k, k=k,
                                                   dt=float(dt_ms))
    if int(jnp.max(overflow)):  # chunked delivery is exact: no bound can overflow
        raise RuntimeError("spike delivery overflowed under vmap; please report this")
    parts = [_to_dataset(n, dt_ms, n_steps, k, recording, bits[i], counts[i],
                         {v: t[i] for v, t in traces.items()}, plans[i])
             for i, n in enumerate(nets)]
    return _concat_networks(parts, nets)


def _stack_models(models, size: int):
    """One model with per-neuron parameters for the union of ``len(models)`` populations."""
    first = models[0]
    fields = {}
    for f in dataclasses.fields(first):
        values = [getattr(m, f.name) for m in models]
        if f.name == "syn" or not f.metadata.get("pytree_node", True):
            if any(not _same(v, values[0]) for v in values):
                raise ValueError(f"simulate_many needs equal {type(first).__name__}.{f.name} "
                                 f"in all networks, got {values}")
            continue
        if all(_same(v, values[0]) for v in values):
            continue
        fields[f.name] = np.concatenate(
            [np.broadcast_to(np.asarray(v, np.float32), (size,)) for v in values])
    return first.replace(**fields)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.shape(x) == np.shape(y) and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves_a, leaves_b, strict=True))


def _union(nets: list[Network]) -> Network:
    first, b = nets[0], len(nets)
    pops = []
    for j, p in enumerate(first.populations):
        group = [n.populations[j] for n in nets]
        if any((q.name, q.size, type(q.model)) != (p.name, p.size, type(p.model)) for q in group):
            raise ValueError("simulate_many needs networks with the same populations "
                             f"(names, sizes, models); population {j} differs")
        pops.append(Population(
            p.name, p.size * b, _stack_models([q.model for q in group], p.size),
            v0=np.concatenate([_v0(q) for q in group]),
            i_ext=np.concatenate([np.broadcast_to(np.asarray(q.i_ext, np.float32), (p.size,))
                                  for q in group])))
    projections = []
    for r, pr in enumerate(first.projections):
        conns = [n.projections[r].conn for n in nets]
        cat = [np.concatenate([getattr(c, a) + (i * getattr(c, f"n_{a}") if a in ("pre", "post")
                                                else 0) for i, c in enumerate(conns)])
               for a in ("pre", "post", "weight", "delay_ms")]
        conn = Connectivity(pr.conn.n_pre * b, pr.conn.n_post * b, cat[0].astype(np.int32),
                            cat[1].astype(np.int32), cat[2], cat[3])
        projections.append(dataclasses.replace(pr, conn=conn))
    return Network(tuple(pops), tuple(projections), first.inputs, name=first.name)


def _many_union(nets, n_steps, k, dt_ms, key, recording, mode, max_spikes):
    union = _union(nets)
    sizes = [p.size for p in nets[0].populations]
    neurons = np.asarray(recording.neurons, np.int64).ravel()
    _trace_indices(nets[0], neurons)  # validates the indices
    union_neurons = np.concatenate([_to_union(neurons, b, sizes, len(nets))
                                    for b in range(len(nets))]) if neurons.size else neurons
    rec = dataclasses.replace(recording, neurons=union_neurons)
    res = _simulate(union, n_steps * dt_ms, dt_ms, key=key, recording=rec, mode=mode,
                    max_spikes=max_spikes)  # one spike search over the union: measured
    # 1.4-2x faster than a bound per network (groups=len(nets)) for 8-32 CUBA networks
    return _split_union(res, nets, sizes, recording, k, dt_ms)


def _to_union(idx, b, sizes, n_nets):
    """Global indices of network ``b`` -> global indices in the union network."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    j = np.searchsorted(starts, idx, side="right") - 1
    return starts[j] * n_nets + b * np.asarray(sizes)[j] + (idx - starts[j])


def _split_union(res, nets, sizes, recording, k, dt_ms) -> xr.Dataset:
    b = len(nets)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    u = res["spike_neuron"].values.astype(np.int64)
    j = np.searchsorted(starts * b, u, side="right") - 1
    local = u - starts[j] * b
    net_id = local // np.asarray(sizes)[j]
    neuron = starts[j] + local % np.asarray(sizes)[j]
    order = np.lexsort((neuron, res["spike_time"].values, net_id))
    n_bins = res.sizes["time"]
    data = {
        "spike_time": ("event", res["spike_time"].values[order], {"units": "ms"}),
        "spike_neuron": ("event", neuron[order].astype(np.int32)),
        "spike_network": ("event", net_id[order].astype(np.int32)),
    }
    bins = np.minimum((res["spike_time"].values / (k * dt_ms) + 1e-6).astype(np.int64),
                      n_bins - 1)
    for jj, p in enumerate(nets[0].populations):
        counts = np.zeros((b, n_bins))
        sel = j == jj
        np.add.at(counts, (net_id[sel], bins[sel]), 1.0)
        data[f"rate_{p.name}"] = (("network", "time"), counts / (p.size * k * dt_ms * 1e-3),
                                  {"units": "Hz"})
    neurons = np.unique(np.asarray(recording.neurons, np.int64).ravel())
    if recording.traces:  # position of (network, neuron) among the sorted union neurons
        pos = np.searchsorted(res["neuron"].values, np.stack(
            [_to_union(neurons, bb, sizes, b) for bb in range(b)]))
    for var in recording.traces:
        values = np.stack([res[var].values[:, pos[bb]] for bb in range(b)])
        data[var] = (("network", "time", "neuron"), values, res[var].attrs)
    coords = {"time": res["time"]}
    if recording.traces:
        coords["neuron"] = neurons
    out = xr.Dataset(data, coords=coords)
    out.attrs = {**res.attrs, "n_neurons": nets[0].n_neurons, "seeds": [n.seed for n in nets],
                 "populations": {n: list(r) for n, r in nets[0].offsets.items()}}
    out.attrs.pop("seed", None)
    return out


_MANY_METHODS = {"loop": _many_loop, "union": _many_union, "vmap": _many_vmap}
