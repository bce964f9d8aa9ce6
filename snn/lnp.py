"""Lyapunov Noise Pruning (LNP): a task-agnostic sparse HRSNN from a random dense one.

After Chakraborty, Kang, Kumar & Mukhopadhyay (ICLR 2024), Algorithm 1 and sec. 3. No reference
code is public; the steps below follow the paper's order, and where the paper leaves a choice
open the docstring of the step says what is done here.

1. *Synapses: Lyapunov-weighted noise pruning* (:func:`lnp_keep_probabilities`,
   :func:`noise_prune`). Drive the smoothed network (:func:`smoothed_rsnn_step`) with white
   noise; estimate one Lyapunov exponent per neuron (:func:`rsnn_neuron_lyapunov_exponents`)
   and combine two neurons' exponents into the Lyapunov matrix ``L_ij`` (their harmonic mean,
   :func:`lyapunov_matrix`). The keep-probability of synapse ``i -> j`` is
   ``pi_ij = min(1, c L_ij |w_ij| (C_ii + C_jj - 2 sign(w_ij) C_ij))`` with ``C`` the
   noise-driven covariance of the smoothed rates (the noise-prune rule of Moore & Chaudhuri,
   :func:`synapse_importance`) and ``c`` set so that ``sum pi`` is the requested synapse count.
   Each synapse is kept independently with its probability and reweighted by ``1 / pi_ij``,
   which leaves the expected weight matrix unchanged.
2. *Neurons: betweenness centrality* (:func:`betweenness_prune`; with step 3 in
   :mod:`brainmodels.snn.graph`) of the sparsified, directed graph, with ``1 / |w_ij|`` as the
   length of an edge (a strong synapse is a short path); the most central neurons are kept.
   ``w_ij`` is the synapse's weight before the ``1 / pi_ij`` reweighting (our choice): that
   factor makes the sampled matrix unbiased, it is not a strength, and as a path length it
   would make the least likely (least important) kept synapses the shortest paths and their
   sparsely connected neurons the most central (measured on a 96-neuron network: centrality
   then anti-correlates with degree, r = -0.5).
3. *Eigenvector delocalisation* (:func:`delocalize_eigenvectors`): a few edges are added back
   so that the leading eigenvectors of the pruned weights spread over more neurons (lower
   inverse participation ratio).
4. *Timescales* (:func:`search_timescales`, optional): the gamma distributions (mean, CV) of
   the membrane and synaptic time constants are chosen task-agnostically, by the largest
   Lyapunov exponent's distance to ``lambda_target`` (the edge of chaos at 0). The paper uses
   Bayesian optimisation; a small grid is searched here.
5. *Stabilise* (ours, not a step of the paper): if ``lambda_max`` still exceeds
   ``lambda_target`` the recurrent weights are scaled down (bisection) until it does not.

References
----------
Chakraborty, Kang, Kumar & Mukhopadhyay (2024), Sparse spiking neural network: exploiting
heterogeneity in timescales for pruning recurrent SNN, ICLR, arXiv:2403.03409, Alg. 1, sec. 3.
Moore & Chaudhuri (2020), Using noise to probe recurrent neural network structure and prune
synapses, NeurIPS, eq. 4.
Spielman & Srivastava (2011), Graph sparsification by effective resistances, SIAM J. Comput. 40(6).
Brandes (2001), A faster algorithm for betweenness centrality, J. Math. Sociol. 25(2).
Benettin, Galgani, Giorgilli & Strelcyn (1980), Meccanica 15, 9-30 (QR method).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Bool, Float, PRNGKeyArray
from brainmodels.snn.graph import (
    Delocalization,
    betweenness_centrality,
    betweenness_prune,
    delocalize_eigenvectors,
    inverse_participation_ratio,
)
from brainmodels.snn.lyapunov import (
    _keep_probabilities,
    _smoothed_rates,
    _state_size,
    lyapunov_matrix,
    lyapunov_spectrum,
    neuron_lyapunov_exponents,
    neuron_noise_sensitivity,
    noise_drive,
    rsnn_lyapunov_spectrum,
    rsnn_neuron_lyapunov_exponents,
    smoothed_rsnn_step,
    synapse_importance,
)
from brainmodels.snn.rsnn import RSNN, Mask, TimeConstant, draw_time_constants, select_neurons

__all__ = [
    "lyapunov_spectrum",
    "rsnn_lyapunov_spectrum",
    "smoothed_rsnn_step",
    "noise_drive",
    "neuron_noise_sensitivity",
    "neuron_lyapunov_exponents",
    "rsnn_neuron_lyapunov_exponents",
    "lyapunov_matrix",
    "synapse_importance",
    "lnp_keep_probabilities",
    "noise_prune",
    "betweenness_centrality",
    "betweenness_prune",
    "inverse_participation_ratio",
    "Delocalization",
    "delocalize_eigenvectors",
    "TimescaleGrid",
    "TimescaleSearch",
    "with_timescales",
    "search_timescales",
    "LNPResult",
    "lyapunov_noise_prune",
    "activity_prune",
    "spectral_radius",
    "with_spectral_radius",
]


# ----------------------------------------------------------------------------- 1. synapses


def lnp_keep_probabilities(w: Float[ArrayLike, "pre post"], cov: Float[ArrayLike, "pre post"],
                           exponents: ArrayLike, n_keep: int, *,
                           lyapunov_weighting: bool = True) -> np.ndarray:
    """Keep-probabilities ``pi = min(1, c L * importance)`` summing to ``n_keep``.

    ``importance`` is :func:`synapse_importance` of ``w`` and ``cov``; ``L`` is
    :func:`lyapunov_matrix` of the per-neuron ``exponents``, shape (pre,) (left out with
    ``lyapunov_weighting=False``: plain noise pruning). ``c`` is found by bisection, so the sum
    matches ``n_keep`` to ~1e-9 relative unless fewer than ``n_keep`` synapses have a positive
    score (then those are all kept with probability 1).

    Raises
    ------
    ValueError
        If ``n_keep`` is negative or the shapes disagree.
    """
    w = np.asarray(w, np.float64)
    exponents = np.asarray(exponents, np.float64)
    if n_keep < 0 or exponents.shape != (w.shape[0],):
        raise ValueError(f"need n_keep >= 0 and one exponent per neuron ({w.shape[0]}), got "
                         f"n_keep={n_keep!r} and exponents of shape {exponents.shape}")
    score = np.asarray(synapse_importance(w, np.asarray(cov, np.float64)), np.float64)
    if lyapunov_weighting:
        score = score * np.asarray(lyapunov_matrix(exponents), np.float64)
    if not np.any(score > 0) or n_keep == 0:
        return np.zeros_like(score)
    return _keep_probabilities(score, int(n_keep))


def noise_prune(w: Float[ArrayLike, "pre post"], pi: Float[ArrayLike, "pre post"], *,
                key: PRNGKeyArray, reweight: bool = True
                ) -> tuple[Float[Array, "pre post"], Bool[Array, "pre post"]]:
    """Keep each synapse with probability ``pi_ij``; divide the kept weights by ``pi_ij``.

    With ``reweight`` the sparse matrix is an unbiased estimate of ``w``: ``E[w_new] = w``
    wherever ``pi > 0``. Pure JAX (``vmap`` over keys draws many sparsifications at once).

    Returns
    -------
    (w_new, kept) : arrays (pre, post)
    """
    w, pi = jnp.asarray(w), jnp.asarray(pi, jnp.asarray(w).dtype)
    kept = (jax.random.uniform(key, pi.shape, pi.dtype) < pi) & (w != 0)
    scaled = w / jnp.where(pi > 0, pi, 1.0) if reweight else w
    return jnp.where(kept, scaled, 0.0), kept


# ----------------------------------------------------------------------------- 4. timescales


@dataclasses.dataclass(frozen=True)
class TimescaleGrid:
    """Candidate gamma distributions of the time constants: means (ms) and CVs.

    ``tau_syn_ms`` may hold ``None``: instantaneous synapses (no filter). A CV of 0 is a constant
    time constant.
    """

    tau_mem_ms: tuple[float, ...] = (10.0, 20.0, 40.0)
    tau_mem_cv: tuple[float, ...] = (0.25, 0.5, 1.0)
    tau_syn_ms: tuple[float | None, ...] = (None, 2.0, 5.0)
    tau_syn_cv: tuple[float, ...] = (0.5,)

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination, in grid order (``tau_syn_cv`` is None without synapses)."""
        out = []
        for mem, mem_cv, syn in itertools.product(self.tau_mem_ms, self.tau_mem_cv,
                                                  self.tau_syn_ms):
            for syn_cv in (None,) if syn is None else self.tau_syn_cv:
                out.append({"tau_mem_ms": float(mem), "tau_mem_cv": float(mem_cv),
                            "tau_syn_ms": None if syn is None else float(syn),
                            "tau_syn_cv": None if syn_cv is None else float(syn_cv)})
        return out


