"""Ready-made networks: the Brette et al. (2007) CUBA and COBA benchmarks and Brunel's (2000)
sparse network of delta-synapse LIF neurons.

Both are one population of ``n`` LIF neurons (the first 80 % excitatory, the rest inhibitory),
randomly connected with probability ``p`` (autapses allowed, as brian2's ``connect(p=...)``),
``tau_m = 20 ms``, ``V_th = -50 mV``, ``V_r = -60 mV``, 5 ms refractory, ``tau_e = 5 ms``,
``tau_i = 10 ms``.

* :func:`cuba` - current-based, ``E_l = -49 mV`` (spontaneously active), weights 1.62 mV and
  -9 mV, ``v0 ~ U[V_r, V_th]``: brian2's ``examples/CUBA.py`` (~5.5 Hz).
* :func:`coba` - conductance-based, ``E_l = -60 mV`` plus a constant drive of 20 mV,
  ``E_e = 0 mV``, ``E_i = -80 mV``, conductances relative to the leak (``we = 6 nS / 10 nS =
  0.6``, ``wi = 67 nS / 10 nS = 6.7``), ``v0 ~ N(-55, 5) mV``: the COBA network of the
  brian2/BrainPy benchmarks. Its activity is bistable across seeds: compare distributions.
* :func:`brunel` - Brunel (2000) model A: ``N_E`` excitatory and ``N_I = N_E / 4`` inhibitory
  LIF neurons (``tau = 20 ms``, ``theta = 20 mV``, ``V_r = 10 mV``, 2 ms refractory, rest at
  0 mV), each receiving exactly ``C_E = epsilon N_E`` excitatory and ``C_I = epsilon N_I``
  inhibitory inputs (no autapses) through delta synapses of ``J`` and ``-g J`` (mV) with delay
  ``D``, plus ``C_E`` external Poisson sources at ``eta`` times the threshold rate
  ``nu_thr = theta / (J C_E tau)``. ``(g, eta)`` select the regime (Brunel's Fig. 8: (3, 2)
  synchronous regular, (6, 4) asynchronous irregular, (5, 2) synchronous irregular fast,
  (4.5, 0.9) synchronous irregular slow).

References
----------
Brette, R. et al. (2007). J. Comput. Neurosci. 23, 349-398, appendix benchmarks 1-2
(after Vogels & Abbott 2005).
Brunel, N. (2000). Dynamics of sparsely connected networks of excitatory and inhibitory
spiking neurons. J. Comput. Neurosci. 8, 183-208 (model A, section 2).
"""

from __future__ import annotations

import numpy as np

from brainmodels.snn.connectivity import fixed_in_degree, fixed_probability
from brainmodels.snn.network import Network, PoissonInput, Population, Projection
from brainmodels.snn.neurons import LIF
from brainmodels.snn.synapses import conductance_synapses, current_synapses, delta_synapses

__all__ = ["cuba", "coba", "brunel", "brunel_threshold_rate"]


def _ei_projections(n, p, we, wi, seed, exc_fraction):
    n_exc = int(round(exc_fraction * n))
    ss = np.random.SeedSequence(seed).spawn(3)
    seeds = [int(s.generate_state(1)[0]) for s in ss]
    exc = fixed_probability(n, n, p, we, seed=seeds[0], pre_indices=np.arange(n_exc))
    inh = fixed_probability(n, n, p, wi, seed=seeds[1], pre_indices=np.arange(n_exc, n))
    return (Projection("P", "P", "e", exc, name="exc"),
            Projection("P", "P", "i", inh, name="inh")), np.random.default_rng(seeds[2])


def cuba(seed: int = 0, *, n: int = 4000, p: float = 0.02, we: float = 1.62, wi: float = -9.0,
         exc_fraction: float = 0.8) -> Network:
    """Brette et al. (2007) CUBA network (current-based exponential synapses, weights in mV)."""
    projs, rng = _ei_projections(n, p, we, wi, seed, exc_fraction)
    model = LIF(tau_m=20.0, v_rest=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0,
                syn=current_synapses((5.0, 10.0)))
    v0 = (-60.0 + rng.random(n) * 10.0).astype(np.float32)
    return Network((Population("P", n, model, v0=v0),), projs, name="cuba", seed=seed)


