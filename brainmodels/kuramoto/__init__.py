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

Modules: ``params`` (KuramotoParams and its checks), ``engine`` (pure-JAX vector field and time
loop on the integrators of :mod:`brainmodels.integrators`), ``dynamics`` (simulate, measures,
initial phases), ``sweeps``, ``theory``, ``plots``.

References
----------
Kuramoto (1975, 1984), Chemical Oscillations, Waves and Turbulence, eqs. 5.4.1-5.4.5.
Sakaguchi & Kuramoto (1986), Prog. Theor. Phys. 76, 576 (phase lag).
Strogatz (2000), Physica D 143, 1, eqs. 2-6 (self-consistency, K_c = 2 / (pi g(0))).
Strogatz & Mirollo (1991), J. Stat. Phys. 63, 613 (noise: K_c = 2 / int g(w) D/(D^2+w^2) dw).
Ott & Antonsen (2008), Chaos 18, 037113, eq. 11 (dr/dt = -gamma r + K/2 r (1 - r^2)).
Restrepo, Ott & Hunt (2005), Phys. Rev. E 71, 036151, eq. 9 (K_c = k_0 / lambda_max(A)).
"""

from brainmodels.kuramoto.dynamics import (
    initial_phases,
    integrate,
    local_order,
    order_parameter,
    simulate,
)
from brainmodels.kuramoto.engine import EdgeList
from brainmodels.kuramoto.params import KuramotoParams, edge_list
from brainmodels.kuramoto.plots import plot_order_parameter, plot_sweep
from brainmodels.kuramoto.sweeps import sweep
from brainmodels.kuramoto.theory import (
    DISTRIBUTIONS,
    critical_coupling,
    natural_frequencies,
    ott_antonsen_order_parameter,
    stationary_order_parameter,
)

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