def _draw(n, key, mean, cv, dt_ms):
    dist = "gamma" if cv > 0 else "constant"
    return draw_time_constants(n, key=key, distribution=dist, mean_ms=mean, cv=cv, dt_ms=dt_ms)


def with_timescales(model: RSNN, *, key: PRNGKeyArray, tau_mem_ms: float, tau_mem_cv: float,
                    tau_syn_ms: float | None = None, tau_syn_cv: float | None = None) -> RSNN:
    """A copy of ``model`` whose time constants are drawn anew from gamma distributions.

    ``tau_syn_ms=None`` makes the synapses instantaneous. Same ``key``, same draws: candidates
    compared with one key differ in their distributions, not in their luck.
    """
    k_mem, k_syn = jax.random.split(key)
    new = select_neurons(model, np.arange(model.n_hidden))
    new.tau_mem_ms = TimeConstant(_draw(model.n_hidden, k_mem, tau_mem_ms, tau_mem_cv,
                                        model.dt_ms))
    new.tau_syn_ms = None if tau_syn_ms is None else TimeConstant(
        _draw(model.n_hidden, k_syn, tau_syn_ms, tau_syn_cv or 0.0, model.dt_ms))
    return new


class TimescaleSearch(NamedTuple):
    """What :func:`search_timescales` found: the best grid point, its network, every score."""

    best: dict[str, Any]
    model: RSNN
    table: list[dict[str, Any]]


