"""The three ways :func:`brainmodels.snn.simulate_many` runs several networks.

``loop``  one compiled program, the networks one after the other (target lists padded to a
          common width);
``union`` their disjoint union as one network (parameters become per-neuron arrays);
``vmap``  the plans stacked and one simulation mapped over them.

Network ``b`` always gets ``jax.random.split(key, n_networks)[b]`` and draws its Poisson inputs
per step from it (the union keeps one block of draws per network), so the three methods give
the same spikes for the same key.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels.snn import _engine
from brainmodels.snn._delivery import Delivery
from brainmodels.snn.analysis import _concat_networks, _to_dataset
from brainmodels.snn.connectivity import Connectivity

__all__ = ["METHODS"]


def _common_shapes(nets, dt_ms, recording, delivery: Delivery
                   ) -> tuple[dict[int, int], tuple[int, ...]]:
    """What every network of ``nets`` must share for one compiled program: the widest target
    list per source population, and per Poisson input the longest inversion table (or
    jax.random.poisson, 0, if any network needs it)."""
    plans = [_engine.plan_for(n, dt_ms, recording, delivery) for n in nets]
    widths = {pi: max(getattr(p.kernels[j], "width", 0) for p in plans)
              for j, pi in enumerate(plans[0].kernel_pre)}
    tables = tuple(0 if min(t) == 0 else max(t)
                   for t in zip(*(p.poisson_table for p in plans), strict=True))
    return widths, tables


def _loop(nets, n_steps, k, dt_ms, key, recording, delivery, simulate_one):
    keys = jax.random.split(key, len(nets))
    widths, _ = _common_shapes(nets, dt_ms, recording, delivery)
    parts = [simulate_one(n, n_steps, k, dt_ms, kk[None], recording, delivery, widths=widths)
             for n, kk in zip(nets, keys, strict=True)]
    return _concat_networks(parts, nets)


#: Spikes per ``while_loop`` iteration of the event kernels under ``vmap`` (the best of 8,
#: 16, 32 for 32 CUBA networks of 4,000 neurons, benchmarks/snn.py).
_VMAP_CHUNK = 8


def _vmap(nets, n_steps, k, dt_ms, key, recording, delivery, simulate_one):
    keys = jax.random.split(key, len(nets))
    bound = delivery.max_spikes
    chunked = dataclasses.replace(delivery, chunk=_VMAP_CHUNK if bound is None
                                  else max(1, min(_VMAP_CHUNK, int(bound))))
    widths, tables = _common_shapes(nets, dt_ms, recording, delivery)
    plans = [_engine.plan_for(n, dt_ms, recording, chunked, widths=widths, tables=tables)
             for n in nets]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *plans)
    bits, counts, traces = _engine.run_many(stacked, keys[:, None], n_chunks=n_steps // k, k=k,
                                            dt=float(dt_ms))
    parts = [_to_dataset(n, dt_ms, n_steps, k, recording, bits[i], counts[i],
                         {v: t[i] for v, t in traces.items()}, plans[i])
             for i, n in enumerate(nets)]
    return _concat_networks(parts, nets)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.shape(x) == np.shape(y) and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves_a, leaves_b, strict=True))


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


def _union(nets: list):
    """The disjoint union of ``nets``; its Poisson inputs hold one value per network."""
    from brainmodels.snn.network import Network, PoissonInput, Population

    first, b = nets[0], len(nets)
    pops = []
    for j, p in enumerate(first.populations):
        group = [n.populations[j] for n in nets]
        pops.append(Population(
            p.name, p.size * b, _stack_models([q.model for q in group], p.size),
            v0=np.concatenate([_engine.initial_v(q) for q in group]),
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
    inputs = tuple(PoissonInput(inp.target, inp.channel, *(
        np.array([float(getattr(n.inputs[i], a)) for n in nets])
        for a in ("n_sources", "rate_hz", "weight"))) for i, inp in enumerate(first.inputs))
    return Network(tuple(pops), tuple(projections), inputs, name=first.name)


def _to_union(idx, b, sizes, n_nets):
    """Global indices of network ``b`` -> global indices in the union network."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    j = np.searchsorted(starts, idx, side="right") - 1
    return starts[j] * n_nets + b * np.asarray(sizes)[j] + (idx - starts[j])


def _union_run(nets, n_steps, k, dt_ms, key, recording, delivery, simulate_one):
    union = _union(nets)
    sizes = [p.size for p in nets[0].populations]
    neurons = np.asarray(recording.neurons, np.int64).ravel()
    _engine.trace_indices(nets[0], neurons)  # validates the indices
    union_neurons = np.concatenate([_to_union(neurons, b, sizes, len(nets))
                                    for b in range(len(nets))]) if neurons.size else neurons
    rec = dataclasses.replace(recording, neurons=union_neurons)
    res = simulate_one(union, n_steps, k, dt_ms, jax.random.split(key, len(nets)), rec, delivery,
                       n_blocks=len(nets))
    return _split_union(res, nets, sizes, recording, k, dt_ms)


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


#: method name -> runner ``(nets, n_steps, k, dt_ms, key, recording, delivery, simulate_one)``
METHODS = {"loop": _loop, "union": _union_run, "vmap": _vmap}
