"""Spiking neural networks in JAX, in two halves.

Simulation
    neuron models (:class:`LIF`, :class:`AdaptiveLIF`, :class:`Izhikevich`, each with a typed
    state), exponential current/conductance synapses, sparse or dense connectivity, networks
    run with ``lax.scan`` (:func:`simulate`; :func:`simulate_many` for batches), spike delivery
    configured by one :class:`Delivery`, the Brette et al. (2007) CUBA/COBA benchmarks
    (:func:`cuba`, :func:`coba`), spike statistics, and a bridge to brian2 (:func:`to_brian2`,
    :func:`run_brian2`, :func:`compare`).
Learning
    surrogate spike derivatives, recurrent spiking networks (:class:`RSNN`) trained with BPTT on
    the package's one loop (:func:`train_classifier` over :func:`brainmodels.training.fit`),
    Lyapunov spectra and Lyapunov Noise Pruning (:func:`lyapunov_noise_prune`), and
    membrane-potential batch normalisation (:class:`MPBNClassifier`).

Example
-------
>>> import jax
>>> from brainmodels import snn
>>> net = snn.cuba(seed=0, n=400)
>>> res = snn.simulate(net, duration_ms=100.0, dt_ms=0.1, key=jax.random.key(0))
>>> rates = snn.firing_rates(res)  # (neuron,) Hz
"""

from brainmodels.snn._delivery import Delivery
from brainmodels.snn.analysis import (
    cv_isi,
    fano_factor,
    firing_rates,
    population_summary,
    spike_time_agreement,
)
from brainmodels.snn.brian2_bridge import Brian2Model, compare, run_brian2, to_brian2
from brainmodels.snn.connectivity import (
    Connectivity,
    dense,
    fixed_in_degree,
    fixed_probability,
    from_indices,
)
from brainmodels.snn.lnp import (
    LNPResult,
    TimescaleGrid,
    TimescaleSearch,
    activity_prune,
    betweenness_prune,
    delocalize_eigenvectors,
    lnp_keep_probabilities,
    lyapunov_noise_prune,
    noise_prune,
    search_timescales,
    spectral_radius,
    with_spectral_radius,
    with_timescales,
)
from brainmodels.snn.lyapunov import (
    lyapunov_matrix,
    lyapunov_spectrum,
    neuron_lyapunov_exponents,
    neuron_noise_sensitivity,
    noise_drive,
    rsnn_lyapunov_spectrum,
    rsnn_neuron_lyapunov_exponents,
)
from brainmodels.snn.mpbn import MPBNLIF, FoldedLIF, MPBNClassifier, fold_mpbn
from brainmodels.snn.network import (
    Network,
    PoissonInput,
    Population,
    Projection,
    Recording,
    simulate,
    simulate_many,
)
from brainmodels.snn.neurons import (
    LIF,
    AdaptiveLIF,
    AdaptiveLIFState,
    Izhikevich,
    IzhikevichState,
    LIFState,
    analytic_lif_rate,
)
from brainmodels.snn.presets import brunel, brunel_threshold_rate, coba, cuba
from brainmodels.snn.rsnn import (
    RSNN,
    TAU_DISTRIBUTIONS,
    LIFLayer,
    RSNNConfig,
    RSNNOutput,
    draw_time_constants,
    lif_step,
    record,
    select_neurons,
)
from brainmodels.snn.surrogate import (
    SURROGATES,
    arctan,
    fast_sigmoid,
    get_surrogate,
    surrogate_derivative,
    triangle,
)
from brainmodels.snn.synapses import (
    ExpSynapses,
    conductance_synapses,
    current_synapses,
    delta_synapses,
)
from brainmodels.snn.train import (
    TrainConfig,
    TrainResult,
    evaluate,
    load_checkpoint,
    save_checkpoint,
    train_classifier,
    train_step,
)

__all__ = [
    # simulation: neurons and synapses
    "LIF", "AdaptiveLIF", "Izhikevich", "LIFState", "AdaptiveLIFState", "IzhikevichState",
    "analytic_lif_rate", "ExpSynapses", "current_synapses", "conductance_synapses",
    "delta_synapses",
    # simulation: connectivity, networks, delivery, presets
    "Connectivity", "fixed_probability", "fixed_in_degree", "from_indices", "dense",
    "Population", "Projection", "PoissonInput", "Network", "Recording", "Delivery",
    "simulate", "simulate_many", "cuba", "coba", "brunel", "brunel_threshold_rate",
    # simulation: analysis and the brian2 bridge
    "firing_rates", "cv_isi", "fano_factor", "spike_time_agreement", "population_summary",
    "Brian2Model", "to_brian2", "run_brian2", "compare",
    # learning: surrogates and recurrent spiking networks
    "SURROGATES", "arctan", "fast_sigmoid", "triangle", "get_surrogate",
    "surrogate_derivative", "RSNN", "RSNNConfig", "RSNNOutput", "LIFLayer", "TAU_DISTRIBUTIONS",
    "draw_time_constants", "lif_step", "record", "select_neurons",
    # learning: training (on brainmodels.training.fit)
    "TrainConfig", "TrainResult", "train_classifier", "train_step", "evaluate",
    "save_checkpoint", "load_checkpoint",
    # learning: Lyapunov spectra and pruning; MPBN
    "lyapunov_spectrum", "rsnn_lyapunov_spectrum", "neuron_noise_sensitivity", "noise_drive",
    "neuron_lyapunov_exponents", "rsnn_neuron_lyapunov_exponents", "lyapunov_matrix",
    "LNPResult", "lyapunov_noise_prune", "lnp_keep_probabilities", "noise_prune",
    "betweenness_prune", "delocalize_eigenvectors", "TimescaleGrid", "TimescaleSearch",
    "search_timescales", "with_timescales", "activity_prune", "spectral_radius",
    "with_spectral_radius",
    "MPBNLIF", "MPBNClassifier", "FoldedLIF", "fold_mpbn",
]
