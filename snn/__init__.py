"""Spiking neural networks in JAX: neurons, synapses, connectivity, networks, brian2 bridge.

Simulation (this block): neuron models (:class:`LIF`, :class:`AdaptiveLIF`,
:class:`Izhikevich`), exponential current/conductance synapses, sparse event-driven or dense
connectivity, networks run with ``lax.scan`` (:func:`simulate`, :func:`simulate_many` under
``vmap``), the Brette et al. (2007) CUBA/COBA benchmarks (:func:`cuba`, :func:`coba`), spike
statistics, and a bridge to brian2 (:func:`to_brian2`, :func:`run_brian2`, :func:`compare`).

Example
-------
>>> import jax
>>> from brainmodels import snn
>>> net = snn.cuba(seed=0, n=400)
>>> res = snn.simulate(net, duration_ms=100.0, dt_ms=0.1, key=jax.random.key(0))
>>> rates = snn.firing_rates(res)  # (neuron,) Hz
"""

from brainmodels.snn.analysis import cv_isi, firing_rates, population_summary, spike_time_agreement
from brainmodels.snn.brian2_bridge import Brian2Model, compare, run_brian2, to_brian2
from brainmodels.snn.connectivity import (
    Connectivity,
    dense,
    fixed_in_degree,
    fixed_probability,
    from_indices,
)
from brainmodels.snn.network import (
    Network,
    PoissonInput,
    Population,
    Projection,
    Recording,
    simulate,
    simulate_many,
)
from brainmodels.snn.neurons import LIF, AdaptiveLIF, Izhikevich, analytic_lif_rate
from brainmodels.snn.presets import coba, cuba
from brainmodels.snn.synapses import ExpSynapses, conductance_synapses, current_synapses

__all__ = [
    "LIF", "AdaptiveLIF", "Izhikevich", "analytic_lif_rate",
    "ExpSynapses", "current_synapses", "conductance_synapses",
    "Connectivity", "fixed_probability", "fixed_in_degree", "from_indices", "dense",
    "Population", "Projection", "PoissonInput", "Network", "Recording", "simulate",
    "simulate_many", "cuba", "coba",
    "firing_rates", "cv_isi", "spike_time_agreement", "population_summary",
    "Brian2Model", "to_brian2", "run_brian2", "compare",
]

# --- learning (surrogate gradients, RSNN, LNP, MPBN) ---
from brainmodels.snn.lnp import (  # noqa: E402, F401
    LNPResult,
    activity_prune,
    lyapunov_noise_prune,
    lyapunov_spectrum,
    neuron_noise_sensitivity,
    noise_drive,
    rsnn_lyapunov_spectrum,
)
from brainmodels.snn.mpbn import (  # noqa: E402, F401
    MPBNLIF,
    FoldedLIF,
    MPBNClassifier,
    fold_mpbn,
)
from brainmodels.snn.rsnn import (  # noqa: E402, F401
    RSNN,
    TAU_DISTRIBUTIONS,
    LIFLayer,
    RSNNOutput,
    draw_time_constants,
    lif_step,
    record,
    select_neurons,
)
from brainmodels.snn.surrogate import (  # noqa: E402, F401
    SURROGATES,
    arctan,
    fast_sigmoid,
    get_surrogate,
    surrogate_derivative,
    triangle,
)
from brainmodels.snn.train import (  # noqa: E402, F401
    TrainConfig,
    TrainResult,
    evaluate,
    load_checkpoint,
    save_checkpoint,
    train_classifier,
    train_step,
)

__all__ = [*__all__,  # extends the simulation half's list
    "LNPResult", "activity_prune", "lyapunov_noise_prune", "lyapunov_spectrum",
    "neuron_noise_sensitivity", "noise_drive", "rsnn_lyapunov_spectrum", "FoldedLIF", "MPBNLIF", "MPBNClassifier",
    "fold_mpbn", "RSNN", "TAU_DISTRIBUTIONS", "LIFLayer", "RSNNOutput", "draw_time_constants",
    "lif_step", "record", "select_neurons", "SURROGATES", "arctan", "fast_sigmoid", "get_surrogate",
    "surrogate_derivative", "triangle", "TrainConfig", "TrainResult", "evaluate",
    "load_checkpoint", "save_checkpoint", "train_classifier", "train_step",
]
