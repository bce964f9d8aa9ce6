"""Connectivity: who connects to whom, with which weight and delay; sparse or dense kernels.

A :class:`Connectivity` is a plain list of synapses (``pre``, ``post``, ``weight``,
``delay_ms``) built on the host with numpy:

* :func:`fixed_probability` - each pair connected independently with probability ``p``
  (brian2 ``connect(p=...)``; autapses allowed unless ``autapses=False``);
* :func:`fixed_in_degree` - every postsynaptic neuron receives exactly ``k`` inputs;
* :func:`from_indices` - explicit index lists;
* :func:`dense` - every pair, from a weight matrix (zeros dropped).

For the simulation the network turns all projections leaving one population into one
*kernel* (:func:`build_kernel`):

``"event"`` (sparse, event-driven)
    per presynaptic neuron a padded list of targets (``K`` = its largest out-degree). Each
    step extracts the indices of the spiking neurons (:func:`_first_spikes`, a blocked
    ``top_k``) and scatter-adds each one's packed row of targets and weights. ``lax.switch``
    picks the smallest of the static sizes ``0, 4, 8, 12, 16, 32, ..., M`` that holds the step's
    spikes (above ``M``, one ``top_k`` over all neurons), so the cost is ``O(spikes x K)`` per step,
    not ``O(N^2)``. Under ``vmap`` (where every branch would run) the kernel instead loops
    (``lax.while_loop``) over chunks of a few spikes until none is left: exact, and the
    batch costs its largest chunk count.
``"dense"``
    a weight matrix per distinct delay, ``spikes @ W``: ``O(N_pre N_post)`` per step, the
    faster choice for small or densely connected networks.

``mode="auto"`` picks ``"event"`` when ``M K`` is below :data:`EVENT_COST_RATIO` times the
dense cost; the threshold comes from the crossover measured by ``benchmarks/snn.py``.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from brainmodels._types import ArrayLike

__all__ = [
    "Connectivity",
    "fixed_probability",
    "fixed_in_degree",
    "from_indices",
    "dense",
    "EventKernel",
    "DenseKernel",
    "build_kernel",
    "EVENT_COST_RATIO",
]

#: Use the event-driven kernel when ``M * K < EVENT_COST_RATIO * n_pre * n_targets``. A dense
#: multiply-add is ~10x cheaper per element than a scatter on CPU, but the event kernel only
#: touches the targets of actual spikes: at 1,000 neurons and ~25 Hz it was 7x (p = 0.5) to
#: 40x (p = 0.01) faster than dense (benchmarks/snn.py ``--crossover``); dense wins only for
#: small networks, where ``M`` (capped at ``n_pre``) times ``K`` approaches ``n_pre n_post``.
EVENT_COST_RATIO = 0.1


@dataclasses.dataclass(frozen=True)
class Connectivity:
    """Synapses of one projection (host-side numpy arrays).

    Attributes
    ----------
    n_pre, n_post : int
        Sizes of the pre- and postsynaptic populations.
    pre, post : int32 (synapse,)
        Indices of each synapse's source and target neuron.
    weight : float32 (synapse,)
        Weights in the units of the target channel (mV current or relative conductance).
    delay_ms : float32 (synapse,)
        Transmission delays, ms (>= 0).
    """

    n_pre: int
    n_post: int
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_ms: np.ndarray

    @property
    def n_synapses(self) -> int:
        return int(self.pre.shape[0])

    @property
    def density(self) -> float:
        return self.n_synapses / max(1, self.n_pre * self.n_post)

    def to_dense(self) -> np.ndarray:
        """Weight matrix (n_pre, n_post) (multiple synapses between a pair add up)."""
        w = np.zeros((self.n_pre, self.n_post), np.float64)
        np.add.at(w, (self.pre, self.post), self.weight)
        return w


def _as_sizes(n_pre, n_post) -> tuple[int, int]:
    for name, n in (("n_pre", n_pre), ("n_post", n_post)):
        if int(n) != n or n <= 0:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n_pre), int(n_post)


def from_indices(
    pre: ArrayLike, post: ArrayLike, weight=1.0, *, n_pre: int, n_post: int,
    delay_ms=0.0,
) -> Connectivity:
    """Connectivity from explicit index lists (one entry per synapse).

    Raises
    ------
    ValueError
        If ``pre``/``post`` differ in length or index outside the populations, if ``weight``
        or ``delay_ms`` has the wrong length, or a delay is negative.
    """
    n_pre, n_post = _as_sizes(n_pre, n_post)
    pre = np.asarray(pre, dtype=np.int64).ravel()
    post = np.asarray(post, dtype=np.int64).ravel()
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
    for name, idx, n in (("pre", pre, n_pre), ("post", post, n_post)):
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"{name} indices must lie in [0, {n}), got values in [{idx.min()}, {idx.max()}]"
            )
    arrays = {}
    for name, value in (("weight", weight), ("delay_ms", delay_ms)):
        arr = np.asarray(value, dtype=np.float32)
        if arr.ndim == 0:
            arr = np.full(pre.shape, arr, np.float32)
        if arr.shape != pre.shape:
            raise ValueError(
                f"{name} must be a scalar or have one value per synapse ({pre.size}), "
                f"got shape {arr.shape}"
            )
        arrays[name] = arr
    if np.any(arrays["delay_ms"] < 0) or not np.all(np.isfinite(arrays["delay_ms"])):
        raise ValueError(f"delay_ms must be finite and >= 0, got min {arrays['delay_ms'].min()}")
    if not np.all(np.isfinite(arrays["weight"])):
        raise ValueError("weight must be finite (got NaN or inf)")
    order = np.lexsort((post, pre))
    return Connectivity(
        n_pre, n_post, pre[order].astype(np.int32), post[order].astype(np.int32),
        arrays["weight"][order], arrays["delay_ms"][order],
    )


def fixed_probability(
    n_pre: int, n_post: int, p: float, weight=1.0, *, seed: int, delay_ms=0.0,
    pre_indices: ArrayLike | None = None, autapses: bool = True,
) -> Connectivity:
    """Each (pre, post) pair is connected independently with probability ``p``.

    ``pre_indices`` restricts the sources to a subset (e.g. the excitatory neurons of a
    population: brian2's ``connect('i < 3200', p=0.02)``). ``autapses=False`` excludes ``i == j``
    (meaningful when pre and post are the same population).
    """
    n_pre, n_post = _as_sizes(n_pre, n_post)
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    sources = np.arange(n_pre) if pre_indices is None else np.asarray(pre_indices, np.int64)
    mask = rng.random((sources.size, n_post)) < p
    if not autapses:
        mask &= sources[:, None] != np.arange(n_post)[None, :]
    rows, cols = np.nonzero(mask)
    return from_indices(sources[rows], cols, weight, n_pre=n_pre, n_post=n_post, delay_ms=delay_ms)


def fixed_in_degree(
    n_pre: int, n_post: int, k: int, weight=1.0, *, seed: int, delay_ms=0.0,
    autapses: bool = True,
) -> Connectivity:
    """Every postsynaptic neuron receives exactly ``k`` inputs, drawn without replacement."""
    n_pre, n_post = _as_sizes(n_pre, n_post)
    limit = n_pre if autapses else n_pre - 1
    if int(k) != k or not 0 <= k <= limit:
        raise ValueError(f"k must be an integer in [0, {limit}], got {k!r}")
    rng = np.random.default_rng(seed)
    pre = np.empty((n_post, int(k)), np.int64)
    for j in range(n_post):
        pool = np.arange(n_pre) if autapses else np.delete(np.arange(n_pre), j)
        pre[j] = rng.choice(pool, size=int(k), replace=False)
    post = np.repeat(np.arange(n_post), int(k))
    return from_indices(pre.ravel(), post, weight, n_pre=n_pre, n_post=n_post, delay_ms=delay_ms)


def dense(weights, *, delay_ms=0.0) -> Connectivity:
    """All nonzero entries of a weight matrix ``(n_pre, n_post)`` become synapses."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix (n_pre, n_post), got shape {w.shape}")
    rows, cols = np.nonzero(w)
    d = np.asarray(delay_ms, np.float32)
    d = d[rows, cols] if d.ndim == 2 else d
    return from_indices(rows, cols, w[rows, cols], n_pre=w.shape[0], n_post=w.shape[1],
                        delay_ms=d)


