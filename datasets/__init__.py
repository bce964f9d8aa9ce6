"""Datasets: synthetic fMRI with ground truth, loaders for real fMRI formats, task generators.

* :func:`make_synthetic_fmri` / :func:`make_synthetic_bold`: NSD-like single-trial betas (or a
  BOLD time series) on nilearn's MNI152 mask, with known features, weights and noise ceiling;
  ``subject=k`` gives another brain that saw the same stimuli.
* :func:`feature_map`: their stimuli as (stimulus, y, x, channel) maps in degrees of visual
  angle (local oriented energy before pooling, or pixels).
* :func:`load_algonauts2023`, :func:`load_nifti_betas`, :func:`betas_from_bids`: real formats,
  returned in the same convention (``betas (trial, voxel)`` + ``stimulus_id (trial)``).
* :func:`open_dataset` / :func:`describe`: open or summarise any supported dataset path.

This package imports no model code (encoders, snn, rsa).
"""

from .algonauts import ALGONAUTS_ROI_CLASSES, load_algonauts2023
from .bids import CONFOUND_SETS, GLMOptions, betas_from_bids, find_bids_runs
from .feature_maps import FEATURE_MAP_KINDS, feature_map
from .info import describe, detect_format
from .multi_objects import make_multi_objects
from .nifti import load_nifti_betas
from .stimuli import SHAPE_CATEGORIES, category_code, gabor_energy, make_stimuli, render_stimuli
from .synthetic import (
    FEATURE_SPACES,
    FIELD_OF_VIEW_DEG,
    ground_truth_features,
    make_synthetic_fmri,
)
from .synthetic_bold import hrf_regressors, make_synthetic_bold
from .tasks import (
                    TASKS,
                    SequenceTask,
                    adding_task,
                    copy_memory_task,
                    copy_task,
                    lorenz_task,
                    memoryless_loss,
                    sequential_digits,
)

__all__ = [
    "ALGONAUTS_ROI_CLASSES",
    "TASKS",
    "SequenceTask",
    "adding_task",
    "copy_task",
    "copy_memory_task",
    "lorenz_task",
    "memoryless_loss",
    "sequential_digits",
    "FEATURE_MAP_KINDS",
    "FEATURE_SPACES",
    "FIELD_OF_VIEW_DEG",
    "SHAPE_CATEGORIES",
    "CONFOUND_SETS",
    "betas_from_bids",
    "GLMOptions",
    "category_code",
    "describe",
    "detect_format",
    "feature_map",
    "find_bids_runs",
    "gabor_energy",
    "ground_truth_features",
    "hrf_regressors",
    "load_algonauts2023",
    "load_nifti_betas",
    "make_multi_objects",
    "make_stimuli",
    "make_synthetic_bold",
    "make_synthetic_fmri",
    "render_stimuli",
]
