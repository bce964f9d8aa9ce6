"""Lyapunov spectra of recurrent spiking networks and the noise probes of their neurons.

**Lyapunov spectrum** (:func:`lyapunov_spectrum`): the standard QR (Benettin) method. Along a
trajectory ``h[t+1] = F(h[t], x[t])`` an orthonormal frame ``Q`` is pushed through the
Jacobians (``jax.linearize`` + ``vmap`` of JVPs, ``k`` columns) and re-orthonormalised,
``J_t Q_t = Q_{t+1} R_t``; the exponents are the time averages of ``log |diag R_t|``.
For an RSNN the spike step is replaced by its smooth counterpart
(:data:`~brainmodels.snn.surrogate.SMOOTH`), i.e. the Jacobians are those of the dynamics the
surrogate gradient sees (:func:`rsnn_lyapunov_spectrum`); a network with filtered synapses
(``RSNN(tau_syn_ms=...)``) has the state ``(U, R)`` of ``2 n`` numbers.

**Per-neuron exponents** (:func:`neuron_lyapunov_exponents`): the growth rate of a perturbation
started along one neuron's direction, ``lambda_i = < log |Phi(t + h, t) e_i| > / (h dt)``,
averaged over windows of ``h`` steps along the trajectory (``h = 1``: the norm of the
Jacobian's ``i``-th column). For a diagonal Jacobian they are the spectrum itself; for
Jacobians with orthogonal columns their sum equals the spectrum's (``log |det J|``); in general
their sum is not smaller (Hadamard's inequality). Two neurons' exponents combine into the
Lyapunov matrix (:func:`lyapunov_matrix`), which, with the noise-prune importance of a synapse
(:func:`synapse_importance`), sets the keep-probabilities of Lyapunov Noise Pruning
(:mod:`brainmodels.snn.lnp`).

References
----------
Benettin, Galgani, Giorgilli & Strelcyn (1980), Meccanica 15, 9-30 (QR method).
Moore & Chaudhuri (2020), Using noise to probe recurrent neural network structure and prune
synapses, NeurIPS, eq. 4.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import Array, ArrayLike, Float, PRNGKeyArray
from brainmodels.snn.rsnn import RSNN
from brainmodels.snn.surrogate import DEFAULT_SLOPES, SMOOTH

__all__ = ["lyapunov_spectrum", "rsnn_lyapunov_spectrum", "smoothed_rsnn_step", "noise_drive",
           "neuron_lyapunov_exponents", "rsnn_neuron_lyapunov_exponents", "lyapunov_matrix",
           "neuron_noise_sensitivity", "synapse_importance"]


# ----------------------------------------------------------------------------- QR method


@partial(jax.jit, static_argnames=("step", "k", "n_discard"))
def _lyapunov_scan(step, h0, inputs, params, q0, *, k, n_discard):
    def body(carry, xs):
        h, q, acc = carry
        t, x_t = xs
        h_new, jvp_fn = jax.linearize(lambda hh: step(hh, x_t, params), h)
        z = jax.vmap(jvp_fn, in_axes=1, out_axes=1)(q)
        q_new, r = jnp.linalg.qr(z)
        logs = jnp.log(jnp.abs(jnp.diagonal(r)))
        acc = acc + jnp.where(t >= n_discard, logs, 0.0)
        return (h_new, q_new, acc), None

    steps = jnp.arange(inputs.shape[0])
    (h, _, acc), _ = jax.lax.scan(body, (h0, q0, jnp.zeros((k,), h0.dtype)), (steps, inputs))
    return acc, h


def lyapunov_spectrum(
    step: Callable,
    h0: Float[ArrayLike, " state"],
    inputs: Float[ArrayLike, "time ..."],
    *,
    params: Any = None,
    n_exponents: int | None = None,
    dt: float = 1.0,
    n_discard: int = 0,
    key: PRNGKeyArray | None = None,
) -> Float[Array, " exponent"]:
    """Lyapunov exponents of ``h[t+1] = step(h[t], inputs[t], params)`` by the QR method.

    Parameters
    ----------
    step : callable ``(h, x_t, params) -> h``
        A pure, differentiable map (jitted once per ``step`` object and shape: pass a
        module-level function and put changing arrays into ``params``).
    h0 : array (state,)
        Initial state.
    inputs : array (time, ...)
        Drive, one slice per step (use ``jnp.zeros((T, 0))`` for an autonomous map).
    params : pytree, optional
        Passed to ``step`` (traced, so new values do not recompile).
    n_exponents : int, optional
        How many of the largest exponents (default: all).
    dt : float
        Step duration; exponents are per unit of ``dt`` (per ms for ``dt`` in ms).
    n_discard : int
        Initial steps (transient) run but not averaged.
    key : PRNG key, optional
        Random initial frame (default: the first ``k`` unit vectors).

    Returns
    -------
    array (n_exponents,)
        Exponents, largest first.

    Raises
    ------
    ValueError
        For ``n_exponents`` outside ``1..state``, ``dt <= 0``, or ``n_discard`` >= steps.

    References
    ----------
    Benettin et al. (1980), Meccanica 15, 9-30; Dieci & Van Vleck, QR method.
    """
    h0, inputs = jnp.asarray(h0), jnp.asarray(inputs)
    n = h0.shape[0]
    k = n if n_exponents is None else int(n_exponents)
    if h0.ndim != 1 or not 1 <= k <= n:
        raise ValueError(f"h0 must be a vector and 1 <= n_exponents <= {n}, got h0 shape "
                         f"{h0.shape} and n_exponents={n_exponents!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    if not 0 <= n_discard < inputs.shape[0]:
        raise ValueError(f"n_discard must be in [0, {inputs.shape[0]}), got {n_discard!r}")
    if key is None:
        q0 = jnp.eye(n, k, dtype=h0.dtype)
    else:
        q0 = jnp.linalg.qr(jax.random.normal(key, (n, k), h0.dtype))[0]
    acc, _ = _lyapunov_scan(step, h0, inputs, params, q0, k=k, n_discard=int(n_discard))
    exps = acc / ((inputs.shape[0] - n_discard) * dt)
    if not bool(jnp.all(jnp.isfinite(exps))):
        raise FloatingPointError("non-finite Lyapunov exponents (a Jacobian became singular or "
                                 "the trajectory diverged); check the step function and inputs")
    return -jnp.sort(-exps)


# ----------------------------------------------------------------------------- per-neuron exponents


@partial(jax.jit, static_argnames=("step", "n_dirs", "horizon", "n_discard"))
def _direction_scan(step, h0, inputs, params, *, n_dirs, horizon, n_discard):
    eye = jnp.eye(h0.shape[0], n_dirs, dtype=h0.dtype)

    def body(carry, xs):
        h, phi, acc = carry
        t, x_t = xs
        h_new, jvp_fn = jax.linearize(lambda hh: step(hh, x_t, params), h)
        phi = jax.vmap(jvp_fn, in_axes=1, out_axes=1)(phi)
        window_end = (t >= n_discard) & ((t + 1 - n_discard) % horizon == 0)
        logs = jnp.log(jnp.linalg.norm(phi, axis=0))
        acc = acc + jnp.where(window_end, logs, 0.0)
        phi = jnp.where(window_end | (t < n_discard), eye, phi)
        return (h_new, phi, acc), None

    steps = jnp.arange(inputs.shape[0])
    (_, _, acc), _ = jax.lax.scan(body, (h0, eye, jnp.zeros((n_dirs,), h0.dtype)),
                                  (steps, inputs))
    return acc


def neuron_lyapunov_exponents(
    step: Callable,
    h0: Float[ArrayLike, " state"],
    inputs: Float[ArrayLike, "time ..."],
    *,
    params: Any = None,
    n_neurons: int | None = None,
    horizon: int = 1,
    dt: float = 1.0,
    n_discard: int = 0,
) -> Float[Array, " neuron"]:
    """One Lyapunov exponent per neuron: the mean growth rate of a perturbation along ``e_i``.

    ``lambda_i = mean_w log |Phi_w e_i| / (horizon dt)`` where ``Phi_w`` is the product of the
    ``horizon`` Jacobians of ``step`` in window ``w``; windows tile the trajectory after
    ``n_discard`` steps. For a diagonal Jacobian ``diag(a)`` this is ``log |a_i| / dt`` for any
    horizon; for Jacobians with orthogonal columns and ``horizon = 1`` the exponents sum to the
    spectrum's sum (``mean log |det J|``), and in general to no less (Hadamard's inequality).

    Parameters
    ----------
    step, h0, inputs, params, dt, n_discard
        As in :func:`lyapunov_spectrum`.
    n_neurons : int, optional
        Directions ``e_0 .. e_{n_neurons - 1}`` (default: the whole state; for an RSNN with
        filtered synapses the first ``n`` state numbers are the membrane potentials).
    horizon : int
        Steps per window (1: the local, one-step expansion of the Jacobian's column ``i``).

    Returns
    -------
    array (n_neurons,)
        Exponents in neuron order (not sorted), per unit of ``dt``.

    Raises
    ------
    ValueError
        For ``n_neurons`` outside ``1..state``, ``horizon < 1``, ``dt <= 0``, or fewer than one
        window after ``n_discard``.
    FloatingPointError
        If an exponent is not finite (a Jacobian column vanished or the trajectory diverged).

    References
    ----------
    Chakraborty et al. (2024), ICLR, arXiv:2403.03409, sec. 3 (per-neuron exponents of the
    Lyapunov matrix; the finite-time, per-direction estimate here is our reading).
    """
    h0, inputs = jnp.asarray(h0), jnp.asarray(inputs)
    n = h0.shape[0]
    k = n if n_neurons is None else int(n_neurons)
    if h0.ndim != 1 or not 1 <= k <= n:
        raise ValueError(f"h0 must be a vector and 1 <= n_neurons <= {n}, got h0 shape "
                         f"{h0.shape} and n_neurons={n_neurons!r}")
    if not dt > 0 or horizon < 1:
        raise ValueError(f"need dt > 0 and horizon >= 1, got dt={dt!r}, horizon={horizon!r}")
    n_windows = (inputs.shape[0] - n_discard) // horizon
    if n_discard < 0 or n_windows < 1:
        raise ValueError(f"need 0 <= n_discard and at least one window of {horizon} steps after "
                         f"it; got n_discard={n_discard!r} for {inputs.shape[0]} steps")
    acc = _direction_scan(step, h0, inputs, params, n_dirs=k, horizon=int(horizon),
                          n_discard=int(n_discard))
    exps = acc / (n_windows * horizon * dt)
    if not bool(jnp.all(jnp.isfinite(exps))):
        raise FloatingPointError("non-finite per-neuron exponents (a Jacobian column vanished "
                                 "or the trajectory diverged); check the step and inputs")
    return exps


def lyapunov_matrix(exponents: Float[ArrayLike, " neuron"]) -> Float[Array, "neuron neuron"]:
    """``L_ij``: the harmonic mean of the two neurons' exponent magnitudes.

    ``L_ij = 2 |l_i| |l_j| / (|l_i| + |l_j|)`` (0 where both vanish). Between ``min`` and
    ``2 min`` of the two magnitudes, so the neuron with the smaller rate (the slower one, for
    contracting neurons) dominates. Magnitudes, because the harmonic mean of two exponents of
    opposite sign is unbounded; for two negative exponents ``L_ij`` is minus their harmonic mean.

    References
    ----------
    Chakraborty et al. (2024), ICLR, arXiv:2403.03409, sec. 3 (Lyapunov matrix from the harmonic
    mean of the exponents of connected neurons).
    """
    a = jnp.abs(jnp.asarray(exponents))
    total = a[:, None] + a[None, :]
    return jnp.where(total > 0, 2.0 * a[:, None] * a[None, :] / jnp.where(total > 0, total, 1.0),
                     0.0)


# ----------------------------------------------------------------------------- RSNN dynamics


_STATIC = ("surrogate", "zero_reset", "synaptic")


def _rsnn_params(model: RSNN, smooth_slope: float | None) -> dict:
    slope = DEFAULT_SLOPES[model.surrogate] if smooth_slope is None else smooth_slope
    p = {"beta": model.beta, "w_rec": model.effective_w_rec(), "theta": model.threshold,
         "slope": jnp.asarray(slope, jnp.float32), "zero_reset": model.reset == "zero",
         "surrogate": model.surrogate, "synaptic": model.tau_syn_ms is not None}
    if p["synaptic"]:
        p["alpha"] = model.syn_alpha
    return p


def _state_size(model: RSNN) -> int:
    """Numbers in the smoothed state: ``U`` (n), and ``R`` (n more) with filtered synapses."""
    return model.n_hidden * (1 if model.tau_syn_ms is None else 2)


def smoothed_rsnn_step(u, drive_t, p):
    """One step of the smoothed RSNN: spikes replaced by the smooth surrogate sigmoid.

    ``s = f(U - theta)``; ``U' = beta U + s W_rec - theta s + I`` (subtraction reset) or
    ``U' = beta U (1 - s) + s W_rec + I`` (zero reset); ``I`` is the external drive.

    With filtered synapses (``p["synaptic"]``) the state is ``(U, R)`` concatenated and
    ``R' = alpha R + (1 - alpha) s W_rec`` replaces ``s W_rec`` (see :class:`RSNN`).
    """
    n = p["beta"].shape[0]
    v = u[:n] if p.get("synaptic") else u
    s = SMOOTH[p["surrogate"]](v - p["theta"], p["slope"])
    if p["zero_reset"]:
        leak = p["beta"] * v * (1.0 - s)
    else:
        leak = p["beta"] * v - p["theta"] * s
    if not p.get("synaptic"):
        return leak + s @ p["w_rec"] + drive_t
    rec = p["alpha"] * u[n:] + (1.0 - p["alpha"]) * (s @ p["w_rec"])
    return jnp.concatenate([leak + rec + drive_t, rec])


def _bind_step(surrogate: str, zero_reset: bool, synaptic: bool = False) -> Callable:
    """The smoothed step with its string/bool options bound (one function object per
    combination, so the jitted scans compile once per shape)."""
    key = (surrogate, bool(zero_reset), bool(synaptic))
    if key not in _STEP_CACHE:
        static = dict(zip(_STATIC, key, strict=True))

        def step(u, drive_t, arrays):
            return smoothed_rsnn_step(u, drive_t, {**arrays, **static})
        _STEP_CACHE[key] = step
    return _STEP_CACHE[key]


_STEP_CACHE: dict[tuple, Callable] = {}


def _split(p):
    arrays = {k: v for k, v in p.items() if k not in _STATIC}
    return _bind_step(p["surrogate"], p["zero_reset"], p["synaptic"]), arrays


def noise_drive(n_steps: int, n_neurons: int, *, key: PRNGKeyArray, mean: float = 0.5,
                std: float = 0.5) -> Float[Array, "time neuron"]:
    """Task-agnostic white-noise input currents ``mean + std N(0, 1)`` (threshold units)."""
    if n_steps < 1 or n_neurons < 1 or std < 0:
        raise ValueError(f"need n_steps >= 1, n_neurons >= 1, std >= 0; got {n_steps}, "
                         f"{n_neurons}, {std}")
    return mean + std * jax.random.normal(key, (int(n_steps), int(n_neurons)))


def rsnn_lyapunov_spectrum(model: RSNN, drive: Float[ArrayLike, "time neuron"], *,
                           n_exponents: int | None = None, n_discard: int = 100,
                           smooth_slope: float | None = None) -> Float[Array, " exponent"]:
    """Lyapunov spectrum (per ms) of the model's smoothed hidden dynamics under ``drive``.

    ``drive`` is the input current to each hidden neuron (e.g. :func:`noise_drive`, or
    ``x @ W_in + b`` of a task input). With no recurrence the exponents are exactly
    ``-1 / tau_i`` (the leak), and with filtered synapses ``-1 / tau_syn_i`` besides (the
    state is ``2 n`` numbers then), which the tests check.
    """
    drive = _check_drive(model, drive)
    step, arrays = _split(_rsnn_params(model, smooth_slope))
    u0 = jnp.zeros((_state_size(model),), jnp.float32)
    return lyapunov_spectrum(step, u0, drive, params=arrays, n_exponents=n_exponents,
                             dt=model.dt_ms, n_discard=n_discard)


def rsnn_neuron_lyapunov_exponents(model: RSNN, drive: Float[ArrayLike, "time neuron"], *,
                                   horizon: int = 1, n_discard: int = 100,
                                   smooth_slope: float | None = None) -> Float[Array, " neuron"]:
    """Per-neuron exponents (per ms) of the model's smoothed dynamics under ``drive``.

    :func:`neuron_lyapunov_exponents` along the membrane-potential directions (with filtered
    synapses the perturbation of ``U_i`` also spreads into ``R``, which the norm counts). With
    no recurrence they are ``-1 / tau_i``, like the spectrum.
    """
    drive = _check_drive(model, drive)
    step, arrays = _split(_rsnn_params(model, smooth_slope))
    u0 = jnp.zeros((_state_size(model),), jnp.float32)
    return neuron_lyapunov_exponents(step, u0, drive, params=arrays, n_neurons=model.n_hidden,
                                     horizon=horizon, dt=model.dt_ms, n_discard=n_discard)


def _check_drive(model: RSNN, drive) -> Array:
    drive = jnp.asarray(drive, jnp.float32)
    if drive.ndim != 2 or drive.shape[1] != model.n_hidden:
        raise ValueError(f"drive must have shape (time, {model.n_hidden}), got {drive.shape}")
    return drive


# ----------------------------------------------------------------------------- noise probes


@partial(jax.jit, static_argnames=("step",))
def _trajectory(step, u0, drive, arrays):
    def body(u, d_t):
        u_new = step(u, d_t, arrays)
        return u_new, u

    _, us = jax.lax.scan(body, u0, drive)
    return us


@partial(jax.jit, static_argnames=("step", "horizon", "n_starts"))
def _noise_sensitivity(step, us, drive, arrays, *, horizon, n_starts):
    n = us.shape[1]
    starts = jnp.linspace(0, us.shape[0] - horizon, n_starts).astype(jnp.int32)

    def from_start(t0):
        def body(phi, tau):
            u = jax.lax.dynamic_index_in_dim(us, t0 + tau, keepdims=False)
            d = jax.lax.dynamic_index_in_dim(drive, t0 + tau, keepdims=False)
            jac = jax.jacfwd(step)(u, d, arrays)
            phi = jac @ phi
            return phi, jnp.sum(phi**2, axis=0)  # energy left by a unit kick to each neuron

        _, energy = jax.lax.scan(body, jnp.eye(n, dtype=us.dtype), jnp.arange(horizon))
        return energy.sum(axis=0)

    return jax.vmap(from_start)(starts).mean(axis=0)


def neuron_noise_sensitivity(model: RSNN, drive: Float[ArrayLike, "time neuron"], *,
                             horizon: int = 50, n_starts: int = 8,
                             smooth_slope: float | None = None) -> Float[Array, " neuron"]:
    """Energy ``sum_{tau=1..horizon} |Phi(t+tau, t) e_i|^2`` of a unit perturbation of neuron i.

    ``Phi`` is the product of the smoothed dynamics' Jacobians along the noise-driven
    trajectory; the result is averaged over ``n_starts`` start times. A neuron whose
    perturbations vanish at once scores ``~ sum beta_i^(2 tau)`` (its own leak) and less if it is
    silent (zero surrogate slope); a neuron that feeds the network scores more.
    """
    drive = _check_drive(model, drive)
    if not 1 <= horizon < drive.shape[0]:
        raise ValueError(f"horizon must be in [1, {drive.shape[0]}), got {horizon!r}")
    step, arrays = _split(_rsnn_params(model, smooth_slope))
    us = _trajectory(step, jnp.zeros((_state_size(model),), jnp.float32), drive, arrays)
    return _noise_sensitivity(step, us, drive, arrays, horizon=int(horizon),
                              n_starts=int(n_starts))[:model.n_hidden]


def _smoothed_rates(model: RSNN, drive, smooth_slope):
    p = _rsnn_params(model, smooth_slope)
    step, arrays = _split(p)
    us = _trajectory(step, jnp.zeros((_state_size(model),), jnp.float32), drive, arrays)
    return SMOOTH[p["surrogate"]](us[:, :model.n_hidden] - p["theta"], p["slope"])


def synapse_importance(w: Float[ArrayLike, "neuron neuron"],
                       cov: Float[ArrayLike, "neuron neuron"]) -> Float[Array, "neuron neuron"]:
    """Noise-prune importance ``|w_ij| (C_ii + C_jj - 2 sign(w_ij) C_ij)`` (>= 0 for PSD C).

    References
    ----------
    Moore & Chaudhuri (2020), NeurIPS, eq. 4.
    """
    w, cov = jnp.asarray(w), jnp.asarray(cov)
    if w.shape != cov.shape or w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w and cov must be square with equal shapes, got {w.shape}, {cov.shape}")
    d = jnp.diagonal(cov)
    return jnp.maximum(jnp.abs(w) * (d[:, None] + d[None, :] - 2 * jnp.sign(w) * cov), 0.0)


def _keep_probabilities(importance: np.ndarray, n_keep: int) -> np.ndarray:
    """``pi = min(1, c * importance)`` with ``sum(pi) = n_keep`` (c by bisection)."""
    imp = np.asarray(importance, np.float64)
    if n_keep >= np.count_nonzero(imp):
        return (imp > 0).astype(np.float64)
    lo, hi = 0.0, 1.0 / imp[imp > 0].min()
    for _ in range(100):
        c = 0.5 * (lo + hi)
        lo, hi = (c, hi) if np.minimum(1.0, c * imp).sum() < n_keep else (lo, c)
    return np.minimum(1.0, hi * imp)
