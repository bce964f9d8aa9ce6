"""The classic Kuramoto model of coupled phase oscillators (with Sakaguchi lag, forcing, noise).

.. math::

    \\dot\\theta_i = \\omega_i + K \\sum_j A_{ij} \\sin(\\theta_j - \\theta_i - \\alpha)
                   + F \\sin(\\Omega t + \\phi - \\theta_i) + \\sqrt{2D}\\, \\xi_i(t)

With ``adjacency=None`` the coupling is all-to-all, ``A_ij = 1/N``, and is evaluated through
the mean field ``r e^{i psi} = mean_j e^{i theta_j}`` in O(N) per step (10^5-10^6 oscillators
run); a dense or sparse (BCOO, scipy.sparse or :class:`EdgeList`) adjacency gives a network,
with ``K sum_j A_ij`` unnormalised (pass ``A / N`` for the all-to-all normalisation).

Public API
----------
KuramotoParams, simulate, sweep, integrate       simulation (xarray out; ``integrate`` is pure JAX)
order_parameter, local_order                     synchrony measures
natural_frequencies, initial_phases, DISTRIBUTIONS
critical_coupling, stationary_order_parameter, ott_antonsen_order_parameter   theory

References
----------
Kuramoto (1975, 1984), Chemical Oscillations, Waves and Turbulence, eqs. 5.4.1-5.4.5.
Sakaguchi & Kuramoto (1986), Prog. Theor. Phys. 76, 576 (phase lag).
Strogatz (2000), Physica D 143, 1, eqs. 2-6 (self-consistency, K_c = 2 / (pi g(0))).
Strogatz & Mirollo (1991), J. Stat. Phys. 63, 613 (noise: K_c = 2 / int g(w) D/(D^2+w^2) dw).
Ott & Antonsen (2008), Chaos 18, 037113, eq. 11 (dr/dt = -gamma r + K/2 r (1 - r^2)).
Restrepo, Ott & Hunt (2005), Phys. Rev. E 71, 036151, eq. 9 (K_c = k_0 / lambda_max(A)).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels import _kuramoto as _engine
from brainmodels._kuramoto import EdgeList
from brainmodels._kuramoto_theory import (
    DISTRIBUTIONS,
    as_scipy,
    critical_coupling,
    natural_frequencies,
    ott_antonsen_order_parameter,
    stationary_order_parameter,
)
from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike, Float, PRNGKeyArray
from brainmodels.data import provenance, to_numpy

__all__ = [
    "DISTRIBUTIONS",
    "EdgeList",
    "KuramotoParams",
    "critical_coupling",
    "edge_list",
    "initial_phases",
    "integrate",
    "local_order",
    "natural_frequencies",
    "order_parameter",
    "ott_antonsen_order_parameter",
    "plot_order_parameter",
    "plot_sweep",
    "simulate",
    "stationary_order_parameter",
    "sweep",
]


@flax.struct.dataclass
class KuramotoParams:
    """Frozen parameters of the Kuramoto(-Sakaguchi) model.

    Parameters
    ----------
    coupling : float
        Coupling strength ``K``.
    omega : array (oscillator,)
        Natural frequencies (rad per time unit).
    adjacency : None, array (oscillator, oscillator), BCOO, scipy.sparse or EdgeList
        ``None``: all-to-all with ``A_ij = 1/N`` (mean field, O(N)). Otherwise ``A[i, j]`` is
        the weight of the input from ``j`` to ``i`` (not normalised).
    lag : float
        Sakaguchi phase lag ``alpha`` (rad).
    noise : float
        Noise intensity ``D >= 0``: ``<xi_i(t) xi_j(s)> = 2 D delta_ij delta(t - s)``
        (needs ``key=`` in :func:`simulate`).
    forcing, forcing_frequency, forcing_phase : float
        External drive ``F sin(Omega t + phi - theta_i)``.
    """

    coupling: Any
    omega: Any
    adjacency: Any = None
    lag: Any = 0.0
    noise: Any = 0.0
    forcing: Any = 0.0
    forcing_frequency: Any = 0.0
    forcing_phase: Any = 0.0


_SCALARS = ("coupling", "lag", "noise", "forcing", "forcing_frequency", "forcing_phase")


# ----------------------------------------------------------------------------- validation


def _float_dtype(*arrays) -> Any:
    default = jnp.zeros(()).dtype  # float32, or float64 under jax.enable_x64
    if any(np.asarray(a).dtype == np.float64 for a in arrays) and default == jnp.float64:
        return jnp.float64
    return default


def _check_finite(values: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))[:5].tolist()
        raise ValueError(f"{name} must be finite; it has non-finite values at indices {bad}")


def _prepare_adjacency(adjacency, n: int, dtype):
    if adjacency is None:
        return None
    if isinstance(adjacency, EdgeList):
        if adjacency.n != n:
            raise ValueError(f"adjacency EdgeList has n={adjacency.n}, expected {n} oscillators")
        return adjacency.replace(weight=jnp.asarray(adjacency.weight, dtype))
    if isinstance(adjacency, _engine.jsparse.BCOO):
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {adjacency.shape}")
        return adjacency.astype(dtype)
    if hasattr(adjacency, "tocoo"):  # scipy.sparse
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {adjacency.shape}")
        return edge_list(adjacency, dtype=dtype)
    values = to_numpy(adjacency, name="adjacency")
    if values.shape != (n, n):
        raise ValueError(f"adjacency must have shape ({n}, {n}), got {values.shape}")
    _check_finite(values.ravel(), "adjacency")
    return jnp.asarray(values, dtype)


def edge_list(adjacency, *, dtype=None) -> EdgeList:
    """Convert a dense array or scipy.sparse matrix (row = receiving oscillator) to an EdgeList."""
    import scipy.sparse as sp

    coo = sp.coo_matrix(adjacency)
    if coo.shape[0] != coo.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {coo.shape}")
    dtype = dtype or jnp.zeros(()).dtype
    return EdgeList(source=jnp.asarray(coo.col, jnp.int32), target=jnp.asarray(coo.row, jnp.int32),
                    weight=jnp.asarray(coo.data, dtype), n=int(coo.shape[0]))


def _prepare(params: KuramotoParams, n: int, dtype) -> KuramotoParams:
    omega = to_numpy(params.omega, name="omega")
    if omega.shape != (n,):
        raise ValueError(f"omega must have shape ({n},) like theta0, got {omega.shape}")
    _check_finite(omega, "omega")
    fields = {}
    for name in _SCALARS:
        value = np.asarray(getattr(params, name), dtype=float)
        if value.shape != () or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite scalar, got {getattr(params, name)!r}")
        fields[name] = jnp.asarray(value, dtype)
    if float(fields["noise"]) < 0:
        raise ValueError(f"noise must be >= 0 (an intensity D), got {float(fields['noise'])}")
    return KuramotoParams(omega=jnp.asarray(omega, dtype),
                          adjacency=_prepare_adjacency(params.adjacency, n, dtype), **fields)


def _check_run(dt, steps, record_every, method) -> None:
    if method not in _engine.INTEGRATORS:
        raise ValueError(f"method must be one of {sorted(_engine.INTEGRATORS)}, got {method!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite time step, got {dt!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if int(record_every) != record_every or record_every < 1 or steps % record_every:
        raise ValueError(
            f"record_every must be a positive integer dividing steps={steps}, got {record_every!r}"
        )


# ----------------------------------------------------------------------------- simulation


def integrate(params: KuramotoParams,
              theta0: Float[ArrayLike, " oscillator"],
              *, dt: float, steps: int, method: str = "rk4", record_every: int = 1,
              key: PRNGKeyArray | None = None, record_phase: bool = True, t0: float = 0.0):
    """Pure-JAX integration (jit/vmap-able): returns ``(phases, r, psi)`` JAX arrays.

    ``params`` must hold JAX arrays (and a dense/BCOO/EdgeList adjacency); no validation is
    done. ``phases`` has shape ``(steps // record_every + 1, N)`` (None if ``record_phase`` is
    False), wrapped to [-pi, pi]. See :func:`simulate` for the equations and arguments.
    Noise is applied only with a ``key`` (a concrete non-zero ``noise`` without one raises).
    """
    if key is None:
        try:
            noisy = float(params.noise) != 0.0
        except (TypeError, jax.errors.ConcretizationTypeError):  # traced: caller's business
            noisy = False
        if noisy:
            raise ValueError(f"noise={float(params.noise)} > 0 needs an explicit key=")
    return _engine.integrate(params, jnp.asarray(theta0), dt, key, steps=steps,
                             record_every=record_every, method=method,
                             record_phase=record_phase, t0=t0)


def simulate(params: KuramotoParams, theta0: Float[ArrayLike, " oscillator"], *,
             dt: float = 0.05, steps: int = 2000, method: str = "rk4", record_every: int = 10,
             key: PRNGKeyArray | None = None, record_phase: bool = True,
             t0: float = 0.0) -> xr.Dataset:
    """Integrate the Kuramoto model from ``theta0`` and record phases and the order parameter.

    Parameters
    ----------
    params : KuramotoParams
        Model parameters (see the module docstring for the equation).
    theta0 : array or DataArray (oscillator,)
        Initial phases (rad).
    dt : float
        Time step (> 0).
    steps : int
        Number of steps; the run covers ``[t0, t0 + steps * dt]``.
    method : {"euler", "heun", "rk4"}
        Integrator for the drift (global order 1, 2, 4). With noise, each drift step is
        followed by the Euler-Maruyama increment ``sqrt(2 D dt) N(0, 1)``.
    record_every : int
        Record every ``record_every`` steps (must divide ``steps``); the initial state is
        recorded too.
    key : jax PRNG key, optional
        Required when ``params.noise > 0``.
    record_phase : bool
        Record the phases (``time x oscillator`` floats); False keeps only r(t) and psi(t).

    Returns
    -------
    xarray.Dataset
        ``phase (time, oscillator)`` wrapped to [-pi, pi], ``order_parameter (time)``,
        ``mean_phase (time)``, ``natural_frequency (oscillator)``; provenance attrs.

    Raises
    ------
    ValueError
        On shape mismatches, non-finite values, a bad ``dt``/``steps``/``record_every``/
        ``method``, or ``noise > 0`` without ``key``.

    References
    ----------
    Kuramoto (1984), eq. 5.4.1 (model); Sakaguchi & Kuramoto (1986), eq. 1 (lag); Strogatz
    (2000), eqs. 2-3 (mean-field form used here: one cos/sin pass per integrator stage).

    Examples
    --------
    >>> omega = natural_frequencies(1000, "lorentzian", width=0.5)
    >>> theta0 = initial_phases(1000, key=jax.random.key(0))
    >>> ds = simulate(KuramotoParams(coupling=3.0, omega=omega), theta0, dt=0.05, steps=400)
    >>> round(float(ds.order_parameter[-20:].mean()), 1)
    0.8
    """
    theta_np, template = to_numpy(theta0, name="theta0"), None
    if isinstance(theta0, xr.DataArray):
        template = theta0
    if theta_np.ndim != 1:
        raise ValueError(f"theta0 must have shape (oscillator,), got {theta_np.shape}")
    _check_finite(theta_np, "theta0")
    _check_run(dt, steps, record_every, method)
    n = theta_np.shape[0]
    dtype = _float_dtype(theta_np, to_numpy(params.omega))
    if record_phase:  # (time, oscillator) phases on the device and again on the host
        n_time = int(steps) // int(record_every) + 1
        check_memory(2.0 * n_time * n * np.dtype(dtype).itemsize,
                     what=f"recording the phases of {n} oscillators at {n_time} times",
                     knob="raise record_every, or pass record_phase=False (the order "
                          "parameter is always recorded)")
    p = _prepare(params, n, dtype)
    if key is None and float(p.noise) > 0:
        raise ValueError(f"noise={float(p.noise)} > 0 needs an explicit key= (a jax PRNG key)")
    key = None if float(p.noise) == 0 else key
    phases, r, psi = _engine.integrate_jit(
        p, jnp.asarray(theta_np, dtype), dt, key, steps=int(steps),
        record_every=int(record_every), method=method, record_phase=record_phase, t0=t0)
    time = t0 + dt * record_every * np.arange(int(steps) // int(record_every) + 1)
    coords = {"time": time}
    if template is not None and "oscillator" in template.coords:
        coords["oscillator"] = template.coords["oscillator"].values
    data = {
        "order_parameter": (("time",), np.asarray(r)),
        "mean_phase": (("time",), np.asarray(psi)),
        "natural_frequency": (("oscillator",), np.asarray(p.omega)),
    }
    if record_phase:
        data["phase"] = (("time", "oscillator"), np.asarray(phases))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs = provenance("kuramoto", params=_scalar_params(p, n, dt, steps, method),
                          units={"time": "model time", "phase": "rad", "omega": "rad/time"})
    return ds


def _scalar_params(p: KuramotoParams, n: int, dt, steps, method) -> dict:
    out = {name: float(getattr(p, name)) for name in _SCALARS}
    kind = type(p.adjacency).__name__ if p.adjacency is not None else "all-to-all (mean field)"
    out.update(n=n, dt=float(dt), steps=int(steps), method=method, adjacency=kind)
    return out


# ----------------------------------------------------------------------------- measures


def order_parameter(theta: Float[ArrayLike, "... oscillator"]):
    """Kuramoto order parameter ``r e^{i psi} = mean_j e^{i theta_j}`` over oscillators.

    Parameters
    ----------
    theta : array (..., oscillator) or DataArray with an ``oscillator`` dimension

    Returns
    -------
    (r, psi)
        numpy arrays (scalars for 1-D input) or DataArrays without the ``oscillator`` dim.
    """
    if isinstance(theta, xr.DataArray):
        if "oscillator" not in theta.dims:
            raise ValueError(f"theta must have an 'oscillator' dimension, got {theta.dims}")
        z = np.exp(1j * theta.astype(np.float64)).mean("oscillator")
        return np.abs(z).rename("order_parameter"), xr.apply_ufunc(np.angle, z).rename(
            "mean_phase")
    values = to_numpy(theta, name="theta")
    if values.ndim < 1 or values.shape[-1] == 0:
        raise ValueError(f"theta must have a non-empty oscillator axis, got shape {values.shape}")
    z = np.exp(1j * values.astype(np.float64)).mean(-1)
    return np.abs(z), np.angle(z)


def local_order(theta: Float[ArrayLike, "... oscillator"], adjacency):
    """Local order ``r_i = |sum_j A_ij e^{i theta_j}| / sum_j |A_ij|`` of each oscillator.

    Parameters
    ----------
    theta : array (..., oscillator) or DataArray with a trailing ``oscillator`` dimension
    adjacency : dense array, BCOO, scipy.sparse or EdgeList (row = receiving oscillator)

    Returns
    -------
    numpy array (..., oscillator) or DataArray (float64).

    Raises
    ------
    ValueError
        If the shapes disagree or an oscillator has no inputs (an all-zero row).

    References
    ----------
    Restrepo, Ott & Hunt (2005), eq. 4 (local mean field of node n).
    """
    values = to_numpy(theta, name="theta").astype(np.float64)
    if values.ndim < 1:
        raise ValueError(f"theta must have an oscillator axis, got shape {values.shape}")
    n = values.shape[-1]
    if adjacency is None:
        raise ValueError("local_order needs an adjacency; for all-to-all use order_parameter")
    adj = as_scipy(adjacency)
    if adj.shape != (n, n):
        raise ValueError(f"adjacency must have shape ({n}, {n}), got {adj.shape}")
    degree = np.asarray(abs(adj).sum(axis=1)).ravel()
    if np.any(degree == 0):
        raise ValueError(f"local_order: oscillators {np.flatnonzero(degree == 0)[:5].tolist()} "
                         "have no inputs (an all-zero adjacency row)")
    z = np.exp(1j * values.reshape(-1, n))
    field = np.asarray(adj @ z.T).T  # (batch, oscillator): sum_j A_ij e^{i theta_j}
    out = (np.abs(field) / degree).reshape(values.shape)
    if isinstance(theta, xr.DataArray):
        return theta.copy(data=out).rename("local_order")
    return out


# ----------------------------------------------------------------------------- initial state


def initial_phases(n: int, *, key: PRNGKeyArray, r0: float = 0.0):
    """Initial phases with order parameter ``r0`` (to O(1/N)), independent of the frequencies.

    The phases are the quantiles of the wrapped Cauchy (Poisson-kernel) density with mean
    resultant length ``r0`` and mean phase 0, in random order (``key``). Independent of the
    frequencies, this state lies on the Ott-Antonsen manifold, so the Lorentzian model
    follows :func:`ott_antonsen_order_parameter` from it. ``r0 = 0`` gives evenly spaced phases.

    Parameters
    ----------
    n : int
        Number of oscillators.
    key : jax PRNG key
        Randomises the order of the phases.
    r0 : float in [0, 1)

    Returns
    -------
    jax.Array (n,)
    """
    if not 0.0 <= r0 < 1.0:
        raise ValueError(f"r0 must be in [0, 1), got {r0!r}")
    return _initial_phases(key, int(n), jnp.asarray(r0, jnp.zeros(()).dtype))


def _initial_phases(key, n: int, r0):
    u = (jnp.arange(n, dtype=r0.dtype) + 0.5) / n
    theta = 2.0 * jnp.arctan((1.0 - r0) / (1.0 + r0) * jnp.tan(jnp.pi * (u - 0.5)))
    return jax.random.permutation(key, theta)


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
#: fall out of the CPU caches and run ~2x slower per oscillator-step (measured, N = 10^4).
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


def sweep(couplings: ArrayLike, *, n: int | None = None,
          omega: Float[ArrayLike, " oscillator"] | None = None,
          distribution: str = "lorentzian", width: float = 1.0, center: float = 0.0,
          sampling: str = "quantile", seeds=(0,), r0: float = 0.0, adjacency=None,
          lag: float = 0.0, noise: float = 0.0, forcing: float = 0.0,
          forcing_frequency: float = 0.0, forcing_phase: float = 0.0, dt: float = 0.05,
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
    n : int
        Number of oscillators (needed unless ``omega`` is given).
    omega : array (oscillator,), optional
        Fixed natural frequencies (overrides ``distribution``/``sampling``).
    distribution, width, center, sampling : frequency density (see :func:`natural_frequencies`)
        and ``"quantile"`` or ``"random"``.
    seeds : sequence of int
    r0, adjacency, lag, noise, forcing, forcing_frequency, forcing_phase, dt, steps, method,
    record_every : as in :func:`simulate` / :class:`KuramotoParams`.

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
    _check_finite(ks, "couplings")
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if sampling not in ("quantile", "random"):
        raise ValueError(f"sampling must be 'quantile' or 'random', got {sampling!r}")
    user_omega = omega is not None
    if not user_omega:
        if n is None:
            raise ValueError("sweep needs n= (number of oscillators) or omega=")
        omega = natural_frequencies(n, distribution, width=width, center=center)
    n = int(to_numpy(omega, name="omega").shape[0])
    _check_run(dt, steps, record_every, method)
    dtype = _float_dtype(to_numpy(omega))
    base = _prepare(KuramotoParams(coupling=0.0, omega=omega, adjacency=adjacency, lag=lag,
                                   noise=noise, forcing=forcing,
                                   forcing_frequency=forcing_frequency,
                                   forcing_phase=forcing_phase), n, dtype)
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
    theory_applies = (not user_omega and adjacency is None and noise == 0 and forcing == 0
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
    params = {name: float(getattr(base, name)) for name in _SCALARS if name != "coupling"}
    kind = type(base.adjacency).__name__ if base.adjacency is not None else "all-to-all"
    params.update(settings, adjacency=kind)
    ds.attrs = provenance("kuramoto.sweep", params=params,
                          units={"time": "model time", "phase": "rad", "omega": "rad/time"})
    return ds


# ----------------------------------------------------------------------------- plots


def plot_order_parameter(ds: xr.Dataset, *, couplings=None, ax=None):
    """Plot r(t) (mean over seeds) of a :func:`sweep` or :func:`simulate` result.

    ``couplings``: which to draw for a sweep (default: up to 6 spread over the range).
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    r = ds.order_parameter
    if "coupling" in r.dims:
        ks = ds.coupling.values
        if couplings is None:
            couplings = ks[np.linspace(0, len(ks) - 1, min(6, len(ks))).round().astype(int)]
        for k in couplings:
            ax.plot(ds.time, r.sel(coupling=k).mean("seed"), label=f"K = {k:.2f}")
        ax.legend(fontsize=8)
    else:
        ax.plot(ds.time, r)
    ax.set(xlabel="time", ylabel="order parameter r(t)", ylim=(0, 1.02))
    return fig


