"""Connectivity: who connects to whom, with which weight and delay; sparse or dense kernels.

A :class:`Connectivity` is a plain list of synapses (``pre``, ``post``, ``weight``,
``delay_ms``) built on the host with numpy:

* :func:`fixed_probability` - each pair connected independently with probability ``p``
  (brian2 ``connect(p=...)``; autapses allowed unless ``autapses=False``);
* :func:`fixed_in_degree` - every postsynaptic neuron receives exactly ``k`` inputs;
* :func:`from_indices` - explicit index lists;
* :func:`dense` - every pair, from a weight matrix (zeros dropped).

The simulation turns all projections leaving one population into one delivery kernel
(:mod:`brainmodels.snn._delivery`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from brainmodels._types import ArrayLike

__all__ = ["Connectivity", "fixed_probability", "fixed_in_degree", "from_indices", "dense"]



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


def _synapse_order(pre: np.ndarray, post: np.ndarray, n_post: int) -> np.ndarray:
    """The order that sorts synapses by (pre, post), stable for repeated pairs: nothing if
    sorted already, else a quicksort of one int64 key (2x faster than the stable sort),
    which is stable when no pair repeats, checked afterwards."""
    key = pre * np.int64(n_post) + post
    if key.size < 2 or np.all(key[1:] >= key[:-1]):
        return np.arange(key.size)
    order = np.argsort(key)
    ranked = key[order]
    if np.any(ranked[1:] == ranked[:-1]):  # repeated pairs keep their given order
        order = np.argsort(key, kind="stable")
    return order


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
    order = _synapse_order(pre, post, n_post)
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
    pre_indices: ArrayLike | None = None, autapses: bool = True,
) -> Connectivity:
    """Every postsynaptic neuron receives exactly ``k`` inputs, drawn without replacement.

    ``pre_indices`` restricts the sources to a subset of the presynaptic population (e.g.
    its excitatory neurons, as in Brunel 2000); ``autapses=False`` excludes the source with
    the postsynaptic neuron's own index (meaningful when pre and post are one population).
    Drawn for all targets at once: uniform draws with replacement, duplicates (and autapses)
    redrawn until none is left, which is uniform sampling without replacement.
    """
    n_pre, n_post = _as_sizes(n_pre, n_post)
    sources = np.arange(n_pre) if pre_indices is None else np.asarray(pre_indices, np.int64)
    if sources.size and (sources.min() < 0 or sources.max() >= n_pre
                         or np.unique(sources).size != sources.size):
        raise ValueError(f"pre_indices must be distinct indices in [0, {n_pre})")
    m = sources.size
    # a target that is itself a source loses one candidate without autapses
    limit = m - (0 if autapses else int(np.isin(sources, np.arange(n_post)).any()))
    if int(k) != k or not 0 <= k <= limit:
        raise ValueError(f"k must be an integer in [0, {limit}], got {k!r}")
    k = int(k)
    rng = np.random.default_rng(seed)
    post_ids = np.arange(n_post)[:, None]
    if 2 * k > m:  # dense: the first k of a random order of the sources, row by row
        pick = np.empty((n_post, k), np.int64)
        for lo in range(0, n_post, 256):
            keys = rng.random((min(256, n_post - lo), m))
            if not autapses:
                keys[sources[None, :] == post_ids[lo:lo + keys.shape[0]]] = 2.0  # last
            pick[lo:lo + keys.shape[0]] = np.argsort(keys, axis=1)[:, :k]
    else:
        pick = rng.integers(0, m, (n_post, k))
        rows = np.arange(n_post)  # rows that may still hold a repeat or an autapse
        while rows.size:
            sub = np.sort(pick[rows], axis=1)  # a row is a set: its order does not matter
            bad = np.zeros(sub.shape, bool)
            bad[:, 1:] = sub[:, 1:] == sub[:, :-1]  # all but the first of equal draws
            if not autapses:
                bad |= sources[sub] == post_ids[rows]
            hit = bad.any(axis=1)
            rows, bad, sub = rows[hit], bad[hit], sub[hit]
            sub[bad] = rng.integers(0, m, int(bad.sum()))  # redraw them
            pick[rows] = sub
    post = np.repeat(np.arange(n_post), k)
    return from_indices(sources[pick].ravel(), post, weight, n_pre=n_pre, n_post=n_post,
                        delay_ms=delay_ms)


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


