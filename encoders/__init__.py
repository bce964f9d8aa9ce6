"""Voxel encoders: stimulus features -> voxel responses, scores per voxel and per ROI, maps.

Public API
----------
RidgeEncoder
    Ridge regression with one alpha per voxel (K-fold, leave-one-run-out or exact LOO CV).
BandedRidgeEncoder, stack_feature_spaces, variance_partitioning, r2_split
    One penalty per feature space and voxel; split R^2; unique and shared variance.
AttentionRoutingEncoder, FactorizedReadout, InContextEncoder
    Nonlinear encoders trained by gradient descent (flax.nnx + optax through
    brainmodels.training.fit): ROI queries reading a feature map by cross-attention, a spatial
    mask x feature weights per voxel, and a meta-trained transformer that writes a voxel's
    weights from a few examples. Same fit / predict / score contract as RidgeEncoder.
Delayer, zscore_runs
    FIR delays for BOLD time series (with the inverse reshape of coefficients), per-run z-scoring.
correlation, r2, explainable_variance, noise_ceiling, normalized_score, roi_summary, ...
    Per-voxel scores, noise ceilings from repeats, chance thresholds, per-ROI summaries.
to_nifti, save_nifti, plot_brain_map
    Per-voxel results back onto the brain (re-exported from brainmodels.brainmaps).
"""

from brainmodels.encoders.banded import BandedRidgeEncoder, variance_partitioning
from brainmodels.encoders.delays import Delayer, reshape_by_delays, zscore_runs
from brainmodels.encoders.feature_spaces import band_candidates, stack_feature_spaces
from brainmodels.encoders.maps import plot_brain_map, save_nifti, to_nifti
from brainmodels.encoders.ridge import CV_STRATEGIES, SOLVERS, RidgeEncoder, kfold_splits
from brainmodels.encoders.scoring import (
    SCORES,
    correlation,
    correlation_pvalues,
    explainable_variance,
    fdr_bh,
    neg_mse,
    noise_ceiling,
    normalized_score,
    r2,
    r2_split,
    repeats_from_trials,
    roi_summary,
)

#: The gradient-trained encoders need flax and optax, which ridge users need not import: they
#: are loaded on first use (``from brainmodels.encoders import AttentionRoutingEncoder`` works
#: as before).
_LAZY = {
    "AttentionRoutingEncoder": "brainmodels.encoders.attention",
    "plot_attention": "brainmodels.encoders.attention",
    "FactorizedReadout": "brainmodels.encoders.factorized",
    "InContextEncoder": "brainmodels.encoders.in_context",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AttentionRoutingEncoder",
    "BandedRidgeEncoder",
    "CV_STRATEGIES",
    "SCORES",
    "SOLVERS",
    "Delayer",
    "FactorizedReadout",
    "InContextEncoder",
    "RidgeEncoder",
    "correlation",
    "correlation_pvalues",
    "explainable_variance",
    "fdr_bh",
    "kfold_splits",
    "neg_mse",
    "noise_ceiling",
    "normalized_score",
    "plot_attention",
    "plot_brain_map",
    "r2",
    "r2_split",
    "band_candidates",
    "stack_feature_spaces",
    "variance_partitioning",
    "repeats_from_trials",
    "reshape_by_delays",
    "roi_summary",
    "save_nifti",
    "to_nifti",
    "zscore_runs",
]