def plot_sweep(ds: xr.Dataset, *, ax=None, last: float = 0.5):
    """Plot the stationary r (mean over the last ``last`` fraction of time) against K.

    Seeds are grey dots, their mean blue; the N -> inf theory (if the sweep carries it) is drawn
    as a curve with K_c marked. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    start = int(ds.sizes["time"] * (1.0 - last))
    r = ds.order_parameter.isel(time=slice(start, None)).mean("time")
    ks = ds.coupling.values
    for s in ds.seed.values:
        ax.plot(ks, r.sel(seed=s), ".", color="0.6", ms=4)
    n = ds.attrs.get("params", {}).get("n", "?")
    ax.plot(ks, r.mean("seed"), "o", color="C0", label=f"simulation (N = {n})")
    if "order_parameter_theory" in ds:
        p = ds.attrs["params"]
        fine = np.linspace(ks.min(), ks.max(), 400)
        dist = p["frequencies"].split()[-1]
        ax.plot(fine, stationary_order_parameter(fine, dist, width=p["width"], lag=p["lag"]),
                "-", color="C3", label="N -> inf theory")
        ax.axvline(ds.attrs["critical_coupling"], ls=":", color="C3", label="K_c")
    ax.set(xlabel="coupling K", ylabel="stationary r", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return fig

