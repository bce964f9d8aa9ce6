"""Spike delivery: the one place where spikes become synaptic input.

:func:`build_kernel` turns all projections leaving one population into one *kernel*, as a
:class:`Delivery` configures it:

``"event"`` (sparse, event-driven)
    per presynaptic neuron a padded list of targets (``K`` = its largest out-degree). Each
    step extracts the indices of the spiking neurons (:func:`_first_spikes`, a blocked
    ``top_k``) and scatter-adds each one's packed row of targets and weights. ``lax.switch``
    picks the smallest of the static sizes ``0, 4, 8, 12, 16, 32, ..., M`` that holds the
    step's spikes (above ``M``, one ``top_k`` over all neurons), so the cost is
    ``O(spikes x K)`` per step, not ``O(N^2)``. Under ``vmap`` (where every branch would run)
    the kernel instead loops (``lax.while_loop``) over chunks of a few spikes until none is
    left: exact, and the batch costs its largest chunk count.
``"dense"``
    a weight matrix per distinct delay, ``spikes @ W``: ``O(N_pre N_post)`` per step, the
    faster choice for small or densely connected networks.

``mode="auto"`` picks ``"event"`` when ``M K`` is below :data:`EVENT_COST_RATIO` times the
dense cost. Every kernel is exact: no setting drops a spike.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = ["Delivery", "EventKernel", "DenseKernel", "build_kernel", "EVENT_COST_RATIO",
           "KERNEL_MODES"]

#: Use the event-driven kernel when ``M * K < EVENT_COST_RATIO * n_pre * n_targets``. A dense
#: multiply-add is ~10x cheaper per element than a scatter on CPU, but the event kernel only
#: touches the targets of actual spikes, so it wins for all but small networks, where ``M``
#: (capped at ``n_pre``) times ``K`` approaches ``n_pre n_post`` (the crossover is measured by
#: ``benchmarks/snn.py --crossover``).
EVENT_COST_RATIO = 0.1


@dataclasses.dataclass(frozen=True)
class Delivery:
    """How spikes reach their targets (one object for every kernel setting).

    Parameters
    ----------
    mode : {"auto", "event", "dense"}
        Kernel kind (see the module docstring); ``"auto"`` chooses per source population.
    max_spikes : int, optional
        Largest bounded branch ``M`` of the event kernel's ``lax.switch`` (default
        ``max(64, n_pre // 64)``); steps with more spikes take the all-neurons branch.
    chunk : int
        If > 0, the event kernel delivers in a ``lax.while_loop`` over chunks of ``chunk``
        spikes instead of ``lax.switch`` (what ``simulate_many(method="vmap")`` uses).
    """

    mode: str = "auto"
    max_spikes: int | None = None
    chunk: int = 0

    def __post_init__(self):
        if self.mode != "auto" and self.mode not in KERNEL_MODES:
            raise ValueError(f"mode must be 'auto' or one of {sorted(KERNEL_MODES)}, got "
                             f"{self.mode!r}")
        if self.max_spikes is not None and (int(self.max_spikes) != self.max_spikes
                                            or self.max_spikes < 1):
            raise ValueError(f"max_spikes must be a positive integer or None, got "
                             f"{self.max_spikes!r}")
        if int(self.chunk) != self.chunk or self.chunk < 0:
            raise ValueError(f"chunk must be an integer >= 0, got {self.chunk!r}")




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
    chunk: int = struct.field(pytree_node=False, default=0)
    #: the one delay (steps) of every synapse, or -1 if they differ
    delay: int = struct.field(pytree_node=False, default=-1)

    def deliver(self, buffer, spikes, step):
        """Scatter-add the weights of this step's spikes into ``buffer`` (L, n + 1); exact.

        With ``chunk > 0`` (used under ``vmap``) a ``lax.while_loop`` delivers ``chunk``
        spikes per iteration until none is left: under ``vmap`` it costs the largest chunk
        count of the batch. Otherwise ``lax.switch`` picks the smallest branch that holds the
        step's spikes: bounds 0, 4, 8, 12, 16, ... up to ``max_spikes``, then all neurons, so
        the work follows the number of spikes.
        """
        if self.delay >= 0 and buffer.shape[0] > 1:
            # one delay: deliver into one fresh row and add it to its slot of the ring
            # buffer, so the (slots x inputs) buffer never passes through the branches
            # (XLA copies a conditional's operands: ~100 us per step for Brunel's 16 slots)
            row = self._deliver_into(jnp.zeros((1, buffer.shape[1]), buffer.dtype), spikes,
                                     step)
            return buffer.at[(step + self.delay) % buffer.shape[0]].add(row[0])
        return self._deliver_into(buffer, spikes, step)

    def _deliver_into(self, buffer, spikes, step):
        if self.chunk:
            return self._deliver_chunks(buffer, spikes, step)
        count = jnp.sum(spikes, dtype=jnp.int32)  # the same expression as the spike count
        tiers = _tiers(self.max_spikes, self.n_pre)
        branches = [partial(self._scatter, spikes=spikes, step=step, m=m) for m in tiers]
        which = jnp.sum(count > jnp.asarray(tiers[:-1], jnp.int32))
        return jax.lax.switch(which, branches, buffer)

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
        body slices one source's packed row and scatter-adds it. On CPU this beats gathering
        all rows at once: XLA splits a row gather over threads (its cost model counts the
        whole table), and at a few spikes per step the hand-off costs more than the work
        (benchmarks/snn.py)."""
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
        # the (up to m) first spikes, valid entries first; bursts (m = n_pre) take one top_k
        # over all neurons, cheaper than gathering every row
        idx, valid = _first_spikes(spikes, m)
        return self._add_rows(buffer, idx, jnp.sum(valid, dtype=jnp.int32), step)


def _tiers(max_spikes: int, n_pre: int) -> tuple[int, ...]:
    """Branch sizes 0, 4, 8, 12, 16, 32, 64, ... < max_spikes, max_spikes, then all ``n_pre``.

    Steps of 4 up to 16 spikes (where COBA's ~9 spikes per step fall, and where finer steps
    beat plain doubling on benchmarks/snn.py), then doubling, which keeps the work within 2x
    of the spike count; each branch adds compile time, so sizes below 4 share one.
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
    Otherwise one ``top_k`` over the spike vector. At a few spikes per step the two levels
    beat one ``top_k``, ``jnp.nonzero(size=m)`` and a cumulative-sum compaction
    (benchmarks/snn.py ``--crossover`` records them). Both forms give the same indices in the
    same order.
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

    def deliver(self, buffer, spikes, step):
        n_slots = buffer.shape[0]
        s = spikes.astype(buffer.dtype)
        for u, d in enumerate(self.delays):
            slot = (step + d) % n_slots
            buffer = buffer.at[slot].add(s @ self.weight[u].astype(buffer.dtype))
        return buffer


def bucket_width(k: int) -> int:
    """The padded out-degree for a largest out-degree ``k``: up to 4 as is, then the next
    multiple of half the power of two below it (6, 8, 12, 16, 24, 32, 48, 64, 96, 128, ...),
    from 512 of a quarter of it (512, 640, 768, 896, 1024, 1280, ...: at most 25 % padding,
    which a large network pays in memory; Brunel's 10,000 neurons, out-degrees up to ~1,130
    for every seed: 1,280, not 1,536).
    Networks of one size drawn with other seeds then share one compiled program (CUBA's
    4,000 neurons: largest out-degrees 110-113, all padded to 128) instead of compiling anew
    for every draw. The padding slots are never read for a neuron that does not spike and
    cost nothing measurable when it does (CUBA and COBA, 1 s: 0.068 / 0.122 s unpadded,
    0.068 / 0.125 s padded)."""
    if k <= 4:
        return k
    power = 1 << (k.bit_length() - 1)
    step = power // 2 if power < 512 else power // 4
    return -(-k // step) * step


def _padded_lists(n_pre, pre, tgt, w, dsteps, k_min: int = 1):
    counts = np.bincount(pre, minlength=n_pre)
    k = max(int(counts.max(initial=0)), k_min)
    if pre.size and np.any(pre[1:] < pre[:-1]):  # projections come sorted: skip the sort
        order = np.argsort(pre, kind="stable")
        pre, tgt, w, dsteps = pre[order], tgt[order], w[order], dsteps[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(pre.size) - starts[pre]
    return k, (pre, slot, tgt, w, dsteps)


def build_kernel(n_pre: int, pre: np.ndarray, targets: np.ndarray, weight: np.ndarray,
                 delay_steps: np.ndarray, n_targets: int, delivery: Delivery = Delivery(), *,
                 width: int | None = None):
    """Kernel for all synapses leaving one population (targets in a flat input index space).

    Parameters
    ----------
    n_pre : int
        Size of the source population.
    pre, targets, weight, delay_steps : arrays (synapse,)
        Source index, flat target index, weight and delay (in steps) of every synapse.
    n_targets : int
        Length of the flat input vector (the padding sink is index ``n_targets``).
    delivery : Delivery
    width : int, optional
        Pad the target lists to at least this width (to stack the kernels of several
        networks for ``vmap``).
    """
    m = min(n_pre, max(64, n_pre // 64)) if delivery.max_spikes is None \
        else min(n_pre, delivery.max_spikes)
    kmax, lists = _padded_lists(n_pre, pre, targets, weight, delay_steps)
    k = bucket_width(kmax) if width is None else max(width, kmax)
    mode = delivery.mode
    if mode == "auto":
        mode = "event" if m * k < EVENT_COST_RATIO * n_pre * n_targets else "dense"
    kernel = KERNEL_MODES[mode](n_pre, lists, n_targets, k, m)
    return kernel.replace(chunk=delivery.chunk) if mode == "event" else kernel


def _event(n_pre, lists, n_targets, k, m):
    pre, slot, tgt, w, d = lists
    targets = np.full((n_pre + 1) * k, n_targets, np.int32)
    weights = np.zeros((n_pre + 1) * k, np.float32)
    delays = np.zeros((n_pre + 1) * k, np.int32)
    flat = pre.astype(np.int64) * k + slot  # flat indices: faster than 2-D fancy indexing
    targets[flat], weights[flat], delays[flat] = tgt, w, d
    targets, weights, delays = (a.reshape(n_pre + 1, k) for a in (targets, weights, delays))
    rows = np.stack([targets, weights.view(np.int32), delays], axis=1)
    uniq = np.unique(d)
    return EventKernel(jnp.asarray(rows), n_pre, m, delay=int(uniq[0]) if uniq.size == 1 else -1)


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
