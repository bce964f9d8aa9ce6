"""Spike-train statistics of simulation results: firing rates, CV of ISIs, spike agreement.

All functions take the :class:`xarray.Dataset` returned by
:func:`~brainmodels.snn.network.simulate` (or by the brian2 bridge, which uses the same
layout): spike events ``spike_time`` (ms) and ``spike_neuron`` along ``event``, attrs
``n_neurons``, ``duration_ms``, ``dt_ms`` and ``populations``. The private builders at the
end turn the simulator's scan outputs into that Dataset layout.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from brainmodels.data import provenance
from brainmodels.snn.neurons import NEURON_UNITS

__all__ = ["firing_rates", "cv_isi", "fano_factor", "spike_time_agreement",
           "population_summary"]


def _events(res: xr.Dataset):
    if not isinstance(res, xr.Dataset) or "spike_time" not in res:
        raise TypeError("res must be a simulation Dataset with spike_time/spike_neuron events")
    return np.asarray(res["spike_time"].values), np.asarray(res["spike_neuron"].values)


def _neuron_coords(res: xr.Dataset, n: int) -> dict:
    labels = np.empty(n, dtype=object)
    for name, (start, stop) in res.attrs.get("populations", {"all": [0, n]}).items():
        labels[start:stop] = name
    return {"neuron": np.arange(n), "population": ("neuron", labels.astype(str))}


def firing_rates(res: xr.Dataset, *, start_ms: float = 0.0) -> xr.DataArray:
    """Mean firing rate of every neuron, Hz, over ``[start_ms, duration)``.

    Returns ``(neuron,)`` (or ``(network, neuron)`` for :func:`simulate_many` results) with a
    ``population`` coordinate.
    """
    t, i = _events(res)
    n, duration = int(res.attrs["n_neurons"]), float(res.attrs["duration_ms"])
    if not 0.0 <= start_ms < duration:
        raise ValueError(f"start_ms must lie in [0, {duration}), got {start_ms}")
    keep = t >= start_ms
    scale = 1000.0 / (duration - start_ms)
    coords = _neuron_coords(res, n)
    if "spike_network" in res:
        net = np.asarray(res["spike_network"].values)[keep]
        n_net = int(res.sizes["network"])
        counts = np.zeros((n_net, n))
        np.add.at(counts, (net, i[keep]), 1.0)
        return xr.DataArray(counts * scale, dims=("network", "neuron"), coords=coords,
                            name="rate", attrs={"units": "Hz"})
    counts = np.bincount(i[keep], minlength=n).astype(float)
    return xr.DataArray(counts * scale, dims=("neuron",), coords=coords, name="rate",
                        attrs={"units": "Hz"})


def _per_neuron(t, i, n):
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    bounds = np.searchsorted(i, np.arange(n + 1))
    return [t[bounds[k]:bounds[k + 1]] for k in range(n)]


def cv_isi(res: xr.Dataset, *, min_spikes: int = 3, start_ms: float = 0.0) -> xr.DataArray:
    """Coefficient of variation of the interspike intervals of every neuron.

    ``CV = std(ISI) / mean(ISI)`` (population std, ``ddof=0``). Neurons with fewer than
    ``min_spikes`` spikes have no defined CV: they get NaN, by design and documented here;
    average with ``nanmean``. Single-network results only.
    """
    if "spike_network" in res:
        raise ValueError("cv_isi takes one network; select one with res.where(...) first")
    t, i = _events(res)
    keep = t >= start_ms
    n = int(res.attrs["n_neurons"])
    cv = np.full(n, np.nan)
    for k, times in enumerate(_per_neuron(t[keep], i[keep], n)):
        if times.size >= max(min_spikes, 3):
            isi = np.diff(times)
            cv[k] = isi.std() / isi.mean()
    return xr.DataArray(cv, dims=("neuron",), coords=_neuron_coords(res, n), name="cv_isi")


def fano_factor(res: xr.Dataset, *, window_ms: float = 100.0,
                start_ms: float = 0.0) -> xr.DataArray:
    """Fano factor of every neuron's spike counts in consecutive windows of ``window_ms``.

    ``var(counts) / mean(counts)`` over the ``floor((duration - start_ms) / window_ms)`` whole
    windows (population variance, ``ddof=0``); 1 for a Poisson process. Silent neurons have
    no defined Fano factor: NaN, by design; average with ``nanmean``. Single-network results
    only.

    Examples
    --------
    >>> import jax
    >>> from brainmodels import snn
    >>> res = snn.simulate(snn.brunel(n_exc=400, seed=0), 400.0, 0.1, key=jax.random.key(0))
    >>> ff = fano_factor(res, window_ms=50.0)
    >>> ff.dims, bool(np.nanmean(ff.values) > 0)
    (('neuron',), True)
    """
    if "spike_network" in res:
        raise ValueError("fano_factor takes one network; select one with res.where(...) first")
    t, i = _events(res)
    n, duration = int(res.attrs["n_neurons"]), float(res.attrs["duration_ms"])
    n_win = int((duration - start_ms) // window_ms) if window_ms > 0 else 0
    if n_win < 2:
        raise ValueError(f"window_ms={window_ms} leaves {n_win} whole window(s) in "
                         f"[{start_ms}, {duration}) ms; the Fano factor needs >= 2")
    keep = (t >= start_ms) & (t < start_ms + n_win * window_ms)
    w = ((t[keep] - start_ms) // window_ms).astype(np.int64)
    counts = np.bincount(i[keep] * n_win + w, minlength=n * n_win).reshape(n, n_win)
    mean = counts.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ff = np.where(mean > 0, counts.var(axis=1) / mean, np.nan)
    return xr.DataArray(ff, dims=("neuron",), coords=_neuron_coords(res, n), name="fano_factor",
                        attrs={"window_ms": float(window_ms)})


def _match(a: np.ndarray, b: np.ndarray, tol: float) -> int:
    """Greedy one-to-one matches between two sorted spike-time arrays within ``tol``."""
    ia = ib = matches = 0
    while ia < a.size and ib < b.size:
        d = a[ia] - b[ib]
        if abs(d) <= tol:
            matches, ia, ib = matches + 1, ia + 1, ib + 1
        elif d < 0:
            ia += 1
        else:
            ib += 1
    return matches


def spike_time_agreement(a: xr.Dataset, b: xr.Dataset, *, tol_ms: float | None = None) -> float:
    """Fraction of spikes of two runs that coincide (same neuron, within ``tol_ms``).

    ``2 * matches / (n_a + n_b)`` with a greedy one-to-one matching per neuron; 1 means
    identical spike trains (within the tolerance). ``tol_ms`` defaults to half a time step
    (exact agreement on the time grid). Two runs without spikes agree perfectly (1.0).
    """
    ta, ia = _events(a)
    tb, ib = _events(b)
    if int(a.attrs["n_neurons"]) != int(b.attrs["n_neurons"]):
        raise ValueError(
            f"a and b must have the same neurons, got {a.attrs['n_neurons']} and "
            f"{b.attrs['n_neurons']}"
        )
    tol = 0.5 * float(a.attrs["dt_ms"]) if tol_ms is None else float(tol_ms)
    if ta.size + tb.size == 0:
        return 1.0
    n = int(a.attrs["n_neurons"])
    pa, pb = _per_neuron(ta, ia, n), _per_neuron(tb, ib, n)
    matches = sum(_match(x, y, tol) for x, y in zip(pa, pb, strict=True))
    return 2.0 * matches / (ta.size + tb.size)


def population_summary(res: xr.Dataset, *, start_ms: float = 0.0) -> dict[str, dict[str, float]]:
    """Mean rate (Hz), mean CV-ISI (over neurons with >= 3 spikes) and mean Fano factor of
    100 ms counts (over active neurons; NaN for runs under 200 ms) per population."""
    rates = firing_rates(res, start_ms=start_ms)
    cv = cv_isi(res, start_ms=start_ms)
    long_enough = float(res.attrs["duration_ms"]) - start_ms >= 200.0
    ff = fano_factor(res, start_ms=start_ms).values if long_enough else np.full(cv.shape, np.nan)
    out = {}
    for name, (start, stop) in res.attrs["populations"].items():
        c, f = cv.values[start:stop], ff[start:stop]
        out[name] = {
            "rate_hz": float(rates.values[start:stop].mean()),
            "cv_isi": float(np.nanmean(c)) if np.any(np.isfinite(c)) else float("nan"),
            "fano_factor": float(np.nanmean(f)) if np.any(np.isfinite(f)) else float("nan"),
            "n_spikes": int(rates.values[start:stop].sum() * (float(res.attrs["duration_ms"])
                                                              - start_ms) / 1000.0 + 0.5),
        }
    return out


# ----------------------------------------------------------------------------- result datasets
# (network.simulate / simulate_many turn their scan outputs into labelled Datasets here)


def _concat_networks(parts, nets) -> xr.Dataset:
    events = [p[["spike_time", "spike_neuron"]] for p in parts]
    for i, ev in enumerate(events):
        events[i] = ev.assign(spike_network=("event", np.full(ev.sizes["event"], i, np.int32)))
    ev = xr.concat(events, dim="event")
    rest = xr.concat([p.drop_vars(["spike_time", "spike_neuron"]) for p in parts],
                     dim="network", combine_attrs="drop_conflicts")
    out = xr.merge([rest, ev], combine_attrs="override")
    out.attrs = {**parts[0].attrs, "seeds": [n.seed for n in nets]}
    out.attrs.pop("seed", None)
    return out


def _to_dataset(net, dt, n_steps, k, recording, bits, counts, traces, plan) -> xr.Dataset:
    n = net.n_neurons
    if recording.spikes:
        steps, neurons = _events_from_bits(np.asarray(bits).reshape(n_steps, -1), n)
    else:  # not recorded: no events (population rates are still there)
        steps, neurons = np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.arange(n_steps // k) * k * dt
    data = {
        "spike_time": ("event", (steps * dt).astype(np.float64), {"units": "ms"}),
        "spike_neuron": ("event", neurons.astype(np.int32)),
    }
    counts = np.asarray(counts)
    for j, p in enumerate(net.populations):
        data[f"rate_{p.name}"] = ("time", counts[:, j] / (p.size * k * dt * 1e-3),
                                  {"units": "Hz"})
    neuron_ids = np.unique(np.asarray(recording.neurons, np.int64).ravel())
    for var, values in traces.items():
        data[var] = (("time", "neuron"), np.asarray(values), {"units": _unit(net, var)})
    coords = {"time": ("time", t, {"units": "ms"})}
    if recording.traces:
        coords["neuron"] = neuron_ids
    ds = xr.Dataset(data, coords=coords)
    ds.attrs = provenance(
        f"brainmodels.snn:{net.name}", params=_summary(net), seed=net.seed,
        units={k_: v for k_, v in NEURON_UNITS.items()},
        dt_ms=float(dt), duration_ms=float(n_steps * dt), n_neurons=int(n),
        populations={name: list(r) for name, r in net.offsets.items()},
        kernels=[type(kern).__name__ for kern in plan.kernels],
    )
    return ds


def _events_from_bits(bits: np.ndarray, n: int):
    """(step, neuron) of every set bit of packed spikes (steps, bytes), in time order."""
    n_bytes = bits.shape[1]
    pad = -n_bytes % 8
    if pad:
        bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), np.uint8)], axis=1)
    # find the nonzero 64-bit words first (spikes are sparse), then unpack only those
    words = np.ascontiguousarray(bits).view(np.uint64)
    flat = np.flatnonzero(words)  # (flat 1-D searches are several times faster than 2-D)
    unpacked = np.unpackbits(words.ravel()[flat].view(np.uint8))
    hit = np.flatnonzero(unpacked)
    word = flat[hit // 64]
    steps, cols = np.divmod(word, words.shape[1])
    neurons = cols * 64 + hit % 64
    keep = neurons < n
    return steps[keep], neurons[keep]


def _unit(net, var):
    if var.startswith("g_"):
        return NEURON_UNITS["g_" + net.populations[0].model.syn.kind]
    return NEURON_UNITS.get(var, "")


def _summary(net) -> dict:
    out = {}
    for p in net.populations:
        fields = {f.name: getattr(p.model, f.name) for f in dataclasses.fields(p.model)
                  if f.name != "syn"}
        fields = {k: (np.asarray(v).tolist() if np.ndim(v) == 0 else "per-neuron")
                  if not isinstance(v, str) else v for k, v in fields.items()}
        syn = p.model.syn
        out[p.name] = {"model": type(p.model).__name__, "size": p.size, **fields,
                       "syn_kind": syn.kind, "syn_tau": np.asarray(syn.tau).tolist(),
                       "syn_e_rev": np.asarray(syn.e_rev).tolist()}
    for pr in net.projections:
        out[f"proj_{pr.name or pr.pre + '_' + pr.post}"] = {
            "pre": pr.pre, "post": pr.post, "channel": pr.channel,
            "n_synapses": pr.conn.n_synapses, "density": pr.conn.density}
    for i, inp in enumerate(net.inputs):
        out[f"poisson_{i}"] = dataclasses.asdict(inp)
    return out
