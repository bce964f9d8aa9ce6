"""Wave-RNNs: traveling-wave recurrent networks (Keller, Muller, Sejnowski & Welling, ICLR 2024).

* :class:`WaveRNN`: ReLU units on circular sheets with a circular-convolution recurrence; the
  ``"shift"`` kernel makes activity travel one neuron per step.
* :class:`IRNN`, :class:`GRU`, :class:`LSTM`: wave-free baselines of the same interface.
* :func:`build_model`, :func:`train`: a model by name and its training on a task's arrays.
* :func:`plot_waves`: the hidden state as a space-time image.
"""

from .models import GRU, IRNN, LSTM, MODELS, WaveRNN, circular_conv, count_params
from .objectives import OBJECTIVES, build_model, train
from .plots import plot_waves

__all__ = ["WaveRNN", "IRNN", "GRU", "LSTM", "MODELS", "OBJECTIVES", "build_model",
           "circular_conv", "count_params", "plot_waves", "train"]
