"""The compiled side of :func:`brainmodels.snn.simulate`: plans, the step and the run.

A network is host-side data; :func:`plan_for` compiles it (with a :class:`Delivery` and a
:class:`~brainmodels.snn.network.Recording`) into a pytree *plan*: neuron models, initial
states, one delivery kernel per source population, Poisson inputs and trace indices. Plans
are cached on the network object itself (networks are immutable), so a second run of the same
network builds nothing, and the cache goes with the network.

:func:`run_segmented` scans :func:`_step` over time in chunks of ``k`` steps (one recording
bin each), in equal compiled segments; :func:`run_many` runs several plans in one ``vmap``.
Poisson inputs draw, per chunk ``c`` (one recording bin of ``k`` steps) and block ``b``, from
``fold_in(keys[b], c)``: a single network has one block; the disjoint union of several
networks in ``simulate_many(method="union")`` has one block per network, so every batching
method draws the same numbers for the same key.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from brainmodels.snn._delivery import Delivery, build_kernel

__all__ = ["plan_for", "run_segmented", "run_many"]


@struct.dataclass
class Plan:
    models: tuple
    v0: tuple
    i_ext: tuple
    kernels: tuple
    poisson: tuple  # (lam per step (block,), weight (block,)) per input
    trace_idx: tuple  # local indices per population
    kernel_pre: tuple[int, ...] = struct.field(pytree_node=False)
    layout: tuple[tuple[int, int, int], ...] = struct.field(pytree_node=False)  # off, C, n
    poisson_at: tuple[tuple[int, int], ...] = struct.field(pytree_node=False)  # off, n
    poisson_table: tuple[int, ...] = struct.field(pytree_node=False)  # 0: jax.random.poisson
    n_slots: int = struct.field(pytree_node=False)
    n_inputs: int = struct.field(pytree_node=False)
    n_blocks: int = struct.field(pytree_node=False)
    trace_vars: tuple[str, ...] = struct.field(pytree_node=False)
    record_spikes: bool = struct.field(pytree_node=False, default=True)


# ----------------------------------------------------------------------------- building


def _layout(net):
    layout, off = [], 0
    for p in net.populations:
        c = len(p.model.syn.names)
        layout.append((off, c, p.size))
        off += c * p.size
    return tuple(layout), off


def _delay_steps(delay_ms, dt):
    return np.round(np.asarray(delay_ms, np.float64) / dt).astype(np.int32)


def _kernel_inputs(net, dt: float, layout):
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


def trace_indices(net, neurons) -> tuple:
    """Local indices of the traced neurons per population (global indices validated)."""
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


def initial_v(p) -> np.ndarray:
    v0 = p.model.v_rest if p.v0 is None else p.v0
    v0 = np.asarray(v0, np.float32)
    if v0.shape not in ((), (p.size,)):
        raise ValueError(f"v0 of population {p.name!r} must be a scalar or ({p.size},), "
                         f"got shape {v0.shape}")
    return np.broadcast_to(v0, (p.size,)).copy()


def _check_trace_var(net, var: str) -> None:
    for p in net.populations:
        names = set(p.model.traces(p.model.init_state(p.size)))
        if var not in names:
            raise ValueError(f"recording.traces: population {p.name!r} has no variable "
                             f"{var!r}; it has {sorted(names)}")


def build_plan(net, dt, recording, delivery: Delivery = Delivery(), *,
               widths: dict[int, int] | None = None, n_blocks: int = 1,
               tables: tuple[int, ...] | None = None) -> Plan:
    """Compile ``net`` for a run: validate it, build the kernels (padded to ``widths`` per
    source population, to stack several networks) and the Poisson inputs (``n_blocks``
    values per input for the union of several networks; inversion tables of ``tables``
    entries, to stack several networks, else sized for each input's mean)."""
    net.validate(dt)
    layout, n_inputs = _layout(net)
    kernels, kernel_pre, max_delay = [], [], 0
    for i, (pre, flat, w, d) in _kernel_inputs(net, dt, layout).items():
        kernels.append(build_kernel(net.populations[i].size, pre, flat, w, d, n_inputs,
                                    delivery, width=None if widths is None else widths.get(i)))
        kernel_pre.append(i)
        max_delay = max(max_delay, int(d.max(initial=0)))
    names = [p.name for p in net.populations]
    poisson, poisson_at = [], []
    for inp in net.inputs:
        pi = names.index(inp.target)
        off, _, n = layout[pi]
        c = net.populations[pi].model.syn.index(inp.channel)
        lam = np.asarray(inp.n_sources, np.float64) * np.asarray(inp.rate_hz) * dt / 1000.0
        poisson.append((np.broadcast_to(lam.astype(np.float32), (n_blocks,)).copy(),
                        np.broadcast_to(np.asarray(inp.weight, np.float32), (n_blocks,)).copy()))
        poisson_at.append((off + c * n, n))
    if tables is None:
        tables = tuple(poisson_table_size(float(np.max(lam))) for lam, _ in poisson)
    for var in recording.traces:
        _check_trace_var(net, var)
    return Plan(
        models=tuple(p.model for p in net.populations),
        v0=tuple(initial_v(p) for p in net.populations),
        i_ext=tuple(np.broadcast_to(np.asarray(p.i_ext, np.float32), (p.size,)).copy()
                    for p in net.populations),
        kernels=tuple(kernels), poisson=tuple(poisson),
        trace_idx=trace_indices(net, recording.neurons),
        kernel_pre=tuple(kernel_pre), layout=layout, poisson_at=tuple(poisson_at),
        poisson_table=tuple(tables),
        n_slots=max_delay + 1, n_inputs=n_inputs, n_blocks=n_blocks,
        trace_vars=tuple(recording.traces), record_spikes=bool(recording.spikes),
    )


#: plans kept per network object (different dt, recordings or delivery settings)
_PLANS_PER_NETWORK = 8


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(np.asarray(value).ravel().tolist())
    return value


def plan_for(net, dt, recording, delivery: Delivery = Delivery(), **kw) -> Plan:
    """:func:`build_plan`, built once per network object and settings.

    The plans live on the network object (``net.__dict__``), so they go with it: no global
    table keyed by ``id(net)``, which a new network can reuse after garbage collection.
    """
    key = (float(dt), recording.spikes, tuple(recording.traces), _freeze(recording.neurons),
           float(recording.every_ms), delivery, _freeze(kw))
    plans = net.__dict__.setdefault("_plans", {})
    if key not in plans:
        if len(plans) >= _PLANS_PER_NETWORK:
            plans.clear()
        plans[key] = build_plan(net, dt, recording, delivery, **kw)
    return plans[key]


# ----------------------------------------------------------------------------- the step


#: Poisson inputs with up to this many counts in their inversion table (the mean plus ~8
#: standard deviations) draw by inversion of one uniform; larger means use jax.random.poisson.
POISSON_TABLE_MAX = 256
#: tables up to this length are counted by unrolled compare-and-adds (see poisson_inverse)
UNROLL_TABLE = 64


def poisson_table_size(lam: float) -> int:
    """Length of the inversion table for mean ``lam`` per step: a power of two (so inputs of
    similar rates share one compiled program) past ``lam + 8 sqrt(lam) + 8``, where the tail
    mass is below 1e-12; 0 above :data:`POISSON_TABLE_MAX` (then jax.random.poisson)."""
    need = float(lam) + 8.0 * float(np.sqrt(max(float(lam), 0.0))) + 8.0
    size = 1 << max(4, int(np.ceil(np.log2(need))))
    return size if size <= POISSON_TABLE_MAX else 0


def poisson_inverse(key, lam, shape, table: int):
    """Poisson(``lam``) counts by inversion: count the CDF values ``P(X <= k)``, k < table,
    below one uniform. Exact but for the resolution of the float32 uniform (2^-23) and the
    tail past the table (< 1e-12, :func:`poisson_table_size`). One threefry uniform and a
    fused compare-and-count per draw: ~12x cheaper than ``jax.random.poisson`` (0.09 ms
    against 1.07 ms per 10,000 draws on 2 CPU cores, inside a scan), and the same numbers
    under ``vmap`` (``simulate_many``'s methods agree). The count runs over the table entries
    as a loop of elementwise compare-and-adds (XLA fuses them into one vectorised pass over
    the draws): 2.6x faster than a sum over a trailing table axis (kept for tables longer
    than :data:`UNROLL_TABLE`), the same counts."""
    k = jnp.arange(table, dtype=jnp.float32)
    lam = jnp.asarray(lam, jnp.float32)
    # log P(X = k) = k log lam - lam - log k!; cumulative in float32 (the uniform has 24 bits)
    logp = k * jnp.log(jnp.maximum(lam, 1e-30)) - lam - jax.lax.lgamma(k + 1.0)
    cdf = jnp.where(lam > 0, jnp.cumsum(jnp.exp(logp)), 1.0)
    u = jax.random.uniform(key, shape, jnp.float32)
    if table > UNROLL_TABLE:  # large means: keep the program small
        return jnp.sum(u[..., None] >= cdf.reshape((1,) * u.ndim + (table,)), axis=-1,
                       dtype=jnp.int32)
    count = jnp.zeros(u.shape, jnp.int32)
    for j in range(table):
        count = count + (u >= cdf[j]).astype(jnp.int32)
    return count


def _chunk_counts(plan: Plan, keys, c, k: int, dtype):
    """Poisson counts of every input for the ``k`` steps of chunk ``c``, (k, size) each:
    block ``b`` draws from ``split(fold_in(keys[b], c))[i]``. One draw per chunk, not per
    step: on CPU a (k, n) draw costs about half of k draws of n (XLA's threads pay off on the
    larger operation), and the chunk index, not the segment, seeds it, so segmented runs draw
    the same numbers."""
    out = []
    for i, ((lam, _), (_, size)) in enumerate(zip(plan.poisson, plan.poisson_at, strict=True)):
        per = size // plan.n_blocks
        table = plan.poisson_table[i]

        def block(key, rate, i=i, table=table, per=per):
            kk = jax.random.split(jax.random.fold_in(key, c), len(plan.poisson))[i]
            if table:
                return poisson_inverse(kk, rate, (k, per), table)
            return jax.random.poisson(kk, rate, (k, per))

        if plan.n_blocks == 1:
            out.append(block(keys[0], lam[0]).astype(dtype))
        else:  # (block, k, per) -> (k, block * per): network b's neurons after network b-1's
            counts = jax.vmap(block)(keys, lam)
            out.append(jnp.swapaxes(counts, 0, 1).reshape(k, size).astype(dtype))
    return tuple(out)


def _step(plan: Plan, dt: float, carry, xs):
    n, poisson_counts = xs
    states, buffer = carry
    states = tuple(m.update(s, i, dt, n) for m, s, i in zip(plan.models, states, plan.i_ext,
                                                            strict=True))
    spikes = tuple(m.spikes(s, n, dt) for m, s in zip(plan.models, states, strict=True))
    # without delays the ring buffer has one slot, always zero between steps: deliver into
    # fresh zeros (no clearing pass, no copy of the carried buffer)
    target = jnp.zeros_like(buffer) if plan.n_slots == 1 else buffer
    for kern, pi in zip(plan.kernels, plan.kernel_pre, strict=True):
        target = kern.deliver(target, spikes[pi], n)
    slot = n % plan.n_slots
    row = target[slot]
    if plan.n_slots > 1:
        buffer = target.at[slot].set(0.0)
    for counts, (_, w), (off, size) in zip(poisson_counts, plan.poisson, plan.poisson_at,
                                           strict=True):
        weight = w[0] if plan.n_blocks == 1 else jnp.repeat(w, size // plan.n_blocks)
        row = row.at[off:off + size].add(weight * counts)
    new_states = []
    for m, s, sp, (off, c, size) in zip(plan.models, states, spikes, plan.layout, strict=True):
        s = s._replace(g=s.g + row[off:off + c * size].reshape(c, size))
        new_states.append(m.reset(s, sp, n, dt))
    counts = jnp.stack([jnp.sum(sp, dtype=jnp.int32) for sp in spikes])
    bits = jnp.packbits(jnp.concatenate(spikes)) if plan.record_spikes else jnp.zeros((0,),
                                                                                     jnp.uint8)
    return (tuple(new_states), buffer), (bits, counts)


def _read_traces(plan: Plan, states):
    out = {}
    for var in plan.trace_vars:
        parts = [m.traces(s)[var][idx] for m, s, idx in zip(plan.models, states, plan.trace_idx,
                                                           strict=True)]
        out[var] = jnp.concatenate(parts)
    return out


#: Steps per iteration of the inner scan: 2 beat 1 for CUBA (benchmarks/snn.py); 5 and 10
#: were no faster and compile longer.
_UNROLL = 2


def _init_carry(plan: Plan):
    """(neuron states, delay buffer) at t = 0."""
    dtype = jnp.asarray(0.0).dtype
    states = tuple(m.init_state(v0.shape[0], v0, dtype) for m, v0 in zip(plan.models, plan.v0,
                                                                          strict=True))
    return states, jnp.zeros((plan.n_slots, plan.n_inputs + 1), dtype)


def _segment(plan: Plan, keys, carry, c0, *, n_chunks: int, k: int, dt: float):
    """Chunks ``c0 .. c0 + n_chunks`` of ``k`` steps from ``carry``: the carry after them and
    the recordings (packed spike bits, per-chunk spike counts, traces)."""
    step = partial(_step, plan, dt)

    def chunk(carry, c):
        traces = _read_traces(plan, carry[0])
        poisson = _chunk_counts(plan, keys, c, k, carry[1].dtype)
        carry, (bits, counts) = jax.lax.scan(step, carry, (c * k + jnp.arange(k), poisson),
                                             unroll=_UNROLL if k % _UNROLL == 0 else 1)
        return carry, (bits, jnp.sum(counts, axis=0), traces)

    return jax.lax.scan(chunk, carry, c0 + jnp.arange(n_chunks))


def _run(plan: Plan, keys, *, n_chunks: int, k: int, dt: float):
    _, out = _segment(plan, keys, _init_carry(plan), 0, n_chunks=n_chunks, k=k, dt=dt)
    return out


_segment_jit = jax.jit(_segment, static_argnames=("n_chunks", "k", "dt"))

#: Steps per compiled segment of a run. A run is a sequence of equal segments (the last one
#: computed in full and cut), so every duration reuses the same compiled program: a new
#: duration costs no compilation. Runs shorter than a segment use the next power of two of
#: chunks (a handful of programs in all), so a short run never computes more than twice its
#: steps.
SEGMENT_STEPS = 2000


def segment_size(n_chunks: int, k: int) -> int:
    """Chunks per segment for a run of ``n_chunks`` chunks of ``k`` steps."""
    full = max(1, SEGMENT_STEPS // k)
    return full if n_chunks >= full else 1 << max(0, (n_chunks - 1).bit_length())


def run_segmented(plan: Plan, keys, progress=None, *, n_chunks: int, k: int, dt: float):
    """The whole run as equal compiled segments (a meter, if given, wraps them); the same steps
    and keys, so the same spikes (the step index, not the segment, seeds each step's noise).
    Chunks past ``n_chunks`` in the last segment are computed and dropped."""
    size = segment_size(n_chunks, k)
    carry, parts = _init_carry(plan), []
    starts = range(0, n_chunks, size)
    for c0 in (starts if progress is None else progress(starts)):
        carry, out = _segment_jit(plan, keys, carry, jnp.int32(c0), n_chunks=size, k=k, dt=dt)
        parts.append(out)
    # joined and cut on the host: device-side concatenation and slicing would compile per
    # number of segments and per length
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs])[:n_chunks],
                        *parts)


def _run_many(plans: Plan, keys, *, n_chunks: int, k: int, dt: float):
    return jax.vmap(partial(_run, n_chunks=n_chunks, k=k, dt=dt))(plans, keys)


run_many = jax.jit(_run_many, static_argnames=("n_chunks", "k", "dt"))
