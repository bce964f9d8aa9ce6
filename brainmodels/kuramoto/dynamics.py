"""Simulation of one Kuramoto network (xarray out), its synchrony measures and initial states."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels._memory import check_memory
from brainmodels._types import ArrayLike, Float, PRNGKeyArray
from brainmodels.data import provenance, to_numpy
from brainmodels.kuramoto import engine as _engine
from brainmodels.kuramoto.params import (
    _SCALARS,
    KuramotoParams,
    _check_finite,
    _check_run,
    _float_dtype,
    _prepare,
)
from brainmodels.kuramoto.theory import as_scipy

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
    >>> from brainmodels.kuramoto import KuramotoParams, initial_phases, natural_frequencies
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