def search_timescales(model: RSNN, *, key: PRNGKeyArray, grid: TimescaleGrid | None = None,
                      drive: Float[ArrayLike, "time neuron"] | None = None, n_steps: int = 600,
                      drive_mean: float = 0.5, drive_std: float = 0.5,
                      n_exponents: int | None = 16, lambda_target: float = 0.0
                      ) -> TimescaleSearch:
    """Choose the time-constant distributions of ``model`` by its Lyapunov spectrum.

    Each grid point redraws the membrane (and synaptic) time constants with one key
    (:func:`with_timescales`); the smoothed network's leading exponents under one white-noise
    drive give the score ``|lambda_max - lambda_target|`` (task-agnostic: closest to the edge of
    chaos for the default target 0). The lowest score wins; ties go to the earlier grid point.

    The paper tunes these distributions by Bayesian optimisation; an exhaustive small grid
    finds the same optimum on the grid and is deterministic.

    Returns
    -------
    TimescaleSearch
        ``best`` (the grid point, with ``lambda_max`` and ``score``), its network, and the
        table of every grid point.
    """
    grid = TimescaleGrid() if grid is None else grid
    k_drive, k_tau = jax.random.split(key)
    if drive is None:
        drive = noise_drive(n_steps, model.n_hidden, key=k_drive, mean=drive_mean,
                            std=drive_std)
    table, best = [], None
    for cand in grid.candidates():
        net = with_timescales(model, key=k_tau, **cand)
        k = None if n_exponents is None else min(int(n_exponents), _state_size(net))
        lam = float(rsnn_lyapunov_spectrum(net, drive, n_exponents=k)[0])
        row = {**cand, "lambda_max": lam, "score": abs(lam - float(lambda_target))}
        table.append(row)
        if best is None or row["score"] < best[0]["score"]:
            best = (row, net)
    return TimescaleSearch(best[0], best[1], table)