def coba(seed: int = 0, *, n: int = 4000, p: float = 0.02, we: float = 0.6, wi: float = 6.7,
         exc_fraction: float = 0.8, drive_mv: float = 20.0) -> Network:
    """Brette et al. (2007) COBA network (conductance-based, E_e = 0 mV, E_i = -80 mV)."""
    projs, rng = _ei_projections(n, p, we, wi, seed, exc_fraction)
    model = LIF(tau_m=20.0, v_rest=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0, r_m=1.0,
                syn=conductance_synapses((5.0, 10.0), (0.0, -80.0)))
    v0 = (-55.0 + 5.0 * rng.standard_normal(n)).astype(np.float32)
    pop = Population("P", n, model, v0=v0, i_ext=drive_mv)
    return Network((pop,), projs, name="coba", seed=seed)


def brunel_threshold_rate(j: float = 0.1, c_e: int = 800, theta: float = 20.0,
                          tau_m: float = 20.0) -> float:
    """``nu_thr = theta / (J C_E tau)`` in Hz: the external rate that brings the mean input to
    threshold without recurrent input (Brunel 2000, section 2)."""
    return 1000.0 * theta / (j * c_e * tau_m)


def brunel(g: float = 5.0, eta: float = 2.0, *, seed: int = 0, n_exc: int = 8000,
           n_inh: int | None = None, epsilon: float = 0.1, j: float = 0.1,
           delay_ms: float = 1.5, tau_m: float = 20.0, theta: float = 20.0,
           v_reset: float = 10.0, t_ref: float = 2.0) -> Network:
    """Brunel (2000) model A: sparse E/I network of LIF neurons with delta synapses.

    Parameters
    ----------
    g : float
        Relative strength of inhibition (inhibitory weight ``-g J``).
    eta : float
        External rate in units of the threshold rate (:func:`brunel_threshold_rate`).
    seed : int
        Connectivity and initial potentials (``v0 ~ U[V_r, theta]``); the Poisson drive takes
        the simulation's ``key``.
    n_exc, n_inh : int
        Population sizes (default ``n_inh = n_exc / 4``); the first ``n_exc`` neurons of the
        one population ``"P"`` are excitatory.
    epsilon : float
        Connection probability: every neuron gets exactly ``epsilon n_exc`` excitatory and
        ``epsilon n_inh`` inhibitory inputs, and ``epsilon n_exc`` external sources.
    j, delay_ms, tau_m, theta, v_reset, t_ref : float
        ``J`` (mV), ``D`` (ms), ``tau`` (ms), threshold, reset (mV) and refractory period (ms).

    Examples
    --------
    >>> net = brunel(g=5.0, eta=2.0, n_exc=400, seed=1)
    >>> net.n_neurons, round(net.inputs[0].rate_hz, 3)
    (500, 500.0)
    """
    n_inh = n_exc // 4 if n_inh is None else int(n_inh)
    c_e, c_i = int(round(epsilon * n_exc)), int(round(epsilon * n_inh))
    if not (0 < c_e <= n_exc - 1 and 0 < c_i <= n_inh - 1):
        raise ValueError(f"epsilon={epsilon} gives in-degrees C_E={c_e}, C_I={c_i}: each must "
                         f"be >= 1 and below its population (n_exc={n_exc}, n_inh={n_inh})")
    if g < 0 or eta < 0:
        raise ValueError(f"g and eta must be >= 0, got g={g}, eta={eta}")
    n = n_exc + n_inh
    ss = np.random.SeedSequence(seed).spawn(3)
    seeds = [int(s.generate_state(1)[0]) for s in ss]
    exc = fixed_in_degree(n, n, c_e, j, seed=seeds[0], delay_ms=delay_ms,
                          pre_indices=np.arange(n_exc), autapses=False)
    inh = fixed_in_degree(n, n, c_i, -g * j, seed=seeds[1], delay_ms=delay_ms,
                          pre_indices=np.arange(n_exc, n), autapses=False)
    model = LIF(tau_m=tau_m, v_rest=0.0, v_th=theta, v_reset=v_reset, t_ref=t_ref,
                syn=delta_synapses(("e", "i")))
    v0 = (v_reset + np.random.default_rng(seeds[2]).random(n) * (theta - v_reset))
    nu_ext = eta * brunel_threshold_rate(j, c_e, theta, tau_m)
    drive = PoissonInput("P", "e", n_sources=c_e, rate_hz=nu_ext, weight=j)
    return Network((Population("P", n, model, v0=v0.astype(np.float32)),),
                   (Projection("P", "P", "e", exc, name="exc"),
                    Projection("P", "P", "i", inh, name="inh")), (drive,),
                   name="brunel", seed=seed)
