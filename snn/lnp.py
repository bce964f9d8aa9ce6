"""Lyapunov spectra of recurrent spiking networks and Lyapunov Noise Pruning (LNP).

**Lyapunov spectrum** (:func:`lyapunov_spectrum`): the standard QR (Benettin) method. Along a
trajectory ``h[t+1] = F(h[t], x[t])`` an orthonormal frame ``Q`` is pushed through the
Jacobians (``jax.linearize`` + ``vmap`` of JVPs, ``k`` columns) and re-orthonormalised,
``J_t Q_t = Q_{t+1} R_t``; the exponents are the time averages of ``log |diag R_t|``.
For an RSNN the spike step is replaced by its smooth counterpart
(:data:`~brainmodels.snn.surrogate.SMOOTH`), i.e. the Jacobians are those of the dynamics the
surrogate gradient sees (:func:`rsnn_lyapunov_spectrum`).

**Lyapunov Noise Pruning** (:func:`lyapunov_noise_prune`), task-agnostic, before training, on a
randomly initialised (heterogeneous) RSNN, after Chakraborty et al. (ICLR 2024), Algorithm 1.
No reference code is public; this is our reading, in four steps:

1. *Spectrum*: drive the smoothed network with white-noise currents; estimate its Lyapunov
   spectrum (largest exponent ``lambda_max`` before pruning).
2. *Neurons by noise sensitivity*: the energy ``sum_tau |Phi(t + tau, t) e_i|^2`` that a unit
   perturbation injected into neuron ``i`` leaves in the network over a horizon (products of the
   same Jacobians), averaged over start times. Neurons whose noise does not propagate (silent,
   fast-forgetting or weakly coupled ones) are pruned; slow neurons of a heterogeneous network
   carry perturbations longest and are kept preferentially.
3. *Synapses by spectral sparsification*: the noise-driven covariance ``C`` of the smoothed
   rates gives each synapse the importance ``|w_ij| (C_ii + C_jj - 2 sign(w_ij) C_ij)``
   (the noise-prune rule of Moore & Chaudhuri 2020, a weight times an effective-resistance-like
   term as in Spielman & Srivastava's sparsifier). Synapses are kept independently with
   probabilities ``pi_ij`` proportional to it (capped at 1, summing to the requested count) and
   reweighted by ``1 / pi_ij`` so the expected weight matrix is unchanged. Among several
   candidate sparsifications the one whose Lyapunov spectrum is closest to the dense one wins
   (the Lyapunov guidance).
4. *Stabilise*: if the sparse network's ``lambda_max`` exceeds ``lambda_target`` the recurrent
   weights are scaled down (bisection) until it does not.

References
----------
Chakraborty, Kang, Kumar & Mukhopadhyay (2024), Sparse spiking neural network: exploiting
heterogeneity in timescales for pruning recurrent SNN, ICLR, arXiv:2403.03409, Alg. 1.
Benettin, Galgani, Giorgilli & Strelcyn (1980), Meccanica 15, 9-30 (QR method).
Moore & Chaudhuri (2020), Using noise to probe recurrent neural network structure and prune
synapses, NeurIPS, eq. 4.
Spielman & Srivastava (2011), Graph sparsification by effective resistances, SIAM J. Comput. 40(6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, PRNGKeyArray
from brainmodels.snn.rsnn import RSNN, Mask, select_neurons
from brainmodels.snn.surrogate import DEFAULT_SLOPES, SMOOTH

__all__ = [
    "lyapunov_spectrum",
    "rsnn_lyapunov_spectrum",
    "smoothed_rsnn_step",
    "noise_drive",
    "neuron_noise_sensitivity",
    "synapse_importance",
    "LNPResult",
    "lyapunov_noise_prune",
    "activity_prune",
]


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


# ----------------------------------------------------------------------------- RSNN dynamics


def _rsnn_params(model: RSNN, smooth_slope: float | None) -> dict:
    slope = DEFAULT_SLOPES[model.surrogate] if smooth_slope is None else smooth_slope
    return {"beta": model.beta, "w_rec": model.effective_w_rec(), "theta": model.threshold,
            "slope": jnp.asarray(slope, jnp.float32), "zero_reset": model.reset == "zero",
            "surrogate": model.surrogate}


def smoothed_rsnn_step(u, drive_t, p):
    """One step of the smoothed RSNN: spikes replaced by the smooth surrogate sigmoid.

    ``s = f(U - theta)``; ``U' = beta U + s W_rec - theta s + I`` (subtraction reset) or
    ``U' = beta U (1 - s) + s W_rec + I`` (zero reset); ``I`` is the external drive.
    """
    s = SMOOTH[p["surrogate"]](u - p["theta"], p["slope"])
    if p["zero_reset"]:
        leak = p["beta"] * u * (1.0 - s)
    else:
        leak = p["beta"] * u - p["theta"] * s
    return leak + s @ p["w_rec"] + drive_t


def _bind_step(surrogate: str, zero_reset: bool) -> Callable:
    """The smoothed step with its string/bool options bound (one function object per
    combination, so the jitted scans compile once per shape)."""
    key = (surrogate, bool(zero_reset))
    if key not in _STEP_CACHE:
        def step(u, drive_t, arrays):
            return smoothed_rsnn_step(u, drive_t, {**arrays, "surrogate": surrogate,
                                                   "zero_reset": bool(zero_reset)})
        _STEP_CACHE[key] = step
    return _STEP_CACHE[key]


_STEP_CACHE: dict[tuple, Callable] = {}


def _split(p):
    arrays = {k: v for k, v in p.items() if k not in ("surrogate", "zero_reset")}
    return _bind_step(p["surrogate"], p["zero_reset"]), arrays


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
    ``-1 / tau_i`` (the leak), which the tests check.
    """
    drive = jnp.asarray(drive, jnp.float32)
    if drive.ndim != 2 or drive.shape[1] != model.n_hidden:
        raise ValueError(f"drive must have shape (time, {model.n_hidden}), got {drive.shape}")
    step, arrays = _split(_rsnn_params(model, smooth_slope))
    u0 = jnp.zeros((model.n_hidden,), jnp.float32)
    return lyapunov_spectrum(step, u0, drive, params=arrays, n_exponents=n_exponents,
                             dt=model.dt_ms, n_discard=n_discard)


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
    drive = jnp.asarray(drive, jnp.float32)
    if not 1 <= horizon < drive.shape[0]:
        raise ValueError(f"horizon must be in [1, {drive.shape[0]}), got {horizon!r}")
    step, arrays = _split(_rsnn_params(model, smooth_slope))
    us = _trajectory(step, jnp.zeros((model.n_hidden,), jnp.float32), drive, arrays)
    return _noise_sensitivity(step, us, drive, arrays, horizon=int(horizon),
                              n_starts=int(n_starts))


