"""Datasets: synthetic fMRI with ground truth, loaders for real fMRI formats, task generators.

* :func:`make_synthetic_fmri` / :func:`make_synthetic_bold`: NSD-like single-trial betas (or a
  BOLD time series) on nilearn's MNI152 mask, with known features, weights and noise ceiling.
* :func:`load_algonauts2023`, :func:`load_nifti_betas`, :func:`betas_from_bids`: real formats,
  returned in the same convention (``betas (trial, voxel)`` + ``stimulus_id (trial)``).

This package imports no model code (encoders, snn, rsa).
"""

from .stimuli import SHAPE_CATEGORIES, category_code, gabor_energy, make_stimuli, render_stimuli
from .synthetic import FEATURE_SPACES, ground_truth_features, make_synthetic_fmri
from .synthetic_bold import hrf_regressors, make_synthetic_bold

__all__ = [
    "FEATURE_SPACES",
    "SHAPE_CATEGORIES",
    "category_code",
    "gabor_energy",
    "hrf_regressors",
    "make_synthetic_bold",
    "ground_truth_features",
    "make_stimuli",
    "make_synthetic_fmri",
    "render_stimuli",
]
