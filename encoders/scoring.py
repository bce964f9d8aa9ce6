"""Per-voxel scores, noise ceilings from repeats, chance thresholds and per-ROI summaries.

Numpy in gives numpy out; a DataArray in gives a DataArray with the voxel coordinates kept.
Scores are computed in float64. A score that is undefined (a constant voxel) is NaN and a
``RuntimeWarning`` names the voxels; nothing returns NaN silently.

References
----------
Schoppe, O., Harper, N. S., Willmore, B. D. B., King, A. J. & Schnupp, J. W. H. (2016).
Measuring the performance of neural models. Front. Comput. Neurosci. 10:10.
Sahani, M. & Linden, J. F. (2003). How linear are auditory cortical responses? NIPS 15, eq. 5
(explainable power from repeats, with its small-sample bias correction).
Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.stats
import xarray as xr

from brainmodels._types import ArrayLike, Float
from brainmodels.data import provenance, unwrap
from brainmodels.encoders._validation import format_indices, voxel_coords

__all__ = [
    "SCORES",
    "correlation",
    "r2",
    "neg_mse",
    "explainable_variance",
    "noise_ceiling",
    "normalized_score",
    "repeats_from_trials",
    "correlation_pvalues",
    "fdr_bh",
    "roi_summary",
    "r2_split",
]


def _pair(y_true: Any, y_pred: Any):
    yt, tt = unwrap(y_true, name="y_true")
    yp, tp = unwrap(y_pred, name="y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and "
                         f"{yp.shape}")
    if yt.ndim not in (1, 2) or yt.shape[0] < 2:
        raise ValueError(f"y_true must be (sample,) or (sample, voxel) with >= 2 samples, got "
                         f"shape {yt.shape}")
    return yt.astype(np.float64), yp.astype(np.float64), tt if tt is not None else tp


def _finish(values: np.ndarray, undefined: np.ndarray, template, what: str):
    if undefined.any():
        idx = np.flatnonzero(np.atleast_1d(undefined))
        warnings.warn(f"{what} is undefined (NaN) for {idx.size} constant voxel(s) "
                      f"{format_indices(idx)}", RuntimeWarning, stacklevel=3)
        values = np.where(undefined, np.nan, values)
    if values.ndim == 0:
        return float(values)
    if template is not None and "voxel" in template.dims:
        return xr.DataArray(values, dims=("voxel",), coords=voxel_coords(template), name=what,
                            attrs=provenance(what))
    return values


def correlation(y_true: Float[ArrayLike, "sample voxel"],
                y_pred: Float[ArrayLike, "sample voxel"]) -> Any:
    """Pearson correlation between ``y_true`` and ``y_pred`` for every voxel (column)."""
    yt, yp, t = _pair(y_true, y_pred)
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    den = np.sqrt((yt**2).sum(0) * (yp**2).sum(0))
    bad = den == 0
    r = (yt * yp).sum(0) / np.where(bad, 1.0, den)
    return _finish(r, bad, t, "correlation")


def r2(y_true: Float[ArrayLike, "sample voxel"], y_pred: Float[ArrayLike, "sample voxel"]) -> Any:
    """Coefficient of determination ``1 - SSE / SST`` per voxel (SST about the mean of y_true)."""
    yt, yp, t = _pair(y_true, y_pred)
    sst = ((yt - yt.mean(0)) ** 2).sum(0)
    bad = sst == 0
    out = 1.0 - ((yt - yp) ** 2).sum(0) / np.where(bad, 1.0, sst)
    return _finish(out, bad, t, "r2")


def neg_mse(y_true: Float[ArrayLike, "sample voxel"],
            y_pred: Float[ArrayLike, "sample voxel"]) -> Any:
    """Negative mean squared error per voxel."""
    yt, yp, t = _pair(y_true, y_pred)
    out = -((yt - yp) ** 2).mean(0)
    return _finish(out, np.zeros(out.shape, bool), t, "neg_mse")


#: Per-voxel scoring functions by name (higher is better).
SCORES: dict[str, Callable] = {"r2": r2, "correlation": correlation, "neg_mse": neg_mse}


def explainable_variance(data: Float[ArrayLike, "repeat sample voxel"], *,
                         bias_correction: bool = True, constant: str = "raise") -> Any:
    """Fraction of single-trial variance that is stimulus-driven, from repeated presentations.

    Each repeat is z-scored over samples; ``ev = Var_t(mean_r y) / mean_r Var_t(y_r)``. With
    ``bias_correction`` the finite-repeat bias is removed: ``ev - (1 - ev) / (n_repeats - 1)``
    (Sahani & Linden 2003, eq. 5), which makes ``ev`` unbiased for ``s / (s + n)`` (signal and
    noise variance of a single trial). Values can be slightly negative for noise-only voxels.

    Parameters
    ----------
    data : array (repeat, sample, voxel) or (repeat, sample)
        Responses to the same samples (stimuli or time points) in every repeat.
    constant : {"raise", "zero"}
        A voxel constant within a repeat (a dead or masked voxel) has no measurable
        explainable variance: an error naming the voxels (default), or ``"zero"``: its value
        is 0 (so its noise ceiling is 0) and a warning names the voxels.

    Raises
    ------
    ValueError
        Fewer than 2 repeats or samples, NaN values, or (``constant="raise"``) a constant
        repeat.
    """
    if constant not in ("raise", "zero"):
        raise ValueError(f"constant must be 'raise' or 'zero', got {constant!r}")
    values, template = unwrap(data, name="data")
    if values.ndim not in (2, 3) or values.shape[0] < 2 or values.shape[1] < 2:
        raise ValueError(f"data must be (repeat, sample[, voxel]) with >= 2 repeats and samples, "
                         f"got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("data contains NaN or infinite values")
    flat = values.reshape(*values.shape[:2], -1)
    ev = np.empty(flat.shape[2])
    flat_all = np.zeros(flat.shape[2], bool)
    for start in range(0, flat.shape[2], 2048):  # float64 in voxel chunks: bounded memory
        chunk = flat[:, :, start:start + 2048].astype(np.float64)
        sd = chunk.std(axis=1, keepdims=True)
        const = np.any(sd == 0, axis=(0, 1))
        if const.any():
            flat_all[start:start + 2048] = const
            if constant == "raise":
                raise ValueError(f"data is constant within a repeat for voxel(s) "
                                 f"{format_indices(start + np.flatnonzero(const))} (pass "
                                 f"constant='zero' to give them explainable variance 0)")
            sd = np.where(sd == 0, 1.0, sd)
        z = (chunk - chunk.mean(axis=1, keepdims=True)) / sd
        ev[start:start + 2048] = z.mean(axis=0).var(axis=0)  # mean_r Var_t(z_r) = 1
    if bias_correction:
        ev = ev - (1.0 - ev) / (values.shape[0] - 1)
    if flat_all.any():
        ev[flat_all] = 0.0
        warnings.warn(f"explainable variance 0 for {int(flat_all.sum())} voxel(s) constant "
                      f"within a repeat: {format_indices(np.flatnonzero(flat_all))}",
                      UserWarning, stacklevel=2)
    ev = ev.reshape(values.shape[2:])
    return _finish(ev, np.zeros(np.shape(ev), bool), template, "explainable_variance")


def noise_ceiling(ev: Float[ArrayLike, " voxel"], *, n_average: int = 1) -> Any:
    """Highest expected correlation of a prediction with the mean of ``n_average`` new trials.

    ``sqrt(ev / (ev + (1 - ev) / n_average))`` with ``ev`` the single-trial explainable
    variance (negative estimates are clipped to 0, giving a ceiling of 0).
    """
    values, template = unwrap(ev, name="ev")
    if n_average < 1:
        raise ValueError(f"n_average must be >= 1, got {n_average}")
    e = np.clip(values.astype(np.float64), 0.0, 1.0)
    out = np.sqrt(e / (e + (1.0 - e) / n_average))
    return _finish(out, np.zeros(out.shape, bool), template, "noise_ceiling")


def normalized_score(score: Float[ArrayLike, " voxel"], ceiling: Float[ArrayLike, " voxel"], *,
                     kind: str = "correlation", min_ceiling: float = 0.1) -> Any:
    """Score divided by the noise ceiling (``kind="r2"`` divides by the ceiling squared).

    Voxels whose ceiling is below ``min_ceiling`` are NaN (a warning names them): a ratio to a
    near-zero ceiling is noise.
    """
    powers = {"correlation": 1, "r2": 2}
    if kind not in powers:
        raise ValueError(f"kind must be one of {sorted(powers)}, got {kind!r}")
    s, template = unwrap(score, name="score")
    c, ct = unwrap(ceiling, name="ceiling")
    if s.shape != c.shape:
        raise ValueError(f"score and ceiling must have the same shape, got {s.shape} and "
                         f"{c.shape}")
    low = c < min_ceiling
    out = s / np.where(low, 1.0, c.astype(np.float64) ** powers[kind])
    if low.any():
        idx = np.flatnonzero(np.atleast_1d(low))
        warnings.warn(f"normalized score is NaN for {idx.size} voxel(s) with a noise ceiling "
                      f"below min_ceiling={min_ceiling}: {format_indices(idx)}", RuntimeWarning,
                      stacklevel=2)
        out = np.where(low, np.nan, out)
    return _finish(out, np.zeros(out.shape, bool), template if template is not None else ct,
                   "normalized_score")


def repeats_from_trials(betas: Float[ArrayLike, "trial voxel"], stimulus_id: ArrayLike,
                        *, n_repeats: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Arrange single-trial betas as (repeat, stimulus, voxel) for :func:`explainable_variance`.

    Stimuli shown fewer than ``n_repeats`` times (default: the smallest count among stimuli
    shown at least twice) are left out; extra repeats are dropped. Returns ``(data, stimuli)``.
    """
    values, _ = unwrap(betas, name="betas")
    ids = np.asarray(stimulus_id)
    if ids.shape != values.shape[:1]:
        raise ValueError(f"stimulus_id must have one entry per trial ({values.shape[0]}), got "
                         f"shape {ids.shape}")
    stimuli, counts = np.unique(ids, return_counts=True)
    if n_repeats is None:
        if not np.any(counts >= 2):
            raise ValueError("no stimulus was shown at least twice; repeats are needed")
        r = int(counts[counts >= 2].min())
    else:
        r = int(n_repeats)
    if r < 2:
        raise ValueError(f"need >= 2 repeats per stimulus, got n_repeats={r}")
    stimuli = stimuli[counts >= r]
    order = np.argsort(ids, kind="stable")
    first = np.searchsorted(ids[order], stimuli)
    trial_idx = order[first[None, :] + np.arange(r)[:, None]]
    return values[trial_idx], stimuli