def _smoothed_rates(model: RSNN, drive, smooth_slope):
    p = _rsnn_params(model, smooth_slope)
    step, arrays = _split(p)
    us = _trajectory(step, jnp.zeros((model.n_hidden,), jnp.float32), drive, arrays)
    return SMOOTH[p["surrogate"]](us - p["theta"], p["slope"])


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


# ----------------------------------------------------------------------------- LNP


@dataclasses.dataclass
class LNPResult:
    """The pruned network and what pruning did to it.

    Attributes
    ----------
    model : RSNN
        The sparse network (kept neurons only; kept synapses in ``rec_mask``).
    kept_neurons : int array
        Indices of the kept neurons in the original network.
    n_neurons, n_synapses : (before, after) tuples
    lambda_max : (before, after) tuple
        Largest Lyapunov exponent (per ms) of the dense and the pruned smoothed network.
    spectrum_before, spectrum_after : arrays
        The leading exponents (per ms).
    rec_scale : float
        Factor applied to the recurrent weights by the stabilisation step (1.0 = none).
    """

    model: RSNN
    kept_neurons: np.ndarray
    n_neurons: tuple[int, int]
    n_synapses: tuple[int, int]
    lambda_max: tuple[float, float]
    spectrum_before: np.ndarray
    spectrum_after: np.ndarray
    rec_scale: float

    def summary(self) -> dict[str, Any]:
        """Plain numbers for a report table."""
        return {"neurons_before": self.n_neurons[0], "neurons_after": self.n_neurons[1],
                "synapses_before": self.n_synapses[0], "synapses_after": self.n_synapses[1],
                "lambda_max_before": self.lambda_max[0], "lambda_max_after": self.lambda_max[1],
                "rec_scale": self.rec_scale}


