"""Sweeps over coupling strengths and seeds in one vmapped, jitted call."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike, Float
from brainmodels.data import provenance, to_numpy
from brainmodels.kuramoto import engine as _engine
from brainmodels.kuramoto import params as _params
from brainmodels.kuramoto.dynamics import _initial_phases
from brainmodels.kuramoto.params import KuramotoParams
from brainmodels.kuramoto.theory import (
    DISTRIBUTIONS,
    critical_coupling,
    natural_frequencies,
    stationary_order_parameter,
)

# ----------------------------------------------------------------------------- sweeps


def _sweep_one(base: KuramotoParams, coupling, key, dt, r0, width, center, *, n, steps,
               record_every, method, distribution, noisy):
    k_omega, k_theta, k_noise = jax.random.split(key, 3)
    omega = base.omega
    if distribution is not None:  # random frequencies, one draw per seed
        sample = DISTRIBUTIONS[distribution].sample
        omega = center + width * sample(k_omega, (n,), base.omega.dtype)
    theta0 = _initial_phases(k_theta, n, r0)
    params = base.replace(coupling=coupling, omega=omega)
    _, r, psi = _engine.integrate(params, theta0, dt, k_noise if noisy else None, steps=steps,
                                  record_every=record_every, method=method, record_phase=False)
    return r, psi


#: Elements (couplings x seeds x oscillators) per vectorised chunk of a sweep: larger chunks
#: fall out of the CPU caches and run slower per oscillator-step (benchmarks/kuramoto.py).
_SWEEP_CHUNK_ELEMENTS = 65_536


@functools.partial(jax.jit, static_argnames=("n", "steps", "record_every", "method",
                                             "distribution", "noisy", "batch"))
def _sweep_core(base, couplings, keys, dt, r0, width, center, *, batch, **static):
    over_seeds = jax.vmap(functools.partial(_sweep_one, **static),
                          in_axes=(None, None, 0, None, None, None, None))

    def one_coupling(k):
        return over_seeds(base, k, keys, dt, r0, width, center)

    # vmapped over seeds and over chunks of `batch` couplings, chunks in sequence
    return jax.lax.map(one_coupling, couplings, batch_size=batch)


def sweep(couplings: ArrayLike, *, params: KuramotoParams | None = None, n: int | None = None,
          omega: Float[ArrayLike, " oscillator"] | None = None,
          distribution: str = "lorentzian", width: float = 1.0, center: float = 0.0,
          sampling: str = "quantile", seeds=(0,), r0: float = 0.0, dt: float = 0.05,
          steps: int = 2000, method: str = "rk4", record_every: int = 10) -> xr.Dataset:
    """Simulate every coupling strength x seed in one ``vmap``-ed, jitted call.

    The call is vectorised over seeds and over chunks of couplings (chunks sized to stay in
    the CPU caches, run in sequence by ``lax.map``), so memory stays O(seeds x N x chunk).

    Each seed draws its initial phases (:func:`initial_phases` with ``r0``), its noise and, with
    ``sampling="random"``, its frequencies; ``sampling="quantile"`` (default) shares the
    deterministic quantile frequencies across seeds. Only r(t) and psi(t) are recorded.

    Parameters
    ----------
    couplings : array (coupling,)
        Coupling strengths K.
    params : KuramotoParams, optional
        The rest of the model (``adjacency``, ``lag``, ``noise``, ``forcing*``); its
        ``coupling`` is replaced by each of ``couplings``, and its ``omega``, unless None,
        fixes the natural frequencies. Default: all-to-all, no lag, noise or forcing.
    n : int
        Number of oscillators (needed unless ``omega`` is given).
    omega : array (oscillator,), optional
        Fixed natural frequencies (overrides ``distribution``/``sampling``).
    distribution, width, center, sampling : frequency density (see :func:`natural_frequencies`)
        and ``"quantile"`` or ``"random"``.
    seeds : sequence of int
    r0, dt, steps, method, record_every : as in :func:`simulate`.

    Returns
    -------
    xarray.Dataset
        ``order_parameter`` and ``mean_phase`` with dims ``(coupling, seed, time)``; when the
        N -> inf theory applies (all-to-all, no noise/forcing, a named distribution) also
        ``order_parameter_theory (coupling)`` and the attr ``critical_coupling``.
    """
    ks = to_numpy(couplings, name="couplings").astype(np.float64)
    if ks.ndim != 1 or ks.size == 0:
        raise ValueError(f"couplings must be a non-empty 1-D array, got shape {ks.shape}")
    _params._check_finite(ks, "couplings")
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if sampling not in ("quantile", "random"):
        raise ValueError(f"sampling must be 'quantile' or 'random', got {sampling!r}")
    if params is None:
        params = KuramotoParams(coupling=0.0, omega=None)
    elif not isinstance(params, KuramotoParams):
        raise TypeError(f"params must be a KuramotoParams, got {type(params).__name__}")
    if omega is not None and params.omega is not None:
        raise ValueError("give the natural frequencies once: omega= or params.omega")
    omega = params.omega if omega is None else omega
    user_omega = omega is not None
    if not user_omega:
        if n is None:
            raise ValueError("sweep needs n= (number of oscillators) or omega=")
        omega = natural_frequencies(n, distribution, width=width, center=center)
    n = int(to_numpy(omega, name="omega").shape[0])
    _params._check_run(dt, steps, record_every, method)
    dtype = _params._float_dtype(to_numpy(omega))
    base = _params._prepare(params.replace(coupling=0.0, omega=omega), n, dtype)
    lag, noise, forcing = (float(getattr(base, f)) for f in ("lag", "noise", "forcing"))
    if not 0.0 <= r0 < 1.0:
        raise ValueError(f"r0 must be in [0, 1), got {r0!r}")
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    random_omega = sampling == "random" and not user_omega
    r, psi = _sweep_core(
        base, jnp.asarray(ks, dtype), keys, jnp.asarray(dt, dtype), jnp.asarray(r0, dtype),
        jnp.asarray(width, dtype), jnp.asarray(center, dtype), n=n, steps=int(steps),
        record_every=int(record_every), method=method,
        distribution=distribution if random_omega else None, noisy=float(noise) > 0,
        batch=max(1, min(len(ks), _SWEEP_CHUNK_ELEMENTS // (len(seeds) * n))))
    settings = dict(n=n, dt=float(dt), steps=int(steps), method=method, r0=float(r0),
                    record_every=int(record_every), seeds=seeds,
                    frequencies="given" if user_omega else f"{sampling} {distribution}",
                    width=float(width), center=float(center))
    ds = _sweep_dataset(ks, seeds, r, psi, base, settings)
    if not random_omega:
        ds["natural_frequency"] = (("oscillator",), np.asarray(base.omega))
    theory_applies = (not user_omega and params.adjacency is None and noise == 0 and forcing == 0
                      and (lag == 0 or distribution == "lorentzian"))
    if theory_applies:
        ds["order_parameter_theory"] = (("coupling",), stationary_order_parameter(
            ks, distribution, width=width, lag=lag).astype(np.float32))
        ds["order_parameter_theory"].attrs["description"] = "N -> inf stationary r(K)"
        ds.attrs["critical_coupling"] = critical_coupling(distribution, width=width, lag=lag)
    return ds


def _sweep_dataset(ks, seeds, r, psi, base: KuramotoParams, settings: dict) -> xr.Dataset:
    n_time = r.shape[-1]
    time = settings["dt"] * settings["record_every"] * np.arange(n_time)
    dims = ("coupling", "seed", "time")
    ds = xr.Dataset(
        {"order_parameter": (dims, np.asarray(r)), "mean_phase": (dims, np.asarray(psi))},
        coords={"coupling": ks, "seed": np.asarray(seeds), "time": time})
    params = {name: float(getattr(base, name)) for name in _params._SCALARS if name != "coupling"}
    kind = type(base.adjacency).__name__ if base.adjacency is not None else "all-to-all"
    params.update(settings, adjacency=kind)
    ds.attrs = provenance("kuramoto.sweep", params=params,
                          units={"time": "model time", "phase": "rad", "omega": "rad/time"})
    return ds