def correlation_pvalues(r: ArrayLike, n_samples: int) -> np.ndarray:
    """One-sided p-values of ``H0: rho <= 0`` by the t-test ``t = r sqrt((n-2)/(1-r^2))``.

    Assumes independent samples (e.g. held-out trials of distinct stimuli).
    """
    values = np.clip(unwrap(r, name="r")[0].astype(np.float64), -0.999999, 0.999999)
    if n_samples < 3:
        raise ValueError(f"n_samples must be >= 3, got {n_samples}")
    t = values * np.sqrt((n_samples - 2) / (1.0 - values**2))
    return scipy.stats.t.sf(t, df=n_samples - 2)


def fdr_bh(pvalues: ArrayLike, *, q: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg: boolean mask of the p-values significant at false discovery rate q."""
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    order = np.argsort(p)
    passed = p[order] <= q * np.arange(1, p.size + 1) / p.size
    k = np.flatnonzero(passed).max() + 1 if passed.any() else 0
    out = np.zeros(p.size, bool)
    out[order[:k]] = True
    return out.reshape(np.shape(pvalues))


def roi_summary(scores: Mapping[str, ArrayLike] | xr.Dataset, roi: ArrayLike, *,
                significant: ArrayLike | None = None) -> xr.Dataset:
    """Median of every per-voxel score within each ROI, as a Dataset over ``roi``.

    Parameters
    ----------
    scores : mapping name -> (voxel,) or Dataset of (voxel,) variables
    roi : (voxel,) labels
    significant : (voxel,) bool, optional
        Adds ``fraction_significant`` (e.g. voxels above chance after FDR).

    Returns
    -------
    Dataset with ``n_voxels`` and ``median_<name>`` (over the finite values; NaN with a warning
    if an ROI has none).
    """
    labels = np.asarray(unwrap(roi, name="roi")[0]).astype(str)
    names = list(scores.data_vars) if isinstance(scores, xr.Dataset) else list(scores)
    cols = {k: np.asarray(unwrap(scores[k], name=k)[0], dtype=np.float64) for k in names}
    for k, v in cols.items():
        if v.shape != labels.shape:
            raise ValueError(f"score {k!r} has shape {v.shape}, roi has {labels.shape}")
    rois = np.unique(labels)
    if rois.size == 0:
        raise ValueError("roi is empty")
    data: dict[str, Any] = {"n_voxels": ("roi", [int((labels == r).sum()) for r in rois])}
    for k, v in cols.items():
        med = []
        for r in rois:
            vals = v[(labels == r) & np.isfinite(v)]
            if vals.size == 0:
                warnings.warn(f"ROI {r!r} has no finite {k!r} values; its median is NaN",
                              RuntimeWarning, stacklevel=2)
            med.append(np.median(vals) if vals.size else np.nan)
        data[f"median_{k}"] = ("roi", np.asarray(med))
    if significant is not None:
        sig = np.asarray(unwrap(significant, name="significant")[0], bool)
        data["fraction_significant"] = ("roi", [float(sig[labels == r].mean()) for r in rois])
    return xr.Dataset(data, coords={"roi": rois}, attrs=provenance("roi_summary"))


def r2_split(y_true: Float[ArrayLike, "sample voxel"],
             y_pred_split: Float[ArrayLike, "space sample voxel"]) -> np.ndarray:
    """The R^2 of a sum of predictions split over its terms (the product measure).

    ``y_pred_split[i]`` is the prediction of feature space ``i``; the joint prediction is their
    sum. With ``y`` and every ``p_i`` centred on the samples given, the share of space ``i`` is
    ``(2 y.p_i - p_i.P) / y.y`` with ``P = sum_i p_i``: the shares sum exactly to the R^2 of
    ``P`` (``1 - |y - P|^2 / |y|^2``). That equals the usual R^2 of the joint prediction when
    its mean on these samples matches the mean of ``y`` (z-scored runs); otherwise the usual
    R^2 is lower by ``n d^2 / |y|^2`` (``d`` the mean offset), which no space carries. Shares
    can be negative (a space whose prediction is anti-correlated with the others' errors).
    Dupre la Tour et al. (2022), NeuroImage 264, eq. 8. Returns (space, voxel), float64; a
    constant voxel of ``y_true`` has no share (NaN, with a warning).
    """
    y = np.asarray(y_true, dtype=np.float64)
    P = np.asarray(y_pred_split, dtype=np.float64)
    if y.ndim == 1:
        y, P = y[:, None], P[..., None]
    if P.ndim != 3 or P.shape[1:] != y.shape:
        raise ValueError(f"y_pred_split must be (space, sample, voxel) matching y_true "
                         f"{y.shape}, got {P.shape}")
    y = y - y.mean(0)
    P = P - P.mean(1, keepdims=True)
    total = P.sum(0)
    sst = (y**2).sum(0)
    bad = sst == 0
    shares = (2.0 * np.einsum("sv,isv->iv", y, P) - np.einsum("isv,sv->iv", P, total)) \
        / np.where(bad, 1.0, sst)
    if bad.any():
        idx = np.flatnonzero(bad)
        warnings.warn(f"r2_split is undefined (NaN) for {idx.size} constant voxel(s) "
                      f"{format_indices(idx)}", RuntimeWarning, stacklevel=2)
        shares[:, bad] = np.nan
    return shares
