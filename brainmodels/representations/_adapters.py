"""Representations of the trainable and simulated model families: AKOrN, the recurrent
networks of :mod:`brainmodels.wave_rnn`, and spiking networks."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels.akorn import AKOrN
from brainmodels.representations._baselines import _gray, _positive
from brainmodels.representations._core import register
from brainmodels.snn import Network
from brainmodels.wave_rnn import GRU, IRNN, LSTM, WaveRNN

__all__: list[str] = []


def _batches(n: int, batch: int):
    for start in range(0, n, batch):
        yield slice(start, min(start + batch, n))


def _pad(x: np.ndarray, batch: int) -> np.ndarray:
    """Pad the leading axis to ``batch`` by repeating the last row (one compiled shape)."""
    if x.shape[0] == batch:
        return x
    return np.concatenate([x, np.repeat(x[-1:], batch - x.shape[0], 0)])


# ----------------------------------------------------------------------------- AKOrN


@nnx.jit(static_argnames=("T",))
def _akorn_blocks(model, images, key, T):
    return [(x, c) for x, c, _ in model.blocks(images, key=key, T=T)]


def _cells(a: jax.Array, pool: int) -> jax.Array:
    """(b, h, w, ...) -> (b, pool, pool, h/pool * w/pool, ...): the positions of each cell."""
    b, h, w = a.shape[:3]
    rest = a.shape[3:]
    a = a.reshape(b, pool, h // pool, pool, w // pool, *rest)
    a = jnp.moveaxis(a, 3, 2)
    return a.reshape(b, pool, pool, (h // pool) * (w // pool), *rest)


@register(AKOrN)
def _akorn(model: AKOrN, images, *, key=None, n_samples: int = 1, pool: int = 4,
           T: int | None = None, batch: int = 64):
    """Per block: ``block<i>_states`` (oscillators averaged in a ``pool x pool`` grid),
    ``block<i>_synchrony`` (length of the mean oscillator of each group of ``n`` channels in
    each cell: 1 when the cell's oscillators agree) and ``block<i>_readout``."""
    cfg = model.config
    if key is None:
        raise ValueError("AKOrN draws its initial oscillators: pass key= (a jax PRNG key)")
    n_samples, batch = _positive(n_samples, "n_samples"), _positive(batch, "batch")
    pool = _positive(pool, "pool")
    if images.ndim == 3:
        images = np.repeat(images[..., None], cfg.in_channels, -1)
    if images.shape[1:] != (cfg.image_size, cfg.image_size, cfg.in_channels):
        raise ValueError(f"stimuli must be {cfg.image_size}x{cfg.image_size} images with "
                         f"{cfg.in_channels} channel(s) for this AKOrN, got "
                         f"{images.shape[1:]}")
    side = cfg.image_size // cfg.patch
    if side % pool:
        raise ValueError(f"pool={pool} must divide the {side}x{side} oscillator grid")
    out: dict[str, list] = {}
    for s in range(n_samples):
        per: dict[str, list] = {}
        for b, sl in enumerate(_batches(images.shape[0], batch)):
            k = jax.random.fold_in(jax.random.fold_in(key, s), b)
            x = jnp.asarray(_pad(images[sl], batch))
            blocks = _akorn_blocks(model, x, k, T)
            m = sl.stop - sl.start
            for i, (states, readout) in enumerate(blocks, 1):
                cells = _cells(states, pool)  # (b, p, p, pos, C)
                grouped = cells.reshape(*cells.shape[:4], -1, cfg.n)
                sync = jnp.linalg.norm(grouped.mean(3), axis=-1)  # (b, p, p, C / n)
                for name, v in ((f"block{i}_states", cells.mean(3)),
                                (f"block{i}_synchrony", sync),
                                (f"block{i}_readout", _cells(readout, pool).mean(3))):
                    per.setdefault(name, []).append(np.asarray(v)[:m].reshape(m, -1))
        for name, parts in per.items():
            out.setdefault(name, []).append(np.concatenate(parts))
    layers = {name: (np.stack(v, 1), ("sample",)) for name, v in out.items()}
    info = {"config": dataclasses.asdict(cfg), "n_samples": n_samples, "pool": pool,
            "T": cfg.T if T is None else T, "stochastic": bool(cfg.oscillatory)}
    return layers, info


# ----------------------------------------------------------------------------- RNNs


@nnx.jit
def _rnn_states(model, x):
    _, states = model(x, return_states=True)
    return states


def _rnn(model, images, *, key=None, scan: str | None = None, time_bins: int | None = None,
         batch: int = 64):
    """``hidden`` (stimulus, time, feature): the states over the image read as a sequence
    (``scan="rows"``: one row per step, or ``"pixels"``: raster order, one pixel per step),
    averaged in ``time_bins`` equal bins (default: every step); ``final``: the last state."""
    gray = _gray(images)
    n, h, w = gray.shape
    if scan is None:
        scan = "rows" if model.n_inputs == w else "pixels" if model.n_inputs == 1 else None
    if scan == "rows":
        seq = gray
    elif scan == "pixels":
        seq = gray.reshape(n, h * w, 1)
    else:
        raise ValueError(f"scan must be 'rows' (n_inputs = image width) or 'pixels' (n_inputs = "
                         f"1); this model has n_inputs={model.n_inputs} and the images are "
                         f"{h}x{w}, got scan={scan!r}")
    if seq.shape[-1] != model.n_inputs:
        raise ValueError(f"scan={scan!r} gives {seq.shape[-1]} inputs per step, the model "
                         f"takes n_inputs={model.n_inputs}")
    steps = seq.shape[1]
    time_bins = steps if time_bins is None else _positive(time_bins, "time_bins")
    if steps % time_bins:
        raise ValueError(f"time_bins={time_bins} must divide the {steps} steps of the sequence")
    batch = _positive(batch, "batch")
    hidden, final = [], []
    for sl in _batches(n, batch):
        st = np.asarray(_rnn_states(model, jnp.asarray(_pad(seq[sl], batch))))[: sl.stop - sl.start]
        st = st.reshape(st.shape[0], steps, -1)
        final.append(st[:, -1])
        hidden.append(st.reshape(st.shape[0], time_bins, steps // time_bins, -1).mean(2))
    layers = {"hidden": (np.concatenate(hidden), ("time",)), "final": (np.concatenate(final), ())}
    return layers, {"scan": scan, "time_bins": time_bins, "n_neurons": int(model.n_neurons)}


for _kind in (WaveRNN, IRNN, GRU, LSTM):
    register(_kind)(_rnn)


# ----------------------------------------------------------------------------- spiking


def _stimulus_currents(gray: np.ndarray, size: int) -> np.ndarray:
    """(stimulus, size): neuron ``i`` sees pixel ``floor(i * n_pixels / size)`` in raster order."""
    flat = gray.reshape(gray.shape[0], -1)
    return flat[:, (np.arange(size) * flat.shape[1]) // size]


@register(Network)
def _spiking(net: Network, images, *, key=None, input_population: str | None = None,
             gain: float = 10.0, duration_ms: float = 200.0, dt_ms: float = 0.1,
             bin_ms: float | None = None, n_samples: int = 1, chunk: int = 64):
    """Spike counts per neuron and time bin, one layer per population.

    The stimulus adds ``gain * pixel`` (the population's current units, e.g. mV for a unit
    membrane resistance) to the constant input ``i_ext`` of ``input_population`` (default
    the first), neuron ``i`` seeing pixel ``floor(i * n_pixels / size)`` in raster order.
    Stimuli are run ``chunk`` at a time as one network (``snn.simulate_many``'s union, one
    compiled program for every chunk).
    """
    from brainmodels.snn import simulate_many

    pops = [p.name for p in net.populations]
    target = pops[0] if input_population is None else input_population
    if target not in pops:
        raise ValueError(f"input_population must be one of {pops}, got {target!r}")
    n_samples, chunk = _positive(n_samples, "n_samples"), _positive(chunk, "chunk")
    if not np.isfinite(gain):
        raise ValueError(f"gain must be finite, got {gain}")
    bin_ms = float(duration_ms) if bin_ms is None else float(bin_ms)
    n_bins = int(round(duration_ms / bin_ms))
    if bin_ms <= 0 or abs(n_bins * bin_ms - duration_ms) > 1e-6 * duration_ms:
        raise ValueError(f"bin_ms={bin_ms} must divide duration_ms={duration_ms}")
    if n_samples > 1 and not net.inputs:
        raise ValueError("n_samples > 1 needs a network with Poisson inputs: without them every "
                         "run of the same stimulus is the same")
    if net.inputs and key is None:
        raise ValueError("the network has Poisson inputs: pass key= (a jax PRNG key)")
    j = pops.index(target)
    base = np.broadcast_to(np.asarray(net.populations[j].i_ext, np.float32),
                           (net.populations[j].size,))
    currents = base + np.float32(gain) * _stimulus_currents(_gray(images), base.size)
    offsets = net.offsets
    n = images.shape[0]
    counts = {p: np.zeros((n, n_samples, n_bins, size), np.float32)
              for p, size in ((q.name, q.size) for q in net.populations)}
    key = jax.random.key(0) if key is None else key
    for s in range(n_samples):
        for c, sl in enumerate(_batches(n, chunk)):
            rows = _pad(currents[sl], chunk)
            nets = []
            for row in rows:
                pops_b = list(net.populations)
                pops_b[j] = dataclasses.replace(pops_b[j], i_ext=row)
                nets.append(dataclasses.replace(net, populations=tuple(pops_b)))
            k = jax.random.fold_in(jax.random.fold_in(key, s), c)
            res = simulate_many(nets, duration_ms, dt_ms, key=k, method="union")
            m = sl.stop - sl.start
            which = res["spike_network"].values
            keep = which < m
            neuron = res["spike_neuron"].values[keep]
            b = np.minimum((res["spike_time"].values[keep] / bin_ms).astype(np.int64),
                           n_bins - 1)
            stim = sl.start + which[keep]
            for p, (lo, hi) in offsets.items():
                sel = (neuron >= lo) & (neuron < hi)
                np.add.at(counts[p], (stim[sel], s, b[sel], neuron[sel] - lo), 1.0)
    dims = ("sample", "time") if n_bins > 1 else ("sample",)
    layers = {p: (v if n_bins > 1 else v[:, :, 0], dims) for p, v in counts.items()}
    info = {"network": net.name, "input_population": target, "gain": float(gain),
            "duration_ms": float(duration_ms), "dt_ms": float(dt_ms), "bin_ms": bin_ms,
            "n_samples": n_samples, "units": "spike counts per bin",
            "stochastic": bool(net.inputs)}
    return layers, info
