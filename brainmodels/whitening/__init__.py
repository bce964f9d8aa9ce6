"""Adaptive whitening with gain-modulating interneurons (Duong et al., ICML 2023).

N primary neurons, K >= N(N+1)/2 interneurons with fixed weights W (N x K, unit-norm columns)
and adaptive gains g; the steady state is r = (I + W diag(g) W^T)^{-1} x and the gains follow
g <- g + lr * mean(z o z - 1), z = W^T r, until the responses are whitened (C_rr = I).

Public API
----------
random_frame, mercedes_benz_frame, local_frame, frame_rank, n_symmetric   frames W
respond, dynamics, output_covariance, whitening_error                     the circuit
adapt, adapt_many, adapt_offline, optimal_gains                           gain adaptation
switch_contexts, random_covariance, samples_to_threshold                  context switches
pink_noise_images, image_patches, local_error                             local (image) variant
plot_error, plot_gains, plot_spectrum                                     figures
"""

from brainmodels.whitening.adaptation import adapt, adapt_many, adapt_offline, optimal_gains
from brainmodels.whitening.circuit import dynamics, output_covariance, respond, whitening_error
from brainmodels.whitening.contexts import random_covariance, samples_to_threshold, switch_contexts
from brainmodels.whitening.frames import frame_rank, mercedes_benz_frame, n_symmetric, random_frame
from brainmodels.whitening.local import image_patches, local_error, local_frame, pink_noise_images
from brainmodels.whitening.plots import plot_error, plot_gains, plot_spectrum

__all__ = [
    "adapt", "adapt_many", "adapt_offline", "dynamics", "frame_rank", "image_patches",
    "local_error", "local_frame", "mercedes_benz_frame", "n_symmetric", "optimal_gains",
    "output_covariance", "pink_noise_images", "plot_error", "plot_gains", "plot_spectrum",
    "random_covariance", "random_frame", "respond", "samples_to_threshold", "switch_contexts",
    "whitening_error",
]