def _n_synapses(model: RSNN) -> int:
    return int(np.count_nonzero(np.asarray(model.effective_w_rec())))


def _with_recurrent(model: RSNN, w: np.ndarray, mask: np.ndarray) -> RSNN:
    new = select_neurons(model, np.arange(model.n_hidden))
    new.w_rec = nnx.Param(jnp.asarray(w, jnp.float32))
    new.rec_mask = Mask(jnp.asarray(mask, jnp.float32))
    return new


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def _sparsify_candidates(model, drive, importance, n_keep, ref, *, key, n_candidates,
                         n_exponents, reweight):
    """Draw candidate sparsifications; return the one whose spectrum is closest to ``ref``."""
    w = np.asarray(model.effective_w_rec(), np.float64)
    pi = _keep_probabilities(importance, n_keep)
    best = None
    for ck in jax.random.split(key, n_candidates):
        kept = np.asarray(jax.random.uniform(ck, pi.shape)) < pi
        w_new = np.where(kept, w / np.where(pi > 0, pi, 1.0) if reweight else w, 0.0)
        cand = _with_recurrent(model, w_new, kept)
        spec = np.asarray(rsnn_lyapunov_spectrum(cand, drive, n_exponents=n_exponents))
        dist = float(np.linalg.norm(spec - ref))
        if best is None or dist < best[0]:
            best = (dist, cand, spec)
    return best[1], best[2]


def _stabilise(model, drive, spec, lambda_target, n_exponents, n_bisect=8):
    """Scale the recurrent weights down until lambda_max <= lambda_target."""
    if lambda_target is None or spec[0] <= lambda_target:
        return model, spec, 1.0
    w, mask = np.asarray(model.w_rec[...]), np.asarray(model.rec_mask[...])
    lo, hi, best = 0.0, 1.0, None
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        cand = _with_recurrent(model, w * mid, mask)
        s = np.asarray(rsnn_lyapunov_spectrum(cand, drive, n_exponents=n_exponents))
        lo, hi = (mid, hi) if s[0] <= lambda_target else (lo, mid)
        if s[0] <= lambda_target and (best is None or mid >= best[2]):
            best = (cand, s, mid)
    if best is None:  # even tiny recurrence is unstable: drop it (leak alone is stable)
        cand = _with_recurrent(model, w * 0.0, mask)
        best = (cand, np.asarray(rsnn_lyapunov_spectrum(cand, drive, n_exponents=n_exponents)),
                0.0)
    return best


