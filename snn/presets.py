"""Ready-made networks: the Brette et al. (2007) CUBA and COBA benchmarks.

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

References
----------
Brette, R. et al. (2007). J. Comput. Neurosci. 23, 349-398, appendix benchmarks 1-2
(after Vogels & Abbott 2005).
"""

from __future__ import annotations

import numpy as np

from brainmodels.snn.connectivity import fixed_probability
from brainmodels.snn.network import Network, Population, Projection
from brainmodels.snn.neurons import LIF
from brainmodels.snn.synapses import conductance_synapses, current_synapses

__all__ = ["cuba", "coba"]


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
