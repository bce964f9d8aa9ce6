"""Models meet the brain: any model's states as features for encoders and RDMs for RSA.

:func:`representations` turns a model (AKOrN, a wave-RNN or its baselines, a spiking network,
a whitening circuit, a Kuramoto grid, the Gabor-energy and random-feature baselines, or
precomputed arrays) and some images into an xarray Dataset with one variable per layer,
``(stimulus, [sample,] [time,] feature_<layer>)``. :func:`compare_to_brain` scores every layer
against every ROI of an fMRI dataset by voxelwise encoding and by RSA, with noise ceilings, and
:func:`plot_model_brain` draws the result (:func:`layer_colors`: its colour of each layer, for
drawing the same layers elsewhere).

This package is the one place where models meet data (DESIGN.md, layering): it imports the
model families, the encoders and the datasets; none of them imports it.
"""

from brainmodels.representations import _adapters  # noqa: F401  (registers the model families)
from brainmodels.representations._baselines import (
    GaborEnergy,
    KuramotoGrid,
    RandomFeatures,
    WhiteningCircuit,
)
from brainmodels.representations._compare import compare_to_brain, stack_layers
from brainmodels.representations._core import layer_matrix, layers_of, register, representations
from brainmodels.representations._plots import best_layer_map, layer_colors, plot_model_brain

__all__ = [
    "representations", "register", "layer_matrix", "layers_of", "stack_layers",
    "GaborEnergy", "RandomFeatures", "WhiteningCircuit", "KuramotoGrid",
    "compare_to_brain", "plot_model_brain", "best_layer_map", "layer_colors",
]
