"""Representational-similarity metrics: RDMs, RDM comparisons, CKA, shape metrics, inference.

One JAX module for what users otherwise combine from rsatoolbox (RDMs, comparisons,
inference) and netrep (shape metrics), with the same definitions, vectorised over many models
and references at once.

* :func:`rdm` - RDMs (euclidean, correlation, cosine, mahalanobis, crossnobis, poisson[_cv]);
  :func:`noise_precision` for shrinkage noise precisions.
* :func:`compare_rdms` - cosine, pearson/corr, spearman, tau-a, rho-a, corr_cov, cosine_cov.
* :func:`cka` - linear/RBF, biased/debiased centered kernel alignment.
* :func:`shape_distance`, :func:`pairwise_distances` - generalized shape metrics.
* :func:`stochastic_shape_distance` - Gaussian (alpha in [0, 2]) and energy stochastic metrics.
* :func:`bootstrap_compare`, :func:`permutation_test`, :func:`noise_ceiling`,
  :func:`model_comparison_table` - inference.
* :func:`plot_rdm`, :func:`plot_mds`, :func:`plot_model_comparison` - plots.
* :func:`roi_rdms`, :func:`model_rdms`, :func:`compare_models_by_roi` - the whole analysis on a
  betas Dataset (what ``brainmodels rsa`` runs).
"""

from brainmodels.rsa.cka import CKA_KERNELS, cka
from brainmodels.rsa.compare import COMPARE_METHODS, compare_rdms, rank_average
from brainmodels.rsa.inference import (
    BOOTSTRAP_METHODS,
    bootstrap_compare,
    model_comparison_table,
    noise_ceiling,
    permutation_test,
    pool_rdms,
)
from brainmodels.rsa.plots import mds, plot_mds, plot_model_comparison, plot_rdm
from brainmodels.rsa.rdm import RDM_METRICS, noise_precision, rdm
from brainmodels.rsa.roi import compare_models_by_roi, default_over, model_rdms, roi_rdms
from brainmodels.rsa.shape import SHAPE_GROUPS, SHAPE_SCORES, pairwise_distances, shape_distance
from brainmodels.rsa.stochastic import (
    STOCHASTIC_METHODS,
    gaussian_moments,
    stochastic_shape_distance,
)

__all__ = [
    "rdm", "noise_precision", "RDM_METRICS",
    "compare_rdms", "rank_average", "COMPARE_METHODS",
    "cka", "CKA_KERNELS",
    "shape_distance", "pairwise_distances", "SHAPE_SCORES", "SHAPE_GROUPS",
    "stochastic_shape_distance", "gaussian_moments", "STOCHASTIC_METHODS",
    "bootstrap_compare", "permutation_test", "noise_ceiling", "model_comparison_table",
    "pool_rdms", "BOOTSTRAP_METHODS",
    "plot_rdm", "plot_mds", "plot_model_comparison", "mds",
    "roi_rdms", "model_rdms", "compare_models_by_roi", "default_over",
]
