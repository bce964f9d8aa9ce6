"""(being built)"""

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
    fold_mpbn,
)
from brainmodels.snn.rsnn import (  # noqa: E402, F401
    RSNN,
    TAU_DISTRIBUTIONS,
    LIFLayer,
    RSNNOutput,
    draw_time_constants,
    lif_step,
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

__all__ = [*globals().get("__all__", []),  # extends the simulation half's list
    "LNPResult", "activity_prune", "lyapunov_noise_prune", "lyapunov_spectrum",
    "neuron_noise_sensitivity", "noise_drive", "rsnn_lyapunov_spectrum", "FoldedLIF", "MPBNLIF",
    "fold_mpbn", "RSNN", "TAU_DISTRIBUTIONS", "LIFLayer", "RSNNOutput", "draw_time_constants",
    "lif_step", "select_neurons", "SURROGATES", "arctan", "fast_sigmoid", "get_surrogate",
    "surrogate_derivative", "triangle", "TrainConfig", "TrainResult", "evaluate",
    "load_checkpoint", "save_checkpoint", "train_classifier", "train_step",
]