# ----------------------------------------------------------------------------- 5. stabilise


def _n_synapses(model: RSNN) -> int:
    return int(np.count_nonzero(np.asarray(model.effective_w_rec())))


def _with_recurrent(model: RSNN, w: np.ndarray, mask: np.ndarray) -> RSNN:
    new = select_neurons(model, np.arange(model.n_hidden))
    new.w_rec = nnx.Param(jnp.asarray(w, jnp.float32))
    new.rec_mask = Mask(jnp.asarray(mask, jnp.float32))
    return new


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


# ----------------------------------------------------------------------------- LNP


@dataclasses.dataclass
class LNPResult:
    """The pruned network and a record of each step.

    Attributes
    ----------
    model : RSNN
        The sparse network (kept neurons only; kept synapses in ``rec_mask``).
    kept_neurons : int array
        Indices of the kept neurons in the original network.
    n_neurons : (before, after)
    n_synapses : (before, after)
        Recurrent synapses of the dense and of the final network.
    n_synapses_sparsified : int
        Synapses after step 1 (all neurons), ``n_synapses_target`` their expected number.
    n_synapses_pruned : int
        Synapses among the kept neurons after step 2, before edges are added back.
    edges_added : array (k, 3)
        ``(pre, post, weight)`` added by step 3, indices into the kept neurons, weights before
        the stabilisation scale.
    ipr : (before, after)
        Mean inverse participation ratio of the leading eigenvectors around step 3.
    lambda_max : (before, after)
        Largest Lyapunov exponent (per ms) of the dense and the final smoothed network.
    spectrum_before, spectrum_after : arrays
        The leading exponents (per ms).
    neuron_exponents, centrality : arrays (dense neurons,)
        Per-neuron exponents (step 1) and betweenness centralities (step 2).
    timescales : dict or None
        The chosen grid point of step 4 (None: skipped), ``timescale_table`` every grid point.
    rec_scale : float
        Factor applied to the recurrent weights by the stabilisation step (1.0 = none).
    """

    model: RSNN
    kept_neurons: np.ndarray
    n_neurons: tuple[int, int]
    n_synapses: tuple[int, int]
    n_synapses_target: int
    n_synapses_sparsified: int
    n_synapses_pruned: int
    edges_added: np.ndarray
    ipr: tuple[float, float]
    lambda_max: tuple[float, float]
    spectrum_before: np.ndarray
    spectrum_after: np.ndarray
    neuron_exponents: np.ndarray
    centrality: np.ndarray
    timescales: dict[str, Any] | None
    timescale_table: list[dict[str, Any]]
    rec_scale: float

    def summary(self) -> dict[str, Any]:
        """Plain numbers for a report table (JSON-ready)."""
        tau = np.asarray(self.model.tau_mem_ms[...], np.float64)
        out = {"neurons_before": self.n_neurons[0], "neurons_after": self.n_neurons[1],
               "synapses_before": self.n_synapses[0],
               "synapses_target": self.n_synapses_target,
               "synapses_sparsified": self.n_synapses_sparsified,
               "synapses_neuron_pruned": self.n_synapses_pruned,
               "edges_added": int(len(self.edges_added)),
               "synapses_after": self.n_synapses[1],
               "ipr_before": self.ipr[0], "ipr_after": self.ipr[1],
               "lambda_max_before": self.lambda_max[0], "lambda_max_after": self.lambda_max[1],
               "rec_scale": self.rec_scale,
               "tau_mem_ms_mean": float(tau.mean()), "tau_mem_cv": float(tau.std() / tau.mean())}
        if self.timescales is not None:
            out.update({f"chosen_{k}": v for k, v in self.timescales.items()})
        return out


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def _neuron_count(model: RSNN, neuron_fraction: float, n_neurons: int | None) -> int:
    if n_neurons is None:
        frac = _check_fraction("neuron_fraction", neuron_fraction)
        return max(1, int(round(frac * model.n_hidden)))
    if not 1 <= n_neurons <= model.n_hidden:
        raise ValueError(f"n_neurons must be in [1, {model.n_hidden}], got {n_neurons!r}")
    return int(n_neurons)