def lyapunov_noise_prune(
    model: RSNN,
    *,
    key: PRNGKeyArray,
    neuron_fraction: float = 0.5,
    synapse_fraction: float = 0.3,
    n_steps: int = 600,
    drive_mean: float = 0.5,
    drive_std: float = 0.5,
    n_exponents: int | None = 16,
    n_candidates: int = 4,
    lambda_target: float | None = 0.0,
    reweight: bool = True,
    horizon: int = 50,
) -> LNPResult:
    """Lyapunov Noise Pruning of a randomly initialised (heterogeneous) RSNN, task-agnostic.

    Parameters
    ----------
    model : RSNN
        The dense, untrained network (not modified).
    key : PRNG key
        Noise drive and synapse sampling (keyword-only).
    neuron_fraction : float in (0, 1]
        Fraction of hidden neurons kept (those with the largest noise sensitivity).
    synapse_fraction : float in (0, 1]
        Fraction of the kept neurons' existing recurrent synapses kept (in expectation).
    n_steps, drive_mean, drive_std : white-noise drive of the probes (threshold units)
    n_exponents : int or None
        Leading exponents compared between candidates (None: all).
    n_candidates : int
        Candidate sparsifications drawn; the one with the spectrum closest to the dense
        (neuron-pruned) network's wins.
    lambda_target : float or None
        Stabilise so that ``lambda_max <= lambda_target`` (per ms); None skips the step.
    reweight : bool
        Divide kept weights by their keep probability (unbiased sparsifier).
    horizon : int
        Steps over which a neuron's perturbation energy is summed.

    Returns
    -------
    LNPResult

    Raises
    ------
    ValueError
        Fractions outside (0, 1], ``n_steps`` too short for the transient and the horizon.

    References
    ----------
    Chakraborty et al. (2024), ICLR, arXiv:2403.03409, Alg. 1 (see the module docstring for
    how each step is read here).
    """
    neuron_fraction = _check_fraction("neuron_fraction", neuron_fraction)
    synapse_fraction = _check_fraction("synapse_fraction", synapse_fraction)
    if n_steps < max(2 * horizon, 200):
        raise ValueError(f"n_steps must be >= max(2 horizon, 200) = {max(2 * horizon, 200)}, "
                         f"got {n_steps!r}")
    k_drive, k_sample = jax.random.split(key)
    drive = noise_drive(n_steps, model.n_hidden, key=k_drive, mean=drive_mean, std=drive_std)
    k_exp = None if n_exponents is None else min(int(n_exponents), model.n_hidden)
    spec_before = np.asarray(rsnn_lyapunov_spectrum(model, drive, n_exponents=k_exp))

    sens = np.asarray(neuron_noise_sensitivity(model, drive, horizon=horizon))
    n_keep = max(1, int(round(neuron_fraction * model.n_hidden)))
    keep = np.sort(np.argsort(-sens, kind="stable")[:n_keep])
    small = select_neurons(model, keep)
    drive_small = drive[:, keep]
    k_small = None if k_exp is None else min(k_exp, small.n_hidden)
    ref = np.asarray(rsnn_lyapunov_spectrum(small, drive_small, n_exponents=k_small))

    rates = _smoothed_rates(small, drive_small, None)[100:]
    importance = np.asarray(synapse_importance(small.effective_w_rec(), jnp.cov(rates.T)))
    n_syn = max(1, int(round(synapse_fraction * _n_synapses(small))))
    sparse, spec = _sparsify_candidates(small, drive_small, importance, n_syn, ref,
                                        key=k_sample, n_candidates=int(n_candidates),
                                        n_exponents=k_small, reweight=reweight)
    sparse, spec, scale = _stabilise(sparse, drive_small, spec, lambda_target, k_small)
    return LNPResult(sparse, keep, (model.n_hidden, sparse.n_hidden),
                     (_n_synapses(model), _n_synapses(sparse)),
                     (float(spec_before[0]), float(spec[0])), spec_before, np.asarray(spec),
                     float(scale))


def activity_prune(model: RSNN, x: Float[ArrayLike, "sample time feature"], *,
                   n_neurons: int, n_synapses: int | None = None,
                   batch_size: int = 256) -> RSNN:
    """Activity-based pruning of a trained network (the baseline LNP is compared against).

    Keeps the ``n_neurons`` hidden neurons with the highest mean firing rate on ``x``, then
    the ``n_synapses`` largest-magnitude recurrent synapses among them (default: all).

    Raises
    ------
    ValueError
        If ``n_neurons`` is not in ``1..n_hidden`` or ``n_synapses`` is negative.
    """
    from brainmodels.snn.train import evaluate

    if not 1 <= n_neurons <= model.n_hidden:
        raise ValueError(f"n_neurons must be in [1, {model.n_hidden}], got {n_neurons!r}")
    x = np.asarray(x, np.float32)
    rates = evaluate(model, x, np.zeros(x.shape[0], np.int32), batch_size=batch_size)["rates"]
    keep = np.sort(np.argsort(-rates, kind="stable")[:n_neurons])
    small = select_neurons(model, keep)
    if n_synapses is None:
        return small
    if n_synapses < 0:
        raise ValueError(f"n_synapses must be >= 0, got {n_synapses!r}")
    w = np.asarray(small.effective_w_rec())
    order = np.argsort(-np.abs(w), axis=None, kind="stable")[:n_synapses]
    mask = np.zeros(w.size, bool)
    mask[order] = True
    mask = mask.reshape(w.shape) & (w != 0)
    return _with_recurrent(small, np.where(mask, w, 0.0), mask)
