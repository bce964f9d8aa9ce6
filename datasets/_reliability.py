"""Noise ceilings from repeated presentations (a small private copy; encoders own the public one).

The datasets package imports no model code, so it carries its own few lines of the standard
estimator to summarise a dataset and to check the synthetic ground truth.
"""

from __future__ import annotations

import numpy as np


def repeats_array(betas: np.ndarray, stimulus_id: np.ndarray) -> np.ndarray:
    """Arrange single-trial ``betas (trial, voxel)`` as ``(repeat, stimulus, voxel)``.

    Only stimuli shown at least as often as the most common repeat count ``r`` (>= 2) are
    kept, with their first ``r`` presentations.

    Raises
    ------
    ValueError
        If no stimulus was shown at least twice.
    """
    ids = np.asarray(stimulus_id)
    uniq, counts = np.unique(ids, return_counts=True)
    if counts.max(initial=0) < 2:
        raise ValueError("stimulus_id has no repeated stimulus; a noise ceiling needs repeats")
    r = int(np.bincount(counts[counts >= 2]).argmax())
    keep = uniq[counts >= r]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.searchsorted(sorted_ids, keep)
    rows = order[starts[None, :] + np.arange(r)[:, None]]  # (repeat, stimulus)
    return np.asarray(betas)[rows]


def explainable_variance(repeats: np.ndarray, *, bias_correction: bool = True) -> np.ndarray:
    """Single-trial explainable variance per voxel from ``(repeat, stimulus, voxel)`` data.

    Each repeat is z-scored over stimuli; ``ev = Var_s(mean_r y) / mean_r Var_s(y_r)``, and the
    bias-corrected value ``ev - (1 - ev) / (n_repeats - 1)`` is unbiased for
    ``var(signal) / (var(signal) + var(noise))`` (Hsu et al. 2004; as in himalaya's
    ``explainable_variance``). Constant voxels give NaN.

    References
    ----------
    Hsu, A., Borst, A. & Theunissen, F. E. (2004). Quantifying variability in neural responses
    and its application for the validation of model predictions. Network 15, 91-109.
    """
    y = np.asarray(repeats, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - y.mean(1, keepdims=True)) / y.std(1, keepdims=True)
        ev = z.mean(0).var(0) / z.var(1).mean(0)
    if bias_correction:
        ev = ev - (1 - ev) / (y.shape[0] - 1)
    return ev
