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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import ArrayLike, Float, PRNGKeyArray
from brainmodels.snn.lyapunov import (
    _keep_probabilities,
    _smoothed_rates,
    lyapunov_spectrum,
    neuron_noise_sensitivity,
    noise_drive,
    rsnn_lyapunov_spectrum,
    smoothed_rsnn_step,
    synapse_importance,
)
from brainmodels.snn.rsnn import RSNN, Mask, select_neurons

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
    "spectral_radius",
    "with_spectral_radius",
]


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


def spectral_radius(model: RSNN) -> float:
    """Largest eigenvalue modulus of the effective recurrent weights (``w_rec * rec_mask``).

    Examples
    --------
    >>> from flax import nnx
    >>> net = RSNN(4, 16, 3, rngs=nnx.Rngs(0))
    >>> round(spectral_radius(with_spectral_radius(net, 0.9)), 4)
    0.9
    """
    w = np.asarray(model.effective_w_rec(), np.float64)
    return float(np.max(np.abs(np.linalg.eigvals(w)))) if w.size else 0.0


def with_spectral_radius(model: RSNN, rho: float) -> RSNN:
    """A copy of ``model`` whose recurrent weights are scaled to spectral radius ``rho``.

    The controls of an LNP comparison get LNP's radius: its stabilisation step scales the
    recurrent weights down (by 0.13 in the run of issue 21), and a comparison against
    unscaled controls measures that scale, not the pruning.

    Raises
    ------
    ValueError
        If ``rho`` is negative, or positive for a network without recurrence.
    """
    rho = float(rho)
    current = spectral_radius(model)
    if rho < 0 or (rho > 0 and current == 0):
        raise ValueError(f"rho must be >= 0 (and 0 for a network without recurrent "
                         f"weights), got {rho} for a radius of {current}")
    scale = 0.0 if current == 0 else rho / current
    return _with_recurrent(model, np.asarray(model.w_rec[...]) * scale,
                           np.asarray(model.rec_mask[...]))


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