# ----------------------------------------------------------------------------- kernels


@struct.dataclass
class EventKernel:
    """Event-driven delivery: padded per-source target lists (row ``n_pre`` is all padding).

    ``rows[i]`` packs source ``i``'s targets, weights (float32 bits) and delays (steps) so one
    slice delivers a spike. Targets index a flat input vector of length ``n_targets`` (the
    value ``n_targets`` is the padding sink).
    """

    rows: jax.Array  # (n_pre + 1, 3, K) int32: targets, float32 weight bits, delay steps
    n_pre: int = struct.field(pytree_node=False)
    max_spikes: int = struct.field(pytree_node=False)
    fallback: bool = struct.field(pytree_node=False, default=True)
    groups: int = struct.field(pytree_node=False, default=1)
    chunk: int = struct.field(pytree_node=False, default=0)

    @property
    def can_overflow(self) -> bool:
        """Whether :meth:`deliver` may drop spikes (one bounded branch, no chunks)."""
        return not self.fallback and not self.chunk

    def deliver(self, buffer, spikes, step):
        """Scatter-add the weights of this step's spikes into ``buffer`` (L, n + 1).

        With ``chunk > 0`` (used under ``vmap``) a ``lax.while_loop`` delivers ``chunk``
        spikes per iteration until none is left: exact, and under ``vmap`` it costs the
        largest chunk count of the batch. Otherwise, with ``fallback`` (the default) the step
        picks, with ``lax.switch``, the smallest branch that holds its spikes: bounds 0, 4, 8, 12,
        16, ... up to ``max_spikes``, then all neurons (exact), so the work follows the
        number of spikes. Without either there is one branch of size ``max_spikes`` and the
        excess is returned as an overflow count.
        """
        if self.chunk:
            return self._deliver_chunks(buffer, spikes, step), jnp.zeros((), jnp.int32)
        size = self.n_pre // self.groups
        if self.groups == 1:  # the same expression as the network's spike count (shared)
            count = jnp.sum(spikes, dtype=jnp.int32)
        else:
            count = jnp.max(jnp.sum(spikes.reshape(self.groups, size), axis=1, dtype=jnp.int32))
        if not self.fallback:
            out = self._scatter(buffer, spikes=spikes, step=step, m=self.max_spikes)
            return out, jnp.maximum(count - self.max_spikes, 0)
        tiers = _tiers(self.max_spikes, size)
        branches = [partial(self._scatter, spikes=spikes, step=step, m=m) for m in tiers]
        which = jnp.sum(count > jnp.asarray(tiers[:-1], jnp.int32))
        return jax.lax.switch(which, branches, buffer), jnp.zeros((), jnp.int32)

    def _deliver_chunks(self, buffer, spikes, step):
        """Exact delivery in chunks of ``chunk`` spikes: a ``lax.while_loop`` takes the first
        ``chunk`` remaining spikes (ascending), scatter-adds their targets and removes them.
        Under ``vmap`` it runs the largest chunk count of the batch, never a full branch."""

        def body(carry):
            buf, rest = carry
            idx, valid = _first_spikes(rest, self.chunk)
            buf = self._add(buf, idx, valid, step)
            return buf, rest.at[idx].set(False, mode="drop")

        buf, _ = jax.lax.while_loop(lambda c: jnp.any(c[1]), body, (buffer, spikes))
        return buf

    @property
    def width(self) -> int:
        """``K``, the padded out-degree."""
        return int(self.rows.shape[-1])

    @staticmethod
    def _unpack(rows):
        """(..., 3, K) packed rows -> targets, weights (float32), delays."""
        return rows[..., 0, :], jax.lax.bitcast_convert_type(rows[..., 1, :], jnp.float32), \
            rows[..., 2, :]

    def _add_rows(self, buffer, idx, count, step):
        """Deliver the first ``count`` entries of ``idx`` one row at a time: a loop whose
        body slices one source's packed row and scatter-adds it. On CPU this is ~2x faster
        per step than gathering all rows at once: XLA splits a row gather over threads
        (its cost model counts the whole table), and at a few spikes per step the hand-off
        costs more than the work (benchmarks/snn.py, 4,000 neurons, 2 cores)."""
        n_slots, width = buffer.shape

        def one(r, flat):
            tgt, w, d = self._unpack(jax.lax.dynamic_index_in_dim(self.rows, idx[r],
                                                                   keepdims=False))
            if n_slots > 1:
                tgt = ((step + d) % n_slots) * width + tgt
            return flat.at[tgt].add(w.astype(buffer.dtype), mode="promise_in_bounds")

        flat = jax.lax.fori_loop(0, count, one, buffer.ravel())
        return flat.reshape(buffer.shape)

    def _add(self, buffer, idx, valid, step):
        n_slots, width = buffer.shape
        tgt, w, d = self._unpack(self.rows[idx])
        tgt = jnp.where(valid[:, None], tgt, width - 1)
        if n_slots > 1:
            tgt = ((step + d) % n_slots) * width + tgt
        w = w.astype(buffer.dtype)
        flat = buffer.ravel().at[tgt.ravel()].add(w.ravel(), mode="promise_in_bounds")
        return flat.reshape(buffer.shape)

    def _scatter(self, buffer, *, spikes, step, m: int):
        if m == 0:
            return buffer
        size = self.n_pre // self.groups
        if self.groups == 1 or m >= size:
            # the (up to m) first spikes, valid entries first; bursts (m >= size) take one
            # top_k over all neurons (~0.2 ms for 600 spikes at 4,000 neurons, where
            # gathering every row cost 1.2 ms)
            idx, valid = _first_spikes(spikes, min(m, size) if self.groups == 1 else self.n_pre)
        else:  # disjoint groups (simulate_many): up to m spikes from each group
            idx, valid = jax.vmap(_first_spikes, in_axes=(0, None))(
                spikes.reshape(self.groups, size), m)
            offsets = (jnp.arange(self.groups, dtype=jnp.int32) * size)[:, None]
            # valid entries first (the padding index n_pre sorts last)
            idx = jnp.sort(jnp.where(valid, idx + offsets, self.n_pre).ravel())
        return self._add_rows(buffer, idx, jnp.sum(valid, dtype=jnp.int32), step)