def _sparsify(model, drive, *, key, synapse_fraction, lyapunov_weighting, exponent_horizon,
              reweight):
    """Step 1: per-neuron exponents, keep-probabilities, one noise-pruned weight matrix."""
    lam = np.asarray(rsnn_neuron_lyapunov_exponents(model, drive, horizon=exponent_horizon))
    rates = np.asarray(_smoothed_rates(model, drive, None)[100:], np.float64)
    w = np.asarray(model.effective_w_rec(), np.float64)
    target = int(round(synapse_fraction * np.count_nonzero(w)))
    pi = lnp_keep_probabilities(w, np.cov(rates.T), lam, target,
                                lyapunov_weighting=lyapunov_weighting)
    w_sparse, _ = noise_prune(w, pi, key=key, reweight=reweight)
    return np.asarray(w_sparse, np.float64), lam, target


def lyapunov_noise_prune(
    model: RSNN,
    *,
    key: PRNGKeyArray,
    neuron_fraction: float = 0.5,
    n_neurons: int | None = None,
    synapse_fraction: float = 0.3,
    n_steps: int = 600,
    drive_mean: float = 0.5,
    drive_std: float = 0.5,
    n_exponents: int | None = 16,
    lambda_target: float | None = 0.0,
    reweight: bool = True,
    lyapunov_weighting: bool = True,
    exponent_horizon: int = 1,
    betweenness_samples: int | None = None,
    delocalize_fraction: float = 0.005,
    n_eigenvectors: int = 4,
    timescales: TimescaleGrid | None = None,
) -> LNPResult:
    """Lyapunov Noise Pruning of a randomly initialised (heterogeneous) RSNN, task-agnostic.

    Synapses first (Lyapunov-weighted noise pruning of the whole network), then neurons
    (betweenness centrality of the sparse graph), then a few edges added back (eigenvector
    delocalisation), optionally a timescale search, and a final stabilisation; see the module
    docstring for each step and what is our choice where the paper leaves one.

    Parameters
    ----------
    model : RSNN
        The dense, untrained network (not modified).
    key : PRNG key
        Noise drive, synapse sampling, centrality sampling and time-constant draws
        (keyword-only); one key, one result.
    neuron_fraction : float in (0, 1]
        Fraction of hidden neurons kept (the most central ones); ``n_neurons`` overrides it.
    n_neurons : int, optional
        Number of neurons kept.
    synapse_fraction : float in (0, 1]
        Expected fraction of the dense network's synapses kept by step 1. Neurons are pruned
        afterwards, and the central neurons are the well-connected ones, so the final
        network's density (synapses over its neuron pairs) is higher than this fraction.
    n_steps, drive_mean, drive_std : white-noise drive of the probes (threshold units)
    n_exponents : int or None
        Leading exponents computed for ``lambda_max`` (None: all).
    lambda_target : float or None
        Stabilise so that ``lambda_max <= lambda_target`` (per ms); None skips the step. Also
        the target of the timescale search.
    reweight : bool
        Divide kept weights by their keep probability (unbiased sparsifier).
    lyapunov_weighting : bool
        Multiply the noise-prune importance by the Lyapunov matrix (False: plain noise pruning).
    exponent_horizon : int
        Steps per window of the per-neuron exponents (1: one-step expansion).
    betweenness_samples : int, optional
        Estimate centralities from that many source neurons (None: exact; O(n m log n)).
    delocalize_fraction : float >= 0
        Edges added back, at most this fraction of the synapses left after neuron pruning.
    n_eigenvectors : int
        Leading eigenvectors whose IPR the added edges lower.
    timescales : TimescaleGrid, optional
        Run :func:`search_timescales` on the pruned network over this grid (None: keep the
        model's time constants).

    Returns
    -------
    LNPResult

    Raises
    ------
    ValueError
        Fractions outside (0, 1], ``n_neurons`` outside ``1..n_hidden``, ``n_steps < 200``,
        negative ``delocalize_fraction``.

    References
    ----------
    Chakraborty et al. (2024), ICLR, arXiv:2403.03409, Alg. 1.
    """
    n_keep = _neuron_count(model, neuron_fraction, n_neurons)
    synapse_fraction = _check_fraction("synapse_fraction", synapse_fraction)
    if n_steps < 200:
        raise ValueError(f"n_steps must be >= 200 (100 are a discarded transient), got "
                         f"{n_steps!r}")
    if delocalize_fraction < 0:
        raise ValueError(f"delocalize_fraction must be >= 0, got {delocalize_fraction!r}")
    k_drive, k_sample, k_graph, k_tau = jax.random.split(key, 4)
    drive = noise_drive(n_steps, model.n_hidden, key=k_drive, mean=drive_mean, std=drive_std)

    def k_exp(net):
        return None if n_exponents is None else min(int(n_exponents), _state_size(net))

    spec_before = np.asarray(rsnn_lyapunov_spectrum(model, drive, n_exponents=k_exp(model)))
    w_sparse, lam, target = _sparsify(model, drive, key=k_sample,
                                      synapse_fraction=synapse_fraction,
                                      lyapunov_weighting=lyapunov_weighting,
                                      exponent_horizon=exponent_horizon, reweight=reweight)
    seed = int(jax.random.randint(k_graph, (), 0, 2**31 - 1))
    w_dense = np.asarray(model.effective_w_rec(), np.float64)
    keep, centrality = betweenness_prune(np.where(w_sparse != 0, w_dense, 0.0), n_keep,
                                         samples=betweenness_samples, seed=seed)
    w_small = w_sparse[np.ix_(keep, keep)]
    n_pruned = int(np.count_nonzero(w_small))
    deloc = delocalize_eigenvectors(w_small, int(round(delocalize_fraction * n_pruned)),
                                    n_vectors=n_eigenvectors)
    small = _with_recurrent(select_neurons(model, keep), deloc.w, deloc.w != 0)
    drive_small = drive[:, keep]
    search = None
    if timescales is not None:
        search = search_timescales(small, key=k_tau, grid=timescales, drive=drive_small,
                                   n_exponents=n_exponents,
                                   lambda_target=0.0 if lambda_target is None else lambda_target)
        small = search.model
    spec = np.asarray(rsnn_lyapunov_spectrum(small, drive_small, n_exponents=k_exp(small)))
    small, spec, scale = _stabilise(small, drive_small, spec, lambda_target, k_exp(small))
    return LNPResult(
        model=small, kept_neurons=keep, n_neurons=(model.n_hidden, small.n_hidden),
        n_synapses=(_n_synapses(model), _n_synapses(small)), n_synapses_target=target,
        n_synapses_sparsified=int(np.count_nonzero(w_sparse)), n_synapses_pruned=n_pruned,
        edges_added=deloc.added, ipr=(deloc.ipr_before, deloc.ipr_after),
        lambda_max=(float(spec_before[0]), float(spec[0])), spectrum_before=spec_before,
        spectrum_after=np.asarray(spec), neuron_exponents=lam, centrality=centrality,
        timescales=None if search is None else search.best,
        timescale_table=[] if search is None else search.table, rec_scale=float(scale))


# ----------------------------------------------------------------------------- controls


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