def _tiers(max_spikes: int, n_pre: int) -> tuple[int, ...]:
    """Branch sizes 0, 4, 8, 12, 16, 32, 64, ... < max_spikes, max_spikes, then all ``n_pre``.

    Steps of 4 up to 16 spikes (where COBA's ~9 spikes per step fall; 6 % faster than plain
    doubling there, benchmarks/snn.py), then doubling, which keeps the work within 2x of the
    spike count; each branch adds compile time (~0.1-0.5 s), so sizes below 4 share one.
    """
    tiers, m = [0], 4
    while m < min(max_spikes, n_pre):
        tiers.append(m)
        m = m + 4 if m < 16 else 2 * m
    tiers.append(min(max_spikes, n_pre))
    if tiers[-1] < n_pre:
        tiers.append(n_pre)
    return tuple(tiers)


#: Block size of the two-level spike search in :func:`_first_spikes`.
_BLOCK = 16


def _first_spikes(spikes, m: int):
    """Indices of up to ``m`` spiking neurons (ascending) and a validity mask.

    Two levels when the ``m`` candidate blocks are small against the population
    (``4 m B <= N``, blocks of ``B = 16`` neurons): ``top_k`` picks the (at most ``m``) blocks
    that contain spikes, a second ``top_k`` the spikes inside them, ``O(N / B + m B)``.
    Otherwise one ``top_k`` over the spike vector. Measured per step at 4,000 neurons and
    ~2 spikes (benchmarks/snn.py ``--crossover``, one pinned core): two levels 2.7 us
    (``m = 4``) to 9 us (``m = 32``), one ``top_k`` 14 us, ``jnp.nonzero(size=m)`` 63 us, a
    cumulative-sum compaction 53 us. Both forms give the same indices in the same order.
    """
    n = spikes.shape[0]
    if 4 * m * _BLOCK > n:
        vals, idx = jax.lax.top_k(spikes.astype(jnp.float32), m)
        valid = vals > 0
        return jnp.where(valid, idx, n).astype(jnp.int32), valid
    n_blocks = -(-n // _BLOCK)
    padded = spikes if n % _BLOCK == 0 else jnp.concatenate(
        [spikes, jnp.zeros((n_blocks * _BLOCK - n,), bool)])
    padded = padded.reshape(n_blocks, _BLOCK)
    has, blocks = jax.lax.top_k(jnp.any(padded, axis=1).astype(jnp.float32), m)
    sub = (padded[blocks] & (has[:, None] > 0)).reshape(-1)
    vals, pos = jax.lax.top_k(sub.astype(jnp.float32), m)
    idx = blocks[pos // _BLOCK] * _BLOCK + pos % _BLOCK
    valid = vals > 0
    return jnp.where(valid, idx, n).astype(jnp.int32), valid


@struct.dataclass
class DenseKernel:
    """Dense delivery: one weight matrix per distinct delay (in steps)."""

    weight: jax.Array  # (U, n_pre, n_targets + 1)
    delays: tuple[int, ...] = struct.field(pytree_node=False)
    can_overflow = False

    def deliver(self, buffer, spikes, step):
        n_slots = buffer.shape[0]
        s = spikes.astype(buffer.dtype)
        for u, d in enumerate(self.delays):
            slot = (step + d) % n_slots
            buffer = buffer.at[slot].add(s @ self.weight[u].astype(buffer.dtype))
        return buffer, jnp.zeros((), jnp.int32)


def _padded_lists(n_pre, pre, tgt, w, dsteps, k_min: int = 1):
    counts = np.bincount(pre, minlength=n_pre)
    k = max(int(counts.max(initial=0)), k_min)
    if pre.size and np.any(pre[1:] < pre[:-1]):  # projections come sorted: skip the sort
        order = np.argsort(pre, kind="stable")
        pre, tgt, w, dsteps = pre[order], tgt[order], w[order], dsteps[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(pre.size) - starts[pre]
    return k, (pre, slot, tgt, w, dsteps)


def build_kernel(
    n_pre: int, pre: np.ndarray, targets: np.ndarray, weight: np.ndarray, delay_steps: np.ndarray,
    n_targets: int, *, mode: str = "auto", max_spikes: int | None = None, k: int | None = None,
    fallback: bool = True, groups: int = 1, chunk: int = 0,
):
    """Kernel for all synapses leaving one population (targets in a flat input index space).

    Parameters
    ----------
    mode : {"auto", "event", "dense"}
    max_spikes : int, optional
        Bound ``M`` on spikes per step for the event kernel (default ``max(64, n_pre // 64)``).
    k : int, optional
        Pad the target lists to this width (to stack kernels of several networks for vmap).
    groups : int
        The sources are ``groups`` equal disjoint blocks (the union of several networks in
        ``simulate_many``): the bound ``M`` applies per block.
    chunk : int
        If > 0, the event kernel delivers in a ``lax.while_loop`` over chunks of ``chunk``
        spikes instead of ``lax.switch`` (exact for any spike count; used under ``vmap``).
    """
    if mode != "auto" and mode not in KERNEL_MODES:
        raise ValueError(f"mode must be 'auto' or one of {sorted(KERNEL_MODES)}, got {mode!r}")
    if groups < 1 or n_pre % groups:
        raise ValueError(f"groups must divide n_pre={n_pre}, got {groups}")
    size = n_pre // groups
    m = min(size, max(64, size // 64)) if max_spikes is None else min(size, int(max_spikes))
    kmax, lists = _padded_lists(n_pre, pre, targets, weight, delay_steps)
    k = kmax if k is None else max(k, kmax)
    if mode == "auto":
        mode = "event" if m * k < EVENT_COST_RATIO * size * n_targets else "dense"
    kernel = KERNEL_MODES[mode](n_pre, lists, n_targets, k, m)
    if mode != "event":
        return kernel
    return kernel.replace(fallback=fallback, groups=groups, chunk=max(0, int(chunk)))


def _event(n_pre, lists, n_targets, k, m):
    pre, slot, tgt, w, d = lists
    targets = np.full((n_pre + 1) * k, n_targets, np.int32)
    weights = np.zeros((n_pre + 1) * k, np.float32)
    delays = np.zeros((n_pre + 1) * k, np.int32)
    flat = pre.astype(np.int64) * k + slot  # flat indices: faster than 2-D fancy indexing
    targets[flat], weights[flat], delays[flat] = tgt, w, d
    targets, weights, delays = (a.reshape(n_pre + 1, k) for a in (targets, weights, delays))
    rows = np.stack([targets, weights.view(np.int32), delays], axis=1)
    return EventKernel(jnp.asarray(rows), n_pre, m)


def _dense(n_pre, lists, n_targets, k, m):
    pre, _, tgt, w, d = lists
    uniq = tuple(int(u) for u in np.unique(d)) or (0,)
    mats = np.zeros((len(uniq), n_pre, n_targets + 1), np.float32)
    for u, du in enumerate(uniq):
        sel = d == du
        np.add.at(mats[u], (pre[sel], tgt[sel]), w[sel])
    return DenseKernel(jnp.asarray(mats), uniq)


#: Kernel constructors by mode name.
KERNEL_MODES = {"event": _event, "dense": _dense}
